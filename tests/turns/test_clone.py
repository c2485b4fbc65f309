"""kernel.clone gives what ``model_copy(deep=True)`` gives, faster, and shares nothing mutable."""

from __future__ import annotations

import datetime as dt

from app.conversations.planning import plan_turn
from app.conversations.records import Conversation, ConversationEvent, Lead
from app.messaging.records import InboxItem
from kernel.clone import clone, clone_model
from playbooks.runtime import (
    ConversationState,
    EngineResult,
    ScoreChanged,
    SendMessage,
    SlotFilled,
    Timer,
)


def test_clone_model_equals_a_deep_copy_and_shares_nothing_mutable() -> None:
    state = ConversationState(
        playbook_id="p",
        playbook_version=2,
        slots={"roof": {"value": "flat", "at": [1, 2, {"x": None}]}, "n": 3},
        timer=Timer(id="t1", due_at=10.0, step_id="w"),
        lead={"name": "Ann"},
        booking={"offered": [{"start": 1.0}]},
    )
    copy = clone_model(state)
    assert copy == state.model_copy(deep=True)
    assert copy.model_fields_set == state.model_fields_set
    copy.slots["roof"]["at"][2]["x"] = 1
    copy.booking["offered"].append({"start": 2.0})
    assert copy.timer is not None and state.timer is not None and copy.timer is not state.timer
    assert state.slots["roof"]["at"][2] == {"x": None} and len(state.booking["offered"]) == 1
    copy.timer.due_at = 99.0
    assert state.timer.due_at == 10.0


def test_clone_model_of_records_and_other_values() -> None:
    lead = Lead(id="ld_1", tenant_id="t", slots={"a": [1]}, consent={"sms": True})
    conv = Conversation(
        id="cv_1",
        tenant_id="t",
        lead_id="ld_1",
        channel="sms",
        address="+1",
        playbook_id="p",
        playbook_version=1,
    )
    for record in (lead, conv):
        assert clone_model(record) == record.model_copy(deep=True)
    when = {"at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "tags": ("a", "b"), "s": {1}}
    copied = clone(when)
    assert copied == when and copied["s"] is not when["s"]


def test_shallow_fields_get_a_new_container_holding_the_same_items() -> None:
    events = [ConversationEvent(at=1.0, type="slot_filled", detail={"slot": "roof"})]
    conv = Conversation(
        id="cv_1",
        tenant_id="t",
        lead_id="ld_1",
        channel="sms",
        address="+1",
        playbook_id="p",
        playbook_version=1,
        state={"slots": {"roof": "flat"}},
        timer={"id": "t1"},
        events=events,
    )
    copy = clone_model(conv, shallow={"events", "state"})
    assert copy == conv.model_copy(deep=True)
    assert copy.events is not conv.events and copy.events[0] is conv.events[0]
    assert copy.state is not conv.state and copy.state["slots"] is conv.state["slots"]
    assert copy.timer is not conv.timer  # the others deep as ever
    copy.events.append(ConversationEvent(at=2.0, type="ended"))
    copy.state["status"] = "ended"
    assert len(conv.events) == 1 and "status" not in conv.state


def test_a_turn_plan_leaves_the_conversation_as_read_unchanged() -> None:
    conv = Conversation(
        id="cv_1",
        tenant_id="t",
        lead_id="ld_1",
        channel="sms",
        address="+1",
        playbook_id="p",
        playbook_version=1,
        state=ConversationState(playbook_id="p", playbook_version=1, slots={"a": 1}).model_dump(mode="json"),
        events=[ConversationEvent(at=float(i), type="slot_filled", detail={"slot": "a"}) for i in range(3)],
        last_inbound_by_channel={"sms": 1.0},
    )
    lead = Lead(id="ld_1", tenant_id="t", slots={"a": 1})
    before = conv.model_copy(deep=True)
    state = ConversationState(playbook_id="p", playbook_version=1, slots={"a": 1, "b": 2}, score=10)
    result = EngineResult(
        state=state,
        actions=[
            SlotFilled(slot="b", value=2, source="answer"),
            ScoreChanged(points=10, reason="b", score=10),
            SendMessage(text="Next?", purpose="step"),
        ],
    )
    inbox = InboxItem(
        id="sms:m1",
        channel="sms",
        address_key="sms:+1",
        sender="+1",
        recipient="+2",
        provider_message_id="m1",
        text="2",
        seq=5.0,
        received_at=5.0,
    )
    plan = plan_turn(conv, lead, result, 10.0, inbound=[inbox])
    assert conv == before and lead.slots == {"a": 1}  # nothing of the conversation as read changed
    assert plan.conversation.events[:3] == before.events
    assert [e.type for e in plan.conversation.events[3:]] == ["slot_filled", "score_changed"]
    assert plan.conversation.state == state.model_dump(mode="json")
    assert plan.conversation.last_inbound_by_channel == {"sms": 5.0}
    assert [m.direction for m in plan.messages] == ["inbound", "outbound"]
