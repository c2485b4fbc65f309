"""The ``book`` step in the engine, over the real built-in calendar (in-memory ledger) through the
app's :class:`CalendarSlotSource`, on a manual clock: offers in the lead's zone, picks by number,
ordinal, weekday and time, another time confirmed back in full, a slot taken between offer and
pick, a calendar outage, and rescheduling and cancelling by message in French and English."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.booking.calendar import CalendarSlotSource
from crm_sync.base import Attendee, IntegrationError, Slot
from crm_sync.calendars.builtin import BuiltinCalendar, InMemoryLedger, Salesperson
from crm_sync.calendars.common import Schedule
from kernel.clock import ManualClock
from playbooks import advance
from playbooks.interpret import RuleInterpreter
from playbooks.loader import load_playbook_text
from playbooks.runtime import (
    BookingCancelRequested,
    BookingEvent,
    BookingRequested,
    ConversationState,
    EngineResult,
    InboundEvent,
    MeetingBooked,
    MeetingCancelled,
    OfferedSlot,
    Ports,
    SendMessage,
    StartEvent,
)

PARIS = ZoneInfo("Europe/Paris")
#: Monday 7 December 2026, 09:00 in Paris.
MONDAY = dt.datetime(2026, 12, 7, 9, 0, tzinfo=PARIS).timestamp()

PLAYBOOK = load_playbook_text(
    """
id: book-test
name: Book test
version: 1
language: fr
steps:
  - id: hello
    type: message
    text: {fr: Bonjour !, en: Hello!}
  - id: rdv
    type: book
    slot: rdv
    duration: 1h
    within: 7d
    offer: 3
    title: {fr: Appel conseiller, en: Adviser call}
  - id: bye
    type: end
    outcome: qualified
    message: {fr: "Merci, à bientôt.", en: "Thanks, talk soon."}
"""
)


def paris(day: int, hour: int, minute: int = 0) -> float:
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=PARIS).timestamp()


class Lead:
    """One conversation with the engine; the test plays the app's part for booking actions."""

    def __init__(self, calendar: BuiltinCalendar, clock: ManualClock, *, language: str = "fr") -> None:
        self.calendar = calendar
        self.clock = clock
        self.state = ConversationState(playbook_id="book-test", playbook_version=1, language=language)
        self.language = language
        self.ports = Ports(
            interpreter=RuleInterpreter(clock=clock, timezone="Europe/Paris"),
            clock=clock,
            timezone="Europe/Paris",
            calendar=CalendarSlotSource(calendar),
        )

    async def run(self, event: Any) -> EngineResult:
        result = await advance(PLAYBOOK, self.state, event, self.ports)
        self.state = result.state
        return result

    async def says(self, text: str, choice_id: str | None = None) -> EngineResult:
        return await self.run(InboundEvent(text=text, choice_id=choice_id))

    async def app_books(self, result: EngineResult) -> EngineResult:
        """Execute the result's booking request as the app does, and answer the engine."""
        [request] = [a for a in result.actions if isinstance(a, BookingRequested)]
        slot = Slot(start=request.slot.start, end=request.slot.end, calendar_id=request.slot.calendar_id)
        booking = await self.calendar.book(slot, Attendee(name="Léa", email=None), title=request.title)
        return await self.run(
            BookingEvent(
                outcome="booked",
                request_id=request.request_id,
                booking={"id": booking.id, "provider": "builtin", "start": booking.start, "end": booking.end},
            )
        )


def texts(result: EngineResult) -> list[str]:
    return [a.text for a in result.actions if isinstance(a, SendMessage)]


def offer_of(result: EngineResult) -> SendMessage:
    return [a for a in result.actions if isinstance(a, SendMessage) and a.choices][-1]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY)


@pytest.fixture
def calendar(clock: ManualClock) -> BuiltinCalendar:
    schedule = Schedule(
        timezone="Europe/Paris",
        hours={d: (("09:00", "12:00"), ("14:00", "18:00")) for d in range(1, 6)},
        min_notice_s=3600,
    )
    return BuiltinCalendar(
        InMemoryLedger(), salespeople=[Salesperson(calendar_id="alice", schedule=schedule)], clock=clock
    )


