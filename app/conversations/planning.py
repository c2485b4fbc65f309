"""Turn the engine's actions into the records one transaction writes.

:func:`plan_turn` is pure: given the conversation and lead as read, the engine's result and the
time, it returns the new conversation and lead, the messages to append, the outbox items to send
and what to do with the conversation's timer. :mod:`app.conversations.service` writes all of it in one
transaction, so the new state and the messages it decided to send land together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

from app.ai.llm.usage import TurnUsage, add_to_totals
from app.conversations.records import Conversation, ConversationEvent, Lead, LeadStage, Message
from app.conversations.typography import french_spacing
from app.messaging.records import InboxItem, OutboxItem
from channels.registry import channel_class
from kernel.clone import clone_model
from playbooks.runtime import (
    BookingCancelRequested,
    BookingRequested,
    ConversationEnded,
    EngineResult,
    HandoffRequested,
    LeadQualified,
    MeetingBooked,
    MeetingCancelled,
    OptOutRequested,
    ScoreChanged,
    SendMessage,
    SlotFilled,
    SyncRequested,
    TimerCancelled,
    TimerScheduled,
)

__all__ = [
    "OptOutChange",
    "Outgoing",
    "PlannedJob",
    "TimerChange",
    "TurnPlan",
    "append_inbound",
    "append_outbound",
    "conversation_status",
    "plan_bot_messages",
    "plan_turn",
]

_STAGES = set(get_args(LeadStage))
#: Outcomes that are not stages themselves, and the stage they leave the lead in.
_OUTCOME_STAGES = {"opted_out": "closed", "not_interested": "closed"}


@dataclass(slots=True)
class TimerChange:
    """``set`` a timer job due at ``due_at`` for ``timer_id``, or ``cancel`` it."""

    action: str
    timer_id: str | None = None
    due_at: float | None = None


@dataclass(slots=True)
class Outgoing:
    """One message the turn decided to send. ``channel`` targets another of the lead's channels."""

    text: str
    purpose: str
    choices: list[dict[str, str]] = field(default_factory=list)
    step_id: str | None = None
    channel: str | None = None
    template: dict[str, Any] | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    """Files sent with the message where the channel can (email): ``{"filename", "mime_type",
    "content_b64", "params"}``."""
    not_after: float | None = None
    """Never sent from this instant on (epoch seconds; see ``OutboxItem.not_after``)."""


@dataclass(slots=True)
class PlannedJob:
    """A job the turn enqueues in its own transaction (``kind``, ``key``, due at ``due_at``)."""

    kind: str
    key: str
    due_at: float
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class OptOutChange:
    """An opt-out (or opt-back-in) the turn records in the same transaction as its state."""

    channel: str
    address: str
    source: str
    opted_out: bool = True


@dataclass(slots=True)
class TurnPlan:
    """Everything one turn writes. ``trigger`` is what caused the turn (for the outbound policy)."""

    conversation: Conversation
    lead: Lead
    trigger: str = "inbound"
    messages: list[Message] = field(default_factory=list)
    outbox: list[OutboxItem] = field(default_factory=list)
    timer: TimerChange | None = None
    optout: OptOutChange | None = None
    cancel_pending_sends: bool = False
    """Block every message of the conversation still waiting in the outbox (an opt-out)."""
    jobs: list[PlannedJob] = field(default_factory=list)
    """Other jobs to enqueue with the turn (booking requests, meeting reminders)."""


def conversation_status(engine_status: str) -> str:
    """Map the engine's status to the conversation's (active/scheduled/handoff/closed)."""
    return {"active": "active", "waiting": "scheduled", "handoff": "handoff", "ended": "closed"}[
        engine_status
    ]


#: Longest string kept in an event's detail: events live on the conversation document, which must
#: stay far below Firestore's 1 MiB (200 events x 500 characters x a few fields).
EVENT_TEXT_MAX = 500


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > EVENT_TEXT_MAX:
        return value[: EVENT_TEXT_MAX - 1] + "…"
    return value


def _event(now: float, type_: str, **detail: Any) -> ConversationEvent:
    return ConversationEvent(
        at=now, type=type_, detail={k: _clip(v) for k, v in detail.items() if v is not None}
    )


