"""Calendly: available times of one event type; booking through the Scheduling API where the
plan allows it, else a single-use scheduling link whose result arrives by webhook.

Request shapes (Calendly API v2 reference): ``GET /event_type_available_times?event_type=&
start_time=&end_time=`` (a window of at most 7 days, in the future; answer ``collection[]`` of
``{"status": "available", "start_time", "invitees_remaining", "scheduling_url"}``);
``POST /invitees`` (Scheduling API, "Create Event Invitee": ``{"event_type", "start_time",
"invitee": {"name", "email", "timezone"}}``, answer ``resource`` with ``uri``, ``event``,
``cancel_url``, ``reschedule_url``; paid plans only); ``POST /scheduling_links``
(``{"max_event_count": 1, "owner": event_type, "owner_type": "EventType"}``, answer
``resource.booking_url``); ``POST /scheduled_events/{uuid}/cancellation`` (``{"reason"}``).

Webhooks ("Webhook Signatures"): header ``Calendly-Webhook-Signature: t=<unix>,v1=<hex>``, the
HMAC-SHA256 of ``"<t>.<raw body>"`` under the subscription's signing key; events older than 3
minutes are refused (replay). Payload: ``{"event": "invitee.created" | "invitee.canceled",
"created_at", "payload": {"email", "name", "status", "rescheduled", "cancellation", "tracking":
{"utm_content", ...}, "scheduled_event": {"uri", "start_time", "end_time"}}}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

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

__all__ = ["SIGNATURE_HEADER", "CalendlyCalendar", "parse_webhook", "sign_webhook", "verify_webhook"]

SIGNATURE_HEADER = "calendly-webhook-signature"
#: Calendly's availability endpoint covers 7 days at most per call.
_WINDOW_S = 7 * 86400
#: Webhook events older than this are refused (Calendly recommends 3 minutes).
TOLERANCE_S = 180


def _uuid(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


class CalendlyCalendar:
    """:class:`~crm_sync.base.CalendarProvider` for one Calendly event type (its URI).

    ``mode`` is ``api`` (the Scheduling API: a ``confirmed`` booking; falls back to a link when
    Calendly answers 403, a plan without it) or ``link`` (always a single-use link: a ``pending``
    booking whose ``url`` the lead opens; ``id`` is ``link:<ref>``, the ``ref`` Calendly echoes back
    in the webhook's ``tracking.utm_content``).
    """

    provider = "calendly"

    def __init__(
        self,
        client: ApiClient,
        *,
        event_type: str,
        mode: str = "api",
        clock: Clock | None = None,
    ) -> None:
        if mode not in ("api", "link"):
            raise IntegrationError(f"calendly: unknown mode {mode!r}")
        self._client = client
        self._event_type = event_type
        self._mode = mode
        self._clock = clock or SystemClock()

    async def free_slots(self, start: float, end: float, *, duration_s: int) -> list[Slot]:
        """Available start times in ``[start, end)`` (7-day calls, the range cut to 62 days, only
        the future); a slot ends ``duration_s`` after its start."""
        start = max(start, self._clock.now() + 1)
        end = min(end, start + MAX_RANGE_S)
        out: dict[float, Slot] = {}
        cursor = start
        while cursor < end:
            stop = min(end, cursor + _WINDOW_S)
            response = await self._client.request(
                "GET",
                "/event_type_available_times",
                params={
                    "event_type": self._event_type,
                    "start_time": to_iso(cursor),
                    "end_time": to_iso(stop),
                },
            )
            for item in json_body(response, self.provider).get("collection") or []:
                if item.get("status") != "available":
                    continue
                try:
                    at = parse_iso(str(item["start_time"]))
                except (KeyError, ValueError):
                    continue
                if start <= at and at + duration_s <= end:
                    out[at] = Slot(start=at, end=at + duration_s)
            cursor = stop
        return [out[k] for k in sorted(out)]

    async def book(self, slot: Slot, attendee: Attendee, *, title: str, description: str = "") -> Booking:
        """Book through the Scheduling API (``mode="api"``) or hand out a single-use link.

        API mode: a refusal (400/409/422) after which the time is no longer available raises
        :class:`SlotTakenError`; 403 (plan without the Scheduling API) falls back to a link; after
        a network error or 5xx the lead's events are read back (:meth:`_find`), so the booking
        either exists and is returned or the error is raised. Raises :class:`AttendeeDataError`
        without an email."""
        if not attendee.email:
            raise AttendeeDataError("calendly needs the lead's email address")
        if self._mode == "link":
            return await self._link(slot, attendee)
        body: dict[str, Any] = {
            "event_type": self._event_type,
            "start_time": to_iso(slot.start),
            "invitee": {
                "name": attendee.name or attendee.email,
                "email": attendee.email,
                "timezone": attendee.timezone,
            },
        }
        if attendee.phone:
            body["invitee"]["text_reminder_number"] = attendee.phone
        try:
            response = await self._client.request("POST", "/invitees", json=body)
            resource: Mapping[str, Any] = json_body(response, self.provider).get("resource") or {}
        except ProviderError as exc:
            if exc.status == 403:
                return await self._link(slot, attendee)
            if exc.status in (400, 409, 422):
                if not await still_free(self, slot):
                    raise SlotTakenError("the time is no longer available on Calendly") from exc
                raise
            if not (exc.retryable or exc.status == 0):
                raise
            found = await self._find(attendee, slot)
            if found is None:
                raise
            resource = {"event": found.get("uri")}
        event_uri = str(resource.get("event") or "")
        if not event_uri:
            raise ProviderError("calendly: the invitee has no event")
        return Booking(
            id=_uuid(event_uri),
            provider=self.provider,
            start=slot.start,
            end=slot.end,
            url=resource.get("reschedule_url"),
            extra={
                "invitee": resource.get("uri"),
                "event": event_uri,
                "cancel_url": resource.get("cancel_url"),
            },
        )

    async def _find(self, attendee: Attendee, slot: Slot) -> Mapping[str, Any] | None:
        """After a failed create: the lead's active event at ``slot`` (``GET /scheduled_events``
        by ``invitee_email``, scoped to the connection's ``owner`` user or ``organization``), or
        ``None``; without either URI in ``client.account`` nothing can be read back (``None``)."""
        scope = {}
        if self._client.account.get("owner"):
            scope["user"] = str(self._client.account["owner"])
        elif self._client.account.get("organization"):
            scope["organization"] = str(self._client.account["organization"])
        else:
            return None
        response = await self._client.request(
            "GET",
            "/scheduled_events",
            params={
                **scope,
                "invitee_email": attendee.email,
                "min_start_time": to_iso(slot.start - 1),
                "max_start_time": to_iso(slot.start + 1),
                "status": "active",
            },
        )
        for event in json_body(response, self.provider).get("collection") or []:
            try:
                if abs(parse_iso(str(event.get("start_time"))) - slot.start) < 1 and event.get("uri"):
                    return dict(event)
            except ValueError:
                continue
        return None

    async def _link(self, slot: Slot, attendee: Attendee) -> Booking:
        response = await self._client.request(
            "POST",
            "/scheduling_links",
            json={"max_event_count": 1, "owner": self._event_type, "owner_type": "EventType"},
        )
        url = (json_body(response, self.provider).get("resource") or {}).get("booking_url")
        if not url:
            raise ProviderError("calendly: the scheduling link has no booking_url")
        ref = secrets.token_hex(8)
        query = {"utm_source": "leadwarm", "utm_content": ref, "email": attendee.email or ""}
        if attendee.name:
            query["name"] = attendee.name
        return Booking(
            id=f"link:{ref}",
            provider=self.provider,
            start=slot.start,
            end=slot.end,
            status="pending",
            url=f"{url}{'&' if '?' in url else '?'}{urlencode(query)}",
            extra={"ref": ref},
        )

    async def cancel(self, booking: Booking, *, reason: str = "") -> None:
        """Cancel the scheduled event (idempotent: 404 ignored, and 403 when Calendly says it is
        already cancelled). A ``pending`` link booking has nothing to cancel remotely."""
        if booking.id.startswith("link:"):
            return
        try:
            await self._client.request(
                "POST",
                f"/scheduled_events/{quote(booking.id, safe='')}/cancellation",
                json={"reason": reason[:500]},
            )
        except ProviderError as exc:
            if exc.status == 404 or (exc.status == 403 and "cancel" in exc.body.lower()):
                return
            raise


def sign_webhook(raw_body: bytes, *, signing_key: str, timestamp: int) -> str:
    """The ``Calendly-Webhook-Signature`` value for ``raw_body`` (``t=<ts>,v1=<hex>``); tests use it."""
    mac = hmac.new(signing_key.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_webhook(
    headers: Mapping[str, str],
    raw_body: bytes,
    *,
    signing_key: str,
    now: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> None:
    """Check ``Calendly-Webhook-Signature`` over the raw bytes (never re-serialised JSON).

    ``headers`` are matched case-insensitively; ``now`` epoch seconds (default: system time).
    Raises :class:`WebhookSignatureError` when the header is missing or malformed, the timestamp
    is more than ``tolerance_s`` seconds away, or no ``v1`` matches (compared in constant time).
    """
    value = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), None)
    if not value or len(value) > 1000:
        raise WebhookSignatureError("calendly: missing or oversized signature header")
    parts: dict[str, list[str]] = {}
    for piece in value.split(","):
        key, sep, val = piece.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(val)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError) as exc:
        raise WebhookSignatureError("calendly: malformed signature header") from exc
    if not parts.get("v1"):
        raise WebhookSignatureError("calendly: malformed signature header")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise WebhookSignatureError("calendly: stale webhook (possible replay)")
    expected = sign_webhook(raw_body, signing_key=signing_key, timestamp=timestamp).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, candidate) for candidate in parts["v1"]):
        raise WebhookSignatureError("calendly: signature mismatch")


def parse_webhook(raw_body: bytes) -> CalendarChange | None:
    """Normalise a Calendly webhook body; ``None`` for events other than ``invitee.created`` and
    ``invitee.canceled``. ``booking_id`` is the scheduled event's uuid (as :meth:`CalendlyCalendar.book`
    returns), ``ref`` the ``utm_content`` of a LeadWarm link. A cancellation because the invitee
    rescheduled is ``rescheduled``. Raises :class:`IntegrationError` for a body that is not a
    Calendly event."""
    try:
        data = json.loads(raw_body)
        kind = data["event"]
        payload = data["payload"]
        event = payload.get("scheduled_event") or {}
        event_uri = str(event.get("uri") or payload.get("event") or "")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrationError("calendly: unreadable webhook body") from exc
    if kind not in ("invitee.created", "invitee.canceled"):
        return None
    if not event_uri:
        raise IntegrationError("calendly: webhook without a scheduled event")

    def when(value: Any) -> float | None:
        try:
            return parse_iso(str(value)) if value else None
        except ValueError:
            return None

    tracking = payload.get("tracking") or {}
    cancellation = payload.get("cancellation") or {}
    change_kind: Any = "booked"
    if kind == "invitee.canceled":
        change_kind = "rescheduled" if payload.get("rescheduled") else "cancelled"
    return CalendarChange(
        provider="calendly",
        kind=change_kind,
        booking_id=_uuid(event_uri),
        start=when(event.get("start_time")),
        end=when(event.get("end_time")),
        email=payload.get("email"),
        name=payload.get("name"),
        ref=tracking.get("utm_content") if tracking.get("utm_source") == "leadwarm" else None,
        reason=str(cancellation.get("reason") or "")[:500],
        occurred_at=when(data.get("created_at")),
        url=payload.get("reschedule_url"),
        extra={"invitee": payload.get("uri"), "event": event_uri, "new_invitee": payload.get("new_invitee")},
    )
