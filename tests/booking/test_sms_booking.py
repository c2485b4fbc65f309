"""An SMS lead books a call through the shipped solar playbook on the built-in calendar (SQLite
store, local Twilio stand-in, manual clock): the numbered offer, the booking in the ledger and in
``GET /api/v1/bookings``, the lead's stage and the ``meeting.booked`` event, reminders 24 h and
1 h before that wait out quiet hours and stop after an opt-out, a slot taken between offer and
pick, and moving and cancelling the meeting by message."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.booking.calendar import schedule_from_settings
from app.booking.ledger import StoreBookingLedger
from app.composition import Runtime, build_channels
from app.main import create_app
from app.store import collections as col
from app.tenancy.bootstrap import bootstrap
from channels.sms import TwilioSmsChannel
from crm_sync.base import Attendee, Slot
from crm_sync.calendars.builtin import BuiltinCalendar, Salesperson
from kernel.clock import ManualClock
from tests.app.conftest import ADMIN_KEY, make_settings
from tests.app.test_sms_webhook import ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER, PUBLIC, inbound, post_inbound
from tests.fixtures.twilio.fake_twilio import FakeTwilio

Client = AsyncTestClient[Litestar]
PARIS = ZoneInfo("Europe/Paris")
LEAD = "+33612345678"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
SCHEDULE = {
    "timezone": "Europe/Paris",
    "hours": {str(d): ["09:00-12:00", "14:00-18:00"] for d in range(1, 6)},
    "min_notice_min": 60,
}


def paris(day: int, hour: int, minute: int = 0) -> float:
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=PARIS).timestamp()


@pytest.fixture
def twilio_api() -> Iterator[FakeTwilio]:
    server = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(paris(7, 9))  # Monday 7 December 2026, 09:00 in Paris


@pytest.fixture
async def runtime(tmp_path: Path, twilio_api: FakeTwilio, clock: ManualClock) -> AsyncIterator[Runtime]:
    settings = make_settings(
        tmp_path / "data",
        "http://127.0.0.1:9",
        public_base_url=PUBLIC,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_phone_number=OUR_NUMBER,
    )
    sms = TwilioSmsChannel(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_number=OUR_NUMBER,
        public_base_url=PUBLIC,
        api_base_url=twilio_api.base_url,
    )
    rt = Runtime.build(settings, channels={**build_channels(settings), "sms": sms}, clock=clock)
    await bootstrap(rt)
    profile = await rt.tenants.profile("demo")
    await rt.tenants.save_profile(
        profile.model_copy(
            update={"timezone": "Europe/Paris", "quiet_hours_start": "21:00", "quiet_hours_end": "08:30"}
        )
    )
    await rt.store.set(
        "demo",
        col.BOOKING_SETTINGS,
        "calendar",
        {
            "provider": "builtin",
            "salespeople": [{"calendar_id": "alice", "name": "Alice", "schedule": SCHEDULE}],
        },
    )
    yield rt
    await rt.channels.aclose()
    await rt.store.close()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(runtime=runtime, start_worker=False)) as test_client:
        yield test_client


class SmsLead:
    def __init__(self, client: Client, runtime: Runtime, twilio: FakeTwilio) -> None:
        self.client, self.runtime, self.twilio = client, runtime, twilio
        self.n = 0

    async def says(self, text: str) -> list[str]:
        self.n += 1
        before = len(self.twilio.sent(LEAD))
        response = await post_inbound(self.client, inbound(text, f"SM{self.n:032x}", sender=LEAD))
        assert response.status_code == 200, response.text
        await self.runtime.worker.drain()
        return self.received(before)

    def received(self, before: int) -> list[str]:
        return [r.form["Body"] for r in self.twilio.sent(LEAD)[before:]]

    async def to_the_offer(self) -> list[str]:
        for text in ("Hi, I'd like a quote for solar panels", "yes I own it", "about 90", "3", "4", "94105"):
            await self.says(text)
        offer = (await self.says("sam@example.com"))[-1].split("\n")
        assert offer[0].startswith("Let's book a 15-minute call")
        return [line[3:] for line in offer if line[:1].isdigit()]


async def bookings(client: Client, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/bookings", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return list(response.json()["bookings"])


async def test_sms_lead_books_and_is_reminded_outside_quiet_hours(
    client: Client, runtime: Runtime, twilio_api: FakeTwilio, clock: ManualClock
) -> None:
    lead = SmsLead(client, runtime, twilio_api)
    offered = await lead.to_the_offer()
    assert offered == ["Mon 7 Dec, 10 am", "Tue 8 Dec, 2 pm", "Wed 9 Dec, 9 am"]  # short: button titles
    replies = await lead.says("3")
    assert replies[0] == "Booked: Wednesday 9 December at 9 am. See you then!"
    [booking] = await bookings(client)
    assert (booking["status"], booking["start"], booking["end"]) == (
        "confirmed",
        paris(9, 9),
        paris(9, 9, 15),
    )
    entry = await StoreBookingLedger(runtime.store, "demo").get(booking["booking"]["id"])
    assert entry is not None and (entry.calendar_id, entry.start, entry.status) == (
        "alice",
        paris(9, 9),
        "confirmed",
    )
    conv = (await client.get(f"/api/v1/conversations/{booking['conversation_id']}", headers=AUTH)).json()
    assert conv["lead"]["stage"] == "booked"
    assert conv["state"]["booking"]["booked"]["id"] == booking["booking"]["id"]
    assert any(e["type"] == "meeting.booked" for e in conv["events"])
    assert "Booked a call with an energy adviser" in [r["reason"] for r in conv["score_reasons"]]
    assert await bookings(client, status="cancelled") == []

    # 24 h before: Tuesday 09:00 in Paris
    clock.set(paris(8, 9) + 1)
    before = len(twilio_api.sent(LEAD))
    await runtime.worker.drain()
    reminder = "Reminder: your meeting with us is on Wednesday 9 December at 9 am. Reply here if you need to move it."
    assert reminder in lead.received(before)  # with the playbook's own follow-up, due the same day
    # 1 h before is 08:00, inside quiet hours (until 08:30): it waits
    clock.set(paris(9, 8) + 1)
    before = len(twilio_api.sent(LEAD))
    await runtime.worker.drain()
    assert lead.received(before) == []
    clock.set(paris(9, 8, 31))
    await runtime.worker.drain()
    assert lead.received(before) == [reminder]
    assert await runtime.jobs.dead_letters("demo") == []


async def test_a_reminder_quiet_hours_push_past_the_start_is_dropped(
    client: Client, runtime: Runtime, twilio_api: FakeTwilio, clock: ManualClock
) -> None:
    """Quiet hours until 09:00 for a 09:00 meeting: the 1 h reminder (08:00) is not deferred to
    the meeting's start but dropped as stale (``expired``); the 24 h one still goes out."""
    lead = SmsLead(client, runtime, twilio_api)
    await lead.to_the_offer()
    await lead.says("3")  # Wednesday 9 December, 09:00 Paris
    r = await client.put("/api/v1/settings", json={"quiet_hours_end": "09:00"}, headers=AUTH)
    assert r.status_code == 200, r.text
    clock.set(paris(8, 9) + 1)
    before = len(twilio_api.sent(LEAD))
    await runtime.worker.drain()
    assert any(text.startswith("Reminder:") for text in lead.received(before))
    before = len(twilio_api.sent(LEAD))
    for hour, minute in ((8, 0), (9, 1), (10, 0)):
        clock.set(paris(9, hour, minute) + 1)
        await runtime.worker.drain()
    assert lead.received(before) == []
    items = [d.data for d in await runtime.store.query("demo", col.OUTBOX) if "Reminder:" in d.data["text"]]
    assert sorted((i["status"], (i["decision"] or {}).get("reason")) for i in items) == [
        ("sent", "allowed"),
        ("stale", "expired"),
    ]
    assert await runtime.jobs.dead_letters("demo") == []


