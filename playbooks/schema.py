"""The YAML playbook format, as pydantic v2 models.

A playbook is a list of steps run top to bottom (``next`` jumps elsewhere). Step types are a
discriminated union on ``type``: ``message``, ``ask``, ``condition``, ``score``, ``wait``,
``handoff``, ``end``. Unknown keys are errors everywhere (``extra='forbid'``) so that a typo
never silently changes a conversation.

Texts a lead reads are *localized*: a string, or a mapping ``{lang: text}`` (ISO 639-1 codes),
and are Jinja2 templates (see :mod:`playbooks.expressions`). Whole-playbook checks (dangling
step references, duplicate ids, a slot asked with two kinds) are raised as pydantic
``ValidationError`` line errors whose ``loc`` points at the offending field, so the loader can
map them to a YAML line.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from playbooks.expressions import ExpressionSyntaxError, check_expression, check_template

__all__ = [
    "SLOT_KINDS",
    "AskStep",
    "BookStep",
    "Choice",
    "ConditionStep",
    "EndStep",
    "HandoffStep",
    "LocalizedText",
    "MessageStep",
    "NotOffered",
    "Playbook",
    "PlaybookLookups",
    "ScoreStep",
    "SlotKind",
    "Step",
    "SyncStep",
    "Trigger",
    "WaitStep",
    "parse_duration",
    "pick_language",
]

SlotKind = Literal["text", "yes_no", "number", "email", "phone", "datetime", "choice"]
SLOT_KINDS: tuple[str, ...] = ("text", "yes_no", "number", "email", "phone", "datetime", "choice")
Trigger = Literal["inbound_unknown_lead", "lead_created"]
_ALL_TRIGGERS: tuple[Trigger, ...] = ("inbound_unknown_lead", "lead_created")

_LANG = re.compile(r"^[a-z]{2}$")
_DURATION = re.compile(
    r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$", re.IGNORECASE
)

StepId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", max_length=64)]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]
LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2}$", description="ISO 639-1 code, e.g. 'en', 'fr'.")]


def parse_duration(text: str) -> int:
    """Parse ``"90s"``, ``"30m"``, ``"2h"``, ``"1d"``, ``"1h30m"`` into seconds (> 0).

    Raises ``ValueError`` (a ``PydanticCustomError`` of type ``duration`` or ``duration_zero``,
    whose context ``text`` the playbook issues translate) with a readable message for anything else.
    """
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or not any(match.groups()):
        raise PydanticCustomError(
            "duration",
            "not a duration: {text} (write e.g. '90s', '30m', '2h', '1d' or '1h30m')",
            {"text": repr(text)},
        )
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise PydanticCustomError(
            "duration_zero", "the duration must be longer than zero (got {text})", {"text": repr(text)}
        )
    return total


def _check_template_text(value: str) -> str:
    try:
        check_template(value)
    except ExpressionSyntaxError as exc:
        raise PydanticCustomError("template_syntax", "{error}", {"error": str(exc)}) from exc
    return value


def _check_expression_text(value: str) -> str:
    try:
        check_expression(value)
    except ExpressionSyntaxError as exc:
        raise PydanticCustomError("expression_syntax", "{error}", {"error": str(exc)}) from exc
    return value


def _localized(value: Any, handler: Any) -> Any:
    """One clear error instead of pydantic's per-union-member errors; templates must compile."""
    try:
        result = handler(value)
    except ValidationError:
        raise PydanticCustomError(
            "localized_text",
            "expected a text or a mapping of language codes to texts, e.g. {en: Hi, fr: Bonjour}",
        ) from None
    if isinstance(result, dict):
        if not result:
            raise PydanticCustomError("localized_empty", "the mapping of languages to texts is empty")
        for lang, text in result.items():
            if not _LANG.match(lang):
                raise PydanticCustomError(
                    "language_code",
                    "'{lang}' is not a two-letter ISO 639-1 language code (e.g. en, fr)",
                    {"lang": lang},
                )
            try:
                _check_template_text(text)
            except ValueError as exc:
                raise PydanticCustomError(
                    "template", "{lang}: {error}", {"lang": lang, "error": str(exc)}
                ) from None
    else:
        _check_template_text(result)
    return result


