"""GoHighLevel (LeadConnector) calendars: free slots and appointments.

Request shapes: ``/work/shared/specs/gohighlevel/apps/calendars.json`` (API v2, header
``Version: 2021-04-15``): ``GET /calendars/{calendarId}/free-slots`` (``startDate``/``endDate`` in
epoch milliseconds, at most 31 days; answer ``{"YYYY-MM-DD": {"slots": [ISO...]}}``),
``POST /calendars/events/appointments`` (``calendarId``, ``locationId``, ``contactId``,
``startTime``, ``endTime``, ``title``, ``appointmentStatus``), ``GET /calendars/events``
(``locationId``, ``calendarId``, ``startTime``/``endTime`` in ms), and
``PUT /calendars/events/appointments/{eventId}`` (``appointmentStatus: cancelled``). The lead's
contact comes from ``POST /contacts/upsert`` (contacts spec, ``Version: 2021-07-28``) unless the
app passes a ``contact_for`` function (for example the CRM sync's remote id).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

from crm_sync.base import (
    ApiClient,
    Attendee,
    Booking,
    IntegrationError,
    ProviderError,
    Slot,
    SlotTakenError,
    gohighlevel_location,
)
from crm_sync.calendars.common import MAX_RANGE_S, CalendarChange, json_body, load_zone, parse_iso, to_iso
from kernel.clock import Clock, SystemClock

__all__ = ["CALENDARS_VERSION", "CONTACTS_VERSION", "GoHighLevelCalendar", "parse_appointment_event"]

CALENDARS_VERSION = "2021-04-15"
CONTACTS_VERSION = "2021-07-28"
#: GoHighLevel's longest free-slots window (31 days, calendars spec ``startDate``).
_MAX_WINDOW_S = 31 * 86400 - 1


class GoHighLevelCalendar:
    """:class:`~crm_sync.base.CalendarProvider` for one GoHighLevel calendar of the connected
    location (``client.account["location_id"]``, see :func:`~crm_sync.base.gohighlevel_location`).

    ``timezone`` is the zone GoHighLevel computes slots in (the lead's or the calendar's);
    ``contact_for`` maps an attendee to a GoHighLevel contact id (default: upsert by email/phone).
    Raises :class:`IntegrationError` when the connection has no ``locationId``.
    """

    provider = "gohighlevel"

    def __init__(
        self,
        client: ApiClient,
        *,
        calendar_id: str,
        timezone: str = "UTC",
        contact_for: Callable[[Attendee], Awaitable[str]] | None = None,
        clock: Clock | None = None,
    ) -> None:
        location = gohighlevel_location(client.account)
        if not location:
            raise IntegrationError("gohighlevel: the connection has no locationId")
        load_zone(timezone)
        self._client = client
        self._calendar = calendar_id
        self._location = str(location)
        self._tz = timezone
        self._contact_for = contact_for or self._upsert_contact
        self._clock = clock or SystemClock()

    def _h(self, version: str = CALENDARS_VERSION) -> Mapping[str, str]:
        return {"Version": version}

    async def free_slots(self, start: float, end: float, *, duration_s: int) -> list[Slot]:
        """GoHighLevel's free slots in ``[start, end)`` (windows of at most 31 days, the whole
        range cut to 62 days); a slot ends ``duration_s`` after its start."""
        start = max(start, self._clock.now())
        end = min(end, start + MAX_RANGE_S)
        out: dict[float, Slot] = {}
        cursor = start
        while cursor < end:
            stop = min(end, cursor + _MAX_WINDOW_S)
            response = await self._client.request(
                "GET",
                f"/calendars/{quote(self._calendar, safe='')}/free-slots",
                params={"startDate": int(cursor * 1000), "endDate": int(stop * 1000), "timezone": self._tz},
                headers=self._h(),
            )
            body = json_body(response, self.provider)
            for value in body.values() if isinstance(body, dict) else ():
                if not isinstance(value, dict):
                    continue  # "traceId" and other scalars
                for raw in value.get("slots", []):
                    try:
                        at = parse_iso(str(raw))
                    except ValueError:
                        continue
                    if start <= at and at + duration_s <= end:
                        out[at] = Slot(start=at, end=at + duration_s, calendar_id=self._calendar)
            cursor = stop
        return [out[k] for k in sorted(out)]

    async def _upsert_contact(self, attendee: Attendee) -> str:
        if not (attendee.email or attendee.phone):
            raise IntegrationError("gohighlevel: an appointment needs the lead's email or phone")
        payload: dict[str, Any] = {"locationId": self._location, "timezone": attendee.timezone}
        if attendee.name:
            payload["name"] = attendee.name
        if attendee.email:
            payload["email"] = attendee.email
        if attendee.phone:
            payload["phone"] = attendee.phone
        response = await self._client.request(
            "POST", "/contacts/upsert", json=payload, headers=self._h(CONTACTS_VERSION)
        )
        contact = json_body(response, self.provider).get("contact") or {}
        if not contact.get("id"):
            raise ProviderError("gohighlevel: contact upsert gave no id")
        return str(contact["id"])

    async def _still_free(self, slot: Slot) -> bool:
        day = await self.free_slots(slot.start - 3600, slot.end + 3600, duration_s=int(slot.end - slot.start))
        return any(abs(s.start - slot.start) < 1 for s in day)

    async def _find(self, contact_id: str, slot: Slot) -> Mapping[str, Any] | None:
        response = await self._client.request(
            "GET",
            "/calendars/events",
            params={
                "locationId": self._location,
                "calendarId": self._calendar,
                "startTime": str(int(slot.start * 1000)),
                "endTime": str(int(slot.end * 1000)),
            },
            headers=self._h(),
        )
        for event in json_body(response, self.provider).get("events", []) or []:
            try:
                same = abs(parse_iso(str(event.get("startTime"))) - slot.start) < 1
            except ValueError:
                continue
            if (
                same
                and event.get("contactId") == contact_id
                and event.get("appointmentStatus") != "cancelled"
            ):
                return dict(event)
        return None

    async def book(self, slot: Slot, attendee: Attendee, *, title: str, description: str = "") -> Booking:
        """Create a confirmed appointment for the lead's contact. A refusal (400/409/422) after
        which the slot is no longer among the free slots raises :class:`SlotTakenError`; after a
        network error or 5xx the calendar's events are read back so the booking either exists and
        is returned, or the error is raised. Raises :class:`ProviderError`, :class:`AuthError`."""
        contact_id = await self._contact_for(attendee)
        zone = load_zone(self._tz)
        body: dict[str, Any] = {
            "calendarId": self._calendar,
            "locationId": self._location,
            "contactId": contact_id,
            "startTime": to_iso(slot.start, zone),
            "endTime": to_iso(slot.end, zone),
            "title": title,
            "appointmentStatus": "confirmed",
            "toNotify": True,
        }
        if description:
            body["description"] = description
        try:
            response = await self._client.request(
                "POST", "/calendars/events/appointments", json=body, headers=self._h()
            )
            event: Mapping[str, Any] = json_body(response, self.provider)
        except ProviderError as exc:
            if exc.status in (400, 409, 422):
                if not await self._still_free(slot):
                    raise SlotTakenError("the slot is no longer free in GoHighLevel") from exc
                raise
            if not (exc.retryable or exc.status == 0):
                raise
            found = await self._find(contact_id, slot)
            if found is None:
                raise
            event = found
        if not event.get("id"):
            raise ProviderError("gohighlevel: the appointment has no id")
        return Booking(
            id=str(event["id"]),
            provider=self.provider,
            start=slot.start,
            end=slot.end,
            calendar_id=self._calendar,
            extra={"contact_id": contact_id, "location_id": self._location},
        )

    async def changed(self, booking: Booking) -> CalendarChange | None:
        """Sync: the appointment's change since ``booking`` (``GET /calendars/events/appointments/
        {eventId}``): ``cancelled`` when gone or cancelled, ``rescheduled`` with the new times when
        moved, ``None`` otherwise. Raises :class:`ProviderError`."""
        try:
            response = await self._client.request(
                "GET", f"/calendars/events/appointments/{quote(booking.id, safe='')}", headers=self._h()
            )
        except ProviderError as exc:
            if exc.status == 404:
                return CalendarChange(provider=self.provider, kind="cancelled", booking_id=booking.id)
            raise
        body = json_body(response, self.provider)
        return _change(body.get("appointment") or body.get("event") or body, booking)

    async def cancel(self, booking: Booking, *, reason: str = "") -> None:
        """Set the appointment's status to ``cancelled`` (idempotent: 404 ignored)."""
        try:
            await self._client.request(
                "PUT",
                f"/calendars/events/appointments/{quote(booking.id, safe='')}",
                json={"appointmentStatus": "cancelled"},
                headers=self._h(),
            )
        except ProviderError as exc:
            if exc.status != 404:
                raise


