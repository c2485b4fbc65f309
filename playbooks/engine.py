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

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kernel.clock import SystemClock
from kernel.clone import clone_model
from kernel.errors import LeadWarmError
from playbooks.choices import match_choice
from playbooks.expressions import evaluate, render, template_context
from playbooks.grammar import is_plural, names_things
from playbooks.language import asked_language, follow_language
from playbooks.runtime import (
    CALL_BACK_REASON,
    HUMAN_REASON,
    NOT_OFFERED_SLOT,
    Action,
    AskContext,
    BookingCancelRequested,
    BookingEvent,
    BookingRequested,
    ChoiceOption,
    ConversationEnded,
    ConversationState,
    EngineResult,
    Event,
    HandoffRequested,
    InboundEvent,
    Interpretation,
    LeadQualified,
    MeetingBooked,
    MeetingCancelled,
    OfferedSlot,
    OptOutRequested,
    Ports,
    ResumeEvent,
    ScoreChanged,
    SendMessage,
    SlotFilled,
    StartEvent,
    SyncRequested,
    Timer,
    TimerCancelled,
    TimerFiredEvent,
    TimerScheduled,
)
from playbooks.schema import (
    AskStep,
    BookStep,
    Choice,
    ConditionStep,
    EndStep,
    HandoffStep,
    MessageStep,
    Playbook,
    PlaybookLookups,
    ScoreStep,
    SyncStep,
    WaitStep,
    pick_language,
)
from playbooks.slots import normalise, render_datetime

__all__ = [
    "DEFAULT_FALLBACK",
    "DEFAULT_INVALID",
    "ENGINE_TEXTS",
    "LANGUAGE_NAMES",
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
    "language_unavailable": {
        "en": "Sorry, I can only continue in {language} here.",
        "fr": "Désolé, je ne peux poursuivre qu'en {language} ici.",
    },
    "pass_on": {
        "en": "Good question – I'll pass it on to an adviser, who will get back to you about it.",
        "fr": "Bonne question – je la transmets à un conseiller, qui vous répondra.",
    },
    "why_asked": {
        "en": "It helps your adviser prepare an answer that really fits your project.",
        "fr": "Cela permet à votre conseiller de vous préparer une réponse vraiment adaptée à votre projet.",
    },
    "noted_when": {"en": "Noted: {when}.", "fr": "C'est noté : {when}."},
    "noted_choice": {"en": "Noted: {choice}.", "fr": "C'est noté : {choice}."},
    "noted_also": {"en": "Thanks, I've also noted {items}.", "fr": "Merci, j'ai aussi noté {items}."},
    "noted_items": {"en": "Thanks, I've noted {items}.", "fr": "Merci, j'ai noté {items}."},
    "out_of_range": {
        "en": "Please give a number between {low} and {high}.",
        "fr": "Merci d'indiquer un nombre entre {low} et {high}.",
    },
    "out_of_range_low": {
        "en": "Please give a number of at least {low}.",
        "fr": "Merci d'indiquer un nombre d'au moins {low}.",
    },
    "out_of_range_high": {
        "en": "Please give a number no higher than {high}.",
        "fr": "Merci d'indiquer un nombre ne dépassant pas {high}.",
    },
    "noted_corrected": {
        "en": "Thanks, I've corrected that: {items}.",
        "fr": "Merci, c'est corrigé : {items}.",
    },
    "noted_phone": {
        "en": "I've noted the number {number} – just tell me if it isn't right.",
        "fr": "J'ai noté le numéro {number} – dites-le-moi s'il n'est pas correct.",
    },
    "noted_remark": {
        "en": "Thanks, I've noted {words} for your adviser.",
        "fr": "Merci, je note {words} pour votre conseiller.",
    },
    "noted_other": {
        "en": "Thanks, I've noted that for your adviser.",
        "fr": "Merci, je le note pour votre conseiller.",
    },
    "choose_again": {
        "en": "Sorry, I couldn't match that to one of the options – is it {options}? If it's something "
        "else, just tell me in a few words.",
        "fr": "Pardon, je n'ai pas retrouvé votre réponse parmi les choix – est-ce plutôt {options} ? Si "
        "c'est autre chose, dites-le-moi en quelques mots.",
    },
    "clarify": {
        "en": "Just to be sure – do you mean {options}?",
        "fr": "Pour être sûr : vous voulez dire {options} ?",
    },
    "or": {"en": "or", "fr": "ou"},
    "and": {"en": "and", "fr": "et"},
    "your_email": {"en": "your e-mail address", "fr": "votre adresse e-mail"},
    "your_phone": {"en": "your phone number", "fr": "votre numéro de téléphone"},
    "offer": {
        "en": "Here are a few times when an adviser is free – which suits you best?",
        "fr": "Voici quelques créneaux où un conseiller est disponible – lequel vous convient ?",
    },
    "offer_other": {
        "en": "You can also suggest another day and time.",
        "fr": "Vous pouvez aussi proposer un autre jour et une autre heure.",
    },
    "we_offer": {
        "en": "Yes — {offers} is one of our services.",
        "fr": "Oui — {offers} fait partie de nos services.",
    },
    "we_offer_plural": {
        "en": "Yes — {offers} are one of our services.",
        "fr": "Oui — {offers} font partie de nos services.",
    },
    "we_offer_them": {"en": "Yes, we {verb} {offers}.", "fr": "Oui, nous {verb} des {offers}."},
    "not_offered": {
        "en": "Sorry, we don't offer {topic}.",
        "fr": "Désolé, nous ne proposons pas {topic}.",
    },
    "not_offered_as_far_as_known": {
        "en": "As far as I know, we don't offer {topic} (an adviser can confirm).",
        "fr": "À ma connaissance, nous ne proposons pas {topic} (un conseiller pourra vous le confirmer).",
    },
    "offers": {
        "en": "What we can help you with: {offers}.",
        "fr": "Nous pouvons en revanche vous accompagner pour : {offers}.",
    },
    "not_offered_handoff": {
        "en": "I'm passing your request to an adviser, who will get back to you.",
        "fr": "Je transmets votre demande à un conseiller, qui reviendra vers vous.",
    },
    "propose": {"en": "{when}, is that right?", "fr": "{when}, c'est bien cela ?"},
    "wish": {
        "en": "You mentioned a time for your call with an adviser, and it is free:",
        "fr": "Vous m'aviez indiqué un moment pour l'appel avec un conseiller, et il est libre :",
    },
    "unavailable": {
        "en": "Sorry, {when} isn't available.",
        "fr": "Désolé, {when} n'est pas disponible.",
    },
    "taken": {
        "en": "Sorry, {when} was just taken.",
        "fr": "Désolé, le créneau de {when} vient d'être pris.",
    },
    "failed": {
        "en": "Sorry, I couldn't reach our calendar to book {when} – nothing has been booked.",
        "fr": "Désolé, je n'ai pas pu joindre notre agenda pour réserver {when} – rien n'a été réservé.",
    },
    "booked": {
        "en": "Booked: {when}. See you then!",
        "fr": "C'est réservé : {when}. À bientôt !",
    },
    "moved": {
        "en": "Done – your meeting is moved to {when}.",
        "fr": "C'est fait – votre rendez-vous est déplacé au {when}.",
    },
    "cancelled": {
        "en": "Your meeting of {when} is cancelled. Just write if you'd like another time.",
        "fr": "Votre rendez-vous du {when} est annulé. Écrivez-nous si vous souhaitez un autre créneau.",
    },
    "cancelled_outside": {
        "en": "Your meeting of {when} has been cancelled. Reply if you'd like another time.",
        "fr": "Votre rendez-vous du {when} a été annulé. Répondez si vous souhaitez un autre créneau.",
    },
    "no_slot": {
        "en": "I have no free time to offer in the coming days – an adviser will get back to you.",
        "fr": "Je n'ai pas de créneau libre ces prochains jours – un conseiller reviendra vers vous.",
    },
    "yes": {"en": "Yes", "fr": "Oui"},
    "no": {"en": "No, another time", "fr": "Non, un autre"},
}
"""Texts the engine says on its own (French and English; other languages get English): the
polite end after "not interested", the confirmation of an opt-out, "I'll pass your question on",
values confirmed in passing, and the clarifying question between two close options."""


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
    corrected: set[str] = field(default_factory=set)
    previous: dict[str, Any] = field(default_factory=dict)
    """The values the corrected slots held before this turn."""
    not_offered: str | None = None
    """The id of a project not offered (``Playbook.not_offered``) this message asked for."""
    wished: Any = None
    """A call-back time the lead asked for in passing this turn (ISO 8601), to be said back."""
    interpretation: Interpretation | None = None
    out_of_range: set[str] = field(default_factory=set)
    """Number slots this message gave a value outside their ``min``/``max`` (the lead's words are
    kept in ``<slot>_other``; the question waiting says the range)."""
    engagement: dict[str, Any] = field(default_factory=dict)
    lookups: PlaybookLookups = field(init=False)
    """The playbook's lookups (:meth:`Playbook.lookups`), built once per playbook object."""

    def __post_init__(self) -> None:
        self.lookups = self.playbook.lookups()

    # ------------------------------------------------------------- texts

    def context(self) -> dict[str, Any]:
        s = self.state
        return template_context(lead=s.lead, slots=s.slots, score=s.score, language=s.language)

    def text(self, localized: str | dict[str, str]) -> str:
        static = _static_text(self, localized)
        if static is not None:  # no Jinja2 markup: render() would return it as it is
            return static
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
        return step.next or self.lookups.following.get(step.id)

    def filled(self, slot: str) -> bool:
        value = self.state.slots.get(slot)
        return value is not None and value != ""

    def choices(self, step: AskStep) -> list[ChoiceOption]:
        # built without validation: ids and rendered titles are strings
        return [ChoiceOption.model_construct(id=c.id, title=self.text(c.title)) for c in step.choices]

    def question(self, step: AskStep) -> str:
        return self.text(step.question)


