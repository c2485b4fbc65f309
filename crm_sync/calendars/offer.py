"""Pure helpers for offering slots to a lead and understanding the pick, in the lead's time zone
and language (``fr`` or ``en``; other languages fall back to English).

- :func:`spread_offer` picks a few slots spread over days (and over mornings and afternoons),
  in the lead's waking hours when it can;
- :func:`format_slot` writes a slot in full: "mardi 8 décembre à 14 h", "Tuesday 8 December at
  2:00 pm"; :func:`numbered_list` for SMS and email;
- :func:`match_pick` maps a reply ("1", "the second one", "le deuxième", "mardi 14h", "Friday at
  10", "demain 9h30", "le 10 décembre à 15h") to an offered slot, to a requested time to check
  against availability, or to nothing.

Input text is cut to :data:`MAX_TEXT` characters before any parsing; regexes are linear.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

import dateparser

from crm_sync.base import Slot
from crm_sync.calendars.common import load_zone

__all__ = ["MAX_TEXT", "Pick", "format_slot", "match_pick", "numbered_list", "spread_offer"]

#: Longest reply text looked at (characters).
MAX_TEXT = 200

_FR_DAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
_EN_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_FR_MONTHS = [
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
]  # fmt: skip
_EN_MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip


def _local(ts: float, timezone: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, load_zone(timezone))


def format_slot(start: float, *, timezone: str, language: str = "en") -> str:
    """``start`` (epoch seconds) in full in the lead's zone: ``fr`` "mardi 8 décembre à 14 h"
    ("à 14 h 30"), ``en`` "Tuesday 8 December at 2:00 pm" (noon "12:00 pm"). Raises
    :class:`~crm_sync.calendars.common.CalendarConfigError` for an unknown zone."""
    when = _local(start, timezone)
    if language.lower().startswith("fr"):
        time = f"{when.hour} h" + (f" {when.minute:02d}" if when.minute else "")
        day = "1er" if when.day == 1 else str(when.day)
        return f"{_FR_DAYS[when.weekday()]} {day} {_FR_MONTHS[when.month - 1]} à {time}"
    hour = when.hour % 12 or 12
    suffix = "am" if when.hour < 12 else "pm"
    date = f"{_EN_DAYS[when.weekday()]} {when.day} {_EN_MONTHS[when.month - 1]}"
    return f"{date} at {hour}:{when.minute:02d} {suffix}"


def numbered_list(slots: Sequence[Slot], *, timezone: str, language: str = "en") -> str:
    """``"1. mardi 8 décembre à 14 h\\n2. ..."``: the offer as plain text for SMS and email."""
    return "\n".join(
        f"{i}. {format_slot(s.start, timezone=timezone, language=language)}" for i, s in enumerate(slots, 1)
    )


def spread_offer(
    slots: Sequence[Slot],
    *,
    count: int = 3,
    timezone: str,
    waking_hours: tuple[int, int] = (8, 20),
) -> list[Slot]:
    """At most ``count`` (1..10) of ``slots``, spread over distinct days of the lead's zone first
    (alternating the earliest morning and the first afternoon slot), then filling from the days
    already used; slots starting in the lead's ``waking_hours`` (local hours, end excluded) are
    preferred, others used only when too few remain. Sorted by start."""
    count = max(1, min(10, count))
    zone = load_zone(timezone)
    ordered = sorted(slots, key=lambda s: s.start)
    lo, hi = waking_hours
    awake = [s for s in ordered if lo <= dt.datetime.fromtimestamp(s.start, zone).hour < hi]
    pool = awake if len(awake) >= count else ordered
    by_day: dict[dt.date, list[Slot]] = {}
    for slot in pool:
        by_day.setdefault(dt.datetime.fromtimestamp(slot.start, zone).date(), []).append(slot)
    chosen: list[Slot] = []
    for index, day_slots in enumerate(by_day.values()):
        if len(chosen) >= count:
            break
        afternoon = [s for s in day_slots if dt.datetime.fromtimestamp(s.start, zone).hour >= 12]
        chosen.append(afternoon[0] if index % 2 and afternoon else day_slots[0])
    while len(chosen) < count:
        added = False
        for day_slots in by_day.values():
            rest = [s for s in day_slots if s not in chosen]
            if not rest or len(chosen) >= count:
                continue
            taken = [s.start for s in chosen]
            chosen.append(max(rest, key=lambda s: min(abs(s.start - t) for t in taken)))
            added = True
        if not added:
            break
    return sorted(chosen, key=lambda s: s.start)


@dataclass(frozen=True, slots=True)
class Pick:
    """What a reply means: ``slot`` (one of the offered), else ``requested`` (epoch seconds of a
    start the lead asked for: check it against availability and confirm it in full), else
    ``ambiguous`` (several offered slots fit, e.g. "mardi" with two on Tuesday); all empty when
    the reply names no time."""

    slot: Slot | None = None
    requested: float | None = None
    ambiguous: tuple[Slot, ...] = ()

    @property
    def understood(self) -> bool:
        """Whether the reply named one slot or one time."""
        return self.slot is not None or self.requested is not None


_ORDINALS = {
    1: ("first", "1st", "premier", "première", "premiere", "1er", "1ère", "1ere"),
    2: ("second", "2nd", "deuxième", "deuxieme", "seconde", "2e", "2ème", "2eme"),
    3: ("third", "3rd", "troisième", "troisieme", "3e", "3ème", "3eme"),
    4: ("fourth", "4th", "quatrième", "quatrieme", "4e", "4ème", "4eme"),
    5: ("fifth", "5th", "cinquième", "cinquieme", "5e", "5ème", "5eme"),
}
_LAST = ("last", "dernier", "dernière", "derniere")
_ONLY_NUMBER = re.compile(r"^\W{0,3}(?:n°|no\.?|option|choix|#)?\s{0,3}(\d{1,2})\W{0,3}$")
_WORD = re.compile(r"[a-zàâçéèêëîïôûùüÿœ0-9]+")
_DAYS = {
    **{d: i for i, d in enumerate(_FR_DAYS)},
    **{d.lower(): i for i, d in enumerate(_EN_DAYS)},
    **{d.lower()[:3]: i for i, d in enumerate(_EN_DAYS)},
}
_RELATIVE = {"today": 0, "aujourd": 0, "tomorrow": 1, "demain": 1}
_TIME_H = re.compile(r"\b([01]?\d|2[0-3])\s?(?:h|:)\s?([0-5]\d)?\b")
_TIME_AMPM = re.compile(r"\b(1[0-2]|0?[1-9])(?::([0-5]\d))?\s?(am|pm|a\.m\.|p\.m\.)")
_TIME_AT = re.compile(r"\b(?:at|à|a|vers|around|for)\s([01]?\d|2[0-3])(?::([0-5]\d))?\b")
_NUMERIC_DATE = re.compile(r"\b\d{1,2}/\d{1,2}\b")
_MONTH_WORDS = frozenset(
    [m for m in _FR_MONTHS]
    + [m.lower() for m in _EN_MONTHS]
    + [m.lower()[:3] for m in _EN_MONTHS]
    + ["fevrier", "aout", "decembre", "janv", "févr", "avr", "juil", "sept", "déc", "dec"]
)
_NOON = re.compile(r"\b(?:midi|noon)\b")


def _time_of(text: str) -> tuple[int, int] | None:
    if match := _TIME_AMPM.search(text):
        hour = int(match.group(1)) % 12 + (12 if match.group(3).startswith("p") else 0)
        return hour, int(match.group(2) or 0)
    if match := _TIME_H.search(text):
        return int(match.group(1)), int(match.group(2) or 0)
    if _NOON.search(text):
        return 12, 0
    if match := _TIME_AT.search(text):
        hour = int(match.group(1))
        return (hour + 12 if 1 <= hour <= 7 else hour), int(match.group(2) or 0)
    return None


def match_pick(
    text: str,
    offered: Sequence[Slot],
    *,
    timezone: str,
    language: str = "en",
    now: float,
) -> Pick:
    """Understand the lead's reply to an offer of ``offered`` slots (in the order shown).

    ``timezone`` is the lead's zone, ``now`` epoch seconds. Tried in order: a bare number or an
    ordinal ("2", "the second one", "le deuxième", "the last one"); a weekday or today/tomorrow
    and/or a time ("mardi 14h", "Friday at 10", "demain 9h30"; a bare hour 1-7 means pm), matched
    against the offered slots, else the next such time as ``requested``; a text naming a month
    or a numeric date ("le 10 décembre à 15h", "10/12") goes to dateparser. Never raises for any text.
    """
    zone = load_zone(timezone)
    clean = text.strip().lower()[:MAX_TEXT]
    if not clean:
        return Pick()
    if match := _ONLY_NUMBER.match(clean):
        index = int(match.group(1))
        return Pick(slot=offered[index - 1]) if 1 <= index <= len(offered) else Pick()
    words = _WORD.findall(clean)
    time_of = _time_of(clean)
    if time_of is None and offered:
        for index, names in _ORDINALS.items():
            if any(w in names for w in words):
                return Pick(slot=offered[index - 1]) if index <= len(offered) else Pick()
        if any(w in _LAST for w in words):
            return Pick(slot=offered[-1])
    if _NUMERIC_DATE.search(clean) or any(w in _MONTH_WORDS for w in words):
        return _dateparser_pick(clean, offered, zone=zone, language=language, now=now)
    today = dt.datetime.fromtimestamp(now, zone).date()
    day: dt.date | None = None
    for w in words:
        if w in _RELATIVE:
            day = today + dt.timedelta(days=_RELATIVE[w])
            break
        if w in _DAYS:
            ahead = (_DAYS[w] - today.weekday()) % 7
            day = today + dt.timedelta(days=ahead)
            break
    if day is not None or time_of is not None:
        fits = []
        for s in offered:
            local = _local(s.start, timezone)
            if day is not None and local.weekday() != day.weekday():
                continue
            if time_of is not None and (local.hour, local.minute) != time_of:
                continue
            fits.append(s)
        if len(fits) == 1:
            return Pick(slot=fits[0])
        if time_of is None:
            return Pick(ambiguous=tuple(fits))
        if day is None:
            day = today
        when = dt.datetime.combine(day, dt.time(*time_of), zone)
        if when.timestamp() <= now:
            when = dt.datetime.combine(
                day + dt.timedelta(days=7 if _has_weekday(words) else 1), dt.time(*time_of), zone
            )
        return _requested(when.timestamp(), offered)
    return _dateparser_pick(clean, offered, zone=zone, language=language, now=now)


def _has_weekday(words: Sequence[str]) -> bool:
    return any(w in _DAYS for w in words)


def _requested(ts: float, offered: Sequence[Slot]) -> Pick:
    same = [s for s in offered if abs(s.start - ts) < 60]
    return Pick(slot=same[0]) if same else Pick(requested=ts)


def _dateparser_pick(
    text: str, offered: Sequence[Slot], *, zone: dt.tzinfo, language: str, now: float
) -> Pick:
    languages = ["fr", "en"] if language.lower().startswith("fr") else ["en", "fr"]
    base = dt.datetime.fromtimestamp(now, zone).replace(tzinfo=None)
    try:
        parsed = dateparser.parse(
            text,
            languages=languages,
            settings={
                "PREFER_DATES_FROM": "future",
                "RELATIVE_BASE": base,
                "RETURN_AS_TIMEZONE_AWARE": False,
                "REQUIRE_PARTS": ["day", "month"],
            },
        )
    except (ValueError, OverflowError, TypeError):
        return Pick()
    if parsed is None:
        return Pick()
    when = parsed.replace(tzinfo=zone)
    if (when.hour, when.minute) == (0, 0) and _time_of(text) is None:
        fits = [s for s in offered if dt.datetime.fromtimestamp(s.start, zone).date() == when.date()]
        return Pick(slot=fits[0]) if len(fits) == 1 else Pick(ambiguous=tuple(fits))
    if when.timestamp() <= now:
        return Pick()
    return _requested(when.timestamp(), offered)
