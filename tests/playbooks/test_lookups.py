"""The engine's per-playbook lookups and question contexts are kept between turns, and never
served for another playbook object, version, language or lead than the one they were built for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from playbooks import (
    AskContext,
    ConversationState,
    InboundEvent,
    Interpretation,
    Ports,
    SendMessage,
    StartEvent,
    advance,
    load_playbook_text,
    new_state,
)
from playbooks.engine import _MEMO_MAX, _PENDING_MAX, ask_context
from playbooks.expressions import evaluate, render
from playbooks.runtime import OfferedSlot, SlotPick
from playbooks.schema import Playbook

from .conftest import FakeClock

SOURCE = """
id: lookups-test
name: Lookups
version: {version}
language: en
steps:
  - id: owner
    type: ask
    slot: owner
    kind: yes_no
    question: {{en: "{owner}", fr: "Êtes-vous propriétaire ?"}}
  - id: roof
    type: ask
    slot: roof
    kind: choice
    question: "{roof}"
    choices:
      - id: tiles
        title: {{en: "{tiles}", fr: Tuiles}}
        synonyms: [tiled]
      - id: flat
        title: Flat
  - id: done
    type: end
    outcome: qualified
"""


def playbook(
    *,
    version: int = 1,
    owner: str = "Do you own the home?",
    roof: str = "What kind of roof?",
    tiles: str = "Tiles",
) -> Playbook:
    return load_playbook_text(SOURCE.format(version=version, owner=owner, roof=roof, tiles=tiles))


class Recorder:
    """An interpreter that reads nothing and keeps the context of every call."""

    def __init__(self) -> None:
        self.asks: list[AskContext | None] = []

    async def interpret(
        self,
        *,
        text: str,
        choice_id: str | None,
        ask: AskContext | None,
        open_slots: dict[str, str],
        state: ConversationState,
    ) -> Interpretation:
        self.asks.append(ask)
        return Interpretation(intent="small_talk")


def ports(recorder: Recorder) -> Ports:
    return Ports(interpreter=recorder, clock=FakeClock())


async def asked(pb: Playbook, state: ConversationState, recorder: Recorder) -> tuple[AskContext, list[str]]:
    """The context the interpreter got for a message, and what the engine said back."""
    result = await advance(pb, state, InboundEvent(text="hello"), ports(recorder))
    context = recorder.asks[-1]
    assert context is not None
    return context, [a.text for a in result.actions if isinstance(a, SendMessage)]


async def started(pb: Playbook, **kwargs: Any) -> ConversationState:
    result = await advance(pb, new_state(pb, **kwargs), StartEvent(trigger="lead_created"), ports(Recorder()))
    return result.state


def test_lookups_are_built_once_per_playbook_object() -> None:
    first, again = playbook(), playbook()
    assert first.lookups() is first.lookups()
    assert again.lookups() is not first.lookups()
    assert first.step("roof") is first.steps[1]
    assert first.following("owner") == "roof"
    assert first.following("done") is None
    assert first.slot_kinds() == {"owner": "yes_no", "roof": "choice"}
    assert first.choice_labels("roof") == {"tiles": ["Tiles", "Tuiles", "tiled"], "flat": ["Flat"]}
    first.slot_kinds()["owner"] = "text"  # the caller's own copy
    assert first.slot_kinds()["owner"] == "yes_no"


async def test_a_static_question_context_is_shared_between_turns() -> None:
    pb, recorder = playbook(), Recorder()
    state = await started(pb)
    one, _ = await asked(pb, state, recorder)
    two, _ = await asked(pb, state, recorder)
    assert one is two  # the same question pending with the same answers: kept, read-only
    assert [o.question for o in one.others] == ["What kind of roof?"]
    answered = state.model_copy(update={"slots": {"roof": "flat"}})
    three, _ = await asked(pb, answered, recorder)
    assert three.others == []  # a question answered is no longer among the others ...
    assert [a.slot for a in three.answered] == ["roof"]  # ... but among those a correction names
    four, _ = await asked(pb, state, recorder)
    assert four is one


async def test_a_new_version_is_read_at_once() -> None:
    recorder = Recorder()
    v1 = playbook(owner="Do you own the home?", roof="What kind of roof?")
    state = await started(v1)
    context, said = await asked(v1, state, recorder)
    assert (context.question, context.others[0].question) == ("Do you own the home?", "What kind of roof?")
    v2 = playbook(version=2, owner="Are you the owner?", roof="Which roof?", tiles="Tiled roof")
    context, said = await asked(v2, state.model_copy(update={"playbook_version": 2}), recorder)
    assert (context.question, context.others[0].question) == ("Are you the owner?", "Which roof?")
    assert context.others[0].choices[0].title == "Tiled roof"
    assert context.others[0].choice_synonyms["tiles"] == ["Tiled roof", "Tuiles", "tiled"]
    assert said == ["Are you the owner?"]  # small talk: the question asked again, as it now reads


async def test_a_draft_edited_under_the_same_version_is_read_at_once() -> None:
    # the simulator runs the editor's text, whose id and version may be those of a stored one
    recorder = Recorder()
    state = await started(playbook())
    await asked(playbook(), state, recorder)
    context, said = await asked(playbook(owner="Is the home yours?"), state, recorder)
    assert context.question == "Is the home yours?"
    assert said == ["Is the home yours?"]


def test_replaced_steps_are_looked_up_again() -> None:
    pb = playbook()
    assert pb.step("roof") is not None
    changed = pb.model_copy(update={"steps": [pb.steps[0], pb.steps[2]]})
    assert changed.step("roof") is None
    assert changed.following("owner") == "done"
    assert changed.slot_kinds() == {"owner": "yes_no"}
    assert pb.step("roof") is pb.steps[1]


async def test_the_cached_context_follows_the_language() -> None:
    pb, recorder = playbook(), Recorder()
    english, _ = await asked(pb, await started(pb, language="en"), recorder)
    french, said = await asked(pb, await started(pb, language="fr"), recorder)
    assert english.question == "Do you own the home?"
    assert french.question == "Êtes-vous propriétaire ?"
    assert said == ["Êtes-vous propriétaire ?"]
    assert [c.title for c in english.others[0].choices] == ["Tiles", "Flat"]
    assert [c.title for c in french.others[0].choices] == ["Tuiles", "Flat"]


async def test_a_templated_question_is_rendered_for_each_lead() -> None:
    pb, recorder = playbook(roof="{{ lead.first_name }}, what kind of roof?"), Recorder()
    ann, _ = await asked(pb, await started(pb, lead={"first_name": "Ann"}), recorder)
    bob, _ = await asked(pb, await started(pb, lead={"first_name": "Bob"}), recorder)
    assert ann.others[0].question == "Ann, what kind of roof?"
    assert bob.others[0].question == "Bob, what kind of roof?"


BOOK = """
id: book-lookups
name: Book
version: 1
language: en
steps:
  - id: owner
    type: ask
    slot: owner
    kind: yes_no
    question: Do you own the home?
  - id: call
    type: book
    slot: call
    ask_without_calendar: When can we call you?
  - id: done
    type: end
    outcome: qualified
