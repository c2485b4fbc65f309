"""An email lead in New York books a call on a Paris built-in calendar through the shipped solar
playbook (aiosmtpd on 127.0.0.1, SQLite, manual clock): the slots are offered in the lead's time,
and the invitation arrives as a ``text/calendar; method=REQUEST`` part that icalendar parses, with
the lead's time zone on its times."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime, build_channels
from app.main import create_app
from app.store import collections as col
from app.tenancy.bootstrap import bootstrap
from channels.email import EmailChannel
from kernel.clock import ManualClock
from tests.app.conftest import make_settings
from tests.app.test_email_conversation import INBOUND_KEY, LEAD, OURS, PUBLIC, UNSUB_SECRET, Lead, plain
from tests.booking.test_sms_booking import SCHEDULE, paris
from tests.support.smtp_server import SmtpRecorder, running_smtp_server

Client = AsyncTestClient[Litestar]
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def smtp() -> Iterator[tuple[int, SmtpRecorder]]:
    with running_smtp_server() as (controller, recorder):
        yield controller.port, recorder


@pytest.fixture
async def runtime(tmp_path: Path, smtp: tuple[int, SmtpRecorder]) -> AsyncIterator[Runtime]:
    settings = make_settings(tmp_path / "data", "http://127.0.0.1:9", public_base_url=PUBLIC)
    email = EmailChannel(
        host="127.0.0.1",
        port=smtp[0],
        from_address=f"SunnyWatt <{OURS}>",
        starttls=False,
        unsubscribe_base_url=PUBLIC,
        unsubscribe_secret=UNSUB_SECRET,
        tenant_id=settings.default_tenant_id,
        inbound_secret=INBOUND_KEY,
        timeout_s=5.0,
    )
    clock = ManualClock(paris(7, 9))
    rt = Runtime.build(settings, channels={**build_channels(settings), "email": email}, clock=clock)
    await bootstrap(rt)
    profile = await rt.tenants.profile("demo")
    await rt.tenants.save_profile(
        profile.model_copy(
            update={"timezone": "America/New_York", "quiet_hours_start": "00:00", "quiet_hours_end": "00:00"}
        )
    )
    await rt.store.set(
        "demo",
        col.BOOKING_SETTINGS,
        "calendar",
        {
            "provider": "builtin",
            "organizer_email": "advisers@sunnywatt.example",
            "organizer_name": "SunnyWatt advisers",
            "salespeople": [{"calendar_id": "alice", "schedule": SCHEDULE}],
        },
    )
    yield rt
    await rt.channels.aclose()
    await rt.store.close()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(runtime=runtime, start_worker=False)) as test_client:
        yield test_client


async def test_email_lead_books_and_gets_an_ics_invitation_in_their_zone(
    client: Client, runtime: Runtime, smtp: tuple[int, SmtpRecorder]
) -> None:
    lead = Lead(client, runtime, smtp[1])
    for text in ("Hi, I'd like a quote for solar panels", "yes I own it", "about 90", "3", "4", "94105"):
        await lead.says(text)
    offer = plain((await lead.says("sam@example.com"))[-1]).split("\n")
    slots = [line[3:] for line in offer if line[:1].isdigit()]
    # Paris afternoons are New York mornings: the lead's waking hours
    assert slots == ["Mon 7 Dec, 8 am", "Tue 8 Dec, 8 am", "Wed 9 Dec, 8 am"]
    replies = await lead.says("2")
    texts = [" ".join(plain(m).split()) for m in replies]
    assert texts[0] == "Booked: Tuesday 8 December at 8 am. See you then!"
    [invite] = [m for m in replies if any(True for _ in m.message.iter_attachments())]
    [part] = list(invite.message.iter_attachments())
    assert part.get_content_type() == "text/calendar"
    assert part.get_param("method") == "REQUEST"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    calendar = Calendar.from_ical(payload)
    assert str(calendar["METHOD"]) == "REQUEST"
    [event] = calendar.walk("VEVENT")
    start, end = event.decoded("DTSTART"), event.decoded("DTEND")
    assert start.tzinfo is not None and str(start.tzinfo) == "America/New_York"
    assert event["DTSTART"].params["TZID"] == "America/New_York"
    assert (start.timestamp(), end.timestamp()) == (paris(8, 14), paris(8, 14, 15))
    assert start.replace(tzinfo=None) == dt.datetime(2026, 12, 8, 8, 0)
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["America/New_York"]
    assert str(event["ATTENDEE"]) == "mailto:sam.taylor@example.com"
    assert str(event["ORGANIZER"]) == "mailto:advisers@sunnywatt.example"
    assert invite.rcpt_tos == [LEAD]