LocalizedText = Annotated[str | dict[str, str], WrapValidator(_localized)]
"""A text the lead reads: a string, or ``{lang: string}``; each string is a Jinja2 template."""
Expression = Annotated[str, AfterValidator(_check_expression_text)]
"""A Jinja2 expression such as ``slots.budget >= 10000 and slots.homeowner``."""


def pick_language(text: str | dict[str, str], *languages: str | None) -> str:
    """Choose the text for the first of ``languages`` that ``text`` has, else its first entry."""
    if isinstance(text, str):
        return text
    for lang in languages:
        if lang and lang in text:
            return text[lang]
    return next(iter(text.values()))


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, use_attribute_docstrings=True)


class WhatsAppTemplate(_Base):
    """A template approved by Meta (WhatsApp Manager > Message templates). ``parameters`` fill the
    body's {{1}}, {{2}}... in order; each is a Jinja2 text that may use lead and slot variables."""

    name: str = Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")
    language: str = Field(min_length=2, max_length=15, description="template language code, e.g. en_US, fr")
    parameters: list[str] = Field(default_factory=list)


class _StepBase(_Base):
    id: StepId = ""
    """Unique step id; defaults to ``step-<index>`` (0-based position in ``steps``)."""
    next: StepId | None = None
    """Step to go to afterwards; defaults to the following step."""
    channel: str | None = None
    """Send this step's messages on this channel (e.g. 'email') instead of the conversation's."""
    whatsapp_template: WhatsAppTemplate | None = None
    """The approved template to send instead when WhatsApp's 24-hour window is closed."""

    def references(self) -> Iterator[tuple[str, str]]:
        """(field alias, step id) for every step this one can jump to."""
        if self.next:
            yield "next", self.next


class MessageStep(_StepBase):
    """Say something to the lead, then go on."""

    type: Literal["message"]
    text: LocalizedText


class Choice(_Base):
    """One option of a ``choice`` question (a reply button where the channel has them)."""

    id: Identifier
    title: LocalizedText
    synonyms: list[str] = Field(default_factory=list)
    """Other words a lead may use for this option (any language)."""


class AskStep(_StepBase):
    """Ask a question and store the answer in ``slot``."""

    type: Literal["ask"]
    slot: Identifier
    kind: SlotKind
    question: LocalizedText
    choices: list[Choice] = Field(default_factory=list)
    retries: int = Field(default=2, ge=0, le=10)
    """How many times to re-ask after an answer that cannot be understood."""
    invalid: LocalizedText | None = None
    """Said before re-asking; a built-in sentence per language when omitted."""
    on_fail: StepId | None = None
    """Step to go to when retries are exhausted; defaults to the next step (slot left empty)."""
    skip_if_filled: bool = True
    """Skip the question when the slot already has a value (e.g. the lead gave it earlier)."""
    listen_only: bool = False
    """Never ask the question: the slot is filled only from what the lead says in passing ("thinking
    about solar panels" while another question waits). Said back only when it is all a reply gave."""
    min: float | None = None
    """Smallest accepted value (number questions only)."""
    max: float | None = None
    """Largest accepted value (number questions only)."""

    @model_validator(mode="after")
    def _check_kind_options(self) -> AskStep:
        if self.kind == "choice":
            if not self.choices:
                raise PydanticCustomError("choices_missing", "a 'choice' question needs a list of 'choices'")
            ids = [c.id for c in self.choices]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise PydanticCustomError(
                    "choices_duplicate",
                    "choice ids must be unique (repeated: {ids})",
                    {"ids": ", ".join(dupes)},
                )
        elif self.choices:
            raise PydanticCustomError(
                "choices_unexpected",
                "'choices' only make sense with kind: choice (this is {kind})",
                {"kind": self.kind},
            )
        if (self.min is not None or self.max is not None) and self.kind != "number":
            raise PydanticCustomError("min_max_kind", "'min' and 'max' only apply to kind: number")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PydanticCustomError("min_max_order", "'min' is larger than 'max'")
        return self

    def references(self) -> Iterator[tuple[str, str]]:
        yield from super().references()
        if self.on_fail:
            yield "on_fail", self.on_fail