def _change(appointment: Any, booking: Booking | None) -> CalendarChange | None:
    if not isinstance(appointment, dict) or not appointment.get("id"):
        raise IntegrationError("gohighlevel: unreadable appointment")
    status = str(appointment.get("appointmentStatus") or "")
    try:
        start = parse_iso(str(appointment["startTime"])) if appointment.get("startTime") else None
        end = parse_iso(str(appointment["endTime"])) if appointment.get("endTime") else None
    except ValueError as exc:
        raise IntegrationError("gohighlevel: unreadable appointment times") from exc
    extra = {"contact_id": appointment.get("contactId"), "calendar_id": appointment.get("calendarId")}
    base = {"provider": "gohighlevel", "booking_id": str(appointment["id"]), "start": start, "end": end}
    if status in ("cancelled", "invalid"):
        return CalendarChange(kind="cancelled", extra=extra, **base)  # type: ignore[arg-type]
    if booking is None:
        return CalendarChange(kind="booked", extra=extra, **base)  # type: ignore[arg-type]
    if start is not None and abs(start - booking.start) >= 1:
        return CalendarChange(kind="rescheduled", extra=extra, **base)  # type: ignore[arg-type]
    return None


def parse_appointment_event(raw_body: bytes) -> CalendarChange | None:
    """Normalise a GoHighLevel ``AppointmentCreate`` / ``AppointmentUpdate`` / ``AppointmentDelete``
    webhook (docs/AppointmentCreate.md: ``{"type", "locationId", "appointment": {"id",
    "calendarId", "contactId", "appointmentStatus", "startTime", "endTime"}}``); ``None`` for other
    event types. An update is reported as ``rescheduled`` (compare ``start`` with the stored
    booking) or ``cancelled`` by its status. The ``x-wh-signature`` check (GoHighLevel's public
    key, docs/WebhookAuthentication.md) is the GoHighLevel webhook endpoint's, shared with the
    CRM events. Raises :class:`IntegrationError` for an unreadable body."""
    try:
        data = json.loads(raw_body)
        kind = str(data["type"])
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrationError("gohighlevel: unreadable webhook body") from exc
    if kind not in ("AppointmentCreate", "AppointmentUpdate", "AppointmentDelete"):
        return None
    appointment = data.get("appointment")
    if kind == "AppointmentDelete" and isinstance(appointment, dict):
        appointment = {**appointment, "appointmentStatus": "cancelled"}
    change = _change(appointment, None)
    if change is not None and kind == "AppointmentUpdate" and change.kind == "booked":
        return CalendarChange(
            provider=change.provider,
            kind="rescheduled",
            booking_id=change.booking_id,
            start=change.start,
            end=change.end,
            extra=change.extra,
        )
    return change
