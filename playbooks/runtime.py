"""What the engine consumes and produces: conversation state, events, actions, and its ports.

The engine is a function of ``(playbook, state, event, ports)``; it does no I/O of its own. The
LLM (or the offline interpreter), the clock and the calendar reach it only through the ports
below, so that a test, the simulator and ``leadwarm playbook test`` replay a conversation exactly.

All models are pydantic so that the app can store them as JSON (``model_dump(mode="json")``).
Times are floats, seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from kernel.clock import Clock

__all__ = [
    "CALL_BACK_REASON",
    "HUMAN_REASON",
    "NOT_OFFERED_SLOT",
    "Action",
    "AskContext",
    "BookingCancelRequested",
    "BookingEvent",
    "BookingRequested",
    "ChoiceOption",
    "Clock",
    "ConversationEnded",
    "ConversationState",
    "EngineResult",
    "Event",
    "HandoffRequested",
    "InboundEvent",
    "Interpretation",
    "Interpreter",
    "LeadQualified",
    "MeetingBooked",
    "MeetingCancelled",
    "OfferedSlot",
    "OptOutRequested",
    "Ports",
    "ResumeEvent",
    "ScoreAdjustment",
    "ScoreChanged",
    "Scorer",
    "SendMessage",
    "SlotFilled",
    "SlotPick",
    "SlotSource",
    "StartEvent",
    "SyncRequested",
    "Timer",
    "TimerCancelled",
    "TimerFiredEvent",
    "TimerScheduled",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- state


class Timer(_Model):
    """A durable timer: the app stores it and fires ``TimerFiredEvent(timer_id=id)`` at ``due_at``."""

    id: str
    step_id: str
    due_at: float


class ConversationState(_Model):
    """The engine's view of one conversation; the app stores it on the conversation record.

    ``status``: ``active`` (bot is talking or waiting for an answer), ``waiting`` (a ``wait`` step
    holds a timer), ``handoff`` (a human has it; the bot stays silent), ``ended``.
    ``attempts`` counts invalid answers to the current ``ask`` step.
    """

    playbook_id: str
    playbook_version: int
    status: Literal["active", "waiting", "handoff", "ended"] = "active"
    current_step: str | None = None
    language: str = "en"
    lead_language: str | None = None
    """The language (ISO 639-1) of the lead's latest message with language evidence, ``None`` before
    the first: with ``language`` it decides when the conversation follows the lead into another
    language (:func:`playbooks.language.follow_language`)."""
    slots: dict[str, Any] = Field(default_factory=dict)
    score: int = 0
    attempts: int = 0
    timer: Timer | None = None
    score_applied: dict[str, int] = Field(default_factory=dict)
    """Points each scoring rule (``Ports.scorer``) has given so far, by rule key."""
    outcome: str | None = None
    qualified: bool = False
    lead: dict[str, Any] = Field(default_factory=dict)
    """Lead fields templates may read: name, first_name, phone, email, language (read-only)."""
    booking: dict[str, Any] = Field(default_factory=dict)
    """What a ``book`` step is doing: ``step_id``; ``offered`` (slots shown, as
    :class:`OfferedSlot` dicts); ``proposed`` (a time the lead asked for, confirmed back and
    awaiting yes); ``pending`` (``{"request_id", "slot"}``: the app is booking it); ``booked`` (the
    meeting: ``{"id", "provider", "start", "end", "calendar_id"}``); ``reschedule_of`` (the meeting
    being moved); ``resume`` (status and step to return to after a change made later)."""


# --------------------------------------------------------------------------- events


class StartEvent(_Model):
    """Start the playbook. ``trigger``: ``inbound_unknown_lead`` or ``lead_created``.

    With ``inbound_unknown_lead`` the first inbound text is passed as ``text`` so the engine can
    greet and then treat it (answer a question in it, fill slots it already gives).
    """

    kind: Literal["start"] = "start"
    trigger: Literal["inbound_unknown_lead", "lead_created"]
    text: str | None = None


class InboundEvent(_Model):
    """The lead wrote. ``choice_id`` is set when they tapped a reply button / list row."""

    kind: Literal["inbound"] = "inbound"
    text: str
    choice_id: str | None = None
    message_kind: str = "text"
    reply_seconds: float | None = None
    """How long the lead took to answer our last message (engagement scoring)."""
    inbound_count: int = 0
    """How many messages the lead has sent in this conversation, this one included."""


class TimerFiredEvent(_Model):
    """A timer the engine scheduled is due. Stale ids (not ``state.timer.id``) are ignored."""

    kind: Literal["timer"] = "timer"
    timer_id: str


class ResumeEvent(_Model):
    """A person hands the conversation back to the bot (it was in ``handoff``): run from
    ``step_id``; ``None`` ends the conversation (nothing left to run)."""

    kind: Literal["resume"] = "resume"
    step_id: str | None = None


class BookingEvent(_Model):
    """What became of a booking: the app's answer to :class:`BookingRequested`, or a change made
    outside the conversation (a provider webhook).

    ``outcome``: ``booked`` (``booking`` is the meeting: ``{"id", "provider", "start", "end",
    "calendar_id"}``, times epoch seconds), ``taken`` (the slot went meanwhile), ``failed`` (the
    calendar could not be reached; nothing was booked), ``cancelled`` or ``moved`` (changed
    outside the conversation; ``booking`` holds the new times when moved). ``request_id`` names
    the request answered (stale answers are ignored)."""

    kind: Literal["booking"] = "booking"
    outcome: Literal["booked", "taken", "failed", "cancelled", "moved"]
    request_id: str | None = None
    booking: dict[str, Any] | None = None
    reason: str = ""


Event = Annotated[
    StartEvent | InboundEvent | TimerFiredEvent | ResumeEvent | BookingEvent, Field(discriminator="kind")
]


# --------------------------------------------------------------------------- actions


class ChoiceOption(_Model):
    """A reply button (``id`` comes back as ``InboundEvent.choice_id``)."""

    id: str
    title: str


class SendMessage(_Model):
    """Send ``text`` to the lead (``choices`` as buttons where the channel has them).

    ``purpose``: ``step`` (a playbook message or question), ``reask`` (invalid answer),
    ``answer`` (an off-script question answered), ``fallback`` (nothing better to say),
    ``handoff``, ``followup`` (sent by a timer), ``ack`` (a value the lead gave confirmed back in
    passing, e.g. a call-back time in full), ``clarify`` (which of two close options was meant).
    ``step_id`` names the step that produced it.
    ``channel`` is the step's channel override, if any.
    """

    type: Literal["send"] = "send"
    text: str
    choices: list[ChoiceOption] = Field(default_factory=list)
    purpose: Literal["step", "reask", "answer", "fallback", "handoff", "followup", "ack", "clarify"] = "step"
    step_id: str | None = None
    channel: str | None = None
    template: dict[str, Any] | None = None
    """The step's WhatsApp template (name, language, parameters), used outside the 24-hour window."""


