"""A tenant's office hours: whether the team is in, when it is next in, and how to say it.

Pure functions over a :class:`OfficeHours` value (no I/O). Times are floats, seconds since the
Unix epoch (UTC); office hours are local to the tenant's IANA time zone. Texts exist in English
and French (other languages read English), like :mod:`app.core.i18n`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.policy.quiet_hours import parse_hhmm
from app.tenancy.records import TenantProfile

__all__ = ["OfficeHours", "callback_time", "describe_delay", "describe_hours", "describe_moment"]

_DAYS = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "fr": ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
}
#: Looking this many days ahead for an opening is enough for any week with one working day.
_HORIZON_DAYS = 8


def _lang(language: str | None) -> str:
    base = (language or "en").split("-")[0].lower()
    return base if base in _DAYS else "en"


@dataclass(frozen=True, slots=True)
class OfficeHours:
    """``days`` are ISO weekdays (1 = Monday); ``start`` < ``end`` on each of those days, local to
    ``zone``. A ``start`` equal to ``end`` means the team is never in."""

    zone: ZoneInfo
    start: time
    end: time
    days: frozenset[int]

    @classmethod
    def of(cls, profile: TenantProfile) -> OfficeHours:
        """The tenant's office hours (``office_hours_*``, ``office_days``, ``timezone``)."""
        return cls(
            zone=ZoneInfo(profile.timezone),
            start=parse_hhmm(profile.office_hours_start),
            end=parse_hhmm(profile.office_hours_end),
            days=frozenset(profile.office_days),
        )

    def is_open(self, at: float) -> bool:
        """Whether ``at`` falls within office hours."""
        local = datetime.fromtimestamp(at, self.zone)
        return local.isoweekday() in self.days and self.start <= local.time() < self.end

    def next_opening(self, at: float) -> float | None:
        """``at`` itself when open, else the next start of office hours; ``None`` if never open."""
        if self.is_open(at):
            return at
        if self.start >= self.end or not self.days:
            return None
        local = datetime.fromtimestamp(at, self.zone)
        for offset in range(_HORIZON_DAYS):
            day = local.date() + timedelta(days=offset)
            opening = datetime.combine(day, self.start, tzinfo=self.zone)
            if day.isoweekday() in self.days and opening.timestamp() > at:
                return opening.timestamp()
        return None


def callback_time(hours: OfficeHours, now: float, *, lead_s: float = 3600.0) -> float | None:
    """A call-back time to offer: at least ``lead_s`` seconds ahead, on the next half hour, within
    office hours (the next opening when that falls outside). ``None`` if the team is never in."""
    candidate = math.ceil((now + lead_s) / 1800.0) * 1800.0
    if hours.is_open(candidate):
        local = datetime.fromtimestamp(candidate, hours.zone)
        closing = datetime.combine(local.date(), hours.end, tzinfo=hours.zone).timestamp()
        if candidate < closing:
            return candidate
    return hours.next_opening(candidate)


def _day_span(days: list[int], language: str) -> str:
    names = _DAYS[language]
    if not days:
        return ""
    contiguous = days == list(range(days[0], days[-1] + 1))
    if contiguous and len(days) > 2:
        if language == "fr":
            return f"du {names[days[0] - 1]} au {names[days[-1] - 1]}"
        return f"{names[days[0] - 1]} to {names[days[-1] - 1]}"
    joiner = " et " if language == "fr" else " and "
    listed = [names[d - 1] for d in days]
    return listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + joiner + listed[-1]


def describe_hours(hours: OfficeHours, language: str | None) -> str:
    """``"Monday to Friday, 09:00-18:00 (Europe/Paris)"`` / ``"du lundi au vendredi, ..."``."""
    lang = _lang(language)
    span = _day_span(sorted(hours.days), lang)
    return f"{span}, {hours.start:%H:%M}-{hours.end:%H:%M} ({hours.zone.key})"


def describe_moment(at: float, hours: OfficeHours, now: float, language: str | None) -> str:
    """``"today at 14:30"``, ``"tomorrow at 09:00"``, ``"on Monday at 09:00"`` (local time), or
    the French ``"aujourd'hui à 14:30"``, ``"demain à 09:00"``, ``"lundi à 09:00"``."""
    lang = _lang(language)
    local = datetime.fromtimestamp(at, hours.zone)
    days_ahead = (local.date() - datetime.fromtimestamp(now, hours.zone).date()).days
    clock = f"{local:%H:%M}"
    if lang == "fr":
        day = {0: "aujourd'hui", 1: "demain"}.get(days_ahead, _DAYS["fr"][local.weekday()])
        return f"{day} à {clock}"
    day = {0: "today", 1: "tomorrow"}.get(days_ahead, f"on {_DAYS['en'][local.weekday()]}")
    return f"{day} at {clock}"


def describe_delay(minutes: int, language: str | None) -> str:
    """``"30 minutes"``, ``"1 hour"``, ``"2 hours"`` / ``"30 minutes"``, ``"1 heure"``, ``"2 heures"``."""
    lang = _lang(language)
    if minutes < 60 or minutes % 60:
        return f"{minutes} minute" + ("s" if minutes != 1 else "")
    hours_n = minutes // 60
    unit = "heure" if lang == "fr" else "hour"
    return f"{hours_n} {unit}" + ("s" if hours_n != 1 else "")
