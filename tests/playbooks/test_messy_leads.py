"""The third trial at ``/chat``: faults found in conversations written the way real leads write,
replayed through the engine with the shipped playbooks, the offline interpreter, the demo knowledge
base and the app's language detection (see ``test_real_leads`` and ``test_trial_leads``)."""

from __future__ import annotations

from collections.abc import Callable
from unittest.mock import ANY

import pytest

from playbooks import HandoffRequested, Playbook, SlotFilled
from playbooks.language import SWITCH_WORDS, asked_language, follow_language

from .conftest import Conversation
from .test_real_leads import EN, FR, RESPONSES, YES_BATTERY, demo_kb, detect, filled, said, sent

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


async def test_asking_for_english_switches_a_bilingual_playbook_and_asks_again_without_a_reproach(
    library: dict[str, Playbook], make_conversation: Callable[..., Conversation]
) -> None:
    c = make_conversation(library[EN], language="fr", answer=demo_kb, detect_language=detect, region="GB")
    await c.start()
    await c.say("bonjour")
    await c.say("english please")
    assert c.state.language == "en"
    assert said(c) == [("reask", "homeowner")]
    assert c.texts() == ["Do you own the home where the panels would go?"]
    assert c.state.attempts == 0


async def test_a_playbook_written_in_french_only_stays_in_french_and_says_so(lead: Lead) -> None:
    c = lead(FR)
    await c.start()
    await c.say("bonjour")
    await c.say("english please")
    assert c.state.language == "fr"
    assert c.texts() == [
        "Sorry, I can only continue in French here.",
        "Êtes-vous propriétaire du logement concerné par les travaux ?",
    ]
    assert c.state.attempts == 0
    # an English lead's whole sentences do not turn the engine's own sentences English either,
    # while the questions stay French
    await c.say("yes we own the house and we would like to insulate the attic soon")
    assert c.state.language == "fr"
    assert all("noted" not in t and "Thanks" not in t for t in c.texts())


# --------------------------------------------------------------------------- 3. a relative owns the home


@pytest.mark.parametrize(
    ("playbook", "message", "relative"),
    [
        (FR, "c'est ma mère la proprio", "ma mère"),
        (FR, "non c'est ma mère la proprio", "ma mère"),
        (FR, "la maison est à mes parents", "mes parents"),
        (FR, "c mon pere le proprietaire", "mon pere"),
        (EN, "it's my mum's house", "my mum"),
        (EN, "no, my dad is the owner", "my dad"),
        (EN, "my parents own it, I'm helping them", "my parents"),
        (EN, "its my parents house, im helping them", "my parents"),
        (EN, "my mums place", "my mum"),
        # a short reply to "do you own it?" naming a relative says whose it is
        (FR, "non, ma mère", "ma mère"),
        (FR, "non mais mes parents oui", "mes parents"),
        (FR, "c'est à mon mari", "mon mari"),
        (EN, "no but my parents do", "my parents"),
        (EN, "no, it's my dad's", "my dad"),
    ],
)
async def test_a_relative_who_owns_the_home_is_recorded_and_the_request_goes_on(
    lead: Lead, playbook: str, message: str, relative: str
) -> None:
    c = lead(playbook)
    await c.start()
    await c.say(message)
    owner, kin = (
        ("proprietaire", "proprietaire_proche") if playbook == FR else ("homeowner", "homeowner_relative")
    )
    assert filled(c) == {owner: False, kin: True}  # not the owner; the owner is a relative
    evidence = {a.slot: a.evidence for a in c.last.actions if isinstance(a, SlotFilled)}
    assert evidence[kin] == relative
    assert said(c) == [("step", "demande-proche" if playbook == FR else "relative-owner"), ("step", ANY)]
    assert c.state.status == "active" and c.state.score == 10  # not the owner's 20 points


@pytest.mark.parametrize(
    ("playbook", "before", "message", "relative"),
    [
        # the lead said yes, then says whose the home really is, without a "no"
        (FR, ["oui jsuis proprio, msn de 110m2"], "c'est ma mère qui a la maison en fait", "ma mère"),
        (FR, ["oui", "maison"], "en fait la maison appartient à mon père", "mon père"),
        (EN, ["yes we own it"], "actually it's my dad's house", "my dad"),
    ],
)
async def test_a_relative_named_after_a_yes_corrects_the_ownership(
    lead: Lead, playbook: str, before: list[str], message: str, relative: str
) -> None:
    c = lead(playbook)
    await c.start()
    for line in before:
        await c.say(line)
    await c.say(message)
    owner, kin = (
        ("proprietaire", "proprietaire_proche") if playbook == FR else ("homeowner", "homeowner_relative")
    )
    assert c.state.slots[owner] is False and c.state.slots[kin] is True
    evidence = {a.slot: a.evidence for a in c.last.actions if isinstance(a, SlotFilled)}
    assert evidence[owner] == relative
    assert c.state.status == "active"