async def test_no_reminder_after_an_opt_out(
    client: Client, runtime: Runtime, twilio_api: FakeTwilio, clock: ManualClock
) -> None:
    lead = SmsLead(client, runtime, twilio_api)
    await lead.to_the_offer()
    await lead.says("3")
    await lead.says("STOP")
    before = len(twilio_api.sent(LEAD))
    for day, hour in ((8, 9), (9, 8)):
        clock.set(paris(day, hour, 45))
        await runtime.worker.drain()
    assert lead.received(before) == []


async def test_slot_taken_between_offer_and_pick(
    client: Client, runtime: Runtime, twilio_api: FakeTwilio, clock: ManualClock
) -> None:
    lead = SmsLead(client, runtime, twilio_api)
    offered = await lead.to_the_offer()
    rival = BuiltinCalendar(
        StoreBookingLedger(runtime.store, "demo"),
        salespeople=[Salesperson("alice", schedule_from_settings(SCHEDULE, "UTC"))],
        clock=clock,
    )
    await rival.book(
        Slot(paris(7, 10), paris(7, 10, 15)), Attendee(name="Max", email=None), title="other lead"
    )
    replies = await lead.says("1")
    lines = replies[0].split("\n")
    assert lines[0].startswith("Sorry, Monday 7 December at 10 am was just taken. Let's book")
    again = [line[3:] for line in lines if line[:1].isdigit()]
    assert len(again) == 3 and offered[0] not in again
    assert [b["status"] for b in await bookings(client)] == ["taken"]
    replies = await lead.says("1")
    assert replies[0] == "Booked: Monday 7 December at 10:15 am. See you then!"
    [confirmed] = await bookings(client, status="confirmed")
    assert confirmed["start"] == paris(7, 10, 15)


