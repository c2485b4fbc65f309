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

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

__all__ = [
    "DEFAULT_HOUR",
    "NumberMention",
    "SlotValue",
    "asks_about_owning",
    "asks_about_relative",
    "find_numbers",
    "fold",
    "lead_regions",
    "looks_like_email",
    "normalise",
    "parse_slot",
    "relative_owner",
    "render_datetime",
]

DEFAULT_HOUR = 9
"""Hour used when a lead gives a day without a time ("tomorrow")."""


@dataclass(frozen=True, slots=True)
class SlotValue:
    """A parsed value and the words of the message that gave it."""

    value: Any
    evidence: str


# --------------------------------------------------------------------------- text helpers


@lru_cache(maxsize=4096)  # one entry per distinct character: the turn's hottest function
def _fold_char(char: str) -> str:
    if char in "’‘`´":
        return "'"
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    lowered = base.lower()
    return lowered if len(lowered) == 1 else char


class _FoldTable(dict[int, str]):
    """``str.translate``'s table for :func:`fold`: code point -> its folded character, filled on
    first sight (:func:`_fold_char`) and kept for at most :data:`_FOLD_TABLE_MAX` code points (a
    text of rare characters is still folded, its characters simply not kept)."""

    def __missing__(self, code: int) -> str:
        folded = _fold_char(chr(code))
        if len(self) < _FOLD_TABLE_MAX:
            self[code] = folded
        return folded


_FOLD_TABLE_MAX = 8192
_FOLD_TABLE = _FoldTable()


def fold(text: str) -> str:
    """Lower-case ``text`` and drop accents, keeping its length (index i matches index i)."""
    if text.isascii():  # the common case, in C: what _fold_char gives every ASCII character
        return text.lower().replace("`", "'")
    return text.translate(_FOLD_TABLE)  # a C loop over the text; a table lookup a character


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", fold(text))


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w'])" + re.escape(phrase).replace(r"\ ", r"[\s\-]+") + r"(?!\w)")


# --------------------------------------------------------------------------- yes / no

_UNSURE = [
    "oui et non", "yes and no", "ca depend", "it depends", "depends", "maybe", "perhaps", "peut etre",
    "peut-etre", "not sure", "pas sur", "pas certain", "don't know", "dont know", "do not know", "no idea",
    "sais pas", "sait pas", "aucune idee", "kind of", "sort of", "plus ou moins", "more or less",
    "not yet sure", "pas compris", "comprends pas", "don't understand", "dont understand",
    "didn't understand",
    "not understand", "what do you mean", "c'est-a-dire", "c'est a dire", "hesite", "not decided",
    "pas decide", "je verrai", "we'll see", "on verra",
]  # fmt: skip
_YES = [
    "oui", "ouais", "ouai", "ouep", "ouaip", "yes", "yeah", "yea", "yep", "yup", "sure", "of course",
    "absolutely", "definitely", "certainly", "correct", "that's right", "thats right", "indeed",
    "affirmative",
    "bien sur", "d'accord", "daccord", "exactement", "exact", "absolument", "tout a fait", "certainement",
    "evidemment", "carrement", "effectivement", "c'est ca", "c'est exact", "ok", "okay", "no problem",
    "pas de probleme", "pas de souci", "no worries", "why not", "pourquoi pas", "bien entendu", "volontiers",
    "avec plaisir", "yes please", "oui svp", "oui merci", "go ahead", "allez-y", "allez y", "volontier",
    "with pleasure", "that would be great", "ca serait bien", "ce serait bien", "good idea", "bonne idee",
    "ouii", "yess", "yas", "oki", "okey", "yeap", "ya", "yeh", "yah", "aye", "yup yup", "ouaip",
]  # fmt: skip
_SHORT_YES = re.compile(r"^\W*(?:(?:yes|yeah|oui)\W+)?(?:i|we) (?:do|am|are|have|did)\W*$")
_NEGATION = re.compile(r"(?<![\w'])(?:not|no|never|pas|plus|jamais|non|aucun|aucune|nope)(?!\w)|n't(?!\w)")
_OWN = {"proprietaire", "proprietaires", "proprio", "proprios", "owner", "owners", "own", "owns", "homeowner"}
_RENT = {
    "locataire", "locataires", "rent", "renting", "rented", "renter", "rental", "rentals", "tenant",
    "tenants",
    "location", "loue",
    "louons", "louer", "landlord", "bailleur",
}  # fmt: skip
_NO = [
    "non", "nan", "nope", "no", "nah", "not really", "pas du tout", "pas vraiment", "absolutely not",
    "of course not", "certainly not", "definitely not", "never", "jamais", "negative", "no way",
    "pas question", "surtout pas", "bien sur que non", "not at all", "i'm not", "im not", "i am not",
    "i don't", "i do not", "je ne", "je n'", "not", "pas", "aucunement", "nullement",
]  # fmt: skip
_WISH = re.compile(
    r"(?<!\w)(?:want|wants|wanted|would like|i'?d like|we'?d like|thinking|looking|interested|need|"
    r"needs|voudrai\w*|souhait\w*|aimerai\w*|pense\w*|interesse\w*|cherch\w*|besoin)(?!\w)"
)
"""Words saying what the lead wishes for: they name the project, they do not answer whether the lead
owns the home (short alternation over a message already cut to ``MAX_CHARS``)."""
_YES_EMOJI = ("👍", "👌", "✅", "✔", "🆗", "🙆")
_NO_EMOJI = ("👎", "❌", "🚫", "✖", "🙅")
_CUES = sorted([(p, True) for p in _YES] + [(p, False) for p in _NO], key=lambda item: -len(item[0]))
_CUE_PATTERNS = [(p.split(" ")[0], _phrase_pattern(p), polarity) for p, polarity in _CUES]
"""(the cue's first word, a literal every match holds; its pattern; yes or no), longest cue first."""
_UNSURE_ANY = re.compile(
    r"(?<![\w'])(?:" + "|".join(re.escape(p).replace(r"\ ", r"[\s\-]+") for p in _UNSURE) + r")(?!\w)"
)
"""Any words of doubt (:data:`_UNSURE`), each as :func:`_phrase_pattern` reads it: one search."""
_NT = re.compile(r"\w+n't(?!\w)")


