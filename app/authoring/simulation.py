"""The playbook simulator: a sandboxed conversation with a draft playbook, driven from the editor.

A simulation never touches the tenant's leads, conversations, outbox or channels, and never calls
a calendar: it runs :func:`playbooks.advance` in memory with a :class:`kernel.clock.ManualClock`
of its own and the offline interpreter. It is **stateless on the server**: the page holds the
:class:`SimSession` (engine state, simulated time, counters) and sends it back with each action, so
any instance behind a load balancer can answer and nothing accumulates in process memory.

Actions: ``start`` (the lead writes first, or ``lead_created`` without text), ``say`` (the lead
writes), ``advance`` (move the simulated clock by ``seconds``; every timer then due fires, in
order). A ``book`` step reads :class:`SandboxCalendar` (free Monday to Friday, 09:00-17:00 in the
tenant's zone, in simulated time) and a booking it asks for is confirmed at once (nothing is booked
anywhere). Times are UTC epoch floats; durations are seconds.

With a :class:`SimPolicy` (the tenant's quiet hours and daily cap), every message the bot sends
goes through the same outbound rules as a real send (:func:`app.policy.rules.decide`), in the
tenant's time zone: a follow-up that would fall in quiet hours is shown held until they end
(``held_until``), one past the daily cap held until the next local day, with the rule's reason
(``policy``). The simulated conversation goes on as the engine decided; the feed shows when the
lead would actually receive each message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.booking.calendar import CalendarSlotSource
from app.conversations import score_reasons
from app.policy.quiet_hours import parse_hhmm, resolve_timezone
from app.policy.rules import OutboundFacts, Trigger, decide
from app.tenancy.records import TenantProfile
from crm_sync.base import Attendee, Booking, Slot
from crm_sync.calendars.common import Schedule, candidate_slots
from kernel.clock import Clock, ManualClock
from kernel.errors import LeadWarmError
from playbooks import (
    ConversationState,
    Event,
    InboundEvent,
    Interpreter,
    Playbook,
    Ports,
    StartEvent,
    TimerFiredEvent,
    advance,
    new_state,
)
from playbooks.runtime import BookingEvent, BookingRequested, Scorer

__all__ = [
    "MAX_ADVANCE_S",
    "MAX_TEXT_CHARS",
    "SandboxCalendar",
    "SimAction",
    "SimEvent",
    "SimPolicy",
    "SimResult",
    "SimSession",
    "SimulationError",
    "simulate",
]

#: Longest lead message the simulator accepts (characters), as a channel would cut it.
MAX_TEXT_CHARS = 2000
#: Farthest one ``advance`` may move the simulated clock (seconds): 90 days.
MAX_ADVANCE_S = 90 * 86400
#: Most engine turns one action may run (timers firing in a row, a booking's answer).
MAX_TURNS_PER_ACTION = 25

InterpreterFactory = Callable[[Clock], Interpreter]
ScorerFactory = Callable[[str], Scorer]


class SimulationError(LeadWarmError):
    """The simulation cannot go on (the session does not fit the playbook any more, or the engine
    refused it); the page should restart the simulation. The message says why."""


class SandboxCalendar:
    """A calendar provider for the simulator: every slot of the working week (Monday to Friday,
    09:00-17:00 in ``timezone``, an IANA name) is free, read against ``clock`` (the simulation's).
    It never books: the simulator answers a booking request itself."""

    provider = "simulator"

    def __init__(self, *, clock: Clock, timezone: str = "UTC") -> None:
        self.clock = clock
        self.schedule = Schedule(timezone=timezone)

    async def free_slots(self, start: float, end: float, *, duration_s: int) -> list[Slot]:
        """Every working-hours slot of ``duration_s`` seconds in ``[start, end)`` (epoch seconds)."""
        pairs = candidate_slots(self.schedule, start, end, duration_s=duration_s, now=self.clock.now())
        return [Slot(start=a, end=b) for a, b in pairs]

    async def book(self, slot: Slot, attendee: Attendee, *, title: str, description: str = "") -> Booking:
        """Never called by the simulator; raises :class:`SimulationError`."""
        raise SimulationError("the simulator's calendar does not book")

    async def cancel(self, booking: Booking, *, reason: str = "") -> None:
        """Nothing to cancel."""


@dataclass(frozen=True, slots=True)
class SimPolicy:
    """The outbound rules a simulated send goes through: quiet hours ``[quiet_start,
    quiet_end)`` in ``zone`` (local wall-clock times; may cross midnight), whether a direct answer
    to a lead who just wrote may go out during them, and at most ``daily_cap`` messages a local
    day. ``channel`` names the channel whose traits apply (``sms`` by default: no session window)."""

    zone: ZoneInfo
    quiet_start: time
    quiet_end: time
    allow_direct_replies: bool = True
    daily_cap: int = 20
    channel: str = "sms"

    @classmethod
    def from_profile(cls, profile: TenantProfile) -> SimPolicy:
        """The tenant's own rules (its time zone stands for the lead's). Raises ``ValueError``
        on a malformed quiet-hours time (the profile's validation keeps them ``HH:MM``)."""
        return cls(
            zone=resolve_timezone(None, None, profile.timezone),
            quiet_start=parse_hhmm(profile.quiet_hours_start),
            quiet_end=parse_hhmm(profile.quiet_hours_end),
            allow_direct_replies=profile.quiet_hours_allow_direct_replies,
            daily_cap=profile.daily_cap_per_lead,
        )


class SimSession(BaseModel):
    """What the page keeps between actions. ``state`` is the engine's
    :class:`playbooks.ConversationState` as JSON (``None`` before ``start``); ``now`` the simulated
    time; ``inbound_count`` the lead's messages so far; ``last_outbound_at`` when the bot last wrote;
    ``last_inbound_at`` when the lead last wrote; ``sent_day`` (``YYYY-MM-DD`` in the policy's zone)
    and ``sent_today`` count the messages let through that local day (the daily cap)."""

    model_config = ConfigDict(extra="forbid")

    state: dict[str, Any] | None = None
    now: float = Field(ge=0, le=32503680000)
    language: Literal["en", "fr"] = "en"
    inbound_count: int = Field(default=0, ge=0, le=100_000)
    last_outbound_at: float | None = None
    last_inbound_at: float | None = None
    sent_day: str | None = Field(default=None, max_length=10)
    sent_today: int = Field(default=0, ge=0, le=100_000)


class SimAction(BaseModel):
    """One thing the marketer does: ``start`` (``text`` optional: the lead's first message),
    ``say`` (``text`` or ``choice_id``), ``advance`` (``seconds``, 1 s to 90 days)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["start", "say", "advance"]
    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    choice_id: str | None = Field(default=None, max_length=200)
    seconds: float | None = Field(default=None, ge=1, le=MAX_ADVANCE_S)


class SimEvent(BaseModel):
    """One line of the simulator's feed. ``kind``: ``lead`` (what the lead wrote), ``bot`` (a
    message sent, with ``choices``), ``slot`` (``slot`` = ``value``), ``score`` (``points`` for
    ``reason``, new ``score``), ``qualified``, ``timer`` (scheduled, ``due_at``), ``clock`` (time
    moved to ``at``), ``timer_fired``, ``handoff`` (``reason``), ``ended`` (``outcome``),
    ``opt_out``, ``booked`` (simulated), ``note`` (an author's diagnostic from the engine). A ``bot``
    event the outbound rules did not let out at once carries ``policy`` (the rule: ``quiet_hours``,
    ``daily_cap``, ...) and, when it is held rather than blocked, ``held_until`` (when it would go)."""

    kind: str
    at: float
    text: str | None = None
    choices: list[dict[str, str]] = Field(default_factory=list)
    purpose: str | None = None
    step_id: str | None = None
    slot: str | None = None
    value: Any = None
    points: int | None = None
    reason: str | None = None
    reason_code: str | None = None
    """For a ``score`` line of the built-in scorer: its reason's code (see
    :mod:`app.conversations.score_reasons`), with ``reason_params``."""
    reason_params: dict[str, Any] | None = None
    score: int | None = None
    due_at: float | None = None
    outcome: str | None = None
    policy: str | None = None
    held_until: float | None = None


class SimResult(BaseModel):
    """The answer to one action: the ``session`` to send back next time, the ``events`` this action
    produced, and a summary the page shows (status, step, slots, score, next timer, and the
    time zone its times are shown in)."""

    session: SimSession
    events: list[SimEvent]
    status: str
    current_step: str | None
    slots: dict[str, Any]
    score: int
    qualified: bool
    timer_due_at: float | None
    timezone: str = "UTC"
    """The IANA zone the simulation reads and shows times in (the tenant's)."""


def _state_for(playbook: Playbook, session: SimSession) -> ConversationState | None:
    if session.state is None:
        return None
    try:
        state = ConversationState.model_validate(session.state)
    except ValidationError as exc:
        raise SimulationError("the simulation's state is not valid: restart the simulation") from exc
    if state.playbook_id != playbook.id:
        raise SimulationError(
            f"this simulation ran playbook {state.playbook_id!r}, not {playbook.id!r}: restart it"
        )
    known = {step.id for step in playbook.steps}
    for step_id in (state.current_step, state.timer.step_id if state.timer else None):
        if step_id is not None and step_id not in known:
            raise SimulationError(f"step {step_id!r} is no longer in the playbook: restart the simulation")
    return state


async def simulate(
    playbook: Playbook,
    session: SimSession,
    action: SimAction,
    *,
    interpreter_for: InterpreterFactory,
    scorer_for: ScorerFactory | None = None,
    timezone: str = "UTC",
    default_region: str | None = None,
    fallback_text: dict[str, str] | None = None,
    policy: SimPolicy | None = None,
) -> SimResult:
    """Apply ``action`` to the simulated conversation of ``session`` with ``playbook``.

    ``interpreter_for(clock)`` builds the interpreter reading the lead's messages against the
    simulation's own clock (dates such as "demain à 14h" are read in simulated time, in
    ``timezone``, an IANA name). Raises :class:`SimulationError` when the session does not fit the
    playbook (edited meanwhile) or an action is missing what it needs (``say`` without text).
    ``scorer_for(text)`` builds the scoring rules beyond the playbook's score steps for a turn whose
    lead text is ``text`` (as the conversation worker does: signals and engagement).
    ``policy`` puts every bot message through the outbound rules (see the module docstring).
    """
    clock = ManualClock(session.now)
    ports = Ports(
        interpreter=interpreter_for(clock),
        clock=clock,
        timezone=timezone,
        default_region=default_region,
        fallback_text=dict(fallback_text or {}),
        scorer=scorer_for(action.text or "") if scorer_for is not None else None,
        calendar=CalendarSlotSource(SandboxCalendar(clock=clock, timezone=timezone)),
    )
    state = _state_for(playbook, session)
    events: list[SimEvent] = []
    inbound_count = session.inbound_count
    sends = _Sends(
        policy=policy,
        last_outbound_at=session.last_outbound_at,
        last_inbound_at=session.last_inbound_at,
        sent_day=session.sent_day,
        sent_today=session.sent_today,
    )
    queue: list[Event] = []

    if action.kind == "start":
        state = new_state(playbook, language=session.language, lead={"language": session.language})
        inbound_count = 0
        sends = _Sends(policy=policy)
        text = (action.text or "").strip()
        if text:
            inbound_count = 1
            sends.last_inbound_at = clock.now()
            events.append(SimEvent(kind="lead", at=clock.now(), text=text))
            queue.append(StartEvent(trigger="inbound_unknown_lead", text=text))
        else:
            queue.append(StartEvent(trigger="lead_created"))
    elif action.kind == "say":
        text = (action.text or "").strip()
        if not text and not action.choice_id:
            raise SimulationError("say what? (text or choice_id)")
        if state is None:
            raise SimulationError("start the simulation first")
        inbound_count += 1
        last_out = sends.last_outbound_at
        reply_s = clock.now() - last_out if last_out is not None else None
        sends.last_inbound_at = clock.now()
        events.append(SimEvent(kind="lead", at=clock.now(), text=text or action.choice_id))
        queue.append(
            InboundEvent(
                text=text or (action.choice_id or ""),
                choice_id=action.choice_id,
                reply_seconds=reply_s,
                inbound_count=inbound_count,
            )
        )
    else:
        if state is None:
            raise SimulationError("start the simulation first")
        if action.seconds is None:
            raise SimulationError("advance by how many seconds?")
        target = clock.now() + float(action.seconds)
        # Fire every timer due before the target, each at its own due time, then land on the target.
        for _ in range(MAX_TURNS_PER_ACTION):
            timer = state.timer if state.status == "waiting" else None
            if timer is None or timer.due_at > target:
                break
            clock.set(max(clock.now(), timer.due_at))
            events.append(SimEvent(kind="timer_fired", at=clock.now(), step_id=timer.step_id))
            state = await _run(
                playbook, state, TimerFiredEvent(timer_id=timer.id), ports, events, sends, queue
            )
        clock.set(target)
        events.append(SimEvent(kind="clock", at=target))

    for _ in range(MAX_TURNS_PER_ACTION):
        if not queue:
            break
        event = queue.pop(0)
        state = await _run(playbook, state, event, ports, events, sends, queue)

    assert state is not None
    return SimResult(
        session=SimSession(
            state=state.model_dump(mode="json"),
            now=clock.now(),
            language=session.language,
            inbound_count=inbound_count,
            last_outbound_at=sends.last_outbound_at,
            last_inbound_at=sends.last_inbound_at,
            sent_day=sends.sent_day,
            sent_today=sends.sent_today,
        ),
        events=events,
        status=state.status,
        current_step=state.current_step,
        slots=dict(state.slots),
        score=state.score,
        qualified=state.qualified,
        timer_due_at=state.timer.due_at if state.timer and state.status == "waiting" else None,
        timezone=timezone,
    )


@dataclass(slots=True)
class _Sends:
    """The bot's sends so far, as the outbound rules see them (fields as :class:`SimSession`'s)."""

    policy: SimPolicy | None
    last_outbound_at: float | None = None
    last_inbound_at: float | None = None
    sent_day: str | None = None
    sent_today: int = 0

    def check(self, now: float, trigger: Trigger) -> tuple[str | None, float | None]:
        """A message the bot sends at ``now`` (epoch seconds), for ``trigger``: ``(None, None)``
        when the rules let it out at once (it counts for the day), else ``(reason, held_until)``
        (``held_until`` ``None``: blocked)."""
        self.last_outbound_at = now
        policy = self.policy
        if policy is None:
            return None, None
        day = datetime.fromtimestamp(now, policy.zone).date().isoformat()
        if day != self.sent_day:
            self.sent_day, self.sent_today = day, 0
        decision = decide(
            OutboundFacts(
                channel=policy.channel,
                trigger=trigger,
                now=now,
                zone=policy.zone,
                quiet_start=policy.quiet_start,
                quiet_end=policy.quiet_end,
                allow_direct_replies=policy.allow_direct_replies,
                last_inbound_at=self.last_inbound_at,
                sent_today=self.sent_today,
                daily_cap=policy.daily_cap,
            )
        )
        if decision.action in ("send", "send_template"):
            self.sent_today += 1
            return None, None
        return decision.reason, decision.until


def _trigger(event: Event) -> Trigger:
    """What the outbound rules call the cause of a turn's sends."""
    if isinstance(event, TimerFiredEvent):
        return "timer"
    if isinstance(event, StartEvent) and event.trigger == "lead_created":
        return "start"
    return "inbound"  # the lead wrote (or a booking they asked for was answered)


async def _run(
    playbook: Playbook,
    state: ConversationState | None,
    event: Event,
    ports: Ports,
    events: list[SimEvent],
    sends: _Sends,
    queue: list[Event],
) -> ConversationState:
    """One engine turn; its actions become feed events (a booking is answered on ``queue``)."""
    try:
        result = await advance(playbook, state, event, ports)
    except LeadWarmError as exc:
        raise SimulationError(f"the engine stopped: {exc}") from exc
    except (LookupError, TypeError, ValueError, AttributeError) as exc:
        # A session the page sent back that the engine cannot read (edited by hand, or from an
        # older draft): a clear 400 asking for a restart, never a 500.
        message = f"the simulation cannot go on from this state ({type(exc).__name__}): restart it"
        raise SimulationError(message) from exc
    now = ports.clock.now()
    for action in result.actions:
        data = action.model_dump(mode="json")
        kind = data.pop("type")
        if kind == "send":
            reason, held_until = sends.check(now, _trigger(event))
            events.append(
                SimEvent(
                    kind="bot",
                    at=now,
                    text=data["text"],
                    choices=data["choices"],
                    purpose=data["purpose"],
                    step_id=data["step_id"],
                    policy=reason,
                    held_until=held_until,
                )
            )
        elif kind == "slot_filled":
            events.append(SimEvent(kind="slot", at=now, slot=data["slot"], value=data["value"]))
        elif kind == "score_changed":
            coded = score_reasons.tagged(data)
            events.append(
                SimEvent(
                    kind="score",
                    at=now,
                    points=data["points"],
                    reason=data["reason"],
                    reason_code=coded.get("reason_code"),
                    reason_params=coded.get("reason_params"),
                    score=data["score"],
                    step_id=data["step_id"],
                )
            )
        elif kind == "lead_qualified":
            events.append(SimEvent(kind="qualified", at=now, score=data["score"]))
        elif kind == "timer_scheduled":
            timer = data["timer"]
            events.append(SimEvent(kind="timer", at=now, due_at=timer["due_at"], step_id=timer["step_id"]))
        elif kind == "handoff":
            events.append(SimEvent(kind="handoff", at=now, reason=data["reason"], step_id=data["step_id"]))
        elif kind == "ended":
            events.append(SimEvent(kind="ended", at=now, outcome=data["outcome"], step_id=data["step_id"]))
        elif kind == "opt_out":
            events.append(SimEvent(kind="opt_out", at=now, text=data.get("evidence")))
        elif isinstance(action, BookingRequested):
            slot = action.slot
            booking = {
                "id": f"sim-{action.request_id}",
                "provider": "simulator",
                "start": slot.start,
                "end": slot.end,
                "calendar_id": slot.calendar_id,
            }
            events.append(SimEvent(kind="booked", at=now, value=booking, step_id=action.step_id))
            queue.append(BookingEvent(outcome="booked", request_id=action.request_id, booking=booking))
    events.extend(SimEvent(kind="note", at=now, text=note) for note in result.notes)
    return result.state
