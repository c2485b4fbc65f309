"""Match a lead's words to the options of a ``choice`` question, in French and English.

:func:`match_choice` reads, in this order: a tapped reply button; the exact words of an option
(title, synonym or id); its number or ordinal ("2", "the second one", "le dernier"); the option's
words found in the message, compared by stem (Snowball), prefix ("appart") and typo distance
(rapidfuzz, https://rapidfuzz.github.io/RapidFuzz/Usage/fuzz.html#ratio), without French or
English stop words; a relative period mapped onto options that name a period ("in five months"
-> "In 3 to 6 months", "after the winter", "dans deux mois"); then "none of these".

The result says which option was meant (``value``), or which options are close (``candidates``,
the caller asks which one), or that the lead described something none of the options covers
(``other``: a kitchen when the options are insulation works). Matching is bounded: messages are
cut to :data:`MAX_CHARS` characters and labels to their first 12 words.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import snowballstemmer
from rapidfuzz import fuzz

from playbooks.slots import fold

__all__ = ["MAX_CHARS", "ChoiceMatch", "match_choice", "months_ahead"]

MAX_CHARS = 1000
"""Only the first characters of a message are matched against options."""

_STOP = set(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "and",
        "or",
        "but",
        "with",
        "my",
        "our",
        "your",
        "is",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "be",
        "am",
        "are",
        "was",
        "i",
        "we",
        "you",
        "he",
        "she",
        "they",
        "me",
        "us",
        "them",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "just",
        "really",
        "very",
        "so",
        "too",
        "some",
        "any",
        "one",
        "ones",
        "please",
        "thanks",
        "thank",
        "ok",
        "okay",
        "well",
        "yes",
        "like",
        "would",
        "want",
        "wanted",
        "need",
        "needs",
        "think",
        "guess",
        "maybe",
        "probably",
        "mostly",
        "mainly",
        "also",
        "again",
        "about",
        "around",
        "more",
        "most",
        "less",
        "le",
        "la",
        "les",
        "l",
        "un",
        "une",
        "des",
        "de",
        "du",
        "d",
        "et",
        "ou",
        "mais",
        "avec",
        "mon",
        "ma",
        "mes",
        "notre",
        "nos",
        "votre",
        "vos",
        "son",
        "sa",
        "ses",
        "ce",
        "cet",
        "cette",
        "ces",
        "c",
        "est",
        "en",
        "au",
        "aux",
        "a",
        "pour",
        "par",
        "sur",
        "dans",
        "je",
        "j",
        "nous",
        "vous",
        "il",
        "elle",
        "on",
        "ils",
        "elles",
        "me",
        "m",
        "te",
        "t",
        "se",
        "s",
        "y",
        "plutot",
        "oui",
        "non",
        "merci",
        "svp",
        "stp",
        "bien",
        "tres",
        "trop",
        "un",
        "peu",
        "alors",
        "donc",
        "bah",
        "ben",
        "euh",
        "bon",
        "voila",
        "veux",
        "voudrais",
        "voudrait",
        "souhaite",
        "souhaiterais",
        "aimerais",
        "faire",
        "fais",
        "refaire",
        "redo",
        "do",
        "done",
        "make",
        "get",
        "got",
        "qu",
        "que",
        "qui",
        "quoi",
        "chez",
        "tout",
        "ca",
        "cela",
        "c'est",
        "serait",
        "sera",
        "ete",
        "etre",
        "avoir",
        "ai",
        "as",
        "avons",
        "avez",
        "ont",
        "thing",
        "things",
        "chose",
        "choses",
        "option",
        "options",
        "choice",
        "choix",
        "one",
        "ones",
    ]
)
"""Words that say nothing about which option is meant."""

_GENERIC = {
    "tout", "toute", "tous", "toutes", "all", "everything", "global", "globale", "complete", "complet",
    "entier", "entiere", "whole", "general", "generale", "total", "totale",
}  # fmt: skip
"""Words too vague to pick an option alone when the message also names something else."""

_NEGATIONS = frozenset({"no", "not", "non", "pas", "ne", "nope", "nan", "never", "jamais"})
"""Words that negate: a label they do not negate in the message ("not this year", "pas la pompe")
is not chosen, and a label holding one ("pas pressé") is not chosen without it ("je suis pressé")."""
_WEAK_ALONE = _NEGATIONS | {
    "next", "prochain", "prochaine", "few", "quelques", "plus", "more", "less", "moins",
    "day", "days", "jour", "jours", "week", "weeks", "semaine", "semaines", "month", "months", "mois",
    "year", "years", "an", "ans", "annee", "annees",
}  # fmt: skip
"""Words that only qualify or count: a partial match made of them alone chooses nothing ("next
tuesday" is not "next year", "no" is not "no idea", "80 a month" is not "few months")."""

_NONE = re.compile(
    r"(?<!\w)(?:none of (?:these|them|the above|those)|none|neither|something else|another thing|other|"
    r"aucun(?:e)?(?: des (?:deux|trois|options|choix))?|ni l'un ni l'autre|autre chose|autre|rien de tout ca)"
    r"(?!\w)"
)
_NONE_FIRST = re.compile(
    r"^(?:none of (?:these|them|the above|those)|none|neither|something else|other|"
    r"aucun(?:e)?(?: de (?:ceux|celles)(?: la| ci)?)?"
    r"|ni l'un ni l'autre|autre chose|rien de tout ca)(?!\w)"
)
_UNSURE_CHOICE = re.compile(
    r"(?<!\w)(?:not sure|unsure|don'?t know|dont know|do not know|dunno|idk|no idea|no clue|not a clue|"
    r"aucune idee|"
    r"je ne sais pas|j'?sais pas|sais pas|chais pas|pas sur|pas certain|ne sais pas)(?!\w)"
)
_ORDINALS = {
    "first": 1, "premier": 1, "premiere": 1, "1st": 1, "1er": 1, "1ere": 1, "second": 2, "deuxieme": 2,
    "seconde": 2, "2nd": 2, "2e": 2, "2eme": 2, "third": 3, "troisieme": 3, "3rd": 3, "3e": 3, "3eme": 3,
    "fourth": 4, "quatrieme": 4, "4th": 4, "4e": 4, "4eme": 4, "fifth": 5, "cinquieme": 5, "5th": 5,
    "5e": 5, "5eme": 5, "last": -1, "dernier": -1, "derniere": -1,
}  # fmt: skip
_INDEX = re.compile(
    r"^(?:(?:i (?:choose|pick|take)|je (?:prends|choisis)|option|choix|choice|number|numero|num|no|n|le|la|"
    r"the|#)\s*)*(\d{1,2})\s*(?:st|nd|rd|th|er|e|eme)?(?:\s*(?:one|please|svp|stp|merci|thanks))*$"
)
_RANKED_TIME = frozenset(
    {"year", "years", "month", "months", "week", "weeks", "time", "night", "summer", "winter", "spring",
     "autumn", "an", "annee", "mois", "semaine", "fois", "ete", "hiver", "printemps", "automne", "nuit"}
)  # fmt: skip
"""Words that make a rank word next to them a moment ("last year", "l'an dernier"), not an option."""
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "eighteen": 18, "twenty": 20, "un": 1, "une": 1, "deux": 2,
    "trois": 3, "quatre": 4, "cinq": 5, "sept": 7, "huit": 8, "neuf": 9, "dix": 10, "onze": 11,
    "douze": 12, "dix-huit": 18, "vingt": 20, "a": 1,
}  # fmt: skip
_FEW = {"couple": 2, "few": 3, "quelques": 3, "several": 4, "plusieurs": 4}


