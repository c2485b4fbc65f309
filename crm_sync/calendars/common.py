"""What the calendar providers share: working hours, candidate slots, busy-time checks, the
normalised change event, and the package's errors.

Times are floats, seconds since the Unix epoch (UTC); wall-clock rules (business hours, holidays,
the daily maximum) are read in the calendar's IANA time zone, so that 09:00 stays 09:00 local on
both sides of a daylight-saving change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm_sync.base import CalendarProvider, IntegrationError, ProviderError, Slot

__all__ = [
    "MAX_RANGE_S",
    "MIN_STEP_S",
    "AttendeeDataError",
    "CalendarChange",
    "CalendarConfigError",
    "Schedule",
    "WebhookSignatureError",
    "candidate_slots",
    "load_zone",
    "overlaps",
    "parse_iso",
    "still_free",
    "to_iso",
]

#: Longest window one availability query covers (62 days); longer windows are cut to it.
MAX_RANGE_S = 62 * 86400
#: Smallest step between candidate slot starts (5 minutes), so a day has at most 288 candidates.
MIN_STEP_S = 300


class CalendarConfigError(IntegrationError):
    """A calendar's settings are invalid (unknown time zone, malformed hours, bad duration)."""


class AttendeeDataError(IntegrationError):
    """The provider needs something of the lead that is not known (Cal.com and Calendly need an
    email address): ask the lead for it, or book on another calendar."""


class WebhookSignatureError(IntegrationError):
    """A calendar webhook's signature is missing, malformed, stale or wrong."""


