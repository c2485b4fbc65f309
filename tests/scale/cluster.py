"""N ``leadwarm serve`` processes on one Firestore emulator, many concurrent conversations of one tenant.

Used by ``tests/scale/test_processes.py`` (small, seconds) and ``benchmarks/firestore_scale.py``
(1,000 conversations, one process against four). One run:

1. wipe the emulator, start ``processes`` services (WhatsApp pointed at a recording server on
   127.0.0.1 that answers every send with a fresh message id, as Meta does);
2. round A: every lead writes its first message; deliveries go round-robin over the processes and
   every fifth is delivered again to the next process (a provider retry landing on another
   instance); wait until every lead got the first question;
3. round B: every lead answers; wait until every lead got the second question and no job is left;
4. check that nothing was lost and nothing sent twice: every inbound message stored once and
   processed, one conversation per lead, each lead received exactly the outbound messages its
   conversation records, once each, in order, and every lead ran the same script.

The figure: distinct inbound messages handled per second of wall time, from the first delivery of
round A to the last job completed.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.store.firestore import FirestoreStore
from playbooks import load_library
from tests.app.conftest import ADMIN_KEY, APP_SECRET, PHONE_ID, VERIFY_TOKEN, sign, text_webhook
from tests.conftest import EMULATOR_PROJECT
from tests.support.firestore_emulator import FirestoreEmulator
from tests.support.recording import RecordingServer
from tests.support.service import Service, service_env

__all__ = ["ClusterResult", "run_cluster"]

TENANT = "demo"
DUPLICATE_EVERY = 5
_EN = load_library()["solar-qualification-en"]


def _question(step_id: str) -> str:
    step = next(s for s in _EN.steps if s.id == step_id)
    value = getattr(step, "question")  # noqa: B009 - only ask steps have one
    return value if isinstance(value, str) else str(value["en"])


@dataclass(frozen=True, slots=True)
class ClusterResult:
    """What one run did: ``inbound`` distinct messages (``deliveries`` with the duplicates),
    ``sends`` WhatsApp API calls, ``wall_s`` seconds from the first delivery to the last job, and
    per-process log counts of failed jobs and expired leases."""

    processes: int
    leads: int
    inbound: int
    deliveries: int
    sends: int
    ack_s: float
    wall_s: float
    job_failures: list[int]
    expired_leases: list[int]

    @property
    def messages_per_s(self) -> float:
        """Distinct inbound messages handled per second of wall time."""
        return self.inbound / self.wall_s

    def line(self) -> str:
        """One printable line."""
        return (
            f"{self.processes} process(es), {self.leads} conversations: {self.inbound} inbound "
            f"({self.deliveries} deliveries), {self.sends} sends in {self.wall_s:.1f} s = "
            f"{self.messages_per_s:.1f} inbound messages/s, {self.sends / self.wall_s:.1f} sends/s; "
            f"round A acked in {self.ack_s:.1f} s; job failures {self.job_failures}, "
            f"expired leases {self.expired_leases}"
        )


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
    graph: RecordingServer,
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
    graph.requests.clear()
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
        WORKER_CONCURRENCY=str(worker_concurrency),
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

        await _check_exactly_once(store, graph, leads, second_question)
        assert all(s.proc.poll() is None for s in services), "a service died"
        logs = [s.log.read_text("utf-8", "replace") for s in services]
        assert not any("job.dead" in log for log in logs), "a job went to the dead letter"
        return ClusterResult(
            processes=processes,
            leads=leads,
            inbound=2 * leads,
            deliveries=deliveries,
            sends=len(graph.requests),
            ack_s=ack_s,
            wall_s=wall_s,
            job_failures=[log.count("job.failed") for log in logs],
            expired_leases=[log.count("lease_expired") for log in logs],
        )
    finally:
        for service in services:
            service.stop()
        await store.close()


async def _check_exactly_once(store: FirestoreStore, graph: RecordingServer, leads: int, last: str) -> None:
    """Nothing lost, nothing sent twice (module docstring, step 4)."""
    inbox = await store.query(TENANT, "inbox")
    assert len(inbox) == 2 * leads, f"{len(inbox)} inbox items for {2 * leads} messages"
    assert {d.data["status"] for d in inbox} == {"processed"}
    conversations = [d.data for d in await store.query(TENANT, "conversations")]
    assert len(conversations) == leads
    assert len({c["lead_id"] for c in conversations}) == leads
    assert len(await store.query(TENANT, "leads")) == leads
    sent = _texts_by_recipient(graph)
    reference: list[str] | None = None
    for conv in conversations:
        messages = [d.data for d in await store.query(TENANT, f"conversations/{conv['id']}/messages")]
        lead_number = int(conv["address"][-7:])
        inbound = [m["provider_message_id"] for m in messages if m["direction"] == "inbound"]
        assert sorted(inbound) == [f"wamid.A.{lead_number}", f"wamid.B.{lead_number}"]
        outbound = [
            m["text"] for m in sorted(messages, key=lambda m: m["seq"]) if m["direction"] == "outbound"
        ]
        assert sent[conv["address"].lstrip("+")] == outbound, (
            f"lead {lead_number}: sent {sent.get(conv['address'].lstrip('+'))}"
        )
        assert {m["status"] for m in messages if m["direction"] == "outbound"} == {"sent"}
        reference = reference or outbound
        assert outbound == reference
    assert reference is not None and reference[-1] == last
    assert len(graph.requests) == leads * len(reference), "a message was sent twice"
