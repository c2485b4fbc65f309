"""Calendar providers behind one port (:class:`crm_sync.base.CalendarProvider`), one module each.

``PROVIDERS`` maps a provider name (as stored on a tenant's calendar setting and on a
:class:`~crm_sync.base.Booking`) to its class. Each class takes its dependencies as keyword
options: the built-in one a :class:`~crm_sync.calendars.builtin.BookingLedger` and its
salespeople, the others the connection's :class:`~crm_sync.base.ApiClient` and their ids.
"""

from __future__ import annotations

import contextlib

from crm_sync.base import Attendee, Booking, CalendarProvider, IntegrationError, Slot
from crm_sync.calendars.builtin import BuiltinCalendar
from crm_sync.calendars.cal_com import CalComCalendar
from crm_sync.calendars.calendly import CalendlyCalendar
from crm_sync.calendars.common import CalendarChange, Schedule
from crm_sync.calendars.gohighlevel import GoHighLevelCalendar
from crm_sync.calendars.google import GoogleCalendar

__all__ = [
    "PROVIDERS",
    "BuiltinCalendar",
    "CalComCalendar",
    "CalendarChange",
    "CalendlyCalendar",
    "GoHighLevelCalendar",
    "GoogleCalendar",
    "Schedule",
    "reschedule",
    "slot_at",
]

PROVIDERS: dict[str, type] = {
    BuiltinCalendar.provider: BuiltinCalendar,
    GoogleCalendar.provider: GoogleCalendar,
    CalComCalendar.provider: CalComCalendar,
    CalendlyCalendar.provider: CalendlyCalendar,
    GoHighLevelCalendar.provider: GoHighLevelCalendar,
}


async def reschedule(
    provider: CalendarProvider,
    booking: Booking,
    slot: Slot,
    attendee: Attendee,
    *,
    title: str,
    description: str = "",
    reason: str = "rescheduled",
) -> Booking:
    """Move ``booking`` to ``slot``: book the new slot first (so the lead is never left without a
    meeting), then cancel the old one; when that cancel fails, the new booking is cancelled
    again (best effort) and the error raised, so the lead keeps exactly the old meeting.
    Raises :class:`~crm_sync.base.SlotTakenError` (the old meeting stands) or
    :class:`IntegrationError`."""
    new = await provider.book(slot, attendee, title=title, description=description)
    try:
        await provider.cancel(booking, reason=reason)
    except IntegrationError:
        with contextlib.suppress(IntegrationError):
            await provider.cancel(new, reason="reschedule failed")
        raise
    return new


async def slot_at(provider: CalendarProvider, start: float, *, duration_s: int) -> Slot | None:
    """The free slot starting at ``start`` (epoch seconds, within a minute), or ``None``: how a
    time the lead asked for (:attr:`~crm_sync.calendars.offer.Pick.requested`) is checked
    against availability before it is confirmed back in full. One ``free_slots`` call."""
    for slot in await provider.free_slots(start - 60, start + duration_s + 60, duration_s=duration_s):
        if abs(slot.start - start) < 60:
            return slot
    return None