def load_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; raises :class:`CalendarConfigError` for an unknown or malformed name."""
    if not isinstance(name, str) or not name or len(name) > 64:
        raise CalendarConfigError(f"invalid time zone: {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarConfigError(f"unknown time zone: {name!r}") from exc


def parse_iso(value: str) -> float:
    """An ISO 8601 date-time with an offset or ``Z`` -> epoch seconds; raises :class:`ValueError`
    when the text has no offset or is not a date-time."""
    when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"date-time without an offset: {value!r}")
    return when.timestamp()


def to_iso(ts: float, zone: dt.tzinfo = dt.UTC) -> str:
    """Epoch seconds -> ISO 8601 with offset, to the second (``2026-12-08T14:00:00+01:00``); UTC
    gives a ``Z`` suffix."""
    text = dt.datetime.fromtimestamp(ts, zone).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z") if zone is dt.UTC else text


def overlaps(a_start: float, a_end: float, b_start: float, b_end: float) -> bool:
    """Whether the half-open intervals ``[a_start, a_end)`` and ``[b_start, b_end)`` intersect."""
    return a_start < b_end and b_start < a_end


def _parse_hm(text: str) -> dt.time:
    try:
        hours, minutes = text.split(":")
        if hours == "24" and minutes == "00":
            return dt.time.max
        return dt.time(int(hours), int(minutes))
    except (ValueError, AttributeError) as exc:
        raise CalendarConfigError(f"invalid time of day {text!r} (expected HH:MM)") from exc


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a salesperson (or a calendar) takes meetings.

    ``timezone`` is the calendar's IANA zone. ``hours`` maps an ISO weekday (1 = Monday ... 7 =
    Sunday) to ``[("09:00", "12:00"), ("14:00", "18:00")]`` local wall-clock intervals; a missing
    day is closed. ``holidays`` are local dates (``"2026-12-25"``) with no meeting. ``buffer_before_s``
    / ``buffer_after_s`` keep free time before and after every meeting (a new meeting needs
    ``buffer_before_s`` free before it and ``buffer_after_s`` free after it, and must not fall into
    another meeting's buffers; at most 12 hours each). ``min_notice_s`` is the shortest delay
    between now and a meeting's start; ``max_per_day`` caps the meetings of one local day
    (``None``: no cap); ``step_s`` is the
    grid of slot starts (``None``: the meeting's duration), at least :data:`MIN_STEP_S`.
    """

    timezone: str = "UTC"
    hours: Mapping[int, Sequence[tuple[str, str]]] = field(
        default_factory=lambda: {d: (("09:00", "17:00"),) for d in range(1, 6)}
    )
    holidays: frozenset[str] = frozenset()
    buffer_before_s: int = 0
    buffer_after_s: int = 0
    min_notice_s: int = 0
    max_per_day: int | None = None
    step_s: int | None = None

    def __post_init__(self) -> None:
        load_zone(self.timezone)
        for day, intervals in self.hours.items():
            if day not in range(1, 8):
                raise CalendarConfigError(f"weekday {day!r} must be 1 (Monday) .. 7 (Sunday)")
            for open_, close in intervals:
                if _parse_hm(open_) >= _parse_hm(close):
                    raise CalendarConfigError(f"interval {open_}-{close} of weekday {day} is empty")
        for value in (self.buffer_before_s, self.buffer_after_s, self.min_notice_s):
            if value < 0:
                raise CalendarConfigError("buffers and minimum notice must be >= 0 seconds")
        if max(self.buffer_before_s, self.buffer_after_s) > 12 * 3600:
            raise CalendarConfigError("buffers must be at most 12 hours")
        if self.max_per_day is not None and self.max_per_day < 0:
            raise CalendarConfigError("max_per_day must be >= 0")
        if self.step_s is not None and self.step_s < MIN_STEP_S:
            raise CalendarConfigError(f"step_s must be >= {MIN_STEP_S} seconds")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schedule:
        """Build from settings JSON: ``{"timezone", "hours": {"1": [["09:00", "12:00"]]}, "holidays",
        "buffer_before_min", "buffer_after_min", "min_notice_min", "max_per_day", "step_min"}``
        (minutes in settings, seconds here). Raises :class:`CalendarConfigError`."""
        try:
            hours = {
                int(k): tuple((str(a), str(b)) for a, b in v) for k, v in dict(data.get("hours", {})).items()
            }
            return cls(
                timezone=str(data.get("timezone", "UTC")),
                hours=hours if "hours" in data else cls().hours,
                holidays=frozenset(str(d) for d in data.get("holidays", ())),
                buffer_before_s=int(data.get("buffer_before_min", 0)) * 60,
                buffer_after_s=int(data.get("buffer_after_min", 0)) * 60,
                min_notice_s=int(data.get("min_notice_min", 0)) * 60,
                max_per_day=None if data.get("max_per_day") is None else int(data["max_per_day"]),
                step_s=None if data.get("step_min") is None else int(data["step_min"]) * 60,
            )
        except (TypeError, ValueError) as exc:
            raise CalendarConfigError(f"invalid calendar schedule: {exc}") from exc

    @property
    def zone(self) -> ZoneInfo:
        """The calendar's zone."""
        return load_zone(self.timezone)

    def local_day(self, ts: float) -> str:
        """The calendar-local date of ``ts`` (``"2026-12-08"``)."""
        return dt.datetime.fromtimestamp(ts, self.zone).date().isoformat()


def _local(day: dt.date, at: dt.time, zone: ZoneInfo) -> float | None:
    """Epoch seconds of local ``day at``; ``None`` when that wall-clock time does not exist (the
    hour skipped when clocks go forward)."""
    if at == dt.time.max:
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), zone).timestamp()
    naive = dt.datetime.combine(day, at)
    ts = naive.replace(tzinfo=zone).timestamp()
    if dt.datetime.fromtimestamp(ts, zone).replace(tzinfo=None) != naive:
        return None
    return ts


