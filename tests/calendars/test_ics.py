"""ICS invitations parse with icalendar and carry the right time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from crm_sync.base import Booking, IntegrationError
from crm_sync.calendars.ics import invitation, invitation_uid

START = dt.datetime(2026, 3, 30, 14, tzinfo=ZoneInfo("Europe/Paris")).timestamp()  # the day after the change


def _make(**kw: object) -> Calendar:
    args: dict[str, object] = dict(
        uid=invitation_uid(Booking(id="bk_1", provider="builtin", start=START, end=START + 1800)),
        start=START,
        end=START + 1800,
        timezone="America/Montreal",
        summary="Appel découverte",
        description="Avec Alice",
        organizer_email="alice@agency.test",
        organizer_name="Alice",
        attendee_email="lea@example.fr",
        attendee_name='Léa, "la cliente"',
        now=START - 86400,
    )
    args.update(kw)
    return Calendar.from_ical(invitation(**args))  # type: ignore[arg-type]


def test_request_parses_with_tzid_and_vtimezone() -> None:
    cal = _make()
    assert str(cal["METHOD"]) == "REQUEST"
    event = cal.walk("VEVENT")[0]
    start = event.decoded("DTSTART")
    assert event["DTSTART"].params["TZID"] == "America/Montreal"
    assert start.tzinfo is not None and start.utcoffset() == dt.timedelta(hours=-4)  # EDT already
    assert start.timestamp() == START and event.decoded("DTEND").timestamp() == START + 1800
    assert start.hour == 8  # 14:00 Paris is 08:00 in Montreal
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["America/Montreal"]
    assert str(event["UID"]) == "builtin-bk_1@leadwarm.invalid"
    assert str(event["ORGANIZER"]) == "mailto:alice@agency.test"
    attendee = event["ATTENDEE"]
    assert str(attendee) == "mailto:lea@example.fr" and attendee.params["CN"] == 'Léa, "la cliente"'
    assert attendee.params["RSVP"] == "TRUE"
    assert int(event["SEQUENCE"]) == 0 and str(event["SUMMARY"]) == "Appel découverte"


def test_update_and_cancel_variants() -> None:
    update = _make(sequence=1, start=START + 3600, end=START + 5400).walk("VEVENT")[0]
    assert int(update["SEQUENCE"]) == 1
    cancel = _make(method="CANCEL", sequence=2)
    assert str(cancel["METHOD"]) == "CANCEL"
    event = cancel.walk("VEVENT")[0]
    assert str(event["STATUS"]) == "CANCELLED" and int(event["SEQUENCE"]) == 2


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(IntegrationError):
        _make(timezone="Nowhere/City")
    with pytest.raises(IntegrationError):
        _make(attendee_email="no-at-sign")
    with pytest.raises(IntegrationError):
        _make(end=START - 1)
