"""The pieces under the offline interpreter: intents, questions, several slots in one message,
numbers with units, dates said back, contacts."""

from __future__ import annotations

import pytest

from playbooks import ConversationState, RuleInterpreter, load_library
from playbooks.engine import ask_context
from playbooks.interpret import detect_intent, read_message
from playbooks.slots import find_numbers, lead_regions, parse_slot, render_datetime

from .conftest import MONDAY_10AM, PARIS, FakeClock


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("please stop emailing me", "opt_out"), ("ne m'écrivez plus", "opt_out"), ("Unsubscribe", "opt_out"),
        ("arrêtez de m'envoyer des mails", "opt_out"), ("remove me from your list", "opt_out"),
        ("I'm not interested", "not_interested"), ("on a déjà trouvé une entreprise", "not_interested"),
        ("Out of office: back on Monday", "auto_reply"), ("Réponse automatique : je suis absente", "auto_reply"),
        ("Is this a bot?", "question"), ("je préfère en parler de vive voix", "wants_human"),
        ("can you call me tomorrow at 9", "answer"), ("hello", "small_talk"), ("merci, bonne journée", "small_talk"),
        ("Bonjour, c'est combien ?", "question"), ("how much does a typical install cost", "question"),
        ("je voudrais savoir le prix", "question"), ("yes", "answer"),
    ],
)  # fmt: skip
def test_intents(text: str, intent: str) -> None:
    assert detect_intent(text) == intent


def test_no_thanks_is_a_no_to_a_yes_no_question_and_not_interested_elsewhere() -> None:
    assert detect_intent("non merci", ask_kind="yes_no") == "answer"
    assert detect_intent("non merci", ask_kind="number") == "not_interested"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("je suis locataire", False), ("je suis propriétaire", True), ("on est proprio", True),
        ("we rent", False), ("it's a rental", False), ("je suis en train de regarder", None),
        ("I'm not sure what you mean", None), ("je n'ai pas compris", None), ("ouiii", True),
    ],
)  # fmt: skip
def test_yes_no_reads_echoes_not_any_je_suis(text: str, expected: bool | None) -> None:
    parsed = parse_slot("yes_no", text, question="Êtes-vous propriétaire du logement ? Do you own the home?")
    assert (parsed.value if parsed else None) is expected


def test_numbers_know_their_unit() -> None:
    found = find_numbers("yes we own it, about 180 € a month, Thursday 10am works, 95 m2, le 8 décembre")
    assert [(m.value, m.unit, m.evidence) for m in found] == [
        (180.0, "money", "180 € a month"),
        (10.0, "time", "10"),
        (95.0, "area", "95 m2"),
        (8.0, "date", "8"),
    ]
    assert [m.value for m in find_numbers("entre 150 et 200, or 140-160")] == [175.0, 150.0]


async def test_one_message_fills_every_slot_it_answers() -> None:
    playbook = load_library()["solar-qualification-en"]
    state = ConversationState(playbook_id=playbook.id, playbook_version=1, language="en")
    context = ask_context(playbook, "homeowner", state=state)
    assert [o.slot for o in context.others] == [
        "homeowner_relative", "monthly_bill", "roof_type", "timeline", "postcode", "email", "callback_time",
        "phone", "interest",
    ]  # fmt: skip
    assert context.others[2].choice_synonyms["flat"][:2] == ["Flat roof", "Toit plat"]
    interpreter = RuleInterpreter(clock=FakeClock(), timezone=PARIS, default_region="GB")
    result = await interpreter.interpret(
        text="Yes we own it, bill is about £160 a month, slate roof. Do you do batteries?",
        choice_id=None,
        ask=context,
        open_slots=dict(playbook.slot_kinds()),
        state=state,
    )
    assert result.intent == "question"
    assert result.slots == {"homeowner": True, "monthly_bill": 160.0, "roof_type": "pitched_slate"}
    assert result.evidence["monthly_bill"] == "£160 a month"


@pytest.mark.parametrize(
    ("text", "slots"),
    [
        # "looking at solar" says what the lead wants, not "just looking" (researching) for the
        # timeline, a question not asked yet
        ("hi, looking at solar for my house", {"interest": "solar_panels"}),
        ("yes, looking to get it done within 3 months", {"homeowner": True, "timeline": "asap"}),
    ],
)
async def test_a_common_word_is_not_an_answer_to_a_question_not_asked(
    text: str, slots: dict[str, object]
) -> None:
    playbook = load_library()["solar-qualification-en"]
    state = ConversationState(playbook_id=playbook.id, playbook_version=1, language="en")
    context = ask_context(playbook, "homeowner", state=state)
    interpreter = RuleInterpreter(clock=FakeClock(), timezone=PARIS, default_region="GB")
    result = await interpreter.interpret(
        text=text, choice_id=None, ask=context, open_slots=dict(playbook.slot_kinds()), state=state
    )
    assert result.slots == slots


