"""French typography of the bot's outgoing texts: a no-break space before ``? ! ; :`` and inside
« guillemets », so that a chat bubble never wraps a ``?`` alone onto its own line.

One place applies it (:func:`app.conversations.planning.append_outbound`, where a bot's text
becomes a message), to every text the bot sends in French: the playbook's, the engine's, the app's
own and the model's replies. URLs, e-mail addresses and times (``10:30``) are left as they are.
"""

from __future__ import annotations

import re

__all__ = ["NARROW_NBSP", "NBSP", "french_spacing"]

NBSP = "\u00a0"
"""No-break space: before ``:`` and inside « »."""
NARROW_NBSP = "\u202f"
"""Narrow no-break space: before ``?``, ``!`` and ``;``."""

_SPACE_BEFORE = {"?": NARROW_NBSP, "!": NARROW_NBSP, ";": NARROW_NBSP, ":": NBSP}

_SPACE = r"[ \t\u00a0\u202f]"
_MARKS = (
    rf"(?P<spaced>{_SPACE}{{1,16}})(?P<mark>[?!;:])"  # a space of any kind before the mark
    r"|(?<=[^\W\d_]|[»)])(?P<glued>[?!;:])(?=\s|$|[?!.…)»\"'])"  # the mark glued to a word's end
    rf"|«{_SPACE}{{0,16}}"  # opening guillemet
    rf"|{_SPACE}{{0,16}}»"  # closing guillemet
)
_PIECES = re.compile(
    r"(?P<keep>(?:https?://|www\.)\S+|[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8})|" + _MARKS
)
"""A URL or an e-mail address (kept as it is), or a place to fix. Every run is bounded (an
address's parts by RFC 5321's lengths, spaces to 16), so no text makes the scan quadratic:
unbounded runs took 1.9 s over 20,000 word characters with no "@" (the event loop's time)."""
_MARKS_ONLY = re.compile(_MARKS)
"""The places to fix, for a text with no URL or address in it (no "@", "://" or "www.")."""


def _fix(match: re.Match[str]) -> str:
    kept = match.groupdict().get("keep")
    if kept is not None:
        return kept
    mark = match.group("mark") or match.group("glued")
    if mark is not None:
        return _SPACE_BEFORE[mark] + mark
    return "«" + NBSP if match.group().startswith("«") else NBSP + "»"


def french_spacing(text: str) -> str:
    """``text`` with French no-break spaces: U+202F before ``?``, ``!``, ``;``, U+00A0 before
    ``:``, after « and before » (a plain space there is replaced, a missing one added after a
    word). A ``:`` or ``?`` inside a URL, an e-mail address or a time (``10:30``) is untouched.
    Idempotent."""
    if not any(c in text for c in "?!;:«»"):
        return text
    linked = "@" in text or "://" in text or "www." in text
    return (_PIECES if linked else _MARKS_ONLY).sub(_fix, text)
