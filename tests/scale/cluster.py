"""N ``leadwarm serve`` processes on one Firestore emulator, many concurrent conversations of one tenant.

Used by ``tests/scale/test_processes.py`` (small, seconds) and ``benchmarks/firestore_scale.py``
(1,000 conversations, one process against four). One run:

1. wipe the emulator, start ``processes`` services (WhatsApp pointed at :class:`MetaGraph`, a
   recording server on 127.0.0.1 that answers every send with a fresh message id, as Meta does: the
   plain recording server's constant ``wamid.REC`` made every send of the tenant write one
   ``provider_ids`` document, a hot document of the test's own making);
2. round A: every lead writes its first message; deliveries go round-robin over the processes and
   every fifth is delivered again to the next process (a provider retry landing on another
   instance); wait until every lead got the first question;
3. round B: every lead answers; wait until every lead got the second question and no job is left;
4. count what was lost and what was sent twice, then check both are zero: every inbound message
   stored once and processed, one conversation per lead, each lead received exactly the outbound
   messages its conversation records, once each, in order, every conversation's messages numbered
   without a gap, every outbox item sent, and every lead ran the same script.

The figure: answer turns (distinct inbound messages answered) per second of wall time, from the
first delivery of round A to the last job completed. Beside it, what the run cost: CPU seconds of
the emulator's process group and of the services over that window, the machine's busy share of its
cores (``/proc/stat``), and each service's transaction statistics
(:class:`app.store.firestore.TransactionStats`, logged by the store when the service stops).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.store.firestore import FirestoreStore
from playbooks import load_library
from tests.app.conftest import ADMIN_KEY, APP_SECRET, PHONE_ID, VERIFY_TOKEN, sign, text_webhook
from tests.conftest import EMULATOR_PROJECT
from tests.support.firestore_emulator import FirestoreEmulator
from tests.support.recording import Recorded, RecordingServer, Reply
from tests.support.service import Service, service_env

__all__ = ["ClusterResult", "CpuMeter", "MetaGraph", "run_cluster"]

TENANT = "demo"
DUPLICATE_EVERY = 5
_EN = load_library()["solar-qualification-en"]


def _question(step_id: str) -> str:
    step = next(s for s in _EN.steps if s.id == step_id)
    value = getattr(step, "question")  # noqa: B009 - only ask steps have one
    return value if isinstance(value, str) else str(value["en"])


class MetaGraph(RecordingServer):
    """The recording stand-in for WhatsApp's Graph API, answering each send with its own message
    id (``wamid.G<n>``), as Meta does."""

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)

    def respond(self, request: Recorded) -> Reply:
        """A queued reply if any, else 200 with a fresh message id."""
        queued = self.take_queued()
        if queued is not None:
            return queued
        return Reply(
            body={"messaging_product": "whatsapp", "messages": [{"id": f"wamid.G{next(self._ids)}"}]}
        )


def _group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of group ``pgid`` (``/proc``)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5, pgrp; utime and stime are fields 14 and 15
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of every core since boot, from the first line of ``/proc/stat``."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return float(sum(values) - idle), float(sum(values))


class CpuMeter:
    """CPU seconds of process groups (the emulator, the services) between :meth:`start` and
    :meth:`stop`, and the machine's busy share of all its cores over the same window."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self._start: dict[str, float] = {}
        self._busy0 = (0.0, 0.0)
        self.cpu_s: dict[str, float] = {}
        self.machine_busy = 0.0

    def _read(self) -> dict[str, float]:
        return {name: sum(_group_cpu_s(g) for g in pgids) for name, pgids in self.groups.items()}

    def start(self) -> None:
        """Take the first reading."""
        self._start = self._read()
        self._busy0 = _machine_busy()

    def stop(self) -> None:
        """Take the second reading; ``cpu_s`` and ``machine_busy`` (0-1) now hold the window's."""
        end = self._read()
        self.cpu_s = {name: end[name] - self._start.get(name, 0.0) for name in end}
        busy, total = _machine_busy()
        spent = total - self._busy0[1]
        self.machine_busy = (busy - self._busy0[0]) / spent if spent > 0 else 0.0


