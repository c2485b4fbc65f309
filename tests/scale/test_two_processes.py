"""Two ``leadwarm serve`` processes against one Firestore (Google's emulator), one tenant, 200 leads
writing at once: every inbound message is processed exactly once, every lead gets its replies once,
and no job is left behind.

Each lead sends a first message and, once answered, a second one. Deliveries alternate between the
two processes and every fifth is delivered again to the other process (a provider retry landing on
another instance). WhatsApp is a recording server on 127.0.0.1 that answers every send with a
fresh message id, as Meta does.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from app.store import Store
from app.store.firestore import FirestoreStore
from playbooks import load_library
from tests.app.conftest import ADMIN_KEY, APP_SECRET, PHONE_ID, VERIFY_TOKEN, sign, text_webhook
from tests.conftest import EMULATOR_PROJECT
from tests.support.firestore_emulator import FirestoreEmulator
from tests.support.recording import RecordingServer
from tests.support.service import Service, service_env

pytestmark = pytest.mark.timeout(290)

TENANT = "demo"
LEADS = 200
DUPLICATE_EVERY = 5
#: Bounds on each phase (generous: the emulator resolves contended transactions by a ~2 s lock wait).
PHASE_DEADLINE_S = 100.0
EN = load_library()["solar-qualification-en"]


def _question(step_id: str) -> str:
    step = next(s for s in EN.steps if s.id == step_id)
    value = getattr(step, "question")  # noqa: B009 - only ask steps have one
    return value if isinstance(value, str) else str(value["en"])


def _env(emulator: FirestoreEmulator, graph_url: str, data_dir: Path) -> dict[str, str]:
    store = {
        "store": "firestore",
        "firebase_project_id": EMULATOR_PROJECT,
        "firestore_emulator_host": emulator.host_port,
    }
    whatsapp = {
        "whatsapp_token": "test-token",
        "whatsapp_phone_id": PHONE_ID,
        "whatsapp_app_secret": APP_SECRET,
        "webhook_verify_token": VERIFY_TOKEN,
    }
    return service_env(
        data_dir=data_dir,
        graph_url=graph_url,
        store=store,
        admin_key=ADMIN_KEY,
        whatsapp=whatsapp,
        JOB_LEASE_SECONDS="30",
    )


def _sender(i: int) -> str:
    return f"3361{i:07d}"


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
) -> float:
    """Poll ``predicate`` until true; returns the seconds it took. Fails after ``deadline_s``, saying
    how far it got."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if await predicate():
            return time.monotonic() - start
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {deadline_s} s: {what} ({progress()})")


async def _deliver(
    http: httpx.AsyncClient, services: list[Service], round_: str, text: str, limit: asyncio.Semaphore
) -> int:
    """POST every lead's message of this round, alternating processes, duplicating every fifth."""

    async def post(base: str, body: bytes) -> None:
        async with limit:
            response = await http.post(f"{base}/api/webhooks/whatsapp", content=body, headers=sign(body))
        assert response.status_code == 200, response.text

    posts = []
    for i in range(LEADS):
        body = text_webhook(text, wamid=f"wamid.{round_}.{i}", sender=_sender(i))
        first, other = services[i % 2], services[(i + 1) % 2]
        posts.append(post(first.base, body))
        if i % DUPLICATE_EVERY == 0:
            posts.append(post(other.base, body))
    await asyncio.gather(*posts)
    return len(posts)