class ConditionStep(_StepBase):
    """Jump to ``then`` when the expression ``if`` is true, else to ``else`` (default: next step)."""

    type: Literal["condition"]
    if_: Expression = Field(alias="if")
    then: StepId
    else_: StepId | None = Field(default=None, alias="else")

    def references(self) -> Iterator[tuple[str, str]]:
        yield from super().references()
        yield "then", self.then
        if self.else_:
            yield "else", self.else_


class ScoreStep(_StepBase):
    """Add ``points`` (may be negative) to the lead's score, with a reason the sales team reads."""

    type: Literal["score"]
    points: int
    reason: str = Field(min_length=1)
    if_: Expression | None = Field(default=None, alias="if")
    """Only score when this expression is true."""


class WaitStep(_StepBase):
    """Pause the playbook for ``duration``, or until the lead replies (``until_reply``)."""

    type: Literal["wait"]
    duration: str | None = None
    """'90s', '30m', '2h', '1d', '1h30m'. Optional with until_reply (then it waits forever)."""
    until_reply: bool = False
    on_timeout: StepId | None = None
    on_reply: StepId | None = None

    @field_validator("duration")
    @classmethod
    def _duration_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _duration_or_reply(self) -> WaitStep:
        if self.duration is None and not self.until_reply:
            raise PydanticCustomError("wait_forever", "a wait needs a 'duration' (or until_reply: true)")
        if self.on_reply and not self.until_reply:
            raise PydanticCustomError("wait_on_reply", "'on_reply' only applies with until_reply: true")
        return self

    @property
    def seconds(self) -> int | None:
        """The duration in seconds, or ``None`` when waiting for a reply only."""
        return parse_duration(self.duration) if self.duration is not None else None

    def references(self) -> Iterator[tuple[str, str]]:
        yield from super().references()
        if self.on_timeout:
            yield "on_timeout", self.on_timeout
        if self.on_reply:
            yield "on_reply", self.on_reply


