"""The playbook engine: ``(playbook, state, event, ports) -> new state + actions``.

Deterministic: the only clock is ``ports.clock.now()``, the only reader of the lead's words is
``ports.interpreter``; nothing here does I/O, draws random numbers or raises on bad playbook
logic (a runaway loop becomes a handoff). The input state is never mutated.

A run executes steps from a given step until one needs the lead or time: an ``ask`` (question
sent, status ``active``), a ``wait`` (timer scheduled, status ``waiting``), a ``handoff``
(status ``handoff``) or an ``end`` (status ``ended``). Falling off the last step ends the
conversation with outcome ``completed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from kernel.clock import SystemClock
from playbooks.expressions import evaluate, render, template_context
from playbooks.runtime import (
    Action,
    AskContext,
    ChoiceOption,
    ConversationEnded,
    ConversationState,
    EngineResult,
    Event,
    HandoffRequested,
    InboundEvent,
    Interpretation,
    LeadQualified,
    OptOutRequested,
    Ports,
    ResumeEvent,
    ScoreChanged,
    SendMessage,
    SlotFilled,
    StartEvent,
    Timer,
    TimerCancelled,
    TimerFiredEvent,
    TimerScheduled,
)
from playbooks.schema import (
    AskStep,
    ConditionStep,
    EndStep,
    HandoffStep,
    MessageStep,
    Playbook,
    ScoreStep,
    WaitStep,
    pick_language,
)
from playbooks.slots import normalise, render_datetime

__all__ = [
    "DEFAULT_FALLBACK",
    "DEFAULT_INVALID",
    "ENGINE_TEXTS",
    "MAX_STEPS_PER_ADVANCE",
    "advance",
    "ask_context",
    "new_state",
]

MAX_STEPS_PER_ADVANCE = 100
"""More steps than this in one call means the playbook loops: the engine hands off instead."""

DEFAULT_INVALID: dict[str, str] = {
    "en": "Sorry, I didn't quite get that.",
    "fr": "Pardon, je n'ai pas bien compris.",
    "es": "Perdón, no lo he entendido bien.",
    "de": "Entschuldigung, das habe ich nicht ganz verstanden.",
    "it": "Scusi, non ho capito bene.",
    "nl": "Sorry, dat begreep ik niet helemaal.",
    "pt": "Desculpe, não entendi bem.",
}
"""Said before re-asking when an ``ask`` step has no ``invalid`` text."""

DEFAULT_FALLBACK: dict[str, str] = {
    "en": "Thanks for your message! Someone from our team will get back to you shortly.",
    "fr": "Merci pour votre message ! Un membre de notre équipe revient vers vous rapidement.",
    "es": "¡Gracias por su mensaje! Alguien de nuestro equipo le responderá en breve.",
    "de": "Danke für Ihre Nachricht! Jemand aus unserem Team meldet sich in Kürze bei Ihnen.",
}
"""Used when ``Ports.fallback_text`` has no text for the language."""

ENGINE_TEXTS: dict[str, dict[str, str]] = {
    "not_interested": {
        "en": "Understood, thank you for letting us know! If your plans change, just reply to this message.",
        "fr": "C'est noté, merci de nous avoir prévenus ! Si votre projet évolue, il vous suffit de "
        "répondre à ce message.",
    },
    "opt_out": {
        "en": "Understood – you won't receive any more messages from us. Have a good day!",
        "fr": "C'est noté – vous ne recevrez plus de messages de notre part. Belle journée !",
    },
    "pass_on": {
        "en": "Good question – I'll pass it on to an adviser, who will get back to you about it.",
        "fr": "Bonne question – je la transmets à un conseiller, qui vous répondra.",
    },
    "noted_when": {"en": "Noted: {when}.", "fr": "C'est noté : {when}."},
    "noted_also": {"en": "Thanks, I've also noted {items}.", "fr": "Merci, j'ai aussi noté {items}."},
    "noted_phone": {
        "en": "I've noted the number {number} – just tell me if it isn't right.",
        "fr": "J'ai noté le numéro {number} – dites-le-moi s'il n'est pas correct.",
    },
    "noted_other": {
        "en": "Thanks, I've noted that for your adviser.",
        "fr": "Merci, je le note pour votre conseiller.",
    },
    "clarify": {
        "en": "Just to be sure – do you mean {options}?",
        "fr": "Pour être sûr : vous voulez dire {options} ?",
    },
    "or": {"en": "or", "fr": "ou"},
    "and": {"en": "and", "fr": "et"},
    "your_email": {"en": "your e-mail address", "fr": "votre adresse e-mail"},
    "your_phone": {"en": "your phone number", "fr": "votre numéro de téléphone"},
}
"""Texts the engine says on its own (French and English; other languages get English): the
polite end after "not interested", the confirmation of an opt-out, "I'll pass your question on",
values confirmed in passing, and the clarifying question between two close options."""

_HUMAN_REASON = "lead asked for a human"

Purpose = Literal["step", "reask", "answer", "fallback", "handoff", "followup", "ack", "clarify"]


def new_state(
    playbook: Playbook, *, language: str | None = None, lead: dict[str, Any] | None = None
) -> ConversationState:
    """A fresh state for ``playbook`` (status ``active``, no step yet).

    ``language``: the lead's ISO 639-1 language if known (else the playbook's); ``lead``: fields
    templates may read (name, first_name, phone, email...).
    """
    return ConversationState(
        playbook_id=playbook.id,
        playbook_version=playbook.version,
        language=language or playbook.language,
        lead=dict(lead or {}),
    )


@dataclass
class _Turn:
    """One call of :func:`advance`: the state being built and the actions produced."""

    playbook: Playbook
    state: ConversationState
    ports: Ports
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    steps_run: int = 0
    purpose: Purpose = "step"
    peek: bool = False
    peeked: AskStep | None = None
    pending_answer: str | None = None
    pending_ack: str | None = None
    pending_human: bool = False
    interpretation: Interpretation | None = None
    engagement: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------- texts

    def context(self) -> dict[str, Any]:
        s = self.state
        return template_context(lead=s.lead, slots=s.slots, score=s.score, language=s.language)

    def text(self, localized: str | dict[str, str]) -> str:
        chosen = pick_language(localized, self.state.language, self.playbook.language)
        return render(chosen, self.context(), notes=self.notes).strip()

    def send(
        self, text: str, *, purpose: Purpose, step: Any = None, choices: list[ChoiceOption] | None = None
    ) -> None:
        self.actions.append(
            SendMessage(
                text=text,
                choices=choices or [],
                purpose=purpose,
                step_id=step.id if step is not None else None,
                channel=getattr(step, "channel", None),
                template=(
                    step.whatsapp_template.model_dump()
                    if getattr(step, "whatsapp_template", None) is not None
                    else None
                ),
            )
        )

    def flush_answer(self) -> None:
        if self.pending_answer:
            self.send(self.pending_answer, purpose="answer")
            self.pending_answer = None
        if self.pending_ack:
            self.send(self.pending_ack, purpose="ack")
            self.pending_ack = None

    def say(self, key: str, **values: str) -> str:
        """One of :data:`ENGINE_TEXTS` in the lead's language (English when it has none)."""
        texts = ENGINE_TEXTS[key]
        chosen = texts.get(self.state.language) or texts.get(self.playbook.language) or texts["en"]
        return chosen.format(**values)

    # ------------------------------------------------------------- helpers

    def next_of(self, step: Any) -> str | None:
        return step.next or self.playbook.following(step.id)

    def filled(self, slot: str) -> bool:
        value = self.state.slots.get(slot)
        return value is not None and value != ""

    def choices(self, step: AskStep) -> list[ChoiceOption]:
        return [ChoiceOption(id=c.id, title=self.text(c.title)) for c in step.choices]

    def question(self, step: AskStep) -> str:
        return self.text(step.question)