async def test_two_processes_share_200_conversations_exactly_once(
    firestore_emulator: FirestoreEmulator, graph: RecordingServer, tmp_path: Path
) -> None:
    firestore_emulator.reset()
    env = _env(firestore_emulator, graph.base_url, tmp_path / "data")
    services: list[Service] = []
    store: Store = FirestoreStore(project_id=EMULATOR_PROJECT, emulator_host=firestore_emulator.host_port)
    try:
        services.append(Service.start(env, tmp_path / "a.log"))
        services.append(Service.start(env, tmp_path / "b.log"))
        limit = asyncio.Semaphore(32)
        first_question, second_question = _question("homeowner"), _question("bill")

        async def every_lead_got(text: str) -> bool:
            texts = _texts_by_recipient(graph)
            return all(text in texts.get(_sender(i), ()) for i in range(LEADS))

        async def no_jobs_left() -> bool:
            return not await store.query(TENANT, "jobs")

        def progress() -> str:
            texts = _texts_by_recipient(graph)
            answered = [
                sum(q in texts.get(_sender(i), ()) for i in range(LEADS))
                for q in (first_question, second_question)
            ]
            failures = [s.log.read_text("utf-8", "replace").count("job.failed") for s in services]
            return f"leads answered per round: {answered}, sends: {len(graph.requests)}, job failures logged: {failures}"

        async with httpx.AsyncClient(timeout=30) as http:
            started = time.monotonic()
            posted = await _deliver(http, services, "A", "Hi, I'd like solar panels", limit)
            ack_s = time.monotonic() - started
            await _until(lambda: every_lead_got(first_question), PHASE_DEADLINE_S, "first replies", progress)
            posted += await _deliver(http, services[::-1], "B", "yes I do", limit)
            await _until(
                lambda: every_lead_got(second_question), PHASE_DEADLINE_S, "second replies", progress
            )
            await _until(no_jobs_left, PHASE_DEADLINE_S, "every job completed", progress)
            wall_s = time.monotonic() - started

        # -- every inbound message stored once and processed once
        inbox = await store.query(TENANT, "inbox")
        assert len(inbox) == 2 * LEADS
        assert {d.data["status"] for d in inbox} == {"processed"}
        conversations = [d.data for d in await store.query(TENANT, "conversations")]
        assert len(conversations) == LEADS
        assert len({c["lead_id"] for c in conversations}) == LEADS
        assert len(await store.query(TENANT, "leads")) == LEADS
        sent = _texts_by_recipient(graph)
        reference: list[str] | None = None
        for conv in conversations:
            messages = [d.data for d in await store.query(TENANT, f"conversations/{conv['id']}/messages")]
            lead_number = int(conv["address"][-7:])
            inbound = [m["provider_message_id"] for m in messages if m["direction"] == "inbound"]
            assert sorted(inbound) == [f"wamid.A.{lead_number}", f"wamid.B.{lead_number}"]
            assert sorted(m["seq"] for m in messages) == list(range(1, len(messages) + 1))
            outbound = [
                m["text"] for m in sorted(messages, key=lambda m: m["seq"]) if m["direction"] == "outbound"
            ]
            # -- the lead got exactly what the conversation says it was sent, once each, in order
            assert sent[conv["address"].lstrip("+")] == outbound
            assert {m["status"] for m in messages if m["direction"] == "outbound"} == {"sent"}
            reference = reference or outbound
            assert outbound == reference  # every lead ran the same script
        assert reference is not None and reference[-1] == second_question
        assert len(graph.requests) == LEADS * len(reference)
        outbox = await store.query(TENANT, "outbox")
        assert len(outbox) == LEADS * len(reference)
        assert {d.data["status"] for d in outbox} == {"sent"}
        # -- both processes did work, and no job went to the dead letter
        assert all(s.proc.poll() is None for s in services)
        logs = [s.log.read_text("utf-8", "replace") for s in services]
        assert not any("job.dead" in log for log in logs)

        inbound_total = 2 * LEADS
        print(
            f"\n[scale] {LEADS} leads, {posted} webhook deliveries ({inbound_total} distinct), "
            f"{len(graph.requests)} sends; first round acked in {ack_s:.1f} s; "
            f"all done in {wall_s:.1f} s = {inbound_total / wall_s:.1f} inbound messages/s, "
            f"{len(graph.requests) / wall_s:.1f} sends/s; "
            f"job failures logged: {[log.count('job.failed') for log in logs]}, "
            f"expired leases: {[log.count('lease_expired') for log in logs]}"
        )
    finally:
        for service in services:
            service.stop()
        await store.close()