class _Stemmers(threading.local):
    """Snowball stemmers keep per-word state in the instance: one pair per thread (the offline
    interpreter reads texts in a worker thread while the event loop may match choices)."""

    def __init__(self) -> None:
        self.pair = (snowballstemmer.stemmer("french"), snowballstemmer.stemmer("english"))


_STEMMERS = _Stemmers()


@dataclass(frozen=True, slots=True)
class ChoiceMatch:
    """What :func:`match_choice` understood.

    ``value``: the chosen id, or ``None``. ``evidence``: the words that chose it. ``candidates``:
    the close ids when the words fit two or three options about equally (``value`` is then
    ``None``). ``other``: the lead described something none of the options covers, or said
    "none of these" (``value`` is then the id of an "other" option if the question has one).
    ``declined``: with ``other``, the lead said so outright ("none of these", "autre chose"), rather
    than writing words that merely match no option. ``fuzzy``: with ``value``, the option was read
    from misspelt, shortened or partial words ("isolasion des comble", "witin 3 monts"), not from
    its words, a number or a period: worth saying back so the lead can correct it.
    """

    value: str | None = None
    evidence: str = ""
    candidates: tuple[str, ...] = field(default_factory=tuple)
    other: bool = False
    declined: bool = False
    fuzzy: bool = False


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    stems: frozenset[str]


@lru_cache(maxsize=4096)
def _stems(word: str) -> frozenset[str]:
    return frozenset({word, *(s.stemWord(word) for s in _STEMMERS.pair)})