def _within_bounds(playbook: Playbook, slot: str, value: Any) -> bool:
    for step in playbook.asks_for(slot):
        if step.min is not None and value < step.min:
            return False
        if step.max is not None and value > step.max:
            return False
    return True


# --------------------------------------------------------------------------- running steps


def _handoff(turn: _Turn, *, reason: str, step: HandoffStep | None = None) -> None:
    state = turn.state
    _cancel_timer(turn)
    state.status = "handoff"
    state.current_step = step.id if step else None
    if step is not None and step.message is not None:
        turn.send(turn.text(step.message), purpose="handoff", step=step)
    turn.actions.append(HandoffRequested(reason=reason, step_id=step.id if step else None))


def _finish(turn: _Turn, *, outcome: str, step: EndStep | None = None) -> None:
    state = turn.state
    _cancel_timer(turn)
    state.status = "ended"
    state.outcome = outcome
    state.current_step = step.id if step else None
    if step is not None and step.message is not None:
        turn.send(turn.text(step.message), purpose=turn.purpose, step=step)
    turn.actions.append(ConversationEnded(outcome=outcome, step_id=step.id if step else None))


def _cancel_timer(turn: _Turn) -> None:
    if turn.state.timer is not None:
        turn.actions.append(TimerCancelled(timer_id=turn.state.timer.id))
        turn.state.timer = None