async def test_moving_then_cancelling_by_message(
    client: Client, runtime: Runtime, twilio_api: FakeTwilio, clock: ManualClock
) -> None:
    lead = SmsLead(client, runtime, twilio_api)
    await lead.to_the_offer()
    await lead.says("2")  # Tuesday 2 pm
    await lead.says("no thanks")  # the playbook goes on to its end
    moving = (await lead.says("Can we move it to Friday?"))[0].split("\n")
    fridays = [line[3:] for line in moving if line[:1].isdigit()]
    assert fridays and all(f.startswith("Fri 11 Dec") for f in fridays)
    moved = await lead.says("1")
    assert moved == ["Done – your meeting is moved to Friday 11 December at 9 am."]
    [old] = await bookings(client, status="rescheduled")
    [new] = await bookings(client, status="confirmed")
    ledger = StoreBookingLedger(runtime.store, "demo")
    assert (await ledger.get(old["booking"]["id"])).status == "cancelled"  # type: ignore[union-attr]
    assert (await ledger.get(new["booking"]["id"])).status == "confirmed"  # type: ignore[union-attr]
    cancelled = await lead.says("please cancel my appointment")
    assert cancelled[0].startswith("Your meeting of Friday 11 December at 9 am is cancelled.")
    assert await bookings(client, status="confirmed") == []
    assert (await ledger.get(new["booking"]["id"])).status == "cancelled"  # type: ignore[union-attr]
    lead_doc = await runtime.store.get("demo", "leads", new["lead_id"])
    assert lead_doc is not None and lead_doc["stage"] != "booked"


async def test_calendar_settings_are_checked_before_they_are_kept(client: Client, runtime: Runtime) -> None:
    bad = await client.put("/api/v1/booking/settings", json={"provider": "outlook"}, headers=AUTH)
    assert bad.status_code == 400 and "outlook" in bad.text
    hours = await client.put(
        "/api/v1/booking/settings",
        json={"salespeople": [{"calendar_id": "bob", "schedule": {"hours": {"1": ["18:00-09:00"]}}}]},
        headers=AUTH,
    )
    assert hours.status_code == 400
    no_connection = await client.put("/api/v1/booking/settings", json={"provider": "google"}, headers=AUTH)
    assert no_connection.status_code == 400 and "connection" in no_connection.text
    good = {
        "salespeople": [{"calendar_id": "bob", "schedule": {"timezone": "Europe/Paris"}}],
        "duration_min": 20,
    }
    assert (await client.put("/api/v1/booking/settings", json=good, headers=AUTH)).status_code == 200
    shown = await client.get("/api/v1/booking/settings", headers=AUTH)
    assert shown.json() == {"settings": good}
    assert (await client.get("/api/v1/bookings", params={"status": "nope"}, headers=AUTH)).status_code == 400
    assert (await client.get("/api/v1/bookings")).status_code == 401