_CLAUSE_CUT = re.compile(r"[,;.!?]|\s(?:and|et|but|mais)\s")


_NOT_A_MOMENT = re.compile(
    r"\s+(?:(?:this|next|until|till|before|in|cette|ce|cet|avant|d'ici|dans|l'an|l'annee)\b|"
    r"(?:right )?now\b|tout de suite\b|maintenant\b)"
)
"""What follows a "not"/"pas" that makes it about a moment ("not this year", "pas avant l'été", "not
right now"): the negation says when, not no."""


def _echo(text: str, question: str) -> SlotValue | None:
    """An answer that repeats the question's own words ("je suis propriétaire" to "Êtes-vous
    propriétaire ?", "we rent" to "Do you own the home?"): yes, or no when negated or opposite."""
    from playbooks.choices import _same, _tokens

    asked = [t for t in _tokens(question) if len(t.text) >= 3]
    said = _tokens(text)
    negated = _NEGATION.search(fold(text)) is not None
    if any(t.text in _OWN for t in asked):
        rent = next((t for t in said if t.text in _RENT), None)
        if rent is not None:
            return SlotValue(negated, rent.text)
        own = next((t for t in said if t.text in _OWN), None)
        if own is not None:
            # the words up to the owning one: what follows may answer other questions ("jsuis
            # proprio d'une msn de 110m2": the house and its surface)
            folded = fold(text)
            at = re.search(r"(?<![a-z0-9])" + re.escape(own.text) + r"[a-z0-9]*", folded)
            evidence = ""
            if at is not None:  # from the start of its clause ("hi, looking for solar, we own")
                cuts = [m.end() for m in _CLAUSE_CUT.finditer(folded, 0, at.start())]
                evidence = text[max(cuts, default=0) : at.end()].strip()
            return SlotValue(not negated, evidence or text.strip())
        if _WISH.search(fold(text)):
            return None  # "we want panels" to "Do you own the home where the panels would go?"
    content = [t for t in said if len(t.text) >= 3 and not _NEGATION.fullmatch(t.text)]
    if content and all(any(_same(token, q) for q in asked) for token in content):
        # every word repeats the question ("intéressé" to "Êtes-vous intéressé ?"); a message
        # that only names its topic ("a quote for solar panels") does not answer it
        return SlotValue(not negated, text.strip())
    return None


_RELATIVE = re.compile(
    r"(?<![\w'])(?P<who>(?:ma|mon|mes|my|our|notre|nos|sa|son|ses|his|her|their)\s+"
    r"(?:(?:belle|beau|beaux|grand|grands|step|arriere)[- ]?)?"
    r"(?:mere|maman|pere|papa|parents?|mari|femme|epouse|epoux|conjointe?|compagnon|compagne|fils|fille|"
    r"frere|soeur|oncle|tante|famille|daron|daronne|vieux|mum|mom|mummy|mommy|mother|dad|daddy|father|"
    r"husband|wife|partner|son|daughter|brother|sister|grandma|grandmother|grandpa|grandfather|"
    r"grandparents|in-laws|inlaws|aunt|uncle|family|nan|nana|gran|granny|folks))(?:'s|s'|'|s)?(?![\w])"
)
"""A relative named with a possessive ("ma mère", "mes beaux-parents", "my mum", "our parents")."""
_WITH_BEFORE = re.compile(r"(?:avec|with|and|et|&|\+)\s*$")
_OWNED_BY = re.compile(
    r"(?<![\w'])(?:proprio|proprios|proprietaire|proprietaires|owner|owners|own|owns|owned|"
    r"appartient|appartiennent|belongs?|belonging|a elle|a lui|a eux|chez|est a|sont a|"
    r"possede|possedent|qui a la maison|qui a le logement|qui a l'appart|who has the house|"
    r"c'est a|c est a|cest a|"
    r"maison de|logement de|appart de|appartement de|house of|home of)(?![\w])"
)
_HOME_AFTER = re.compile(r"\s*(?:house|home|place|flat|property|bungalow)(?!\w)")
"""A home right after a relative ("my parents house", "my mum's place")."""
"""Words saying whose the home is (with a relative named: the relative's)."""
_SELF_OWNS = re.compile(
    r"(?<![\w'])(?:(?:je suis|j'suis|jsuis|chui|on est|nous sommes|i am|i'm|im|we are|we're|were)\s+"
    r"(?:(?:le|la|les|the|co|co-)\s*)?(?:proprio|proprietaire|owner|homeowner|co-?proprietaire|co-?owner)s?|"
    r"(?:i|we|on|nous)\s+(?:do\s+)?own|my own|our own|j'en suis|j'ai achete|we bought|i bought|"
    r"(?:and|et|&)\s+(?:i|me|moi|myself))(?![\w])"
)
"""The lead owning the home themself ("je suis proprio avec ma femme", "we own it with my parents")."""
_RELATIVE_Q = re.compile(
    r"(?<![\w'])(?:proche|proches|relative|relatives|family|famille|parent|parents|membre de)(?![\w])"
)
"""A question asking whether the home is a relative's ("Le logement appartient-il à un proche ?")."""