def _score(turn: _Turn, step: ScoreStep) -> None:
    if step.if_ is not None and not evaluate(step.if_, turn.context(), notes=turn.notes):
        return
    _add_points(turn, step.points, step.reason, step_id=step.id)


def _add_points(
    turn: _Turn, points: int, reason: str, *, evidence: str | None = None, step_id: str | None = None
) -> int:
    """Move the score (kept within 0-100), record why, emit LeadQualified once; returns the
    points actually applied."""
    state = turn.state
    before = state.score
    state.score = max(0, min(100, before + points))
    turn.actions.append(
        ScoreChanged(
            points=state.score - before, reason=reason, score=state.score, evidence=evidence, step_id=step_id
        )
    )
    _check_threshold(turn)
    return state.score - before


def _check_threshold(turn: _Turn) -> None:
    state = turn.state
    threshold = turn.playbook.qualification_threshold
    if threshold is not None and not state.qualified and state.score >= threshold:
        state.qualified = True
        turn.actions.append(LeadQualified(score=state.score, threshold=threshold))


def _wait(turn: _Turn, step: WaitStep) -> None:
    state = turn.state
    state.status = "waiting"
    state.current_step = step.id
    state.attempts = 0
    seconds = step.seconds
    if seconds is None:
        state.timer = None
        return
    now = float(turn.ports.clock.now())
    timer = Timer(id=f"{step.id}:{round(now * 1000)}", step_id=step.id, due_at=now + seconds)
    state.timer = timer
    turn.actions.append(TimerScheduled(timer=timer))


def _ask(turn: _Turn, step: AskStep) -> None:
    state = turn.state
    state.status = "active"
    state.current_step = step.id
    state.attempts = 0
    turn.send(turn.question(step), purpose=turn.purpose, step=step, choices=turn.choices(step))


def _run(turn: _Turn, step_id: str | None) -> None:
    """Execute steps from ``step_id`` until one needs the lead, time or a human."""
    playbook = turn.playbook
    while True:
        if step_id is None:
            if turn.peek:
                return
            turn.flush_answer()
            _finish(turn, outcome="completed")
            return
        turn.steps_run += 1
        if turn.steps_run > MAX_STEPS_PER_ADVANCE:
            turn.notes.append(
                f"more than {MAX_STEPS_PER_ADVANCE} steps in one turn (at {step_id!r}): handing off"
            )
            if not turn.peek:
                turn.flush_answer()
                _handoff(turn, reason="playbook loop")
            return
        step = playbook.step(step_id)
        if step is None:
            turn.notes.append(
                f"step {step_id!r} is not in playbook {playbook.id!r} v{playbook.version}: handing off"
            )
            if not turn.peek:
                _handoff(turn, reason=f"unknown step {step_id}")
            return
        if isinstance(step, MessageStep):
            turn.send(turn.text(step.text), purpose=turn.purpose, step=step)
            step_id = turn.next_of(step)
        elif isinstance(step, ScoreStep):
            _score(turn, step)
            step_id = turn.next_of(step)
        elif isinstance(step, ConditionStep):
            if evaluate(step.if_, turn.context(), notes=turn.notes):
                step_id = step.then
            else:
                step_id = step.else_ or turn.next_of(step)
        elif isinstance(step, AskStep):
            if step.skip_if_filled and turn.filled(step.slot):
                step_id = turn.next_of(step)
                continue
            if turn.peek:
                turn.peeked = step
                return
            if turn.pending_human:
                turn.flush_answer()
                _handoff(turn, reason=_HUMAN_REASON)
                return
            turn.flush_answer()
            _ask(turn, step)
            return
        else:
            if turn.peek:
                return
            turn.flush_answer()
            if isinstance(step, WaitStep):
                if turn.pending_human:
                    _handoff(turn, reason=_HUMAN_REASON)
                else:
                    _wait(turn, step)
            elif isinstance(step, HandoffStep):
                _handoff(turn, reason=step.reason, step=step)
            else:
                _finish(turn, outcome=step.outcome, step=step)
            return