def _tokens(text: str, *, keep_stop: bool = False) -> list[_Token]:
    """The words of ``text`` (its first :data:`MAX_CHARS` characters), folded, with their stems;
    stop words dropped unless ``keep_stop``. A fresh list (callers may change it) of cached
    tokens: labels, synonyms and questions are tokenised once per process, not once per message."""
    return list(_token_tuple(text[:MAX_CHARS], keep_stop))


@lru_cache(maxsize=8192)  # bounded: at most 8,192 texts of at most MAX_CHARS characters
def _token_tuple(text: str, keep_stop: bool) -> tuple[_Token, ...]:
    words = re.findall(r"[a-z0-9]+(?:'[a-z]+)?", fold(text))
    out: list[_Token] = []
    for word in words:
        for part in word.split("'"):
            if part and (keep_stop or part not in _STOP):
                out.append(_Token(part, _stems(part)))
    return tuple(out)


def _subsequence(short: str, long_: str) -> bool:
    letters = iter(long_)
    return all(char in letters for char in short)


def _exact(a: _Token, b: _Token) -> bool:
    return bool(a.stems & b.stems)


_ENDINGS = frozenset({"", "s", "es", "x", "e", "ee", "ees", "d", "ed", "ing", "y", "ies"})
"""What tells apart two forms of one word, folded, English and French: a plural ("tiles",
"chaudieres", "batteries"), a feminine ("isolee"), a past ("pitched", "tiled") or "-ing"."""


def _spelt(a: _Token, b: _Token) -> bool:
    """Whether message word ``a`` is label word ``b`` as such, not misspelt: the same word, or one
    stem and endings of :data:`_ENDINGS` only ("tiled" for "tile"). A Snowball stemmer also strips
    what a typo added: French reads "tilez" or "tuilez" as a verb in "-ez", one stem with "tile"."""
    if a.text == b.text:
        return True
    if not a.stems & b.stems:
        return False
    size = 0
    for x, y in zip(a.text, b.text, strict=False):
        if x != y:
            break
        size += 1
    return a.text[size:] in _ENDINGS and b.text[size:] in _ENDINGS


def _same(a: _Token, b: _Token) -> bool:
    """Whether two words name the same thing: a shared stem, a prefix (abbreviation), or a typo."""
    if a.stems & b.stems:
        return True
    short, long_ = sorted((a.text, b.text), key=len)
    if short.isdigit() or long_.isdigit():
        return False
    if len(short) >= 4 and len(long_) - len(short) >= 3 and long_.startswith(short):
        return True  # an abbreviation: "appart", "reno"
    if (
        len(short) >= 3
        and len(long_) - len(short) >= 4
        and short[0] == long_[0]
        and sum(c in "aeiouy" for c in short[1:]) <= 1
        and _subsequence(short, long_)
    ):
        return True  # a contraction: "appt", "bdrm"
    return len(short) >= 4 and short[0] == long_[0] and fuzz.ratio(a.text, b.text) >= 85


# --------------------------------------------------------------------------- periods

