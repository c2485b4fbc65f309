"""Calendly against a stateful fake on 127.0.0.1, and its webhook signature and payload."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest

from crm_sync.base import Attendee, ProviderError, SlotTakenError
from crm_sync.calendars.calendly import CalendlyCalendar, parse_webhook, sign_webhook, verify_webhook
from crm_sync.calendars.common import WebhookSignatureError
from kernel.clock import ManualClock
from tests.calendars.fakes import CalendlyFake
from tests.calendars.support import FakeServer, TestApiClient

T0 = dt.datetime(2026, 12, 8, 13, tzinfo=dt.UTC).timestamp()
LEAD = Attendee(name="Sam", email="sam@example.com", timezone="Asia/Tokyo")
ET = "https://api.calendly.com/event_types/ET1"


@pytest.fixture
def fake() -> Iterator[tuple[CalendlyFake, FakeServer]]:
    state = CalendlyFake(open_slots=[T0, T0 + 3600, T0 + 9 * 86400])
    server = FakeServer(state)
    try:
        yield state, server
    finally:
        server.close()


def calendar(server: FakeServer, mode: str = "api") -> CalendlyCalendar:
    client = TestApiClient(
        "calendly", server.base_url, account={"owner": "https://api.calendly.com/users/U1"}
    )
    return CalendlyCalendar(client, event_type=ET, mode=mode, clock=ManualClock(T0 - 86400))


async def test_available_times_in_weekly_windows_then_book_and_cancel(
    fake: tuple[CalendlyFake, FakeServer],
) -> None:
    state, server = fake
    cal = calendar(server)
    slots = await cal.free_slots(T0 - 86400, T0 + 12 * 86400, duration_s=1800)
    assert [s.start for s in slots] == [T0, T0 + 3600, T0 + 9 * 86400]
    assert len([r for r in server.requests if r.path == "/event_type_available_times"]) == 2
    booking = await cal.book(slots[0], LEAD, title="Intro")
    assert booking.status == "confirmed" and state.events[booking.id]["status"] == "active"
    assert state.events[booking.id]["invitee"] == {
        "name": "Sam",
        "email": "sam@example.com",
        "timezone": "Asia/Tokyo",
    }
    with pytest.raises(SlotTakenError):
        await cal.book(slots[0], Attendee(name="B", email="b@example.com"), title="Intro")
    await cal.cancel(booking, reason="moved")
    await cal.cancel(booking)  # already cancelled: fine
    assert state.events[booking.id]["status"] == "canceled"


async def test_plan_without_scheduling_api_gets_a_single_use_link(
    fake: tuple[CalendlyFake, FakeServer],
) -> None:
    state, server = fake
    state.scheduling_api = False
    cal = calendar(server)
    slot = (await cal.free_slots(T0 - 86400, T0 + 86400, duration_s=1800))[0]
    booking = await cal.book(slot, LEAD, title="Intro")
    assert booking.status == "pending" and booking.id.startswith("link:")
    assert booking.url and booking.url.startswith(state.links[0]["booking_url"] + "?")
    assert f"utm_content={booking.extra['ref']}" in booking.url and "utm_source=leadwarm" in booking.url
    assert state.links[0]["max_event_count"] == 1
    await cal.cancel(booking)  # nothing remote to cancel
    server.fail_next[("POST", "/scheduling_links")] = 1
    with pytest.raises(ProviderError):
        await calendar(server, mode="link").book(slot, LEAD, title="Intro")


async def test_outage_during_booking(fake: tuple[CalendlyFake, FakeServer]) -> None:
    state, server = fake
    cal = calendar(server)
    slot = (await cal.free_slots(T0 - 86400, T0 + 86400, duration_s=1800))[0]
    server.fail_next[("POST", "/invitees")] = 1
    with pytest.raises(ProviderError):
        await cal.book(slot, LEAD, title="Intro")
    assert state.events == {}
    state.answer_lost = 1  # made, answer lost: read back by the lead's email
    booking = await cal.book(slot, LEAD, title="Intro")
    assert list(state.events) == [booking.id] and booking.status == "confirmed"


def _event(kind: str, **payload: object) -> bytes:
    return json.dumps(
        {
            "event": kind,
            "created_at": "2026-12-01T10:00:00.000000Z",
            "payload": {
                "uri": "https://api.calendly.com/scheduled_events/EV9/invitees/IN1",
                "email": "sam@example.com",
                "name": "Sam",
                "tracking": {"utm_source": "leadwarm", "utm_content": "abc123"},
                "scheduled_event": {
                    "uri": "https://api.calendly.com/scheduled_events/EV9",
                    "start_time": "2026-12-08T13:00:00.000000Z",
                    "end_time": "2026-12-08T13:30:00.000000Z",
                },
                **payload,
            },
        }
    ).encode()


def test_webhook_signature() -> None:
    body = _event("invitee.created")
    now = 1_800_000_000
    header = sign_webhook(body, signing_key="whsec", timestamp=now)
    verify_webhook({"Calendly-Webhook-Signature": header}, body, signing_key="whsec", now=now + 10)
    for headers, key, at in [
        ({"Calendly-Webhook-Signature": header}, "other-key", now),
        ({"Calendly-Webhook-Signature": header}, "whsec", now + 181),  # replayed too late
        ({"Calendly-Webhook-Signature": "garbage"}, "whsec", now),
        ({}, "whsec", now),
    ]:
        with pytest.raises(WebhookSignatureError):
            verify_webhook(headers, body, signing_key=key, now=at)
    with pytest.raises(WebhookSignatureError):
        verify_webhook({"calendly-webhook-signature": header}, body + b" ", signing_key="whsec", now=now)


def test_webhook_payloads_normalise_to_changes() -> None:
    booked = parse_webhook(_event("invitee.created"))
    assert (
        booked is not None
        and booked.kind == "booked"
        and booked.booking_id == "EV9"
        and booked.ref == "abc123"
    )
    assert booked.start == dt.datetime(2026, 12, 8, 13, tzinfo=dt.UTC).timestamp()
    cancelled = parse_webhook(_event("invitee.canceled", cancellation={"reason": "sick"}))
    assert cancelled is not None and cancelled.kind == "cancelled" and cancelled.reason == "sick"
    moved = parse_webhook(_event("invitee.canceled", rescheduled=True))
    assert moved is not None and moved.kind == "rescheduled"
    assert (
        parse_webhook(json.dumps({"event": "routing_form_submission.created", "payload": {}}).encode())
        is None
    )
    with pytest.raises(Exception, match="unreadable"):
        parse_webhook(b"not json")