# --------------------------------------------------------------------------- reading the lead


def _ask_context(turn: _Turn, step: AskStep, *, with_others: bool = True) -> AskContext:
    synonyms: dict[str, list[str]] = {}
    for choice in step.choices:
        titles = [] if isinstance(choice.title, str) else list(choice.title.values())
        synonyms[choice.id] = list(dict.fromkeys([*titles, *choice.synonyms]))
    others: list[AskContext] = []
    if with_others:
        seen = {step.slot}
        for other in turn.playbook.steps:
            if isinstance(other, AskStep) and other.slot not in seen and not turn.filled(other.slot):
                seen.add(other.slot)
                others.append(_ask_context(turn, other, with_others=False))
    return AskContext(
        step_id=step.id,
        slot=step.slot,
        kind=step.kind,
        question=turn.question(step),
        choices=turn.choices(step),
        choice_synonyms=synonyms,
        others=others,
    )


class _Unread:
    """An interpreter that reads nothing: :func:`ask_context` renders texts, it does not interpret."""

    async def interpret(
        self,
        *,
        text: str,
        choice_id: str | None,
        ask: AskContext | None,
        open_slots: dict[str, str],
        state: ConversationState,
    ) -> Interpretation:
        return Interpretation()


def ask_context(
    playbook: Playbook, step_id: str, *, state: ConversationState | None = None, ports: Ports | None = None
) -> AskContext:
    """The :class:`AskContext` the engine gives the interpreter when ``step_id`` (an ``ask`` step
    of ``playbook``) is pending in ``state`` (a fresh state when omitted): its question and
    choices in the state's language, and ``others``, every other ask step whose slot is empty.
    Raises ``ValueError`` when ``step_id`` is not an ask step of the playbook."""
    step = playbook.step(step_id)
    if not isinstance(step, AskStep):
        raise ValueError(f"{step_id!r} is not an ask step of playbook {playbook.id!r}")
    turn = _Turn(
        playbook=playbook,
        state=(state or new_state(playbook)).model_copy(deep=True),
        ports=ports or Ports(interpreter=_Unread(), clock=SystemClock()),
    )
    return _ask_context(turn, step)


async def _interpret(
    turn: _Turn, *, text: str, choice_id: str | None, ask: AskStep | None
) -> tuple[Interpretation, set[str]]:
    """Ask the interpreter, apply its language and slots; return it and the slots it filled."""
    state = turn.state
    open_slots = {slot: kind for slot, kind in turn.playbook.slot_kinds().items() if not turn.filled(slot)}
    if ask is not None:
        open_slots.setdefault(ask.slot, ask.kind)
    interpretation: Interpretation = await turn.ports.interpreter.interpret(
        text=text,
        choice_id=choice_id,
        ask=_ask_context(turn, ask) if ask is not None else None,
        open_slots=open_slots,
        state=state.model_copy(deep=True),
    )
    if interpretation.language:
        state.language = interpretation.language.lower()
    turn.interpretation = interpretation
    filled = _apply_slots(turn, interpretation, ask)
    _apply_scorer(turn, interpretation)
    return interpretation, filled


def _apply_scorer(turn: _Turn, interpretation: Interpretation) -> None:
    """Points from the scoring port (qualification signals, engagement), each rule counted once."""
    scorer = turn.ports.scorer
    if scorer is None:
        return
    state = turn.state
    adjustments = scorer(
        interpretation,
        reply_seconds=turn.engagement.get("reply_seconds"),
        inbound_count=int(turn.engagement.get("inbound_count", 0)),
        applied=dict(state.score_applied),
    )
    for adjustment in adjustments:
        if not adjustment.points:
            continue
        _add_points(turn, int(adjustment.points), str(adjustment.reason), evidence=adjustment.evidence)
        state.score_applied[adjustment.key] = state.score_applied.get(adjustment.key, 0) + int(
            adjustment.points
        )