def message_doc_id(seq: int) -> str:
    """Message ids sort like their sequence numbers."""
    return f"{seq:08d}"


def append_outbound(plan: TurnPlan, out: Outgoing, now: float) -> None:
    """Queue one message of the app's own (a meeting invitation, a reminder) in ``plan``."""
    _append_outbound(plan, out, now)


def _finished(out: Outgoing, language: str | None, channel: str) -> str:
    """The text as it goes out: a bot's French text with French typography (no-break spaces
    before ``? ! ; :``, :mod:`app.conversations.typography`), except on a channel priced by its
    characters (SMS, where a no-break space would make the message UCS-2); a person's words
    (purpose ``agent``) as they were typed."""
    french = (language or "").split("-")[0].lower() == "fr"
    if not french or out.purpose == "agent" or channel_class(channel).traits.charset_priced:
        return out.text
    return french_spacing(out.text)


def _append_outbound(plan: TurnPlan, out: Outgoing, now: float) -> None:
    conv, lead = plan.conversation, plan.lead
    channel, to = conv.channel, conv.address
    if out.channel and out.channel != conv.channel:
        address = lead.addresses().get(out.channel)
        if address:  # the step targets another channel the lead has an address on
            channel, to = out.channel, address
    conv.message_count += 1
    seq = conv.message_count
    text = _finished(out, lead.language, channel)
    msg = Message(
        id=message_doc_id(seq),
        conversation_id=conv.id,
        lead_id=lead.id,
        seq=seq,
        direction="outbound",
        sender="bot",
        channel=channel,
        text=text,
        choices=out.choices,
        status="queued",
        purpose=out.purpose,
        step_id=out.step_id,
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
            channel=channel,
            to=to,
            text=text,
            choices=out.choices,
            seq=seq,
            purpose=out.purpose,
            trigger=plan.trigger,  # type: ignore[arg-type]
            template=out.template,
            attachments=out.attachments,
            not_after=out.not_after,
            created_at=now,
        )
    )
    conv.last_outbound_at = now


def _thread(item: InboxItem) -> dict[str, Any] | None:
    metadata = item.payload.get("metadata") or {}
    if not channel_class(item.channel).traits.threading:
        return None
    return {"subject": metadata.get("subject"), "references": list(metadata.get("references") or [])}


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
            thread=_thread(item),
            status="received",
            created_at=item.received_at,
            status_at={"received": item.received_at},
        )
    )
    conv.inbound_count += 1
    conv.last_inbound_at = item.received_at
    conv.last_inbound_by_channel[item.channel] = item.received_at
    if plan.lead.stage == "new":
        plan.lead.stage = "engaged"


def plan_bot_messages(plan: TurnPlan, texts: list[str], now: float, *, purpose: str) -> None:
    """Queue plain messages the app itself says (not from the playbook)."""
    for text in texts:
        _append_outbound(plan, Outgoing(text=text, purpose=purpose), now)


_REPLACED_OR_APPENDED = frozenset({"events", "state"})
"""Fields of the conversation :func:`plan_turn` copies one level deep (see there)."""


