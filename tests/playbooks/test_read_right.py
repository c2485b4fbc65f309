"""The fourth trial at ``/chat`` (offline interpreter, demo tenant): what real leads write, read
right, in English and French, replayed through the engine with the shipped playbooks, the offline
interpreter and the demo knowledge base (see ``test_real_leads``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from playbooks import Playbook

from .conftest import Conversation
from .test_real_leads import EN, FR, RESPONSES, YES_BATTERY, demo_kb, detect, said

Lead = Callable[..., Conversation]


@pytest.fixture
def lead(library: dict[str, Playbook], make_conversation: Callable[..., Conversation]) -> Lead:
    def make(playbook_id: str, language: str | None = None) -> Conversation:
        region = "FR" if playbook_id.startswith("renovation") else "GB"
        return make_conversation(
            library[playbook_id], answer=demo_kb, detect_language=detect, region=region, language=language
        )

    return make


async def _at(c: Conversation, before: list[str]) -> None:
    await c.start()
    for text in before:
        await c.say(text)


# --------------------------------------------------------------------------- 1. a misspelt option said back


@pytest.mark.parametrize(
    ("playbook", "language", "before", "message", "ack", "step"),
    [
        # one stem with "tile" for the French stemmer ("-ez" is a verb ending), no English word
        (EN, None, ["yes", "150"], "tilez", "Noted: “Pitched – tiles”.", "timeline"),
        (EN, None, ["yes", "150"], "slatez", "Noted: “Pitched – slate”.", "timeline"),
        (EN, None, ["yes", "150"], "pitched tilez", "Noted: “Pitched – tiles”.", "timeline"),
        (EN, "fr", ["oui", "150"], "tuilez", "C'est noté : « En pente – tuiles ».", "timeline"),
        (
            FR,
            None,
            ["oui", "maison"],
            "isolasion des comble",
            "C'est noté : « Isolation des combles ».",
            "surface",
        ),
    ],
)
async def test_an_option_read_from_a_misspelt_word_is_said_back_in_the_leads_language(
    lead: Lead, playbook: str, language: str | None, before: list[str], message: str, ack: str, step: str
) -> None:
    c = lead(playbook, language)
    await _at(c, before)
    await c.say(message)
    assert said(c) == [("ack", None), ("step", step)]
    assert c.texts()[0] == ack


@pytest.mark.parametrize(
    ("playbook", "language", "before", "message"),
    [
        (EN, None, ["yes", "150"], "tiled"),  # a form of the word: no typo to correct
        (EN, None, ["yes", "150"], "pitched, tiles"),
        (EN, "fr", ["oui", "150"], "des tuiles"),
        (FR, None, ["oui"], "une maison"),
        (FR, None, ["oui", "maison"], "les combles"),
    ],
)
async def test_an_option_read_from_a_form_of_its_words_is_not_said_back(
    lead: Lead, playbook: str, language: str | None, before: list[str], message: str
) -> None:
    c = lead(playbook, language)
    await _at(c, before)
    await c.say(message)
    assert [purpose for purpose, _ in said(c)] == ["step"]


# --------------------------------------------------------------------------- 3. "do you install X?" for an offered X


@pytest.mark.parametrize(
    ("playbook", "language", "before", "question", "reply", "step"),
    [
        # the option's title names things in the plural: the yes says it with the lead's verb
        (EN, None, ["yes"], "do you install solar panels?", "Yes, we install solar panels.", "bill"),
        (EN, None, ["yes"], "do u fit solar panels", "Yes, we fit solar panels.", "bill"),
        (
            EN,
            "fr",
            ["oui"],
            "vous installez des panneaux solaires ?",
            "Oui, nous installons des panneaux solaires.",
            "bill",
        ),
        # a title in the singular is named as a service
        (
            FR,
            None,
            ["oui"],
            "vous faites les pompes à chaleur ?",
            "Oui — Pompe à chaleur fait partie de nos services.",
            "logement",
        ),
    ],
)
async def test_do_you_do_an_offered_thing_is_a_plain_yes_without_an_answer_nobody_asked_for(
    lead: Lead, playbook: str, language: str | None, before: list[str], question: str, reply: str, step: str
) -> None:
    c = lead(playbook, language)
    await _at(c, before)
    await c.say(question)
    assert said(c) == [("answer", None), ("reask", step)]
    assert c.texts()[0] == reply  # not the knowledge base's price answer after it


@pytest.mark.parametrize(
    ("question", "reply"),
    [
        # the knowledge base's entry about the thing asked about still follows the yes
        ("do you sell batteries", YES_BATTERY + RESPONSES["en-battery"]),
        # the price asked too: answered
        ("do you install solar panels? how much?", "Yes, we install solar panels. " + RESPONSES["en-price"]),
    ],
)
async def test_do_you_do_x_keeps_the_knowledge_answer_to_what_was_asked(
    lead: Lead, question: str, reply: str
) -> None:
    c = lead(EN)
    await _at(c, ["yes"])
    await c.say(question)
    assert c.texts()[0] == reply
