"""The dashboard's API with a large tenant: 10,000 leads, 10,000 conversations, 100,000 messages
(SQLite, in-process test client, so the network is left out). Prints ``name: value unit`` lines:
the min, median and worst of ``--calls`` calls of every API endpoint a dashboard page reads and of
every page shell (signed in), then analytics after a write and with empty caches.

The analytics caches are filled by the warm-up the dashboard starts with the app (its time is
printed); ``analytics_cold_caches`` is what that warm-up spends. CPU time is printed beside wall
time, since on a shared machine wall time mostly measures the neighbours.

Usage: ``python benchmarks/dashboard.py [--leads N] [--messages-per-conversation M] [--calls C]
[--data-dir D]``
(``--data-dir`` keeps the seeded store and reuses it on the next run).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from argon2 import PasswordHasher  # noqa: E402
from litestar.testing import AsyncTestClient  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from app.composition import Runtime  # noqa: E402
from app.core.settings import Settings  # noqa: E402
from app.dashboard.plugin import DashboardFeature  # noqa: E402
from app.dashboard.speed import reports, steps_reached  # noqa: E402
from app.main import create_app  # noqa: E402
from app.store import Transaction  # noqa: E402
from app.store.collections import CONVERSATIONS, LEADS, messages_collection  # noqa: E402
from app.tenancy.bootstrap import bootstrap  # noqa: E402
from playbooks import LIBRARY_DIR  # noqa: E402

KEY = "lw_bench_admin_key"
STEPS = ("greeting", "homeowner", "bill", "roof", "timeline")


async def _seed(rt: Runtime, leads: int, per_conversation: int) -> None:
    now = time.time() - leads
    batch: list[tuple[str, str, dict[str, Any]]] = []

    async def flush() -> None:
        items = list(batch)
        batch.clear()

        async def fn(tx: Transaction) -> None:
            for collection, doc_id, data in items:
                tx.set(collection, doc_id, data)

        await rt.store.run_transaction("demo", fn)

    for i in range(leads):
        lead_id, conv_id = f"ld_{i:08d}", f"cv_{i:08d}"
        at = now + i
        status = ("active", "handoff", "closed", "scheduled")[i % 4]
        batch.append(
            (
                LEADS,
                lead_id,
                {
                    "id": lead_id,
                    "tenant_id": "demo",
                    "name": f"Lead {i}",
                    "phone": f"+3361{i:07d}",
                    "score": i % 101,
                    "stage": ("new", "engaged", "qualified", "handoff")[i % 4],
                    "source": ("api", "inbound", "csv")[i % 3],
                    "created_at": at,
                    "updated_at": at,
                },
            )
        )
        batch.append(
            (
                CONVERSATIONS,
                conv_id,
                {
                    "id": conv_id,
                    "tenant_id": "demo",
                    "lead_id": lead_id,
                    "channel": "whatsapp",
                    "address": f"+3361{i:07d}",
                    "status": status,
                    "playbook_id": "solar-qualification-en",
                    "playbook_version": 1,
                    "current_step": STEPS[i % len(STEPS)],
                    "state": {"score": i % 101, "qualified": i % 3 == 0},
                    "events": [{"at": at, "type": "handoff", "detail": {}}] if status == "handoff" else [],
                    "llm_usage": {"cost_micro_usd": 1200},
                    "created_at": at,
                    "updated_at": at,
                },
            )
        )
        for seq in range(per_conversation):
            batch.append(
                (
                    messages_collection(conv_id),
                    f"m{seq}",
                    {
                        "id": f"m{seq}",
                        "conversation_id": conv_id,
                        "lead_id": lead_id,
                        "seq": seq,
                        "direction": "outbound" if seq % 2 == 0 else "inbound",
                        "sender": "bot" if seq % 2 == 0 else "contact",
                        "channel": "whatsapp",
                        "text": f"message {seq}",
                        "step_id": STEPS[min(seq // 2, len(STEPS) - 1)] if seq % 2 == 0 else None,
                        "created_at": at + seq,
                    },
                )
            )
        if len(batch) >= 2000:
            await flush()
    if batch:
        await flush()


OWNER = ("owner@bench.example", "bench-password-1")
FRENCH = (LIBRARY_DIR / "renovation-qualification-fr.yaml").read_text(encoding="utf-8")
#: Every page shell (HTML, signed-in session) and the API calls each page makes.
PAGES = (
    "/app/inbox",
    "/app/conversations/cv_00000042",
    "/app/leads",
    "/app/leads/ld_00000042",
    "/app/analytics",
    "/app/playbooks",
    "/app/playbooks/editor",
    "/app/import",
    "/app/integrations",
    "/app/settings",
    "/app/people",
    "/app/signin",
)
APIS = (
    ("inbox", "/api/v1/inbox"),
    ("inbox_handoffs", "/api/v1/inbox?status=handoff"),
    ("inbox_min_score", "/api/v1/inbox?min_score=90"),
    ("inbox_playbook_channel", "/api/v1/inbox?playbook=solar-qualification-en&channel=whatsapp"),
    ("leads", "/api/v1/leads"),
    ("leads_page_2", "/api/v1/leads?after={next}"),
    ("leads_stage", "/api/v1/leads?stage=qualified"),
    ("leads_search", "/api/v1/leads?q=lead%209999"),
    ("leads_min_score", "/api/v1/leads?min_score=95"),
    ("leads_csv", "/api/v1/leads.csv"),
    ("conversation", "/api/v1/conversations/cv_00000042"),
    ("conversation_handling", "/api/v1/conversations/cv_00000042/handling"),
    ("lead_overview", "/api/v1/leads/ld_00000042/overview"),
    ("analytics", "/api/v1/analytics/playbooks"),
    ("funnel_svg", "/api/v1/analytics/playbooks/solar-qualification-en/funnel.svg"),
    ("playbooks_list", "/api/v1/playbooks"),
    ("playbook_routes", "/api/v1/playbook-routes"),
    ("playbook_schema", "/api/v1/playbooks/schema"),
    ("playbook_version_source", "/api/v1/playbooks/{playbook}/versions/{version}"),
    ("conversation_notes", "/api/v1/conversations/cv_00000042/notes"),
    ("settings", "/api/v1/settings"),
    ("integrations_configured", "/api/v1/integrations/configured"),
    ("crm_integrations", "/api/v1/crm/integrations"),
    ("lead_imports", "/api/v1/leads/imports"),
    ("integrations", "/api/v1/integrations"),
    ("users", "/api/v1/users"),
    ("usage", "/api/v1/usage"),
)


class _Timings:
    """Wall and CPU milliseconds of repeated calls; prints ``name: min/median/worst`` lines."""

    def __init__(self, calls: int) -> None:
        self.calls = calls

    async def run(self, name: str, call: Any) -> None:
        times, cpu = [], []
        for _ in range(self.calls):
            t0, c0 = time.perf_counter(), time.process_time()
            await call()
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        self.report(name, times, cpu)

    @staticmethod
    def report(name: str, times: list[float], cpu: list[float]) -> None:
        # CPU time too: on a shared, loaded machine wall time mostly measures the neighbours.
        print(
            f"{name}: min {min(times):.0f} ms, median {statistics.median(times):.0f} ms,"
            f" worst {max(times):.0f} ms (cpu min {min(cpu):.0f} ms, median {statistics.median(cpu):.0f} ms,"
            f" worst {max(cpu):.0f} ms)",
            flush=True,
        )


async def _sign_in(client: AsyncTestClient[Any]) -> None:
    page = await client.get("/app/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text[:200]
    response = await client.post(
        "/app/signin",
        data={"tenant": "demo", "email": OWNER[0], "password": OWNER[1], "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:200]


async def _touch_conversation(rt: Runtime) -> None:
    """Write one conversation of the playbook (as a turn does), so analytics' freshness moves."""
    doc = await rt.store.get("demo", CONVERSATIONS, "cv_00000007")
    assert doc is not None
    doc["updated_at"] = time.time()
    doc["version"] = int(doc.get("version") or 0) + 1
    await rt.store.set("demo", CONVERSATIONS, "cv_00000007", doc)


