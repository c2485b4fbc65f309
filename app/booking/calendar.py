"""A tenant's calendar: its settings, the provider they name, and the engine's port over it.

The settings live in ``booking_settings/calendar`` (one document per tenant)::

    {"provider": "builtin",                      # or google, gohighlevel, cal_com, calendly
     "duration_min": 30,
     "salespeople": [{"calendar_id": "alice", "name": "Alice", "email": "alice@acme.test",
                      "schedule": {"timezone": "Europe/Paris", "hours": {"1": ["09:00-12:00"]},
                                   "holidays": [], "buffer_before_min": 0, "min_notice_min": 60,
                                   "max_per_day": 6}}],
     "connection_id": "...",                     # the OAuth/API connection of other providers
     "calendar_id": "primary",                   # Google / GoHighLevel calendar
     "event_type_id": 123, "event_type": "https://api.calendly.com/event_types/...",
     "schedule": {...},                          # Google: the working hours to offer within
     "organizer_email": "team@acme.test", "organizer_name": "Acme"}

Opening hours are ``"HH:MM-HH:MM"`` strings (Firestore cannot store arrays inside arrays); pairs
are accepted too. Without a document the built-in calendar is used, with one salesperson working 09:00-17:00
Monday to Friday in the tenant's time zone. :class:`CalendarSlotSource` is the playbook
engine's :class:`~playbooks.runtime.SlotSource` over any :class:`~crm_sync.base.CalendarProvider`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.booking.ledger import StoreBookingLedger
from app.store import Store
from app.store import collections as col
from crm_sync.base import CalendarProvider, Slot
from crm_sync.calendars import PROVIDERS, slot_at
from crm_sync.calendars.builtin import BuiltinCalendar, Salesperson
from crm_sync.calendars.common import CalendarConfigError, Schedule
from crm_sync.calendars.offer import match_pick, spread_offer
from kernel.clock import Clock
from playbooks.runtime import OfferedSlot, SlotPick

if TYPE_CHECKING:
    from app.connections.services import ConnectionServices

__all__ = [
    "SETTINGS",
    "CalendarSettings",
    "CalendarSlotSource",
    "build_provider",
    "load_settings",
    "parse_settings",
    "schedule_from_settings",
]

SETTINGS = col.BOOKING_SETTINGS
_DOC = "calendar"


@dataclass(frozen=True, slots=True)
class CalendarSettings:
    """A tenant's calendar settings (see the module docstring); ``raw`` is the stored document."""

    provider: str = "builtin"
    duration_s: int = 1800
    organizer_email: str | None = None
    organizer_name: str = ""
    timezone: str = "UTC"
    raw: Mapping[str, Any] = field(default_factory=dict)


async def load_settings(store: Store, tenant_id: str, *, default_timezone: str) -> CalendarSettings:
    """The tenant's calendar settings, defaults filled in. Raises :class:`CalendarConfigError` for
    an unknown provider."""
    return parse_settings(await store.get(tenant_id, SETTINGS, _DOC) or {}, default_timezone=default_timezone)


def parse_settings(raw: Mapping[str, Any], *, default_timezone: str) -> CalendarSettings:
    """Settings from their stored document ``raw``, defaults filled in. Raises
    :class:`CalendarConfigError` for an unknown provider or a malformed document."""
    if not isinstance(raw, Mapping):
        raise CalendarConfigError("calendar settings must be an object")
    provider = str(raw.get("provider") or "builtin")
    if provider not in PROVIDERS:
        raise CalendarConfigError(f"unknown calendar provider {provider!r}")
    people = raw.get("salespeople") or []
    if not isinstance(people, list) or not all(isinstance(p, Mapping) for p in people):
        raise CalendarConfigError("salespeople must be a list of objects")
    first = people[0] if people else {}
    timezone = str((first.get("schedule") or raw.get("schedule") or {}).get("timezone") or default_timezone)
    try:
        duration_s = int(raw.get("duration_min") or 30) * 60
    except (TypeError, ValueError) as exc:
        raise CalendarConfigError("duration_min must be a number of minutes") from exc
    return CalendarSettings(
        provider=provider,
        duration_s=duration_s,
        organizer_email=raw.get("organizer_email") or first.get("email"),
        organizer_name=str(raw.get("organizer_name") or first.get("name") or ""),
        timezone=timezone,
        raw=raw,
    )


def _interval(value: Any) -> tuple[str, str]:
    if isinstance(value, str):
        open_, sep, close = value.partition("-")
        if not sep:
            raise CalendarConfigError(f"opening hours {value[:20]!r} must read HH:MM-HH:MM")
        return open_.strip(), close.strip()
    if isinstance(value, Mapping):
        return str(value.get("open", "")), str(value.get("close", ""))
    if isinstance(value, list | tuple) and len(value) == 2:
        return str(value[0]), str(value[1])
    raise CalendarConfigError("opening hours must be 'HH:MM-HH:MM' strings")