@lru_cache(maxsize=1024)  # questions are the playbooks' texts: a few hundred per process
def asks_about_relative(question: str) -> bool:
    """Whether ``question`` asks if the home is a relative's ("Le logement appartient-il à un proche
    ?", "Does the home belong to a relative?"): such a yes/no question is answered by a message
    naming a relative owner (:func:`relative_owner`)."""
    return _RELATIVE_Q.search(fold(question)) is not None


@lru_cache(maxsize=1024)  # questions are the playbooks' texts
def asks_about_owning(question: str) -> bool:
    """Whether ``question`` asks if the lead owns the home ("Êtes-vous propriétaire ?", "Do you own
    the home?") and not whether a relative does (:func:`asks_about_relative`)."""
    folded = fold(question)
    return any(word in _OWN for word in re.findall(r"[a-z]+", folded)) and not asks_about_relative(question)


def relative_owner(text: str, *, answering_owner: bool = False) -> str | None:
    """The words naming a relative who owns the home the lead writes about ("c'est ma mère la
    proprio", "my parents own it", "it's my mum's house", "la maison est à mes parents"), else
    ``None``: a relative named with a possessive, outside "with my wife" / "avec mon mari" (a
    co-owner), with words saying whose the home is, and the lead not owning it themself.
    ``answering_owner``: the text answers "do you own the home?", so a short reply naming a
    relative says whose it is ("non, ma mère", "no but my parents do") unless it speaks of renting.
    Linear (bounded alternations over the text's first 2000 characters)."""
    folded = fold(text[:2000])
    if _SELF_OWNS.search(folded):
        return None
    words = re.findall(r"[a-z]+", folded)
    owned = _OWNED_BY.search(folded) is not None
    short = answering_owner and len(words) <= SHORT_REPLY_WORDS and not any(w in _RENT for w in words)
    for match in _RELATIVE.finditer(folded):
        if _WITH_BEFORE.search(folded, 0, match.start()):
            continue
        # "oui, pour ma mère": a yes before the relative is the lead's own
        said_yes = any(w in _PLAIN_YES for w in re.findall(r"[a-z]+", folded[: match.start()]))
        if owned or (short and not said_yes) or _HOME_AFTER.match(folded, match.end()):
            return text[match.start("who") : match.end("who")]
    return None


_PLAIN_YES = frozenset({"oui", "ouais", "ouai", "yes", "yeah", "yep", "yup", "yh"})
SHORT_REPLY_WORDS = 8
"""A reply to "do you own the home?" of at most this many words that names a relative says whose it is."""


def _parse_yes_no(text: str, question: str | None = None) -> SlotValue | None:
    if question:
        owning = asks_about_owning(question)
        relative = relative_owner(text, answering_owner=owning)
        if relative is not None:
            if asks_about_relative(question):
                return SlotValue(True, relative)  # "Is it a relative's home?" "my mum's"
            if owning:
                return SlotValue(False, text.strip())  # "Do you own it?" "my mum does": not the lead
    if re.search(r"([a-z])\1{2,}", fold(text)):
        text = re.sub(r"([A-Za-z])\1{2,}", r"\1", text)  # "ouiii", "yesss", "noooon"
    folded = fold(text)
    if _UNSURE_ANY.search(folded):
        return None
    if _SHORT_YES.match(folded):
        return SlotValue(True, text.strip())
    found: list[tuple[int, int, bool]] = []
    taken = [False] * len(folded)
    for head, pattern, polarity in _CUE_PATTERNS:
        if head not in folded:
            continue  # (a C substring test: most of the 100 cues are absent from a message)
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
        return _echo(text, question) if question else None
    # "not this year", "pas avant l'été": a "not" about a moment is no answer to the question
    found = [f for f in found if f[2] or not _NOT_A_MOMENT.match(folded, f[1])]
    if not found:
        return _echo(text, question) if question else None
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


