"""The built-in calendar's :class:`~crm_sync.calendars.builtin.BookingLedger` over the store.

Three collections per tenant:

- ``calendar_bookings/{booking_id}``: every meeting, confirmed or cancelled (the record);
- ``calendar_days/{calendar_id}~{YYYY-MM-DD}``: the confirmed meetings of one salesperson whose
  time, buffers included, touches one calendar-local day (``{"calendar_id", "day", "entries":
  [...]}``; a meeting near midnight is listed on both days), read by id, so availability needs
  no query and no index;
- ``calendar_claims/{calendar_id}~{start}``: one document per (calendar, slot start), created in
  the booking's transaction and deleted when it is cancelled.

:meth:`StoreBookingLedger.reserve` reads the day documents, applies the calendar's conflict rule
and writes the three documents in one :meth:`Store.run_transaction`: SQLite serialises writers,
Firestore aborts one of two transactions that read and write the same day document, and the
claim's ``create`` fails the commit on a duplicate in either, so of two leads racing for the last slot one
gets the meeting and the other :class:`SlotTakenError`.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from collections.abc import Sequence
from typing import Any

from app.store import ConflictError, DocumentExistsError, Store, Transaction
from crm_sync.base import ProviderError
from crm_sync.calendars.builtin import ConflictCheck, LedgerEntry

__all__ = ["BOOKINGS", "CLAIMS", "DAYS", "StoreBookingLedger", "claim_id", "day_id"]

BOOKINGS = "calendar_bookings"
DAYS = "calendar_days"
CLAIMS = "calendar_claims"

_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
#: How many times a reservation that lost a race on a new document is tried again.
_ATTEMPTS = 8


def _key(calendar_id: str) -> str:
    """A document-id-safe form of a calendar id (ids outside ``[A-Za-z0-9_.-]`` are hashed)."""
    if _SAFE.match(calendar_id) and calendar_id not in {".", ".."}:
        return calendar_id
    return "h" + hashlib.sha256(calendar_id.encode()).hexdigest()[:32]


def day_id(calendar_id: str, day: str) -> str:
    """Id of the day document of ``calendar_id`` on ``day``."""
    return f"{_key(calendar_id)}~{day}"


def claim_id(calendar_id: str, start: float) -> str:
    """Id of the claim document of ``calendar_id`` at ``start`` (epoch seconds, to the second)."""
    return f"{_key(calendar_id)}~{round(start)}"


class StoreBookingLedger:
    """:class:`~crm_sync.calendars.builtin.BookingLedger` of one tenant over any :class:`Store`."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        self._store = store
        self._tenant = tenant_id

    async def list_days(self, calendar_id: str, days: Sequence[str]) -> list[LedgerEntry]:
        """Confirmed entries of ``calendar_id`` on ``days`` (one get by id per day), by start."""
        docs = await asyncio.gather(
            *(self._store.get(self._tenant, DAYS, day_id(calendar_id, d)) for d in dict.fromkeys(days))
        )
        entries = {
            str(e["id"]): LedgerEntry.from_dict(e) for doc in docs if doc for e in doc.get("entries", [])
        }
        return sorted(entries.values(), key=lambda e: e.start)

    async def reserve(self, entry: LedgerEntry, *, days: Sequence[str], check: ConflictCheck) -> LedgerEntry:
        """Add ``entry`` when ``check`` passes on the confirmed entries listed on ``days``, atomically;
        the entry is listed on each of ``days`` (and on ``entry.day``).

        One transaction: one read per day (usually one), then the writes; a duplicate claim or a
        day document created meanwhile fails the commit, and the next attempt reads again.
        Raises :class:`SlotTakenError` when ``check`` refuses; :class:`ProviderError` (retryable)
        when contention outlasts every attempt.
        """
        days = list(dict.fromkeys([entry.day, *days]))
        record = {**entry.as_dict(), "listed_days": days}

        async def fn(tx: Transaction) -> LedgerEntry:
            docs: dict[str, dict[str, Any] | None] = {}
            for d in days:
                docs[d] = await tx.get(DAYS, day_id(entry.calendar_id, d))
            seen: dict[str, LedgerEntry] = {}
            for doc in docs.values():
                for e in (doc or {}).get("entries", []):
                    seen[str(e["id"])] = LedgerEntry.from_dict(e)
            check(list(seen.values()))
            for d, doc in docs.items():
                data = {
                    "calendar_id": entry.calendar_id,
                    "day": d,
                    "entries": [*(doc or {}).get("entries", []), entry.as_dict()],
                }
                if doc is None:
                    tx.create(DAYS, day_id(entry.calendar_id, d), data)
                else:
                    tx.set(DAYS, day_id(entry.calendar_id, d), data)
            tx.create(
                CLAIMS,
                claim_id(entry.calendar_id, entry.start),
                {"booking_id": entry.id, "calendar_id": entry.calendar_id, "start": entry.start},
            )
            tx.set(BOOKINGS, entry.id, record)
            return entry

        for attempt in range(_ATTEMPTS):
            try:
                return await self._store.run_transaction(self._tenant, fn, max_attempts=10)
            except (DocumentExistsError, ConflictError):
                # contention, or another booking created a day or claim document first: read again
                await asyncio.sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))
        raise ProviderError("the booking store is too busy; try again", retryable=True)

    async def get(self, booking_id: str) -> LedgerEntry | None:
        """The entry (confirmed or cancelled), or ``None``."""
        data = await self._store.get(self._tenant, BOOKINGS, booking_id)
        return None if data is None else LedgerEntry.from_dict(data)

    async def cancel(self, booking_id: str, *, reason: str = "") -> LedgerEntry | None:
        """Mark the booking cancelled, drop it from its day and delete its claim (idempotent)."""

        async def fn(tx: Transaction) -> LedgerEntry | None:
            data = await tx.get(BOOKINGS, booking_id)
            if data is None:
                return None
            entry = LedgerEntry.from_dict(data)
            if entry.status == "cancelled":
                return entry
            listed = [str(d) for d in data.get("listed_days") or [entry.day]]
            day_docs = {d: await tx.get(DAYS, day_id(entry.calendar_id, d)) for d in listed}
            claim = await tx.get(CLAIMS, claim_id(entry.calendar_id, entry.start))  # reads before writes
            for d, doc in day_docs.items():
                if doc is not None:
                    doc["entries"] = [e for e in doc.get("entries", []) if e.get("id") != booking_id]
                    tx.set(DAYS, day_id(entry.calendar_id, d), doc)
            if claim is not None and claim.get("booking_id") == booking_id:
                tx.delete(CLAIMS, claim_id(entry.calendar_id, entry.start))
            tx.set(BOOKINGS, booking_id, {**data, "status": "cancelled", "cancel_reason": reason[:500]})
            return LedgerEntry.from_dict({**data, "status": "cancelled"})

        return await self._store.run_transaction(self._tenant, fn, max_attempts=10)