class SlotFilled(_Model):
    type: Literal["slot_filled"] = "slot_filled"
    slot: str
    value: Any
    evidence: str | None = None
    source: str = "answer"


class ScoreChanged(_Model):
    """The score moved by ``points`` (may be negative) for ``reason``; ``score`` is the new total.
    ``reason_code`` and ``reason_params``: the reason as a code with its parameters when the
    engine or the scoring port wrote it (a page says it in its reader's language); ``None`` for a
    playbook author's own words."""

    type: Literal["score_changed"] = "score_changed"
    points: int
    reason: str
    score: int
    evidence: str | None = None
    step_id: str | None = None
    reason_code: str | None = None
    reason_params: dict[str, Any] = Field(default_factory=dict)


class LeadQualified(_Model):
    """The score reached the playbook's ``qualification_threshold`` (emitted once)."""

    type: Literal["lead_qualified"] = "lead_qualified"
    score: int
    threshold: int


class TimerScheduled(_Model):
    type: Literal["timer_scheduled"] = "timer_scheduled"
    timer: Timer


class TimerCancelled(_Model):
    type: Literal["timer_cancelled"] = "timer_cancelled"
    timer_id: str


HUMAN_REASON = "lead asked for a human"
"""A :class:`HandoffRequested` reason: the lead asked for a person in their words."""
CALL_BACK_REASON = "lead asked to be called back"
"""A :class:`HandoffRequested` reason: the lead asked for a person by phone ("vous pouvez me
rappeler ?", "can someone call me back?"); the app tells them they will be called back."""


class HandoffRequested(_Model):
    """The conversation goes to a person. ``reason``: :data:`HUMAN_REASON`,
    :data:`CALL_BACK_REASON`, a playbook ``handoff`` step's reason or why the bot gave up."""

    type: Literal["handoff"] = "handoff"
    reason: str
    step_id: str | None = None


