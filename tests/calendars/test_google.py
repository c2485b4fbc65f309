"""Google Calendar against a stateful fake of the Calendar API v3 on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from crm_sync.base import Attendee, Booking, ProviderError, SlotTakenError
from crm_sync.calendars.common import Schedule
from crm_sync.calendars.google import GoogleCalendar, event_id
from kernel.clock import ManualClock
from tests.calendars.fakes import GoogleFake
from tests.calendars.support import FakeServer, TestApiClient

PARIS = ZoneInfo("Europe/Paris")
LEAD = Attendee(name="Joe", email="joe@example.com", timezone="America/New_York", language="en")


def ts(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> float:
    return dt.datetime(y, m, d, h, mi, tzinfo=PARIS).timestamp()


@pytest.fixture
def fake() -> Iterator[tuple[GoogleFake, FakeServer]]:
    state = GoogleFake()
    server = FakeServer(state)
    try:
        yield state, server
    finally:
        server.close()


def calendar(server: FakeServer, **schedule: object) -> GoogleCalendar:
    return GoogleCalendar(
        TestApiClient("google", server.base_url),
        schedule=Schedule(timezone="Europe/Paris", hours={d: [("09:00", "11:00")] for d in range(1, 6)}),
        calendar_id="sales@agency.test",
        clock=ManualClock(ts(2026, 3, 20)),
    )


async def test_free_slots_follow_local_hours_across_dst_minus_busy(
    fake: tuple[GoogleFake, FakeServer],
) -> None:
    state, server = fake
    state.external_busy.append((ts(2026, 3, 30, 9), ts(2026, 3, 30, 10)))  # Monday after the change
    slots = await calendar(server).free_slots(ts(2026, 3, 27), ts(2026, 3, 31), duration_s=3600)
    assert [dt.datetime.fromtimestamp(s.start, dt.UTC).strftime("%d %H:%M") for s in slots] == [
        "27 08:00",  # Friday 09:00 Paris = UTC+1
        "27 09:00",
        "30 08:00",  # Monday 10:00 Paris = UTC+2; 09:00 is busy
    ]
    fb = [r for r in server.requests if r.path.endswith("/freeBusy")]
    assert len(fb) == 1 and fb[0].body["items"] == [{"id": "sales@agency.test"}]


async def test_book_inserts_the_event_with_the_lead_and_the_calendar_zone(
    fake: tuple[GoogleFake, FakeServer],
) -> None:
    state, server = fake
    cal = calendar(server)
    slot = (await cal.free_slots(ts(2026, 3, 30), ts(2026, 3, 31), duration_s=3600))[0]
    booking = await cal.book(slot, LEAD, title="Intro call", description="Lead from WhatsApp")
    assert booking.status == "confirmed" and booking.id == event_id("sales@agency.test", slot.start, LEAD)
    event = state.events[booking.id]
    assert event["start"] == {"dateTime": "2026-03-30T09:00:00+02:00", "timeZone": "Europe/Paris"}
    assert event["attendees"] == [{"email": "joe@example.com", "displayName": "Joe"}]
    assert event["_send_updates"] == "all" and event["summary"] == "Intro call"
    # taken between offer and pick: a second lead gets SlotTakenError and no event is left behind
    with pytest.raises(SlotTakenError):
        await cal.book(slot, Attendee(name="Ann", email="ann@example.com"), title="Intro call")
    assert len(state.live()) == 1
    await cal.cancel(booking)
    await cal.cancel(booking)  # 410 Gone: idempotent
    assert state.live() == []


async def test_two_leads_racing_for_one_slot_leave_one_event(fake: tuple[GoogleFake, FakeServer]) -> None:
    state, server = fake
    cal = calendar(server)
    slot = (await cal.free_slots(ts(2026, 3, 30), ts(2026, 3, 31), duration_s=3600))[0]
    leads = [Attendee(name=f"L{i}", email=f"l{i}@example.com") for i in range(4)]
    results = await asyncio.gather(*(cal.book(slot, a, title="x") for a in leads), return_exceptions=True)
    won = [r for r in results if isinstance(r, Booking)]
    assert len(won) == 1, results
    assert all(isinstance(r, SlotTakenError) for r in results if not isinstance(r, Booking))
    assert [e["id"] for e in state.live()] == [won[0].id]


async def test_outage_during_insert_leaves_no_half_made_booking(fake: tuple[GoogleFake, FakeServer]) -> None:
    state, server = fake
    cal = calendar(server)
    slot = (await cal.free_slots(ts(2026, 3, 30), ts(2026, 3, 31), duration_s=3600))[0]
    server.fail_next[("POST", "/calendar/v3/calendars/")] = 1  # the insert never reaches Google
    with pytest.raises(ProviderError) as info:
        await cal.book(slot, LEAD, title="x")
    assert info.value.retryable and state.live() == []
    state.answer_lost = 1  # the insert is made but its answer is lost: the booking stands, once
    booking = await cal.book(slot, LEAD, title="x")
    assert [e["id"] for e in state.live()] == [booking.id]
    again = await cal.book(slot, LEAD, title="x")  # a retry by the same lead: 409, the same event
    assert again.id == booking.id and len(state.live()) == 1


async def test_sync_sees_moves_and_deletions_made_in_google(fake: tuple[GoogleFake, FakeServer]) -> None:
    state, server = fake
    cal = calendar(server)
    slot = (await cal.free_slots(ts(2026, 3, 30), ts(2026, 3, 31), duration_s=3600))[0]
    booking = await cal.book(slot, LEAD, title="x")
    assert await cal.changed(booking) is None
    event = state.events[booking.id]
    event["start"] = {"dateTime": "2026-03-31T10:00:00+02:00"}
    event["end"] = {"dateTime": "2026-03-31T11:00:00+02:00"}
    moved = await cal.changed(booking)
    assert moved is not None and moved.kind == "rescheduled" and moved.start == ts(2026, 3, 31, 10)
    event["status"] = "cancelled"
    gone = await cal.changed(booking)
    assert gone is not None and gone.kind == "cancelled" and gone.booking_id == booking.id