@dataclass(frozen=True, slots=True)
class ClusterResult:
    """What one run did: ``inbound`` distinct messages (``deliveries`` with the duplicates),
    ``answered`` of them answered, ``lost`` inbound messages not processed or leads missing a reply,
    ``sent_twice`` WhatsApp sends beyond one per planned message, ``sends`` WhatsApp API calls,
    ``wall_s`` seconds from the first delivery to the last job, per-process log counts of failed
    jobs and expired leases, ``cpu_s`` CPU seconds over the run (``emulator``, ``services``),
    ``machine_busy`` the busy share of the machine's cores, and ``transactions`` the sum of the
    services' transaction statistics (``TransactionStats.summary`` shape, ``kinds`` merged)."""

    processes: int
    leads: int
    inbound: int
    deliveries: int
    answered: int
    lost: int
    sent_twice: int
    sends: int
    ack_s: float
    wall_s: float
    job_failures: list[int]
    expired_leases: list[int]
    cpu_s: dict[str, float]
    machine_busy: float
    transactions: dict[str, Any]

    @property
    def turns_per_s(self) -> float:
        """Answer turns (inbound messages answered) per second of wall time."""
        return self.answered / self.wall_s

    @property
    def messages_per_s(self) -> float:
        """Distinct inbound messages handled per second of wall time."""
        return self.inbound / self.wall_s

    def line(self) -> str:
        """One printable line."""
        tx = self.transactions
        return (
            f"{self.processes} process(es), {self.leads} conversations: {self.inbound} inbound "
            f"({self.deliveries} deliveries), {self.answered} answered, lost {self.lost}, "
            f"sent twice {self.sent_twice}, {self.sends} sends in {self.wall_s:.1f} s = "
            f"{self.turns_per_s:.1f} answer turns/s, {self.sends / self.wall_s:.1f} sends/s; "
            f"round A acked in {self.ack_s:.1f} s; job failures {self.job_failures}, "
            f"expired leases {self.expired_leases}; transactions {tx.get('transactions', 0)} "
            f"({tx.get('attempts', 0)} attempts, {tx.get('aborted', 0)} aborted by Firestore, "
            f"{tx.get('died', 0)} wait-die retries, {tx.get('lock_waits', 0)} in-process lock waits); "
            f"CPU s: emulator {self.cpu_s.get('emulator', 0):.1f}, services "
            f"{self.cpu_s.get('services', 0):.1f}, machine busy {self.machine_busy:.0%}"
        )


def _transaction_stats(logs: list[str]) -> dict[str, Any]:
    """Sum the ``firestore.transactions`` lines (JSON logs) of the services' logs."""
    total: dict[str, Any] = collections.defaultdict(float)
    kinds: dict[str, dict[str, float]] = {}
    hot: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    for text in logs:
        for line in text.splitlines():
            if '"firestore.transactions"' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            for key in ("transactions", "attempts", "aborted", "died", "lock_waits", "lock_wait_s"):
                total[key] += entry.get(key, 0)
            for name, counts in entry.get("kinds", {}).items():
                mine = kinds.setdefault(name, collections.defaultdict(float))
                for key, value in counts.items():
                    mine[key] += value
            for path, waits in entry.get("hot", []):
                hot[path] += waits
            for method, n in entry.get("calls", {}).items():
                calls[method] += n
    out: dict[str, Any] = {k: (round(v, 3) if k == "lock_wait_s" else int(v)) for k, v in total.items()}
    out["kinds"] = {
        name: {k: (round(v, 3) if k == "seconds" else int(v)) for k, v in counts.items()}
        for name, counts in sorted(kinds.items(), key=lambda item: -item[1]["attempts"])
    }
    out["hot"] = hot.most_common(5)
    out["calls"] = dict(calls.most_common())
    return out


def _sender(i: int) -> str:
    return f"3362{i:07d}"


def _texts_by_recipient(graph: RecordingServer) -> dict[str, list[str]]:
    out: dict[str, list[str]] = collections.defaultdict(list)
    for req in list(graph.requests):
        body = req.body or {}
        to = str(body.get("to", "")).lstrip("+")
        if body.get("type") == "text":
            out[to].append(body["text"]["body"])
        elif body.get("type") == "interactive":
            out[to].append(body["interactive"]["body"]["text"])
    return out