@pytest.mark.parametrize(
    ("playbook", "message", "owns"),
    [
        (FR, "je suis proprio avec mon mari", True),
        (FR, "on est propriétaires avec ma femme", True),
        (FR, "Non, je suis locataire", False),
        (EN, "we own it with my wife", True),
        (EN, "my wife and I own the house", True),
        (FR, "oui, pour ma mère", True),
        (FR, "oui avec mon mari", True),
        (EN, "no we rent from my uncle", False),
        (EN, "no we rent from a landlord", False),
    ],
)
async def test_a_co_owner_or_a_renter_is_no_relatives_request(
    lead: Lead, playbook: str, message: str, owns: bool
) -> None:
    c = lead(playbook)
    await c.start()
    await c.say(message)
    owner = "proprietaire" if playbook == FR else "homeowner"
    assert filled(c) == {owner: owns}
    assert c.state.status == ("active" if owns else "ended")


# --------------------------------------------------------------------------- 4. the playbook's synonyms first


@pytest.mark.parametrize(
    ("playbook", "before", "message", "slot", "expected"),
    [
        # "few months" and "quelques mois" are the playbooks' own synonyms of "in 3 to 6 months";
        # the built-in reading counts "a few" as three months, which is "within 3 months"
        (EN, ["yes", "150", "tiles"], "in a few months", "timeline", "three_to_six_months"),
        (EN, ["yes", "150", "tiles"], "probably within a few months", "timeline", "three_to_six_months"),
        (FR, ["oui", "maison", "combles", "100"], "dans quelques mois", "delai", "trois_six_mois"),
        # no synonym said word for word: the period is still read
        (EN, ["yes", "150", "tiles"], "in a couple of months", "timeline", "asap"),
        (EN, ["yes", "150", "tiles"], "after the winter", "timeline", "three_to_six_months"),
    ],
)
async def test_a_playbooks_own_synonym_wins_over_the_built_in_reading_of_a_period(
    lead: Lead, playbook: str, before: list[str], message: str, slot: str, expected: str
) -> None:
    c = lead(playbook)
    await c.start()
    for text in before:
        await c.say(text)
    await c.say(message)
    assert filled(c) == {slot: expected}


# --------------------------------------------------------------------------- 5. messy conversations


async def test_a_phone_number_given_with_the_email_is_kept_even_where_the_playbook_asks_none(
    lead: Lead,
) -> None:
    c = lead(EN)
    await c.start()
    for text in ["yes", "200", "tiles", "asap", "SW1A 1AA"]:
        await c.say(text)
    await c.say("john.smith@gmail.com / 07700 900123")
    assert filled(c) == {"email": "john.smith@gmail.com", "phone": "+447700900123"}
    assert c.state.current_step == "callback"  # the phone is never asked for (listen_only)


@pytest.mark.parametrize(
    ("playbook", "before", "message", "slot", "value", "also"),
    [
        (
            FR,
            ["oui", "maison"],
            "les deux : combles et pac",
            "travaux",
            "isolation_combles",
            "Pompe à chaleur",
        ),
        (
            FR,
            ["oui", "maison"],
            "pac et isolation des murs",
            "travaux",
            "pompe_a_chaleur",
            "Isolation des murs",
        ),
        (EN, ["yes", "150"], "tiles and slate", "roof_type", "pitched_tiles", "Pitched – slate"),
    ],
)
async def test_two_options_named_in_one_answer_keep_both_without_asking_which(
    lead: Lead, playbook: str, before: list[str], message: str, slot: str, value: str, also: str
) -> None:
    c = lead(playbook)
    await c.start()
    for text in before:
        await c.say(text)
    await c.say(message)
    assert filled(c) == {slot: value, f"{slot}_also": also}
    assert [purpose for purpose, _ in said(c)] == ["step"]  # the next question, no "which one?"


async def test_one_word_fitting_two_options_is_still_asked_about(lead: Lead) -> None:
    c = lead(FR)
    await c.start()
    await c.say("oui")
    await c.say("maison")
    await c.say("isolation")
    assert said(c) == [("clarify", "travaux")]


async def test_a_postcode_given_early_is_said_back_as_it_is_kept(lead: Lead) -> None:
    c = lead(EN)
    await c.start()
    await c.say("yes, about 180 a month, slate roof")
    await c.say("sw1a1aa")
    assert filled(c) == {"postcode": "SW1A 1AA"}
    assert c.texts()[0] == "Thanks, I've noted “SW1A 1AA”."  # nothing said back before: no "also"


@pytest.mark.parametrize(
    ("playbook", "message", "entry"),
    [
        (EN, "who is this?", "en-about"),
        (EN, "who am i talking to", "en-about"),
        (FR, "vous êtes qui ?", "fr-societe"),
    ],
)
async def test_who_is_writing_is_answered_from_the_knowledge_base(
    lead: Lead, playbook: str, message: str, entry: str
) -> None:
    c = lead(playbook)
    await c.start()
    await c.say(message)
    assert c.texts()[0] == RESPONSES[entry]
    assert said(c)[-1][0] == "reask"


