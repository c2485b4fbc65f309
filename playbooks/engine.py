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
from playbooks.slots import normalise

__all__ = ["DEFAULT_FALLBACK", "DEFAULT_INVALID", "MAX_STEPS_PER_ADVANCE", "advance", "new_state"]

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

_HUMAN_REASON = "lead asked for a human"

Purpose = Literal["step", "reask", "answer", "fallback", "handoff", "followup"]


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


def _choice_labels(playbook: Playbook, slot: str) -> dict[str, list[str]]:
    labels: dict[str, list[str]] = {}
    for step in playbook.asks_for(slot):
        for choice in step.choices:
            titles = [choice.title] if isinstance(choice.title, str) else list(choice.title.values())
            labels.setdefault(choice.id, []).extend([*titles, *choice.synonyms])
    return labels


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


def _ask_context(turn: _Turn, step: AskStep) -> AskContext:
    synonyms: dict[str, list[str]] = {}
    for choice in step.choices:
        others = [] if isinstance(choice.title, str) else list(choice.title.values())
        synonyms[choice.id] = list(dict.fromkeys([*others, *choice.synonyms]))
    return AskContext(
        step_id=step.id,
        slot=step.slot,
        kind=step.kind,
        question=turn.question(step),
        choices=turn.choices(step),
        choice_synonyms=synonyms,
    )


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
            choices=_choice_labels(turn.playbook, slot),
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
        interpretation, _ = await _interpret(turn, text=event.text, choice_id=None, ask=scout.peeked)
        turn.pending_answer = interpretation.answer
        turn.pending_human = interpretation.intent == "wants_human"
    _run(turn, first)


async def _inbound(turn: _Turn, event: InboundEvent) -> None:
    state, playbook = turn.state, turn.playbook
    if state.status == "handoff":
        return
    current = playbook.step(state.current_step) if state.current_step else None
    ask = current if state.status == "active" and isinstance(current, AskStep) else None
    interpretation, filled = await _interpret(turn, text=event.text, choice_id=event.choice_id, ask=ask)
    answer = interpretation.answer
    wants_human = interpretation.intent == "wants_human"
    if state.status == "ended":
        if answer:
            turn.send(answer, purpose="answer")
        return
    if state.status == "waiting":
        if answer:
            turn.send(answer, purpose="answer")
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
        return
    if ask.slot in filled:
        if answer:
            turn.send(answer, purpose="answer")
        state.attempts = 0
        _run(turn, turn.next_of(ask))
    elif answer:
        turn.send(answer, purpose="answer")
        turn.send(turn.question(ask), purpose="reask", step=ask, choices=turn.choices(ask))
    elif wants_human:
        _handoff(turn, reason=_HUMAN_REASON)
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
