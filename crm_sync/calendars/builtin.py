"""The built-in calendar, LeadWarm's embedded default: salespeople's working hours, holidays,
buffers, minimum notice and a daily maximum, with bookings kept in a :class:`BookingLedger`.

Several salespeople may share one built-in calendar: free slots are the union of theirs, and a
slot offered without a salesperson goes to the free one with the fewest meetings booked on that
day (then the one least recently booked, then the order given): round-robin assignment that
spreads load without a shared counter.

No double booking: :meth:`BookingLedger.reserve` checks and writes in one atomic step (a store
transaction in ``app.booking.ledger``, a lock in :class:`InMemoryLedger`), with the conflict rule
(:func:`conflict`) passed in as a pure function, so two leads racing for the last slot cannot
both get it: the loser gets :class:`~crm_sync.base.SlotTakenError`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from crm_sync.base import Attendee, Booking, IntegrationError, Slot, SlotTakenError
from crm_sync.calendars.common import CalendarConfigError, Schedule, candidate_slots, is_free
from kernel.clock import Clock, SystemClock

__all__ = [
    "BookingLedger",
    "BuiltinCalendar",
    "ConflictCheck",
    "InMemoryLedger",
    "LedgerEntry",
    "Salesperson",
    "conflict",
]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One meeting kept by the built-in calendar.

    ``id`` is the booking id (``bk_`` + 16 hex); ``calendar_id`` the salesperson's calendar;
    ``day`` the calendar-local date of ``start`` (``"2026-12-08"``), the unit the ledger groups
    by; ``start``/``end``/``created_at`` epoch seconds; ``status`` ``confirmed`` or ``cancelled``;
    ``attendee`` the lead (``name``, ``email``, ``phone``, ``timezone``, ``language``)."""

    id: str
    calendar_id: str
    day: str
    start: float
    end: float
    status: str = "confirmed"
    title: str = ""
    description: str = ""
    attendee: Mapping[str, Any] = field(default_factory=dict)
    created_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-compatible form (what a store keeps)."""
        return {
            "id": self.id,
            "calendar_id": self.calendar_id,
            "day": self.day,
            "start": self.start,
            "end": self.end,
            "status": self.status,
            "title": self.title,
            "description": self.description,
            "attendee": dict(self.attendee),
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LedgerEntry:
        """Inverse of :meth:`as_dict`."""
        return cls(
            id=str(data["id"]),
            calendar_id=str(data["calendar_id"]),
            day=str(data["day"]),
            start=float(data["start"]),
            end=float(data["end"]),
            status=str(data.get("status", "confirmed")),
            title=str(data.get("title", "")),
            description=str(data.get("description", "")),
            attendee=dict(data.get("attendee") or {}),
            created_at=float(data.get("created_at", 0.0)),
        )


#: The rule :meth:`BookingLedger.reserve` applies inside its atomic step: given the confirmed
#: entries of the days it read, raise :class:`SlotTakenError` when the new entry may not be added.
#: Pure (no I/O): a store may call it again when it retries the transaction.
ConflictCheck = Callable[[Sequence[LedgerEntry]], None]


class BookingLedger(Protocol):
    """Where the built-in calendar keeps its meetings (one tenant's)."""

    async def list_days(self, calendar_id: str, days: Sequence[str]) -> list[LedgerEntry]:
        """Confirmed entries of ``calendar_id`` listed on the given calendar-local days (each
        once), by start."""
        ...

    async def reserve(self, entry: LedgerEntry, *, days: Sequence[str], check: ConflictCheck) -> LedgerEntry:
        """Atomically: read the confirmed entries of ``entry.calendar_id`` listed on ``days`` (the
        local days that the entry's time, buffers included, touches), call ``check`` on them, and
        add ``entry``, listed on each of ``days``. An entry listed on the days its buffered time
        touches is always seen by a conflicting one. Raises :class:`SlotTakenError` (from
        ``check``, or when another writer took the same start)."""
        ...

    async def get(self, booking_id: str) -> LedgerEntry | None:
        """The entry (confirmed or cancelled), or ``None``."""
        ...

    async def cancel(self, booking_id: str, *, reason: str = "") -> LedgerEntry | None:
        """Mark the entry cancelled and free its time; idempotent; ``None`` when unknown."""
        ...


class InMemoryLedger:
    """A :class:`BookingLedger` in process memory, atomic under one :class:`asyncio.Lock`: for
    the simulator, playbook tests and a single-process demo. Not shared between processes."""

    def __init__(self) -> None:
        self._entries: dict[str, LedgerEntry] = {}
        self._days: dict[str, tuple[str, ...]] = {}
        self._lock = asyncio.Lock()

    async def list_days(self, calendar_id: str, days: Sequence[str]) -> list[LedgerEntry]:
        """See :class:`BookingLedger`."""
        wanted = set(days)
        return sorted(
            (
                e
                for e in self._entries.values()
                if e.calendar_id == calendar_id
                and wanted & set(self._days.get(e.id, (e.day,)))
                and e.status == "confirmed"
            ),
            key=lambda e: e.start,
        )

    async def reserve(self, entry: LedgerEntry, *, days: Sequence[str], check: ConflictCheck) -> LedgerEntry:
        """See :class:`BookingLedger`."""
        async with self._lock:
            check(await self.list_days(entry.calendar_id, days))
            self._entries[entry.id] = entry
            self._days[entry.id] = (entry.day, *days)
            return entry

    async def get(self, booking_id: str) -> LedgerEntry | None:
        """See :class:`BookingLedger`."""
        return self._entries.get(booking_id)

    async def cancel(self, booking_id: str, *, reason: str = "") -> LedgerEntry | None:
        """See :class:`BookingLedger`."""
        async with self._lock:
            entry = self._entries.get(booking_id)
            if entry is None:
                return None
            entry = replace(entry, status="cancelled")
            self._entries[booking_id] = entry
            return entry


@dataclass(frozen=True, slots=True)
class Salesperson:
    """One salesperson's calendar: ``calendar_id`` (unique within the tenant, ``[A-Za-z0-9_.-]``),
    display ``name`` and ``email`` (the ICS organiser), and their :class:`Schedule`."""

    calendar_id: str
    schedule: Schedule
    name: str = ""
    email: str | None = None


def conflict(*, start: float, end: float, schedule: Schedule) -> ConflictCheck:
    """The conflict rule for a new meeting ``[start, end)`` under ``schedule``: it must keep the
    buffers against every confirmed entry, and the day must be under ``max_per_day``."""

    def check(existing: Sequence[LedgerEntry]) -> None:
        day = schedule.local_day(start)
        busy = [(e.start, e.end) for e in existing if e.status == "confirmed"]
        if not is_free(
            start, end, busy, buffer_before_s=schedule.buffer_before_s, buffer_after_s=schedule.buffer_after_s
        ):
            raise SlotTakenError("the slot is no longer free")
        if schedule.max_per_day is not None:
            same_day = sum(1 for e in existing if e.day == day and e.status == "confirmed")
            if same_day >= schedule.max_per_day:
                raise SlotTakenError("the day is fully booked")

    return check


def _touched_days(schedule: Schedule, start: float, end: float) -> list[str]:
    """Calendar-local days that ``[start - buffer_before, end + buffer_after)`` touches."""
    first = dt.date.fromisoformat(schedule.local_day(start - schedule.buffer_before_s))
    last = dt.date.fromisoformat(schedule.local_day(end + schedule.buffer_after_s - 0.001))
    days: list[str] = []
    while first <= last and len(days) < 3:
        days.append(first.isoformat())
        first += dt.timedelta(days=1)
    return days


class BuiltinCalendar:
    """:class:`~crm_sync.base.CalendarProvider` over a :class:`BookingLedger`.

    ``salespeople`` share the calendar (at least one); ``clock`` gives "now" for the minimum notice;
    ``busy`` optionally adds outside busy times per salesperson (an async function
    ``(calendar_id, start, end) -> [(start, end)]``, for example a connected Google calendar).
    Raises :class:`CalendarConfigError` for an empty or duplicated list of salespeople.
    """

    provider = "builtin"

    def __init__(
        self,
        ledger: BookingLedger,
        *,
        salespeople: Sequence[Salesperson],
        clock: Clock | None = None,
        busy: Callable[[str, float, float], Awaitable[list[tuple[float, float]]]] | None = None,
    ) -> None:
        if not salespeople:
            raise CalendarConfigError("a built-in calendar needs at least one salesperson")
        ids = [s.calendar_id for s in salespeople]
        if len(set(ids)) != len(ids):
            raise CalendarConfigError("salespeople's calendar ids must be unique")
        self._ledger = ledger
        self._people = {s.calendar_id: s for s in salespeople}
        self._order = ids
        self._clock = clock or SystemClock()
        self._busy = busy

    @property
    def salespeople(self) -> list[Salesperson]:
        """The salespeople, in the order given."""
        return [self._people[i] for i in self._order]

    async def _free_for(self, person: Salesperson, start: float, end: float, duration_s: int) -> list[Slot]:
        schedule = person.schedule
        candidates = candidate_slots(schedule, start, end, duration_s=duration_s, now=self._clock.now())
        if not candidates:
            return []
        first = schedule.local_day(candidates[0][0])
        last = schedule.local_day(candidates[-1][0])
        days: list[str] = []
        d, stop = dt.date.fromisoformat(first) - dt.timedelta(days=1), dt.date.fromisoformat(last)
        while d <= stop + dt.timedelta(days=1):
            days.append(d.isoformat())
            d += dt.timedelta(days=1)
        entries = await self._ledger.list_days(person.calendar_id, days)
        busy = [(e.start, e.end) for e in entries]
        if self._busy is not None:
            busy += await self._busy(person.calendar_id, candidates[0][0] - 86400, candidates[-1][1] + 86400)
        per_day: dict[str, int] = {}
        for e in entries:
            per_day[e.day] = per_day.get(e.day, 0) + 1
        out = []
        cap = schedule.max_per_day
        before, after = schedule.buffer_before_s, schedule.buffer_after_s
        for s_start, s_end in candidates:
            if cap is not None and per_day.get(schedule.local_day(s_start), 0) >= cap:
                continue
            if is_free(s_start, s_end, busy, buffer_before_s=before, buffer_after_s=after):
                out.append(Slot(start=s_start, end=s_end, calendar_id=person.calendar_id))
        return out

    async def free_slots(self, start: float, end: float, *, duration_s: int) -> list[Slot]:
        """Free slots of ``duration_s`` seconds in ``[start, end)``, sorted by start. With several
        salespeople, one slot per start time: its ``calendar_id`` names the salesperson when only
        one is free then, and is ``None`` when several are (:meth:`book` then assigns one)."""
        by_start: dict[tuple[float, float], list[str]] = {}
        for person in self.salespeople:
            for slot in await self._free_for(person, start, end, duration_s):
                by_start.setdefault((slot.start, slot.end), []).append(person.calendar_id)
        return [
            Slot(start=s, end=e, calendar_id=ids[0] if len(ids) == 1 else None)
            for (s, e), ids in sorted(by_start.items())
        ]

    async def _ranked(self, slot: Slot) -> list[Salesperson]:
        """Salespeople who could take ``slot``, fewest meetings that day first, then least
        recently booked, then the configured order."""
        ranked: list[tuple[int, float, int, Salesperson]] = []
        for index, person in enumerate(self.salespeople):
            if slot.calendar_id is not None and person.calendar_id != slot.calendar_id:
                continue
            day = person.schedule.local_day(slot.start)
            entries = await self._ledger.list_days(person.calendar_id, [day])
            same_day = [e for e in entries if e.day == day]
            latest = max((e.created_at for e in entries), default=0.0)
            ranked.append((len(same_day), latest, index, person))
        ranked.sort(key=lambda r: r[:3])
        return [r[3] for r in ranked]

    def _fits(self, person: Salesperson, slot: Slot) -> bool:
        schedule = person.schedule
        duration = round(slot.end - slot.start)
        try:
            candidates = candidate_slots(
                schedule, slot.start, slot.end, duration_s=duration, now=self._clock.now()
            )
        except CalendarConfigError:
            return False
        return (slot.start, slot.end) in candidates

    async def book(self, slot: Slot, attendee: Attendee, *, title: str, description: str = "") -> Booking:
        """Book ``slot`` for ``attendee`` on its salesperson (``slot.calendar_id``) or, when it is
        ``None``, on the first free salesperson in round-robin order. The slot must still be on the
        grid of working hours, past the minimum notice, and free. Raises :class:`SlotTakenError`
        when no salesperson can take it any more, :class:`CalendarConfigError` for an unknown
        ``calendar_id``."""
        if slot.calendar_id is not None and slot.calendar_id not in self._people:
            raise CalendarConfigError(f"unknown calendar id {slot.calendar_id!r}")
        last_error: IntegrationError = SlotTakenError("the slot is outside working hours or too soon")
        for person in await self._ranked(slot):
            if not self._fits(person, slot):
                continue
            schedule = person.schedule
            day = schedule.local_day(slot.start)
            if self._busy is not None:
                outside = await self._busy(person.calendar_id, slot.start - 86400, slot.end + 86400)
                if not is_free(
                    slot.start,
                    slot.end,
                    outside,
                    buffer_before_s=schedule.buffer_before_s,
                    buffer_after_s=schedule.buffer_after_s,
                ):
                    last_error = SlotTakenError("the slot is busy in the salesperson's calendar")
                    continue
            entry = LedgerEntry(
                id="bk_" + secrets.token_hex(8),
                calendar_id=person.calendar_id,
                day=day,
                start=slot.start,
                end=slot.end,
                title=title,
                description=description,
                attendee={
                    "name": attendee.name,
                    "email": attendee.email,
                    "phone": attendee.phone,
                    "timezone": attendee.timezone,
                    "language": attendee.language,
                },
                created_at=self._clock.now(),
            )
            try:
                saved = await self._ledger.reserve(
                    entry,
                    days=_touched_days(schedule, slot.start, slot.end),
                    check=conflict(start=slot.start, end=slot.end, schedule=schedule),
                )
            except SlotTakenError as exc:
                last_error = exc
                continue
            return _booking(saved, person)
        raise last_error

    async def cancel(self, booking: Booking, *, reason: str = "") -> None:
        """Cancel ``booking`` and free its time (idempotent; an unknown id is ignored)."""
        await self._ledger.cancel(booking.id, reason=reason)

    async def get(self, booking_id: str) -> Booking | None:
        """The booking as the ledger knows it (confirmed or cancelled), or ``None``."""
        entry = await self._ledger.get(booking_id)
        if entry is None:
            return None
        return _booking(entry, self._people.get(entry.calendar_id))


def _booking(entry: LedgerEntry, person: Salesperson | None) -> Booking:
    extra: dict[str, Any] = {"day": entry.day}
    if person is not None:
        extra.update(salesperson=person.name, organizer_email=person.email, timezone=person.schedule.timezone)
    return Booking(
        id=entry.id,
        provider="builtin",
        start=entry.start,
        end=entry.end,
        status=entry.status,
        calendar_id=entry.calendar_id,
        extra=extra,
    )