class SyncRequested(_Model):
    """A ``sync`` step asked the app to push the lead to the CRM now: to the connection named by
    ``integration`` (an id or a provider), or to every CRM connection when it is ``None``."""

    type: Literal["sync_requested"] = "sync_requested"
    integration: str | None = None
    step_id: str | None = None


class OptOutRequested(_Model):
    """The lead asked, in their own words, not to be contacted any more ("please stop emailing me",
    "ne m'écrivez plus"). The app records it in its opt-out ledger for the conversation's channel
    (and sends nothing more); ``evidence`` quotes the words that said so."""

    type: Literal["opt_out"] = "opt_out"
    evidence: str | None = None
    step_id: str | None = None


class OfferedSlot(_Model):
    """A free slot shown to the lead: ``start``/``end`` epoch seconds; ``calendar_id`` the
    salesperson's calendar when the provider has several. ``id`` is its reply-button id."""

    start: float
    end: float
    calendar_id: str | None = None

    @property
    def id(self) -> str:
        """``slot-<start>``: the choice id of this slot's button."""
        return f"slot-{round(self.start)}"


class BookingRequested(_Model):
    """Book ``slot`` for the lead (the app does it, in a durable job, then answers with a
    :class:`BookingEvent` carrying ``request_id``). ``reschedule_of`` is the meeting to move
    (booked first, then the old one cancelled); ``title`` the meeting's title."""

    type: Literal["book"] = "book"
    request_id: str
    slot: OfferedSlot
    title: str
    step_id: str | None = None
    reschedule_of: dict[str, Any] | None = None


class BookingCancelRequested(_Model):
    """Cancel the lead's meeting ``booking`` (as in :attr:`ConversationState.booking`), at the
    lead's request."""

    type: Literal["cancel_booking"] = "cancel_booking"
    booking: dict[str, Any]
    reason: str = ""


class MeetingBooked(_Model):
    """A meeting is on the calendar (``booking`` as in :attr:`ConversationState.booking`);
    ``rescheduled`` when it replaces an earlier one."""

    type: Literal["meeting_booked"] = "meeting_booked"
    booking: dict[str, Any]
    rescheduled: bool = False


class MeetingCancelled(_Model):
    """The lead's meeting is cancelled (by the lead, or outside the conversation)."""

    type: Literal["meeting_cancelled"] = "meeting_cancelled"
    booking: dict[str, Any]
    reason: str = ""


class ConversationEnded(_Model):
    type: Literal["ended"] = "ended"
    outcome: str
    step_id: str | None = None


Action = Annotated[
    SendMessage
    | SlotFilled
    | ScoreChanged
    | LeadQualified
    | TimerScheduled
    | TimerCancelled
    | HandoffRequested
    | SyncRequested
    | ConversationEnded
    | OptOutRequested
    | BookingRequested
    | BookingCancelRequested
    | MeetingBooked
    | MeetingCancelled,
    Field(discriminator="type"),
]


class EngineResult(_Model):
    state: ConversationState
    actions: list[Action] = Field(default_factory=list)
    interpretation: Interpretation | None = None
    """What the interpreter read in the lead's message this turn (sentiment, intent...), if any."""
    notes: list[str] = Field(default_factory=list)
    """Diagnostics for the playbook author (a condition that failed at runtime and counted as
    false, a slot value the interpreter gave that did not validate, a stale timer...). Never
    shown to the lead; the simulator and ``leadwarm playbook test`` print them."""


# --------------------------------------------------------------------------- ports


NOT_OFFERED_SLOT = "not_offered"
"""The slot (and the :class:`AskContext` among ``others``) of the projects a playbook does not offer
(``Playbook.not_offered``): its value is the topic id the lead asked for."""


class AskContext(_Model):
    """What the interpreter needs to know about the question being answered (if any).

    ``others``: the playbook's other ask steps whose slot is still empty, in playbook order, each
    with its question, choices and synonyms (their own ``others`` empty), so that one message can
    answer several questions; a value read for one of them is skipped later (``skip_if_filled``).
    ``answered``: the ask steps already answered (number, choice, e-mail, phone and postcode
    questions), nearest the pending one first, at most four, so that a message correcting one
    ("non en fait c'est 200 €", "actually it's more like 200") replaces its value.
    """

    step_id: str
    slot: str
    kind: Literal["text", "yes_no", "number", "email", "phone", "datetime", "choice"]
    question: str
    choices: list[ChoiceOption] = Field(default_factory=list)
    choice_synonyms: dict[str, list[str]] = Field(default_factory=dict)
    others: list[AskContext] = Field(default_factory=list)
    answered: list[AskContext] = Field(default_factory=list)
    not_offered: AskContext | None = None
    """The projects the playbook does not offer (slot :data:`NOT_OFFERED_SLOT`, a choice), to be
    heard anywhere in the message, its questions included; ``None`` when it declares none."""