def _apply_slots(turn: _Turn, interpretation: Interpretation, ask: AskStep | None) -> set[str]:
    state, ports = turn.state, turn.ports
    kinds = turn.playbook.slot_kinds()
    filled: set[str] = set()
    for slot, raw in interpretation.slots.items():
        kind = kinds.get(slot)
        if kind is None:
            turn.notes.append(f"interpreter gave slot {slot!r}, which the playbook does not ask: ignored")
            continue
        value = normalise(
            kind,
            raw,
            language=state.language,
            choices=turn.playbook.choice_labels(slot),
            now=float(ports.clock.now()),
            timezone=ports.timezone,
            default_region=ports.default_region,
        )
        if value is None or (kind == "number" and not _within_bounds(turn.playbook, slot, value)):
            turn.notes.append(f"value {raw!r} for slot {slot!r} ({kind}) is not valid: ignored")
            continue
        filled.add(slot)
        if state.slots.get(slot) == value:
            continue
        state.slots[slot] = value
        source = "answer" if ask is not None and slot == ask.slot else "mention"
        turn.actions.append(
            SlotFilled(slot=slot, value=value, evidence=interpretation.evidence.get(slot), source=source)
        )
    return filled


def _acknowledge(turn: _Turn, interpretation: Interpretation, filled: set[str], ask: AskStep | None) -> None:
    """Say back, before the next question, what this message gave besides the answer asked for
    (each value in its own words, a moment in full) and the moment just agreed."""
    state, ports = turn.state, turn.ports
    kinds = turn.playbook.slot_kinds()
    parts: list[str] = []

    def when(value: Any) -> str:
        try:
            return render_datetime(
                value, language=state.language, timezone=ports.timezone, now=float(ports.clock.now())
            )
        except (TypeError, ValueError):
            return str(value)

    if ask is not None and ask.slot in filled and kinds.get(ask.slot) == "datetime":
        parts.append(turn.say("noted_when", when=when(state.slots[ask.slot])))
    for slot in sorted(filled):
        if kinds.get(slot) == "phone" and slot in interpretation.slots:
            doubtful = _doubtful_phone(state.slots.get(slot))
            if doubtful is not None:
                parts.append(turn.say("noted_phone", number=doubtful))
    items: list[str] = []
    contacts: list[str] = []  # named, not repeated: the lead just typed them
    for slot in interpretation.slots:
        if slot not in filled or (ask is not None and slot == ask.slot):
            continue
        kind = kinds.get(slot)
        if slot not in state.slots:
            continue
        if kind in ("email", "phone"):
            contacts.append(turn.say("your_email" if kind == "email" else "your_phone"))
        elif kind == "datetime":
            items.append(when(state.slots[slot]))
        elif kind == "choice":
            titles = {c.id: turn.text(c.title) for step in turn.playbook.asks_for(slot) for c in step.choices}
            items.append(_quote(turn, titles.get(str(state.slots[slot]), str(state.slots[slot]))))
        else:
            items.append(_quote(turn, interpretation.evidence.get(slot) or str(state.slots[slot])))
    if not items and contacts and ask is not None and ask.slot not in filled:
        # Only contact details came while another question waits: say so rather than "I didn't
        # understand", then ask the question again.
        items = contacts
    if items:
        listed = items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {turn.say('and')} {items[-1]}"
        parts.append(turn.say("noted_also", items=listed))
    if parts:
        turn.pending_ack = " ".join(parts)


def _doubtful_phone(value: Any) -> str | None:
    """A number of the right length that libphonenumber does not know as assigned: its
    international form, to be confirmed with the lead; ``None`` for a valid number."""
    import phonenumbers

    if not isinstance(value, str):
        return None
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _quote(turn: _Turn, words: str) -> str:
    return f"« {words} »" if turn.state.language == "fr" else f"“{words}”"


# --------------------------------------------------------------------------- events


async def _start(turn: _Turn, event: StartEvent) -> None:
    state = turn.state
    if event.trigger not in turn.playbook.triggers:
        turn.notes.append(f"playbook {turn.playbook.id!r} is not meant for trigger {event.trigger!r}")
    _cancel_timer(turn)
    # a (re)start runs the whole playbook again: slots are kept (their questions are skipped),
    # the score is rebuilt by the score steps
    state.status, state.current_step, state.attempts, state.outcome = "active", None, 0, None
    state.score, state.qualified, state.score_applied = 0, False, {}
    first = turn.playbook.steps[0].id
    if event.text and event.text.strip():
        scout = _Turn(turn.playbook, state.model_copy(deep=True), turn.ports, peek=True)
        _run(scout, first)
        turn.notes.extend(scout.notes)
        interpretation, filled = await _interpret(turn, text=event.text, choice_id=None, ask=scout.peeked)
        if interpretation.intent == "opt_out":
            _opt_out(turn, interpretation, event.text)
            return
        turn.pending_answer = interpretation.answer
        if interpretation.intent == "question" and not interpretation.answer:
            turn.pending_answer = turn.say("pass_on")
        turn.pending_human = interpretation.intent == "wants_human"
        _acknowledge(turn, interpretation, filled, None)
    _run(turn, first)


