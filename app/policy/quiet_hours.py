"""Quiet hours in the lead's own time zone (pure functions, DST-safe with :mod:`zoneinfo`).

A window such as 21:00-08:00 is local wall-clock time in the lead's zone; it may cross midnight.
Times in and out are floats, seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones

__all__ = ["guess_timezone", "next_allowed_time", "parse_hhmm", "resolve_timezone"]


def parse_hhmm(value: str) -> time:
    """``"21:30"`` -> ``time(21, 30)``. Raises ``ValueError`` on anything else."""
    hours, _, minutes = value.partition(":")
    return time(int(hours), int(minutes or 0))


def guess_timezone(phone: str | None) -> str | None:
    """The time zone of an E.164 number when its region has exactly one (libphonenumber's
    geocoding data); ``None`` when unknown or ambiguous (e.g. most US numbers span several)."""
    if not phone:
        return None
    try:
        zones = phone_timezones.time_zones_for_number(phonenumbers.parse(phone))
    except phonenumbers.NumberParseException:
        return None
    real = [z for z in zones if z != "Etc/Unknown"]
    return real[0] if len(real) == 1 else None


def resolve_timezone(lead_timezone: str | None, phone: str | None, tenant_timezone: str) -> ZoneInfo:
    """The lead's zone: their profile's, else guessed from their phone, else the tenant's."""
    for name in (lead_timezone, guess_timezone(phone), tenant_timezone, "UTC"):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _in_window(local: time, start: time, end: time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def next_allowed_time(now: float, zone: ZoneInfo, start: time, end: time) -> float | None:
    """``None`` when ``now`` is outside quiet hours ``[start, end)`` in ``zone``; else the first
    instant (epoch seconds) at which it is allowed again: ``end`` local time, on the right day.

    On a DST gap (``end`` does not exist that day) the first valid instant after it is used.
    """
    local = datetime.fromtimestamp(now, zone)
    if not _in_window(local.time().replace(tzinfo=None), start, end):
        return None
    day = local.date() if local.time() < end else local.date() + timedelta(days=1)
    candidate = datetime.combine(day, end, tzinfo=zone)
    # Normalise non-existent local times (spring-forward gap) through UTC and back.
    utc = candidate.astimezone(ZoneInfo("UTC"))
    allowed = utc.timestamp()
    if allowed <= now:  # pragma: no cover - defensive, cannot happen for start != end
        allowed = now + 60
    return allowed