_MONTHS = {
    "january": 1, "janvier": 1, "jan": 1, "janv": 1, "february": 2, "fevrier": 2, "feb": 2, "fev": 2,
    "march": 3, "mars": 3, "april": 4, "avril": 4, "apr": 4, "may": 5, "mai": 5, "june": 6, "juin": 6,
    "july": 7, "juillet": 7, "august": 8, "aout": 8, "aug": 8, "september": 9, "septembre": 9, "sept": 9,
    "october": 10, "octobre": 10, "oct": 10, "november": 11, "novembre": 11, "nov": 11, "december": 12,
    "decembre": 12, "dec": 12,
}  # fmt: skip
_SEASONS = {  # (month, day) the season starts, (month, day) it ends
    "spring": ((3, 20), (6, 20)), "printemps": ((3, 20), (6, 20)), "summer": ((6, 21), (9, 21)),
    "ete": ((6, 21), (9, 21)), "autumn": ((9, 22), (12, 20)), "fall": ((9, 22), (12, 20)),
    "automne": ((9, 22), (12, 20)), "winter": ((12, 21), (3, 19)), "hiver": ((12, 21), (3, 19)),
}  # fmt: skip
_UNIT_MONTHS = {
    "month": 1.0, "months": 1.0, "mois": 1.0, "week": 0.23, "weeks": 0.23, "semaine": 0.23,
    "semaines": 0.23, "year": 12.0, "years": 12.0, "an": 12.0, "ans": 12.0, "annee": 12.0, "annees": 12.0,
    "day": 1 / 30, "days": 1 / 30, "jour": 1 / 30, "jours": 1 / 30,
}  # fmt: skip
_UNIT = r"(months?|mois|weeks?|semaines?|years?|ans?|annees?|days?|jours?)"
_QTY = r"(\d+(?:[.,]\d+)?|" + "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True)) + r")"
_RANGE = re.compile(
    r"(?<![\w'])" + _QTY + r"\s*(?:a|to|-|–|and|et|or|ou)\s*" + _QTY + r"\s*" + _UNIT + r"(?!\w)"
)
_MORE = re.compile(
    r"(?<!\w)(?:more than|over|plus de|later than|after|apres|au-dela de|au dela de|beyond|not before|"
    r"pas avant|"
    r"at least|au moins)\s+(?:the\s+next\s+|les\s+)?" + _QTY + r"\s*" + _UNIT + r"(?!\w)"
)
_LESS = re.compile(
    r"(?<!\w)(?:within|under|less than|moins de|d'ici|d ici|sous|in the next|in the coming|dans les|"
    r"before|avant|max|maximum|up to|jusqu'a)\s+(?:the\s+next\s+|les\s+prochains?\s+|the\s+)?"
    + _QTY
    + r"\s*"
    + _UNIT
    + r"(?!\w)"
)
_FEW_UNIT = re.compile(
    r"(?<!\w)(?:a\s+)?(couple|few|quelques|several|plusieurs)\s+(?:of\s+)?(?:more\s+)?" + _UNIT + r"(?!\w)"
)
_PLAIN = re.compile(
    r"(?:(?<!\w)(?:in|dans|within|d'ici|en|about|around|environ|approx|maybe|say)\s+)?(?<![\w-])"
    + _QTY
    + r"\s*"
    + _UNIT
    + r"(?!\w)"
)
_NEXT_UNIT = re.compile(
    r"(?<!\w)(?:next|le|la|l')\s*(month|week|year|mois|semaine|annee|an)\s*(?:prochaine?)?(?!\w)"
)
_LATER = re.compile(r"(?<!\w)(?:later|plus tard|next year|l'annee prochaine|l'an prochain|pas presse)(?!\w)")
_SEASON = re.compile(
    r"(?<!\w)(?:(before|avant|by|d'ici|after|apres|this|ce|cet|cette|en|in|au|in the|at the|for|pour|"
    r"during|pendant|"
    r"end of|fin|debut|early|start of|beginning of)\s+(?:the\s+|l'|le\s+|la\s+|de\s+l'|du\s+|d'\s*)?)?"
    r"(spring|printemps|summer|ete|autumn|fall|automne|winter|hiver)(?!\w)"
)
_MONTH = re.compile(
    r"(?:(before|avant|by|d'ici|after|apres|en|in|for|pour|fin|end of|debut|early|start of|mi|mid)\s*-?\s*)?"
    r"(?<![\w])(" + "|".join(sorted(map(re.escape, _MONTHS), key=len, reverse=True)) + r")(?!\w)"
)
_YEAR_END = re.compile(
    r"(?:end of (?:the|this) year|fin (?:de l'|d')annee|fin de cette annee|year end|later this year|"
    r"plus tard cette annee|before the end of the year|avant la fin de l'annee)"
)
_CHRISTMAS = re.compile(
    r"(?<!\w)(before|avant|by|d'ici|pour)?\s*(?:the\s+)?(?:christmas|xmas|noel|les fetes)(?!\w)"
)


_PERIOD_WORD = re.compile(r"(?:in|within|dans|d'ici|en|about|around|environ|approx|maybe|say)\s")


def _qty(word: str) -> float:
    if word in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[word])
    return float(word.replace(",", "."))


def _until(now: datetime, month: int, day: int) -> float:
    target = date(now.year, month, day)
    if target < now.date():
        target = date(now.year + 1, month, day)
    return (target - now.date()).days / 30.44


