"""The built-in scorer's reasons carry a code and parameters (app/conversations/score_reasons.py): the
scorer hands them on with its English, the engine's action carries them, a turn stores them with its
score event as they came (nothing is read back from English), an author's own reason gets none, and
an event stored before codes existed is read with one."""

from __future__ import annotations

import pytest

from app.conversations import score_reasons
from app.conversations.planning import plan_turn
from app.conversations.records import Conversation, Lead
from app.conversations.scoring import reconcile, score_from_engagement, score_from_signals
from playbooks.runtime import ConversationState, EngineResult, ScoreChanged

LEAD = "we have about 15k set aside and I decide"


def test_every_scorer_reason_reads_back_to_its_code_and_parameters() -> None:
    signals = {"budget": {"level": "high", "evidence": "15k set aside"}}
    deltas = [
        *score_from_signals(signals, evidence_text=LEAD),
        *score_from_engagement(reply_seconds=42.4, inbound_count=6),
    ]
    found = [score_reasons.parse(d.reason, d.evidence) for d in deltas]
    assert found == [
        ("signal", {"signal": "budget", "level": "high", "quote": "15k set aside"}),
        ("engagement.fast_reply", {"minutes": 5, "seconds": 42}),
        ("engagement.messages", {"min": 5, "count": 6}),
    ]
    for delta, (code, params) in zip(deltas, found, strict=True):
        assert score_reasons.english(code, params) == (delta.reason, delta.evidence)


def test_the_scorer_hands_its_code_and_parameters_on_with_its_english() -> None:
    signals = {"budget": {"level": "high", "evidence": "15k set aside"}}
    deltas = [
        *score_from_signals(signals, evidence_text=LEAD),
        *score_from_engagement(reply_seconds=42.4, inbound_count=6),
    ]
    assert [(d.code, dict(d.params)) for d in deltas] == [
        score_reasons.parse(d.reason, d.evidence) for d in deltas
    ]
    low = score_from_signals({"budget": {"level": "low", "evidence": "15k"}}, evidence_text=LEAD)
    (change,) = reconcile(deltas[:1], {"signal:budget": low[0].points})
    assert change.code == "signal" and change.params["was"] == 2 and "was" not in deltas[0].params


def _planned_score_event(action: ScoreChanged) -> dict[str, object]:
    conv = Conversation(
        id="cv_1",
        tenant_id="t",
        lead_id="ld_1",
        channel="sms",
        address="+1",
        playbook_id="p",
        playbook_version=1,
    )
    state = ConversationState(playbook_id="p", playbook_version=1, score=action.score)
    plan = plan_turn(conv, Lead(id="ld_1", tenant_id="t"), EngineResult(state=state, actions=[action]), 10.0)
    (event,) = [e for e in plan.conversation.events if e.type == "score_changed"]
    return event.detail


def test_a_turn_stores_the_code_its_action_carries_without_reading_the_english() -> None:
    coded = ScoreChanged(
        points=15,
        reason="Budget : élevé",  # not the scorer's English: no reading back could find the code
        score=15,
        reason_code="signal",
        reason_params={"signal": "budget", "level": "high", "quote": "15k"},
    )
    detail = _planned_score_event(coded)
    assert detail["reason_code"] == "signal"
    assert detail["reason_params"] == {"signal": "budget", "level": "high", "quote": "15k"}
    # an action without a code is an author's reason: stored with none, whatever its words
    author = ScoreChanged(points=60, reason="Budget: high (quoted: 'x')", score=60)
    assert "reason_code" not in _planned_score_event(author)


def test_a_changed_rule_keeps_what_it_was() -> None:
    low = score_from_signals({"budget": {"level": "low", "evidence": "15k"}}, evidence_text=LEAD)
    high = score_from_signals({"budget": {"level": "high", "evidence": "15k"}}, evidence_text=LEAD)
    (change,) = reconcile(high, {"signal:budget": low[0].points})
    assert change.reason == "Budget: high (quoted: '15k') (was +2)"
    assert score_reasons.parse(change.reason, change.evidence) == (
        "signal",
        {"was": 2, "signal": "budget", "level": "high", "quote": "15k"},
    )


@pytest.mark.parametrize(
    ("detail", "code", "params"),
    [
        # an old stored scorer event, no code yet
        (
            {"points": 5, "reason": "Engagement: 5 or more messages", "evidence": "6 messages"},
            "engagement.messages",
            {"min": 5, "count": 6},
        ),
        # a playbook author's reason is theirs, even one that looks like the scorer's
        ({"points": 60, "reason": "Budget: high (quoted: 'x')", "step_id": "score-budget"}, None, None),
        ({"points": 60, "reason": "Big budget"}, None, None),
        # the engine's note on an author's reason after a correction
        (
            {"points": -60, "reason": "Big budget (no longer: corrected)", "step_id": "s"},
            "step.no_longer",
            {"text": "Big budget"},
        ),
        # a stored code wins
        ({"reason": "whatever", "reason_code": "signal", "reason_params": {"x": 1}}, "signal", {"x": 1}),
    ],
)
def test_tagged(detail: dict[str, object], code: str | None, params: dict[str, object] | None) -> None:
    out = score_reasons.tagged(detail)
    assert out.get("reason_code") == code and out.get("reason_params") == params
    assert {k: v for k, v in out.items() if not k.startswith("reason_")} == {
        k: v for k, v in detail.items() if not k.startswith("reason_")
    }