async def _until(
    predicate: Callable[[], Awaitable[bool]], deadline_s: float, what: str, progress: Callable[[], str]
) -> None:
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if await predicate():
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"not within {deadline_s} s: {what} ({progress()})")


async def run_cluster(
    emulator: FirestoreEmulator,
    workdir: Path,
    *,
    processes: int,
    leads: int,
    phase_deadline_s: float = 120.0,
    http_concurrency: int = 64,
    worker_concurrency: int = 16,
) -> ClusterResult:
    """Run the scenario of the module docstring and return its figures.

    Raises:
        AssertionError: a phase missed ``phase_deadline_s``, or something was lost or sent twice.
        RuntimeError: a service did not start.
    """
    emulator.reset()
    graph = MetaGraph()
    workdir.mkdir(parents=True, exist_ok=True)
    env = service_env(
        data_dir=workdir / "data",
        graph_url=graph.base_url,
        store={
            "store": "firestore",
            "firebase_project_id": EMULATOR_PROJECT,
            "firestore_emulator_host": emulator.host_port,
        },
        admin_key=ADMIN_KEY,
        whatsapp={
            "whatsapp_token": "test-token",
            "whatsapp_phone_id": PHONE_ID,
            "whatsapp_app_secret": APP_SECRET,
            "webhook_verify_token": VERIFY_TOKEN,
        },
        JOB_LEASE_SECONDS="30",
        # one loopback client stands in for the many addresses Meta delivers from: the per-address
        # webhook budget (200/s by default) would answer a fast round 429 (as benchmarks/run.py)
        RATE_LIMIT_WEBHOOKS_PER_SECOND="1000000",
        WORKER_CONCURRENCY=str(worker_concurrency),
        # the processes share one WhatsApp number: together they pace at its rate, not 4 times it
        WORKER_PROCESSES=str(processes),
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",  # the store's statistics line (firestore.transactions) is INFO without contention
        # the production default: how late a process sees a job another process enqueued (tests use
        # 0.1 s; four processes polling that often keep the emulator busy with scheduler queries)
        WORKER_POLL_INTERVAL="0.5",
    )
    services: list[Service] = []
    store = FirestoreStore(project_id=EMULATOR_PROJECT, emulator_host=emulator.host_port)
    first_question, second_question = _question("homeowner"), _question("bill")
    try:
        # the first process alone bootstraps the empty store (first-run bootstrap is not safe to run
        # concurrently: two processes publishing the same shipped playbook, one fails to start)
        services.append(await asyncio.to_thread(Service.start, env, workdir / "service-0.log"))
        starting = [
            asyncio.to_thread(Service.start, env, workdir / f"service-{n}.log") for n in range(1, processes)
        ]
        for outcome in await asyncio.gather(*starting, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
            services.append(outcome)
        limit = asyncio.Semaphore(http_concurrency)
        meter = CpuMeter({"emulator": [emulator.process.pid], "services": [s.proc.pid for s in services]})

        def progress() -> str:
            texts = _texts_by_recipient(graph)
            answered = [
                sum(q in texts.get(_sender(i), ()) for i in range(leads))
                for q in (first_question, second_question)
            ]
            failures = [s.log.read_text("utf-8", "replace").count("job.failed") for s in services]
            return f"leads answered per round: {answered}, sends: {len(graph.requests)}, job failures: {failures}"

        async def every_lead_got(text: str) -> bool:
            texts = _texts_by_recipient(graph)
            return all(text in texts.get(_sender(i), ()) for i in range(leads))

        async def no_jobs_left() -> bool:
            return not await store.query(TENANT, "jobs", limit=1)

        async def deliver(http: httpx.AsyncClient, round_: str, text: str, shift: int) -> int:
            async def post(service: Service, body: bytes) -> None:
                async with limit:
                    response = await http.post(
                        f"{service.base}/api/webhooks/whatsapp", content=body, headers=sign(body)
                    )
                assert response.status_code == 200, response.text

            posts = []
            for i in range(leads):
                body = text_webhook(text, wamid=f"wamid.{round_}.{i}", sender=_sender(i))
                posts.append(post(services[(i + shift) % processes], body))
                if i % DUPLICATE_EVERY == 0:
                    posts.append(post(services[(i + shift + 1) % processes], body))
            await asyncio.gather(*posts)
            return len(posts)

        async with httpx.AsyncClient(timeout=60) as http:
            meter.start()
            started = time.monotonic()
            deliveries = await deliver(http, "A", "Hi, I'd like solar panels", 0)
            ack_s = time.monotonic() - started
            await _until(lambda: every_lead_got(first_question), phase_deadline_s, "first replies", progress)
            deliveries += await deliver(http, "B", "yes I do", 1)
            await _until(
                lambda: every_lead_got(second_question), phase_deadline_s, "second replies", progress
            )
            await _until(no_jobs_left, phase_deadline_s, "every job completed", progress)
            wall_s = time.monotonic() - started
            meter.stop()

        answered, lost, sent_twice = await _count_outcome(store, graph, leads, second_question)
        assert all(s.proc.poll() is None for s in services), "a service died"
        for service in services:
            service.stop()  # the store logs its transaction statistics as the service stops
        logs = [s.log.read_text("utf-8", "replace") for s in services]
        result = ClusterResult(
            processes=processes,
            leads=leads,
            inbound=2 * leads,
            deliveries=deliveries,
            answered=answered,
            lost=lost,
            sent_twice=sent_twice,
            sends=len(graph.requests),
            ack_s=ack_s,
            wall_s=wall_s,
            job_failures=[log.count("job.failed") for log in logs],
            expired_leases=[log.count("lease_expired") for log in logs],
            cpu_s=meter.cpu_s,
            machine_busy=meter.machine_busy,
            transactions=_transaction_stats(logs),
        )
        assert (lost, sent_twice) == (0, 0), result.line()
        assert not any("job.dead" in log for log in logs), "a job went to the dead letter"
        return result
    finally:
        for service in services:
            service.stop()
        await store.close()
        graph.close()


async def _count_outcome(
    store: FirestoreStore, graph: RecordingServer, leads: int, last: str
) -> tuple[int, int, int]:
    """``(answered, lost, sent_twice)`` (module docstring, step 4): inbound messages answered,
    inbound messages lost (not stored, not processed, or a lead without its last reply) and sends
    of a text a lead had already received. Raises ``AssertionError`` when the records disagree
    with each other (a gap in a conversation's numbering, leads not running the same script)."""
    inbox = await store.query(TENANT, "inbox")
    processed = sum(d.data.get("status") == "processed" for d in inbox)
    lost = 2 * leads - processed
    conversations = [d.data for d in await store.query(TENANT, "conversations")]
    assert len(conversations) == leads, f"{len(conversations)} conversations for {leads} leads"
    assert len({c["lead_id"] for c in conversations}) == leads
    assert len(await store.query(TENANT, "leads")) == leads
    sent = _texts_by_recipient(graph)
    reference: list[str] | None = None
    recorded = 0
    answered = 0
    for conv in conversations:
        messages = [d.data for d in await store.query(TENANT, f"conversations/{conv['id']}/messages")]
        lead_number = int(conv["address"][-7:])
        inbound = [m["provider_message_id"] for m in messages if m["direction"] == "inbound"]
        assert sorted(inbound) == [f"wamid.A.{lead_number}", f"wamid.B.{lead_number}"]
        assert sorted(m["seq"] for m in messages) == list(range(1, len(messages) + 1))
        outbound = [
            m["text"] for m in sorted(messages, key=lambda m: m["seq"]) if m["direction"] == "outbound"
        ]
        recorded += len(outbound)
        got = list(dict.fromkeys(sent.get(conv["address"].lstrip("+"), [])))
        assert got == outbound[: len(got)], f"lead {lead_number}: sent {got}, recorded {outbound}"
        if got[-1:] == [last]:
            answered += 2
        else:
            lost += 1
        assert {m["status"] for m in messages if m["direction"] == "outbound"} == {"sent"}
        reference = reference or outbound
        assert outbound == reference, f"lead {lead_number} ran another script: {outbound}"
    assert reference is not None and reference[-1] == last
    outbox = await store.query(TENANT, "outbox")
    assert len(outbox) == recorded and {d.data["status"] for d in outbox} == {"sent"}
    distinct = sum(len(set(texts)) for texts in sent.values())
    return answered, lost, sum(len(texts) for texts in sent.values()) - distinct