class Interpretation(_Model):
    """What a lead's message means, as the interpreter understood it.

    ``slots``: values found for the asked slot and any other slot of the playbook, already
    normalised to the slot kind (bool for yes_no, float for number, E.164 str for phone,
    ISO-8601 str with offset for datetime, choice id for choice). ``evidence`` maps a slot to the
    quoted words that gave it. ``answer`` is a reply to an off-script question (from the
    knowledge base or the model), ``None`` when there was none. ``language`` is an ISO 639-1 code
    when the interpreter is confident, else ``None``.
    """

    language: str | None = None
    intent: str = "answer"
    """``answer``, ``question``, ``wants_human``, ``not_interested``, ``opt_out`` (stop contacting
    me, in free words), ``auto_reply`` (out-of-office or other automatic text) or ``small_talk``
    (hello, thanks). A message can both answer and ask: slots are filled and ``intent`` is
    ``question``."""
    slots: dict[str, Any] = Field(default_factory=dict)
    evidence: dict[str, str] = Field(default_factory=dict)
    answer: str | None = None
    sentiment: float | None = None
    signals: dict[str, Any] = Field(default_factory=dict)
    """Qualification signals (budget, authority, need, timeline), each ``None`` or
    ``{"level": "none"|"low"|"medium"|"high", "evidence": str}``; empty from the offline interpreter."""
    reply_generated: bool = False
    """True when ``answer`` was written by the model (and passed the guardrails)."""
    usage: dict[str, Any] | None = None
    """What reading this message cost on the model, when a model was asked: ``model``, ``calls``,
    ``prompt_tokens``, ``cached_tokens``, ``completion_tokens``, ``cost_micro_usd`` (1e-6 USD),
    ``fallback`` (why the offline path answered, or ``None``), ``regenerated``."""
    other: dict[str, str] = Field(default_factory=dict)
    """Choice slots the lead answered with none of the options ("other", a kitchen when the
    options are insulation or heating): slot -> the lead's own words, kept for the team."""
    declined: list[str] = Field(default_factory=list)
    """Choice slots of ``other`` where the lead said outright that none of the options fits ("none
    of these", "autre chose"): their words are kept at once. Other words in ``other`` that match no
    option make the engine say the options again once before keeping them."""
    clarify: dict[str, list[str]] = Field(default_factory=dict)
    """Choice slots where two options fit the words about equally: slot -> the close choice ids
    (best first); the engine asks which one was meant instead of guessing."""
    also: dict[str, list[str]] = Field(default_factory=dict)
    """Choice slots the lead answered with several options at once ("les deux : combles et pac"):
    slot -> the other choice ids named (the slot holds the first one named); the engine keeps
    them in ``<slot>_also`` for the team rather than asking which one was meant."""
    asks_offer: str | None = None
    """The words X of a question asking whether the business does X ("do you do plumbing?",
    "vous faites la plomberie ?"), as the lead wrote them; the engine answers it from the
    playbook's offers (``not_offered.offer_step``) when the knowledge base did not (``answer``)."""
    asks_offer_verb: str | None = None
    """With ``asks_offer``: the verb the question asks with, folded ("install", "do", "faites",
    "installez"); the engine's yes says it back ("Yes, we install solar panels.")."""
    call_back: bool = False
    """With ``intent`` ``wants_human``: the person is asked for on the phone ("vous pouvez me
    rappeler ?", "can someone call me back? my number is …"), not here in writing."""
    remarks: dict[str, str] = Field(default_factory=dict)
    """What the lead said about a topic no slot of the playbook asks about, kept for the team:
    topic -> the lead's words (``budget``: "budget maybe 8k"). The engine keeps them in
    ``<topic>_other`` and says it noted them."""
    fuzzy: list[str] = Field(default_factory=list)
    """Choice slots of ``slots`` whose option was read from misspelt or partial words ("isolasion
    des comble"): the engine says the option back ("C'est noté : « Isolation des combles »") so
    the lead can correct it."""


