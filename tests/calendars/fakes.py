"""Stateful fakes of Google Calendar, Cal.com and Calendly, written from their API references
(the request shapes named in each provider module's docstring). Each checks the requests it
gets (400 for a shape the vendor would refuse) and keeps bookings, so races and outages can be
played. Times in bodies are RFC 3339 / ISO 8601; state is kept as epoch seconds."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

from crm_sync.calendars.common import parse_iso, to_iso
from tests.calendars.support import FakeRequest

__all__ = ["CalComFake", "CalendlyFake", "GoogleFake"]


def _bad(message: str) -> tuple[int, Any]:
    return 400, {"error": {"code": 400, "message": message}}


@dataclass
class GoogleFake:
    """Calendar API v3: freeBusy, events insert/list/get/delete on any calendar id.
    ``external_busy`` adds busy intervals (other calendars); ``answer_lost`` makes the next
    insert succeed but answer 503 (the answer lost on the way back)."""

    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    external_busy: list[tuple[float, float]] = field(default_factory=list)
    answer_lost: int = 0
    _created: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def live(self) -> list[dict[str, Any]]:
        return [e for e in self.events.values() if e["status"] != "cancelled"]

    def __call__(self, req: FakeRequest) -> tuple[int, Any]:
        if req.headers.get("authorization") != "Bearer test-token":
            return 401, {"error": {"code": 401}}
        prefix = "/calendar/v3"
        if not req.path.startswith(prefix):
            return 404, {"error": {"code": 404}}
        path = req.path[len(prefix) :]
        if path == "/freeBusy" and req.method == "POST":
            body = req.body or {}
            try:
                lo, hi = parse_iso(body["timeMin"]), parse_iso(body["timeMax"])
                ids = [i["id"] for i in body["items"]]
            except (KeyError, TypeError, ValueError):
                return _bad("timeMin, timeMax and items[].id are required")
            busy = [(e["_start"], e["_end"]) for e in self.live() if e["_start"] < hi and lo < e["_end"]] + [
                b for b in self.external_busy if b[0] < hi and lo < b[1]
            ]
            busy.sort()
            return 200, {
                "kind": "calendar#freeBusy",
                "timeMin": body["timeMin"],
                "timeMax": body["timeMax"],
                "calendars": {
                    i: {"busy": [{"start": to_iso(a), "end": to_iso(b)} for a, b in busy]} for i in ids
                },
            }
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "calendars" or parts[2] != "events":
            return 404, {"error": {"code": 404}}
        event_id = parts[3] if len(parts) > 3 else None
        if req.method == "POST" and event_id is None:
            return self._insert(req)
        if req.method == "GET" and event_id is None:
            lo, hi = parse_iso(req.query["timeMin"]), parse_iso(req.query["timeMax"])
            items = [self._public(e) for e in self.live() if e["_start"] < hi and lo < e["_end"]]
            return 200, {"kind": "calendar#events", "items": items}
        event = self.events.get(event_id or "")
        if req.method == "GET":
            return (200, self._public(event)) if event else (404, {"error": {"code": 404}})
        if req.method == "DELETE":
            if event is None:
                return 404, {"error": {"code": 404}}
            if event["status"] == "cancelled":
                return 410, {"error": {"code": 410, "message": "Resource has been deleted"}}
            event["status"] = "cancelled"
            return 204, None
        return 405, None

    def _insert(self, req: FakeRequest) -> tuple[int, Any]:
        body = req.body or {}
        if req.query.get("sendUpdates") not in (None, "all", "externalOnly", "none"):
            return _bad("invalid sendUpdates")
        try:
            start = parse_iso(body["start"]["dateTime"])
            end = parse_iso(body["end"]["dateTime"])
            zone = body["start"].get("timeZone")
        except (KeyError, TypeError, ValueError):
            return _bad("start.dateTime and end.dateTime are required")
        event_id = body.get("id") or uuid.uuid4().hex
        if not (5 <= len(event_id) <= 1024 and set(event_id) <= set("abcdefghijklmnopqrstuv0123456789")):
            return _bad("Invalid resource id value.")
        if event_id in self.events:
            return 409, {"error": {"code": 409, "message": "The requested identifier already exists."}}
        for attendee in body.get("attendees", []):
            if "@" not in attendee.get("email", ""):
                return _bad("Invalid attendee email.")
        created = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=next(self._created))
        event = {
            **body,
            "id": event_id,
            "status": "confirmed",
            "created": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "htmlLink": f"https://calendar.example/event?eid={event_id}",
            "_start": start,
            "_end": end,
            "_zone": zone,
            "_send_updates": req.query.get("sendUpdates"),
        }
        self.events[event_id] = event
        if self.answer_lost:
            self.answer_lost -= 1
            return 503, {"error": {"code": 503, "message": "Backend Error"}}
        return 200, self._public(event)

    @staticmethod
    def _public(event: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in event.items() if not k.startswith("_")}


@dataclass
class CalComFake:
    """Cal.com API v2: ``/v2/slots`` of a 30-minute event type over ``open_slots`` (UTC starts),
    minus accepted bookings; ``/v2/bookings`` create/list/cancel, refusing a taken start with
    400 as Cal.com does. ``answer_lost`` as in :class:`GoogleFake`."""

    event_type_id: int = 42
    open_slots: list[float] = field(default_factory=list)
    bookings: dict[str, dict[str, Any]] = field(default_factory=dict)
    answer_lost: int = 0

    def accepted(self) -> list[dict[str, Any]]:
        return [b for b in self.bookings.values() if b["status"] == "accepted"]

    def __call__(self, req: FakeRequest) -> tuple[int, Any]:
        if req.headers.get("authorization") != "Bearer test-token":
            return 401, {"status": "error"}
        if req.path == "/v2/slots" and req.method == "GET":
            if req.headers.get("cal-api-version") != "2024-09-04":
                return _bad("cal-api-version 2024-09-04 is required for slots")
            try:
                if int(req.query["eventTypeId"]) != self.event_type_id:
                    return 404, {"status": "error"}
                lo, hi = parse_iso(req.query["start"]), parse_iso(req.query["end"])
            except (KeyError, ValueError):
                return _bad("eventTypeId, start and end are required")
            taken = {b["_start"] for b in self.accepted()}
            data: dict[str, list[dict[str, str]]] = {}
            for s in sorted(self.open_slots):
                if lo <= s and s + 1800 <= hi and s not in taken:
                    data.setdefault(to_iso(s)[:10], []).append({"start": to_iso(s)})
            return 200, {"status": "success", "data": data}
        if not req.path.startswith("/v2/bookings"):
            return 404, {"status": "error"}
        if req.headers.get("cal-api-version") != "2024-08-13":
            return _bad("cal-api-version 2024-08-13 is required for bookings")
        if req.path == "/v2/bookings" and req.method == "POST":
            body = req.body or {}
            try:
                start = parse_iso(body["start"])
                attendee = body["attendee"]
                assert int(body["eventTypeId"]) == self.event_type_id
                assert "@" in attendee["email"] and attendee["name"] and attendee["timeZone"]
            except (KeyError, ValueError, AssertionError, TypeError):
                return _bad("start, eventTypeId and attendee {name, email, timeZone} are required")
            if start not in self.open_slots or start in {b["_start"] for b in self.accepted()}:
                return 400, {
                    "status": "error",
                    "error": {"message": "User either already has booking at this time or is not available"},
                }
            uid = uuid.uuid4().hex[:22]
            booking = {
                "id": len(self.bookings) + 1,
                "uid": uid,
                "start": to_iso(start),
                "end": to_iso(start + 1800),
                "status": "accepted",
                "attendees": [attendee],
                "meetingUrl": f"https://cal.example/video/{uid}",
                "_start": start,
            }
            self.bookings[uid] = booking
            if self.answer_lost:
                self.answer_lost -= 1
                return 503, {"status": "error"}
            return 201, {"status": "success", "data": {k: v for k, v in booking.items() if k[0] != "_"}}
        if req.path == "/v2/bookings" and req.method == "GET":
            email = req.query.get("attendeeEmail")
            data_list = [
                {k: v for k, v in b.items() if k[0] != "_"}
                for b in self.bookings.values()
                if any(a["email"] == email for a in b["attendees"])
            ]
            return 200, {"status": "success", "data": data_list}
        parts = req.path.strip("/").split("/")
        if len(parts) == 3 and req.method == "GET":
            found = self.bookings.get(parts[2])
            if found is None:
                return 404, {"status": "error"}
            return 200, {"status": "success", "data": {k: v for k, v in found.items() if k[0] != "_"}}
        if len(parts) == 4 and parts[3] == "cancel" and req.method == "POST":
            booking = self.bookings.get(parts[2])
            if booking is None:
                return 404, {"status": "error"}
            booking["status"] = "cancelled"
            return 200, {"status": "success", "data": {"uid": parts[2], "status": "cancelled"}}
        return 404, {"status": "error"}


@dataclass
class CalendlyFake:
    """Calendly API v2: available times of one event type over ``open_slots``; ``/invitees``
    (refused with 403 when ``scheduling_api`` is off, as on plans without it); single-use
    scheduling links; cancellation."""

    event_type: str = "https://api.calendly.com/event_types/ET1"
    open_slots: list[float] = field(default_factory=list)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: list[dict[str, Any]] = field(default_factory=list)
    scheduling_api: bool = True
    answer_lost: int = 0

    def __call__(self, req: FakeRequest) -> tuple[int, Any]:
        if req.headers.get("authorization") != "Bearer test-token":
            return 401, {"title": "Unauthenticated"}
        active = {e["_start"] for e in self.events.values() if e["status"] == "active"}
        if req.path == "/event_type_available_times" and req.method == "GET":
            try:
                lo, hi = parse_iso(req.query["start_time"]), parse_iso(req.query["end_time"])
            except (KeyError, ValueError):
                return _bad("start_time and end_time are required")
            if req.query.get("event_type") != self.event_type:
                return 404, {"title": "Resource Not Found"}
            if hi - lo > 7 * 86400:
                return _bad("date range can be no greater than 1 week (7 days)")
            return 200, {
                "collection": [
                    {
                        "status": "available",
                        "start_time": to_iso(s),
                        "invitees_remaining": 1,
                        "scheduling_url": "https://calendly.example/x",
                    }
                    for s in sorted(self.open_slots)
                    if lo <= s < hi and s not in active
                ]
            }
        if req.path == "/invitees" and req.method == "POST":
            if not self.scheduling_api:
                return 403, {"title": "Permission Denied", "message": "This feature requires a paid plan"}
            body = req.body or {}
            try:
                start = parse_iso(body["start_time"])
                invitee = body["invitee"]
                assert (
                    body["event_type"] == self.event_type and "@" in invitee["email"] and invitee["timezone"]
                )
            except (KeyError, ValueError, AssertionError, TypeError):
                return _bad("event_type, start_time and invitee {name, email, timezone} are required")
            if start not in self.open_slots or start in active:
                return 400, {
                    "title": "Invalid Argument",
                    "message": "The selected time is no longer available",
                }
            event_uuid = uuid.uuid4().hex
            self.events[event_uuid] = {"status": "active", "_start": start, "invitee": invitee}
            event_uri = f"https://api.calendly.com/scheduled_events/{event_uuid}"
            if self.answer_lost:
                self.answer_lost -= 1
                return 503, {"title": "Service Unavailable"}
            return 201, {
                "resource": {
                    "uri": f"{event_uri}/invitees/{uuid.uuid4().hex}",
                    "event": event_uri,
                    "cancel_url": f"https://calendly.example/cancellations/{event_uuid}",
                    "reschedule_url": f"https://calendly.example/reschedulings/{event_uuid}",
                }
            }
        if req.path == "/scheduled_events" and req.method == "GET":
            if not (req.query.get("user") or req.query.get("organization")):
                return _bad("user or organization is required")
            lo, hi = parse_iso(req.query["min_start_time"]), parse_iso(req.query["max_start_time"])
            return 200, {
                "collection": [
                    {
                        "uri": f"https://api.calendly.com/scheduled_events/{k}",
                        "status": "active",
                        "start_time": to_iso(e["_start"]),
                    }
                    for k, e in self.events.items()
                    if e["status"] == "active"
                    and lo <= e["_start"] <= hi
                    and e["invitee"]["email"] == req.query.get("invitee_email")
                ]
            }
        if req.path == "/scheduling_links" and req.method == "POST":
            body = req.body or {}
            if body.get("owner") != self.event_type or body.get("owner_type") != "EventType":
                return _bad("owner and owner_type are required")
            if body.get("max_event_count") != 1:
                return _bad("max_event_count must be 1")
            link = {"booking_url": f"https://calendly.example/d/{uuid.uuid4().hex[:6]}", **body}
            self.links.append(link)
            return 201, {
                "resource": {
                    "booking_url": link["booking_url"],
                    "owner": body["owner"],
                    "owner_type": "EventType",
                }
            }
        parts = req.path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "scheduled_events" and parts[2] == "cancellation":
            event = self.events.get(parts[1])
            if event is None:
                return 404, {"title": "Resource Not Found"}
            if event["status"] == "canceled":
                return 403, {"title": "Permission Denied", "message": "Event is already canceled"}
            event["status"] = "canceled"
            return 201, {"resource": {"canceled_by": "host", "reason": (req.body or {}).get("reason")}}
        return 404, {"title": "Resource Not Found"}