async def test_offer_pick_by_number_book_and_go_on(calendar: BuiltinCalendar, clock: ManualClock) -> None:
    lead = Lead(calendar, clock)
    start = await lead.run(StartEvent(trigger="lead_created"))
    offer = offer_of(start)
    assert texts(start)[0] == "Bonjour !"
    assert len(offer.choices) == 3
    assert offer.choices[0].title == "lun. 7 déc. 10h"  # first slot after the hour of notice (20 chars max)
    assert {c.id for c in offer.choices} == {
        f"slot-{round(o['start'])}" for o in lead.state.booking["offered"]
    }
    picked = await lead.says("2")
    [request] = [a for a in picked.actions if isinstance(a, BookingRequested)]
    assert request.slot.start == lead.state.booking["pending"]["slot"]["start"]
    assert request.title == "Appel conseiller"
    assert texts(picked) == []  # nothing said until the calendar answers
    done = await lead.app_books(picked)
    when = "mardi 8 décembre à 14 h"  # said in full
    assert offer.choices[1].title == "mar. 8 déc. 14h"
    assert texts(done) == [f"C'est réservé : {when}. À bientôt !", "Merci, à bientôt."]
    assert any(isinstance(a, MeetingBooked) for a in done.actions)
    assert lead.state.status == "ended" and lead.state.booking["booked"]["start"] == request.slot.start
    assert lead.state.slots["rdv"] == dt.datetime.fromtimestamp(request.slot.start, PARIS).isoformat()


async def test_another_time_is_checked_and_confirmed_back_in_full(
    calendar: BuiltinCalendar, clock: ManualClock
) -> None:
    lead = Lead(calendar, clock)
    await lead.run(StartEvent(trigger="lead_created"))
    asked = await lead.says("plutôt mardi 16h")  # not among the three offered
    assert texts(asked) == ["mardi 8 décembre à 16 h, c'est bien cela ?"]
    assert [c.id for c in offer_of(asked).choices] == ["yes", "no"]
    confirmed = await lead.says("oui")
    [request] = [a for a in confirmed.actions if isinstance(a, BookingRequested)]
    assert request.slot.start == paris(8, 16)


async def test_a_busy_time_is_refused_and_the_offer_stays(
    calendar: BuiltinCalendar, clock: ManualClock
) -> None:
    lead = Lead(calendar, clock)
    await lead.run(StartEvent(trigger="lead_created"))
    busy = await lead.says("mardi 13h")  # lunch break: not a working hour
    assert texts(busy)[0].startswith("Désolé, mardi 8 décembre à 13 h n'est pas disponible.")
    assert len(offer_of(busy).choices) == 3
    ordinal = await lead.says("le troisième")
    assert any(isinstance(a, BookingRequested) for a in ordinal.actions)


async def test_slot_taken_between_offer_and_pick(calendar: BuiltinCalendar, clock: ManualClock) -> None:
    lead = Lead(calendar, clock)
    offer = offer_of(await lead.run(StartEvent(trigger="lead_created")))
    first = OfferedSlot.model_validate(lead.state.booking["offered"][0])
    picked = await lead.says("1")
    # another lead takes it meanwhile: the app's booking fails with SlotTakenError
    await calendar.book(Slot(first.start, first.end, "alice"), Attendee(name="Max", email=None), title="x")
    [request] = [a for a in picked.actions if isinstance(a, BookingRequested)]
    taken = await lead.run(BookingEvent(outcome="taken", request_id=request.request_id))
    said = texts(taken)[0]
    assert said.startswith("Désolé, le créneau de lundi 7 décembre à 10 h vient d'être pris.")
    again = offer_of(taken)
    assert offer.choices[0].id not in {c.id for c in again.choices} and len(again.choices) == 3
    assert lead.state.booking.get("booked") is None and lead.state.current_step == "rdv"


async def test_calendar_outage_tells_the_lead_and_offers_again(
    calendar: BuiltinCalendar, clock: ManualClock
) -> None:
    lead = Lead(calendar, clock, language="en")
    await lead.run(StartEvent(trigger="lead_created"))
    picked = await lead.says("the first one")
    [request] = [a for a in picked.actions if isinstance(a, BookingRequested)]
    failed = await lead.run(BookingEvent(outcome="failed", request_id=request.request_id))
    assert texts(failed)[0].startswith(
        "Sorry, I couldn't reach our calendar to book Monday 7 December at 10 am"
    )
    assert len(offer_of(failed).choices) == 3
    stale = await lead.run(
        BookingEvent(outcome="booked", request_id=request.request_id, booking={"start": 1})
    )
    assert texts(stale) == [] and lead.state.booking.get("booked") is None


async def test_outage_while_offering_moves_on(clock: ManualClock) -> None:
    class Down:
        async def free_slots(self, **_: Any) -> list[OfferedSlot]:
            raise IntegrationError("calendar down")

    lead = Lead(
        BuiltinCalendar(InMemoryLedger(), salespeople=[Salesperson("a", Schedule())], clock=clock), clock
    )
    lead.ports = lead.ports.model_copy(update={"calendar": Down()})
    result = await lead.run(StartEvent(trigger="lead_created"))
    assert lead.state.status == "ended"  # on_fail defaults to the next step
    assert any("could not be read" in n for n in result.notes)


