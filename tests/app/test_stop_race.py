"""A STOP sent while sends are queued: nothing leaves after it, whatever runs first.

The lead's STOP is stored (webhook answered 200) while the conversation's first touch is still in
the outbox (an approved WhatsApp template, or free text on SMS-like channels). The dispatcher and
the STOP's turn may then run in any order; every interleaving must end with zero sends after the
STOP was accepted, the queued messages blocked with the reason, and the opt-out in the ledger.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.jobs.queue import Job, RetryLater
from app.store import where
from app.store.collections import JOBS, OUTBOX
from app.store.ids import compound_id
from tests.app.conftest import ADMIN_KEY, INTRO_TEMPLATE, sign, text_webhook
from tests.support.recording import RecordingServer

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
LEAD = "33612345678"
STEPS = ("dispatch", "stop_turn", "dispatch")


async def _run(rt: Runtime, kind: str, key: str) -> None:
    doc = await rt.store.get("demo", JOBS, compound_id(kind, key))
    if doc is None:
        return
    job = Job.from_doc(doc)
    handler = rt.worker.handlers[kind]
    with contextlib.suppress(RetryLater):  # deferred (a newer message is pending): it stays queued
        await handler(job)


@pytest.mark.parametrize("order", sorted(set(itertools.permutations(STEPS))))
@pytest.mark.parametrize("templated", [True, False], ids=["template", "free_text"])
async def test_nothing_leaves_after_a_stop(
    client: AsyncTestClient[Litestar],
    runtime: Runtime,
    graph: RecordingServer,
    order: tuple[str, ...],
    templated: bool,
) -> None:
    profile = await runtime.tenants.profile("demo")
    await runtime.tenants.save_profile(
        profile.model_copy(update={"whatsapp_templates": {"default": INTRO_TEMPLATE} if templated else {}})
    )
    if templated:  # a business-initiated conversation: the first touch is the approved template
        created = await client.post(
            "/api/v1/leads",
            headers=AUTH,
            json={"name": "Alex", "phone": "+" + LEAD, "channel": "whatsapp", "language": "en"},
        )
        assert created.status_code == 201, created.text
        conversation_id = created.json()["conversation_id"]
        await _run(runtime, "start", conversation_id)
    else:  # the lead wrote first: the bot's answer is free text in the window
        body = text_webhook("Hi, solar panels please", wamid="wamid.FIRST", sender=LEAD)
        assert (
            await client.post("/api/webhooks/whatsapp", content=body, headers=sign(body))
        ).status_code == 200
        await runtime.ingest.consume("demo")  # the ingest job: the log into the inbox
        await _run(runtime, "inbound", f"whatsapp:+{LEAD}")
        conversation_id = (await runtime.store.query("demo", "conversations"))[0].id
    queued = await runtime.store.query(
        "demo",
        OUTBOX,
        filters=[where("conversation_id", "==", conversation_id), where("status", "==", "pending")],
    )
    assert queued, "the first touch waits in the outbox"
    stop = text_webhook("STOP", wamid="wamid.STOP", sender=LEAD, timestamp=1_763_000_100)
    assert (await client.post("/api/webhooks/whatsapp", content=stop, headers=sign(stop))).status_code == 200
    sends_before = len([r for r in graph.requests if r.method == "POST"])
    for step in order:
        if step == "dispatch":
            await _run(runtime, "dispatch", conversation_id)
        else:
            await _run(runtime, "inbound", f"whatsapp:+{LEAD}")
    await runtime.worker.drain()
    sends_after = [r for r in graph.requests if r.method == "POST"][sends_before:]
    assert sends_after == [], [r.body for r in sends_after]
    outbox: list[dict[str, Any]] = [
        d.data
        for d in await runtime.store.query(
            "demo", OUTBOX, filters=[where("conversation_id", "==", conversation_id)]
        )
    ]
    assert outbox and all(o["status"] == "blocked" for o in outbox), outbox
    opted_out, _ = await runtime.optouts.blocks(
        "demo", channel="whatsapp", address="+" + LEAD, lead_addresses={}, all_channels=False
    )
    assert opted_out


async def test_a_stop_turn_committing_between_the_gates_reads_still_blocks(
    client: AsyncTestClient[Litestar],
    runtime: Runtime,
    graph: RecordingServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The interleaving the permutations above reach only by chance: the STOP's turn commits (inbox
    item processed, opt-out recorded, one transaction) while the dispatcher's gate is between its
    reads. The gate reads "newer message pending" before the opt-out ledger, so the message is
    blocked, never sent."""
    body = text_webhook("Hi, solar panels please", wamid="wamid.FIRST", sender=LEAD)
    assert (await client.post("/api/webhooks/whatsapp", content=body, headers=sign(body))).status_code == 200
    await runtime.ingest.consume("demo")
    await _run(runtime, "inbound", f"whatsapp:+{LEAD}")
    conversation_id = (await runtime.store.query("demo", "conversations"))[0].id
    stop = text_webhook("STOP", wamid="wamid.STOP", sender=LEAD, timestamp=1_763_000_100)
    assert (await client.post("/api/webhooks/whatsapp", content=stop, headers=sign(stop))).status_code == 200
    await runtime.ingest.consume("demo")  # the STOP is a pending inbox item
    gate = runtime.dispatcher.gate
    original = gate._newer_inbound_pending

    async def turn_commits_first(tenant_id: str, conv: Any) -> bool:
        await _run(runtime, "inbound", f"whatsapp:+{LEAD}")  # the STOP's turn, to its commit
        return await original(tenant_id, conv)

    monkeypatch.setattr(gate, "_newer_inbound_pending", turn_commits_first)
    original_batch = gate._lead_and_newer_pending  # the same read, with the lead (first item)

    async def turn_commits_first_batch(tenant_id: str, lead_id: str, conv: Any) -> Any:
        await _run(runtime, "inbound", f"whatsapp:+{LEAD}")
        return await original_batch(tenant_id, lead_id, conv)

    monkeypatch.setattr(gate, "_lead_and_newer_pending", turn_commits_first_batch)
    sends_before = len([r for r in graph.requests if r.method == "POST"])
    await _run(runtime, "dispatch", conversation_id)
    assert [r for r in graph.requests if r.method == "POST"][sends_before:] == []
    outbox = await runtime.store.query(
        "demo", OUTBOX, filters=[where("conversation_id", "==", conversation_id)]
    )
    assert outbox and all(o.data["status"] == "blocked" for o in outbox), [o.data for o in outbox]
