"""Turn the engine's actions into the records one transaction writes.

:func:`plan_turn` is pure: given the conversation and lead as read, the engine's result and the
time, it returns the new conversation and lead, the messages to append, the outbox items to send
and what to do with the conversation's timer. :mod:`app.conversation` writes all of it in one
transaction, so the new state and the messages it decided to send land together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, get_args

from app.records import (
    Conversation,
    ConversationEvent,
    InboxItem,
    Lead,
    LeadStage,
    Message,
    OutboxItem,
)
from playbooks.runtime import (
    ConversationEnded,
    EngineResult,
    HandoffRequested,
    LeadQualified,
    ScoreChanged,
    SendMessage,
    SlotFilled,
    TimerCancelled,
    TimerScheduled,
)

__all__ = ["TimerChange", "TurnPlan", "conversation_status", "plan_bot_messages", "plan_turn"]

_STAGES = set(get_args(LeadStage))


@dataclass(slots=True)
class TimerChange:
    """``set`` a timer job due at ``due_at`` for ``timer_id``, or ``cancel`` it."""

    action: str
    timer_id: str | None = None
    due_at: float | None = None


@dataclass(slots=True)
class TurnPlan:
    """Everything one turn writes."""

    conversation: Conversation
    lead: Lead
    messages: list[Message] = field(default_factory=list)
    outbox: list[OutboxItem] = field(default_factory=list)
    timer: TimerChange | None = None


def conversation_status(engine_status: str) -> str:
    """Map the engine's status to the conversation's (active/scheduled/handoff/closed)."""
    return {"active": "active", "waiting": "scheduled", "handoff": "handoff", "ended": "closed"}[
        engine_status
    ]


def _event(now: float, type_: str, **detail: Any) -> ConversationEvent:
    return ConversationEvent(at=now, type=type_, detail={k: v for k, v in detail.items() if v is not None})


def message_doc_id(seq: int) -> str:
    """Message ids sort like their sequence numbers."""
    return f"{seq:08d}"


def _append_outbound(
    plan: TurnPlan,
    *,
    text: str,
    choices: list[dict[str, str]],
    now: float,
    purpose: str,
    step_id: str | None,
    sender: str = "bot",
) -> None:
    conv, lead = plan.conversation, plan.lead
    conv.message_count += 1
    seq = conv.message_count
    msg = Message(
        id=message_doc_id(seq),
        conversation_id=conv.id,
        lead_id=lead.id,
        seq=seq,
        direction="outbound",
        sender="agent" if sender == "agent" else "bot",
        channel=conv.channel,
        text=text,
        choices=choices,
        status="queued",
        purpose=purpose,
        step_id=step_id,
        created_at=now,
        status_at={"queued": now},
    )
    plan.messages.append(msg)
    plan.outbox.append(
        OutboxItem(
            id=f"{conv.id}:{msg.id}",
            conversation_id=conv.id,
            message_id=msg.id,
            lead_id=lead.id,
            channel=conv.channel,
            to=conv.address,
            text=text,
            choices=choices,
            seq=seq,
            created_at=now,
        )
    )
    conv.last_outbound_at = now


def append_inbound(plan: TurnPlan, item: InboxItem, now: float) -> None:
    """Record the lead's message in the conversation."""
    conv = plan.conversation
    conv.message_count += 1
    seq = conv.message_count
    plan.messages.append(
        Message(
            id=message_doc_id(seq),
            conversation_id=conv.id,
            lead_id=plan.lead.id,
            seq=seq,
            direction="inbound",
            sender="contact",
            channel=item.channel,
            text=item.text,
            kind=item.kind,
            provider_message_id=item.provider_message_id,
            status="received",
            created_at=item.received_at,
            status_at={"received": item.received_at},
        )
    )
    conv.last_inbound_at = item.received_at
    if plan.lead.stage == "new":
        plan.lead.stage = "engaged"


def plan_bot_messages(plan: TurnPlan, texts: list[str], now: float, *, purpose: str) -> None:
    """Queue plain messages the app itself says (not from the playbook)."""
    for text in texts:
        _append_outbound(plan, text=text, choices=[], now=now, purpose=purpose, step_id=None)


def plan_turn(
    conversation: Conversation,
    lead: Lead,
    result: EngineResult,
    now: float,
    *,
    inbound: InboxItem | None = None,
) -> TurnPlan:
    """Apply ``result`` to copies of ``conversation`` and ``lead``; see the module docstring."""
    plan = TurnPlan(conversation=conversation.model_copy(deep=True), lead=lead.model_copy(deep=True))
    conv, ld = plan.conversation, plan.lead
    if inbound is not None:
        append_inbound(plan, inbound, now)
    events: list[ConversationEvent] = []
    for action in result.actions:
        if isinstance(action, SendMessage):
            choices = [c.model_dump() for c in action.choices]
            _append_outbound(
                plan,
                text=action.text,
                choices=choices,
                now=now,
                purpose=action.purpose,
                step_id=action.step_id,
            )
        elif isinstance(action, SlotFilled):
            ld.slots[action.slot] = action.value
            events.append(
                _event(
                    now,
                    "slot_filled",
                    slot=action.slot,
                    value=action.value,
                    evidence=action.evidence,
                    source=action.source,
                )
            )
        elif isinstance(action, ScoreChanged):
            ld.score = action.score
            events.append(
                _event(
                    now,
                    "score_changed",
                    points=action.points,
                    reason=action.reason,
                    score=action.score,
                    evidence=action.evidence,
                    step_id=action.step_id,
                )
            )
        elif isinstance(action, LeadQualified):
            ld.stage = "qualified"
            events.append(_event(now, "lead.qualified", score=action.score, threshold=action.threshold))
        elif isinstance(action, TimerScheduled):
            plan.timer = TimerChange("set", timer_id=action.timer.id, due_at=action.timer.due_at)
            events.append(
                _event(now, "timer_scheduled", timer_id=action.timer.id, due_at=action.timer.due_at)
            )
        elif isinstance(action, TimerCancelled):
            if plan.timer is None or plan.timer.timer_id == action.timer_id:
                plan.timer = TimerChange("cancel", timer_id=action.timer_id)
            events.append(_event(now, "timer_cancelled", timer_id=action.timer_id))
        elif isinstance(action, HandoffRequested):
            if ld.stage not in ("qualified", "booked"):
                ld.stage = "handoff"
            events.append(_event(now, "handoff", reason=action.reason, step_id=action.step_id))
        elif isinstance(action, ConversationEnded):
            conv.outcome = action.outcome
            if action.outcome in _STAGES and not (ld.stage == "qualified" and action.outcome == "closed"):
                ld.stage = action.outcome  # type: ignore[assignment]
            events.append(_event(now, "ended", outcome=action.outcome, step_id=action.step_id))
    state = result.state
    conv.state = state.model_dump(mode="json")
    conv.status = conversation_status(state.status)  # type: ignore[assignment]
    conv.current_step = state.current_step
    conv.timer = state.timer.model_dump() if state.timer else None
    conv.events = (conv.events + events)[-Conversation.EVENTS_KEPT :]
    conv.updated_at = now
    if state.language:
        ld.language = state.language
    ld.updated_at = now
    return plan