def plan_turn(
    conversation: Conversation,
    lead: Lead,
    result: EngineResult,
    now: float,
    *,
    inbound: Sequence[InboxItem] = (),
    trigger: str = "inbound",
    llm_usage: TurnUsage | None = None,
) -> TurnPlan:
    """Apply ``result`` to copies of ``conversation`` and ``lead``; see the module docstring. The
    copy's ``events`` is a new list, but the events already there are the conversation's own
    (events are history: appended to, never changed in place).

    ``inbound`` are the lead's messages this turn read (a burst may hold several); ``trigger`` is
    ``inbound``, ``start`` or ``timer``.
    """
    # The old events are history (appended to, never changed) and the engine's old state is
    # replaced below: their containers are copied, not their contents.
    copied = clone_model(conversation, shallow=_REPLACED_OR_APPENDED)
    plan = TurnPlan(conversation=copied, lead=clone_model(lead), trigger=trigger)
    conv, ld = plan.conversation, plan.lead
    if result.state.language:  # the language this turn speaks (its messages are written in it)
        ld.language = result.state.language
    for item in inbound:
        append_inbound(plan, item, now)
    read = [m for m in plan.messages if m.direction == "inbound"]
    if read and result.interpretation is not None:
        read[-1].sentiment = result.interpretation.sentiment
    if llm_usage is not None:
        conv.llm_usage = add_to_totals(conv.llm_usage, llm_usage)
        if read:
            read[-1].llm_usage = llm_usage.as_doc()
    events: list[ConversationEvent] = []
    for action in result.actions:
        if isinstance(action, SendMessage):
            out = Outgoing(
                text=action.text,
                purpose=action.purpose,
                choices=[c.model_dump() for c in action.choices],
                step_id=action.step_id,
                channel=action.channel,
                template=action.template,
            )
            _append_outbound(plan, out, now)
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
            coded = {"reason_code": action.reason_code, "reason_params": action.reason_params}
            events.append(
                _event(
                    now,
                    "score_changed",
                    points=action.points,
                    reason=action.reason,
                    score=action.score,
                    evidence=action.evidence,
                    step_id=action.step_id,
                    **(coded if action.reason_code else {}),  # the reason's code, for the dashboard
                )
            )
        elif isinstance(action, LeadQualified):
            if ld.stage != "booked":
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
        elif isinstance(action, SyncRequested):  # a playbook's ``sync`` step (app/crm routes it)
            events.append(
                _event(now, "sync.requested", integration=action.integration, step_id=action.step_id)
            )
        elif isinstance(action, OptOutRequested):
            # In the lead's own words: recorded in the ledger with the turn, and every queued send
            # of the conversation is blocked in the same transaction.
            plan.optout = OptOutChange(
                channel=conv.channel, address=conv.address, source=f"words:{(action.evidence or '')[:40]}"
            )
            plan.cancel_pending_sends = True
            ld.consent[conv.channel] = False
            events.append(_event(now, "opt_out", evidence=action.evidence, source="lead's words"))
        elif isinstance(action, BookingRequested | BookingCancelRequested):
            # executed by the booking feature's worker job, enqueued with this turn
            key = (
                action.request_id
                if isinstance(action, BookingRequested)
                else f"cancel:{action.booking['id']}"
            )
            plan.jobs.append(
                PlannedJob(
                    "booking",
                    f"{conv.id}~{key}",
                    now,
                    {"conversation_id": conv.id, "action": action.model_dump(mode="json")},
                )
            )
            events.append(_event(now, f"booking.{action.type}", detail_id=key))
        elif isinstance(action, MeetingBooked):
            ld.stage = "booked"
            events.append(
                _event(
                    now,
                    "meeting.booked",
                    booking_id=action.booking.get("id"),
                    provider=action.booking.get("provider"),
                    start=action.booking.get("start"),
                    end=action.booking.get("end"),
                    rescheduled=action.rescheduled,
                )
            )
        elif isinstance(action, MeetingCancelled):
            if ld.stage == "booked":
                ld.stage = "qualified" if result.state.qualified else "engaged"
            events.append(
                _event(now, "meeting.cancelled", booking_id=action.booking.get("id"), reason=action.reason)
            )
        elif isinstance(action, ConversationEnded):
            conv.outcome = action.outcome
            stage = _OUTCOME_STAGES.get(action.outcome, action.outcome)
            keep = ld.stage == "booked" or (ld.stage == "qualified" and stage == "closed")
            if stage in _STAGES and not keep:
                ld.stage = stage  # type: ignore[assignment]
            events.append(_event(now, "ended", outcome=action.outcome, step_id=action.step_id))
    state = result.state
    conv.state = state.model_dump(mode="json")
    conv.status = conversation_status(state.status)  # type: ignore[assignment]
    conv.current_step = state.current_step
    conv.timer = state.timer.model_dump() if state.timer else None
    conv.events = (conv.events + events)[-Conversation.EVENTS_KEPT :]
    conv.updated_at = now
    ld.updated_at = now
    return plan
