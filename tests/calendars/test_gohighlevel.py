"""GoHighLevel calendars against Prism mocks of the vendor's calendars and contacts specs: every
request the provider sends must be one the spec accepts (Prism answers 422 otherwise)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_sync.base import Attendee, Booking, IntegrationError, ProviderError, Slot, SlotTakenError
from crm_sync.calendars.gohighlevel import GoHighLevelCalendar, parse_appointment_event
from kernel.clock import ManualClock
from tests.calendars.support import TestApiClient
from tests.support.prism import PrismServer, start_prism

SPECS = Path("/work/shared/specs/gohighlevel/apps")
LEAD = Attendee(
    name="Ana Lima", email="ana@example.com", phone="+5511999990000", timezone="America/Sao_Paulo"
)
# the calendars spec's free-slots example: 2024-10-28 and 2024-10-29, in UTC-5
EXAMPLE_DAY = dt.datetime(2024, 10, 28, tzinfo=dt.UTC).timestamp()


@pytest.fixture(scope="module")
def prisms() -> Iterator[tuple[PrismServer, PrismServer]]:
    with start_prism(SPECS / "calendars.json") as calendars, start_prism(SPECS / "contacts.json") as contacts:
        yield calendars, contacts


def provider(prisms: tuple[PrismServer, PrismServer]) -> tuple[GoHighLevelCalendar, TestApiClient]:
    calendars, contacts = prisms
    client = TestApiClient(
        "gohighlevel",
        calendars.base_url,
        account={"locationId": "ve9EPM428h8vShlRW1KT"},
        routes={"/contacts": contacts.base_url},
    )
    cal = GoHighLevelCalendar(
        client,
        calendar_id="ocQHyuzHvysMo5N5VsXc",
        timezone="America/Chicago",
        clock=ManualClock(EXAMPLE_DAY - 86400),
    )
    return cal, client


async def test_free_slots_are_read_from_the_spec_example(prisms: tuple[PrismServer, PrismServer]) -> None:
    cal, _ = provider(prisms)
    slots = await cal.free_slots(EXAMPLE_DAY, EXAMPLE_DAY + 3 * 86400, duration_s=1800)
    assert [dt.datetime.fromtimestamp(s.start, dt.UTC).strftime("%d %H:%M") for s in slots] == [
        "28 15:00",
        "28 16:00",
        "29 15:00",
        "29 19:30",
    ]
    assert all(s.end - s.start == 1800 and s.calendar_id == "ocQHyuzHvysMo5N5VsXc" for s in slots)


async def test_book_upserts_the_contact_then_creates_and_cancels_the_appointment(
    prisms: tuple[PrismServer, PrismServer],
) -> None:
    cal, client = provider(prisms)
    slot = (await cal.free_slots(EXAMPLE_DAY, EXAMPLE_DAY + 86400, duration_s=1800))[0]
    booking = await cal.book(slot, LEAD, title="Discovery call", description="via WhatsApp")
    assert booking.id == "0TkCdp9PfvLeWKYRRvIz" and booking.status == "confirmed"  # the spec's example
    assert booking.extra["contact_id"]
    assert [m for m, _ in client.sent] == ["GET", "POST", "POST"]
    await cal.cancel(booking)
    assert client.sent[-1][0] == "PUT"


async def test_a_refused_slot_that_is_gone_is_slot_taken(prisms: tuple[PrismServer, PrismServer]) -> None:
    cal, client = provider(prisms)
    client.headers_for[("POST", "/calendars/events/appointments")] = {"Prefer": "code=400"}
    gone = Slot(start=EXAMPLE_DAY + 3600, end=EXAMPLE_DAY + 5400)  # not among the free slots
    with pytest.raises(SlotTakenError):
        await cal.book(gone, LEAD, title="x")
    still_free = (await cal.free_slots(EXAMPLE_DAY, EXAMPLE_DAY + 86400, duration_s=1800))[0]
    with pytest.raises(ProviderError) as info:  # refused for another reason: the error stands
        await cal.book(still_free, LEAD, title="x")
    assert info.value.status == 400 and not isinstance(info.value, SlotTakenError)


async def test_outage_reads_the_calendar_back_and_reports_no_booking(
    prisms: tuple[PrismServer, PrismServer],
) -> None:
    cal, client = provider(prisms)
    slot = (await cal.free_slots(EXAMPLE_DAY, EXAMPLE_DAY + 86400, duration_s=1800))[0]
    client.down[("POST", "/calendars/events/appointments")] = 1
    with pytest.raises(ProviderError) as info:
        await cal.book(slot, LEAD, title="x")
    assert info.value.retryable
    assert client.sent[-1][0] == "GET" and client.sent[-1][1].endswith("/calendars/events")  # read back


async def test_sync_reads_the_appointment(prisms: tuple[PrismServer, PrismServer]) -> None:
    cal, client = provider(prisms)
    booking = Booking(
        id="0TkCdp9PfvLeWKYRRvIz", provider="gohighlevel", start=EXAMPLE_DAY, end=EXAMPLE_DAY + 1800
    )
    change = await cal.changed(booking)  # the spec's example appointment is elsewhere in time: moved
    assert change is not None and change.kind in ("rescheduled", "cancelled")
    assert client.sent[-1] == (
        "GET",
        prisms[0].base_url + "/calendars/events/appointments/0TkCdp9PfvLeWKYRRvIz",
    )


def test_appointment_webhooks_normalise_to_changes() -> None:
    doc = (SPECS.parent / "docs" / "AppointmentCreate.md").read_text()
    example = doc.split("#### Example", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    created = parse_appointment_event(example.encode())
    assert created is not None and created.kind == "booked" and created.booking_id == "0007BWpSzSwfiuSl0tR2"
    assert created.start == dt.datetime(2023, 9, 25, 10, 30, tzinfo=dt.UTC).timestamp()
    updated = json.loads(example)
    updated["type"] = "AppointmentUpdate"
    assert parse_appointment_event(json.dumps(updated).encode()).kind == "rescheduled"  # type: ignore[union-attr]
    updated["appointment"]["appointmentStatus"] = "cancelled"
    assert parse_appointment_event(json.dumps(updated).encode()).kind == "cancelled"  # type: ignore[union-attr]
    assert parse_appointment_event(b'{"type": "ContactCreate"}') is None
    with pytest.raises(IntegrationError):
        parse_appointment_event(b"[1, 2")