class BookStep(_StepBase):
    """Book a meeting on the tenant's calendar: offer a few free slots in the lead's time zone
    (buttons where the channel has them, a numbered list elsewhere), understand the pick or another
    time (checked against availability and confirmed back in full), then the app books it. The
    meeting's start is kept in ``slot`` (ISO 8601 with offset) once booked. Without a calendar, or
    with no free slot, or after ``retries`` replies not understood, goes to ``on_fail`` (default:
    the next step)."""

    type: Literal["book"]
    slot: Identifier = "meeting"
    """Where the booked start is kept (e.g. ``callback_time``), for conditions and templates."""
    duration: str = "30m"
    """Length of the meeting: '15m', '30m', '1h'."""
    within: str = "14d"
    """How far ahead slots are offered."""
    offer: int = Field(default=3, ge=1, le=10)
    """How many slots are offered at once."""
    title: LocalizedText = "Meeting"
    """The meeting's title on the calendar and in the invitation."""
    question: LocalizedText | None = None
    """Said before the slots; a built-in sentence per language when omitted."""
    retries: int = Field(default=2, ge=0, le=10)
    on_fail: StepId | None = None
    ask_without_calendar: LocalizedText | None = None
    """Without a calendar, ask this instead and keep the answer in ``slot`` as a date-time (a
    call-back time), like an ``ask`` step of kind ``datetime``; omitted: go to ``on_fail``."""
    invalid: LocalizedText | None = None
    """Said before asking again when the answer is not understood."""

    def as_ask(self) -> AskStep:
        """The ``ask`` step this step becomes without a calendar (``ask_without_calendar`` set)."""
        return AskStep(
            id=self.id,
            next=self.next,
            channel=self.channel,
            type="ask",
            slot=self.slot,
            kind="datetime",
            question=self.ask_without_calendar or "",
            retries=self.retries,
            invalid=self.invalid,
            on_fail=self.on_fail,
        )

    @field_validator("duration", "within")
    @classmethod
    def _durations_parse(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def duration_s(self) -> int:
        """The meeting's length in seconds."""
        return parse_duration(self.duration)

    @property
    def within_s(self) -> int:
        """The offer window in seconds."""
        return parse_duration(self.within)

    def references(self) -> Iterator[tuple[str, str]]:
        yield from super().references()
        if self.on_fail:
            yield "on_fail", self.on_fail


class HandoffStep(_StepBase):
    """Give the conversation to a human; the bot stays silent afterwards."""

    type: Literal["handoff"]
    reason: str = Field(min_length=1)
    message: LocalizedText | None = None


class SyncStep(_StepBase):
    """Push the lead to the CRM now (the app's CRM sync queue does the writing), then go on.
    ``integration`` names one CRM connection (its id, or its provider, e.g. ``hubspot``);
    without it, every CRM connection of the tenant that writes to its CRM receives the lead."""

    type: Literal["sync"]
    integration: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    if_: Expression | None = Field(default=None, alias="if")
    """Only sync when this expression is true."""


class EndStep(_StepBase):
    """End the conversation with an ``outcome`` (qualified, disqualified, booked, nurture, ...)."""

    type: Literal["end"]
    outcome: str = Field(min_length=1)
    message: LocalizedText | None = None


Step = Annotated[
    MessageStep
    | AskStep
    | ConditionStep
    | ScoreStep
    | WaitStep
    | HandoffStep
    | EndStep
    | BookStep
    | SyncStep,
    Field(discriminator="type"),
]


def _line_error(
    loc: tuple[str | int, ...], kind: str, template: str, context: dict[str, str], value: Any
) -> InitErrorDetails:
    """One error of the playbook graph at ``loc``: ``template`` (``{name}`` fields from ``context``)
    is the English message; the playbook issues translate ``kind`` with the same ``context``."""
    return InitErrorDetails(type=PydanticCustomError(kind, template, context), loc=loc, input=value)


class NotOffered(_Base):
    """Projects the business does not take on ("panneaux solaires" for an insulation firm): a lead
    who asks for one is told so plainly, with what is offered, instead of "I did not understand"."""

    topics: list[Choice] = Field(min_length=1)
    """The projects not offered: ``title`` (said back: "des panneaux solaires") and ``synonyms``."""
    offer_step: StepId | None = None
    """A ``choice`` ask step whose options are what is offered (listed in the default reply)."""
    handoff: bool = False
    """Hand the lead to an adviser after the reply instead of asking the pending question again."""
    message: LocalizedText | None = None
    """The reply (Jinja2; ``topic`` and ``offers`` are variables); default: the engine's own words
    ("Sorry, we don't offer {topic}. What we can help you with: {offers}.")."""


class Playbook(_Base):
    """A lead-qualification playbook (one YAML file)."""

    id: str = Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=80)
    """Slug, e.g. 'solar-qualification-en'."""
    name: str = Field(min_length=1)
    version: int = Field(ge=1)
    language: LanguageCode = "en"
    """Default language of the texts (ISO 639-1)."""
    description: str = ""
    triggers: list[Trigger] = Field(default_factory=lambda: list(_ALL_TRIGGERS))
    """When the playbook starts: a stranger writes in, and/or a lead is created (CRM, form). Default: both."""
    channels: list[str] = Field(default_factory=list)
    """Channels this playbook runs on (empty: all)."""
    qualification_threshold: int | None = Field(default=None, ge=0, le=100)
    """Score (0-100) at which the lead counts as qualified."""
    fallback_channels: list[str] = Field(default_factory=list)
    """Channels to try, in order, when the outbound policy blocks a message on its own channel
    (e.g. [email] when the WhatsApp window is closed and no template fits)."""
    steps: list[Step] = Field(min_length=1)
    not_offered: NotOffered | None = None
    """Projects not offered, and what the lead who asks for one is told (see :class:`NotOffered`)."""

    @model_validator(mode="after")
    def _check_graph(self) -> Playbook:
        errors: list[InitErrorDetails] = []
        seen: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            explicit = bool(step.id)
            if not explicit:
                step.id = f"step-{index}"
            if step.id in seen:
                loc: tuple[str | int, ...] = ("steps", index, "id") if explicit else ("steps", index)
                errors.append(
                    _line_error(
                        loc,
                        "duplicate_step",
                        "step id {id} is already used by steps[{first}]",
                        {"id": repr(step.id), "first": str(seen[step.id])},
                        step.id,
                    )
                )
            else:
                seen[step.id] = index
        kinds: dict[str, tuple[str, int]] = {}
        for index, step in enumerate(self.steps):
            for field, target in step.references():
                if target not in seen:
                    known = ", ".join(seen)
                    errors.append(
                        _line_error(
                            ("steps", index, field),
                            "unknown_step",
                            "no step has the id {target} (steps are: {known})",
                            {"target": repr(target), "known": known},
                            target,
                        )
                    )
            if isinstance(step, AskStep):
                first = kinds.setdefault(step.slot, (step.kind, index))
                if first[0] != step.kind:
                    errors.append(
                        _line_error(
                            ("steps", index, "kind"),
                            "slot_kind",
                            "slot {slot} is asked as {first} in steps[{index}]; "
                            "a slot has one kind only (got {kind})",
                            {
                                "slot": repr(step.slot),
                                "first": repr(first[0]),
                                "index": str(first[1]),
                                "kind": repr(step.kind),
                            },
                            step.kind,
                        )
                    )
        offer_step = self.not_offered.offer_step if self.not_offered is not None else None
        if offer_step is not None:
            offered = self.step(offer_step)
            if not (isinstance(offered, AskStep) and offered.kind == "choice"):
                errors.append(
                    _line_error(
                        ("not_offered", "offer_step"),
                        "offer_step",
                        "offer_step {id} must be the id of an ask step of kind 'choice'",
                        {"id": repr(offer_step)},
                        offer_step,
                    )
                )
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self

    # ----------------------------------------------------------------- lookups

    def lookups(self) -> PlaybookLookups:
        """This playbook's lookups (:class:`PlaybookLookups`), built on the first call and kept
        while the playbook lives; rebuilt when a field they read was replaced since."""
        entry = _LOOKUPS.get(id(self))
        if entry is not None and entry[0]() is self and entry[1].fits(self):
            return entry[1]
        built = PlaybookLookups(self)
        key = id(self)
        _LOOKUPS[key] = (weakref.ref(self, lambda _: _LOOKUPS.pop(key, None)), built)
        return built

    def step(self, step_id: str) -> Step | None:
        """The step with this id, or ``None``."""
        return self.lookups().by_id.get(step_id)

    def following(self, step_id: str) -> str | None:
        """The id of the step written after ``step_id`` (``None`` after the last one)."""
        return self.lookups().following.get(step_id)

    def spoken_languages(self) -> tuple[str, ...]:
        """The languages (ISO 639-1, the playbook's own first) in which EVERY question is written: a
        question given as one plain string is in ``language`` only. The conversation follows a lead
        only into these (:func:`playbooks.language.follow_language`), never into one where the
        questions would stay in another language than the bot's own sentences."""
        return self.lookups().spoken_languages

    def slot_kinds(self) -> dict[str, str]:
        """Every slot the playbook asks, mapped to its kind, in order of appearance (a new dict)."""
        return dict(self.lookups().slot_kinds)

    def asks_for(self, slot: str) -> list[AskStep]:
        """Every ask step that fills ``slot``."""
        return list(self.lookups().asks_for.get(slot, ()))

    def choice_labels(self, slot: str) -> dict[str, list[str]]:
        """Every word that names each choice of ``slot``: ``{choice id: [titles in every language,
        synonyms]}``, across every step that asks it."""
        return {cid: list(labels) for cid, labels in self.lookups().choice_labels(slot).items()}