@dataclass(frozen=True, slots=True)
class NumberMention:
    """A number written in a message: its ``value``, the words that gave it (``evidence``), its
    ``start``/``end`` offsets in the message and what it measures, read from the words around it:
    ``money`` (a currency or "a month"), ``area`` (m², sq ft), ``time`` (10am, 14h), ``date``
    (8 December), ``duration`` (5 months), ``ordinal`` (2nd), or ``""`` (a bare number)."""

    value: float
    evidence: str
    start: int
    end: int
    unit: str


_MONEY_AFTER = re.compile(
    r"\s*(?:k\s*)?(?:€|eur\b|euros?\b|\$|£|usd\b|gbp\b|dollars?\b|bucks\b|balles\b|pounds?\b|quid\b)"
    r"|\s*(?:(?:a|per|par|/|each|chaque|every)\s*(?:month|mois|mo)\b|monthly\b|mensuel|/\s*m\b)"
)
_AREA_AFTER = re.compile(
    r"\s*(?:m2\b|m\u00b2|m 2\b|sqm\b|sq\.?\s*m\b|square\s*met|metres?\s*carres?|metre\s*carre|"
    r"sq\.?\s*f(?:ee)?t"
    r"|square\s*f(?:ee|oo)t|ft2\b|ft\u00b2|m\b)"
)
_PER_MONTH = re.compile(r"\s*(?:pm|p/m|pcm)\b")
"""British shorthand for "per month" after an amount ("£95 pm")."""
_TIME_AFTER = re.compile(r"\s*(?:h\b|h\d|heures?\b|am\b|pm\b|a\.m|p\.m|:\d\d|o'?clock)")
_DURATION_AFTER = re.compile(r"\s*(?:months?|mois|years?|ans?\b|annees?|weeks?|semaines?|days?|jours?)\b")
_ORDINAL_AFTER = re.compile(r"(?:st|nd|rd|th|er|e|eme|ème)\b")
_DATE_AFTER = re.compile(r"\s*(?:" + "|".join([
    "janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout", "septembre", "octobre",
    "novembre",
    "decembre", "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december", "jan", "feb", "fev", "apr", "avr", "aug", "sept", "oct", "nov", "dec",
]) + r")\b|[/.]\d")  # fmt: skip
_TIME_BEFORE = re.compile(r"(?:\bat|\ba|\bvers|\baround|\bdes|\bfrom)\s*$")
_MONEY_BEFORE = re.compile(r"[€$£]\s*$")
_DATE_BEFORE = re.compile(
    r"(?:\ble|\bthe|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|monday|tuesday|wednesday|thursday|"
    r"friday|saturday|sunday|[/.])\s*$"
)
_BETWEEN = re.compile(r"^\s*(?:-|–|to|a|à|et|and|ou|or)\s*$")


def find_numbers(text: str, *, language: str = "en") -> list[NumberMention]:
    """Every number written in digits in ``text`` (its first 2,000 characters), in order, with what
    it measures (see :class:`NumberMention`). "entre 150 et 200" / "150-200" give one mention, the
    middle of the range. Never raises."""
    head = text[:_MAX_CHARS]
    folded = fold(head)
    found: list[NumberMention] = []
    for match in _NUMBER.finditer(folded):
        value = _to_float(match.group("num"), match.group("sep"), language)
        suffix = match.group("suffix")
        if suffix:
            value *= _SCALE[suffix]
        if match.group("sign"):
            if found and found[-1].end == match.start():
                # "140-160": a range, not a negative number
                previous = found[-1]
                found[-1] = NumberMention(
                    (previous.value + value) / 2,
                    head[previous.start : match.end()].strip(),
                    previous.start,
                    match.end(),
                    previous.unit,
                )
                continue
            value = -value
        if not math.isfinite(value):
            continue
        after = folded[match.end() : match.end() + 30]
        before = folded[max(0, match.start() - 12) : match.start()]
        unit = ""
        if _MONEY_BEFORE.search(before):
            unit = "money"  # "£95 pm" is per month: an amount is never a time of day
        elif _TIME_AFTER.match(after) or (
            _TIME_BEFORE.search(before)
            and not _MONEY_AFTER.match(after)
            and not _AREA_AFTER.match(after)
            and value <= 23
        ):
            unit = "time"
        elif _ORDINAL_AFTER.match(after):
            unit = "ordinal"
        elif _DATE_AFTER.match(after) or (
            _DATE_BEFORE.search(before) and value <= 31 and not _MONEY_AFTER.match(after)
        ):
            unit = "date"
        elif _DURATION_AFTER.match(after):
            unit = "duration"
        elif _MONEY_AFTER.match(after) or _MONEY_BEFORE.search(before):
            unit = "money"
        elif _AREA_AFTER.match(after):
            unit = "area"
        tail = 0
        if unit in ("money", "area"):
            unit_match = (_MONEY_AFTER if unit == "money" else _AREA_AFTER).match(after)
            if unit_match is not None:
                tail = unit_match.end()
                more = _MONEY_AFTER.match(after, tail) if unit == "money" else None
                if more is not None and more.end() > tail:
                    tail = more.end()
            if unit == "money" and (per := _PER_MONTH.match(after, tail)) is not None:
                tail = per.end()
        start = match.start() - (1 if unit == "money" and _MONEY_BEFORE.search(before) else 0)
        evidence = head[max(0, start) : match.end() + tail].strip()
        mention = NumberMention(value, evidence, match.start(), match.end(), unit)
        if found and found[-1].unit in ("", unit) and unit not in ("time", "date", "ordinal", "duration"):
            previous = found[-1]
            gap = folded[previous.end : match.start()]
            if _BETWEEN.match(gap):
                mention = NumberMention(
                    (previous.value + value) / 2,
                    head[previous.start : match.end()].strip(),
                    previous.start,
                    match.end(),
                    unit or previous.unit,
                )
                found[-1] = mention
                continue
        if (
            unit in ("money", "duration")
            and found
            and found[-1].unit == ""
            and _BETWEEN.match(folded[found[-1].end : match.start()])
        ):
            # "150 or 200 €", "2-3 months": the first number measures what the second does
            first = found[-1]
            found[-1] = NumberMention(first.value, first.evidence, first.start, first.end, unit)
        found.append(mention)
    return found


