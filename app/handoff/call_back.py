"""A handoff the lead asked for on the phone ("vous pouvez me rappeler ?"): which number to call,
how to show it, and what the lead is told (pure functions, no I/O).

Numbers are E.164 strings; a region is an ISO 3166 code; times are floats, seconds since the Unix
epoch (UTC).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

import phonenumbers

from app.conversations.records import Lead
from app.core import i18n
from app.handoff.hours import OfficeHours, describe_delay, describe_hours, describe_moment
from app.handoff.mail_labels import mail_label
from playbooks.interpret import looks_like_question, mentions_moment
from playbooks.slots import lead_regions, parse_slot

__all__ = [
    "SHOWN_NOTE_CHARS",
    "call_back_lines",
    "display_number",
    "known_number",
    "moment_words",
    "next_notice",
    "number_again",
    "one_line",
    "read_number",
]

SHOWN_NOTE_CHARS = 300
"""The team's e-mail shows each of the lead's words (a note, the moment) cut to this many characters."""

#: Where a lead writing in a language may live, for a number the tenant's region does not read
#: ("07700 900123" from an English lead of a French tenant).
_LANGUAGE_REGIONS: dict[str, tuple[str, ...]] = {
    "en": ("GB", "US", "IE", "CA", "AU"),
    "fr": ("FR", "BE", "CH", "CA", "LU"),
}


def display_number(e164: str, region: str | None) -> str:
    """``e164`` written for people: the national form when the number is of ``region`` (``"07700
    900123"`` for a UK number and ``"GB"``), else the international one (``"+44 7700 900123"``);
    ``e164`` as it is when libphonenumber cannot read it."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    local = region is not None and phonenumbers.region_code_for_number(number) == region.upper()
    style = phonenumbers.PhoneNumberFormat.NATIONAL if local else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(number, style)


def known_number(lead: Lead, slot_kinds: Mapping[str, str]) -> str | None:
    """The number to call the lead back on: their ``phone``, else the value of a ``phone`` slot of
    the playbook (``slot_kinds``: slot -> kind) they gave in the conversation; ``None`` if none."""
    if lead.phone:
        return lead.phone
    for slot, kind in slot_kinds.items():
        value = lead.slots.get(slot)
        if kind == "phone" and isinstance(value, str) and value.startswith("+"):
            return value
    return None


def read_number(text: str, *, lead: Lead, default_region: str | None) -> str | None:
    """The phone number (E.164) in the lead's ``text``, read with the lead's likely regions then
    ``default_region`` for a number without a country code, then the regions of the lead's
    language; ``None`` when the text gives none."""
    regions: Sequence[str] = lead_regions(timezone=lead.timezone, phone=lead.phone)
    found = parse_slot("phone", text, default_region=default_region, regions=regions)
    if found is None:
        spoken = _LANGUAGE_REGIONS.get((lead.language or "").split("-")[0].lower(), ())
        found = parse_slot("phone", text, regions=spoken)
    return str(found.value) if found is not None else None


def next_notice(
    *,
    call_back: bool,
    number: str | None,
    language: str,
    hours: OfficeHours,
    now: float,
    response_minutes: int,
    region: str | None,
) -> str:
    """What the lead is told happens next, in ``language``: a person answers here (``call_back``
    false), calls back on ``number`` (shown with :func:`display_number`), or, for a call-back with
    no known ``number``, the question "which number?". Within ``response_minutes`` when the team
    is in at ``now``, else at the next opening of ``hours``."""
    if call_back and number is None:
        return i18n.text("handoff_call_back_number", language)
    shown = {"phone": display_number(number, region)} if call_back and number is not None else {}
    opening = hours.next_opening(now)
    key = "handoff_call_back" if call_back else "handoff_next"
    if opening is not None and opening > now:
        return i18n.text(
            f"{key}_closed",
            language,
            hours=describe_hours(hours, language),
            reopen=describe_moment(opening, hours, now, language),
            **shown,
        )
    return i18n.text(
        key,
        language,
        delay=describe_delay(response_minutes, language),
        hours=describe_hours(hours, language),
        **shown,
    )


def moment_words(text: str) -> str | None:
    """The lead's words (spaces collapsed, at most 200 characters) when ``text`` names a moment to
    call ("plutôt demain matin", "call me tomorrow after 6pm": :func:`playbooks.interpret.mentions_moment`),
    else ``None``. Only the first 2000 characters are read."""
    words = " ".join(text[:2000].split())
    return words[:200] if mentions_moment(words) else None


def number_again(text: str, language: str) -> tuple[str, str | None]:
    """What a lead is told whose reply (``text``) to "which number?" gave none, in ``language``,
    and the time to call their words give, if any (at most 200 characters): their question ("what
    number do you need?") answered, their time ("plutôt demain matin") said to be passed on, else
    a plain apology; each time with the question asked again."""
    words = " ".join(text[:2000].split())  # a pasted essay is cut, never read whole
    when = moment_words(words)
    if looks_like_question(words):
        return i18n.text("handoff_number_which", language), when
    if when is not None:
        quoted = when if len(when) <= 80 else when[:79] + "…"
        return i18n.text("handoff_number_again_when", language, when=quoted), when
    return i18n.text("handoff_number_again", language), when


def one_line(words: str, limit: int = SHOWN_NOTE_CHARS) -> str:
    """The lead's ``words`` as one line of a plain-text e-mail: control and format characters (line
    breaks, tabs, bidirectional overrides) as spaces, runs of spaces as one, at most ``limit``
    characters (a cut ends with "…"). Only the first ``4 * limit`` characters are read."""
    kept = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in words[: 4 * limit])
    line = " ".join(kept.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def call_back_lines(when: str | None, notes: Sequence[str], language: str) -> list[str]:
    """The lines of the team's e-mail about a call-back (``language``: the tenant's, French or
    English, any other gives English): the moment the lead would like to be called (``when``, their
    words) and their replies that gave no number (``notes``, oldest first), each quoted on one line
    (:func:`one_line`). Empty when there is neither."""
    lines = [mail_label("when", language, when=one_line(when))] if when and when.strip() else []
    shown = [one_line(words) for words in notes if words.strip()]
    if shown:
        lines += [mail_label("notes", language), *(mail_label("note", language, words=w) for w in shown)]
    return lines