async def main() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--messages-per-conversation", type=int, default=10)
    parser.add_argument("--calls", type=int, default=5, help="calls of each endpoint")
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the seeded store here (reused)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp)
        seeded = (data_dir / ".seeded").exists()
        settings = Settings(
            _env_file=None, leadwarm_data_dir=data_dir, admin_api_key=SecretStr(KEY), log_level="WARNING"
        )
        started = time.perf_counter()
        rt = Runtime.build(settings)  # opens the store (and rebuilds an index of an older shape)
        print(f"open: {time.perf_counter() - started:.1f} s", flush=True)
        await bootstrap(rt)
        if not seeded:
            started = time.perf_counter()
            await _seed(rt, args.leads, args.messages_per_conversation)
            print(f"seed: {time.perf_counter() - started:.1f} s", flush=True)
            (data_dir / ".seeded").touch()
        feature = next(f for f in rt.features if isinstance(f, DashboardFeature))
        feature.people.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        if await feature.people.authenticate("demo", *OWNER) is None:
            await feature.people.create_user("demo", *OWNER, role="owner", name="Owner")
        app = create_app(runtime=rt, start_worker=False)
        auth = {"Authorization": f"Bearer {KEY}"}
        timings = _Timings(args.calls)
        async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
            # The analytics warm-up started with the app (in the background): how long it takes.
            started = time.perf_counter()
            while feature.warmup is None or not feature.warmup.done():  # noqa: ASYNC110 - on the app's loop
                await asyncio.sleep(0.02)
            print(f"analytics_warmup (background): {time.perf_counter() - started:.1f} s", flush=True)
            first = (await client.get("/api/v1/leads?limit=100", headers=auth)).json()
            stored = (await client.get("/api/v1/playbooks", headers=auth)).json()["playbooks"][0]
            values = {"next": first.get("next") or "", "playbook": stored["id"], "version": stored["version"]}
            for name, url in APIS:
                url = url.format(**values)

                async def call(url: str = url) -> None:
                    response = await client.get(url, headers=auth)
                    assert response.status_code == 200, (url, response.status_code, response.text[:200])

                await timings.run(name, call)
            edits = itertools.count()

            async def validate() -> None:
                response = await client.post(
                    "/api/v1/playbooks/validate", json={"source": f"{FRENCH}\n#{next(edits)}\n"}, headers=auth
                )
                assert response.status_code == 200, response.text[:200]

            await timings.run("playbook_validate_fr", validate)

            async def simulate() -> None:
                response = await client.post(
                    "/api/v1/playbooks/simulate",
                    json={"source": FRENCH, "session_language": "fr", "action": {"kind": "start"}},
                    headers=auth,
                )
                assert response.status_code == 200, response.text[:200]

            await timings.run("playbook_simulate_start", simulate)

            # Analytics after a write (a turn): the freshness token moves, one conversation recomputes.
            async def changed() -> None:
                await _touch_conversation(rt)
                t0, c0 = time.perf_counter(), time.process_time()
                response = await client.get("/api/v1/analytics/playbooks", headers=auth)
                assert response.status_code == 200
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)

            times: list[float] = []
            cpu: list[float] = []
            for _ in range(args.calls):
                await changed()
            timings.report("analytics_after_a_write", times, cpu)
            # Analytics with empty caches (what the background warm-up spends once per process).
            times, cpu = [], []
            for _ in range(min(args.calls, 2)):
                steps_reached._data.clear()
                reports._data.clear()
                t0, c0 = time.perf_counter(), time.process_time()
                response = await client.get("/api/v1/analytics/playbooks", headers=auth)
                assert response.status_code == 200
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
            timings.report("analytics_cold_caches", times, cpu)

            await _sign_in(client)
            for path in PAGES:

                async def page(path: str = path) -> None:
                    response = await client.get(path)
                    assert response.status_code == 200, (path, response.status_code, response.text[:200])

                await timings.run("page " + path, page)
        await rt.channels.aclose()
        await rt.store.close()


if __name__ == "__main__":
    asyncio.run(main())