# --------------------------------------------------------------------------- email, phone

_EMAIL_CANDIDATE = re.compile(r"[^\s<>()\[\],;:\"@]{1,128}@[^\s<>()\[\],;:\"@]{1,255}")
_MAX_CHARS = 2000
"""Only the first characters of a message are searched for contacts and dates."""


def looks_like_email(text: str) -> bool:
    """Whether ``text`` holds something shaped like an address (a word with an ``@``), valid or not."""
    return _EMAIL_CANDIDATE.search(text[:_MAX_CHARS]) is not None


_EMAIL_SPACED_AT = re.compile(r"(?<=\w) ?@ ?(?=\w)")
_EMAIL_COMMA_TLD = re.compile(r"(@[\w-]{1,63}(?:\.[\w-]{1,63}){0,3}),(com|fr|net|org|uk|be|ch|de|eu|io)\b")


def _parse_email(text: str) -> SlotValue | None:
    """The first address in ``text`` that email-validator accepts (internationalised local parts and
    domains included, https://github.com/JoshData/python-email-validator#usage); the whole
    address or nothing, never a cut-down part of it. Two slips of the thumb are mended first when
    nothing is found as typed: spaces around the ``@`` ("zoe @ gmail.com") and a comma before a
    common top-level domain ("zoe@gmail,com")."""
    head = text[:_MAX_CHARS]
    found = _first_email(head)
    if found is None and "@" in head:
        mended = _EMAIL_COMMA_TLD.sub(r"\1.\2", _EMAIL_SPACED_AT.sub("@", head))
        if mended != head:
            found = _first_email(mended)
    if found is None and "@" not in head and _SPOKEN_AT.search(head):
        found = _spoken_email(head)
    return found


_SPOKEN_AT = re.compile(r"\s(?:arobase|arrobase|at)\s", re.IGNORECASE)
_SPOKEN_DOT = re.compile(r"\s(?:point|dot)\s", re.IGNORECASE)
_SPOKEN_ADDRESS = re.compile(
    r"[\w.+-]+(?:\s(?:point|dot)\s[\w+-]+)*\s(?:arobase|arrobase|at)\s[\w-]+(?:\s(?:point|dot)\s[\w-]+)+",
    re.IGNORECASE,
)


def _spoken_email(text: str) -> SlotValue | None:
    """An address said in words ("jean point dupont arobase gmail point com", "zoe at example dot
    com"): read when, written back with ``@`` and dots, email-validator accepts it; the evidence is
    the words as written."""
    match = _SPOKEN_ADDRESS.search(text)
    if match is None:
        return None
    written = _SPOKEN_DOT.sub(".", _SPOKEN_AT.sub("@", match.group()))
    found = _first_email(written)
    return SlotValue(found.value, match.group()) if found is not None else None


def _first_email(text: str) -> SlotValue | None:
    from email_validator import EmailNotValidError, validate_email

    for match in _EMAIL_CANDIDATE.finditer(text):
        raw = match.group().strip(".,!?'\"»«")
        raw = re.sub(r"^(?:mailto:|e-?mail:|mail:)", "", raw, flags=re.IGNORECASE)
        try:
            info = validate_email(raw, check_deliverability=False, allow_smtputf8=True)
        except EmailNotValidError:
            continue
        local, _, domain = info.normalized.rpartition("@")
        return SlotValue(f"{local}@{domain.lower()}", raw)
    return None


#: Countries where a language's leads most often live, tried for a number written without a
#: country code that none of the lead's own regions reads (a UK lead on a tenant set up in France).
LANGUAGE_REGIONS: dict[str, tuple[str, ...]] = {
    "en": ("GB", "US", "IE", "CA", "AU"),
    "fr": ("FR", "BE", "CH", "CA", "LU"),
}