def _keep_out_of_range(turn: _Turn, slot: str, text: str) -> None:
    """A number outside the slot's range: the lead's whole message is kept in ``<slot>_other`` for
    the team (:func:`_keep_words`) and the slot stays empty."""
    turn.out_of_range.add(slot)
    _keep_words(turn, f"{slot}_other", text)


def _keep_remarks(turn: _Turn, interpretation: Interpretation) -> None:
    """What the lead said about a topic no slot asks about ("budget maybe 8k":
    ``Interpretation.remarks``): kept in ``<topic>_other`` for the team (:func:`_keep_words`) and
    said to be noted, in the lead's words, before the next question."""
    for topic, words in interpretation.remarks.items():
        if not words.strip() or topic in turn.lookups.slot_kinds:
            continue
        _keep_words(turn, f"{topic}_other", words)
        noted = turn.say("noted_remark", words=_quote(turn, words.strip()[:200]))
        turn.pending_ack = " ".join(p for p in [turn.pending_ack, noted] if p)


def _keep_words(turn: _Turn, key: str, text: str) -> None:
    """The lead's words (at most 500 characters) kept in the slot ``key`` for the team, after the
    earlier ones, `` | `` between them: nothing the lead said is lost; the same words once."""
    words = text.strip()[:500]
    kept = str(turn.state.slots.get(key) or "")
    if not words or words in kept.split(" | "):
        return
    value = f"{kept} | {words}" if kept else words  # an earlier answer out of range is kept too
    turn.state.slots[key] = value
    turn.actions.append(SlotFilled(slot=key, value=value, evidence=words, source="other"))


def _range_text(turn: _Turn, ask: AskStep) -> str:
    """ "Please give a number between X and Y" (or at least X, or at most Y) in the lead's language."""

    def shown(bound: float) -> str:
        return str(int(bound)) if float(bound).is_integer() else str(bound)

    if ask.min is not None and ask.max is not None:
        return turn.say("out_of_range", low=shown(ask.min), high=shown(ask.max))
    if ask.min is not None:
        return turn.say("out_of_range_low", low=shown(ask.min))
    return turn.say("out_of_range_high", high=shown(ask.max if ask.max is not None else 0))


def _within_bounds(playbook: Playbook, slot: str, value: Any) -> bool:
    for step in playbook.lookups().asks_for.get(slot, ()):
        if step.min is not None and value < step.min:
            return False
        if step.max is not None and value > step.max:
            return False
    return True


# --------------------------------------------------------------------------- running steps


def _human_reason(turn: _Turn) -> str:
    """Why the lead's request hands off: to be called back, or a person in writing."""
    interpretation = turn.interpretation
    return CALL_BACK_REASON if interpretation is not None and interpretation.call_back else HUMAN_REASON


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


def _sync(turn: _Turn, step: SyncStep) -> None:
    """Ask the app to push the lead to the CRM (an action; the engine does no I/O)."""
    if step.if_ is not None and not evaluate(step.if_, turn.context(), notes=turn.notes):
        return
    turn.actions.append(SyncRequested(integration=step.integration, step_id=step.id))


def _score(turn: _Turn, step: ScoreStep) -> None:
    if step.if_ is not None and not evaluate(step.if_, turn.context(), notes=turn.notes):
        return
    _add_points(turn, step.points, step.reason, step_id=step.id)