async def _booked(calendar: BuiltinCalendar, clock: ManualClock, language: str, pick: str) -> Lead:
    lead = Lead(calendar, clock, language=language)
    await lead.run(StartEvent(trigger="lead_created"))
    picked = await lead.says(pick)
    if not any(isinstance(a, BookingRequested) for a in picked.actions):
        picked = await lead.says("oui" if language == "fr" else "yes")  # a time said back in full
    await lead.app_books(picked)
    assert lead.state.booking["booked"]
    return lead


@pytest.mark.parametrize(
    ("language", "text"),
    [("fr", "je ne peux plus jeudi"), ("en", "sorry, I can't make it on Thursday after all")],
)
async def test_rescheduling_offers_other_days_and_moves_the_meeting(
    calendar: BuiltinCalendar, clock: ManualClock, language: str, text: str
) -> None:
    lead = await _booked(calendar, clock, language, "jeudi 10h" if language == "fr" else "Thursday at 10")
    old = dict(lead.state.booking["booked"])
    assert old["start"] == paris(10, 10)
    moving = await lead.says(text)
    offer = offer_of(moving)
    starts = [float(c.id.split("-")[1]) for c in offer.choices]
    assert starts and all(dt.datetime.fromtimestamp(s, PARIS).day != 10 for s in starts)
    assert lead.state.status == "active" and lead.state.booking["reschedule_of"]["id"] == old["id"]
    picked = await lead.says("1")
    [request] = [a for a in picked.actions if isinstance(a, BookingRequested)]
    assert request.reschedule_of is not None and request.reschedule_of["id"] == old["id"]
    moved = await lead.app_books(picked)
    assert texts(moved)[0].startswith("C'est fait" if language == "fr" else "Done – your meeting is moved to")
    assert lead.state.status == "ended"  # back where the conversation was
    assert [a.rescheduled for a in moved.actions if isinstance(a, MeetingBooked)] == [True]


async def test_move_it_to_friday_proposes_friday(calendar: BuiltinCalendar, clock: ManualClock) -> None:
    lead = await _booked(calendar, clock, "en", "Tuesday at 3pm")
    moving = await lead.says("Can we move it to Friday?")
    offer = offer_of(moving)
    assert offer.choices and all(c.title.startswith("Fri 11 Dec") for c in offer.choices)
    at_ten = await lead.says("can we move it to Friday at 10?")
    assert texts(at_ten) == ["Friday 11 December at 10 am, is that right?"]
    assert any(isinstance(a, BookingRequested) for a in (await lead.says("yes")).actions)


@pytest.mark.parametrize(
    ("language", "text", "said"),
    [
        (
            "fr",
            "Je voudrais annuler mon rendez-vous",
            "Votre rendez-vous du mardi 8 décembre à 15 h est annulé.",
        ),
        ("en", "please cancel my appointment", "Your meeting of Tuesday 8 December at 3 pm is cancelled."),
    ],
)
async def test_cancelling_by_message(
    calendar: BuiltinCalendar, clock: ManualClock, language: str, text: str, said: str
) -> None:
    lead = await _booked(calendar, clock, language, "mardi 15h" if language == "fr" else "Tuesday at 3pm")
    booked = dict(lead.state.booking["booked"])
    result = await lead.says(text)
    assert texts(result)[0].startswith(said)
    [cancel] = [a for a in result.actions if isinstance(a, BookingCancelRequested)]
    assert cancel.booking["id"] == booked["id"]
    assert any(isinstance(a, MeetingCancelled) for a in result.actions)
    assert lead.state.booking["booked"] is None and lead.state.status == "ended"


async def test_changes_made_in_the_calendar_reach_the_lead(
    calendar: BuiltinCalendar, clock: ManualClock
) -> None:
    lead = await _booked(calendar, clock, "en", "Tuesday at 3pm")
    booked = dict(lead.state.booking["booked"])
    other = await lead.run(
        BookingEvent(outcome="moved", booking={"id": "someone-else", "start": paris(9, 9)})
    )
    assert texts(other) == [] and lead.state.booking["booked"]["start"] == booked["start"]
    moved = await lead.run(
        BookingEvent(outcome="moved", booking={"id": booked["id"], "start": paris(9, 9), "end": paris(9, 10)})
    )
    assert texts(moved) == ["Done – your meeting is moved to Wednesday 9 December at 9 am."]
    assert [a.rescheduled for a in moved.actions if isinstance(a, MeetingBooked)] == [True]
    assert lead.state.slots["rdv"] == "2026-12-09T09:00:00+01:00"
    gone = await lead.run(BookingEvent(outcome="cancelled", booking={"id": booked["id"]}, reason="ill"))
    assert texts(gone)[0].startswith("Your meeting of Wednesday 9 December at 9 am has been cancelled.")
    assert any(isinstance(a, MeetingCancelled) for a in gone.actions) and lead.state.booking["booked"] is None