"""


class Calendar:
    """A calendar the engine is told about (never read here)."""

    async def free_slots(self, *, start: float, end: float, duration_s: int) -> list[OfferedSlot]:
        return []

    async def slot_at(self, start: float, *, duration_s: int) -> OfferedSlot | None:
        return None

    def spread(self, slots: Sequence[OfferedSlot], *, count: int, timezone: str) -> list[OfferedSlot]:
        return list(slots)[:count]

    def match(
        self, text: str, offered: Sequence[OfferedSlot], *, timezone: str, language: str, now: float
    ) -> SlotPick:
        return SlotPick()


def test_a_book_step_is_among_the_questions_as_the_calendar_and_the_meeting_say() -> None:
    pb = load_playbook_text(BOOK)
    calendar = Ports(interpreter=Recorder(), clock=FakeClock(), calendar=Calendar())

    def others(booking: dict[str, Any], with_calendar: bool) -> list[str]:
        state = new_state(pb).model_copy(update={"booking": booking})
        context = ask_context(pb, "owner", state=state, ports=calendar if with_calendar else None)
        return [o.question for o in context.others]

    for _ in range(2):  # built, then kept: the same answers
        assert others({}, with_calendar=False) == ["When can we call you?"]
        assert others({}, with_calendar=True) == ["When can we call you?"]  # a time said early is kept
        assert others({"booked": {"id": "m1"}}, with_calendar=True) == []
        assert others({"wish": "2026-12-08T10:00:00+01:00"}, with_calendar=True) == []
        assert others({"booked": {"id": "m1"}}, with_calendar=False) == ["When can we call you?"]


def test_the_kept_contexts_are_bounded() -> None:
    pb = playbook()
    for index in range(_MEMO_MAX + 50):
        ask_context(pb, "owner", state=new_state(pb, language=f"x{index}"))
    assert len(pb.lookups().memo) <= _MEMO_MAX
    assert len(pb.lookups().memo[("pending",)]) <= _PENDING_MAX
    # still read right past the bound
    context = ask_context(pb, "owner", state=new_state(pb, language="fr"))
    assert context.question == "Êtes-vous propriétaire ?"


def test_templates_still_see_the_sandbox_globals() -> None:
    assert evaluate("range(3) | list | length == 3", {}) is True
    assert render("{% for i in range(2) %}{{ i }}{% endfor %}", {}) == "01"
    assert evaluate("slots.owner", {"slots": {"owner": True}}) is True
