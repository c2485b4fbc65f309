"""The third trial at ``/chat``: faults found in conversations written the way real leads write,
replayed through the engine with the shipped playbooks, the offline interpreter, the demo knowledge
base and the app's language detection (see ``test_real_leads`` and ``test_trial_leads``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from playbooks import HandoffRequested, Playbook
from playbooks.language import SWITCH_WORDS, asked_language, follow_language

from .conftest import Conversation
from .test_real_leads import EN, FR, RESPONSES, demo_kb, detect, filled, sent

Lead = Callable[[str], Conversation]


@pytest.fixture
def lead(library: dict[str, Playbook], make_conversation: Callable[..., Conversation]) -> Lead:
    def make(playbook_id: str) -> Conversation:
        region = "FR" if playbook_id.startswith("renovation") else "GB"
        language = "fr" if playbook_id == FR else "en"
        return make_conversation(
            library[playbook_id], language=language, answer=demo_kb, detect_language=detect, region=region
        )

    return make


def handoffs(c: Conversation) -> list[str]:
    return [a.reason for a in c.last.actions if isinstance(a, HandoffRequested)]


# --------------------------------------------------------------------------- 1. the conversation's language


@pytest.mark.parametrize(
    ("current", "lead_language", "detected", "text", "expected"),
    [
        # one short line in another language: the conversation's language stays
        ("en", "en", "fr", "je voudrais parler à quelqu'un", "en"),
        ("fr", "fr", "en", "talk to a person", "fr"),
        # the second short line in a row in that language: the lead has switched
        ("en", "fr", "fr", "oui merci", "fr"),
        # one long clear message switches at once
        ("en", "en", "fr", "bonjour, je préfère qu'on continue la discussion en français si possible", "fr"),
        ("fr", "fr", "en", "sorry I do not speak French, could you write to me in English", "en"),
        # a request for a language, however short
        ("fr", "fr", "en", "english please", "en"),
        ("en", "en", "fr", "en français svp", "fr"),
        ("en", "en", None, "parlez-vous français ?", "fr"),
        # the lead's first words with language evidence set the language
        ("en", None, "fr", "oui", "fr"),
        # no evidence: nothing changes
        ("en", "fr", None, "ok", "en"),
        ("fr", "fr", "fr", "d'accord", "fr"),
    ],
)
def test_the_conversation_follows_the_lead_into_a_language_only_when_clear(
    current: str, lead_language: str | None, detected: str | None, text: str, expected: str
) -> None:
    followed = follow_language(current=current, lead_language=lead_language, detected=detected, text=text)
    assert followed.language == expected


def test_a_language_named_without_a_request_asks_for_nothing() -> None:
    assert asked_language("I'm French but live in London") is None
    assert asked_language("english or french, whatever") is None
    assert asked_language("can you write in English?") == "en"


def test_a_message_switches_at_once_from_switch_words_words() -> None:
    words = ["vraiment", "je", "préfère", "continuer", "la", "conversation", "ici", "merci", "beaucoup"]
    short = " ".join(words[: SWITCH_WORDS - 1])
    long = " ".join(words[:SWITCH_WORDS])
    assert follow_language(current="en", lead_language="en", detected="fr", text=short).language == "en"
    assert follow_language(current="en", lead_language="en", detected="fr", text=long).language == "fr"


async def test_a_short_french_line_in_an_english_conversation_is_answered_in_english(lead: Lead) -> None:
    c = lead(EN)
    await c.start()
    await c.say("hi")
    await c.say("je voudrais parler à quelqu'un")
    assert handoffs(c) == ["lead asked for a human"]
    assert c.state.language == "en"
    assert c.state.lead_language == "fr"


async def test_a_lead_who_goes_on_in_french_is_followed(lead: Lead) -> None:
    c = lead(EN)
    await c.start()
    await c.say("yes")
    assert c.state.language == "en"
    await c.say("150 euros")  # no language evidence
    await c.say("c'est combien ?")
    assert c.state.language == "en"
    await c.say("oui je suis propriétaire")
    assert c.state.language == "fr"


async def test_a_long_french_message_in_an_english_conversation_switches_at_once(lead: Lead) -> None:
    c = lead(EN)
    await c.start()
    await c.say("yes")
    await c.say("désolé je ne parle pas bien anglais, je préfère continuer en français si possible")
    assert c.state.language == "fr"
    assert all("Merci" in t or "?" in t for t in c.texts())


async def test_a_short_question_in_another_language_is_answered_in_the_conversations(lead: Lead) -> None:
    c = lead(EN)
    await c.start()
    await c.say("yes")
    await c.say("c'est combien ?")
    assert c.state.language == "en"
    # the English knowledge base has no match for French words: the French entry answers, and the
    # question pending is asked again in English
    assert [m.text for m in sent(c)] == [RESPONSES["fr-prix"], c.playbook.step("bill").question["en"]]  # type: ignore[union-attr,index]
    assert filled(c) == {}
