"""The engine's scoring port: rules beyond the playbook's score steps (qualification signals,
engagement) move the score with reasons, count once per rule, and can qualify the lead."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playbooks import load_playbook_text
from playbooks.runtime import LeadQualified, ScoreChanged
from tests.playbooks.conftest import Conversation

PLAYBOOK = load_playbook_text(
    """
id: scorer-demo
name: Scorer demo
version: 1
qualification_threshold: 30
steps:
  - id: need
    type: ask
    slot: need
    kind: text
    question: What do you need?
  - id: when
    type: ask
    slot: when
    kind: text
    question: When?
  - type: end
    outcome: done
"""
)


@dataclass(frozen=True)
class Adjustment:
    points: int
    reason: str
    evidence: str | None
    key: str
    code: str = ""
    params: dict[str, Any] = field(default_factory=dict)


class SignalScorer:
    """Gives 20 points for 'budget' once, and records what it saw."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(
        self, interpretation: Any, *, reply_seconds: float | None, inbound_count: int, applied: dict[str, int]
    ) -> list[Adjustment]:
        self.calls.append(
            {"reply_seconds": reply_seconds, "inbound_count": inbound_count, "applied": applied}
        )
        if "budget" in applied:
            return []
        return [Adjustment(20, "Budget: high", "we have the budget", "budget")]


async def test_scorer_points_count_once_and_qualify(make_conversation: Any) -> None:
    conversation: Conversation = make_conversation(PLAYBOOK)
    scorer = SignalScorer()
    conversation.ports = conversation.ports.model_copy(update={"scorer": scorer})
    await conversation.start()
    await conversation.say("solar panels, we have the budget")
    first = [a for a in conversation.last.actions if isinstance(a, ScoreChanged)]
    assert [(a.points, a.reason, a.evidence) for a in first] == [(20, "Budget: high", "we have the budget")]
    assert conversation.state.score_applied == {"budget": 20}
    await conversation.say("next month, budget is fine")
    assert not [a for a in conversation.last.actions if isinstance(a, ScoreChanged)]  # counted once
    assert conversation.state.score == 20
    assert not conversation.all_actions(LeadQualified)


async def test_scorer_points_emit_lead_qualified_at_the_threshold(make_conversation: Any) -> None:
    conversation: Conversation = make_conversation(PLAYBOOK)

    def generous(interpretation: Any, **_: Any) -> list[Adjustment]:
        return [Adjustment(35, "Need: high", None, "need")]

    conversation.ports = conversation.ports.model_copy(update={"scorer": generous})
    await conversation.start()
    await conversation.say("a full roof of panels")
    [qualified] = conversation.all_actions(LeadQualified)
    assert (qualified.score, qualified.threshold) == (35, 30)
    assert conversation.state.qualified


async def test_a_scorer_reason_code_and_parameters_reach_the_action_as_given(make_conversation: Any) -> None:
    conversation: Conversation = make_conversation(PLAYBOOK)
    params = {"signal": "need", "level": "high", "quote": "a full roof"}

    def coded(interpretation: Any, **_: Any) -> list[Adjustment]:
        return [
            Adjustment(
                8, "Need: high (quoted: 'a full roof')", "a full roof", "signal:need", "signal", params
            )
        ]

    conversation.ports = conversation.ports.model_copy(update={"scorer": coded})
    await conversation.start()
    await conversation.say("a full roof of panels")
    [changed] = [a for a in conversation.last.actions if isinstance(a, ScoreChanged)]
    assert (changed.reason_code, changed.reason_params) == ("signal", params)