def _parse_phone(
    text: str, default_region: str | None, regions: Sequence[str] = (), *, language: str | None = None
) -> SlotValue | None:
    """The first phone number in ``text``, read with each region of ``regions`` (the lead's own
    country first) then ``default_region``; a valid number wins, else a possible one (right
    length for its country, https://github.com/google/libphonenumber FAQ "possible vs valid").
    When none of those reads one, the countries of the conversation's ``language``
    (:data:`LANGUAGE_REGIONS`) are tried, for a valid number only."""
    own = [*dict.fromkeys(r.upper() for r in [*regions, default_region or ""] if r)]
    found = _phone_in(text, own or [None])
    if found is None and language in LANGUAGE_REGIONS:
        guessed = [r for r in LANGUAGE_REGIONS[language] if r not in own]
        found = _phone_in(text, guessed, valid_only=True)  # a guess: a number assigned there
    return found


_NOT_DIGIT = re.compile(r"\D")
_PHONE_MIN_DIGITS = 8
"""A match with fewer digits is not read as a phone number ("140-160", "06 12 34")."""


def _phone_in(text: str, tried: Sequence[str | None], *, valid_only: bool = False) -> SlotValue | None:
    """The first phone number in ``text`` read with the regions ``tried`` in order (``None``: only
    numbers written with their country code): a valid one, else (unless ``valid_only``) the first
    possible one."""
    head = text[:_MAX_CHARS]
    if len(_NOT_DIGIT.sub("", head)) < _PHONE_MIN_DIGITS:
        return None  # no match could hold enough digits (most messages: one C pass, no matcher)
    possible: SlotValue | None = None
    for region in tried:
        for match in phonenumbers.PhoneNumberMatcher(head, region, leniency=phonenumbers.Leniency.POSSIBLE):
            value = SlotValue(
                phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164),
                match.raw_string,
            )
            if len(_NOT_DIGIT.sub("", match.raw_string)) < _PHONE_MIN_DIGITS:
                continue  # "140-160", "06 12 34": not a phone number
            if phonenumbers.is_valid_number(match.number):
                return value
            possible = possible or value
    return None if valid_only else possible


def _zone_regions() -> dict[str, str]:
    """IANA time zone -> ISO 3166 country, from the tz database's ``zone.tab``."""
    import importlib.resources

    text = ""
    try:
        text = importlib.resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        try:
            with open("/usr/share/zoneinfo/zone.tab", encoding="utf-8") as handle:
                text = handle.read()
        except OSError:
            return {}
    regions: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            parts = line.split("\t")
            if len(parts) >= 3:
                regions[parts[2]] = parts[0]
    return regions


_TZ_REGIONS: dict[str, str] | None = None