def months_ahead(text: str, *, now: float, timezone: str = "UTC") -> tuple[float, str] | None:
    """How many months from ``now`` (seconds since the epoch) the lead's period means, and its words.

    Reads durations ("in five months", "dans deux mois", "within 6 weeks", "2-3 months", "a couple
    of months", "next month"), seasons ("before summer", "after the winter", "au printemps") and
    months ("in March", "d'ici mars"), French and English; ``None`` when there is none. A season or
    a month is measured to its start (to its end after "after"); an explicit duration wins over a
    season. Never raises.
    """
    folded = fold(text[:MAX_CHARS])
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    today = datetime.fromtimestamp(now, zone)
    match = _RANGE.search(folded)
    if match:
        unit = _UNIT_MONTHS[match.group(3)]
        return (_qty(match.group(1)) + _qty(match.group(2))) / 2 * unit, match.group(0)
    match = _MORE.search(folded)
    if match:
        return _qty(match.group(1)) * _UNIT_MONTHS[match.group(2)] + 0.5, match.group(0)
    match = _LESS.search(folded)
    if match:
        return _qty(match.group(1)) * _UNIT_MONTHS[match.group(2)], match.group(0)
    match = _FEW_UNIT.search(folded)
    if match:
        return _FEW[match.group(1)] * _UNIT_MONTHS[match.group(2)], match.group(0)
    for match in _PLAIN.finditer(folded):
        # "180 € a month" is a rate, "in a month" / "dans un mois" a period
        if match.group(1) in ("a", "un", "une") and not _PERIOD_WORD.match(match.group(0)):
            continue
        return _qty(match.group(1)) * _UNIT_MONTHS[match.group(2)], match.group(0)
    match = _NEXT_UNIT.search(folded)
    if match and (match.group(0).startswith("next") or "prochain" in match.group(0)):
        word = match.group(1)
        return {"month": 1.0, "mois": 1.0, "week": 0.25, "semaine": 0.25}.get(word, 12.0), match.group(0)
    match = _YEAR_END.search(folded)
    if match:
        return _until(today, 12, 31), match.group(0)
    match = _CHRISTMAS.search(folded)
    if match:
        months = _until(today, 12, 25)
        return (months / 2 if match.group(1) else months), match.group(0)
    match = _SEASON.search(folded)
    if match:
        word, season = match.group(1) or "", match.group(2)
        start, end = _SEASONS[season]
        in_season = _until(today, *end) < _until(today, *start)
        if word in ("after", "apres"):
            return _until(today, *end) + 0.3, match.group(0)
        if word in ("end of", "fin"):
            return _until(today, *end), match.group(0)
        if re.search(r"(?:pas|not)\s*$", folded[: match.start()]) and word in ("before", "avant"):
            return _until(today, *start) + 0.3, match.group(0)  # "pas avant l'été"
        if in_season and word not in ("before", "avant", "by", "d'ici"):
            return 0.5, match.group(0)
        if word in ("before", "avant", "by", "d'ici"):
            return _until(today, *start) / 2, match.group(0)  # some time between now and then
        return _until(today, *start), match.group(0)
    match = _MONTH.search(folded)
    if match:
        word, name = match.group(1) or "", match.group(2)
        if name in ("mars", "may", "mai") and not word:
            return None  # "mars"/"may" alone are too often other words
        month = _MONTHS[name]
        if word in ("after", "apres", "fin", "end of"):
            months = _until(today, month, 28)
        elif word in ("mi", "mid"):
            months = _until(today, month, 15)
        else:
            months = _until(today, month, 1)
        return months, match.group(0)
    return None


def _label_range(label: str) -> tuple[float, float] | None:
    folded = fold(label)
    match = _RANGE.search(folded)
    if match:
        unit = _UNIT_MONTHS[match.group(3)]
        return _qty(match.group(1)) * unit, _qty(match.group(2)) * unit
    match = _MORE.search(folded)
    if match:
        return _qty(match.group(1)) * _UNIT_MONTHS[match.group(2)], float("inf")
    match = _LESS.search(folded) or _PLAIN.search(folded)
    if match:
        return 0.0, _qty(match.group(1)) * _UNIT_MONTHS[match.group(2)]
    return None


def _period_ranges(choices: Mapping[str, Sequence[str]]) -> dict[str, tuple[float, float]]:
    ranges: dict[str, tuple[float, float]] = {}
    for cid, labels in choices.items():
        for label in labels:
            found = _label_range(label)
            if found is not None:
                ranges[cid] = found
                break
    if ranges:
        top = (
            max(hi for _, hi in ranges.values() if hi != float("inf"))
            if any(hi != float("inf") for _, hi in ranges.values())
            else None
        )
        if top is not None and not any(hi == float("inf") for _, hi in ranges.values()):
            for cid, labels in choices.items():
                if cid not in ranges and any(_LATER.search(fold(label)) for label in labels):
                    ranges[cid] = (top, float("inf"))
                    break
    return ranges


# --------------------------------------------------------------------------- matching


def _labels(choice_id: str, labels: Sequence[str]) -> list[str]:
    return list(_label_forms(choice_id, tuple(labels)))


@lru_cache(maxsize=4096)  # labels are the playbook's constants: computed once per process
def _label_forms(choice_id: str, labels: tuple[str, ...]) -> tuple[str, ...]:
    out = [
        " ".join(re.findall(r"[a-z0-9]+", fold(label))[:12])
        for label in (*labels, choice_id.replace("_", " "))
    ]
    return tuple(label for label in dict.fromkeys(out) if label)


