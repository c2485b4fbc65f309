"""The fourth trial at ``/chat`` (offline interpreter, demo tenant): what real leads write, read
right, in English and French, replayed through the engine with the shipped playbooks, the offline
interpreter and the demo knowledge base (see ``test_real_leads``)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from playbooks import Interpretation, Playbook, new_state

from .conftest import Conversation
from .test_real_leads import EN, FR, RESPONSES, YES_BATTERY, demo_kb, detect, filled, said

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
        # the delays entry names roof insulation only in its response: it does not follow the yes
        (
            FR,
            None,
            ["oui"],
            "vous faites l'isolation des combles ?",
            "Oui — Isolation des combles fait partie de nos services.",
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


# --------------------------------------------------------------------------- 2. a budget with no slot for it


NOTED = {
    "en": "Thanks, I've noted “{}” for your adviser.",
    "fr": "Merci, je note « {} » pour votre conseiller.",
}


@pytest.mark.parametrize(
    ("playbook", "before", "message", "slots", "kept", "step"),
    [
        (
            EN,
            ["yes", "150"],
            "tiles, budget maybe 8k",
            {"roof_type": "pitched_tiles"},
            "budget maybe 8k",
            ("step", "timeline"),
        ),
        # not read as an electricity bill of 8,000 a month
        (EN, [], "yes, budget maybe 8k", {"homeowner": True}, "budget maybe 8k", ("step", "bill")),
        (
            EN,
            ["yes", "150", "tiles"],
            "asap, 10k budget",
            {"timeline": "asap"},
            "10k budget",
            ("step", "postcode"),
        ),
        (EN, ["yes"], "150, budget maybe 8k", {"monthly_bill": 150.0}, "budget maybe 8k", ("step", "roof")),
        # all the message said: noted, and the question asked again plainly
        (EN, ["yes", "150"], "budget maybe 8k", {}, "budget maybe 8k", ("reask", "roof")),
        (FR, [], "oui, budget environ 8k", {"proprietaire": True}, "budget environ 8k", ("step", "logement")),
        (
            FR,
            ["oui", "maison"],
            "les combles, on a un budget de 8 000 €",
            {"travaux": "isolation_combles"},
            "budget de 8 000 €",
            ("step", "surface"),
        ),
        (FR, ["oui"], "une enveloppe de 15000 euros", {}, "enveloppe de 15000 euros", ("reask", "logement")),
    ],
)
async def test_a_budget_the_playbook_does_not_ask_for_is_kept_and_said_to_be_noted(
    lead: Lead,
    playbook: str,
    before: list[str],
    message: str,
    slots: dict[str, object],
    kept: str,
    step: tuple[str, str],
) -> None:
    c = lead(playbook)
    await _at(c, before)
    await c.say(message)
    assert filled(c) == {**slots, "budget_other": kept}
    assert said(c)[0] == ("ack", None)
    assert c.texts()[0] == NOTED[c.state.language].format(kept)
    assert said(c)[-1] == step
    assert c.state.attempts == 0  # the words were heard: no attempt used


async def test_budgets_said_twice_are_both_kept(lead: Lead) -> None:
    c = lead(EN)
    await _at(c, ["yes"])
    await c.say("150, budget maybe 8k")
    await c.say("tiles. actually budget up to 10k")
    assert c.state.slots["budget_other"] == "budget maybe 8k | budget up to 10k"


async def test_a_budget_given_at_the_number_question_asked_is_still_read_as_its_answer(lead: Lead) -> None:
    # the monthly bill question holds only this number: out of its range, kept in its own words
    c = lead(EN)
    await _at(c, ["yes"])
    await c.say("budget maybe 8k")
    assert c.state.slots == {"homeowner": True, "monthly_bill_other": "budget maybe 8k"}


@pytest.mark.parametrize(
    "text", ["budget " * 400, "budget a " * 300, "8 " * 1500, "1,000 " * 400, "budget" + " ,." * 900]
)
def test_a_long_text_is_searched_for_a_budget_in_linear_time(text: str) -> None:
    """The pattern runs on the lead's text (at most MAX_CHARS characters): no run is unbounded."""
    from playbooks.interpret import _read_remarks, _Reading

    reading, result = _Reading(text), Interpretation()
    started = time.perf_counter()
    _read_remarks(reading, result, None, {})
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("open_slots", "remarks"),
    [
        ({}, {"budget": "budget maybe 8k"}),
        ({"budget": "number"}, {}),  # the playbook asks for it: its own question reads it
        ({"project_budget": "text"}, {}),
    ],
)
def test_a_budget_is_a_remark_only_when_no_slot_is_about_the_budget(
    open_slots: dict[str, str], remarks: dict[str, str]
) -> None:
    from playbooks.interpret import read_message

    found = read_message("ok, budget maybe 8k", ask=None, open_slots=open_slots, language="en", now=0.0)
    assert found.remarks == remarks


@pytest.mark.parametrize(
    ("language", "title", "verb", "reply"),
    [
        ("en", "Solar panels", "install", "Yes, we install solar panels."),
        ("en", "PV panels", "fit", "Yes, we fit PV panels."),
        ("en", "Home battery", "do", "Yes — Home battery is one of our services."),
        ("en", "Glass", "do", "Yes — Glass is one of our services."),
        ("fr", "Panneaux solaires", "installez", "Oui, nous installons des panneaux solaires."),
        ("fr", "Les fenêtres", "faites", "Oui — Les fenêtres font partie de nos services."),
        ("fr", "Pompe à chaleur", "posez", "Oui — Pompe à chaleur fait partie de nos services."),
        # a plural title with a verb the business cannot say back: the verb agrees with it
        ("en", "Windows", None, "Yes — Windows are one of our services."),
        ("en", "Solar panels", "faites", "Yes — Solar panels are one of our services."),
        ("en", "These panels", None, "Yes — These panels are one of our services."),
        ("en", "Home battery", None, "Yes — Home battery is one of our services."),
        ("en", "Bus", None, "Yes — Bus is one of our services."),
        ("fr", "Fenêtres", None, "Oui — Fenêtres font partie de nos services."),
        ("fr", "Travaux de toiture", None, "Oui — Travaux de toiture font partie de nos services."),
        ("fr", "Les fenêtres", "installez", "Oui — Les fenêtres font partie de nos services."),
        ("fr", "Devis gratuit", "faites", "Oui — Devis gratuit fait partie de nos services."),
        ("fr", "Isolation des combles", "faites", "Oui — Isolation des combles fait partie de nos services."),
    ],
)
def test_the_yes_says_the_leads_verb_only_with_a_plural_title(
    library: dict[str, Playbook], language: str, title: str, verb: str | None, reply: str
) -> None:
    from playbooks.engine import _Turn, _yes_we_offer

    playbook = library[EN]
    turn = _Turn(playbook=playbook, state=new_state(playbook, language=language, lead={}), ports=None)  # type: ignore[arg-type]
    assert _yes_we_offer(turn, title, verb) == reply
