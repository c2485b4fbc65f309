"""The second trial at ``/chat``: faults a lead found, replayed through the engine with the shipped
playbooks, the offline interpreter and the demo knowledge base (see ``test_real_leads``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from app.booking.calendar import CalendarSlotSource
from crm_sync.calendars.builtin import BuiltinCalendar, InMemoryLedger, Salesperson
from crm_sync.calendars.common import Schedule
from playbooks import (
    HandoffRequested,
    Playbook,
    PlaybookError,
    Ports,
    RuleInterpreter,
    load_playbook_text,
    new_state,
)
from playbooks.runtime import BookingRequested

from .conftest import PARIS, Conversation, FakeClock
from .test_real_leads import EN, FR, RESPONSES, demo_kb, detect, filled, said, sent

Lead = Callable[[str], Conversation]


@pytest.fixture
def lead(library: dict[str, Playbook], make_conversation: Callable[..., Conversation]) -> Lead:
    def make(playbook_id: str) -> Conversation:
        region = "FR" if playbook_id.startswith("renovation") else "GB"
        return make_conversation(library[playbook_id], answer=demo_kb, detect_language=detect, region=region)

    return make


async def _at(c: Conversation, answers: list[str]) -> None:
    await c.start()
    for answer in answers:
        await c.say(answer)


# --------------------------------------------------------------------------- 1. a timeline said unprompted


@pytest.mark.parametrize(
    ("message", "roof", "timeline"),
    [
        ("idk, maybe nxt year", "not_sure", "later"),
        ("not sure. probably next summer", "not_sure", "later"),  # 21 June is 7 months away
        ("dunno, around march", "not_sure", "three_to_six_months"),
        ("tiles, maybe in 2 months", "pitched_tiles", "asap"),
        # two answers: the roof's clause names the roof, the period has a clause of its own
        ("roof is tiles, south facing. maybe in spring", "pitched_tiles", "three_to_six_months"),
    ],
)
async def test_a_period_in_a_short_reply_to_another_question_is_the_projects_timeline(
    lead: Lead, message: str, roof: str, timeline: str
) -> None:
    c = lead(EN)
    await _at(c, ["yes", "150"])
    assert said(c)[-1] == ("step", "roof")
    await c.say(message)
    assert filled(c) == {"roof_type": roof, "timeline": timeline}
    assert said(c)[-1] == ("step", "postcode")  # the timeline question is not asked


@pytest.mark.parametrize(
    "message",
    [
        "tiles. we moved in last year",
        "tiles, we bought it last year",
        "tiles, we're away next month",
        "tiles, the roof was redone in spring",
    ],
)
async def test_a_period_about_something_else_is_not_the_timeline(lead: Lead, message: str) -> None:
    c = lead(EN)
    await _at(c, ["yes", "150"])
    await c.say(message)
    assert filled(c) == {"roof_type": "pitched_tiles"}  # "last" is not the last option either
    assert said(c)[-1] == ("step", "timeline")


# --------------------------------------------------------------------------- 2. a call-back time said early


def _calendar_lead(playbook: Playbook, clock: FakeClock) -> Conversation:
    """A lead of ``playbook`` whose tenant has the built-in calendar (weekdays 9-12 and 14-18 in
    Paris, an hour's notice), as the served app has."""
    schedule = Schedule(
        timezone=PARIS,
        hours={d: (("09:00", "12:00"), ("14:00", "18:00")) for d in range(1, 6)},
        min_notice_s=3600,
    )
    calendar = BuiltinCalendar(
        InMemoryLedger(), salespeople=[Salesperson(calendar_id="alice", schedule=schedule)], clock=clock
    )
    region = "FR" if playbook.id.startswith("renovation") else "GB"
    interpreter = RuleInterpreter(
        clock=clock, timezone=PARIS, default_region=region, answer=demo_kb, detect_language=detect
    )
    ports = Ports(
        interpreter=interpreter,
        clock=clock,
        timezone=PARIS,
        default_region=region,
        calendar=CalendarSlotSource(calendar),
    )
    return Conversation(playbook, ports=ports, clock=clock, state=new_state(playbook))


@pytest.mark.parametrize(
    ("playbook", "message", "noted"),
    [
        (EN, "when can someone come round? i'm free tmrw pm", "Tuesday 24 November at 2 pm"),
        (FR, "qqn peut passer quand ? je suis dispo demain aprem", "mardi 24 novembre à 14 h"),
    ],
)
async def test_a_call_back_time_said_early_is_kept_and_said_back_with_a_calendar(
    library: dict[str, Playbook], clock: FakeClock, playbook: str, message: str, noted: str
) -> None:
    c = _calendar_lead(library[playbook], clock)
    await c.start()
    await c.say(message)
    slot = "callback_time" if playbook == EN else "creneau_rappel"
    assert filled(c) == {f"{slot}_requested": "2026-11-24T14:00:00+01:00"}
    assert slot not in c.state.slots  # nothing is booked yet: the slot stays for the book step
    assert said(c) == [("answer", None), ("ack", None), ("reask", c.state.current_step)]
    assert noted in sent(c)[1].text
    answers = (
        ["yes", "150", "slate", "asap", "SW1A 1AA", "zoe@example.com"]
        if playbook == EN
        else [
            "oui",
            "maison",
            "pac",
            "100",
            "rapidement",
            "oui",
            "75011",
            "jean@exemple.fr",
            "06 12 34 56 78",
        ]
    )
    for answer in answers:
        await c.say(answer)
    proposal = sent(c)[-1]
    assert noted in proposal.text  # the time said early is offered first, said in full
    assert [o.id for o in proposal.choices] == ["yes", "no"]
    await c.say("yes" if playbook == EN else "oui")
    [request] = [a for a in c.last.actions if isinstance(a, BookingRequested)]
    assert request.slot.start == datetime(2026, 11, 24, 14, 0, tzinfo=ZoneInfo(PARIS)).timestamp()


async def test_a_call_back_time_said_early_that_is_taken_offers_the_free_times(
    library: dict[str, Playbook], clock: FakeClock
) -> None:
    c = _calendar_lead(library[EN], clock)
    await c.start()
    await c.say("yes, i'm free sunday at 3pm")  # no adviser works on Sundays
    assert filled(c)["callback_time_requested"] == "2026-11-29T15:00:00+01:00"
    assert "Sunday 29 November at 3 pm" in " ".join(c.texts())
    for answer in ["150", "slate", "asap", "SW1A 1AA", "zoe@example.com"]:
        await c.say(answer)
    offer = sent(c)[-1]
    assert offer.text.startswith("Sorry, Sunday 29 November at 3 pm isn't available.")
    assert len(offer.choices) == 3


async def test_a_call_back_time_said_early_without_a_calendar_fills_the_slot_and_is_said_back(
    lead: Lead,
) -> None:
    c = lead(EN)
    await c.start()
    await c.say("when can someone come round? i'm free tmrw pm")
    assert filled(c) == {"callback_time": "2026-11-24T14:00:00+01:00"}
    assert said(c) == [("answer", None), ("ack", None), ("reask", "homeowner")]
    assert "Tuesday 24 November at 2 pm" in sent(c)[1].text


# --------------------------------------------------------------------------- 3. a project not offered


@pytest.mark.parametrize(
    "message",
    [
        "je veux un devis pr des panneaux solaires",
        "bonjour, vous faites les panneaux solaires ?",
        "c pour du photovoltaique",
    ],
)
async def test_a_project_not_offered_is_said_plainly_with_what_is_offered(lead: Lead, message: str) -> None:
    c = lead(FR)
    await c.start()
    await c.say(message)
    assert said(c) == [("answer", None), ("reask", "proprietaire")]
    reply = sent(c)[0].text
    assert reply.startswith("Désolé, nous ne proposons pas l'installation de panneaux solaires.")
    assert "Isolation des combles, Isolation des murs, Pompe à chaleur ou Rénovation globale" in reply
    assert "pas bien saisi" not in " ".join(c.texts())
    assert c.state.slots == {"not_offered": "solaire"}
    await c.say("oui")
    assert c.state.slots["proprietaire"] is True


async def test_a_project_not_offered_in_the_first_message_is_answered_before_the_first_question(
    lead: Lead,
) -> None:
    c = lead(EN)
    await c.start("hi, do you do heat pumps? we own the house")
    assert said(c) == [("step", "greeting"), ("answer", None), ("ack", None), ("step", "bill")]
    assert sent(c)[1].text == (
        "Sorry, we don't offer heat pumps. What we can help you with: Solar panels, "
        "Solar panels and a battery or Home battery."
    )
    assert c.state.slots == {"not_offered": "heat_pump", "homeowner": True}


async def test_an_offered_project_or_an_unrelated_no_is_not_taken_for_one_not_offered(lead: Lead) -> None:
    c = lead(FR)
    await _at(c, ["oui", "maison"])
    await c.say("isolation des combles, avec des panneaux isolants")  # "panneaux" alone is no solar
    assert filled(c) == {"travaux": "isolation_combles"}
    c = lead(FR)
    await c.start()
    await c.say("non pas de panneaux solaires, je suis proprio")  # the "non" is about the panels
    assert c.state.slots["proprietaire"] is True


HANDOFF_PLAYBOOK = """
id: insulation-only
name: Insulation only
version: 1
language: en
steps:
  - id: owner
    type: ask
    slot: owner
    kind: yes_no
    question: Do you own the home?
  - id: bye
    type: end
    outcome: qualified
    message: Thanks!
not_offered:
  handoff: true
  topics:
    - id: solar
      title: solar panels
      synonyms: [solar, photovoltaic]
"""


async def test_a_project_not_offered_goes_to_an_adviser_when_the_playbook_says_so(
    make_conversation: Callable[..., Conversation],
) -> None:
    c = make_conversation(load_playbook_text(HANDOFF_PLAYBOOK), region="GB")
    await c.start()
    await c.say("can u do solar on my roof")
    assert said(c) == [("answer", None)]
    assert sent(c)[0].text == (
        "Sorry, we don't offer solar panels. I'm passing your request to an adviser, who will get back to you."
    )
    [handoff] = [a for a in c.last.actions if isinstance(a, HandoffRequested)]
    assert handoff.reason == "asked for a project not offered: solar"
    assert c.state.status == "handoff"


def test_offer_step_must_name_a_choice_question() -> None:
    text = HANDOFF_PLAYBOOK.replace("  handoff: true", "  offer_step: owner")
    with pytest.raises(PlaybookError) as raised:
        load_playbook_text(text)
    assert "offer_step 'owner' must be the id of an ask step of kind 'choice'" in str(raised.value)


# --------------------------------------------------------------------------- 4. messy conversations


async def test_a_number_alone_during_a_clarification_answers_the_open_number_question(lead: Lead) -> None:
    c = lead(FR)
    await _at(c, ["oui", "appart"])
    await c.say("isolation")  # one word fitting two options ("murs et combles" keeps both: test_messy_leads)
    assert said(c) == [("clarify", "travaux")]
    await c.say("95")  # the surface, said before it was asked: kept, not "je n'ai pas compris"
    assert filled(c) == {"surface": 95.0}
    assert said(c) == [("ack", None), ("reask", "travaux")]
    await c.say("les murs")
    assert filled(c) == {"travaux": "isolation_murs"}
    assert said(c)[-1] == ("step", "delai")  # the surface question is skipped: answered


async def test_a_number_that_may_be_an_options_rank_is_not_taken_for_another_question(lead: Lead) -> None:
    c = lead(FR)
    await _at(c, ["oui", "appart"])
    await c.say("2")
    assert filled(c) == {"travaux": "isolation_murs"}


async def test_a_day_of_the_month_already_past_is_no_call_back_time(lead: Lead) -> None:
    c = lead(EN)
    await _at(c, ["yes", "150", "tiles", "asap", "SW1A 1AA", "zoe@example.com"])
    assert said(c)[-1] == ("step", "callback")
    await c.say("20")  # Monday 23 November: the 20th has passed
    assert "callback_time" not in c.state.slots
    assert said(c) == [("reask", "callback")]


async def test_a_question_while_times_are_offered_is_answered_and_the_times_shown_again(
    library: dict[str, Playbook], clock: FakeClock
) -> None:
    c = _calendar_lead(library[EN], clock)
    await _at(c, ["yes", "150", "slate", "not sure yet", "B15 2TT, my email is sam@example.org"])
    offer = sent(c)[-1]
    assert len(offer.choices) == 3
    await c.say("why do u need that")
    assert said(c) == [("answer", None), ("step", "callback")]
    assert "didn't quite get" not in " ".join(c.texts())
    assert [o.id for o in sent(c)[-1].choices] == [o.id for o in offer.choices]


@pytest.mark.parametrize(
    ("playbook", "message", "slots"),
    [
        (FR, "bjr jsuis proprio d'une msn de 110m2",
         {"proprietaire": True, "type_logement": "maison", "surface": 110.0}),
        (EN, "hi im looking for solar, we own our house", {"homeowner": True, "interest": "solar_panels"}),
        (EN, "looking for solar, we own the house", {"homeowner": True, "interest": "solar_panels"}),
    ],
)  # fmt: skip
async def test_owning_said_in_a_long_sentence_leaves_its_other_answers_to_be_read(
    lead: Lead, playbook: str, message: str, slots: dict[str, object]
) -> None:
    c = lead(playbook)
    await c.start()
    await c.say(message)
    assert filled(c) == slots


async def test_an_amount_per_month_in_british_shorthand_is_the_bill_not_a_time(lead: Lead) -> None:
    c = lead(EN)
    await _at(c, ["yes"])
    await c.say("we pay £95 pm roughly")
    assert filled(c) == {"monthly_bill": 95.0}  # not a call-back on 23 November 2095
    assert said(c) == [("step", "roof")]


async def test_a_british_postcode_given_for_the_bill_is_the_postcode_not_an_amount(lead: Lead) -> None:
    c = lead(EN)
    await _at(c, ["yes"])
    await c.say("my postcode's M1 1AE")
    assert filled(c) == {"postcode": "M1 1AE"}  # its "1" is no bill of 1 a month
    assert said(c) == [("ack", None), ("reask", "bill")]


async def test_a_price_question_about_a_kind_of_house_is_answered_from_the_knowledge_base(lead: Lead) -> None:
    c = lead(EN)
    await c.start()
    await c.say("Yes I do. how much would it cost for a 3 bed semi?")
    assert filled(c) == {"homeowner": True}
    assert said(c) == [("answer", None), ("step", "bill")]
    assert sent(c)[0].text == RESPONSES["en-price"]  # not "I'll pass it on"


@pytest.mark.parametrize("message", ["yeh", "aye", "yah"])
async def test_a_casual_yes_is_yes(lead: Lead, message: str) -> None:
    c = lead(EN)
    await c.start()
    await c.say(message)
    assert filled(c) == {"homeowner": True}


@pytest.mark.parametrize(
    ("playbook", "message", "slot", "value"),
    [
        (EN, "not this year, next spring maybe", "timeline", "three_to_six_months"),
        (FR, "pas avant l'été prochain", "delai", "plus_tard"),  # summer starts in 7 months
    ],
)
async def test_a_not_about_a_moment_is_no_answer_to_a_yes_no_question(
    lead: Lead, playbook: str, message: str, slot: str, value: str
) -> None:
    c = lead(playbook)
    await c.start()
    await c.say(message)  # the ownership question waits: a renter's "no" would end the conversation
    assert filled(c) == {slot: value}
    assert c.state.status == "active"
    assert said(c)[-1][0] == "reask"


async def test_no_this_year_is_still_a_no(lead: Lead) -> None:
    c = lead(EN)
    await c.start()
    await c.say("no, not this year")
    assert filled(c) == {"homeowner": False}


@pytest.mark.parametrize(
    ("playbook", "before", "message", "address"),
    [
        (FR, ["oui", "maison", "pac", "100", "vite", "oui", "75011"], "jean point dupont arobase gmail point com",
         "jean.dupont@gmail.com"),
        (EN, ["yes", "150", "tiles", "asap", "SW1A 1AA"], "its zoe at example dot co dot uk", "zoe@example.co.uk"),
    ],
)  # fmt: skip
async def test_an_email_address_said_in_words_is_read(
    lead: Lead, playbook: str, before: list[str], message: str, address: str
) -> None:
    c = lead(playbook)
    await _at(c, before)
    await c.say(message)
    assert filled(c) == {"email": address}


async def test_asking_for_a_person_after_the_end_hands_off_unless_opted_out(lead: Lead) -> None:
    c = lead(EN)
    await _at(c, ["nope, we rent"])
    assert c.state.status == "ended"
    await c.say("can i speak to someone instead?")
    assert [a.reason for a in c.last.actions if isinstance(a, HandoffRequested)] == ["lead asked for a human"]
    c = lead(EN)
    await _at(c, ["stop"])
    assert c.state.outcome == "opted_out"
    await c.say("can i speak to someone?")
    assert c.last.actions == []


async def test_a_number_given_with_doubt_is_the_number(lead: Lead) -> None:
    c = lead(FR)
    await _at(c, ["oui", "appart", "les combles"])
    await c.say("jsp, peut-être 80")
    assert filled(c) == {"surface": 80.0}


@pytest.mark.parametrize("message", ["can i tlk to sum1", "can i spk to somone pls"])
async def test_asking_for_a_person_in_sms_spelling_hands_off(lead: Lead, message: str) -> None:
    c = lead(EN)
    await c.start()
    await c.say(message)
    assert [a.reason for a in c.last.actions if isinstance(a, HandoffRequested)] == ["lead asked for a human"]


@pytest.mark.parametrize(
    ("playbook", "before", "message", "slot", "end"),
    [
        (EN, ["yes", "200"], "actually we rent, sorry", "homeowner", "renter-end"),
        (FR, ["oui", "maison"], "ah non en fait je suis locataire", "proprietaire", "fin-locataire"),
    ],
)
async def test_a_corrected_yes_no_answer_takes_the_path_it_now_chooses(
    lead: Lead, playbook: str, before: list[str], message: str, slot: str, end: str
) -> None:
    c = lead(playbook)
    await _at(c, before)
    score = c.state.score
    await c.say(message)
    assert filled(c) == {slot: False}
    assert said(c) == [("step", end)]  # the renters' end, not the next question
    assert c.state.outcome == "disqualified"
    assert c.state.score == score - 20  # the owner's points are taken back


async def test_renting_said_without_correction_words_changes_no_earlier_yes(lead: Lead) -> None:
    c = lead(EN)
    await _at(c, ["yes", "200"])
    await c.say("we rent the loft out, tiles")
    assert c.state.slots["homeowner"] is True
    assert filled(c) == {"roof_type": "pitched_tiles"}


async def test_where_a_project_not_offered_would_go_names_no_offered_work(lead: Lead) -> None:
    c = lead(FR)
    await _at(c, ["oui", "maison"])
    await c.say("des panneaux solaires sur la toiture")  # "toiture" is a word for the attic option
    assert filled(c) == {"not_offered": "solaire"}
    assert said(c) == [("answer", None), ("reask", "travaux")]
    await c.say("une pac et des panneaux solaires")  # an offered work said with it is kept
    assert filled(c) == {"travaux": "pompe_a_chaleur"}
    assert said(c) == [("answer", None), ("step", "surface")]


@pytest.mark.parametrize(
    ("playbook", "before", "message", "next_step", "noted"),
    [
        (FR, ["oui", "maison", "pac", "100", "vite", "non", "75011"], "pas d'email", "telephone",
         "Merci, je le note pour votre conseiller."),
        (EN, ["yes", "150", "tiles", "asap", "SW1A 1AA"], "i dont have email", "callback",
         "Thanks, I've noted that for your adviser."),
        (FR, ["oui", "maison", "pac", "100", "vite", "non", "75011", "jean@exemple.fr"], "j'ai pas de portable",
         "rappel", "Merci, je le note pour votre conseiller."),
    ],
)  # fmt: skip
async def test_a_lead_without_an_address_or_a_number_is_not_asked_to_check_it(
    lead: Lead, playbook: str, before: list[str], message: str, next_step: str, noted: str
) -> None:
    c = lead(playbook)
    await _at(c, before)
    await c.say(message)
    assert said(c) == [("ack", None), ("step", next_step)]
    assert sent(c)[0].text == noted
    assert message in c.state.slots.values()  # the lead's words, kept in <slot>_other


async def test_asking_for_a_person_with_typos_in_french_hands_off(lead: Lead) -> None:
    c = lead(FR)
    await c.start()
    await c.say("jveu parlé a kelkun")
    assert [a.reason for a in c.last.actions if isinstance(a, HandoffRequested)] == ["lead asked for a human"]