def _label_hits(
    label: Sequence[_Token],
    message: list[_Token],
    *,
    exact: bool = False,
    same: Callable[[_Token, _Token], bool] | None = None,
) -> list[int]:
    """Indexes of message tokens that match the label's tokens (each label token used once):
    by ``same`` when given, else by stem (``exact``) or :func:`_same`."""
    used: list[int] = []
    same = same or (_exact if exact else _same)
    for token in label:
        for index, word in enumerate(message):
            if index not in used and same(token, word):
                used.append(index)
                break
    return used


def _position(words: list[str], count: int) -> int | None:
    joined = " ".join(words)
    match = _INDEX.match(joined)
    if match:
        return int(match.group(1))
    if len(words) > 6:
        return None
    # "last year", "la semaine dernière", "first time": a moment, not the option's rank
    ordinal = [
        _ORDINALS[w]
        for i, w in enumerate(words)
        if w in _ORDINALS
        and not (i + 1 < len(words) and words[i + 1] in _RANKED_TIME)
        and not (i > 0 and words[i - 1] in _RANKED_TIME)
    ]
    if len(ordinal) == 1:
        return count if ordinal[0] == -1 else ordinal[0]
    return None


@lru_cache(maxsize=1024)  # labels are the playbooks' constants: indexed once per question
def _stem_index(
    labels: tuple[tuple[str, tuple[str, ...]], ...],
) -> tuple[dict[str, tuple[tuple[int, int], ...]], tuple[tuple[str, str, int], ...]]:
    """For strict matching: ``stem -> ((label number, word position), ...)`` over every label's
    words, and the labels in the order shown as ``(option id, label, word count)``."""
    index: dict[str, list[tuple[int, int]]] = {}
    order: list[tuple[str, str, int]] = []
    for cid, options in labels:
        for label in options:
            tokens = _token_tuple(label[:MAX_CHARS], False)
            number = len(order)
            order.append((cid, label, len(tokens)))
            for position, token in enumerate(tokens):
                for stem in token.stems:
                    index.setdefault(stem, []).append((number, position))
    return {stem: tuple(found) for stem, found in index.items()}, tuple(order)


def _whole_label_candidates(
    labels: tuple[tuple[str, tuple[str, ...]], ...], message: Sequence[_Token]
) -> list[tuple[str, str]]:
    """The ``(option id, label)`` pairs, in the order shown, whose every word shares a stem with a
    word of ``message``: the only labels a strict match can find whole. Costs the message's stems,
    not the labels' count (a question of 40 labels, most messages naming none of them)."""
    index, order = _stem_index(labels)
    seen: dict[int, set[int]] = {}
    for token in message:
        for stem in token.stems:
            for number, position in index.get(stem, ()):
                seen.setdefault(number, set()).add(position)
    return [
        (order[number][0], order[number][1])
        for number in sorted(seen)
        if len(seen[number]) == order[number][2]
    ]