def _opt_out(turn: _Turn, interpretation: Interpretation, text: str, *, silent: bool = False) -> None:
    """The lead asked not to be contacted: confirm once, record it, end the conversation."""
    state = turn.state
    step_id = state.current_step
    if not silent:
        turn.send(turn.say("opt_out"), purpose="step")
    turn.actions.append(OptOutRequested(evidence=text.strip()[:200], step_id=step_id))
    if state.status != "ended":
        _finish(turn, outcome="opted_out")


def _not_interested(turn: _Turn) -> None:
    turn.flush_answer()
    turn.send(turn.say("not_interested"), purpose="step")
    _finish(turn, outcome="not_interested")


async def _inbound(turn: _Turn, event: InboundEvent) -> None:
    state, playbook = turn.state, turn.playbook
    if state.status == "handoff":
        return
    current = playbook.step(state.current_step) if state.current_step else None
    ask = current if state.status == "active" and isinstance(current, AskStep) else None
    interpretation, filled = await _interpret(turn, text=event.text, choice_id=event.choice_id, ask=ask)
    answer = interpretation.answer
    intent = interpretation.intent
    wants_human = intent == "wants_human"
    if intent == "auto_reply":
        turn.notes.append("automatic reply (out of office): no answer, no step taken")
        return
    if intent == "opt_out":
        _opt_out(turn, interpretation, event.text, silent=state.status == "ended")
        return
    if state.status == "ended":
        if answer:
            turn.send(answer, purpose="answer")
        return
    if intent == "not_interested":
        _not_interested(turn)
        return
    if intent == "question" and not answer and (ask is not None or state.status == "waiting"):
        answer = turn.say("pass_on")
    _acknowledge(turn, interpretation, filled, ask)
    if state.status == "waiting":
        if answer:
            turn.send(answer, purpose="answer")
        turn.flush_answer()
        if wants_human:
            _handoff(turn, reason=_HUMAN_REASON)
        elif isinstance(current, WaitStep) and current.until_reply:
            _cancel_timer(turn)
            state.status = "active"
            _run(turn, current.on_reply or turn.next_of(current))
        return
    if ask is None:
        if answer:
            turn.send(answer, purpose="answer")
        elif wants_human:
            _handoff(turn, reason=_HUMAN_REASON)
        else:
            turn.send(_fallback(turn), purpose="fallback")
        turn.flush_answer()
        return
    if ask.slot in filled:
        if answer:
            turn.send(answer, purpose="answer")
        turn.flush_answer()  # values confirmed before anything the next steps say
        state.attempts = 0
        _run(turn, turn.next_of(ask))
    elif ask.slot in interpretation.clarify and not answer and not wants_human:
        _clarify(turn, ask, interpretation.clarify[ask.slot])
    elif ask.slot in interpretation.other and not answer and not wants_human:
        _keep_other(turn, ask, interpretation.other[ask.slot])
    elif answer:
        turn.send(answer, purpose="answer")
        turn.flush_answer()
        turn.send(turn.question(ask), purpose="reask", step=ask, choices=turn.choices(ask))
    elif wants_human:
        turn.flush_answer()
        _handoff(turn, reason=_HUMAN_REASON)
    elif intent == "small_talk" or turn.pending_ack:
        turn.flush_answer()
        turn.send(turn.question(ask), purpose="reask", step=ask, choices=turn.choices(ask))
    else:
        state.attempts += 1
        if state.attempts > ask.retries:
            state.attempts = 0
            turn.notes.append(f"no valid answer to {ask.id!r} after {ask.retries} retries: moving on")
            _run(turn, ask.on_fail or turn.next_of(ask))
        else:
            invalid = turn.text(ask.invalid) if ask.invalid is not None else _default_invalid(turn)
            text = f"{invalid}\n{turn.question(ask)}"
            turn.send(text, purpose="reask", step=ask, choices=turn.choices(ask))


