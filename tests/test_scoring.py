"""Lead scoring: BANT signals and engagement give points with reasons, once per rule and conversation."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.conversations.scoring import (
    FAST_REPLY_SECONDS,
    MANY_MESSAGES,
    SIGNAL_POINTS,
    ScoreDelta,
    reconcile,
    score_from_engagement,
    score_from_signals,
)

LEAD = "I own the house, we have about 15k set aside and want it installed before summer"


def test_each_signal_scores_its_level_with_a_quoted_reason() -> None:
    signals = {
        "budget": {"level": "high", "evidence": "we have about 15k set aside"},
        "authority": {"level": "high", "evidence": "I own the house"},
        "need": None,
        "timeline": {"level": "medium", "evidence": "before summer"},
    }
    deltas = score_from_signals(signals, evidence_text=LEAD)
    assert [d.key for d in deltas] == ["signal:budget", "signal:authority", "signal:timeline"]
    assert [d.points for d in deltas] == [
        SIGNAL_POINTS["budget"]["high"],
        SIGNAL_POINTS["authority"]["high"],
        SIGNAL_POINTS["timeline"]["medium"],
    ]
    assert deltas[0].reason == "Budget: high (quoted: 'we have about 15k set aside')"
    assert deltas[0].evidence == "we have about 15k set aside"


def test_levels_are_ordered_and_none_is_negative() -> None:
    for name, table in SIGNAL_POINTS.items():
        assert table["high"] > table["medium"] > table["low"] > table["none"], name
        assert table["none"] < 0


def test_signals_alone_cannot_reach_the_shipped_qualification_threshold() -> None:
    assert sum(table["high"] for table in SIGNAL_POINTS.values()) < 60


def test_ungrounded_evidence_scores_nothing() -> None:
    signals = {"budget": {"level": "high", "evidence": "my budget is unlimited"}}
    assert score_from_signals(signals, evidence_text="hello, what do you sell?") == []
    assert score_from_signals({"budget": {"level": "high", "evidence": ""}}, evidence_text=LEAD) == []


def test_evidence_matching_ignores_case_accents_and_small_rewordings() -> None:
    signals = {"timeline": {"level": "high", "evidence": "AVANT l'été, c'est URGENT"}}
    deltas = score_from_signals(signals, evidence_text="on veut le faire avant l’ete, c'est urgent svp")
    assert [d.points for d in deltas] == [SIGNAL_POINTS["timeline"]["high"]]


def test_unknown_levels_names_and_zero_points_are_ignored() -> None:
    signals = {
        "budget": {"level": "enormous", "evidence": "15k set aside"},
        "mood": {"level": "high", "evidence": "I own the house"},
        "authority": {"level": "low", "evidence": "I own the house"},  # 0 points
    }
    assert score_from_signals(signals, evidence_text=LEAD) == []
    assert score_from_signals(None, evidence_text=LEAD) == []


def test_signal_objects_with_attributes_are_accepted() -> None:
    @dataclass
    class Signal:
        level: str
        evidence: str

    deltas = score_from_signals({"need": Signal("none", "I own the house")}, evidence_text=LEAD)
    assert [d.points for d in deltas] == [SIGNAL_POINTS["need"]["none"]]


def test_long_evidence_is_shortened_in_the_reason() -> None:
    evidence = " ".join(["panels"] * 100)
    [delta] = score_from_signals({"need": {"level": "high", "evidence": evidence}}, evidence_text=evidence)
    assert len(delta.evidence) <= 120 and delta.evidence.endswith("…")


def test_engagement() -> None:
    fast = score_from_engagement(reply_seconds=FAST_REPLY_SECONDS, inbound_count=1)
    assert [(d.key, d.points) for d in fast] == [("engagement:fast_reply", 5)]
    assert score_from_engagement(reply_seconds=FAST_REPLY_SECONDS + 1, inbound_count=1) == []
    assert score_from_engagement(reply_seconds=None, inbound_count=MANY_MESSAGES - 1) == []
    many = score_from_engagement(reply_seconds=None, inbound_count=MANY_MESSAGES)
    assert [(d.key, d.points) for d in many] == [("engagement:messages", 5)]


@pytest.mark.parametrize(("seconds", "count"), [(-1.0, 1), (1.0, -1)])
def test_engagement_rejects_negative_inputs(seconds: float, count: int) -> None:
    with pytest.raises(ValueError):
        score_from_engagement(reply_seconds=seconds, inbound_count=count)


def test_reconcile_applies_each_rule_once_and_only_changes_after() -> None:
    low = ScoreDelta(points=2, reason="Budget: low (quoted: 'tight')", evidence="tight", key="signal:budget")
    high = ScoreDelta(points=15, reason="Budget: high (quoted: '15k')", evidence="15k", key="signal:budget")
    fast = score_from_engagement(reply_seconds=3.0, inbound_count=1)
    first = reconcile([low, *fast], {})
    assert [(d.key, d.points) for d in first] == [("signal:budget", 2), ("engagement:fast_reply", 5)]
    applied = {d.key: d.points for d in first}
    assert reconcile([low, *fast], applied) == []
    [change] = reconcile([high], applied)
    assert change.points == 13
    assert change.reason.endswith("(was +2)")


def test_scoring_is_deterministic() -> None:
    signals = {"need": {"level": "high", "evidence": "want it installed"}, "budget": None}
    assert score_from_signals(signals, evidence_text=LEAD) == score_from_signals(signals, evidence_text=LEAD)