def schedule_from_settings(data: Mapping[str, Any] | None, timezone: str) -> Schedule:
    """The :class:`Schedule` of settings ``data`` (``timezone`` when it names none). Raises
    :class:`CalendarConfigError`."""
    data = dict(data or {})
    data.setdefault("timezone", timezone)
    if isinstance(data.get("hours"), Mapping):
        data["hours"] = {day: [_interval(v) for v in values] for day, values in data["hours"].items()}
    return Schedule.from_dict(data)


async def build_provider(
    store: Store,
    tenant_id: str,
    settings: CalendarSettings,
    *,
    clock: Clock,
    connections: ConnectionServices | None,
) -> CalendarProvider:
    """The provider ``settings`` name: the built-in calendar over :class:`StoreBookingLedger`, or
    a connected provider through ``connections.clients.client(tenant_id, connection_id)``.
    Raises :class:`CalendarConfigError` when a connected provider has no connection."""
    raw = settings.raw
    if settings.provider == "builtin":
        people = [
            Salesperson(
                calendar_id=str(p.get("calendar_id") or f"sp{i}"),
                name=str(p.get("name") or ""),
                email=p.get("email"),
                schedule=schedule_from_settings(p.get("schedule"), settings.timezone),
            )
            for i, p in enumerate(raw.get("salespeople") or [])
        ] or [Salesperson(calendar_id="default", schedule=schedule_from_settings(None, settings.timezone))]
        return BuiltinCalendar(StoreBookingLedger(store, tenant_id), salespeople=people, clock=clock)
    connection_id = raw.get("connection_id")
    if connections is None or not connection_id:
        raise CalendarConfigError(f"calendar provider {settings.provider!r} needs a connection")
    client = await connections.clients.client(tenant_id, str(connection_id))
    if settings.provider == "google":
        return PROVIDERS["google"](
            client,
            schedule=schedule_from_settings(raw.get("schedule"), settings.timezone),
            calendar_id=str(raw.get("calendar_id") or "primary"),
            clock=clock,
        )
    if settings.provider == "gohighlevel":
        return PROVIDERS["gohighlevel"](
            client, calendar_id=str(raw.get("calendar_id") or ""), timezone=settings.timezone, clock=clock
        )
    if settings.provider == "cal_com":
        return PROVIDERS["cal_com"](client, event_type_id=int(raw.get("event_type_id") or 0), clock=clock)
    return PROVIDERS[settings.provider](
        client, event_type=str(raw.get("event_type") or ""), mode=str(raw.get("mode") or "api"), clock=clock
    )


def _offered(slot: Slot) -> OfferedSlot:
    return OfferedSlot(start=slot.start, end=slot.end, calendar_id=slot.calendar_id)


def _slot(slot: OfferedSlot) -> Slot:
    return Slot(start=slot.start, end=slot.end, calendar_id=slot.calendar_id)


class CalendarSlotSource:
    """The engine's :class:`~playbooks.runtime.SlotSource` over a calendar provider: free slots and
    availability checks go to the provider; spreading and reading picks use
    :mod:`crm_sync.calendars.offer` (pure)."""

    def __init__(self, provider: CalendarProvider) -> None:
        self.provider = provider

    async def free_slots(self, *, start: float, end: float, duration_s: int) -> list[OfferedSlot]:
        """See :class:`~playbooks.runtime.SlotSource`."""
        return [_offered(s) for s in await self.provider.free_slots(start, end, duration_s=duration_s)]

    async def slot_at(self, start: float, *, duration_s: int) -> OfferedSlot | None:
        """See :class:`~playbooks.runtime.SlotSource`."""
        found = await slot_at(self.provider, start, duration_s=duration_s)
        return None if found is None else _offered(found)

    def spread(self, slots: Sequence[OfferedSlot], *, count: int, timezone: str) -> list[OfferedSlot]:
        """See :class:`~playbooks.runtime.SlotSource`."""
        return [_offered(s) for s in spread_offer([_slot(s) for s in slots], count=count, timezone=timezone)]

    def match(
        self, text: str, offered: Sequence[OfferedSlot], *, timezone: str, language: str, now: float
    ) -> SlotPick:
        """See :class:`~playbooks.runtime.SlotSource`."""
        pick = match_pick(text, [_slot(s) for s in offered], timezone=timezone, language=language, now=now)
        return SlotPick(
            slot=None if pick.slot is None else _offered(pick.slot),
            requested=pick.requested,
            ambiguous=[_offered(s) for s in pick.ambiguous],
        )
