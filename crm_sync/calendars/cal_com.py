"""Cal.com, API v2: slots and bookings of one event type.

Request shapes (Cal.com API v2 reference): ``GET /v2/slots?eventTypeId=&start=&end=&timeZone=``
with ``cal-api-version: 2024-09-04`` answers ``{"status": "success", "data": {"YYYY-MM-DD":
[{"start": ISO}]}}``; ``POST /v2/bookings`` with ``cal-api-version: 2024-08-13`` and ``{"start"
(UTC ISO), "eventTypeId", "attendee": {"name", "email", "timeZone", "language"}, "metadata"}``
answers ``{"status": "success", "data": {"uid", "start", "end", "status", ...}}``;
``GET /v2/bookings?attendeeEmail=&afterStart=&beforeEnd=`` lists bookings;
``POST /v2/bookings/{uid}/cancel`` with ``{"cancellationReason"}`` cancels.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from crm_sync.base import ApiClient, Attendee, Booking, IntegrationError, ProviderError, Slot, SlotTakenError
from crm_sync.calendars.common import (
    MAX_RANGE_S,
    AttendeeDataError,
    CalendarChange,
    WebhookSignatureError,
    json_body,
    parse_iso,
    still_free,
    to_iso,
)
from kernel.clock import Clock, SystemClock

__all__ = [
    "BOOKINGS_VERSION",
    "SIGNATURE_HEADER",
    "SLOTS_VERSION",
    "CalComCalendar",
    "parse_webhook",
    "verify_webhook",
]

#: Cal.com's webhook signature header: HMAC-SHA256 (hex) of the raw body under the secret.
SIGNATURE_HEADER = "x-cal-signature-256"

SLOTS_VERSION = "2024-09-04"
BOOKINGS_VERSION = "2024-08-13"


class CalComCalendar:
    """:class:`~crm_sync.base.CalendarProvider` for one Cal.com event type (``event_type_id``).

    ``client`` is the connection's :class:`ApiClient` (base URL ``https://api.cal.com``); the
    ``cal-api-version`` header is set per endpoint, as Cal.com versions each one separately.
    """

    provider = "cal_com"

    def __init__(
        self,
        client: ApiClient,
        *,
        event_type_id: int,
        slots_version: str = SLOTS_VERSION,
        bookings_version: str = BOOKINGS_VERSION,
        clock: Clock | None = None,
    ) -> None:
        self._client = client
        self._event_type = int(event_type_id)
        self._slots_v = slots_version
        self._bookings_v = bookings_version
        self._clock = clock or SystemClock()

    async def free_slots(self, start: float, end: float, *, duration_s: int) -> list[Slot]:
        """Cal.com's slots in ``[start, end)`` (cut to 62 days); a slot ends ``duration_s`` after
        its start (or at the ``end`` Cal.com gives)."""
        start = max(start, self._clock.now())
        end = min(end, start + MAX_RANGE_S)
        if end <= start:
            return []
        response = await self._client.request(
            "GET",
            "/v2/slots",
            params={
                "eventTypeId": self._event_type,
                "start": to_iso(start),
                "end": to_iso(end),
                "timeZone": "UTC",
            },
            headers={"cal-api-version": self._slots_v},
        )
        data = json_body(response, self.provider).get("data") or {}
        out: dict[float, Slot] = {}
        for items in data.values() if isinstance(data, dict) else ():
            for item in items if isinstance(items, list) else ():
                try:
                    at = parse_iso(str(item["start"]))
                    until = parse_iso(str(item["end"])) if item.get("end") else at + duration_s
                except (KeyError, TypeError, ValueError):
                    continue
                if start <= at and until <= end:
                    out[at] = Slot(start=at, end=until)
        return [out[k] for k in sorted(out)]

    async def _find(self, attendee: Attendee, slot: Slot) -> Mapping[str, Any] | None:
        response = await self._client.request(
            "GET",
            "/v2/bookings",
            params={
                "attendeeEmail": attendee.email,
                "afterStart": to_iso(slot.start - 1),
                "beforeEnd": to_iso(slot.end + 1),
            },
            headers={"cal-api-version": self._bookings_v},
        )
        for item in json_body(response, self.provider).get("data") or []:
            try:
                same = abs(parse_iso(str(item.get("start"))) - slot.start) < 1
            except ValueError:
                continue
            if same and item.get("status") not in ("cancelled", "rejected"):
                return dict(item)
        return None

    async def book(self, slot: Slot, attendee: Attendee, *, title: str, description: str = "") -> Booking:
        """Create the booking. A refusal (400/409) after which the slot is gone from ``/v2/slots``
        raises :class:`SlotTakenError`; after a network error or 5xx the lead's bookings are read
        back, so the booking either exists and is returned or the error is raised. Raises
        :class:`AttendeeDataError` without an email (Cal.com requires one), :class:`ProviderError`."""
        if not attendee.email:
            raise AttendeeDataError("cal.com needs the lead's email address")
        body: dict[str, Any] = {
            "start": to_iso(slot.start).replace("Z", ".000Z"),
            "eventTypeId": self._event_type,
            "attendee": {
                "name": attendee.name or attendee.email,
                "email": attendee.email,
                "timeZone": attendee.timezone,
                "language": attendee.language,
            },
            "metadata": {"source": "leadwarm", "title": title[:200]},
        }
        if attendee.phone:
            body["attendee"]["phoneNumber"] = attendee.phone
        if description:
            body["bookingFieldsResponses"] = {"notes": description[:1000]}
        try:
            response = await self._client.request(
                "POST", "/v2/bookings", json=body, headers={"cal-api-version": self._bookings_v}
            )
            data: Mapping[str, Any] = json_body(response, self.provider).get("data") or {}
        except ProviderError as exc:
            if exc.status in (400, 409):
                if not await still_free(self, slot):
                    raise SlotTakenError("the slot is no longer free on Cal.com") from exc
                raise
            if not (exc.retryable or exc.status == 0):
                raise
            found = await self._find(attendee, slot)
            if found is None:
                raise
            data = found
        uid = data.get("uid")
        if not uid:
            raise ProviderError("cal.com: the booking has no uid")
        status = "pending" if data.get("status") == "pending" else "confirmed"
        return Booking(
            id=str(uid),
            provider=self.provider,
            start=slot.start,
            end=slot.end,
            status=status,
            url=data.get("meetingUrl") or data.get("location"),
            extra={"booking_id": data.get("id")},
        )

    async def changed(self, booking: Booking) -> CalendarChange | None:
        """Sync: the booking's change since ``booking`` (``GET /v2/bookings/{uid}``): ``cancelled``
        when cancelled, rejected or gone (``rescheduled`` when Cal.com marks it so: the new booking
        has another uid), ``rescheduled`` with new times when moved, else ``None``."""
        try:
            response = await self._client.request(
                "GET",
                f"/v2/bookings/{quote(booking.id, safe='')}",
                headers={"cal-api-version": self._bookings_v},
            )
        except ProviderError as exc:
            if exc.status == 404:
                return CalendarChange(provider=self.provider, kind="cancelled", booking_id=booking.id)
            raise
        data = json_body(response, self.provider).get("data") or {}
        if data.get("status") in ("cancelled", "rejected"):
            kind = "rescheduled" if data.get("rescheduled") else "cancelled"
            return CalendarChange(
                provider=self.provider,
                kind=kind,  # type: ignore[arg-type]
                booking_id=booking.id,
                reason=str(data.get("cancellationReason") or "")[:500],
            )
        try:
            start = parse_iso(str(data["start"]))
            end = parse_iso(str(data["end"]))
        except (KeyError, ValueError) as exc:
            raise ProviderError("cal.com: unreadable booking") from exc
        if abs(start - booking.start) < 1 and abs(end - booking.end) < 1:
            return None
        return CalendarChange(
            provider=self.provider, kind="rescheduled", booking_id=booking.id, start=start, end=end
        )

    async def cancel(self, booking: Booking, *, reason: str = "") -> None:
        """Cancel the booking (idempotent: 404 and 410 ignored)."""
        try:
            await self._client.request(
                "POST",
                f"/v2/bookings/{quote(booking.id, safe='')}/cancel",
                json={"cancellationReason": reason[:500] or "cancelled by the lead"},
                headers={"cal-api-version": self._bookings_v},
            )
        except ProviderError as exc:
            if exc.status not in (404, 410):
                raise


def verify_webhook(headers: Mapping[str, str], raw_body: bytes, *, secret: str) -> None:
    """Check ``X-Cal-Signature-256`` (hex HMAC-SHA256 of the raw body under the webhook's secret,
    Cal.com docs "Webhooks", "Verifying the authenticity"), in constant time. Cal.com signs no
    timestamp, so replays are stopped by the caller's dedupe on the booking uid and trigger.
    Raises :class:`WebhookSignatureError`."""
    value = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), "")
    if not value or len(value) > 200:
        raise WebhookSignatureError("cal.com: missing or oversized signature header")
    expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, value.strip().lower()):
        raise WebhookSignatureError("cal.com: signature mismatch")


def parse_webhook(raw_body: bytes) -> CalendarChange | None:
    """Normalise a Cal.com webhook (``{"triggerEvent", "createdAt", "payload": {"uid",
    "startTime", "endTime", "attendees": [{"email", "name"}], "cancellationReason",
    "rescheduleUid"}}``): ``BOOKING_CREATED`` -> ``booked``, ``BOOKING_CANCELLED`` and
    ``BOOKING_REJECTED`` -> ``cancelled``, ``BOOKING_RESCHEDULED`` -> ``rescheduled`` of the old
    uid (``rescheduleUid`` when given) with the new times and ``extra["new_uid"]``; ``None`` for
    other triggers. Raises :class:`IntegrationError` for an unreadable body."""
    try:
        data = json.loads(raw_body)
        trigger = str(data["triggerEvent"])
        payload = data.get("payload") or {}
        uid = str(payload["uid"]) if trigger != "PING" else ""
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrationError("cal.com: unreadable webhook body") from exc
    kinds = {
        "BOOKING_CREATED": "booked",
        "BOOKING_CANCELLED": "cancelled",
        "BOOKING_REJECTED": "cancelled",
        "BOOKING_RESCHEDULED": "rescheduled",
    }
    if trigger not in kinds:
        return None

    def when(value: object) -> float | None:
        try:
            return parse_iso(str(value)) if value else None
        except ValueError:
            return None

    attendees = payload.get("attendees") or [{}]
    first = attendees[0] if isinstance(attendees[0], dict) else {}
    old = payload.get("rescheduleUid") if trigger == "BOOKING_RESCHEDULED" else None
    return CalendarChange(
        provider="cal_com",
        kind=kinds[trigger],  # type: ignore[arg-type]
        booking_id=str(old or uid),
        start=when(payload.get("startTime")),
        end=when(payload.get("endTime")),
        email=first.get("email"),
        name=first.get("name"),
        reason=str(payload.get("cancellationReason") or "")[:500],
        occurred_at=when(data.get("createdAt")),
        extra={"new_uid": uid} if old else {},
    )
