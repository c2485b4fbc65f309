"""Google Calendar over an OAuth connection: free slots from ``freeBusy`` within the salesperson's
working hours, bookings with ``events.insert`` (the lead as attendee), cancel with
``events.delete``.

Request shapes: Calendar API v3 reference, "Freebusy: query" (``POST /freeBusy`` with
``timeMin``, ``timeMax``, ``items[].id``; answer ``calendars[id].busy[]``), "Events: insert"
(``POST /calendars/{calendarId}/events?sendUpdates=all``; a client-chosen ``id`` of base32hex
characters ``a-v0-9``, 5-1024 long, answered ``409`` when it exists), "Events: list"
(``timeMin``/``timeMax``/``singleEvents``), "Events: get", "Events: delete" (``410 Gone`` once
deleted).

No half-made booking: the event id is derived from (calendar, start, lead), so after a network
error or a 5xx the provider reads the event back: present, the booking stands; absent, the error
is raised and nothing was made; unreadable, the id is deleted (best effort) before raising.
Google does not refuse overlapping events, so after the insert the provider lists the slot's
events: if another meeting holds it and was created first, ours is deleted and
:class:`SlotTakenError` raised (of two racing leads, the later one gives way).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from crm_sync.base import ApiClient, Attendee, Booking, ProviderError, Slot, SlotTakenError
from crm_sync.calendars.common import (
    CalendarChange,
    Schedule,
    candidate_slots,
    is_free,
    json_body,
    overlaps,
    parse_iso,
    to_iso,
)
from kernel.clock import Clock, SystemClock

__all__ = ["GoogleCalendar", "event_id"]


def event_id(calendar_id: str, start: float, attendee: Attendee) -> str:
    """A valid Google event id (26 base32hex characters) derived from the calendar, the slot's
    start and the lead, so a retried insert for the same lead and slot names the same event."""
    who = attendee.email or attendee.phone or attendee.name or ""
    digest = hashlib.sha256(f"{calendar_id}|{round(start)}|{who.lower()}".encode()).digest()
    return "le" + base64.b32hexencode(digest).decode().lower().rstrip("=")[:24]


class GoogleCalendar:
    """:class:`~crm_sync.base.CalendarProvider` for one Google calendar.

    ``client`` is the connection's :class:`ApiClient` (base URL ``https://www.googleapis.com``);
    ``calendar_id`` the calendar (``"primary"`` or an address); ``schedule`` the working hours
    that bound offered slots (its zone is also the events' ``timeZone``); ``send_updates`` Google's
    ``sendUpdates`` (``all``, ``externalOnly``, ``none``); ``api_prefix`` the API's path.
    """

    provider = "google"

    def __init__(
        self,
        client: ApiClient,
        *,
        schedule: Schedule,
        calendar_id: str = "primary",
        send_updates: str = "all",
        clock: Clock | None = None,
        api_prefix: str = "/calendar/v3",
    ) -> None:
        self._client = client
        self._schedule = schedule
        self._calendar = calendar_id
        self._send_updates = send_updates
        self._clock = clock or SystemClock()
        self._prefix = api_prefix.rstrip("/")

    def _events_path(self, event: str | None = None) -> str:
        base = f"{self._prefix}/calendars/{quote(self._calendar, safe='')}/events"
        return base if event is None else f"{base}/{quote(event, safe='')}"

    async def busy(self, start: float, end: float) -> list[tuple[float, float]]:
        """Busy intervals of the calendar in ``[start, end)`` (``freeBusy``). Raises
        :class:`ProviderError` when Google reports an error for the calendar."""
        response = await self._client.request(
            "POST",
            f"{self._prefix}/freeBusy",
            json={"timeMin": to_iso(start), "timeMax": to_iso(end), "items": [{"id": self._calendar}]},
        )
        body = json_body(response, self.provider)
        entry = (body.get("calendars") or {}).get(self._calendar) or {}
        if entry.get("errors"):
            raise ProviderError(f"google: freeBusy error {entry['errors'][0].get('reason', '')}")
        try:
            return [(parse_iso(b["start"]), parse_iso(b["end"])) for b in entry.get("busy", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError("google: unreadable freeBusy answer") from exc

    async def free_slots(self, start: float, end: float, *, duration_s: int) -> list[Slot]:
        """Working-hours slots of ``duration_s`` seconds in ``[start, end)`` that ``freeBusy``
        shows free (with the schedule's buffers); one ``freeBusy`` call."""
        candidates = candidate_slots(self._schedule, start, end, duration_s=duration_s, now=self._clock.now())
        if not candidates:
            return []
        s = self._schedule
        busy = await self.busy(candidates[0][0] - s.buffer_before_s, candidates[-1][1] + s.buffer_after_s)
        return [
            Slot(start=a, end=b, calendar_id=self._calendar)
            for a, b in candidates
            if is_free(a, b, busy, buffer_before_s=s.buffer_before_s, buffer_after_s=s.buffer_after_s)
        ]

    async def _get(self, eid: str) -> Mapping[str, Any] | None:
        try:
            response = await self._client.request("GET", self._events_path(eid))
        except ProviderError as exc:
            if exc.status in (404, 410):
                return None
            raise
        event = json_body(response, self.provider)
        return None if event.get("status") == "cancelled" else event

    async def _delete(self, eid: str) -> None:
        try:
            await self._client.request("DELETE", self._events_path(eid), params={"sendUpdates": "none"})
        except ProviderError as exc:
            if exc.status not in (404, 410):
                raise

    async def book(self, slot: Slot, attendee: Attendee, *, title: str, description: str = "") -> Booking:
        """Check ``freeBusy``, insert the event with the lead as attendee (Google e-mails the
        invitation when ``send_updates`` allows), then make sure no earlier meeting holds the slot.
        Raises :class:`SlotTakenError`, :class:`ProviderError`, :class:`AuthError`."""
        s = self._schedule
        eid = event_id(self._calendar, slot.start, attendee)
        busy = await self.busy(slot.start - s.buffer_before_s, slot.end + s.buffer_after_s)
        if not is_free(
            slot.start, slot.end, busy, buffer_before_s=s.buffer_before_s, buffer_after_s=s.buffer_after_s
        ):
            mine = await self._get(eid)  # the same lead asking again after a success
            if mine is None:
                raise SlotTakenError("the slot is busy in Google Calendar")
            return self._booking(eid, mine, slot)
        body: dict[str, Any] = {
            "id": eid,
            "summary": title,
            "description": description,
            "start": {"dateTime": to_iso(slot.start, s.zone), "timeZone": s.timezone},
            "end": {"dateTime": to_iso(slot.end, s.zone), "timeZone": s.timezone},
            "extendedProperties": {"private": {"leadwarm": "1"}},
        }
        if attendee.email:
            body["attendees"] = [{"email": attendee.email, "displayName": attendee.name or ""}]
        try:
            response = await self._client.request(
                "POST", self._events_path(), params={"sendUpdates": self._send_updates}, json=body
            )
            event: Mapping[str, Any] | None = json_body(response, self.provider)
        except ProviderError as exc:
            if exc.status == 409:  # our own earlier attempt went through
                event = await self._get(eid)
                if event is None:
                    raise SlotTakenError("the event id was used and deleted; offer another slot") from exc
            elif exc.retryable or exc.status == 0:
                event = await self._recover(eid, exc)
            else:
                raise
        assert event is not None
        await self._settle_race(eid, event, slot)
        return self._booking(eid, event, slot)

    def _booking(self, eid: str, event: Mapping[str, Any], slot: Slot) -> Booking:
        return Booking(
            id=eid,
            provider=self.provider,
            start=slot.start,
            end=slot.end,
            calendar_id=self._calendar,
            url=event.get("htmlLink"),
            extra={"timezone": self._schedule.timezone},
        )

    async def _recover(self, eid: str, error: ProviderError) -> Mapping[str, Any]:
        """After a failed insert: the event if it was made; else raise ``error`` (after a
        best-effort delete when even the read fails)."""
        try:
            event = await self._get(eid)
        except ProviderError:
            with contextlib.suppress(ProviderError):
                await self._delete(eid)
            raise error from None
        if event is None:
            raise error
        return event

    async def _settle_race(self, eid: str, event: Mapping[str, Any], slot: Slot) -> None:
        response = await self._client.request(
            "GET",
            self._events_path(),
            params={"timeMin": to_iso(slot.start), "timeMax": to_iso(slot.end), "singleEvents": "true"},
        )
        ours = (str(event.get("created", "")), eid)
        for other in json_body(response, self.provider).get("items", []):
            if other.get("id") == eid or other.get("status") == "cancelled":
                continue
            if other.get("transparency") == "transparent":
                continue
            try:
                o_start = parse_iso(other["start"]["dateTime"])
                o_end = parse_iso(other["end"]["dateTime"])
            except (KeyError, TypeError, ValueError):
                continue  # all-day events are handled by freeBusy
            if (
                overlaps(slot.start, slot.end, o_start, o_end)
                and (str(other.get("created", "")), other["id"]) < ours
            ):
                await self._delete(eid)
                raise SlotTakenError("another meeting took the slot first")

    async def changed(self, booking: Booking) -> CalendarChange | None:
        """Sync: how the event now differs from ``booking`` (``cancelled`` when deleted or
        cancelled in Google, ``rescheduled`` with the new times when moved), ``None`` when it has
        not changed. Raises :class:`ProviderError`."""
        event = await self._get(booking.id)
        if event is None:
            return CalendarChange(provider=self.provider, kind="cancelled", booking_id=booking.id)
        try:
            start = parse_iso(event["start"]["dateTime"])
            end = parse_iso(event["end"]["dateTime"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError("google: the event has no dateTime") from exc
        if abs(start - booking.start) < 1 and abs(end - booking.end) < 1:
            return None
        return CalendarChange(
            provider=self.provider, kind="rescheduled", booking_id=booking.id, start=start, end=end
        )

    async def cancel(self, booking: Booking, *, reason: str = "") -> None:
        """Delete the event, telling attendees per ``send_updates`` (idempotent: 404/410 ignored)."""
        try:
            await self._client.request(
                "DELETE", self._events_path(booking.id), params={"sendUpdates": self._send_updates}
            )
        except ProviderError as exc:
            if exc.status not in (404, 410):
                raise