def match_choice(
    text: str,
    choices: Mapping[str, Sequence[str]],
    *,
    choice_id: str | None = None,
    now: float | None = None,
    timezone: str = "UTC",
    strict: bool = False,
    question: str | None = None,
) -> ChoiceMatch:
    """Which option of ``choices`` (id -> labels: titles in every language and synonyms, in the
    order shown) the lead's ``text`` means. ``choice_id``: a tapped reply button. ``now``
    (seconds since the epoch, UTC) and ``timezone`` (IANA) anchor relative periods.

    ``strict`` (for a question that was not the one asked): only whole labels or a period count,
    never a number, a partial word match, "other" or a clarification. ``question``: the question
    asked; its words inside a label ("roof" in "Flat roof" for "What kind of roof?") do not count
    when the label has other words. Never raises.
    """
    if not choices:
        return ChoiceMatch()
    ids = list(choices)
    if choice_id is not None and choice_id in choices:
        return ChoiceMatch(value=choice_id, evidence=text.strip() or choice_id)
    text = text[:MAX_CHARS]
    raw_words = re.findall(r"[a-z0-9]+", fold(text))
    if not raw_words:
        return ChoiceMatch()
    joined = " ".join(raw_words)
    labels = {cid: _labels(cid, ls) for cid, ls in choices.items()}
    for cid, options in labels.items():
        if joined in options:
            return ChoiceMatch(value=cid, evidence=text.strip())
    if not strict:
        position = _position(raw_words, len(ids))
        if position is not None and 1 <= position <= len(ids):
            return ChoiceMatch(value=ids[position - 1], evidence=text.strip())
    message = _tokens(text)
    if not strict and _NONE_FIRST.match(fold(text).strip()):
        return _other(text, labels, declined=True)
    unsure = _UNSURE_CHOICE.search(fold(text))
    if unsure:
        if strict:
            return ChoiceMatch()  # "not sure what you mean" says nothing about another question
        for cid, options in labels.items():
            if any(_UNSURE_CHOICE.search(label) for label in options):
                # the words of doubt only: what else the message says may answer another question
                # ("idk, maybe next year": the roof is unsure, the timeline is next year)
                return ChoiceMatch(value=cid, evidence=_unsure_evidence(text, unsure))
        # no "not sure" option: the words of doubt choose nothing ("je ne sais pas" is not "pas
        # pressé"); what else the message says may still name an option
        rest = _UNSURE_CHOICE.sub(" ", fold(text))
        if not any(len(t.text) >= 3 and not t.text.isdigit() for t in _tokens(rest)):
            return ChoiceMatch(evidence=text.strip(), other=True)
        text, message = rest, _tokens(rest)
        joined = " ".join(re.findall(r"[a-z0-9]+", rest))
    # whole labels found in the message (by stem, prefix or typo), longest first
    full: dict[str, tuple[int, list[int]]] = {}
    verbatim: set[str] = set()  # options whose longest label found was found by stem, not by typo
    partial: dict[str, float] = {}
    topic = {t.text for t in _tokens(question)} if question else set()
    # strict: only a whole label counts, each of its words sharing a stem with one of the message's
    # (the labels whose every word does are looked up by stem: most messages name none of them)
    searched = (
        _whole_label_candidates(tuple((cid, tuple(options)) for cid, options in labels.items()), message)
        if strict and not topic
        else [(cid, label) for cid, options in labels.items() for label in options]
    )
    said = frozenset().union(*(t.stems for t in message)) if strict and topic else frozenset()
    for cid, label in searched:
        label_tokens: Sequence[_Token] = _token_tuple(label[:MAX_CHARS], False)  # cached, not copied
        if topic and any(t.text not in topic for t in label_tokens):
            label_tokens = [t for t in label_tokens if t.text not in topic]
        if not label_tokens or (said and any(said.isdisjoint(t.stems) for t in label_tokens)):
            continue  # (strict: a word of the label is not in the message, so no whole label)
        hits = _label_hits(label_tokens, message, exact=strict)
        if _negated(label_tokens, message, hits):
            continue
        if len(hits) == len(label_tokens):
            size, longest = len(label_tokens), full.get(cid, (0, []))[0]
            if size >= longest:
                # the longest labels found decide whether the words were misspelt: one of them
                # spelt right is enough ("des tuiles" is "tiles" misspelt, but "tuiles" itself)
                exact = strict or len(_label_hits(label_tokens, message, same=_spelt)) == size
                if size > longest:
                    full[cid] = (size, hits)
                    verbatim.discard(cid)
                if exact:
                    verbatim.add(cid)
        elif hits and not strict and any(message[i].text not in _WEAK_ALONE for i in hits):
            partial[cid] = max(partial.get(cid, 0.0), len(hits) / len(label_tokens))
    if full:
        # an option whose words all sit inside a longer match of another option does not count
        def dominated(cid: str) -> bool:
            size, hits = full[cid]
            return any(o != cid and s > size and set(hits) <= set(h) for o, (s, h) in full.items())

        winners = [cid for cid in full if not dominated(cid)]
        explained = {i for cid in winners for i in full[cid][1]}
        weak = all(message[i].text in _GENERIC for i in explained)
        winner_tokens = [t for cid in winners for label in labels[cid] for t in _tokens(label)]
        unexplained = [
            t
            for i, t in enumerate(message)
            if i not in explained and len(t.text) >= 4 and not any(_same(t, w) for w in winner_tokens)
        ]
        if weak and unexplained:
            # "tout refaire dans la cuisine": "tout" is not "Rénovation globale"
            return ChoiceMatch() if strict else ChoiceMatch(evidence=text.strip(), other=True)
        period = _by_period(text, choices, now, timezone, strict=strict)
        if period is not None and not (len(winners) == 1 and _said_verbatim(joined, labels[winners[0]])):
            span = fold(period.evidence)
            if len(winners) > 1 or all(message[i].text in span for cid in winners for i in full[cid][1]):
                return period  # "after the winter" is not "this winter", "in a year" not "this year"
        if len(winners) == 1:
            return ChoiceMatch(
                value=winners[0],
                evidence=_evidence(text, message, full[winners[0]][1]),
                fuzzy=winners[0] not in verbatim,
            )
        if not strict:
            ranked = sorted(winners, key=lambda c: -full[c][0])
            return ChoiceMatch(candidates=tuple(ranked[:3]), evidence=text.strip())
        return ChoiceMatch()
    period = _by_period(text, choices, now, timezone, strict=strict)
    if period is not None:
        return period
    if strict:
        return ChoiceMatch()
    if partial:
        scored = sorted(partial.items(), key=lambda item: -item[1])
        best, score = scored[0]
        close = [cid for cid, s in scored if s >= 0.5 and score - s <= 0.15]
        if score >= 0.5 and len(close) == 1:
            return ChoiceMatch(value=best, evidence=text.strip(), fuzzy=True)
        if len(close) > 1:
            return ChoiceMatch(candidates=tuple(close[:3]), evidence=text.strip())
    if _NONE.search(fold(text)):
        return _other(text, labels, declined=True)
    whole = max(
        ((cid, fuzz.ratio(joined, label)) for cid, options in labels.items() for label in options),
        key=lambda item: item[1],
    )
    if whole[1] >= 85:
        return ChoiceMatch(value=whole[0], evidence=text.strip(), fuzzy=True)
    if any(len(t.text) >= 4 and not t.text.isdigit() for t in message):
        return _other(text, labels)
    return ChoiceMatch()


