"""Which language the conversation continues in after a lead's message.

The interpreter says which language ONE message is written in (``Interpretation.language``); the
conversation's language (``ConversationState.language``, the language of every reply) follows the
lead by :func:`follow_language`:

* the conversation never goes into a language the playbook does not speak (``supported``);
* a message without language evidence ("ok", "👍", a number: ``detected`` is ``None``) changes
  nothing;
* the lead's first message with language evidence sets the language (until then it was only the
  bot's guess from the channel, the lead's profile or the playbook);
* a message that asks for a language in so many words ("in English please", "en français svp",
  "can we speak French?") switches to that language, however short;
* a message of at least :data:`SWITCH_WORDS` words in another language switches (a lead who writes
  a whole sentence in it has clearly switched);
* a shorter message in another language switches only when the lead's previous message with
  language evidence was in that language too (two in a row): one short French line in an English
  conversation ("je voudrais parler à quelqu'un") is answered in English.

Pure functions over the text's first :data:`MAX_CHARS` characters (linear, no backtracking).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["MAX_CHARS", "SWITCH_WORDS", "LanguageChoice", "asked_language", "follow_language"]

SWITCH_WORDS = 8
"""A message in another language of at least this many words switches the conversation at once."""
MAX_CHARS = 2000
"""Characters of a message read here (the first ones)."""

_WORD = re.compile(r"[^\W\d_]+")

#: Accent-folded names of a language, in English and French, by ISO 639-1 code.
_LANGUAGE_NAMES: dict[str, frozenset[str]] = {
    "en": frozenset({"english", "anglais"}),
    "fr": frozenset({"french", "francais"}),
}
#: Words that, next to a language's name, make the message a request to use it ("in English",
#: "en français", "speak French", "parlez anglais"). Accent-folded.
_REQUEST_WORDS = frozenset(
    {
        "in",
        "en",
        "speak",
        "talk",
        "write",
        "reply",
        "answer",
        "continue",
        "parler",
        "parlez",
        "parle",
        "ecrire",
        "ecrivez",
        "repondre",
        "repondez",
        "continuer",
        "continuons",
    }
)
#: Words that, right after a language's name, ask for it ("English please", "français svp").
_PLEASE = frozenset({"please", "pls", "plz", "svp", "stp"})


def _fold(word: str) -> str:
    if word.isascii():  # nothing to decompose, no combining mark
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _words(text: str) -> list[str]:
    return [_fold(w) for w in _WORD.findall(text[:MAX_CHARS])]


def asked_language(text: str, *, supported: tuple[str, ...] = ("en", "fr")) -> str | None:
    """The language among ``supported`` (ISO 639-1) that ``text`` asks the bot to use ("in English
    please", "English pls", "en français svp", "parlez-vous anglais ?"), else ``None``. A language's
    name alone ("French") or in another role ("I'm French") asks for nothing; a message naming two
    languages asks for none."""
    words = _words(text)
    asked: set[str] = set()
    for index, word in enumerate(words):
        for code, names in _LANGUAGE_NAMES.items():
            if code in supported and word in names:
                before = words[max(0, index - 2) : index]
                after = words[index + 1 : index + 2]
                if any(w in _REQUEST_WORDS for w in before) or any(w in _PLEASE for w in after):
                    asked.add(code)
    return next(iter(asked)) if len(asked) == 1 else None


@dataclass(frozen=True, slots=True)
class LanguageChoice:
    """The result of :func:`follow_language`: ``language``, the conversation's language from now on;
    ``lead_language``, the language of the lead's latest message with language evidence (kept on
    the state as ``ConversationState.lead_language``)."""

    language: str
    lead_language: str | None


def follow_language(
    *,
    current: str,
    lead_language: str | None,
    detected: str | None,
    text: str,
    supported: tuple[str, ...] = ("en", "fr"),
) -> LanguageChoice:
    """The conversation's language after the lead wrote ``text`` (see the module docstring).

    ``current``: the conversation's language so far; ``lead_language``: the language of the lead's
    previous message with language evidence (``None``: the lead has given none yet); ``detected``:
    the language of ``text`` per the interpreter (``None`` when unsure). Codes are ISO 639-1;
    ``supported``: the languages the conversation may continue in (the playbook's
    :meth:`~playbooks.schema.Playbook.spoken_languages`): it never follows the lead into another
    one. Never raises."""
    asked = asked_language(text, supported=supported)
    if asked is not None:
        return LanguageChoice(language=asked, lead_language=asked)
    if detected is None:
        return LanguageChoice(language=current, lead_language=lead_language)
    detected = detected.lower()
    if detected == current or detected not in supported:
        return LanguageChoice(language=current, lead_language=detected)
    switch = lead_language is None or lead_language == detected or len(_words(text)) >= SWITCH_WORDS
    return LanguageChoice(language=detected if switch else current, lead_language=detected)