def _add_points(
    turn: _Turn,
    points: int,
    reason: str,
    *,
    evidence: str | None = None,
    step_id: str | None = None,
    code: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> int:
    """Move the score (kept within 0-100), record why (``code`` and ``params``: the reason as a
    code, see :class:`ScoreChanged`), emit LeadQualified once; returns the points actually applied."""
    state = turn.state
    before = state.score
    state.score = max(0, min(100, before + points))
    turn.actions.append(
        ScoreChanged(
            points=state.score - before,
            reason=reason,
            score=state.score,
            evidence=evidence,
            step_id=step_id,
            reason_code=code or None,
            reason_params=dict(params or {}),
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


async def _run(turn: _Turn, step_id: str | None) -> None:
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
        step = turn.lookups.by_id.get(step_id)
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
        elif isinstance(step, SyncStep):
            _sync(turn, step)  # a scout's (peek) actions are thrown away
            step_id = turn.next_of(step)
        elif isinstance(step, ConditionStep):
            if evaluate(step.if_, turn.context(), notes=turn.notes):
                step_id = step.then
            else:
                step_id = step.else_ or turn.next_of(step)
        elif isinstance(step, AskStep):
            if step.listen_only or (step.skip_if_filled and turn.filled(step.slot)):
                step_id = turn.next_of(step)
                continue
            if turn.peek:
                turn.peeked = step
                return
            if turn.pending_human:
                turn.flush_answer()
                _handoff(turn, reason=_human_reason(turn))
                return
            turn.flush_answer()
            _ask(turn, step)
            return
        elif isinstance(step, BookStep) and _as_ask(turn, step) is not None:
            step = _as_ask(turn, step)
            assert step is not None
            if step.skip_if_filled and turn.filled(step.slot):
                step_id = turn.next_of(step)
                continue
            if turn.peek:
                turn.peeked = step
                return
            turn.flush_answer()
            if turn.pending_human:
                _handoff(turn, reason=_human_reason(turn))
                return
            _ask(turn, step)
            return
        elif isinstance(step, BookStep):
            if turn.peek:
                return
            turn.flush_answer()
            if turn.pending_human:
                _handoff(turn, reason=_human_reason(turn))
                return
            if turn.state.booking.get("booked") and turn.filled(step.slot):
                step_id = turn.next_of(step)
                continue
            wished = await _offer_wish(turn, step)
            if wished if wished is not None else await _offer(turn, step):
                return
            step_id = step.on_fail or turn.next_of(step)
        else:
            if turn.peek:
                return
            turn.flush_answer()
            if isinstance(step, WaitStep):
                if turn.pending_human:
                    _handoff(turn, reason=_human_reason(turn))
                else:
                    _wait(turn, step)
            elif isinstance(step, HandoffStep):
                _handoff(turn, reason=step.reason, step=step)
            else:
                _finish(turn, outcome=step.outcome, step=step)
            return


# --------------------------------------------------------------------------- reading the lead


_MEMO_MAX = 512
"""Most values the engine keeps in one playbook's :attr:`PlaybookLookups.memo` (a playbook's
questions times the languages it is read in stay far below it; past it, nothing more is kept)."""


def _remember(turn: _Turn, key: tuple[Any, ...], value: Any) -> None:
    memo = turn.lookups.memo
    if len(memo) < _MEMO_MAX:
        memo[key] = value


def _static_text(turn: _Turn, localized: str | dict[str, str]) -> str | None:
    """What :meth:`_Turn.text` gives for ``localized`` in the turn's language when it holds no
    Jinja2 markup (the same for every lead), else ``None``."""
    chosen = pick_language(localized, turn.state.language, turn.playbook.language)
    return None if "{" in chosen else chosen.strip()


def _synonyms(choices: list[Choice]) -> dict[str, list[str]]:
    """Every word naming each choice (its titles in every language, then its synonyms), by id."""
    synonyms: dict[str, list[str]] = {}
    for choice in choices:
        titles = [] if isinstance(choice.title, str) else list(choice.title.values())
        synonyms[choice.id] = list(dict.fromkeys([*titles, *choice.synonyms]))
    return synonyms


def _question_context(turn: _Turn, step: AskStep) -> AskContext:
    """One question's :class:`AskContext` on its own (no ``others``, ``answered`` or
    ``not_offered``) in the turn's language. When its question and option titles hold no template
    markup it is the same for every lead: built once per playbook object, step and language, and
    shared (read-only, like every context the engine hands the interpreter)."""
    key = ("ask", step.id, turn.state.language)
    cached: AskContext | None = turn.lookups.memo.get(key)
    if cached is not None:
        return cached
    synonyms = turn.lookups.memo.get(("synonyms", step.id))
    if synonyms is None:
        synonyms = _synonyms(step.choices)
        _remember(turn, ("synonyms", step.id), synonyms)
    static = _static_text(turn, step.question) is not None and all(
        _static_text(turn, c.title) is not None for c in step.choices
    )
    context = AskContext.model_construct(  # every field typed here: no validation
        step_id=step.id,
        slot=step.slot,
        kind=step.kind,
        question=turn.question(step),
        choices=turn.choices(step),
        choice_synonyms=synonyms,
        others=[],
        answered=[],
        not_offered=None,
    )
    if static:
        _remember(turn, key, context)
    return context


def _listed_asks(turn: _Turn) -> tuple[AskStep | BookStep, ...]:
    """The playbook's ``ask`` and ``book`` steps, in order (a ``book`` step may stand for a question)."""
    listed: tuple[AskStep | BookStep, ...] | None = turn.lookups.memo.get(("listed",))
    if listed is None:
        listed = tuple(s for s in turn.playbook.steps if isinstance(s, AskStep | BookStep))
        _remember(turn, ("listed",), listed)
    return listed


_PENDING_MAX = 256
"""Most pending-question contexts kept per playbook object (:func:`_ask_context`)."""


def _ask_context(turn: _Turn, step: AskStep, *, with_others: bool = True) -> AskContext:
    if not with_others:
        return _question_context(turn, step)
    # What the context depends on besides the playbook: the language, which questions are
    # answered, and whether a ``book`` step stands for a question (calendar, meeting, wish).
    state, memo = turn.state, turn.lookups.memo
    listed = _listed_asks(turn)
    key = (
        step.id,
        state.language,
        turn.ports.calendar is None,
        bool(state.booking.get("booked")),
        bool(state.booking.get("wish")),
        *[turn.filled(s.slot) for s in listed],
    )
    pending: dict[tuple[Any, ...], AskContext] = memo.setdefault(("pending",), {})
    cached = pending.get(key)
    if cached is not None:
        return cached
    others: list[AskContext] = []
    seen = {step.slot}
    for each in listed:
        other = _wish_ask(turn, each) if isinstance(each, BookStep) else each
        if other is not None and other.slot not in seen and not turn.filled(other.slot):
            seen.add(other.slot)
            others.append(_question_context(turn, other))
    answered = [_question_context(turn, s) for s in _answered(turn, step)]
    own = _question_context(turn, step)
    not_offered = _not_offered_context(turn)
    context = AskContext.model_construct(  # every field typed here: no validation
        step_id=own.step_id,
        slot=own.slot,
        kind=own.kind,
        question=own.question,
        choices=own.choices,
        choice_synonyms=own.choice_synonyms,
        others=others,
        answered=answered,
        not_offered=not_offered,
    )
    kept = all(memo.get(("ask", c.step_id, state.language)) is c for c in (own, *others, *answered))
    if kept and memo.get(("not_offered", state.language)) is not_offered and len(pending) < _PENDING_MAX:
        pending[key] = context  # every part the same for every lead (no template markup)
    return context


def _not_offered_context(turn: _Turn) -> AskContext | None:
    """The projects the playbook does not offer, as a choice the interpreter may hear in passing
    (kept per playbook object and language when the topics' titles hold no template markup)."""
    spec = turn.playbook.not_offered
    if spec is None:
        return None
    key = ("not_offered", turn.state.language)
    cached: AskContext | None = turn.lookups.memo.get(key)
    if cached is not None:
        return cached
    context = AskContext.model_construct(  # every field typed here: no validation
        step_id=NOT_OFFERED_SLOT,
        slot=NOT_OFFERED_SLOT,
        kind="choice",
        question="",
        choices=[ChoiceOption.model_construct(id=t.id, title=turn.text(t.title)) for t in spec.topics],
        choice_synonyms=_synonyms(spec.topics),
    )
    if all(_static_text(turn, t.title) is not None for t in spec.topics):
        _remember(turn, key, context)
    return context


def _not_offered_reply(turn: _Turn, *, asked: str | None = None) -> str | None:
    """What the lead who asked for a project not offered is told (``None`` when they did not):
    the playbook's ``message``, else "we don't offer {topic}" and the options of its
    ``offer_step`` (and, with ``handoff``, that an adviser will get back to them). ``asked``: the
    lead's own words for something the playbook neither offers nor lists as not offered ("do you
    do plumbing?"), said as the topic, and only "as far as I know" (an adviser can confirm): no
    option names it, but the business may still do it under another name."""
    spec, topic_id = turn.playbook.not_offered, turn.not_offered
    if spec is None or (topic_id is None and asked is None):
        return None
    if asked is not None:
        title = asked
    else:
        topic = next((t for t in spec.topics if t.id == topic_id), None)
        if topic is None:
            return None
        title = turn.text(topic.title)
    offer = turn.lookups.by_id.get(spec.offer_step) if spec.offer_step else None
    titles = [c.title for c in turn.choices(offer)] if isinstance(offer, AskStep) else []
    offers = "".join(titles)
    if len(titles) > 1:
        offers = ", ".join(titles[:-1]) + f" {turn.say('or')} {titles[-1]}"
    if spec.message is not None:
        chosen = pick_language(spec.message, turn.state.language, turn.playbook.language)
        return render(chosen, {**turn.context(), "topic": title, "offers": offers}, notes=turn.notes).strip()
    # a topic the playbook lists as not offered is a fact; the lead's own words for something no
    # offer names ("do you do ground mounted systems?") may still be a thing the business does
    parts = [turn.say("not_offered" if asked is None else "not_offered_as_far_as_known", topic=title)]
    if offers and not spec.handoff:
        parts.append(turn.say("offers", offers=offers))
    if spec.handoff:
        parts.append(turn.say("not_offered_handoff"))
    return " ".join(parts)


_ARTICLE = re.compile(r"^(?:des|du|de la|de l'|un|une|d'|de|les)\s+|^(?:de l'|d')", re.IGNORECASE)
"""A French article before what a lead asks for: "pas de" after a negation ("des fenêtres" ->
"de fenêtres", "une éolienne" -> "d'éolienne")."""


def _titles(title: str | dict[str, str]) -> list[str]:
    """A title in every language it is written in."""
    return [title] if isinstance(title, str) else list(title.values())


_WE_DO = {
    "fr": {
        "faites": "faisons", "proposez": "proposons", "installez": "installons", "posez": "posons",
        "vendez": "vendons", "fournissez": "fournissons", "realisez": "réalisons", "traitez": "traitons",
        "gerez": "gérons",
    },
    "en": {
        verb: verb
        for verb in ("do", "install", "fit", "offer", "sell", "supply", "provide", "put in", "work on")
    },
}  # fmt: skip
"""The verb of "do you X ...?" said back by the business, per language ("installez" -> "installons")."""


def _yes_we_offer(turn: _Turn, title: str, verb: str | None) -> str:
    """Yes to "do you ``verb`` X?" for the offered option ``title``: with the lead's verb when the
    title names things in the plural (:func:`playbooks.grammar.names_things`: "Yes, we install
    solar panels.", "Oui, nous installons des panneaux solaires."), else the title as one of our
    services, its verb agreeing with it (:func:`playbooks.grammar.is_plural`: "Yes — Home battery
    is one of our services.", "Oui — Les fenêtres font partie de nos services.")."""
    language = turn.state.language if turn.state.language in _WE_DO else turn.playbook.language
    ours = _WE_DO.get(language, {}).get(verb or "")
    if ours is None or not names_things(title, language):
        return turn.say("we_offer_plural" if is_plural(title, language) else "we_offer", offers=title)
    first = title.split()[0]
    shown = title if first[1:] != first[1:].lower() else first[:1].lower() + title[1:]  # "PV panels" stays
    return turn.say("we_offer_them", verb=ours, offers=shown)


def _asked_offer(turn: _Turn, words: str, verb: str | None = None) -> tuple[str, bool] | None:
    """The answer to "do you ``verb`` ``words``?" from the playbook's offers (the options of
    ``not_offered.offer_step``): ``(text, True)``, yes (:func:`_yes_we_offer`), when one option
    is named; ``(text, False)``, "we don't offer" and what is offered (:func:`_not_offered_reply`),
    when none is; ``None`` when the playbook lists no offers."""
    spec = turn.playbook.not_offered
    offer = turn.lookups.by_id.get(spec.offer_step) if spec is not None and spec.offer_step else None
    if not isinstance(offer, AskStep) or not offer.choices:
        return None
    labels = {c.id: [*_titles(c.title), *c.synonyms] for c in offer.choices}
    found = match_choice(words, labels, strict=True)
    if found.value is not None and not found.other:
        title = next(c.title for c in turn.choices(offer) if c.id == found.value)
        return _yes_we_offer(turn, title, verb), True
    topic = words.strip()
    if turn.state.language == "fr" and _ARTICLE.match(topic):  # "pas de fenêtres" (the lead wrote "des")
        noun = _ARTICLE.sub("", topic, count=1)
        topic = f"d'{noun}" if noun[:1].lower() in "aeiouyhàâéèêëîïôûü" else f"de {noun}"
    reply = _not_offered_reply(turn, asked=topic)
    return (reply, False) if reply is not None else None


def _offer_replies(
    turn: _Turn, interpretation: Interpretation, answer: str | None
) -> tuple[str | None, str | None]:
    """``(answer, unoffered)`` for a message that asked for a project not offered or whether we do
    something ("vous faites la plomberie ?", :func:`_asked_offer`): when the lead named an offer,
    ``answer`` opens with "yes, we do" (then what the knowledge base said, if it said anything: "do
    you do batteries?" is first a yes or no); ``unoffered`` is what to say when they asked for
    something not offered and nothing else answered (:func:`_not_offered_reply`), else ``None``.
    A reply the model wrote to the message (``reply_generated``) answered the question itself: no
    yes is put before it."""
    unoffered = _not_offered_reply(turn)
    if unoffered is None and interpretation.asks_offer:
        offered = _asked_offer(turn, interpretation.asks_offer, interpretation.asks_offer_verb)
        if offered is not None:
            text, offered_here = offered
            if offered_here and not (answer and interpretation.reply_generated):
                answer = f"{text} {answer}" if answer else text
            elif not answer:
                unoffered = text
    return answer, unoffered


_CORRECTABLE = ("number", "choice", "email", "phone", "text")


def _answered(turn: _Turn, step: AskStep) -> list[AskStep]:
    """The ask steps already answered that a correction may name, nearest ``step`` first (those
    before it, then those after it answered in passing), at most four, then at most two yes/no
    questions (read only with outright correction words: "actually we rent"; the condition steps
    their first answer chose are taken again, :func:`_reroute`); never a listen-only one."""
    key = ("answerable", step.id)
    order: tuple[AskStep, ...] | None = turn.lookups.memo.get(key)
    if order is None:  # the questions a correction may name, nearest first: the same every turn
        steps = turn.playbook.steps
        index = turn.lookups.position.get(step.id, len(steps))
        order = tuple(
            listed
            for listed in [*reversed(steps[:index]), *steps[index + 1 :]]
            if isinstance(listed, AskStep)
            and not listed.listen_only
            and listed.kind in (*_CORRECTABLE, "yes_no")
        )
        _remember(turn, key, order)
    found: list[AskStep] = []
    yes_no: list[AskStep] = []
    seen = {step.slot}
    for listed in order:
        if listed.slot not in seen and turn.filled(listed.slot):
            seen.add(listed.slot)
            if listed.kind == "yes_no":
                if len(yes_no) < 2:
                    yes_no.append(listed)
            elif len(found) < 4:
                found.append(listed)
    return [*found, *yes_no]


def _reroute(turn: _Turn) -> str | None:
    """A corrected answer that changes a ``condition`` step already passed (before the current
    step, reading ``slots.<slot>``): the step that condition now leads to ("actually we rent"
    after "yes" to the ownership question: the renters' end); ``None`` when none changes."""
    if not turn.previous:
        return None
    state, steps = turn.state, turn.playbook.steps
    current = next((i for i, s in enumerate(steps) if s.id == state.current_step), 0)
    for slot, previous in turn.previous.items():
        reads = re.compile(rf"\bslots\.{re.escape(slot)}\b")
        before = template_context(
            lead=state.lead, slots={**state.slots, slot: previous}, score=state.score, language=state.language
        )
        for step in steps[:current]:
            if not isinstance(step, ConditionStep) or not reads.search(step.if_):
                continue
            was = bool(evaluate(step.if_, before, notes=turn.notes))
            now = bool(evaluate(step.if_, turn.context(), notes=turn.notes))
            if was != now:
                return step.then if now else (step.else_ or turn.next_of(step))
    return None


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
    if isinstance(step, BookStep) and step.ask_without_calendar is not None:
        step = step.as_ask()  # the call-back question it asks without a calendar
    if not isinstance(step, AskStep):
        raise ValueError(f"{step_id!r} is not an ask step of playbook {playbook.id!r}")
    turn = _Turn(
        playbook=playbook,
        state=clone_model(state or new_state(playbook)),
        ports=ports or Ports(interpreter=_Unread(), clock=SystemClock()),
    )
    return _ask_context(turn, step)


async def _interpret(
    turn: _Turn,
    *,
    text: str,
    choice_id: str | None,
    ask: AskStep | None,
    context: AskContext | None = None,
) -> tuple[Interpretation, set[str]]:
    """Ask the interpreter, apply its language and slots; return it and the slots it filled.
    ``context`` replaces the ask step's context (a ``book`` step's yes/no confirmation)."""
    state = turn.state
    open_slots = {slot: kind for slot, kind in turn.lookups.slot_kinds.items() if not turn.filled(slot)}
    if ask is not None:
        open_slots.setdefault(ask.slot, ask.kind)
    if context is None and ask is not None:
        context = _ask_context(turn, ask)
    interpretation: Interpretation = await turn.ports.interpreter.interpret(
        text=text,
        choice_id=choice_id,
        ask=context,
        open_slots=open_slots,
        state=clone_model(state),
    )
    followed = follow_language(
        current=state.language,
        lead_language=state.lead_language,
        detected=interpretation.language,
        text=text,
        supported=turn.lookups.spoken_languages,
    )
    state.language, state.lead_language = followed.language, followed.lead_language
    turn.interpretation = interpretation
    filled = _apply_slots(turn, interpretation, ask, text=text)
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
        _add_points(
            turn,
            int(adjustment.points),
            str(adjustment.reason),
            evidence=adjustment.evidence,
            code=adjustment.code,
            params=adjustment.params,
        )
        state.score_applied[adjustment.key] = state.score_applied.get(adjustment.key, 0) + int(
            adjustment.points
        )


def _apply_slots(turn: _Turn, interpretation: Interpretation, ask: AskStep | None, *, text: str) -> set[str]:
    state, ports = turn.state, turn.ports
    kinds = turn.lookups.slot_kinds
    filled: set[str] = set()
    for slot, raw in interpretation.slots.items():
        if slot == NOT_OFFERED_SLOT and turn.playbook.not_offered is not None:
            if any(t.id == raw for t in turn.playbook.not_offered.topics):
                turn.not_offered = str(raw)
                if state.slots.get(slot) != raw:
                    state.slots[slot] = raw
                    evidence = interpretation.evidence.get(slot)
                    turn.actions.append(SlotFilled(slot=slot, value=raw, evidence=evidence, source="mention"))
            continue
        kind = kinds.get(slot)
        if kind is None:
            turn.notes.append(f"interpreter gave slot {slot!r}, which the playbook does not ask: ignored")
            continue
        value = normalise(
            kind,
            raw,
            language=state.language,
            choices=turn.lookups.choice_labels(slot),
            now=float(ports.clock.now()),
            timezone=ports.timezone,
            default_region=ports.default_region,
        )
        if value is not None and kind == "number" and not _within_bounds(turn.playbook, slot, value):
            turn.notes.append(f"value {raw!r} for slot {slot!r} is out of its range: words kept")
            _keep_out_of_range(turn, slot, text)
            continue
        if value is None:
            turn.notes.append(f"value {raw!r} for slot {slot!r} ({kind}) is not valid: ignored")
            continue
        if _calendar_book_step(turn, slot) is not None:
            _keep_wish(turn, slot, value, evidence=interpretation.evidence.get(slot))
            continue
        filled.add(slot)
        if state.slots.get(slot) == value:
            continue
        previous = state.slots.get(slot) if turn.filled(slot) else None
        state.slots[slot] = value
        source = "answer" if ask is not None and slot == ask.slot else "mention"
        turn.actions.append(
            SlotFilled(slot=slot, value=value, evidence=interpretation.evidence.get(slot), source=source)
        )
        if previous is not None:
            turn.corrected.add(slot)  # the lead corrected an earlier answer
            turn.previous[slot] = previous
            _rescore(turn, slot, previous)
    return filled


WISH_SUFFIX = "_requested"
"""A ``book`` step's slot plus this suffix holds the time the lead asked for in passing, when a
calendar is connected (``callback_time_requested``: an ISO 8601 string in the lead's zone)."""


def _calendar_book_step(turn: _Turn, slot: str) -> BookStep | None:
    """The ``book`` step of ``slot`` when it books in a connected calendar (not yet booked)."""
    if turn.ports.calendar is None or turn.state.booking.get("booked"):
        return None
    return turn.lookups.book_for_slot.get(slot)


def _wish_ask(turn: _Turn, step: BookStep) -> AskStep | None:
    """The question a ``book`` step stands for among the questions a message may answer in passing:
    its call-back question without a calendar; with one (and nothing booked yet), the same
    question, so that a time said early ("i'm free tmrw pm") is kept and offered first."""
    as_ask = _as_ask(turn, step)
    if as_ask is not None:
        return as_ask
    if _calendar_book_step(turn, step.slot) is None or turn.state.booking.get("wish"):
        return None
    return turn.lookups.as_ask[step.id]


def _keep_wish(turn: _Turn, slot: str, value: Any, *, evidence: str | None) -> None:
    """Keep a time the lead said for a calendar-backed ``book`` step before it was reached: in
    ``state.booking["wish"]`` (offered first when the step runs) and in the slot
    ``<slot>_requested`` (for the adviser); it is said back with the turn's acknowledgement."""
    state = turn.state
    if state.booking.get("wish") == value:
        return
    state.booking["wish"] = value
    key = f"{slot}{WISH_SUFFIX}"
    state.slots[key] = value
    turn.actions.append(SlotFilled(slot=key, value=value, evidence=evidence, source="mention"))
    turn.wished = value


def _wish_start(turn: _Turn) -> float | None:
    """The start (epoch seconds) of the time the lead asked for in passing, if still ahead."""
    wish = turn.state.booking.pop("wish", None)
    if not isinstance(wish, str):
        return None
    try:
        start = dt.datetime.fromisoformat(wish).timestamp()
    except ValueError:
        return None
    return start if start > float(turn.ports.clock.now()) else None


def _rescore(turn: _Turn, slot: str, previous: Any) -> None:
    """An answer was corrected: the ``score`` steps already passed (before the current step) whose
    condition reads ``slots.<slot>`` give or take back their points as the new value decides
    (the score stays within 0-100). Assumes the steps before the current one ran, as in a playbook
    whose jumps only go forward to its ends."""
    state, steps = turn.state, turn.playbook.steps
    current = next((i for i, s in enumerate(steps) if s.id == state.current_step), 0)
    reads = re.compile(rf"\bslots\.{re.escape(slot)}\b")
    before = template_context(
        lead=state.lead, slots={**state.slots, slot: previous}, score=state.score, language=state.language
    )
    for step in steps[:current]:
        if not isinstance(step, ScoreStep) or step.if_ is None or not reads.search(step.if_):
            continue
        was = bool(evaluate(step.if_, before, notes=turn.notes))
        now = bool(evaluate(step.if_, turn.context(), notes=turn.notes))
        if was != now:
            reason = f"{step.reason} (corrected)" if now else f"{step.reason} (no longer: corrected)"
            code = "step.corrected" if now else "step.no_longer"
            _add_points(
                turn,
                step.points if now else -step.points,
                reason,
                step_id=step.id,
                code=code,
                params={"text": step.reason},
            )


def _acknowledge(turn: _Turn, interpretation: Interpretation, filled: set[str], ask: AskStep | None) -> None:
    """Say back, before the next question, what this message gave besides the answer asked for
    (each value in its own words, a moment in full) and the moment just agreed."""
    state, ports = turn.state, turn.ports
    kinds = turn.lookups.slot_kinds
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
    if ask is not None and ask.slot in filled and ask.slot in interpretation.fuzzy and ask.kind == "choice":
        # read from misspelt words: said back, so that the lead can correct it
        title = next((turn.text(c.title) for c in ask.choices if c.id == state.slots.get(ask.slot)), None)
        if title is not None:
            parts.append(turn.say("noted_choice", choice=_quote(turn, title)))
    doubted: set[str] = set()  # phone numbers said back in full: not named again below
    for slot in sorted(filled):
        if kinds.get(slot) == "phone" and slot in interpretation.slots:
            doubtful = _doubtful_phone(state.slots.get(slot))
            if doubtful is not None:
                parts.append(turn.say("noted_phone", number=doubtful))
                doubted.add(slot)
    items: list[str] = []
    corrections: list[str] = []
    contacts: list[str] = []  # named, not repeated: the lead just typed them
    listening = turn.lookups.listening
    quiet = ask is None or ask.slot in filled or any(s not in listening for s in filled)
    for slot in interpretation.slots:
        if slot not in filled or (ask is not None and slot == ask.slot) or slot in doubted:
            continue
        kind = kinds.get(slot)
        if slot in listening and quiet and kind not in ("email", "phone"):
            continue  # noted silently, unless it is all a reply to the question waiting gave
        if slot not in state.slots or (kind == "yes_no" and slot in turn.corrected):
            continue  # a corrected yes/no answer speaks through the path it now takes
        said = corrections if slot in turn.corrected else items
        if kind in ("email", "phone"):
            said = corrections if slot in turn.corrected else contacts
            said.append(turn.say("your_email" if kind == "email" else "your_phone"))
        elif kind == "datetime":
            said.append(when(state.slots[slot]))
        elif kind == "choice":
            asked = turn.lookups.asks_for.get(slot, ())
            titles = {c.id: turn.text(c.title) for step in asked for c in step.choices}
            said.append(_quote(turn, titles.get(str(state.slots[slot]), str(state.slots[slot]))))
        elif kind == "text":  # what the team will read ("SW1A 1AA" for "sw1a1aa")
            said.append(_quote(turn, str(state.slots[slot])))
        else:
            said.append(_quote(turn, interpretation.evidence.get(slot) or str(state.slots[slot])))
    if turn.wished is not None:
        items.append(when(turn.wished))
    # contact details given in passing are said to be kept (named, not repeated), with the other
    # values, in a first message too; alone while another question waits, rather than "I didn't
    # understand", before the question is asked again
    items = [*items, *contacts]
    if corrections:
        parts.append(turn.say("noted_corrected", items=_listed(turn, corrections)))
    if items:  # "also" only after something this reply already said back
        parts.append(turn.say("noted_also" if parts else "noted_items", items=_listed(turn, items)))
    if parts:
        turn.pending_ack = " ".join(parts)


def _listed(turn: _Turn, items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c`` in the lead's language."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {turn.say('and')} {items[-1]}"


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
        scout = _Turn(turn.playbook, clone_model(state), turn.ports, peek=True)
        await _run(scout, first)
        turn.notes.extend(scout.notes)
        interpretation, filled = await _interpret(turn, text=event.text, choice_id=None, ask=scout.peeked)
        if interpretation.intent == "opt_out":
            _opt_out(turn, interpretation, event.text)
            return
        turn.pending_answer, unoffered = _offer_replies(turn, interpretation, interpretation.answer)
        if unoffered is not None:
            turn.pending_answer = unoffered
        elif interpretation.intent == "question" and not interpretation.answer:
            turn.pending_answer = turn.say("pass_on")
        spec = turn.playbook.not_offered
        turn.pending_human = interpretation.intent == "wants_human" or (
            unoffered is not None and spec is not None and spec.handoff
        )
        _acknowledge(turn, interpretation, filled, None)
    await _run(turn, first)


#: Names of the languages the engine speaks, in each of them.
LANGUAGE_NAMES: dict[str, dict[str, str]] = {
    "en": {"en": "English", "fr": "anglais"},
    "fr": {"en": "French", "fr": "français"},
}


def _language_unavailable(turn: _Turn, requested: str) -> str:
    """ "I can only continue in <the conversation's language>", in the language the lead asked for
    when the engine has the sentence in it (else in the conversation's)."""
    texts = ENGINE_TEXTS["language_unavailable"]
    said_in = next((code for code in (requested, turn.state.language) if code in texts), "en")
    name = LANGUAGE_NAMES.get(turn.state.language, {}).get(said_in, turn.state.language)
    return texts[said_in].format(language=name)


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
    state = turn.state
    if state.status == "handoff":
        return
    current = turn.lookups.by_id.get(state.current_step) if state.current_step else None
    if isinstance(current, BookStep) and _as_ask(turn, current) is not None:
        current = _as_ask(turn, current)
    ask = current if state.status == "active" and isinstance(current, AskStep) else None
    book = current if state.status == "active" and isinstance(current, BookStep) else None
    interpretation, filled = await _interpret(
        turn,
        text=event.text,
        choice_id=event.choice_id,
        ask=ask,
        context=_confirm_context(turn, book) if book is not None and state.booking.get("proposed") else None,
    )
    answer = interpretation.answer
    intent = interpretation.intent
    requested = asked_language(event.text) if not filled and intent in ("answer", "small_talk") else None
    if requested is not None and not answer:
        # "english please" answers no question: the question is asked again (in that language when
        # the playbook speaks it, see follow_language), never counted as a wrong answer
        intent = "small_talk"
        if ask is not None:  # nor words matching no option ("english please" is no roof type)
            interpretation.other.pop(ask.slot, None)
            interpretation.clarify.pop(ask.slot, None)
        if requested not in turn.lookups.spoken_languages:
            answer = _language_unavailable(turn, requested)
    wants_human = intent == "wants_human"
    if intent == "auto_reply":
        turn.notes.append("automatic reply (out of office): no answer, no step taken")
        return
    if intent == "opt_out":
        _opt_out(turn, interpretation, event.text, silent=state.status == "ended")
        return
    if await _booking_change(turn, event, interpretation):
        return
    if state.status == "ended":
        if answer:
            turn.send(answer, purpose="answer")
        elif wants_human and state.outcome != "opted_out":
            _handoff(turn, reason=_human_reason(turn))  # "can i speak to someone?" after a polite end
        return
    if book is not None:
        await _book_reply(turn, book, event, interpretation)
        return
    if intent == "not_interested":
        _not_interested(turn)
        return
    answer, unoffered = _offer_replies(turn, interpretation, answer)
    if unoffered is not None and state.status == "active":
        spec = turn.playbook.not_offered
        if spec is not None and spec.handoff:
            turn.send(unoffered, purpose="answer")
            asked = turn.not_offered or interpretation.asks_offer
            _handoff(turn, reason=f"asked for a project not offered: {asked}")
            return
        answer = unoffered  # said plainly, with what is offered, then the question asked again
    if intent == "question" and not answer and (ask is not None or state.status == "waiting"):
        answer = turn.say("why_asked" if ask is not None and _asks_why(event.text) else "pass_on")
    _acknowledge(turn, interpretation, filled, ask)
    _keep_remarks(turn, interpretation)
    reroute = _reroute(turn) if state.status == "active" and ask is not None else None
    if reroute is not None:
        if answer:
            turn.send(answer, purpose="answer")
        turn.flush_answer()
        state.attempts = 0
        await _run(turn, reroute)
        return
    if state.status == "waiting":
        if answer:
            turn.send(answer, purpose="answer")
        turn.flush_answer()
        if wants_human:
            _handoff(turn, reason=_human_reason(turn))
        elif isinstance(current, WaitStep) and current.until_reply:
            _cancel_timer(turn)
            state.status = "active"
            await _run(turn, current.on_reply or turn.next_of(current))
        return
    if ask is None:
        if answer:
            turn.send(answer, purpose="answer")
        elif wants_human:
            _handoff(turn, reason=_human_reason(turn))
        else:
            turn.send(_fallback(turn), purpose="fallback")
        turn.flush_answer()
        return
    if ask.slot in filled:
        _keep_also(turn, ask, interpretation)
        if answer:
            turn.send(answer, purpose="answer")
        turn.flush_answer()  # values confirmed before anything the next steps say
        state.attempts = 0
        await _run(turn, turn.next_of(ask))
    elif ask.slot in interpretation.clarify and not answer and not wants_human:
        await _clarify(turn, ask, interpretation.clarify[ask.slot])
    elif ask.slot in interpretation.other and not answer and not wants_human:
        declined = ask.slot in interpretation.declined
        if declined or state.attempts >= 1 or ask.retries == 0:
            await _keep_other(turn, ask, interpretation.other[ask.slot], after_retry=not declined)
        else:
            _choose_again(turn, ask)
    elif answer:
        turn.send(answer, purpose="answer")
        turn.flush_answer()
        question = turn.question(ask)
        if ask.slot in turn.out_of_range:  # the answer part was a number outside the range
            question = f"{_range_text(turn, ask)}\n{question}"
        turn.send(question, purpose="reask", step=ask, choices=turn.choices(ask))
    elif wants_human:
        turn.flush_answer()
        _handoff(turn, reason=_human_reason(turn))
    elif intent == "small_talk" or turn.pending_ack:
        turn.flush_answer()
        turn.send(turn.question(ask), purpose="reask", step=ask, choices=turn.choices(ask))
    else:
        state.attempts += 1
        if state.attempts > ask.retries:
            state.attempts = 0
            turn.notes.append(f"no valid answer to {ask.id!r} after {ask.retries} retries: moving on")
            await _run(turn, ask.on_fail or turn.next_of(ask))
        else:
            if ask.slot in turn.out_of_range:  # a number, but outside the question's range
                invalid = _range_text(turn, ask)
            else:
                invalid = turn.text(ask.invalid) if ask.invalid is not None else _default_invalid(turn)
            text = f"{invalid}\n{turn.question(ask)}"
            turn.send(text, purpose="reask", step=ask, choices=turn.choices(ask))


async def _clarify(turn: _Turn, ask: AskStep, candidates: list[str]) -> None:
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


def _choose_again(turn: _Turn, ask: AskStep) -> None:
    """Words that match none of the options, the first time: say the options again (as buttons)
    and invite the lead's own words, using one attempt; the lead's answer is not lost to a note."""
    turn.state.attempts += 1
    options = turn.choices(ask)
    titles = [o.title for o in options]
    listed = titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + f" {turn.say('or')} {titles[-1]}"
    turn.flush_answer()
    turn.send(turn.say("choose_again", options=listed), purpose="reask", step=ask, choices=options)


def _keep_also(turn: _Turn, ask: AskStep, interpretation: Interpretation) -> None:
    """The other options the lead named with the one kept ("combles et pac"): their titles in
    ``<slot>_also``, kept for the team (the lead is not asked which one they meant)."""
    extra = [c for c in turn.choices(ask) if c.id in interpretation.also.get(ask.slot, [])]
    if not extra:
        return
    key = f"{ask.slot}_also"
    words = ", ".join(c.title for c in extra)
    turn.state.slots[key] = words
    turn.actions.append(SlotFilled(slot=key, value=words, evidence=words, source="other"))


async def _keep_other(turn: _Turn, ask: AskStep, words: str, *, after_retry: bool = False) -> None:
    """None of the options fits: keep the lead's own words in ``<slot>_other`` and move on (the
    slot itself stays empty, so no option's score applies). ``after_retry``: the options were
    said again and the lead still chose none; the step's ``on_fail`` applies when it has one."""
    state = turn.state
    key = f"{ask.slot}_other"
    state.slots[key] = words
    turn.actions.append(SlotFilled(slot=key, value=words, evidence=words, source="other"))
    turn.pending_ack = " ".join(p for p in [turn.pending_ack, turn.say("noted_other")] if p)
    turn.flush_answer()
    state.attempts = 0
    await _run(turn, (ask.on_fail if after_retry else None) or turn.next_of(ask))


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


async def _timer(turn: _Turn, event: TimerFiredEvent) -> None:
    state = turn.state
    if state.status != "waiting" or state.timer is None or state.timer.id != event.timer_id:
        turn.notes.append(f"timer {event.timer_id!r} is not the conversation's current timer: ignored")
        return
    wait = turn.playbook.step(state.timer.step_id)
    state.timer = None
    state.status = "active"
    turn.purpose = "followup"
    if isinstance(wait, WaitStep):
        await _run(turn, wait.on_timeout or turn.next_of(wait))
    else:
        await _run(turn, turn.playbook.following(state.current_step or ""))


# --------------------------------------------------------------------------- booking

_CANCEL = re.compile(r"\b(?:cancel\w*|annul\w*)\b")
_MOVE = re.compile(
    r"\b(?:move|moving|reschedul\w*|postpone|change|another (?:day|time)|can'?t make|cannot make|"
    r"can no longer|won'?t make|d[ée]plac\w*|d[ée]cal\w*|report\w*|chang\w*|"
    r"ne (?:peux|pourrai|pourrais|pourrons) (?:plus|pas)|autre (?:jour|cr[ée]neau|heure|moment))\b"
)
_YES = re.compile(
    r"^\W*(?:yes|yeah|yep|sure|ok|okay|perfect|great|correct|right|that'?s right|oui|ouais|"
    r"d'accord|parfait|exactement|exact|c'est (?:bien )?(?:ça|cela|bon)|tout à fait|volontiers)\b"
)
_NO = re.compile(r"^\W*(?:no|nope|not really|non|pas du tout|pas vraiment)\b")
_MAX_READ = 500
_WHY_ASKED = re.compile(
    r"^\W*(?:but |mais |et )?(?:why|pourquoi|pk|pq|pkoi)(?: (?:do|would|does) (?:you|u|he|she|they|it) "
    r"(?:need|want|ask)\w*| (?:vous|tu|est-ce que vous|vous me) (?:me )?(?:demande\w*|veu\w+|voul\w+|"
    r"ave[zs] besoin)| (?:that|this|ça|ca|cela|this question|cette question)| is that (?:needed|necessary)"
    r"| c'est (?:utile|nécessaire|necessaire))\W{0,3}(?:\w+\W+){0,4}\w*$"
    r"|^\W*(?:but |mais |et )?(?:why|pourquoi|pk|pq|pkoi)\W*$"
)
"""A lead asking why the pending question is asked ("why?", "why do you need that?", "pk vous voulez
mon mail ?"): "why" alone, or "why" with words about the asking and at most four more words
(each repetition is one word then its separator, so matching is linear), read on messages of at
most :data:`_WHY_MAX` characters. Answered with ``why_asked`` rather than passed on."""
_WHY_MAX = 80


def _asks_why(text: str) -> bool:
    said = _lower(text)
    return len(said) <= _WHY_MAX and _WHY_ASKED.match(said) is not None


def _lower(text: str) -> str:
    return text.strip().lower().replace("’", "'")[:_MAX_READ]


def _confirm_context(turn: _Turn, step: BookStep) -> AskContext:
    """A yes/no question for the interpreter: is the time said back the one the lead wants?"""
    return AskContext(
        step_id=step.id,
        slot="booking_confirmed",
        kind="yes_no",
        question=turn.say("propose", when=_when(turn, float(turn.state.booking["proposed"]["start"]))),
    )


def _when(turn: _Turn, start: float) -> str:
    """A start said in full in the lead's language and zone ("mardi 8 décembre à 14 h")."""
    ports = turn.ports
    moment = dt.datetime.fromtimestamp(start, dt.UTC)
    return render_datetime(
        moment, language=turn.state.language, timezone=ports.timezone, now=float(ports.clock.now())
    )


_SHORT_DAYS = {
    "fr": ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}
_SHORT_MONTHS = {
    "fr": ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}


def _short_when(turn: _Turn, start: float) -> str:
    """A slot as a button title of at most 20 characters (WhatsApp's limit): "mar. 8 déc. 14h",
    "Tue 8 Dec, 2 pm"; the full date is said back before anything is booked."""
    try:
        zone: dt.tzinfo = ZoneInfo(turn.ports.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    moment = dt.datetime.fromtimestamp(start, zone)
    lang = "fr" if turn.state.language.startswith("fr") else "en"
    day = f"{_SHORT_DAYS[lang][moment.weekday()]} {moment.day} {_SHORT_MONTHS[lang][moment.month - 1]}"
    if lang == "fr":
        return f"{day} {moment.hour}h{moment.minute:02d}" if moment.minute else f"{day} {moment.hour}h"
    hour = moment.hour % 12 or 12
    suffix = "am" if moment.hour < 12 else "pm"
    clock = f"{hour}:{moment.minute:02d} {suffix}" if moment.minute else f"{hour} {suffix}"
    return f"{day}, {clock}"


def _iso(turn: _Turn, start: float) -> str:
    try:
        zone: dt.tzinfo = ZoneInfo(turn.ports.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    return dt.datetime.fromtimestamp(start, zone).isoformat(timespec="seconds")


def _as_ask(turn: _Turn, step: BookStep) -> AskStep | None:
    """A ``book`` step without a calendar asks for a call-back time when it says how."""
    if turn.ports.calendar is None and step.ask_without_calendar is not None:
        return turn.lookups.as_ask[step.id]
    return None


def _book_step(turn: _Turn) -> BookStep | None:
    step = turn.playbook.step(str(turn.state.booking.get("step_id") or ""))
    return step if isinstance(step, BookStep) else None


async def _free(turn: _Turn, step: BookStep) -> list[OfferedSlot] | None:
    """Every free slot in the step's window; ``None`` (and a note) when there is no calendar or it
    cannot be read."""
    port = turn.ports.calendar
    if port is None:
        turn.notes.append(f"book step {step.id!r}: no calendar is connected")
        return None
    now = float(turn.ports.clock.now())
    try:
        return await port.free_slots(start=now, end=now + step.within_s, duration_s=step.duration_s)
    except LeadWarmError as exc:
        turn.notes.append(f"book step {step.id!r}: the calendar could not be read ({type(exc).__name__})")
        return None


def _show(turn: _Turn, step: BookStep, offered: list[OfferedSlot], *, lead_in: str | None = None) -> None:
    """Offer ``offered`` (buttons, or a numbered list where the channel has none) and wait."""
    state = turn.state
    state.status, state.current_step = "active", step.id
    state.booking["step_id"] = step.id
    state.booking["offered"] = [o.model_dump() for o in offered]
    state.booking.pop("proposed", None)
    intro = turn.text(step.question) if step.question is not None else turn.say("offer")
    text = " ".join(p for p in (lead_in, intro) if p)
    choices = [ChoiceOption(id=o.id, title=_short_when(turn, o.start)) for o in offered]
    turn.send(f"{text}\n{turn.say('offer_other')}", purpose=turn.purpose, step=step, choices=choices)


async def _offer(
    turn: _Turn, step: BookStep, *, lead_in: str | None = None, exclude: frozenset[int] = frozenset()
) -> bool:
    """Fetch free slots and offer a few; ``False`` (after saying so) when there is none."""
    free = await _free(turn, step)
    port = turn.ports.calendar
    if free is None or port is None:
        if lead_in:
            turn.send(lead_in, purpose="step", step=step)
        return False
    free = [s for s in free if round(s.start) not in exclude]
    offered = port.spread(free, count=step.offer, timezone=turn.ports.timezone)
    if not offered:
        turn.send(" ".join(p for p in (lead_in, turn.say("no_slot")) if p), purpose="step", step=step)
        return False
    _show(turn, step, offered, lead_in=lead_in)
    return True


async def _offer_wish(turn: _Turn, step: BookStep) -> bool | None:
    """The lead said a time in passing before the ``book`` step: say it back to confirm when the
    calendar has it free (``True``), else offer the free times after saying it is not available
    (what :func:`_offer` returns). ``None`` when there is no such time (or it has passed)."""
    start = _wish_start(turn)
    port = turn.ports.calendar
    if start is None or port is None:
        return None
    try:
        found = await port.slot_at(start, duration_s=step.duration_s)
    except LeadWarmError as exc:
        turn.notes.append(f"book step {step.id!r}: availability check failed ({type(exc).__name__})")
        return None
    if found is not None:
        _propose(turn, step, found, lead_in=turn.say("wish"))
        return True
    return await _offer(turn, step, lead_in=turn.say("unavailable", when=_when(turn, start)))


def _propose(turn: _Turn, step: BookStep, slot: OfferedSlot, *, lead_in: str | None = None) -> None:
    """Say a time back in full and ask the lead to confirm it."""
    state = turn.state
    state.status, state.current_step = "active", step.id
    state.booking["step_id"] = step.id
    state.booking["proposed"] = slot.model_dump()
    text = turn.say("propose", when=_when(turn, slot.start))
    choices = [ChoiceOption(id="yes", title=turn.say("yes")), ChoiceOption(id="no", title=turn.say("no"))]
    turn.send(" ".join(p for p in (lead_in, text) if p), purpose="step", step=step, choices=choices)


def _request(turn: _Turn, step: BookStep, slot: OfferedSlot) -> None:
    """Ask the app to book ``slot`` (it answers with a :class:`BookingEvent`)."""
    state = turn.state
    count = int(state.booking.get("requests", 0)) + 1  # unique even when the clock stands still
    state.booking["requests"] = count
    request_id = f"{step.id}:{round(float(turn.ports.clock.now()) * 1000)}:{count}"
    state.booking.pop("offered", None)
    state.booking.pop("proposed", None)
    state.booking["pending"] = {"request_id": request_id, "slot": slot.model_dump()}
    state.attempts = 0
    turn.actions.append(
        BookingRequested(
            request_id=request_id,
            slot=slot,
            title=turn.text(step.title),
            step_id=step.id,
            reschedule_of=state.booking.get("reschedule_of"),
        )
    )


def _resume(turn: _Turn) -> None:
    """Back to where the conversation was before the lead asked to move their meeting."""
    state = turn.state
    resume = state.booking.pop("resume", None)
    state.booking.pop("reschedule_of", None)
    state.booking.pop("offered", None)
    state.booking.pop("proposed", None)
    if resume:
        state.status = resume.get("status", "ended")
        state.current_step = resume.get("current_step")


async def _book_reply(
    turn: _Turn, step: BookStep, event: InboundEvent, interpretation: Interpretation
) -> None:
    """The lead answered an offer (or a time said back to them)."""
    state, port = turn.state, turn.ports.calendar
    booking = state.booking
    turn.flush_answer()
    if port is None:
        await _run(turn, step.on_fail or turn.next_of(step))
        return
    if booking.get("pending"):
        if interpretation.answer:
            turn.send(interpretation.answer, purpose="answer")
        return
    text = _lower(event.text)
    now = float(turn.ports.clock.now())
    offered = [OfferedSlot.model_validate(o) for o in booking.get("offered", [])]
    proposed = booking.get("proposed")
    if proposed is not None:
        said = interpretation.slots.get("booking_confirmed")
        yes = event.choice_id == "yes" or said is True or bool(_YES.search(text))
        no = event.choice_id == "no" or said is False or bool(_NO.search(text))
        if yes and not no:
            _request(turn, step, OfferedSlot.model_validate(proposed))
            return
        booking.pop("proposed", None)
        again = port.match(text, offered, timezone=turn.ports.timezone, language=state.language, now=now)
        if no and again.requested is None and again.slot is None:
            if offered:
                _show(turn, step, offered)
            elif not await _offer(turn, step):
                await _run(turn, step.on_fail or turn.next_of(step))
            return
    slot = next((o for o in offered if event.choice_id and o.id == event.choice_id), None)
    pick = port.match(text, offered, timezone=turn.ports.timezone, language=state.language, now=now)
    slot = slot or pick.slot
    if slot is not None:
        _request(turn, step, slot)
        return
    if pick.requested is not None:
        try:
            found = await port.slot_at(pick.requested, duration_s=step.duration_s)
        except LeadWarmError as exc:
            turn.notes.append(f"book step {step.id!r}: availability check failed ({type(exc).__name__})")
            found = None
        if found is not None:
            _propose(turn, step, found)
        else:
            lead_in = turn.say("unavailable", when=_when(turn, pick.requested))
            if offered:
                _show(turn, step, offered, lead_in=lead_in)
            elif not await _offer(turn, step, lead_in=lead_in):
                await _run(turn, step.on_fail or turn.next_of(step))
        return
    if len(pick.ambiguous) > 1:
        _show(turn, step, list(pick.ambiguous))
        return
    answer = interpretation.answer
    if not answer and interpretation.intent == "question":
        # "why do u need that?", "is it free?": answered or passed on, never "I didn't get that"
        answer = turn.say("why_asked" if _asks_why(event.text) else "pass_on")
    if answer:
        turn.send(answer, purpose="answer")
        _show(turn, step, offered)
        return
    if interpretation.intent == "wants_human":
        _handoff(turn, reason=_human_reason(turn))
        return
    if interpretation.intent == "not_interested":
        _not_interested(turn)
        return
    state.attempts += 1
    if state.attempts > step.retries or not offered:
        state.attempts = 0
        turn.notes.append(f"no slot understood at {step.id!r} after {step.retries} retries: moving on")
        booking.pop("offered", None)
        await _run(turn, step.on_fail or turn.next_of(step))
        return
    _show(turn, step, offered, lead_in=_default_invalid(turn))


async def _booking_change(turn: _Turn, event: InboundEvent, interpretation: Interpretation) -> bool:
    """The lead asks to cancel or move the meeting they have ("cancel my appointment", "je ne peux
    plus jeudi", "can we move it to Friday?"); ``True`` when the message was about that."""
    state = turn.state
    booked = state.booking.get("booked")
    step = _book_step(turn)
    if not booked or step is None or state.status == "handoff" or state.booking.get("pending"):
        return False
    text = _lower(event.text)
    if _CANCEL.search(text):
        turn.flush_answer()
        turn.actions.append(BookingCancelRequested(booking=booked, reason="cancelled by the lead"))
        turn.actions.append(MeetingCancelled(booking=booked, reason="cancelled by the lead"))
        turn.send(turn.say("cancelled", when=_when(turn, float(booked["start"]))), purpose="step")
        state.booking["booked"] = None
        _resume(turn)
        return True
    if not _MOVE.search(text):
        return False
    turn.flush_answer()
    if state.current_step != step.id or state.status != "active":
        state.booking["resume"] = {"status": state.status, "current_step": state.current_step}
    _cancel_timer(turn)
    state.booking["reschedule_of"] = booked
    free = await _free(turn, step)
    port = turn.ports.calendar
    if not free or port is None:
        turn.send(turn.say("no_slot"), purpose="step", step=step)
        _resume(turn)
        return True
    now = float(turn.ports.clock.now())
    zone = turn.ports.timezone
    pick = port.match(text, free, timezone=zone, language=state.language, now=now)
    old_day = _iso(turn, float(booked["start"]))[:10]
    named = [pick.slot] if pick.slot else pick.ambiguous
    same_day = [s for s in named if _iso(turn, s.start)[:10] == old_day]
    if pick.slot is not None and not same_day:
        _propose(turn, step, pick.slot)
    elif pick.ambiguous and not same_day:
        first = _iso(turn, pick.ambiguous[0].start)[:10]  # "Friday": the coming one
        nearest = [s for s in pick.ambiguous if _iso(turn, s.start)[:10] == first]
        _show(turn, step, port.spread(nearest, count=step.offer, timezone=zone))
    elif pick.requested is not None:
        lead_in = turn.say("unavailable", when=_when(turn, pick.requested))
        _show(turn, step, port.spread(free, count=step.offer, timezone=zone), lead_in=lead_in)
    else:
        others = [s for s in free if _iso(turn, s.start)[:10] != old_day] or free
        _show(turn, step, port.spread(others, count=step.offer, timezone=zone))
    return True


async def _booking_event(turn: _Turn, event: BookingEvent) -> None:
    """The app's answer to a booking request, or a change made outside the conversation."""
    state = turn.state
    booking = state.booking
    step = _book_step(turn)
    if step is None:
        turn.notes.append("booking event without a book step: ignored")
        return
    if event.outcome in ("booked", "taken", "failed"):
        pending = booking.get("pending")
        if not pending or pending.get("request_id") != event.request_id:
            turn.notes.append(f"booking answer {event.request_id!r} is not the pending request: ignored")
            return
        slot = OfferedSlot.model_validate(pending["slot"])
        booking.pop("pending", None)
        if event.outcome == "booked" and event.booking:
            rescheduled = booking.get("reschedule_of") is not None
            booked = dict(event.booking)
            booking["booked"] = booked
            value = _iso(turn, float(booked["start"]))
            state.slots[step.slot] = value
            turn.actions.append(SlotFilled(slot=step.slot, value=value, source="booking"))
            turn.actions.append(MeetingBooked(booking=booked, rescheduled=rescheduled))
            if rescheduled:
                turn.send(turn.say("moved", when=_when(turn, float(booked["start"]))), purpose="step")
                _resume(turn)
                return
            turn.send(turn.say("booked", when=_when(turn, float(booked["start"]))), purpose="step", step=step)
            state.attempts = 0
            await _run(turn, turn.next_of(step))
            return
        key = "taken" if event.outcome == "taken" else "failed"
        lead_in = turn.say(key, when=_when(turn, slot.start))
        if not await _offer(turn, step, lead_in=lead_in, exclude=frozenset({round(slot.start)})):
            if booking.get("reschedule_of"):
                _resume(turn)
            else:
                await _run(turn, step.on_fail or turn.next_of(step))
        return
    held = booking.get("booked")
    if not held or (event.booking and str(event.booking.get("id")) != str(held.get("id"))):
        turn.notes.append("change to a meeting the conversation does not hold: ignored")
        return
    booked = dict(held)
    if event.outcome == "cancelled":
        booking["booked"] = None
        turn.actions.append(MeetingCancelled(booking=booked, reason=event.reason or "cancelled outside"))
        turn.send(turn.say("cancelled_outside", when=_when(turn, float(booked["start"]))), purpose="step")
        return
    if event.booking and event.booking.get("start") is not None:
        moved = {**booked, **event.booking}
        booking["booked"] = moved
        value = _iso(turn, float(moved["start"]))
        state.slots[step.slot] = value
        turn.actions.append(SlotFilled(slot=step.slot, value=value, source="booking"))
        turn.actions.append(MeetingBooked(booking=moved, rescheduled=True))
        turn.send(turn.say("moved", when=_when(turn, float(moved["start"]))), purpose="step")


async def _hand_back(turn: _Turn, event: ResumeEvent) -> None:
    """A person handed the conversation back: run from ``event.step_id`` (or end)."""
    state = turn.state
    _cancel_timer(turn)
    state.status, state.attempts = "active", 0
    if event.step_id is None:
        _finish(turn, outcome=state.outcome or "closed")
    else:
        await _run(turn, event.step_id)


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
    turn = _Turn(playbook=playbook, state=clone_model(state), ports=ports)
    if isinstance(event, InboundEvent):
        turn.engagement = {"reply_seconds": event.reply_seconds, "inbound_count": event.inbound_count}
    if isinstance(event, StartEvent):
        await _start(turn, event)
    elif isinstance(event, InboundEvent):
        await _inbound(turn, event)
    elif isinstance(event, ResumeEvent):
        await _hand_back(turn, event)
    elif isinstance(event, BookingEvent):
        await _booking_event(turn, event)
    else:
        await _timer(turn, event)
    return EngineResult(
        state=turn.state, actions=turn.actions, notes=turn.notes, interpretation=turn.interpretation
    )
