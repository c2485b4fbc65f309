"""Calendar providers behind one port (:class:`crm_sync.base.CalendarProvider`), one module each.

``PROVIDERS`` maps a provider name (as stored on a tenant's calendar setting and on a
:class:`~crm_sync.base.Booking`) to its class. Each class takes its dependencies as keyword
options: the built-in one a :class:`~crm_sync.calendars.builtin.BookingLedger` and its
salespeople, the others the connection's :class:`~crm_sync.base.ApiClient` and their ids.
"""

from __future__ import annotations

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
]

PROVIDERS: dict[str, type] = {
    BuiltinCalendar.provider: BuiltinCalendar,
    GoogleCalendar.provider: GoogleCalendar,
    CalComCalendar.provider: CalComCalendar,
    CalendlyCalendar.provider: CalendlyCalendar,
    GoHighLevelCalendar.provider: GoHighLevelCalendar,
}