@pytest.mark.parametrize(
    ("playbook", "before", "message", "slot", "value", "step"),
    [
        # a range of months answers the timeline, never the bill or the surface ("2" was the bill)
        (EN, ["yes"], "in 2-3 months", "timeline", "asap", "bill"),
        (FR, ["oui", "maison", "combles"], "dans 2-3 mois", "delai", "moins_3_mois", "surface"),
    ],
)
async def test_a_range_of_months_said_early_is_the_timeline_not_a_number(
    lead: Lead, playbook: str, before: list[str], message: str, slot: str, value: str, step: str
) -> None:
    c = lead(playbook)
    await c.start()
    for text in before:
        await c.say(text)
    await c.say(message)
    assert filled(c) == {slot: value}
    assert said(c)[-1] == ("reask", step)


@pytest.mark.parametrize(("message", "value"), [("mézon", "maison"), ("appartment", "appartement")])
async def test_a_home_type_spelt_by_ear_is_read(lead: Lead, message: str, value: str) -> None:
    c = lead(FR)
    await c.start()
    await c.say("oui")
    await c.say(message)
    assert filled(c) == {"type_logement": value}


async def test_asking_for_the_language_already_spoken_at_a_choice_question_is_no_wrong_answer(
    lead: Lead,
) -> None:
    c = lead(EN)
    await c.start()
    await c.say("yes")
    await c.say("150")
    await c.say("english please")
    assert said(c) == [("reask", "roof")]
    assert c.state.attempts == 0 and "roof_type_other" not in c.state.slots


@pytest.mark.parametrize(
    ("playbook", "message", "slot", "value", "entry"),
    [
        # a statement and a question joined by a comma: the question is answered, the answer kept
        (
            FR,
            "slt, je cherche a faire isoler les murs, vs intervenez ou ?",
            "travaux",
            "isolation_murs",
            "fr-zone",
        ),
        (FR, "je veux isoler les combles, vous intervenez où ?", "travaux", "isolation_combles", "fr-zone"),
        (EN, "we own the house, do u do batteries?", "homeowner", True, "en-battery"),
    ],
)
async def test_an_answer_and_a_question_joined_by_a_comma_are_both_heard(
    lead: Lead, playbook: str, message: str, slot: str, value: object, entry: str
) -> None:
    c = lead(playbook)
    await c.start()
    await c.say(message)
    assert filled(c)[slot] == value
    yes = YES_BATTERY if "do batteries" in message else ""  # "do you do X?" for an offered X: yes first
    assert c.texts()[0] == yes + RESPONSES[entry]


@pytest.mark.parametrize(
    ("playbook", "message", "language"),
    [
        (EN, "is this a bot?", "en"),
        (EN, "r u a robot", "en"),
        (EN, "am i talking to an AI?", "en"),
        (FR, "c'est un robot ?", "fr"),
        (FR, "je parle à une machine là ?", "fr"),
    ],
)
async def test_a_lead_asking_if_a_machine_writes_is_told_so_and_the_conversation_goes_on(
    lead: Lead, playbook: str, message: str, language: str
) -> None:
    from playbooks.interpret import BOT_DISCLOSURE

    c = lead(playbook)
    await c.start()
    await c.say(message)
    assert handoffs(c) == []  # asking is not asking for a person
    assert c.texts()[0] == BOT_DISCLOSURE[language]
    assert said(c)[-1][0] == "reask"
    await c.say("yes" if playbook == EN else "oui")  # the next answer is still read
    assert filled(c) == {("homeowner" if playbook == EN else "proprietaire"): True}


async def test_a_lead_asking_for_a_real_person_is_still_handed_off(lead: Lead) -> None:
    c = lead(EN)
    await c.start()
    await c.say("am i talking to a real person? i want one")
    assert handoffs(c)


async def test_a_uk_number_is_kept_on_a_tenant_set_up_in_france(
    library: dict[str, Playbook], make_conversation: Callable[..., Conversation]
) -> None:
    # the demo tenant's region is FR (Europe/Paris); an English lead writes a UK mobile without
    # +44: none of the lead's regions reads it, the countries of English leads do
    c = make_conversation(library[EN], language="en", answer=demo_kb, detect_language=detect, region="FR")
    await c.start()
    await c.say("yes i own it. my email is jo.smith@gmail.com, ring me on 07911 123456")
    assert filled(c) == {"homeowner": True, "email": "jo.smith@gmail.com", "phone": "+447911123456"}
    # a French lead's number is still read in France first
    f = make_conversation(library[FR], language="fr", answer=demo_kb, detect_language=detect, region="FR")
    await f.start()
    await f.say("oui je suis proprio, mon num 06 12 34 56 78")
    assert filled(f)["telephone"] == "+33612345678"