_LOOKUPS: dict[int, tuple[weakref.ref[Playbook], PlaybookLookups]] = {}
""":meth:`Playbook.lookups` by ``id(playbook)``: an entry goes with its playbook (the weak
reference's callback), so the table holds at most the playbooks alive. (A pydantic model that is
not frozen cannot be a weak dictionary's key: it has no hash.)"""

_NO_LABELS: Mapping[str, tuple[str, ...]] = MappingProxyType({})


class PlaybookLookups:
    """What the engine looks up in a playbook on every turn, computed once per playbook object
    (:meth:`Playbook.lookups`) instead of by walking ``steps`` each time: steps by id, their
    positions and followers, slot kinds, the languages spoken, the ask steps of each slot, the
    words naming each choice, the ``ask`` step each ``book`` step stands for, the listen-only
    slots. Read-only: mappings and tuples the callers must not change.

    A playbook version is immutable once stored (``app.authoring.repository``); the lookups
    follow the playbook object they were built from: one whose ``steps``, ``not_offered`` or
    ``language`` was replaced gets new lookups (:meth:`fits`). Changing a step in place is not
    supported (nothing does: a validated playbook is never edited, a new version is loaded).

    ``memo`` is for the engine's own values derived from the playbook and a language (the texts
    of its questions): a dict the engine bounds itself."""

    def __init__(self, playbook: Playbook) -> None:
        steps = playbook.steps
        self._steps = steps
        self._count = len(steps)
        self._not_offered = playbook.not_offered
        self._language = playbook.language
        by_id: dict[str, Step] = {}
        position: dict[str, int] = {}
        following: dict[str, str | None] = {}
        for index, step in enumerate(steps):
            if step.id not in by_id:
                by_id[step.id] = step
                position[step.id] = index
                following[step.id] = steps[index + 1].id if index + 1 < len(steps) else None
        self.by_id: Mapping[str, Step] = by_id
        """Each step by id (the first one, should two share an id)."""
        self.position: Mapping[str, int] = position
        """Each step's index in ``steps``, by id."""
        self.following: Mapping[str, str | None] = following
        """The id of the step written after each step (``None`` after the last one), by id."""
        kinds: dict[str, str] = {}
        asks: dict[str, list[AskStep]] = {}
        spoken: set[str] | None = None
        for s in steps:
            if isinstance(s, AskStep):
                kinds.setdefault(s.slot, s.kind)
                asks.setdefault(s.slot, []).append(s)
                has = {playbook.language} if isinstance(s.question, str) else {k.lower() for k in s.question}
                spoken = has if spoken is None else spoken & has
            elif isinstance(s, BookStep) and s.ask_without_calendar is not None:
                kinds.setdefault(s.slot, "datetime")
        self.slot_kinds: Mapping[str, str] = kinds
        """Every slot the playbook asks -> its kind, in order of appearance."""
        languages = spoken if spoken is not None else {playbook.language}
        self.spoken_languages: tuple[str, ...] = tuple(
            sorted(languages, key=lambda code: (code != playbook.language, code))
        )
        """See :meth:`Playbook.spoken_languages`."""
        self.asks_for: Mapping[str, tuple[AskStep, ...]] = {
            slot: tuple(found) for slot, found in asks.items()
        }
        """The ask steps that fill each slot, in order."""
        self._choice_labels: dict[str, Mapping[str, tuple[str, ...]]] = {}
        for slot, found in asks.items():
            labels: dict[str, list[str]] = {}
            for step in found:
                for choice in step.choices:
                    titles = [choice.title] if isinstance(choice.title, str) else list(choice.title.values())
                    labels.setdefault(choice.id, []).extend([*titles, *choice.synonyms])
            self._choice_labels[slot] = MappingProxyType({cid: tuple(words) for cid, words in labels.items()})
        books = [s for s in steps if isinstance(s, BookStep)]
        self.as_ask: Mapping[str, AskStep] = {b.id: b.as_ask() for b in reversed(books)}
        """The ``ask`` step each ``book`` step stands for (:meth:`BookStep.as_ask`), by step id."""
        self.book_for_slot: Mapping[str, BookStep] = {b.slot: b for b in reversed(books)}
        """The first ``book`` step of each slot."""
        self.listening: frozenset[str] = frozenset(
            s.slot for s in steps if isinstance(s, AskStep) and s.listen_only
        )
        """The slots of listen-only ask steps."""
        self.memo: dict[Any, Any] = {}
        """Values the engine derives from this playbook (it bounds their number)."""

    def fits(self, playbook: Playbook) -> bool:
        """Whether these lookups were built from ``playbook`` as it stands (same ``steps`` list of
        the same length, same ``not_offered`` and ``language``)."""
        return (
            playbook.steps is self._steps
            and len(playbook.steps) == self._count
            and playbook.not_offered is self._not_offered
            and playbook.language == self._language
        )

    def choice_labels(self, slot: str) -> Mapping[str, tuple[str, ...]]:
        """:meth:`Playbook.choice_labels` of ``slot``, read-only (empty when no step asks it)."""
        return self._choice_labels.get(slot, _NO_LABELS)
