"""Offline language detection for one inbound message.

:func:`detect_language` combines two signals:

* py3langid (a Naive Bayes classifier over byte n-grams, trained on 97 languages), restricted to the
  tenant's supported languages with ``LanguageIdentifier.set_languages``; its probabilities are
  normalised over the supported languages only;
* cue words: a few very common English and French words ("oui", "merci", "tomorrow", "yes"...) that
  n-gram models get wrong or only weakly right in texts of one or two words.

For short texts (at most :data:`SHORT_TEXT_WORDS` words) cue words decide when they all point to one
language. Otherwise each cue word multiplies the odds of its language by ``exp(CUE_WEIGHT)`` and the
result must reach a confidence threshold. Texts with no word at all (an emoji, a number, an e-mail
address, a phone number, a URL) or with only language-neutral words ("ok", "cool", "lol") give ``None``.

The model is loaded once per process, on first use (about one second), behind a lock; one restricted
copy of the identifier is kept per set of supported languages, so concurrent callers never change an
identifier another thread is using.
"""

from __future__ import annotations

import copy
import math
import re
import threading
import unicodedata
from collections.abc import Sequence

from py3langid.langid import MODEL_FILE, LanguageIdentifier

__all__ = ["CUE_WORDS", "NEUTRAL_WORDS", "SHORT_TEXT_WORDS", "detect_language", "preload"]


def _words(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text``."""
    return frozenset(text.split())


#: Texts with at most this many words are "short": cue words alone decide them.
SHORT_TEXT_WORDS = 4
#: Log-odds added to a language per cue word found in the text.
CUE_WEIGHT = 2.0
#: Minimum probability of the winning language for a text of more than SHORT_TEXT_WORDS words.
CONFIDENCE = 0.8
#: Minimum probability for a short text without cue words (langid alone is shaky on one or two words).
SHORT_CONFIDENCE = 0.9
#: When not confident, ``previous`` is returned if its probability is at least this (a near tie).
TIE_FLOOR = 0.2

#: Accent-folded, lower-case cue words. A word belongs here only if it is common in chat messages and
#: rare in the other language.
CUE_WORDS: dict[str, frozenset[str]] = {
    "fr": _words("""
        bonjour bonsoir salut coucou oui ouais ouai non merci accord volontiers parfait bien sur
        je j tu vous nous ils elles moi toi suis est sont etes avons avez ai ca c cela ceci
        le la les un une des du au aux et mais ou avec pour sans chez dans pas tres trop peu
        demain aujourd hui hier matin soir midi apres semaine prochain prochaine mois
        lundi mardi mercredi jeudi vendredi samedi dimanche heure heures
        combien comment pourquoi quand quel quelle quels quelles quoi qui
        devis prix voudrais veux peux pouvez aimerais faire fait svp stp rdv bientot bonne journee
        """),
    "en": _words("""
        hi hello hey yes yeah yep yup no nope thanks thank thx please pls sure maybe
        i my you your we our they it is are was am be been do does did don doesn can could would
        will should the an and but or with for without at of to in not very too
        tomorrow today tonight yesterday morning afternoon evening noon next week month
        monday tuesday wednesday thursday friday saturday sunday
        how much many what when where why which who
        quote price cost like want need interested great good fine bye pm
        actually its that this just sorry wait meant mean have has got about around
        """),
}

#: Words that carry no language evidence on their own.
NEUTRAL_WORDS = _words("ok okay oki okey k kk cool super top lol mdr xd hmm hm mm ah oh eh wow yo bravo vs")

_WORD = re.compile(r"[^\W\d_]+")
#: Characters of a message the detector reads (the first ones): the language is clear long before,
#: and the cost stays bounded whatever a lead sends.
MAX_DETECT_CHARS = 2000
_LINK_STARTS = ("http://", "https://", "www.")


def _without_addresses(text: str) -> str:
    """``text`` without e-mail addresses and links, token by token (linear in the text: no
    backtracking pattern over untrusted input)."""
    return " ".join(
        token for token in text.split() if "@" not in token and not token.lower().startswith(_LINK_STARTS)
    )


_lock = threading.Lock()
_base: LanguageIdentifier | None = None
_restricted: dict[frozenset[str], LanguageIdentifier] = {}


def _fold(word: str) -> str:
    """Lower-case ``word`` and strip its diacritics ("Ça" -> "ca")."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _identifier(languages: frozenset[str]) -> LanguageIdentifier:
    """The identifier restricted to ``languages``, loading the model on first call.

    Raises ValueError when a code is unknown to the model.
    """
    global _base
    with _lock:
        found = _restricted.get(languages)
        if found is not None:
            return found
        if _base is None:
            _base = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        # A shallow copy shares the full model arrays; set_languages gives the copy its own sliced
        # arrays, so the base and other restricted copies are never changed.
        restricted = copy.copy(_base)
        restricted.set_languages(sorted(languages))
        _restricted[languages] = restricted
        return restricted


def preload(languages: Sequence[str] = ("en", "fr")) -> None:
    """Load py3langid's model now (about 0.4 s, once per process), so that no lead's first turn
    pays for it. Blocking: call it from a thread."""
    _identifier(frozenset(code.lower() for code in languages))


def _model_probabilities(text: str, languages: Sequence[str]) -> dict[str, float]:
    """py3langid's probability for each of ``languages`` (they sum to 1)."""
    identifier = _identifier(frozenset(languages))
    ranked: list[tuple[str, float]] = identifier.rank(text)
    return {lang: float(prob) for lang, prob in ranked}


def detect_language(
    text: str, *, supported: Sequence[str] = ("en", "fr"), previous: str | None = None
) -> str | None:
    """Return the language of ``text`` among ``supported`` (ISO 639-1 codes), or None if unsure.

    ``previous`` is the lead's current language: it wins near ties (its probability is at least
    :data:`TIE_FLOOR` while no language reaches the confidence threshold). It never turns a text without
    language evidence ("ok", "👍", "42", an e-mail address or phone number) into an answer: those give
    None, and the caller keeps the lead's current language.

    Raises ValueError when ``supported`` is empty or holds a code py3langid does not know.
    """
    languages = list(dict.fromkeys(code.lower() for code in supported))
    if not languages:
        raise ValueError("supported must name at least one language")
    cleaned = _without_addresses(text[:MAX_DETECT_CHARS])
    words = [_fold(w) for w in _WORD.findall(cleaned)]
    meaningful = [w for w in words if w not in NEUTRAL_WORDS]
    if not meaningful:
        return None
    if len(languages) == 1:
        _identifier(frozenset(languages))  # validates the code
        return languages[0]

    cues = {lang: sum(w in CUE_WORDS.get(lang, ()) for w in meaningful) for lang in languages}
    cued = [lang for lang, count in cues.items() if count]
    short = len(words) <= SHORT_TEXT_WORDS
    if short and len(cued) == 1:
        return cued[0]

    probabilities = _model_probabilities(cleaned, languages)
    logits = {
        lang: math.log(max(probabilities.get(lang, 0.0), 1e-12)) + CUE_WEIGHT * cues[lang]
        for lang in languages
    }
    top_logit = max(logits.values())
    weights = {lang: math.exp(logit - top_logit) for lang, logit in logits.items()}
    total = sum(weights.values())
    combined = {lang: weight / total for lang, weight in weights.items()}

    best = max(languages, key=lambda lang: (combined[lang], lang == previous))
    threshold = SHORT_CONFIDENCE if short and not cued else CONFIDENCE
    if combined[best] >= threshold:
        return best
    if previous is not None and previous in combined and combined[previous] >= TIE_FLOOR:
        return previous
    return None
