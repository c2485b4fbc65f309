"""Cal.com API v2 against a stateful fake on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest

from crm_sync.base import Attendee, Booking, ProviderError, SlotTakenError
from crm_sync.calendars.cal_com import CalComCalendar, parse_webhook, verify_webhook
from crm_sync.calendars.common import AttendeeDataError, WebhookSignatureError
from kernel.clock import ManualClock
from tests.calendars.fakes import CalComFake
from tests.calendars.support import FakeServer, TestApiClient

T0 = dt.datetime(2026, 10, 26, 9, tzinfo=dt.UTC).timestamp()  # Monday, the day after Europe's change
LEAD = Attendee(name="Léa", email="lea@example.fr", timezone="Europe/Paris", language="fr")


@pytest.fixture
def fake() -> Iterator[tuple[CalComFake, FakeServer]]:
    state = CalComFake(open_slots=[T0, T0 + 1800, T0 + 86400])
    server = FakeServer(state)
    try:
        yield state, server
    finally:
        server.close()


def calendar(server: FakeServer) -> CalComCalendar:
    return CalComCalendar(
        TestApiClient("cal_com", server.base_url), event_type_id=42, clock=ManualClock(T0 - 86400)
    )


async def test_slots_book_and_cancel(fake: tuple[CalComFake, FakeServer]) -> None:
    state, server = fake
    cal = calendar(server)
    slots = await cal.free_slots(T0 - 3600, T0 + 2 * 86400, duration_s=1800)
    assert [s.start for s in slots] == [T0, T0 + 1800, T0 + 86400]
    booking = await cal.book(slots[0], LEAD, title="Découverte")
    assert booking.status == "confirmed" and booking.url and booking.url.startswith("https://cal.example/")
    sent = next(r for r in server.requests if r.method == "POST" and r.path == "/v2/bookings")
    assert sent.body["start"] == "2026-10-26T09:00:00.000Z"
    assert sent.body["attendee"] == {
        "name": "Léa",
        "email": "lea@example.fr",
        "timeZone": "Europe/Paris",
        "language": "fr",
    }
    assert [s.start for s in await cal.free_slots(T0 - 3600, T0 + 2 * 86400, duration_s=1800)] == [
        T0 + 1800,
        T0 + 86400,
    ]
    await cal.cancel(booking, reason="the lead cannot come")
    assert state.bookings[booking.id]["status"] == "cancelled"
    with pytest.raises(AttendeeDataError):
        await cal.book(slots[1], Attendee(name="x", email=None, phone="+33600000000"), title="x")


async def test_taken_between_offer_and_pick_and_racing_leads(fake: tuple[CalComFake, FakeServer]) -> None:
    state, server = fake
    cal = calendar(server)
    slot = (await cal.free_slots(T0 - 3600, T0 + 3600, duration_s=1800))[0]
    await cal.book(slot, Attendee(name="A", email="a@x.test"), title="x")
    with pytest.raises(SlotTakenError):
        await cal.book(slot, LEAD, title="x")
    other = (await cal.free_slots(T0 - 3600, T0 + 3600, duration_s=1800))[0]
    results = await asyncio.gather(
        *(cal.book(other, Attendee(name=f"L{i}", email=f"l{i}@x.test"), title="x") for i in range(3)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Booking) for r in results) == 1
    assert sum(isinstance(r, SlotTakenError) for r in results) == 2
    assert len(state.accepted()) == 2


async def test_outage_during_booking(fake: tuple[CalComFake, FakeServer]) -> None:
    state, server = fake
    cal = calendar(server)
    slot = (await cal.free_slots(T0 - 3600, T0 + 3600, duration_s=1800))[0]
    server.fail_next[("POST", "/v2/bookings")] = 1
    with pytest.raises(ProviderError):
        await cal.book(slot, LEAD, title="x")
    assert state.accepted() == []
    state.answer_lost = 1
    booking = await cal.book(slot, LEAD, title="x")  # made, answer lost: found again by the lead's email
    assert [b["uid"] for b in state.accepted()] == [booking.id]


async def test_sync_sees_cancellations_and_moves(fake: tuple[CalComFake, FakeServer]) -> None:
    state, server = fake
    cal = calendar(server)
    slot = (await cal.free_slots(T0 - 3600, T0 + 3600, duration_s=1800))[0]
    booking = await cal.book(slot, LEAD, title="x")
    assert await cal.changed(booking) is None
    state.bookings[booking.id]["start"] = "2026-10-27T09:00:00Z"
    state.bookings[booking.id]["end"] = "2026-10-27T09:30:00Z"
    moved = await cal.changed(booking)
    assert moved is not None and moved.kind == "rescheduled" and moved.start == T0 + 86400
    state.bookings[booking.id]["status"] = "cancelled"
    gone = await cal.changed(booking)
    assert gone is not None and gone.kind == "cancelled"


def test_webhook_signature_and_payloads() -> None:
    body = json.dumps(
        {
            "triggerEvent": "BOOKING_RESCHEDULED",
            "createdAt": "2026-10-20T08:00:00.000Z",
            "payload": {
                "uid": "new-uid",
                "rescheduleUid": "old-uid",
                "startTime": "2026-10-27T09:00:00Z",
                "endTime": "2026-10-27T09:30:00Z",
                "attendees": [{"email": "lea@example.fr", "name": "Léa", "timeZone": "Europe/Paris"}],
            },
        }
    ).encode()
    signature = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    verify_webhook({"X-Cal-Signature-256": signature}, body, secret="s3cret")
    for headers, secret in [({"X-Cal-Signature-256": signature}, "other"), ({}, "s3cret")]:
        with pytest.raises(WebhookSignatureError):
            verify_webhook(headers, body, secret=secret)
    with pytest.raises(WebhookSignatureError):
        verify_webhook({"x-cal-signature-256": signature}, body + b" ", secret="s3cret")
    change = parse_webhook(body)
    assert change is not None and change.kind == "rescheduled" and change.booking_id == "old-uid"
    assert (
        change.start == T0 + 86400
        and change.extra == {"new_uid": "new-uid"}
        and change.email == "lea@example.fr"
    )
    cancelled = json.loads(body)
    cancelled["triggerEvent"] = "BOOKING_CANCELLED"
    cancelled["payload"]["cancellationReason"] = "sick"
    got = parse_webhook(json.dumps(cancelled).encode())
    assert (
        got is not None and got.kind == "cancelled" and got.booking_id == "new-uid" and got.reason == "sick"
    )
    assert parse_webhook(b'{"triggerEvent": "MEETING_ENDED", "payload": {"uid": "x"}}') is None