def lead_regions(*, timezone: str | None = None, phone: str | None = None) -> list[str]:
    """The lead's likely countries (ISO 3166), best first: the country of their own number
    (E.164 ``phone``), then the country of their IANA ``timezone``. Empty when neither tells."""
    global _TZ_REGIONS
    out: list[str] = []
    if phone:
        try:
            number = phonenumbers.parse(phone, None)
            region = phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(
                number.country_code or 0
            )
        except phonenumbers.NumberParseException:
            region = None
        if region and region != "ZZ":
            out.append(region)
    if timezone:
        if _TZ_REGIONS is None:
            _TZ_REGIONS = _zone_regions()
        region = _TZ_REGIONS.get(timezone)
        if region:
            out.append(region)
    return list(dict.fromkeys(out))


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
    ("fin d'apres-midi", 17), ("fin d apres-midi", 17), ("fin d'apres midi", 17), ("fin d apres midi", 17),
    ("fin d'aprem", 17), ("fin d aprem", 17), ("late afternoon", 17), ("fin de matinee", 11),
    ("late morning", 11), ("debut d'apres-midi", 13), ("debut d apres-midi", 13), ("early afternoon", 13),
    ("l'apres-midi", 14), ("l'apres midi", 14), ("l'aprem", 14), ("apres-midi", 14), ("apres midi", 14),
    ("aprem", 14), ("aprems", 14), ("afternoon", 14), ("arvo", 14),
    ("matinee", 9), ("matin", 9), ("morning", 9),
    ("soiree", 18), ("soir", 18), ("evening", 18), ("tonight", 18), ("midi", 12), ("noon", 12),
    ("lunchtime", 12), ("minuit", 0), ("midnight", 0),
]  # fmt: skip
_TIME_PATTERNS = [
    re.compile(r"(?<!\d)(?P<h>\d{1,2})(?:[:.](?P<m>\d{2}))?\s*(?P<ap>a\.?m\.?|p\.?m\.?)(?!\w)"),
    re.compile(r"(?<!\d)(?P<h>\d{1,2})\s*(?:h|heures?)(?:\s*(?P<m>\d{2}))?(?!\w)"),
    re.compile(r"(?<![\d/.])(?P<h>\d{1,2}):(?P<m>\d{2})(?!\d)"),
    re.compile(
        r"(?<!\w)(?:at|a|vers|around|about|for|des|from|after|apres|avant|before|by|sur les|on)\s+"
        r"(?P<h>\d{1,2})(?![\d:/.,]|\s*(?:h\b|heures?|am|pm|[ap]\.m|o'?clock|months?|mois|days?|jours?|weeks?"
        r"|semaines?|ans?|years?|m2|m\u00b2|sq|\u20ac|eur|euros?|\$|%|rue|avenue|av\b|bd|boulevard|"
        r"street|st\b|"
        r"road|rd\b|minutes?|min\b|kw|kwh|panneaux|panels|personnes|people|(?:st|nd|rd|th|er|e|eme)\b|"
        r"(?:janvier|fevrier|mars|avril|mai|juin|juillet|aout|septembre|octobre|novembre|decembre|"
        r"january|february|"
        r"march|april|may|june|july|august|september|october|november|december)))"
    ),
    re.compile(r"(?<!\w)(?P<h>\d{1,2})\s*o'?clock(?!\w)"),
]
_MONTH_NAMES = {
    "january": 1, "janvier": 1, "janv": 1, "jan": 1, "february": 2, "fevrier": 2, "fevr": 2, "feb": 2,
    "march": 3, "mars": 3, "mar": 3, "april": 4, "avril": 4, "apr": 4, "avr": 4, "may": 5, "mai": 5,
    "june": 6, "juin": 6, "jun": 6, "july": 7, "juillet": 7, "juil": 7, "jul": 7, "august": 8, "aout": 8,
    "aug": 8, "september": 9, "septembre": 9, "sept": 9, "sep": 9, "october": 10, "octobre": 10, "oct": 10,
    "november": 11, "novembre": 11, "nov": 11, "december": 12, "decembre": 12, "dec": 12,
}  # fmt: skip
_MONTH_RE = "|".join(sorted(_MONTH_NAMES, key=len, reverse=True))
_DAY_MONTH = re.compile(
    r"(?<![\w/.])(?P<d>\d{1,2})(?:er|st|nd|rd|th|e)?\s+(?:of\s+|de\s+)?(?P<mon>" + _MONTH_RE + r")\.?"
    r"(?:\s+(?P<y>20\d\d))?(?!\w)"
)
_MONTH_DAY = re.compile(
    r"(?<!\w)(?P<mon>" + _MONTH_RE + r")\.?\s+(?:the\s+)?(?P<d>\d{1,2})(?:st|nd|rd|th)?(?![\d:h])"
    r"(?:,?\s+(?P<y>20\d\d))?"
)
_NUMERIC_DATE = re.compile(
    r"(?<![\w/.:])(?P<a>\d{1,2})[/.](?P<b>\d{1,2})(?:[/.](?P<y>\d{2}|\d{4}))?(?![\w/:]|\.\d)"
)
_DAY_ONLY = re.compile(
    r"(?<!\w)(?:le|the|on the|ce)\s+(?P<d>\d{1,2})(?:er|st|nd|rd|th|e)?(?!\s*(?:h\b|heures?|:|am|pm|\d|%|€))"
    r"(?!\s*(?:m2|m\u00b2|mois|months?|jours?|days?|ans?|years?|euros?|panneaux|panels))(?!\w)"
)


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
        elif pattern in (_TIME_PATTERNS[3], _TIME_PATTERNS[4]) and 1 <= hour <= 7:
            hour += 12  # "at 3" means 3 pm for a call-back
        if hour < 24 and minute < 60:
            return hour, minute, match.span()
    for word, hour in _PERIODS:
        match = _phrase_pattern(word).search(folded)
        if match:
            return hour, 0, match.span()
    return None


def _next_date(today: date, month: int, day: int, year: int | None) -> date | None:
    try:
        if year is not None:
            return date(year, month, day)
        found = date(today.year, month, day)
        if found < today:
            found = date(today.year + 1, month, day)
        return found
    except ValueError:
        return None


def _year(raw: str | None) -> int | None:
    if not raw:
        return None
    return int(raw) + (2000 if len(raw) == 2 else 0)


def _find_explicit_date(folded: str, today: date, month_first: bool) -> tuple[date, tuple[int, int]] | None:
    """A day of the month written out ("8 décembre", "December 8th", "08/12", "le 8"), with the
    weekday before it, if any, inside the evidence span. An explicit date wins over a weekday."""
    found: tuple[date | None, tuple[int, int]] | None = None
    for pattern in (_DAY_MONTH, _MONTH_DAY):
        match = pattern.search(folded)
        if match:
            day = _next_date(
                today, _MONTH_NAMES[match.group("mon")], int(match.group("d")), _year(match.group("y"))
            )
            found = (day, match.span())
            break
    if found is None:
        match = _NUMERIC_DATE.search(folded)
        if match:
            a, b = int(match.group("a")), int(match.group("b"))
            month, day_number = (a, b) if month_first and a <= 12 else (b, a)
            if month > 12 and day_number <= 12:
                month, day_number = day_number, month
            if 1 <= month <= 12:
                found = (_next_date(today, month, day_number, _year(match.group("y"))), match.span())
    if found is None:
        match = _DAY_ONLY.search(folded)
        if match and 1 <= int(match.group("d")) <= 31:
            number = int(match.group("d"))
            month, year = today.month, today.year
            for _ in range(3):
                try:
                    candidate = date(year, month, number)
                except ValueError:
                    candidate = None
                if candidate is not None and candidate >= today:
                    found = (candidate, match.span())
                    break
                month, year = (1, year + 1) if month == 12 else (month + 1, year)
    if found is None:
        return None
    day, span = found
    if day is None:
        return None
    before = re.search(r"(?:" + "|".join(_WEEKDAYS) + r")\s+(?:the\s+|le\s+)?$", folded[: span[0]])
    if before:
        span = (before.start(), span[1])
    return day, span


