"""The outbound policy end to end, on a manual clock: compliance keywords, quiet hours, bursts,
stale replies and channel fallback. Every decision is visible on the conversation's messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.composition import Runtime
from app.store import where
from app.tenancy.bootstrap import bootstrap
from channels.base import InboundMessage
from kernel.clock import ManualClock
from tests.app.conftest import make_settings, sent_texts
from tests.support.recording import RecordingServer

PARIS = ZoneInfo("Europe/Paris")
MONDAY_2PM = datetime(2026, 11, 23, 14, 0, tzinfo=PARIS).timestamp()
MONDAY_11PM = datetime(2026, 11, 23, 23, 0, tzinfo=PARIS).timestamp()
TUESDAY_8AM = datetime(2026, 11, 24, 8, 0, tzinfo=PARIS).timestamp()
LEAD = "+33612345678"


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(MONDAY_2PM)


@pytest.fixture
async def rt(tmp_path: Path, graph: RecordingServer, clock: ManualClock) -> AsyncIterator[Runtime]:
    runtime = Runtime.build(
        make_settings(tmp_path / "data", graph.base_url, burst_window_seconds=3.0), clock=clock
    )
    await bootstrap(runtime)
    yield runtime
    await runtime.channels.aclose()
    await runtime.store.close()


def wa(text: str, wamid: str, sender: str = LEAD) -> InboundMessage:
    return InboundMessage(
        channel="whatsapp",
        provider_message_id=wamid,
        sender=sender,
        recipient="106540352242922",
        text=text,
        contact_name="Camille",
    )


async def messages(rt: Runtime, direction: str | None = None) -> list[dict[str, Any]]:
    [conv] = await rt.store.query("demo", "conversations")
    filters = [where("direction", "==", direction)] if direction else []
    docs = await rt.store.query("demo", f"conversations/{conv.id}/messages", filters=filters)
    return sorted((d.data for d in docs), key=lambda m: m["seq"])


async def start_conversation(
    rt: Runtime,
    clock: ManualClock,
    *,
    channel: str,
    address: str,
    playbook_id: str = "solar-qualification-en",
    **lead_fields: Any,
) -> None:
    """Store a lead and a conversation as the API would, start the playbook, run the worker."""
    from app.conversations.records import Conversation, Lead

    lead = Lead(id="ld_test", tenant_id="demo", created_at=clock.now(), **lead_fields)
    conv = Conversation(
        id="cv_test",
        tenant_id="demo",
        lead_id=lead.id,
        channel=channel,
        address=address,
        playbook_id=playbook_id,
        playbook_version=1,
        created_at=clock.now(),
    )
    await rt.store.set("demo", "leads", lead.id, lead.to_doc())
    await rt.store.set("demo", "conversations", conv.id, conv.to_doc())
    await rt.jobs.enqueue("demo", "start", conv.id)
    await rt.worker.drain()


async def say(rt: Runtime, clock: ManualClock, text: str, wamid: str) -> None:
    await rt.accept("demo", wa(text, wamid))
    clock.advance(3.5)  # past the burst window
    await rt.worker.drain()


async def test_stop_blocks_everything_after_it_and_start_reopens(
    rt: Runtime, clock: ManualClock, graph: RecordingServer
) -> None:
    await say(rt, clock, "Hi, solar panels please", "w1")
    assert len(sent_texts(graph)) == 2
    await say(rt, clock, "Arrêt", "w2")
    assert len(sent_texts(graph)) == 2  # no reply to STOP
    entry = await rt.optouts.get("demo", "whatsapp", LEAD)
    assert entry is not None and entry["opted_out"] and entry["history"][-1]["source"] == "keyword:Arrêt"
    [conv] = [d.data for d in await rt.store.query("demo", "conversations")]
    assert (conv["status"], conv["outcome"]) == ("closed", "opted_out")
    await say(rt, clock, "How much does it cost?", "w3")
    assert len(sent_texts(graph)) == 2  # still nothing: every later message is blocked
    blocked = [m for m in await messages(rt, "outbound") if m["status"] == "blocked"]
    assert blocked and all(m["decision"]["reason"] == "opted_out" for m in blocked)
    await say(rt, clock, "START", "w4")
    assert "again" in sent_texts(graph)[-1]
    await say(rt, clock, "help", "w5")
    assert "STOP" in sent_texts(graph)[-1]


async def test_first_touch_waits_for_the_end_of_quiet_hours(rt: Runtime, clock: ManualClock) -> None:
    clock.set(MONDAY_11PM)
    await start_conversation(
        rt,
        clock,
        channel="webchat",
        address="wc_quiet_lead_1",
        name="Léa",
        webchat_id="wc_quiet_lead_1",
        timezone="Europe/Paris",
    )
    pending = await messages(rt, "outbound")
    assert pending and {m["status"] for m in pending} == {"queued"}
    outbox = sorted((d.data for d in await rt.store.query("demo", "outbox")), key=lambda o: o["seq"])
    # The first message holds the queue (order is kept); it says why and until when.
    assert outbox[0]["decision"]["reason"] == "quiet_hours"
    assert outbox[0]["decision"]["until"] == TUESDAY_8AM
    clock.set(TUESDAY_8AM - 60)
    await rt.worker.drain()
    assert {m["status"] for m in await messages(rt, "outbound")} == {"queued"}
    clock.set(TUESDAY_8AM + 1)
    await rt.worker.drain()
    assert {m["status"] for m in await messages(rt, "outbound")} == {"sent"}


async def test_five_messages_within_two_seconds_get_one_reply(
    rt: Runtime, clock: ManualClock, graph: RecordingServer
) -> None:
    for i, text in enumerate(["Hi", "I saw your ad", "about solar panels", "for my house", "thanks!"]):
        await rt.accept("demo", wa(text, f"burst-{i}"))
        clock.advance(0.5)
        await rt.worker.drain()  # the burst window has not passed: nothing is processed yet
        assert graph.requests == []
    clock.advance(3.0)
    await rt.worker.drain()
    inbound = await messages(rt, "inbound")
    outbound = await messages(rt, "outbound")
    assert [m["text"] for m in inbound] == [
        "Hi",
        "I saw your ad",
        "about solar panels",
        "for my house",
        "thanks!",
    ]
    assert len(outbound) == 2  # one reply (greeting + first question), not five
    assert len(sent_texts(graph)) == 2


async def test_a_reply_made_stale_by_a_newer_message_is_dropped_not_sent(
    rt: Runtime, clock: ManualClock, graph: RecordingServer
) -> None:
    await rt.accept("demo", wa("Hi, I want solar", "s1"))
    clock.advance(3.5)
    [job] = await rt.jobs.lease_due()
    await rt.conversations.handle_inbound(job)  # the turn is committed, its reply not sent yet
    await rt.jobs.complete(job)
    clock.advance(0.5)
    await rt.accept("demo", wa("yes I own my home", "s2"))
    clock.advance(3.5)
    await rt.worker.drain()  # the first reply waits while the newer message is pending...
    clock.advance(1.5)
    await rt.worker.drain()  # ...and is then found stale
    outbound = await messages(rt, "outbound")
    stale = [m for m in outbound if m["status"] == "stale"]
    sent = [m for m in outbound if m["status"] == "sent"]
    assert len(stale) == 2 and all(m["decision"]["reason"] == "newer_inbound_message" for m in stale)
    assert sent and sent_texts(graph) == [m["text"] for m in sent]


async def test_blocked_whatsapp_falls_back_to_another_channel(
    rt: Runtime, clock: ManualClock, graph: RecordingServer
) -> None:
    profile = await rt.tenants.profile("demo")
    await rt.tenants.save_profile(profile.model_copy(update={"fallback_channels": ["webchat"]}))
    await start_conversation(
        rt, clock, channel="whatsapp", address=LEAD, name="Max", phone=LEAD, webchat_id="wc_fallback_1"
    )
    assert graph.requests == []  # nothing went to WhatsApp: its window is closed and no template is set
    outbound = await messages(rt, "outbound")
    assert {m["status"] for m in outbound} == {"sent"}
    assert {m["channel"] for m in outbound} == {"webchat"}
    assert {m["decision"]["rerouted_because"] for m in outbound} == {
        "outside_customer_service_window_no_template"
    }


CUSTOM = """
id: channel-demo
name: Channel demo
version: 1
language: en
fallback_channels: [webchat]
steps:
  - id: hello
    type: message
    text: "Hello {{ lead.first_name }}!"
    whatsapp_template: {name: lead_hello, language: en, parameters: ["{{ lead.first_name }}"]}
  - id: details
    type: message
    channel: webchat
    text: "Here are the details on the web chat."
  - id: bye
    type: end
    outcome: completed