def _clarify(turn: _Turn, ask: AskStep, candidates: list[str]) -> None:
    """Two options fit about equally: ask which one (as buttons), without using an attempt."""
    options = [c for c in turn.choices(ask) if c.id in candidates]
    options.sort(key=lambda c: candidates.index(c.id))
    if len(options) < 2:
        turn.send(turn.question(ask), purpose="reask", step=ask, choices=turn.choices(ask))
        return
    titles = [o.title for o in options]
    listed = ", ".join(titles[:-1]) + f" {turn.say('or')} {titles[-1]}"
    turn.flush_answer()
    turn.send(turn.say("clarify", options=listed), purpose="clarify", step=ask, choices=options)


def _keep_other(turn: _Turn, ask: AskStep, words: str) -> None:
    """None of the options fits: keep the lead's own words in ``<slot>_other`` and move on (the
    slot itself stays empty, so no option's score applies)."""
    state = turn.state
    key = f"{ask.slot}_other"
    state.slots[key] = words
    turn.actions.append(SlotFilled(slot=key, value=words, evidence=words, source="other"))
    turn.pending_ack = " ".join(p for p in [turn.pending_ack, turn.say("noted_other")] if p)
    turn.flush_answer()
    state.attempts = 0
    _run(turn, turn.next_of(ask))


def _default_invalid(turn: _Turn) -> str:
    return (
        DEFAULT_INVALID.get(turn.state.language)
        or DEFAULT_INVALID.get(turn.playbook.language)
        or DEFAULT_INVALID["en"]
    )


def _fallback(turn: _Turn) -> str:
    texts = turn.ports.fallback_text
    for lang in (turn.state.language, turn.playbook.language):
        if lang in texts:
            return texts[lang]
    for lang in (turn.state.language, turn.playbook.language):
        if lang in DEFAULT_FALLBACK:
            return DEFAULT_FALLBACK[lang]
    return DEFAULT_FALLBACK["en"]


def _timer(turn: _Turn, event: TimerFiredEvent) -> None:
    state = turn.state
    if state.status != "waiting" or state.timer is None or state.timer.id != event.timer_id:
        turn.notes.append(f"timer {event.timer_id!r} is not the conversation's current timer: ignored")
        return
    wait = turn.playbook.step(state.timer.step_id)
    state.timer = None
    state.status = "active"
    turn.purpose = "followup"
    if isinstance(wait, WaitStep):
        _run(turn, wait.on_timeout or turn.next_of(wait))
    else:
        _run(turn, turn.playbook.following(state.current_step or ""))


def _resume(turn: _Turn, event: ResumeEvent) -> None:
    state = turn.state
    _cancel_timer(turn)
    state.status, state.attempts = "active", 0
    if event.step_id is None:
        _finish(turn, outcome=state.outcome or "closed")
    else:
        _run(turn, event.step_id)


async def advance(
    playbook: Playbook, state: ConversationState | None, event: Event, ports: Ports
) -> EngineResult:
    """Apply one event to a conversation and return the new state and the actions to execute.

    ``state=None`` starts a conversation (an ``InboundEvent`` then counts as the lead writing
    first; a ``TimerFiredEvent`` is ignored). A ``StartEvent`` on an existing state restarts the
    playbook (slots kept, score rebuilt). The input ``state`` is not modified. Never raises
    for playbook logic; interpreter errors propagate to the caller (the app retries the turn).
    """
    if state is None:
        state = new_state(playbook)
        if isinstance(event, InboundEvent):
            event = StartEvent(trigger="inbound_unknown_lead", text=event.text)
    turn = _Turn(playbook=playbook, state=state.model_copy(deep=True), ports=ports)
    if isinstance(event, InboundEvent):
        turn.engagement = {"reply_seconds": event.reply_seconds, "inbound_count": event.inbound_count}
    if isinstance(event, StartEvent):
        await _start(turn, event)
    elif isinstance(event, InboundEvent):
        await _inbound(turn, event)
    elif isinstance(event, ResumeEvent):
        _resume(turn, event)
    else:
        _timer(turn, event)
    return EngineResult(
        state=turn.state, actions=turn.actions, notes=turn.notes, interpretation=turn.interpretation
    )