@runtime_checkable
class Interpreter(Protocol):
    """Port: reads a lead's message. Offline rules by default; GPT when a key is set."""

    async def interpret(
        self,
        *,
        text: str,
        choice_id: str | None,
        ask: AskContext | None,
        open_slots: dict[str, str],
        state: ConversationState,
    ) -> Interpretation:
        """``open_slots`` maps every unfilled slot of the playbook to its kind."""
        ...


class ScoreAdjustment(Protocol):
    """One scoring rule's verdict: ``points`` (may be negative) for ``reason``, quoting
    ``evidence`` (the lead's words) when there is one; ``key`` names the rule, so it counts once.
    ``code`` and ``params`` are the reason as a code with its parameters (``""``: none), carried to
    :class:`ScoreChanged` as they are."""

    @property
    def points(self) -> int: ...

    @property
    def reason(self) -> str: ...

    @property
    def evidence(self) -> str | None: ...

    @property
    def key(self) -> str: ...

    @property
    def code(self) -> str: ...

    @property
    def params(self) -> Mapping[str, Any]: ...


@runtime_checkable
class Scorer(Protocol):
    """Port: scoring rules beyond the playbook's score steps (qualification signals, engagement).

    Called once per interpreted message; ``reply_seconds`` is how long the lead took to answer,
    ``inbound_count`` how many messages they sent so far, ``applied`` the points each rule key has
    already given in this conversation (so a rule never counts twice).
    """

    def __call__(
        self,
        interpretation: Interpretation,
        *,
        reply_seconds: float | None,
        inbound_count: int,
        applied: Mapping[str, int],
    ) -> Sequence[ScoreAdjustment]: ...


class SlotPick(_Model):
    """What a reply to an offer means: ``slot`` (one of the offered), else ``requested`` (epoch
    seconds of another start the lead asked for), else ``ambiguous`` (several offered fit)."""

    slot: OfferedSlot | None = None
    requested: float | None = None
    ambiguous: list[OfferedSlot] = Field(default_factory=list)


@runtime_checkable
class SlotSource(Protocol):
    """Port: the tenant's calendar as the engine sees it (read-only; booking is an action).

    Times are epoch seconds; ``timezone`` the lead's IANA zone; ``language`` ISO 639-1. Errors
    from the calendar propagate as :class:`kernel.errors.LeadWarmError` (the engine tells the lead
    and moves on)."""

    async def free_slots(self, *, start: float, end: float, duration_s: int) -> list[OfferedSlot]:
        """Every free slot of ``duration_s`` seconds in ``[start, end)``, by start."""
        ...

    async def slot_at(self, start: float, *, duration_s: int) -> OfferedSlot | None:
        """The free slot starting at ``start`` (within a minute), or ``None``."""
        ...

    def spread(self, slots: Sequence[OfferedSlot], *, count: int, timezone: str) -> list[OfferedSlot]:
        """At most ``count`` of ``slots`` spread over days, in the lead's waking hours."""
        ...

    def match(
        self, text: str, offered: Sequence[OfferedSlot], *, timezone: str, language: str, now: float
    ) -> SlotPick:
        """Understand a reply ("1", "the second one", "mardi 14h", "Friday at 10")."""
        ...


class Ports(_Model):
    """Everything the engine may consult, passed in on every call."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    interpreter: Interpreter
    clock: Clock
    timezone: str = "UTC"
    """The lead's IANA time zone, for parsing dates such as 'tomorrow at 2pm'."""
    default_region: str | None = None
    """ISO 3166 region for phone numbers written without a country code (e.g. 'FR')."""
    fallback_text: dict[str, str] = Field(default_factory=dict)
    """Per-language polite fallback when nothing else fits, e.g. {'en': ..., 'fr': ...}."""
    scorer: Scorer | None = None
    """Optional scoring rules beyond the playbook's score steps: a callable
    ``(interpretation, *, reply_seconds, inbound_count, applied) -> list`` of objects with
    ``points`` (int), ``reason`` (str), ``evidence`` (str | None) and ``key`` (str); ``applied`` maps
    each key to the points it already gave in this conversation, so rules never count twice."""
    calendar: SlotSource | None = None
    """The tenant's calendar for ``book`` steps; ``None``: a ``book`` step goes to its ``on_fail``."""