"""


async def _start_custom(rt: Runtime, clock: ManualClock, *, webchat: str | None) -> None:
    await rt.playbooks.save("demo", CUSTOM)
    await start_conversation(
        rt,
        clock,
        channel="whatsapp",
        address=LEAD,
        playbook_id="channel-demo",
        name="Ines Roy",
        phone=LEAD,
        webchat_id=webchat,
    )


async def test_a_step_sends_its_own_template_and_targets_another_channel(
    rt: Runtime, clock: ManualClock, graph: RecordingServer
) -> None:
    await _start_custom(rt, clock, webchat="wc_channel_demo")
    [request] = graph.requests  # WhatsApp got exactly the step's template
    assert request.body["template"]["name"] == "lead_hello"
    assert request.body["template"]["components"][0]["parameters"] == [{"type": "text", "text": "Ines"}]
    outbound = await messages(rt, "outbound")
    assert [(m["channel"], m["status"]) for m in outbound] == [("whatsapp", "sent"), ("webchat", "sent")]


async def test_the_playbooks_fallback_channel_is_used_when_whatsapp_is_blocked(
    rt: Runtime, clock: ManualClock, graph: RecordingServer
) -> None:
    await rt.optouts.record("demo", channel="whatsapp", address=LEAD, source="test")
    profile = await rt.tenants.profile("demo")
    await rt.tenants.save_profile(profile.model_copy(update={"optout_all_channels": False}))
    await _start_custom(rt, clock, webchat="wc_channel_demo")
    assert graph.requests == []
    outbound = await messages(rt, "outbound")
    assert {(m["channel"], m["status"]) for m in outbound} == {("webchat", "sent")}
    assert outbound[0]["decision"]["rerouted_because"] == "opted_out"


async def test_an_opt_out_on_one_channel_covers_all_when_the_tenant_says_so(
    rt: Runtime, clock: ManualClock, graph: RecordingServer
) -> None:
    await rt.optouts.record("demo", channel="whatsapp", address=LEAD, source="test")
    await _start_custom(rt, clock, webchat="wc_channel_demo")  # optout_all_channels is the default
    outbound = await messages(rt, "outbound")
    assert {m["status"] for m in outbound} == {"blocked"}
    assert graph.requests == []


async def test_a_provider_unsubscribed_error_lands_in_the_ledger(
    tmp_path: Path, graph: RecordingServer
) -> None:
    from tests.support.recording import Reply

    runtime = Runtime.build(make_settings(tmp_path / "d2", graph.base_url))
    await bootstrap(runtime)
    graph.replies.append(
        Reply(
            status=400,
            body={"error": {"code": 131050, "message": "User stopped marketing", "type": "OAuthException"}},
        )
    )
    await runtime.accept("demo", wa("Hi, solar please", "u1"))
    await runtime.worker.drain()
    assert await runtime.optouts.is_opted_out("demo", "whatsapp", LEAD)
    await runtime.store.close()
