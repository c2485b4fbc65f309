"""Read a slot value out of a lead's words, in French and English.

:func:`parse_slot` reads free text (what the lead typed); :func:`normalise` checks and converts a
value that came from elsewhere (an LLM's JSON, a CRM field). Both return ``None`` when the input
does not give a usable value; neither raises for bad input.

Value shapes per kind (the same as ``Interpretation.slots``):

- ``text``: non-empty stripped ``str``;
- ``yes_no``: ``bool``;
- ``number``: ``float``;
- ``email``: ``str``, domain lower-cased;
- ``phone``: E.164 ``str`` (``+33612345678``), via ``phonenumbers`` (libphonenumber);
- ``datetime``: ISO-8601 ``str`` with the offset of the lead's time zone
  (``2026-11-24T14:00:00+01:00``); a day without a time means 09:00 (:data:`DEFAULT_HOUR`);
- ``choice``: the choice id.

Dates: relative days (today, tomorrow, weekdays with or without "next"/"prochain") and times
(``14h``, ``10h30``, ``2pm``, ``14:00``, ``midi``) are read here; anything else goes to
``dateparser`` (``RELATIVE_BASE`` = now in the lead's time zone, ``PREFER_DATES_FROM='future'``,
https://dateparser.readthedocs.io/en/latest/settings.html). "next tuesday" / "mardi prochain"
mean the first Tuesday after today.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

__all__ = ["DEFAULT_HOUR", "SlotValue", "fold", "normalise", "parse_slot"]

DEFAULT_HOUR = 9
"""Hour used when a lead gives a day without a time ("tomorrow")."""


@dataclass(frozen=True, slots=True)
class SlotValue:
    """A parsed value and the words of the message that gave it."""

    value: Any
    evidence: str


# --------------------------------------------------------------------------- text helpers


def _fold_char(char: str) -> str:
    if char in "’‘`´":
        return "'"
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    lowered = base.lower()
    return lowered if len(lowered) == 1 else char


def fold(text: str) -> str:
    """Lower-case ``text`` and drop accents, keeping its length (index i matches index i)."""
    return "".join(_fold_char(c) for c in text)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", fold(text))


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w'])" + re.escape(phrase).replace(r"\ ", r"[\s\-]+") + r"(?!\w)")


# --------------------------------------------------------------------------- yes / no

_UNSURE = [
    "oui et non", "yes and no", "ca depend", "it depends", "depends", "maybe", "perhaps", "peut etre",
    "peut-etre", "not sure", "pas sur", "pas certain", "don't know", "dont know", "do not know", "no idea",
    "sais pas", "sait pas", "aucune idee", "kind of", "sort of", "plus ou moins", "more or less",
    "not yet sure",
]  # fmt: skip
_YES = [
    "oui", "ouais", "ouai", "ouep", "ouaip", "yes", "yeah", "yea", "yep", "yup", "sure", "of course",
    "absolutely", "definitely", "certainly", "correct", "that's right", "thats right", "indeed",
    "affirmative",
    "bien sur", "d'accord", "daccord", "exactement", "exact", "absolument", "tout a fait", "certainement",
    "evidemment", "carrement", "effectivement", "c'est ca", "c'est exact", "ok", "okay", "no problem",
    "pas de probleme", "pas de souci", "no worries", "why not", "pourquoi pas", "bien entendu", "volontiers",
    "avec plaisir", "i am", "i do", "je suis", "right",
]  # fmt: skip
_NO = [
    "non", "nan", "nope", "no", "nah", "not really", "pas du tout", "pas vraiment", "absolutely not",
    "of course not", "certainly not", "definitely not", "never", "jamais", "negative", "no way",
    "pas question", "surtout pas", "bien sur que non", "not at all", "i'm not", "im not", "i am not",
    "i don't", "i do not", "je ne", "je n'", "not", "pas", "aucunement", "nullement",
]  # fmt: skip
_YES_EMOJI = ("👍", "👌", "✅", "✔", "🆗", "🙆")
_NO_EMOJI = ("👎", "❌", "🚫", "✖", "🙅")
_CUES = sorted([(p, True) for p in _YES] + [(p, False) for p in _NO], key=lambda item: -len(item[0]))
_CUE_PATTERNS = [(_phrase_pattern(p), polarity) for p, polarity in _CUES]
_UNSURE_PATTERNS = [_phrase_pattern(p) for p in _UNSURE]
_NT = re.compile(r"\w+n't(?!\w)")


def _parse_yes_no(text: str) -> SlotValue | None:
    folded = fold(text)
    if any(p.search(folded) for p in _UNSURE_PATTERNS):
        return None
    found: list[tuple[int, int, bool]] = []
    taken = [False] * len(folded)
    for pattern, polarity in _CUE_PATTERNS:
        for match in pattern.finditer(folded):
            if not any(taken[match.start() : match.end()]):
                found.append((match.start(), match.end(), polarity))
                for i in range(match.start(), match.end()):
                    taken[i] = True
    for match in _NT.finditer(folded):
        if not any(taken[match.start() : match.end()]):
            found.append((match.start(), match.end(), False))
    for emoji_set, polarity in ((_YES_EMOJI, True), (_NO_EMOJI, False)):
        for emoji in emoji_set:
            index = text.find(emoji)
            if index >= 0:
                found.append((index, index + len(emoji), polarity))
    if not found:
        return None
    found.sort()
    polarities = {polarity for _, _, polarity in found}
    start, end, first = found[0]
    if len(polarities) > 1 and re.sub(r"[\W_]+", "", folded[:start]):
        return None  # mixed signals and the message does not open with a clear yes or no
    return SlotValue(first, text[start:end])


# --------------------------------------------------------------------------- numbers

_NUMBER = re.compile(
    r"(?<![\w.,])(?P<sign>-)?"
    r"(?P<num>\d{1,3}(?:(?P<sep>[ \u00a0\u202f'.,])\d{3})(?:(?P=sep)\d{3})*(?:[.,]\d+)?"
    r"|\d+(?:[.,]\d+)?)(?!\d)"
    r"(?:\s*(?P<suffix>k|mio|millions?|milliards?|mille|thousand|grand|bn|billion|m)(?![a-z0-9\u00b2]))?"
)
_SCALE = {
    "k": 1e3, "mille": 1e3, "thousand": 1e3, "grand": 1e3, "m": 1e6, "mio": 1e6, "million": 1e6,
    "millions": 1e6, "bn": 1e9, "billion": 1e9, "milliard": 1e9, "milliards": 1e9,
}  # fmt: skip
_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "sept": 7, "huit": 8, "neuf": 9,
    "dix": 10, "onze": 11, "douze": 12, "treize": 13, "quatorze": 14, "quinze": 15, "seize": 16, "vingt": 20,
    "vingts": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60,
}  # fmt: skip
_MULTIPLIERS = {"hundred": 100, "cent": 100, "cents": 100, "thousand": 1000, "mille": 1000, "million": 1e6}
_JOINERS = {"and", "et"}


def _to_float(num: str, sep: str | None, language: str) -> float:
    body = num
    if sep is not None:
        groups = num.count(sep)
        decimal_sep = ({",", "."} - {sep}).pop() if sep in ",." else None
        thousands = groups > 1 or sep not in ",." or (decimal_sep is not None and decimal_sep in num)
        if not thousands:
            # one ',' or '.' group of three digits: "12,500" is 12500 in English, 12.5 in French;
            # "2.500" is 2.5 in English, 2500 in French.
            thousands = (sep == ",") == (language != "fr")
        if thousands:
            body = num.replace(sep, "")
    return float(body.replace(",", "."))


def _number_words(text: str) -> SlotValue | None:
    tokens = list(re.finditer(r"[a-z]+", fold(text)))
    runs: list[tuple[float, int, int, int]] = []
    index = 0
    while index < len(tokens):
        total, current, start, count, last = 0.0, 0.0, -1, 0, -1
        previous = ""
        j = index
        while j < len(tokens):
            word = tokens[j].group()
            if word in _UNITS:
                value = _UNITS[word]
                if word in ("vingt", "vingts") and previous == "quatre":
                    current += 80 - 4
                else:
                    current += value
            elif word in _MULTIPLIERS:
                scale = _MULTIPLIERS[word]
                if scale == 100:
                    current = max(current, 1) * 100
                else:
                    total += max(current, 1) * scale
                    current = 0
            elif word == "a" and j + 1 < len(tokens) and tokens[j + 1].group() in _MULTIPLIERS and count == 0:
                current = 1
            elif word in _JOINERS and count > 0 and j + 1 < len(tokens) and tokens[j + 1].group() in _UNITS:
                pass
            else:
                break
            if start < 0:
                start = tokens[j].start()
            last = tokens[j].end()
            count += 1
            previous = word
            j += 1
        if count:
            runs.append((total + current, start, last, count))
            index = j
        else:
            index += 1
    if not runs:
        return None
    # "un"/"une"/"one" are articles far more often than numbers: alone they count only in a
    # short answer ("un seul", "just one").
    lone_one = [r for r in runs if r[3] == 1 and fold(text[r[1] : r[2]]) in ("un", "une", "one")]
    candidates = [r for r in runs if r not in lone_one]
    if not candidates and len(tokens) > 3:
        return None
    best = candidates[0] if candidates else runs[0]
    return SlotValue(float(best[0]), text[best[1] : best[2]])


def _parse_number(text: str, language: str) -> SlotValue | None:
    folded = fold(text)
    match = _NUMBER.search(folded)
    if match is None:
        return _number_words(text)
    value = _to_float(match.group("num"), match.group("sep"), language)
    suffix = match.group("suffix")
    if suffix:
        value *= _SCALE[suffix]
    if match.group("sign"):
        value = -value
    if not math.isfinite(value):
        return None
    return SlotValue(value, text[match.start() : match.end()].strip())


# --------------------------------------------------------------------------- email, phone

_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def _parse_email(text: str) -> SlotValue | None:
    match = _EMAIL.search(text)
    if match is None:
        return None
    local, _, domain = match.group().partition("@")
    local = local.strip(".")
    if not local:
        return None
    return SlotValue(f"{local}@{domain.lower()}", match.group())


def _parse_phone(text: str, default_region: str | None) -> SlotValue | None:
    region = default_region.upper() if default_region else None
    for match in phonenumbers.PhoneNumberMatcher(text, region):
        if phonenumbers.is_valid_number(match.number):
            return SlotValue(
                phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164),
                match.raw_string,
            )
    return None


# --------------------------------------------------------------------------- dates and times

_WEEKDAYS = {
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6,
    "tues": 1, "thurs": 3,
    "lundi": 0, "mardi": 1, "mercredi": 2, "jeudi": 3, "vendredi": 4, "samedi": 5, "dimanche": 6,
}  # fmt: skip
_RELATIVE_DAYS = [
    ("apres-demain", 2), ("apres demain", 2), ("day after tomorrow", 2), ("demain", 1), ("tomorrow", 1),
    ("tmrw", 1), ("aujourd'hui", 0), ("aujourd hui", 0), ("today", 0), ("tonight", 0), ("ce soir", 0),
    ("ce matin", 0), ("this morning", 0), ("this afternoon", 0), ("this evening", 0), ("cet apres-midi", 0),
    ("cet apres midi", 0),
]  # fmt: skip
_PERIODS = [
    ("apres-midi", 14), ("apres midi", 14), ("afternoon", 14), ("matinee", 9), ("matin", 9), ("morning", 9),
    ("soiree", 18), ("soir", 18), ("evening", 18), ("tonight", 18), ("midi", 12), ("noon", 12),
    ("lunchtime", 12), ("minuit", 0), ("midnight", 0),
]  # fmt: skip
_TIME_PATTERNS = [
    re.compile(r"(?<!\d)(?P<h>\d{1,2})(?:[:.](?P<m>\d{2}))?\s*(?P<ap>a\.?m\.?|p\.?m\.?)(?!\w)"),
    re.compile(r"(?<!\d)(?P<h>\d{1,2})\s*(?:h|heures?)(?:\s*(?P<m>\d{2}))?(?!\w)"),
    re.compile(r"(?<![\d/.])(?P<h>\d{1,2}):(?P<m>\d{2})(?!\d)"),
    re.compile(r"(?<!\w)(?:at|a|vers|around|about|for)\s+(?P<h>\d{1,2})(?![\d:/.,]|\s*(?:h|am|pm|[a-z]))"),
]


def _find_time(folded: str) -> tuple[int, int, tuple[int, int]] | None:
    for pattern in _TIME_PATTERNS:
        match = pattern.search(folded)
        if match is None:
            continue
        hour, minute = int(match.group("h")), int(match.groupdict().get("m") or 0)
        ap = (match.groupdict().get("ap") or "").replace(".", "")
        if ap:
            if not 1 <= hour <= 12:
                continue
            hour = hour % 12 + (12 if ap == "pm" else 0)
        elif pattern is _TIME_PATTERNS[3] and 1 <= hour <= 7:
            hour += 12  # "at 3" means 3 pm for a call-back
        if hour < 24 and minute < 60:
            return hour, minute, match.span()
    for word, hour in _PERIODS:
        match = _phrase_pattern(word).search(folded)
        if match:
            return hour, 0, match.span()
    return None


def _find_day(folded: str, today: date) -> tuple[date, tuple[int, int]] | None:
    for word, offset in _RELATIVE_DAYS:
        match = _phrase_pattern(word).search(folded)
        if match:
            return today + timedelta(days=offset), match.span()
    for word, weekday in _WEEKDAYS.items():
        match = _phrase_pattern(word).search(folded)
        if match:
            ahead = (weekday - today.weekday()) % 7 or 7
            span = match.span()
            around = re.search(
                r"(?:next|this|ce|coming)\s+" + word + r"|" + word + r"\s+(?:prochain|qui vient)", folded
            )
            if around:
                span = (min(span[0], around.start()), max(span[1], around.end()))
            return today + timedelta(days=ahead), span
    return None


_FILLERS = {
    "at", "on", "the", "for", "around", "about", "vers", "le", "la", "les", "de", "du", "des", "pour",
    "plutot",
    "please", "svp", "possible", "si", "if", "ok", "yes", "oui", "maybe", "would", "be", "great", "ideal",
    "works", "ca", "me", "va", "call", "appelez", "moi", "rappelez", "any", "time", "after", "before",
}  # fmt: skip


def _datelike(text: str) -> bool:
    """Whether anything but filler words is left once the time of day is taken out."""
    return any(w.isdigit() or (len(w) >= 3 and w not in _FILLERS) for w in _words(text))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _dateparser(text: str, language: str, base: datetime, zone_name: str) -> tuple[datetime, str] | None:
    import dateparser
    from dateparser.search import search_dates

    languages = list(dict.fromkeys([language, "en", "fr"]))
    settings: Any = {
        "RELATIVE_BASE": base.replace(tzinfo=None),
        "PREFER_DATES_FROM": "future",
        "TIMEZONE": zone_name,
        "RETURN_AS_TIMEZONE_AWARE": True,
    }
    try:
        parsed = dateparser.parse(text, languages=languages, settings=settings)
        if parsed is not None:
            return parsed, text.strip(" ,.;!?")
        found = search_dates(text, languages=languages, settings=settings)
    except (ValueError, TypeError, OverflowError):
        return None
    for substring, value in found or []:
        # search_dates also reads tiny fragments ("je" as jeudi): keep real dates only
        if any(w.isdigit() or len(w) >= 4 for w in _words(substring)):
            return value, substring
    return None


def _parse_datetime(text: str, *, language: str, now: float | None, timezone: str) -> SlotValue | None:
    if now is None:
        raise ValueError("parsing a datetime needs 'now' (seconds since the epoch)")
    zone = _zone(timezone)
    base = datetime.fromtimestamp(now, zone)
    folded = fold(text)
    found_time = _find_time(folded)
    found_day = _find_day(folded, base.date())
    spans: list[tuple[int, int]] = []
    result: datetime | None = None
    if found_day is not None:
        day, span = found_day
        spans.append(span)
        hour, minute = (found_time[0], found_time[1]) if found_time else (DEFAULT_HOUR, 0)
        result = datetime.combine(day, time(hour, minute), zone)
    else:
        rest = text
        if found_time is not None:
            rest = (
                text[: found_time[2][0]]
                + " " * (found_time[2][1] - found_time[2][0])
                + text[found_time[2][1] :]
            )
        parsed = _dateparser(rest, language, base, zone.key) if _datelike(rest) else None
        if parsed is not None:
            value, substring = parsed
            result = value.astimezone(zone) if value.tzinfo else value.replace(tzinfo=zone)
            start = text.find(substring)
            spans.append((start, start + len(substring)) if start >= 0 else (0, len(text)))
            mentions_time = found_time is not None or (result.hour, result.minute) != (0, 0)
            if found_time is not None and (result.hour, result.minute) == (0, 0):
                result = result.replace(hour=found_time[0], minute=found_time[1])
            elif not mentions_time:
                result = result.replace(hour=DEFAULT_HOUR, minute=0)
        elif found_time is not None:
            result = datetime.combine(base.date(), time(found_time[0], found_time[1]), zone)
            if result <= base:
                result += timedelta(days=1)
    if result is None:
        return None
    if found_time is not None:
        spans.append(found_time[2])
    start, end = min(s for s, _ in spans), max(e for _, e in spans)
    evidence = text[start:end].strip() or text.strip()
    return SlotValue(result.replace(second=0, microsecond=0).isoformat(), evidence)


# --------------------------------------------------------------------------- choices

_ORDINALS = {
    "first": 1, "premier": 1, "premiere": 1, "1st": 1, "1er": 1, "1ere": 1, "second": 2, "deuxieme": 2,
    "seconde": 2, "2nd": 2, "2e": 2, "2eme": 2, "third": 3, "troisieme": 3, "3rd": 3, "3e": 3, "3eme": 3,
    "fourth": 4, "quatrieme": 4, "4th": 4, "4e": 4, "fifth": 5, "cinquieme": 5, "5th": 5, "5e": 5,
}  # fmt: skip
_INDEX = re.compile(
    r"^(?:option|choix|choice|number|numero|no|n|le|la|the|#)?\s*(\d{1,2})\s*(?:st|nd|rd|th|er|e)?$"
)


def _labels(choice_id: str, labels: Sequence[str]) -> list[str]:
    out = [" ".join(_words(label)) for label in (*labels, choice_id.replace("_", " "))]
    return [label for label in dict.fromkeys(out) if label]


def _parse_choice(text: str, choices: Mapping[str, Sequence[str]], choice_id: str | None) -> SlotValue | None:
    if not choices:
        return None
    ids = list(choices)
    if choice_id is not None and choice_id in choices:
        return SlotValue(choice_id, text.strip() or choice_id)
    words = _words(text)
    joined = " ".join(words)
    if not joined:
        return None
    candidates = {cid: _labels(cid, labels) for cid, labels in choices.items()}
    for cid, labels in candidates.items():
        if joined in labels:
            return SlotValue(cid, text.strip())
    index_match = _INDEX.match(joined)
    ordinal = [_ORDINALS[w] for w in words if w in _ORDINALS] if len(words) <= 4 else []
    position = int(index_match.group(1)) if index_match else (ordinal[0] if len(ordinal) == 1 else None)
    if position is not None and 1 <= position <= len(ids):
        return SlotValue(ids[position - 1], text.strip())
    padded = f" {joined} "
    spans: dict[str, list[tuple[int, int]]] = {}
    for cid, labels in candidates.items():
        for label in labels:
            for match in re.finditer(re.escape(f" {label} "), padded):
                spans.setdefault(cid, []).append((match.start(), match.end()))
    if spans:
        # a label inside another option's longer label ("roof" in "flat roof") does not count
        def dominated(cid: str) -> bool:
            return all(
                any(
                    o != cid and s0 <= a and b <= s1 and (s1 - s0) > (b - a)
                    for o in spans
                    for s0, s1 in spans[o]
                )
                for a, b in spans[cid]
            )

        winners = [cid for cid in spans if not dominated(cid)]
        return SlotValue(winners[0], text.strip()) if len(winners) == 1 else None
    scores: dict[str, float] = {}
    for cid, labels in candidates.items():
        for label in labels:
            ratio = difflib.SequenceMatcher(None, joined, label).ratio()
            label_words = label.split()
            if len(label_words) == 1 and len(label) >= 4:
                for word in words:
                    if len(word) >= 4:
                        ratio = max(ratio, difflib.SequenceMatcher(None, word, label).ratio())
            scores[cid] = max(scores.get(cid, 0.0), ratio)
    if scores:
        top_score = max(scores.values())
        winners = [cid for cid, score in scores.items() if score == top_score]
        if top_score >= 0.8 and len(winners) == 1:
            return SlotValue(winners[0], text.strip())
    return None


# --------------------------------------------------------------------------- public API


def parse_slot(
    kind: str,
    text: str,
    *,
    language: str = "en",
    choices: Mapping[str, Sequence[str]] | None = None,
    choice_id: str | None = None,
    now: float | None = None,
    timezone: str = "UTC",
    default_region: str | None = None,
) -> SlotValue | None:
    """Read a value of ``kind`` from the lead's ``text``; ``None`` when it does not give one.

    ``choices`` maps each choice id to its labels (titles in every language and synonyms), in the
    order the options were shown (``"2"`` picks the second). ``choice_id`` is the id of a tapped
    reply button. ``now`` (seconds since the epoch, UTC) and ``timezone`` (IANA name) anchor
    relative dates; ``now`` is required for ``datetime`` (``ValueError`` otherwise).
    ``default_region`` (ISO 3166, e.g. ``"FR"``) reads phone numbers without a country code.
    """
    if kind == "choice":
        return _parse_choice(text or "", choices or {}, choice_id)
    if not text or not text.strip():
        return None
    if kind == "text":
        return SlotValue(text.strip(), text.strip())
    if kind == "yes_no":
        return _parse_yes_no(text)
    if kind == "number":
        return _parse_number(text, language)
    if kind == "email":
        return _parse_email(text)
    if kind == "phone":
        return _parse_phone(text, default_region)
    if kind == "datetime":
        return _parse_datetime(text, language=language, now=now, timezone=timezone)
    raise ValueError(f"unknown slot kind {kind!r}")


def normalise(
    kind: str,
    value: Any,
    *,
    language: str = "en",
    choices: Mapping[str, Sequence[str]] | None = None,
    now: float | None = None,
    timezone: str = "UTC",
    default_region: str | None = None,
) -> Any | None:
    """Check a value from an LLM or another system and convert it to the kind's shape.

    Accepts the canonical shape (e.g. ``True`` for yes_no, an ISO string for datetime; a naive
    datetime is taken in ``timezone``) or words that :func:`parse_slot` can read. Returns
    ``None`` for anything unusable.
    """
    if value is None:
        return None
    if kind == "text":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return None
        return str(value).strip() or None
    if kind == "yes_no":
        if isinstance(value, bool):
            return value
        return _value(parse_slot(kind, value, language=language)) if isinstance(value, str) else None
    if kind == "number":
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return float(value) if math.isfinite(value) else None
        return _value(parse_slot(kind, value, language=language)) if isinstance(value, str) else None
    if not isinstance(value, str | datetime):
        return None
    if kind == "email":
        if not isinstance(value, str):
            return None
        parsed = _parse_email(value)
        return parsed.value if parsed and parsed.evidence == value.strip() else None
    if kind == "phone":
        return _value(_parse_phone(value, default_region)) if isinstance(value, str) else None
    if kind == "datetime":
        return _normalise_datetime(value, language=language, now=now, timezone=timezone)
    if kind == "choice":
        if not isinstance(value, str) or not choices:
            return None
        if value in choices:
            return value
        return _value(_parse_choice(value, choices, None))
    return None


def _value(parsed: SlotValue | None) -> Any | None:
    return parsed.value if parsed is not None else None


def _normalise_datetime(
    value: str | datetime, *, language: str, now: float | None, timezone: str
) -> str | None:
    zone = _zone(timezone)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            if now is None:
                return None
            return _value(_parse_datetime(value, language=language, now=now, timezone=timezone))
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(zone).replace(microsecond=0).isoformat()
