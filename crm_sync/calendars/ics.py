"""ICS invitations (RFC 5545 with iTIP, RFC 5546) for a booked meeting, built with icalendar.

``METHOD:REQUEST`` invites (and, with a higher ``SEQUENCE``, updates); ``METHOD:CANCEL`` with
``STATUS:CANCELLED`` withdraws. ``DTSTART``/``DTEND`` carry a ``TZID`` and the calendar holds the
matching ``VTIMEZONE``, so a mail client shows the meeting at the right local time across
daylight-saving changes. Send it as ``text/calendar; method=REQUEST`` (or ``CANCEL``).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from icalendar import Calendar, Event, vCalAddress, vText

from crm_sync.base import Booking, IntegrationError
from crm_sync.calendars.common import load_zone

__all__ = ["invitation", "invitation_uid"]


def invitation_uid(booking: Booking, *, domain: str = "leadwarm.invalid") -> str:
    """The stable ``UID`` of a booking's invitation (``<provider>-<id>@<domain>``): the same for
    the invitation, its updates and its cancellation."""
    return f"{booking.provider}-{booking.id}@{domain}"


def _address(email: str, name: str, **params: str) -> vCalAddress:
    if "@" not in email or any(c in email for c in '\r\n"<> '):
        raise IntegrationError("ics: invalid email address")
    address = vCalAddress(f"mailto:{email}")
    if name:
        address.params["CN"] = vText(name.replace("\r", " ").replace("\n", " ")[:200])
    for key, value in params.items():
        address.params[key] = vText(value)
    return address


def invitation(
    *,
    uid: str,
    start: float,
    end: float,
    timezone: str,
    summary: str,
    organizer_email: str,
    attendee_email: str,
    now: float,
    description: str = "",
    organizer_name: str = "",
    attendee_name: str = "",
    location: str = "",
    sequence: int = 0,
    method: Literal["REQUEST", "CANCEL"] = "REQUEST",
) -> bytes:
    """The ``.ics`` bytes of an invitation (``REQUEST``) or its cancellation (``CANCEL``).

    ``start``/``end``/``now`` are epoch seconds (``now`` becomes ``DTSTAMP``); ``timezone`` the
    IANA zone the times are written in (the lead's, usually); ``sequence`` grows with each update
    (RFC 5545 section 3.8.7.4) and a cancellation carries a higher one than the last request.
    Raises :class:`IntegrationError` for an unknown zone, a bad address or ``end <= start``.
    """
    if end <= start:
        raise IntegrationError("ics: the meeting ends before it starts")
    if sequence < 0:
        raise IntegrationError("ics: sequence must be >= 0")
    zone = load_zone(timezone)
    cal = Calendar()
    cal.add("prodid", "-//LeadWarm//Booking//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", dt.datetime.fromtimestamp(now, dt.UTC))
    event.add("dtstart", dt.datetime.fromtimestamp(start, zone))
    event.add("dtend", dt.datetime.fromtimestamp(end, zone))
    event.add("summary", summary[:300])
    if description:
        event.add("description", description[:5000])
    if location:
        event.add("location", location[:500])
    event.add("sequence", sequence)
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    event.add("organizer", _address(organizer_email, organizer_name))
    event.add(
        "attendee",
        _address(
            attendee_email,
            attendee_name,
            ROLE="REQ-PARTICIPANT",
            PARTSTAT="NEEDS-ACTION",
            RSVP="TRUE" if method == "REQUEST" else "FALSE",
        ),
    )
    cal.add_component(event)
    cal.add_missing_timezones()
    return bytes(cal.to_ical())