def _said_verbatim(joined: str, labels: Sequence[str]) -> bool:
    """Whether the message's words (``joined``: folded, one space apart) hold one of an option's
    labels word for word: the playbook's own synonym ("few months" in "in a few months") then wins
    over the built-in reading of a period, which would count the months itself."""
    padded = f" {joined} "
    return any(f" {label} " in padded for label in labels if label)


def _unsure_evidence(text: str, unsure: re.Match[str]) -> str:
    """The words of doubt in ``text`` (``unsure`` matched its folded form, same length: folding
    keeps one character per character); the whole text when the span cannot be mapped back."""
    folded = fold(text)
    if len(folded) != len(text):
        return text.strip()
    return text[unsure.start() : unsure.end()].strip() or text.strip()


def _negated(label: Sequence[_Token], message: list[_Token], hits: list[int]) -> bool:
    """Whether the message says the opposite of the label it matches: a label holding a negation
    the message does not have ("pas pressé" for "je suis pressé"), or a negation right before the
    label's words in the message ("not this year", "pas de pompe")."""
    if not hits:
        return False
    if any(t.text in _NEGATIONS for t in label):
        return not any(message[i].text in _NEGATIONS for i in hits)
    first = min(hits)
    return first > 0 and message[first - 1].text in _NEGATIONS


def _other(text: str, labels: Mapping[str, list[str]], *, declined: bool = False) -> ChoiceMatch:
    for cid, options in labels.items():
        if any(
            label in ("other", "autre", "others", "autres", "something else", "autre chose")
            for label in options
        ):
            return ChoiceMatch(value=cid, evidence=text.strip(), other=True, declined=declined)
    return ChoiceMatch(evidence=text.strip(), other=True, declined=declined)


def _evidence(text: str, message: list[_Token], hits: list[int]) -> str:
    words = [message[i].text for i in sorted(hits)]
    folded = fold(text)
    spans = [m.span() for w in words for m in [re.search(r"(?<![a-z0-9])" + re.escape(w), folded)] if m]
    if not spans:
        return text.strip()
    start = min(s for s, _ in spans)
    end = max(e for _, e in spans)
    end = len(folded) if (m := re.compile(r"[a-z0-9]*").match(folded, end)) is None else m.end()
    return text[start:end].strip()


_TEMPORAL = re.compile(
    r"(?<!\w)(?:in|within|dans|d'ici|d ici|before|avant|after|apres|next|prochain\w*|by|this|ce|cet|"
    r"cette|au|en|"
    r"fin|end|early|debut|couple|few|quelques|plus|more|moins|less|under|over|later|sous|from|des|"
    r"starting|around|about|vers|environ|probably|maybe|perhaps|surement|sans doute)(?!\w)"
)


def _by_period(
    text: str, choices: Mapping[str, Sequence[str]], now: float | None, timezone: str, *, strict: bool = False
) -> ChoiceMatch | None:
    if now is None:
        return None
    ranges = _period_ranges(choices)
    if not ranges:
        return None
    found = months_ahead(text, now=now, timezone=timezone)
    if found is None:
        return None
    months, words = found
    if strict and not _TEMPORAL.search(words):
        # the word before the period may say it is one ("next summer", "around March")
        folded = fold(text[:MAX_CHARS])
        start = folded.find(words)
        before = folded[max(0, start - 12) : start].split()[-1:] if start > 0 else []
        if not before or not _TEMPORAL.fullmatch(before[0]):
            return None
    for cid, (lo, hi) in ranges.items():
        if (lo < months <= hi) or (lo == 0 and months <= hi):
            start = fold(text).find(words)
            evidence = text[start : start + len(words)] if start >= 0 else text.strip()
            return ChoiceMatch(value=cid, evidence=evidence)
    return None