def _find_day(folded: str, today: date, month_first: bool = False) -> tuple[date, tuple[int, int]] | None:
    explicit = _find_explicit_date(folded, today, month_first)
    if explicit is not None:
        return explicit
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
    text = text[:_MAX_CHARS]
    folded = fold(text)
    month_first = language == "en" and zone.key.startswith(("America/", "US/"))
    found_day = _find_day(folded, base.date(), month_first)
    masked = folded
    if found_day is not None:
        start, end = found_day[1]
        masked = folded[:start] + " " * (end - start) + folded[end:]
    found_time = _find_time(masked)
    if found_time is None and found_day is not None:
        # "ce soir", "this afternoon": the day's own words also say the time of day
        for word, hour in _PERIODS:
            period = _phrase_pattern(word).search(folded)
            if period:
                found_time = (hour, 0, period.span())
                break
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
            if result.date() < base.date() or result.year > base.year + 1:
                return None  # "20" as the 20th already past, "95" as the year 2095: no time given
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


def _parse_choice(
    text: str,
    choices: Mapping[str, Sequence[str]],
    choice_id: str | None,
    *,
    now: float | None = None,
    timezone: str = "UTC",
) -> SlotValue | None:
    from playbooks.choices import match_choice

    found = match_choice(text, choices, choice_id=choice_id, now=now, timezone=timezone)
    return SlotValue(found.value, found.evidence) if found.value is not None and not found.other else None


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
    regions: Sequence[str] = (),
    question: str | None = None,
) -> SlotValue | None:
    """Read a value of ``kind`` from the lead's ``text``; ``None`` when it does not give one.

    ``choices`` maps each choice id to its labels (titles in every language and synonyms), in the
    order the options were shown (``"2"`` picks the second). ``choice_id`` is the id of a tapped
    reply button. ``now`` (seconds since the epoch, UTC) and ``timezone`` (IANA name) anchor
    relative dates; ``now`` is required for ``datetime`` (``ValueError`` otherwise).
    ``default_region`` (ISO 3166, e.g. ``"FR"``) reads phone numbers without a country code,
    after the lead's own ``regions`` (see :func:`lead_regions`). Choices are matched by
    :func:`playbooks.choices.match_choice` (an unclear or "other" answer gives ``None``).
    ``question`` (yes_no only): the question asked, so that an answer repeating its words ("je
    suis propriétaire") reads as yes, and its opposite ("we rent") as no.
    """
    if kind == "choice":
        return _parse_choice(text or "", choices or {}, choice_id, now=now, timezone=timezone)
    if not text or not text.strip():
        return None
    if kind == "text":
        return SlotValue(text.strip(), text.strip())
    if kind == "yes_no":
        return _parse_yes_no(text, question)
    if kind == "number":
        return _parse_number(text, language)
    if kind == "email":
        return _parse_email(text)
    if kind == "phone":
        return _parse_phone(text, default_region, regions, language=language)
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
        return _value(_parse_choice(value, choices, None, now=now, timezone=timezone))
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


# --------------------------------------------------------------------------- saying a date back

_DAY_NAMES = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "fr": ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
}
_MONTH_TITLES = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"],
}  # fmt: skip


def render_datetime(
    value: str | datetime, *, language: str = "en", timezone: str = "UTC", now: float | None = None
) -> str:
    """Say a moment back in full, in the lead's ``language`` (``fr``; anything else reads as
    English) and IANA ``timezone``: ``"mardi 8 décembre à 14 h"``, ``"Tuesday 8 December at 2 pm"``
    (minutes when not on the hour: ``14 h 30``, ``2:30 pm``). ``value``: an ISO-8601 string or a
    datetime (naive means ``timezone``). The year is added when it is not the year of ``now``
    (seconds since the epoch), if given. Raises ``ValueError`` for a string that is not ISO-8601.
    """
    zone = _zone(timezone)
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)
    lang = "fr" if (language or "").lower().startswith("fr") else "en"
    weekday = _DAY_NAMES[lang][moment.weekday()]
    month = _MONTH_TITLES[lang][moment.month - 1]
    year = ""
    if now is not None and datetime.fromtimestamp(now, zone).year != moment.year:
        year = f" {moment.year}"
    if lang == "fr":
        day = "1er" if moment.day == 1 else str(moment.day)
        clock = f"{moment.hour} h" + (f" {moment.minute:02d}" if moment.minute else "")
        return f"{weekday} {day} {month}{year} à {clock}"
    hour = moment.hour % 12 or 12
    suffix = "am" if moment.hour < 12 else "pm"
    clock = f"{hour}:{moment.minute:02d} {suffix}" if moment.minute else f"{hour} {suffix}"
    return f"{weekday} {moment.day} {month}{year} at {clock}"