def test_a_question_is_never_a_slot_value() -> None:
    playbook = load_library()["solar-qualification-en"]
    context = ask_context(playbook, "postcode")
    result = read_message(
        "how much does a typical install cost?", ask=context, open_slots={}, language="en", now=MONDAY_10AM
    )
    assert result.intent == "question" and result.slots == {}
    tentative = read_message(
        "maybe 120?", ask=ask_context(playbook, "bill"), open_slots={}, language="en", now=MONDAY_10AM
    )
    assert tentative.intent == "answer" and tentative.slots == {"monthly_bill": 120.0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("jeudi 10 décembre à 14h", "2026-12-10T14:00:00+01:00"), ("Tuesday 8 December at 2pm", "2026-12-08T14:00:00+01:00"),
        ("at 11 is fine", "2026-11-23T11:00:00+01:00"), ("a 11h ça me va", "2026-11-23T11:00:00+01:00"),
        ("le 8 a 10h", "2026-12-08T10:00:00+01:00"), ("3/12 à 11h", "2026-12-03T11:00:00+01:00"),
        ("ce soir", "2026-11-23T18:00:00+01:00"), ("wed at 3", "2026-11-25T15:00:00+01:00"),
    ],
)  # fmt: skip
def test_explicit_dates_win_and_hours_are_read(text: str, expected: str) -> None:
    parsed = parse_slot("datetime", text, now=MONDAY_10AM, timezone=PARIS, language="fr")
    assert parsed is not None and parsed.value == expected


def test_render_datetime_in_the_leads_language_and_zone() -> None:
    moment = "2026-12-08T14:00:00+01:00"
    assert render_datetime(moment, language="fr", timezone=PARIS) == "mardi 8 décembre à 14 h"
    assert render_datetime(moment, language="en", timezone=PARIS) == "Tuesday 8 December at 2 pm"
    assert (
        render_datetime("2026-12-01T09:30:00+01:00", language="fr", timezone=PARIS)
        == "mardi 1er décembre à 9 h 30"
    )
    assert render_datetime(moment, language="en", timezone="America/New_York") == "Tuesday 8 December at 8 am"
    assert render_datetime("2027-01-04T12:00:00+01:00", language="en", timezone=PARIS, now=MONDAY_10AM) == (
        "Monday 4 January 2027 at 12 pm"
    )
    with pytest.raises(ValueError):
        render_datetime("next tuesday", language="en", timezone=PARIS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("jérôme.dupont@orange.fr", "jérôme.dupont@orange.fr"), ("mail: Ann@Example.COM.", "Ann@example.com"),
        ("francois@exemple..fr", None), ("bob@@gmail.com", None), ("john.smith@gmail", None),
    ],
)  # fmt: skip
def test_emails_are_validated_whole_never_cut(text: str, expected: str | None) -> None:
    parsed = parse_slot("email", text)
    assert (parsed.value if parsed else None) == expected


def test_phone_regions_from_the_lead() -> None:
    assert lead_regions(timezone="Europe/London", phone="+33612345678") == ["FR", "GB"]
    assert lead_regions(timezone="America/New_York") == ["US"]
    assert lead_regions(timezone="Not/AZone") == []
    uk = parse_slot(
        "phone", "07700 900123", default_region="FR", regions=lead_regions(timezone="Europe/London")
    )
    assert uk is not None and uk.value == "+447700900123"
    fr = parse_slot("phone", "06 12 34 56 78", default_region="FR", regions=["GB"])
    assert fr is not None and fr.value == "+33612345678"
    assert parse_slot("phone", "06 12 34", default_region="FR") is None


def test_long_input_is_bounded() -> None:
    text = "yes " + "a" * 50_000 + " 1234@" * 2000
    playbook = load_library()["solar-qualification-en"]
    result = read_message(
        text, ask=ask_context(playbook, "homeowner"), open_slots={}, language="en", now=MONDAY_10AM
    )
    assert result.slots.get("homeowner") is True