def candidate_slots(
    schedule: Schedule, start: float, end: float, *, duration_s: int, now: float
) -> list[tuple[float, float]]:
    """Slot intervals ``(start, end)`` of ``duration_s`` seconds inside the schedule's business hours,
    between ``max(start, now + min_notice)`` and ``end``, outside holidays, on the schedule's grid.

    Business hours are wall-clock times of the calendar's zone, converted day by day, so a
    daylight-saving change moves the UTC times, not the local ones; a slot whose local start does
    not exist that day (clocks going forward) is skipped. Busy times and the daily maximum are not
    applied here. The window is cut to :data:`MAX_RANGE_S`. Raises :class:`CalendarConfigError`
    for a duration under :data:`MIN_STEP_S` or over a day.
    """
    if not MIN_STEP_S <= duration_s <= 86400:
        raise CalendarConfigError(f"duration_s must be {MIN_STEP_S}..86400 seconds, not {duration_s}")
    zone = schedule.zone
    start = max(start, now + schedule.min_notice_s)
    end = min(end, start + MAX_RANGE_S)
    if end <= start:
        return []
    step = schedule.step_s or duration_s
    day = dt.datetime.fromtimestamp(start, zone).date() - dt.timedelta(days=1)
    last = dt.datetime.fromtimestamp(end, zone).date()
    out: list[tuple[float, float]] = []
    while day <= last:
        if day.isoformat() not in schedule.holidays:
            for open_, close in schedule.hours.get(day.isoweekday(), ()):
                open_t, close_t = _parse_hm(open_), _parse_hm(close)
                close_ts = _local(day, close_t, zone)
                # walk the wall-clock grid so that slot labels stay on the local grid after a change
                minute = open_t.hour * 60 + open_t.minute
                close_min = 24 * 60 if close_t == dt.time.max else close_t.hour * 60 + close_t.minute
                while minute * 60 + duration_s <= close_min * 60:
                    slot_start = _local(day, dt.time(minute // 60, minute % 60), zone)
                    minute += step // 60
                    if slot_start is None:
                        continue
                    slot_end = slot_start + duration_s
                    if close_ts is not None and slot_end > close_ts:
                        continue
                    if slot_start >= start and slot_end <= end:
                        out.append((slot_start, slot_end))
        day += dt.timedelta(days=1)
    out.sort()
    return out


def is_free(
    slot_start: float,
    slot_end: float,
    busy: Iterable[tuple[float, float]],
    *,
    buffer_before_s: int = 0,
    buffer_after_s: int = 0,
) -> bool:
    """Whether ``[slot_start, slot_end)`` with its buffers misses every busy interval, and no busy
    interval's buffers reach into the slot (see :class:`Schedule`)."""
    for b_start, b_end in busy:
        if overlaps(slot_start - buffer_before_s, slot_end + buffer_after_s, b_start, b_end):
            return False
        if overlaps(slot_start, slot_end, b_start - buffer_before_s, b_end + buffer_after_s):
            return False
    return True


__all__ += ["is_free"]

ChangeKind = Literal["booked", "cancelled", "rescheduled"]


@dataclass(frozen=True, slots=True)
class CalendarChange:
    """A change made outside the conversation, normalised from a provider's webhook or sync.

    ``kind`` is ``booked``, ``cancelled`` or ``rescheduled``: the meeting moved; ``start``/``end``
    are the new times when the provider keeps the id (Google, GoHighLevel); Calendly cancels the
    old invitee as ``rescheduled`` and a ``booked`` change for the new time follows.
    ``booking_id`` is the provider's id (the same as :attr:`Booking.id`); ``ref`` is the reference
    LeadWarm put on a scheduling link (so a ``pending`` booking finds its lead); ``start``/``end``
    epoch seconds when known; ``email`` and ``name`` of the invitee; ``occurred_at`` epoch
    seconds; ``reason`` a cancellation reason."""

    provider: str
    kind: ChangeKind
    booking_id: str
    start: float | None = None
    end: float | None = None
    email: str | None = None
    name: str | None = None
    ref: str | None = None
    reason: str = ""
    occurred_at: float | None = None
    url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def json_body(response: Any, provider: str) -> Any:
    """The JSON of an ``httpx.Response``; a body that is not JSON raises :class:`ProviderError`."""
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderError(f"{provider}: the answer is not JSON", status=response.status_code) from exc


__all__ += ["json_body"]


async def still_free(provider: CalendarProvider, slot: Slot) -> bool:
    """Whether ``provider`` still offers ``slot`` (its start, to the second): asked after a booking
    was refused, to tell a slot taken meanwhile from any other refusal."""
    free = await provider.free_slots(slot.start - 1, slot.end + 1, duration_s=int(slot.end - slot.start))
    return any(abs(s.start - slot.start) < 1 for s in free)
