"""kernel.clone gives what ``model_copy(deep=True)`` gives, faster, and shares nothing mutable."""

from __future__ import annotations

import datetime as dt

from app.conversations.records import Conversation, Lead
from kernel.clone import clone, clone_model
from playbooks.runtime import ConversationState, Timer


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
