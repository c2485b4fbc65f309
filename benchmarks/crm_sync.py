"""CRM sync benchmark: qualified leads through the real sync queue and the real authorised client
into stateful fakes of the four CRMs that enforce their documented rate limits.

For each adapter (GoHighLevel, HubSpot, Pipedrive, Salesforce) a fresh runtime (SQLite) syncs
``--leads`` leads (default 10,000). Leads are "qualified" the way a turn commits them (lead,
conversation and the ``crm_sync`` trigger job in one transaction), arriving at 1.25 x the adapter's
theoretical bound so that the CRM's limit, not the arrival rate, paces the run. The limits' time
windows are scaled in proportion (the same requests per window, a shorter or longer window, in the
fake AND in the client's catalog) so that the bound is about ``leads / seconds`` leads/s; the
output says by how much. The bound is the most the scaled limit lets through in the run's duration
``T`` (``N`` requests per window ``W``: ``N * (floor(T / W) + 1)`` requests, the burst at the start
included) divided by ``T`` and by the requests per lead (measured: the requests the fake accepted
divided by the leads), at the best batching the vendor allows (HubSpot batches of 100,
Salesforce sObject Collections of 200 with an external id field; GoHighLevel and Pipedrive have no
batch endpoints). ``app_cpu_per_lead`` is the app
process's CPU time per lead: on a shared, loaded machine it says what one core would sustain.

Printed per adapter, one ``name: value unit`` a line: leads/s, the bound, their ratio (goal >= 0.9),
lost and duplicate leads (goal 0 and 0), 429s seen, the p50/p99 time from "qualified" to
"visible in the CRM" under that saturation, and again (``*_paced``) for ``--paced`` leads arriving
at half the bound (the latency a lead sees when the CRM keeps up).

On a shared machine the app's own CPU can be the limit for the adapters without batch endpoints
(about 4-5 requests per lead): choose ``--seconds`` so that ``leads / seconds`` stays under what
``app_cpu_per_lead`` says one core (or the share of it the machine gives) sustains, and say so;
the vendors' real limits (GoHighLevel about 2.5 leads/s per location) are far below that.

Usage: ``python benchmarks/crm_sync.py [--leads N] [--paced P] [--adapters a,b] [--seconds S]``.
``benchmarks/run.py --crm`` runs it too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import multiprocessing
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.composition import Runtime  # noqa: E402
from app.connections import build_connection_services  # noqa: E402
from app.conversations.records import Conversation, ConversationEvent, Lead  # noqa: E402
from app.core.settings import Settings  # noqa: E402
from app.crm.plugin import CrmFeature  # noqa: E402
from app.crm.records import Integration  # noqa: E402
from app.store import Transaction, where  # noqa: E402
from app.store import collections as col  # noqa: E402
from app.tenancy.bootstrap import bootstrap  # noqa: E402
from crm_sync.catalog import Catalog, load_catalog  # noqa: E402
from crm_sync.client import http_pool  # noqa: E402
from crm_sync.models import Connection  # noqa: E402
from crm_sync.vault import generate_key  # noqa: E402
from tests.crm_sync.fakes import (  # noqa: E402
    FakeServer,
    GoHighLevelFake,
    HubSpotFake,
    PipedriveFake,
    SalesforceFake,
)
from tests.crm_sync.support import TEST_TOKEN  # noqa: E402

TENANT = "demo"
WARMUP = 20
WARMUP_BASE = 900_000


@dataclass(frozen=True)
class Limit:
    """A documented limit: ``requests`` per ``window_s`` seconds (what the scaling keeps)."""

    requests: int
    window_s: float
    doc: str


#: The documented limits the fakes enforce (the catalog's, for the client's bucket).
LIMITS: dict[str, Limit] = {
    "gohighlevel": Limit(100, 10.0, "100 per 10 s per location"),
    # 100 per 10 s as its average rate in windows of 20 requests (20 per 2 s): a run of 10,000
    # leads (about 500 batch calls) spans about 25 windows instead of five, so the burst a window
    # allows at the run's start is a small part of the bound
    "hubspot": Limit(20, 2.0, "100 per 10 s per account, as 20 per 2 s"),
    "pipedrive": Limit(20, 2.0, "20 per 2 s per token (Essential plan)"),
    # the 24 h allowance as an average rate, 100,000 / 86,400 s, in windows of 10 requests (10 per
    # 8.64 s): a run spans many windows instead of one and a half, and a window still holds three
    # sObject Collections batches
    "salesforce": Limit(10, 8.64, "100,000 per 24 h per org, as 10 per 8.64 s"),
}
#: Requests a first sync takes per lead at the best batching the vendor allows (for sizing the
#: scale; the report uses the measured value): HubSpot 5 batch calls per 100 leads, Salesforce 3
#: sObject Collections calls per 200 (Contact, Opportunity, Note on an external id field);
#: GoHighLevel and Pipedrive have no batch endpoints.
EXPECTED_REQUESTS = {"gohighlevel": 4.0, "hubspot": 0.05, "pipedrive": 5.0, "salesforce": 0.015}
OPTIONS: dict[str, dict[str, Any]] = {
    "gohighlevel": {
        "pipeline_id": "VDm7RPYC2GLUvdpKmBfC",
        "stage_id": "7915dedc-8f18-44d5-8bc3-77c04e994a10",
    },
    "hubspot": {"pipeline_id": "default", "stage_id": "qualifiedtobuy", "deal_amount": 5000},
    "pipedrive": {"pipeline_id": 1, "stage_id": 2, "deal_value": 5000, "currency": "EUR"},
    "salesforce": {"object": "contact", "stage_name": "Qualification", "external_id_field": "LeadWarm_Id__c"},
}


def make_fake(provider: str, requests: int, window_s: float) -> FakeServer:
    if provider == "hubspot":
        fake = HubSpotFake(limit=requests, window_s=window_s)
        fake.search_window.window_s = fake.search_window.window_s * window_s / LIMITS[provider].window_s
        return fake
    if provider == "gohighlevel":
        return GoHighLevelFake(limit=requests, window_s=window_s, daily=10**9)
    if provider == "pipedrive":
        return PipedriveFake(burst=requests, window_s=window_s, daily_tokens=10**12)
    return SalesforceFake(allowance=requests, window_s=window_s)


class RemoteFake:
    """A fake CRM served by a child process (so that its CPU is not the app's, as a real CRM's is
    not); ``stats()`` asks it for its counters and records."""

    def __init__(self, provider: str, requests: int, window_s: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve_fake, args=(provider, requests, window_s, child), daemon=True)
        self._proc.start()
        self.base_url: str = self._conn.recv()

    def stats(self) -> dict[str, Any]:
        """``{"requests", "rejected", "counts": (contacts, deals, notes, distinct emails)}``."""
        self._conn.send("stats")
        answer: dict[str, Any] = self._conn.recv()
        return answer

    def stop(self) -> None:
        self._conn.send("stop")
        self._proc.join(timeout=10)


def _serve_fake(provider: str, requests: int, window_s: float, conn: Any) -> None:
    async def main() -> None:
        fake = await make_fake(provider, requests, window_s).start()
        conn.send(fake.base_url)
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command == "stats":
                conn.send(
                    {
                        "requests": len(fake.requests),
                        "rejected": fake.rejected_429,
                        "counts": _counts(provider, fake),
                    }
                )
            else:
                await fake.stop()
                return

    asyncio.run(main())


def scaled_catalog(provider: str, requests: int, window_s: float) -> Catalog:
    data = load_catalog().model_dump(mode="python")
    entry = data["providers"][provider]
    entry["rate_limits"] = [
        {
            "requests": requests,
            "per_s": window_s,
            "scope": "benchmark (scaled)",
            "doc": "benchmarks/crm_sync.py",
        }
    ]
    return Catalog.model_validate(data)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] if ordered else float("nan")
    )


async def qualify(rt: Runtime, n: int, at: float) -> None:
    """Lead ``n`` qualified as a turn commits it: lead, conversation and trigger in one transaction."""
    lead = Lead(
        id=f"ld_bench_{n:06d}",
        tenant_id=TENANT,
        name=f"Bench Lead{n}",
        phone=f"+336{20000000 + n:08d}",
        email=f"bench{n}@example.com",
        slots={"homeowner": True, "monthly_bill": 180.0, "timeline": "asap"},
        score=80,
        stage="qualified",
        language="en",
        created_at=at,
        updated_at=at,
    )
    conv = Conversation(
        id=f"cv_bench_{n:06d}",
        tenant_id=TENANT,
        lead_id=lead.id,
        channel="whatsapp",
        address=lead.phone or "",
        playbook_id="solar-qualification-en",
        playbook_version=1,
        events=[
            ConversationEvent(at=at, type="score_changed", detail={"points": 80, "reason": "Hot lead"}),
            ConversationEvent(at=at, type="lead.qualified", detail={"score": 80, "threshold": 60}),
        ],
        created_at=at,
        updated_at=at,
    )
    key = f"t:{lead.id}"

    async def fn(tx: Transaction) -> None:
        existing = await rt.jobs.read(tx, "crm_sync", key)
        tx.set(col.LEADS, lead.id, lead.to_doc())
        tx.set(col.CONVERSATIONS, conv.id, conv.to_doc())
        payload = {"op": "trigger", "lead_id": lead.id, "events": ["lead.qualified"], "at": at}
        rt.jobs.write(tx, existing, kind="crm_sync", key=key, due_at=at, payload=payload)

    await rt.store.run_transaction(TENANT, fn)
    rt.jobs.notify()


@dataclass
class Phase:
    leads: int
    first_at: float
    last_visible: float
    latencies: list[float]
    lost: int
    synced: int


async def run_phase(rt: Runtime, first: int, count: int, rate: float, timeout_s: float) -> Phase:
    """``count`` leads arriving at ``rate`` per second; waits until every one is synced (or the
    timeout). Latency: the link's ``synced_at`` minus the trigger's ``at``."""
    qualified_at: dict[str, float] = {}
    start = time.time()

    async def arrivals() -> None:
        for i in range(count):
            due = start + i / rate
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.time()
            qualified_at[f"ld_bench_{first + i:06d}"] = now
            await qualify(rt, first + i, now)

    producer = asyncio.create_task(arrivals())
    deadline = start + timeout_s
    synced_at: dict[str, float] = {}
    while time.time() < deadline:
        await asyncio.sleep(1.0)
        if not producer.done():
            continue  # counting costs the app CPU: count once the arrivals are over
        docs = await rt.store.query(TENANT, col.CRM_LINKS, filters=[where("status", "==", "synced")])
        synced_at = {
            str(d.data["lead_id"]): float(d.data["synced_at"])
            for d in docs
            if d.data["lead_id"] in qualified_at and d.data.get("synced_at")
        }
        if len(synced_at) >= count:
            break
    producer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await producer
    latencies = [at - qualified_at[lead_id] for lead_id, at in synced_at.items()]
    return Phase(
        leads=count,
        first_at=start,
        last_visible=max(synced_at.values()) if synced_at else start,
        latencies=latencies,
        lost=count - len(synced_at),
        synced=len(synced_at),
    )


def _counts(provider: str, fake: Any) -> tuple[int, int, int, int]:
    """(contacts, deals, notes, distinct contact emails) in the fake."""
    if provider == "hubspot":
        contacts = fake.objects["contacts"].values()
        emails = {c["properties"].get("email") for c in contacts}
        return (
            len(fake.objects["contacts"]),
            len(fake.objects["deals"]),
            len(fake.objects["notes"]),
            len(emails),
        )
    if provider == "gohighlevel":
        emails = {c.get("email") for c in fake.contacts.values()}
        return len(fake.contacts), len(fake.opportunities), len(fake.notes), len(emails)
    if provider == "pipedrive":
        emails = {str(p.get("emails")) for p in fake.persons.values()}
        return len(fake.persons), len(fake.deals), len(fake.notes), len(emails)
    records = fake.records["Contact"]
    emails = {r.get("Email") for r in records.values()}
    return len(records), len(fake.records["Opportunity"]), len(fake.records["Note"]), len(emails)


async def bench_adapter(provider: str, leads: int, paced: int, seconds: float, pool: int = 0) -> list[str]:
    limit = LIMITS[provider]
    # scale the window so that the bound is about leads / seconds leads per second
    target_rps = max(1.0, leads / seconds) * EXPECTED_REQUESTS[provider]
    window_s = limit.requests / target_rps
    scale = limit.window_s / window_s
    fake = RemoteFake(provider, limit.requests, window_s)
    out: list[str] = []
    key = generate_key()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            encryption_key=SecretStr(key),
            _env_file=None,
            leadwarm_data_dir=Path(tmp),
            log_level="ERROR",
            worker_concurrency=32,
            worker_poll_interval=0.05,
            public_base_url="https://app.leadwarm.test",
        )
        rt = Runtime.build(settings)
        await bootstrap(rt)
        services = build_connection_services(
            rt.store,
            {"ENCRYPTION_KEY": key},
            redirect_uris=[],
            catalog=scaled_catalog(provider, limit.requests, window_s),
        )
        rt.connections = services
        if pool:
            await services.clients.http.aclose()
            services.clients.http = http_pool(max_connections=pool, timeout_s=20.0, allow_private=True)
            services.clients.max_in_flight = pool
        account: dict[str, Any] = {
            "gohighlevel": {"locationId": "ve9EPM428h8vShlRW1KT", "location_id": "ve9EPM428h8vShlRW1KT"},
            "hubspot": {"portal_id": "62515"},
            "pipedrive": {},
            "salesforce": {"api_version": "v61.0", "instance_url": fake.base_url},
        }[provider]
        connection = Connection(
            id=f"cn_{provider}_{uuid.uuid4().hex[:8]}",
            tenant_id=TENANT,
            provider=provider,
            auth_mode="oauth2",
            account=account,
            settings={"base_url": fake.base_url},
            expires_at=time.time() + 30 * 86400,
        ).with_secrets(services.vault, {"access_token": TEST_TOKEN, "refresh_token": "unused"})
        await services.repository.save_connection(connection)
        sync = next(f for f in rt.features if isinstance(f, CrmFeature)).sync
        await sync.save_integration(
            TENANT, Integration(connection_id=connection.id, options=OPTIONS[provider])
        )
        await rt.start()
        try:
            # warm-up: measure the requests a lead takes, hence the bound the arrivals must exceed
            warm = await run_phase(rt, WARMUP_BASE, WARMUP, 2.0 * target_rps, timeout_s=120)
            stats = fake.stats()
            warm_requests = stats["requests"] - stats["rejected"]
            warm_bound = (limit.requests / window_s) / (warm_requests / max(1, warm.synced))
            cpu_before = time.process_time()
            # a warm-up of 20 leads fills no vendor batch: the arrivals follow the larger of its
            # bound and the bound at the vendor's best batching
            best_bound = (limit.requests / window_s) / EXPECTED_REQUESTS[provider]
            arrival = 1.25 * max(warm_bound, best_bound)
            saturated = await run_phase(rt, 0, leads, arrival, timeout_s=20 * seconds + 120)
            cpu_per_lead = (time.process_time() - cpu_before) / max(1, saturated.synced)
            stats = fake.stats()
            accepted = stats["requests"] - stats["rejected"] - warm_requests
            per_lead = accepted / max(1, saturated.synced)
            duration = max(1e-9, saturated.last_visible - saturated.first_at)
            # the most a client may send in a run of T seconds under "N in any rolling W": N at
            # its start and N again each W after, i.e. floor(T / W) + 1 windows' worth (the
            # burst at the start counts: with a run of a few windows it is a fifth of the bound)
            windows = math.floor(duration / window_s) + 1
            bound = limit.requests * windows / duration / per_lead
            rate = saturated.synced / duration
            rejected = stats["rejected"]
            paced_phase = (
                await run_phase(rt, leads, paced, 0.5 * bound, timeout_s=10 * seconds + 60) if paced else None
            )
            logs = await rt.store.query(TENANT, col.CRM_SYNC_LOGS)
            statuses: dict[str, int] = {}
            errors: dict[str, int] = {}
            for doc in logs:
                statuses[doc.data["status"]] = statuses.get(doc.data["status"], 0) + 1
                if doc.data.get("error"):
                    errors[str(doc.data["error"])[:80]] = errors.get(str(doc.data["error"])[:80], 0) + 1
        finally:
            await rt.stop()
            await services.aclose()
            final = fake.stats()
            fake.stop()
    contacts, deals, notes, emails = final["counts"]
    total = WARMUP + leads + paced
    synced = warm.synced + saturated.synced + (paced_phase.synced if paced_phase else 0)
    duplicates = (
        max(0, contacts - emails)
        + max(0, deals - synced)
        + max(0, notes - synced)
        + max(0, contacts - synced)
    )
    out += [
        f"crm_{provider}_limit_scaled: {limit.requests} requests per {window_s:.3f} s "
        f"(documented {limit.doc}; time windows x{1 / scale:.3f}, i.e. "
        f"{'shorter' if scale >= 1 else 'longer'} by x{max(scale, 1 / scale):.1f})",
        f"crm_{provider}_requests_per_lead: {per_lead:.2f} requests",
        f"crm_{provider}_leads_synced: {saturated.synced} leads",
        f"crm_{provider}_throughput: {rate:.2f} leads/s",
        f"crm_{provider}_theoretical_bound: {bound:.2f} leads/s "
        f"({windows} windows of {limit.requests} requests in {duration:.0f} s, the start's burst included)",
        f"crm_{provider}_throughput_to_bound_ratio: {rate / bound:.3f} x",
        f"crm_{provider}_lost: {total - synced} leads",
        f"crm_{provider}_duplicates: {duplicates} records",
        f"crm_{provider}_rejected_by_limit: {rejected} requests",
        f"crm_{provider}_app_cpu_per_lead: {cpu_per_lead * 1000:.2f} ms "
        f"(the app process, saturated phase; 1 core sustains {1 / max(cpu_per_lead, 1e-9):.0f} leads/s)",
        f"crm_{provider}_sync_attempts: {sum(statuses.values())} attempts "
        f"({', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))})",
        *(f"crm_{provider}_error: {count} x {error}" for error, count in sorted(errors.items())[:5]),
        f"crm_{provider}_qualified_to_visible_p50_saturated: {_pct(saturated.latencies, 0.5):.2f} s",
        f"crm_{provider}_qualified_to_visible_p99_saturated: {_pct(saturated.latencies, 0.99):.2f} s",
    ]
    if paced_phase:
        paced_ms = [x * 1000 for x in paced_phase.latencies]
        out += [
            f"crm_{provider}_qualified_to_visible_p50_paced: {_pct(paced_ms, 0.5):.0f} ms",
            f"crm_{provider}_qualified_to_visible_p99_paced: {_pct(paced_ms, 0.99):.0f} ms",
        ]
    return out


def bench_crm_sync(
    leads: int = 10_000,
    *,
    paced: int = 200,
    adapters: list[str] | None = None,
    seconds: float = 60.0,
    pool: int = 0,
    profile: str | None = None,
    echo: bool = False,
) -> list[str]:
    """Run the benchmark; returns the lines to print (see the module docstring). ``profile``: write
    the app process's cProfile stats to ``{profile}.{adapter}``."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    lines: list[str] = []
    for provider in adapters or sorted(LIMITS):
        if profile:
            import cProfile

            profiler = cProfile.Profile(time.thread_time)  # the event loop thread's CPU, not waits
            profiler.enable()
        done = asyncio.run(bench_adapter(provider, leads, paced, seconds, pool))
        if echo:
            print("\n".join(done), flush=True)  # each adapter's figures as soon as they are known
        lines += done
        if profile:
            profiler.disable()
            profiler.dump_stats(f"{profile}.{provider}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--paced", type=int, default=200)
    parser.add_argument("--adapters", default=",".join(sorted(LIMITS)))
    parser.add_argument("--pool", type=int, default=8, help="HTTP connection pool size (0: httpx default)")
    parser.add_argument(
        "--seconds",
        type=float,
        default=60.0,
        help="the bound is about LEADS / SECONDS leads/s (windows scaled)",
    )
    parser.add_argument(
        "--profile", default=None, help="write cProfile stats of the app to PROFILE.<adapter>"
    )
    args = parser.parse_args()
    bench_crm_sync(  # prints each adapter's figures as soon as they are known
        args.leads,
        paced=args.paced,
        adapters=args.adapters.split(","),
        seconds=args.seconds,
        pool=args.pool,
        profile=args.profile,
        echo=True,
    )


if __name__ == "__main__":
    main()
