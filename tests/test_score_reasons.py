"""The built-in scorer's reasons carry a code and parameters (app/conversations/score_reasons.py): the
scorer's English reads back to its code, a turn stores the code with its score event, an author's own
reason gets none, and an event stored before codes existed is read with one."""

from __future__ import annotations

import pytest

from app.conversations import score_reasons
from app.conversations.scoring import reconcile, score_from_engagement, score_from_signals

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
