"""Compliance keywords a lead can text on SMS and WhatsApp.

STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT (CTIA / Twilio's default opt-out keywords) and the
French ARRET / ARRÊT / STOP / DESABONNER (the French SMS+ code of conduct uses STOP; ARRET is
common) opt out; START, UNSTOP (and YES on US short codes is left out: too ambiguous in a sales
conversation) opt back in; HELP / AIDE asks for the sender's details. A keyword counts only when it
is the whole message, ignoring case, accents, spaces and punctuation, as carriers match them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

__all__ = ["Keyword", "classify_keyword"]

Keyword = Literal["stop", "start", "help"]

# Which channels honour keywords is each channel's ``traits.keyword_optouts`` (email uses the
# unsubscribe link and header).

_WORDS: dict[str, Keyword] = {
    **dict.fromkeys(
        ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ARRET", "DESABONNER", "DESINSCRIRE"],
        "stop",
    ),
    **dict.fromkeys(["START", "UNSTOP", "REPRENDRE"], "start"),
    **dict.fromkeys(["HELP", "INFO", "AIDE"], "help"),
}


_NOT_LETTER = re.compile(r"[^A-Z]")


def _fold(text: str) -> str:
    if text.isascii():  # nothing to decompose, no combining mark
        return _NOT_LETTER.sub("", text.upper())
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_LETTER.sub("", ascii_only.upper())


def classify_keyword(text: str) -> Keyword | None:
    """``stop`` / ``start`` / ``help`` when the whole message is such a keyword, else ``None``."""
    if len(text) > 40:
        return None
    return _WORDS.get(_fold(text))
