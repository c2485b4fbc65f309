"""RuleInterpreter: asked slot, opportunistic e-mail/phone, intents, knowledge-base answers, language."""

from __future__ import annotations

import pytest

from playbooks import AskContext, ChoiceOption, ConversationState, RuleInterpreter
from playbooks.interpret import detect_intent, looks_like_question

from .conftest import PARIS, FakeClock, simple_detector

STATE = ConversationState(playbook_id="p", playbook_version=1, language="en")


def ask(slot: str, kind: str, **extra: object) -> AskContext:
    return AskContext(step_id=slot, slot=slot, kind=kind, question="?", **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("I want to talk to a human", "wants_human"), ("Can I speak to someone?", "wants_human"),
        ("je voudrais parler à un conseiller", "wants_human"), ("Quelqu'un peut m'appeler ?", "wants_human"),
        ("not interested, thanks", "not_interested"), ("Ça ne m'intéresse pas", "not_interested"),
        ("How much does it cost?", "question"), ("combien ça coûte", "question"), ("Comment ça marche",
        "question"),
        ("quel est le délai", "question"), ("what about batteries", "question"), ("yes", "answer"),
        ("about 150 a month", "answer"),
    ],
)  # fmt: skip
def test_intents(text: str, intent: str) -> None:
    assert detect_intent(text) == intent


def test_looks_like_question() -> None:
    assert looks_like_question("c'est possible ?")
    assert not looks_like_question("oui")


async def test_fills_asked_slot_and_other_contact_slots() -> None:
    interpreter = RuleInterpreter(clock=FakeClock(), timezone=PARIS, default_region="FR")
    result = await interpreter.interpret(
        text="oui, et mon mail c'est a@b.fr, tel 06 12 34 56 78",
        choice_id=None,
        ask=ask("owner", "yes_no"),
        open_slots={"owner": "yes_no", "email": "email", "phone": "phone", "budget": "number"},
        state=STATE,
    )
    assert result.slots == {"owner": True, "email": "a@b.fr", "phone": "+33612345678"}
    assert result.evidence["phone"] == "06 12 34 56 78"
    assert result.intent == "answer" and result.answer is None and result.language is None


async def test_choice_uses_titles_and_synonyms() -> None:
    interpreter = RuleInterpreter(clock=FakeClock(), timezone=PARIS)
    context = ask(
        "roof",
        "choice",
        choices=[ChoiceOption(id="flat", title="Flat roof"), ChoiceOption(id="tile", title="Tiles")],
        choice_synonyms={"flat": ["toit plat"], "tile": ["tuiles"]},
    )
    for text, choice_id, expected in [
        ("toit plat", None, "flat"),
        ("x", "tile", "tile"),
        ("2", None, "tile"),
    ]:
        result = await interpreter.interpret(
            text=text, choice_id=choice_id, ask=context, open_slots={}, state=STATE
        )
        assert result.slots == {"roof": expected}


async def test_answer_called_for_questions_and_unfilled_asks_only() -> None:
    calls: list[tuple[str, str]] = []

    async def answer(question: str, language: str) -> str | None:
        calls.append((question, language))
        return "We install in 2 weeks."

    interpreter = RuleInterpreter(clock=FakeClock(), answer=answer, detect_language=simple_detector)
    filled = await interpreter.interpret(
        text="yes", choice_id=None, ask=ask("o", "yes_no"), open_slots={}, state=STATE
    )
    assert filled.answer is None and calls == []
    asked = await interpreter.interpret(
        text="how long does it take?", choice_id=None, ask=ask("o", "yes_no"), open_slots={}, state=STATE
    )
    assert asked.answer == "We install in 2 weeks." and asked.intent == "question"
    french = await interpreter.interpret(
        text="Bonjour, est-ce long ?", choice_id=None, ask=None, open_slots={}, state=STATE
    )
    assert french.language == "fr" and calls[-1] == ("Bonjour, est-ce long ?", "fr")
    no_question = await interpreter.interpret(
        text="thanks", choice_id=None, ask=None, open_slots={}, state=STATE
    )
    assert no_question.answer is None and len(calls) == 2
