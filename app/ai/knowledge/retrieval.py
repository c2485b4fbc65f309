"""Knowledge-base retrieval: offline answers to a lead's off-script questions.

Entries are the tenant's ``qaTraining`` documents (:class:`QAEntry`). :class:`KnowledgeIndex` indexes
each entry's question, tags and category with BM25 (``rank_bm25.BM25Okapi``, k1=1.5, b=0.75) over tokens
that are lower-cased, split on non-letters, stripped of stop words (:data:`STOP_WORDS`: function words
and interrogatives; :data:`FILLER_WORDS`: conversational fillers, "roughly", "vraiment"),
Snowball-stemmed in the entry's language, then accent-folded. One BM25 index is kept per language, so
each side is stemmed with the same stemmer. The response is a weak field: a term found only there earns
:data:`RESPONSE_CREDIT` of its weight (answers explain with the words leads use: "payback period",
"orientation"). A question word the index has never seen, of :data:`FUZZY_MIN_LENGTH` letters or more,
is read as the closest indexed word with the same first letter when their rapidfuzz ratio reaches
:data:`FUZZY_MIN_RATIO` ("waranty", "entretient", "goverment").

**What a score means.** For each distinct question term t, BM25 gives ``idf(t) * sat(t, entry)``
where ``sat`` is BM25's term-frequency saturation, 1.0 for a term found once in an entry of average
length. Each term's contribution is capped at ``idf(t)`` and the sum divided by the question's total
weight, so the score, in 0..1, is the IDF-weighted share of the question's terms the entry covers
(slightly less when the entry is longer than average): 1.0 when all are found, 0.0 when none is.
Words the index has never seen weigh :data:`UNKNOWN_WEIGHT` times the rarest known term, so an
off-topic question ("what's the price on Mars") stays low even if one of its words matches. IDF uses
Lucene's non-negative form ``ln(1 + (N - n + 0.5) / (n + 0.5))`` (N entries, n holding the term)
instead of BM25Okapi's epsilon floor, which goes negative in tiny knowledge bases.

**When to answer.** :meth:`KnowledgeIndex.best_answer` answers when the best entry scores at least
:data:`DEFAULT_MIN_SCORE` AND leads the runner-up (another response) by :data:`DEFAULT_MIN_MARGIN`:
"hello, solar panels?" covers the maintenance, price and subsidies entries alike (score 1.0 for
each), so it is too vague to answer. Both were chosen by measuring, see
:mod:`app.ai.knowledge.evaluation` and ``leadwarm eval --knowledge``. An entry whose question, tags
and category hold none of the question's terms never answers, whatever its score (``Match.anchored``):
its response only mentions the topic in passing ("vous faites l'isolation des combles ?" is not
answered by the delays entry, whose response says how long roof insulation takes); it still counts
as a rival for the margin. No labelled question of the evaluation sets was answered that way.

Ordering: score (rounded to 9 decimals) descending, then success rate descending, usage count
descending, id ascending, so equal scores always come back in the same order whatever the input order.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import snowballstemmer
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from rank_bm25 import BM25Okapi
from rapidfuzz import fuzz, process

from app.ai.language import detect_language

__all__ = [
    "AMOUNT_WORDS",
    "DEFAULT_MIN_MARGIN",
    "DEFAULT_MIN_SCORE",
    "FILLER_WORDS",
    "FUZZY_MIN_LENGTH",
    "FUZZY_MIN_RATIO",
    "OTHER_AMOUNTS",
    "PRICE_WORDS",
    "RESPONSE_CREDIT",
    "SIZE_MARKERS",
    "SIZE_WORDS",
    "UNKNOWN_WEIGHT",
    "KnowledgeIndex",
    "Match",
    "QAEntry",
    "looks_like_question",
    "tokenize",
]


def _words(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text``."""
    return frozenset(text.split())


DEFAULT_MIN_SCORE = 0.5
"""Default acceptance threshold of :meth:`KnowledgeIndex.best_answer`, chosen from measurement:
:func:`app.ai.knowledge.evaluation.choose_threshold` on the ``dev`` labelled questions
(``app/ai/knowledge/eval/dev.yaml``: 144 French and English questions on the demo base, 44 of them
unanswerable), i.e. the best F0.5 (precision weighted over recall) among the thresholds 0.30..0.85
that answer at most 10 % of the unanswerable questions. There, 0.50 gives precision 100 %, recall
95 %, no false answer; 0.40 and below answer 14-16 % of the unanswerable questions. A test keeps
this value equal to what ``choose_threshold`` picks on the dev set; ``leadwarm eval --knowledge``
prints the figures, held-out set included."""

#: A word the index has never seen, of at least this many letters, is read as the closest indexed
#: word when their rapidfuzz ``ratio`` (0..100) reaches :data:`FUZZY_MIN_RATIO` ("waranty", "entretient").
FUZZY_MIN_LENGTH = 5
FUZZY_MIN_RATIO = 85.0

#: Share of a term's weight an entry earns when the term is only in its response (not its question,
#: tags or category): answers explain with words leads use ("orientation", "payback period").
RESPONSE_CREDIT = 0.5

#: Weight of a question word the index has never seen, as a multiple of the rarest known term's idf.
UNKNOWN_WEIGHT = 1.5

DEFAULT_MIN_MARGIN = 0.1
""":meth:`KnowledgeIndex.best_answer` answers only when the best entry leads the next one (with a
different response) by at least this much: "solar panels?" matches half the base equally well.
Measured on the dev questions (``measure_knowledge(min_margin=...)``): any margin from 0.05 to 0.20
gives the same figures; none at all answers 9 % of the unanswerable questions. 0.10 is the middle."""

#: ISO 639-1 code -> Snowball algorithm name, for the languages we stem.
_STEMMERS = {
    "en": "english",
    "fr": "french",
    "es": "spanish",
    "de": "german",
    "it": "italian",
    "pt": "portuguese",
    "nl": "dutch",
}

#: Accent-folded stop words. Interrogatives are stop words: they say "this is a question", not what about.
STOP_WORDS: dict[str, frozenset[str]] = {
    "en": _words("""
        a an the and or but if of to in on at by for from with about as into than then so
        i me my we our us you your he she it its they them their this that these those there here
        is are was were be been being am do does did doing have has had having can could will would
        shall should may might must s t d ll re ve m don doesn didn isn aren
        what whats how when where why which who whom whose much many any some very just also
        please hi hello hey thanks thank yes no not get
        """),
    "fr": _words("""
        a au aux avec ce ces c ca cela ceci cet cette d de des du elle elles en et est es etes etre
        il ils j je l la le les leur leurs lui m ma mais me mes moi mon n ne nos notre nous on ou par
        pas pour qu que qui quoi s sa se ses si son sur t ta te tes toi ton tu un une vos votre vous y
        suis sommes sont ai as avons avez ont fait faire peut peux pouvez puis dois doit
        quel quelle quels quelles comment pourquoi quand bonjour salut merci oui non svp stp
        tres aussi bien
        """),
}

#: Conversational fillers and general verbs, left out of retrieval only (on top of :data:`STOP_WORDS`,
#: which the guardrails share): they say how a lead talks, not what the question is about.
FILLER_WORDS: dict[str, frozenset[str]] = {
    "en": _words("""
        like roughly around approximately about really actually exactly quite too also just still even
        tell know let want wanted wonder wondering need needed got go going make made give
        guys guy folks someone anyone something anything thing things stuff bit lot lots kind sort
        more most less each every all both other another same such own only
        up down out off over again once now ever
        quick question questions ok okay sure well so oh hmm
        work works working available before after
        r u ur pls plz thx
        """),
    "fr": _words("""
        vraiment exactement environ peu beaucoup trop plus moins encore toujours deja meme alors donc
        chose choses truc quelque quelqu un
        faut falloir possible savoir voudrais voudrait veux voulez aimerais souhaite dire connaitre
        ya petite petit question questions ok bon ben bah hmm
        faites fais avoir passe passer marche marcher venez venir parlez parler jusqu cas probleme
        cest ces sa slt bjr cc jsp pk pq
        """),
}
#: Words that ask for an amount. A question whose only content is one of them ("c'est combien ?",
#: "how much is it?", "ça fait combien") asks the price: it is searched with :data:`PRICE_WORDS` added.
#: Accent-folded, lower-cased; "much" is an English stop word, so it is looked for in the raw words.
AMOUNT_WORDS: dict[str, frozenset[str]] = {
    "en": _words("much"),
    "fr": _words("combien combiens combient cb"),
}

#: Words saying the amount asked is not money ("combien de temps", "how many years"): such a question
#: is never read as a price question. Accent-folded.
OTHER_AMOUNTS: dict[str, frozenset[str]] = {
    "en": _words("long time years year months month days day weeks week save saving savings many"),
    "fr": _words("temps duree ans annees an mois jours jour semaines semaine economiser economie economies"),
}

#: What a bare amount question is about, per language: searched with the question's own words. Only
#: the words the index knows are added (a tenant without a price entry gets no worse a score).
PRICE_WORDS: dict[str, str] = {"en": "price cost", "fr": "prix coût tarif"}

#: Words that ask how many or how big, not how much money ("how many panels do I need", "what size of
#: system", "quelle puissance"). Accent-folded. A French "combien de <word>" asks a count too, unless the
#: word is money ("combien d'euros"). Such a question is searched with :data:`SIZE_WORDS` added and is
#: never read as a price question; with a time word ("how many years") it is neither.
SIZE_MARKERS: dict[str, frozenset[str]] = {
    "en": _words("many size sized sizing big large"),
    "fr": _words("nombre taille puissance dimension dimensionner dimensionnement"),
}

#: What a size question is about, per language: only the words the index knows are added.
SIZE_WORDS: dict[str, str] = {"en": "size number", "fr": "nombre taille"}

_NOT_A_COUNT = [[], *([word] for word in ("euros", "euro", "argent", "sous", "dollars", "pounds"))]

_RETRIEVAL_STOP = {lang: words | FILLER_WORDS.get(lang, frozenset()) for lang, words in STOP_WORDS.items()}
_ALL_RETRIEVAL_STOP = frozenset().union(*_RETRIEVAL_STOP.values())

_TOKEN = re.compile(r"[^\W_]+")
_ROUND = 9


class QAEntry(BaseModel):
    """One question/answer pair of a tenant's knowledge base (the seed's ``qaTraining`` document).

    Accepts the seed's camelCase keys (``isCustom``, ``usageCount``, ``successRate``) as well as the
    snake_case field names. ``success_rate`` is a fraction 0..1; ``language`` an ISO 639-1 code, or None
    when unknown (the index then guesses it from the question).
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    id: str
    question: str
    response: str
    category: str = ""
    tags: list[str] = Field(default_factory=list)
    is_custom: bool = False
    usage_count: int = Field(default=0, ge=0)
    success_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """A knowledge-base entry and its normalised score in 0..1 (see the module docstring).
    ``anchored``: at least one of the question's terms is in the entry's question, tags or category
    (not only in its response); only an anchored entry answers (:meth:`KnowledgeIndex.best_match`)."""

    entry: QAEntry
    score: float
    anchored: bool = True


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@cache
def _stemmer(language: str) -> snowballstemmer.stemmer | None:
    name = _STEMMERS.get(language)
    return snowballstemmer.stemmer(name) if name else None


def _terms(text: str, language: str | None) -> list[tuple[str, str]]:
    """``(word, term)`` pairs of ``text``: the accent-folded lower-cased word and its index term."""
    stop = _RETRIEVAL_STOP.get(language, _ALL_RETRIEVAL_STOP) if language else _ALL_RETRIEVAL_STOP
    stemmer = _stemmer(language) if language else None
    pairs: list[tuple[str, str]] = []
    for raw in _TOKEN.findall(text.lower()):
        word = _fold(raw)
        if word in stop:
            continue
        stemmed = stemmer.stemWord(raw) if stemmer is not None else raw
        pairs.append((word, _fold(stemmed)))
    return pairs


def tokenize(text: str, language: str | None) -> list[str]:
    """Index terms of ``text``: lower-cased, stop words removed, stemmed for ``language``, accent-folded.

    With ``language`` None (or one without a stemmer) no stemming is done and the stop words of every
    language are removed. Order and duplicates are kept.
    """
    return [term for _, term in _terms(text, language)]


def _idf(corpus_size: int, doc_freq: int) -> float:
    """Lucene's BM25 idf, always > 0."""
    return math.log(1.0 + (corpus_size - doc_freq + 0.5) / (doc_freq + 0.5))


class _LanguageIndex:
    """BM25 over the entries of one language (``language`` None: entries of unknown language)."""

    def __init__(self, language: str | None, entries: Sequence[QAEntry]) -> None:
        self.language = language
        self.entries = list(entries)
        documents = [_terms(self._document(entry), language) for entry in self.entries]
        corpus = [[term for _, term in doc] for doc in documents]
        # BM25Okapi divides by the average length: give empty documents a placeholder term.
        self._bm25 = BM25Okapi([doc or ["\x00"] for doc in corpus])
        size = len(corpus)
        self._bm25.idf = {term: _idf(size, freq) for term, freq in self._doc_freqs().items()}
        self._unknown_idf = UNKNOWN_WEIGHT * _idf(size, 1)
        # the responses: a weak field (a term found only there counts RESPONSE_CREDIT of its weight)
        responses = [_terms(entry.response, language) for entry in self.entries]
        self._response_terms = [frozenset(term for _, term in doc) for doc in responses]
        response_freqs: dict[str, int] = {}
        for terms in self._response_terms:
            for term in terms:
                response_freqs[term] = response_freqs.get(term, 0) + 1
        self._response_idf = {
            term: _idf(size, freq) for term, freq in response_freqs.items() if term not in self._bm25.idf
        }
        #: every indexed word -> its term, to read a misspelt word as the word it was meant to be
        self._words: dict[str, str] = {}
        for doc in [*documents, *responses]:
            for word, term in doc:
                if len(word) >= FUZZY_MIN_LENGTH:
                    self._words.setdefault(word, term)

    @staticmethod
    def _document(entry: QAEntry) -> str:
        return " ".join([entry.question, *entry.tags, entry.category])

    def _doc_freqs(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for freqs in self._bm25.doc_freqs:
            for term in freqs:
                counts[term] = counts.get(term, 0) + 1
        return counts

    def _known(self, word: str, term: str) -> str | None:
        """``term`` when the index knows it, else the term of the closest indexed word (a typo:
        rapidfuzz ratio at least :data:`FUZZY_MIN_RATIO`), else None."""
        if term in self._bm25.idf or term in self._response_idf:
            return term
        if len(word) < FUZZY_MIN_LENGTH or not self._words:
            return None
        # a misspelling rarely changes the first letter: "marche" is not "demarche"
        candidates = [w for w in self._words if w[0] == word[0]]
        found = process.extractOne(word, candidates, scorer=fuzz.ratio, score_cutoff=FUZZY_MIN_RATIO)
        return self._words[found[0]] if found is not None else None

    def _price_pairs(
        self, question: str, pairs: list[tuple[str, str]], *, amount_as_price: bool
    ) -> list[tuple[str, str]]:
        """The :data:`PRICE_WORDS` terms this index knows when ``question`` asks an amount (an
        :data:`AMOUNT_WORDS` word) and either says nothing else or ``amount_as_price`` is set,
        else nothing."""
        languages = [self.language] if self.language in AMOUNT_WORDS else list(AMOUNT_WORDS)
        amount = frozenset().union(*(AMOUNT_WORDS[lang] for lang in languages))
        others = frozenset().union(*(OTHER_AMOUNTS[lang] for lang in languages))
        topic = [(word, term) for word, term in pairs if word not in amount]
        if topic and not amount_as_price:
            return []
        if any(
            word in others or (_unknown_word(word) and self._known(word, term) is None)
            for word, term in topic
        ):
            return []  # "combien de temps", or a topic the base does not know ("combien de salariés")
        raw = {_fold(token) for token in _TOKEN.findall(question.lower())}
        if not amount.intersection(raw) or not others.isdisjoint(raw):
            return []
        extra: list[tuple[str, str]] = []
        for lang in languages:
            for word, term in _terms(PRICE_WORDS[lang], self.language):
                if term in self._bm25.idf or term in self._response_idf:
                    extra.append((word, term))
        return extra

    def _size_pairs(self, question: str, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The :data:`SIZE_WORDS` terms this index knows when ``question`` asks how many or how big
        (:func:`_asks_size`) of something the base knows, else nothing ("how many people work for
        you" is no sizing question)."""
        if not _asks_size(question) or any(
            _unknown_word(word) and self._known(word, term) is None for word, term in pairs
        ):
            return []
        languages = [self.language] if self.language in SIZE_WORDS else list(SIZE_WORDS)
        return [
            (word, term)
            for lang in languages
            for word, term in _terms(SIZE_WORDS[lang], self.language)
            if term in self._bm25.idf or term in self._response_idf
        ]

    def score(self, question: str, *, amount_as_price: bool = False) -> list[Match]:
        """Every entry with a normalised score > 0 for ``question``. ``amount_as_price``: an amount
        question with a topic ("how much are panels", "c combien une pac") is also a price question.
        A size question ("how many panels do I need", "combien de panneaux") is searched with
        :data:`SIZE_WORDS` and never as a price question."""
        pairs = _terms(question, self.language)
        size = self._size_pairs(question, pairs)
        if size:
            pairs += size
        else:
            pairs += self._price_pairs(question, pairs, amount_as_price=amount_as_price)
        terms: list[str] = []
        weights: list[float] = []
        unknown = 0.0
        for word, term in dict.fromkeys(pairs):
            known = self._known(word, term)
            if known is None:
                unknown += self._unknown_idf
            elif known not in terms:
                terms.append(known)
                weights.append(self._bm25.idf.get(known) or self._response_idf[known])
        if not terms:
            return []
        covered = [0.0] * len(self.entries)
        anchored = [False] * len(self.entries)
        for term, weight in zip(terms, weights, strict=True):
            # BM25 of one term is idf * tf-saturation; a tf-saturation of 1 (the term once, in an entry
            # of average length) counts as full coverage, so repeats cannot make up for missing terms.
            values = self._bm25.get_scores([term]) if term in self._bm25.idf else [0.0] * len(self.entries)
            for i, value in enumerate(values):
                if value > 0.0:
                    covered[i] += min(float(value), weight)
                    anchored[i] = True
                elif term in self._response_terms[i]:
                    covered[i] += RESPONSE_CREDIT * weight
        ceiling = sum(weights) + unknown
        matches = []
        for entry, value, held in zip(self.entries, covered, anchored, strict=True):
            normalised = round(value / ceiling, _ROUND)
            if normalised > 0.0:
                matches.append(Match(entry=entry, score=normalised, anchored=held))
        return matches


def _order(match: Match) -> tuple[float, float, int, str]:
    entry = match.entry
    return (-match.score, -entry.success_rate, -entry.usage_count, entry.id)


class KnowledgeIndex:
    """Searchable knowledge base; immutable once built (rebuild it when the tenant edits its entries)."""

    def __init__(self, by_language: dict[str | None, _LanguageIndex]) -> None:
        self._by_language = by_language

    @classmethod
    def build(cls, entries: Sequence[QAEntry]) -> KnowledgeIndex:
        """Index ``entries``. An entry without ``language`` is assigned the one detected from its
        question and response (among the languages we stem), or stays in an unstemmed "unknown" group.
        """
        groups: dict[str | None, list[QAEntry]] = {}
        for entry in entries:
            language = entry.language.lower() if entry.language else None
            if language is None:
                language = detect_language(f"{entry.question} {entry.response}", supported=tuple(_STEMMERS))
            groups.setdefault(language, []).append(entry)
        return cls({language: _LanguageIndex(language, group) for language, group in groups.items()})

    @property
    def languages(self) -> list[str | None]:
        """Languages present in the index (None: entries of unknown language)."""
        return list(self._by_language)

    def _search_groups(
        self, question: str, groups: Iterable[_LanguageIndex], min_score: float, amount_as_price: bool
    ) -> list[Match]:
        matches = [
            m
            for group in groups
            for m in group.score(question, amount_as_price=amount_as_price)
            if m.score >= min_score
        ]
        return sorted(matches, key=_order)

    def search(
        self,
        question: str,
        *,
        language: str | None,
        limit: int = 3,
        min_score: float = 0.0,
        amount_as_price: bool = False,
    ) -> list[Match]:
        """Best entries for ``question``, at most ``limit``, each scoring at least ``min_score`` (and > 0).

        With ``language`` set, entries in that language (and of unknown language) are searched first;
        the other languages are searched only when none of those passes ``min_score``. With ``language``
        None, every entry competes. Ordering: see the module docstring. A bare amount question
        ("c'est combien ?") is searched with :data:`PRICE_WORDS`; with ``amount_as_price`` any
        question with an :data:`AMOUNT_WORDS` word is ("how much are panels").
        """
        if limit <= 0:
            return []
        language = language.lower() if language else None
        if language is None:
            groups = self._by_language.values()
            return self._search_groups(question, groups, min_score, amount_as_price)[:limit]
        preferred = [g for lang, g in self._by_language.items() if lang in (language, None)]
        matches = self._search_groups(question, preferred, min_score, amount_as_price)
        if not matches:
            others = [g for lang, g in self._by_language.items() if lang not in (language, None)]
            matches = self._search_groups(question, others, min_score, amount_as_price)
        return matches[:limit]

    def best_answer(
        self,
        question: str,
        *,
        language: str | None,
        min_score: float = DEFAULT_MIN_SCORE,
        min_margin: float = DEFAULT_MIN_MARGIN,
    ) -> QAEntry | None:
        """The entry answering ``question``, or None when nothing scores at least ``min_score``, or
        when the runner-up (with another response) scores within ``min_margin`` of it: the question
        is too vague to pick one ("hello, solar panels?")."""
        match = self.best_match(question, language=language, min_score=min_score, min_margin=min_margin)
        return match.entry if match is not None else None

    def best_match(
        self,
        question: str,
        *,
        language: str | None,
        min_score: float = DEFAULT_MIN_SCORE,
        min_margin: float = DEFAULT_MIN_MARGIN,
    ) -> Match | None:
        """:meth:`best_answer` with its score. An amount question that finds no clear answer as
        written ("how much are panels": every entry about panels ties) is searched again as a price
        question; one that does ("how much will I save", "combien de temps") keeps its answer."""
        match = self._best(question, language, min_score, min_margin, amount_as_price=False)
        if match is None and _asks_amount(question):
            match = self._best(question, language, min_score, min_margin, amount_as_price=True)
        return match

    def _best(
        self,
        question: str,
        language: str | None,
        min_score: float,
        min_margin: float,
        *,
        amount_as_price: bool,
    ) -> Match | None:
        matches = self.search(
            question, language=language, limit=8, min_score=min_score, amount_as_price=amount_as_price
        )
        best = next((m for m in matches if m.anchored), None)
        if best is None:
            return None
        rival = next((m for m in matches if m.entry.response != best.entry.response), None)
        if rival is not None and best.score - rival.score < min_margin:
            return None
        return best


def _unknown_word(word: str) -> bool:
    """Whether ``word`` can name a topic the base lacks: a word of five letters or more. Short words
    and model codes ("pac", "4kwp") may name the product whose price is asked."""
    return len(word) >= FUZZY_MIN_LENGTH and word.isalpha()


_ALL_AMOUNT_WORDS = frozenset().union(*AMOUNT_WORDS.values())
_ALL_SIZE_MARKERS = frozenset().union(*SIZE_MARKERS.values())
_TIME_WORDS = frozenset().union(*OTHER_AMOUNTS.values()) - _ALL_SIZE_MARKERS


def _asks_size(question: str) -> bool:
    """Whether ``question`` asks how many or how big: a :data:`SIZE_MARKERS` word, or a French
    "combien de <word>" whose word is not money, and no time word ("how many years")."""
    raw = [_fold(token) for token in _TOKEN.findall(question[:2000].lower())]
    if not _TIME_WORDS.isdisjoint(raw):
        return False
    if not _ALL_SIZE_MARKERS.isdisjoint(raw):
        return True
    return any(
        word == "combien" and raw[i + 1 : i + 2] in (["de"], ["d"]) and raw[i + 2 : i + 3] not in _NOT_A_COUNT
        for i, word in enumerate(raw)
    )


def _asks_amount(question: str) -> bool:
    """Whether ``question`` holds an :data:`AMOUNT_WORDS` word of any language."""
    return not _ALL_AMOUNT_WORDS.isdisjoint(_fold(raw) for raw in _TOKEN.findall(question.lower()))


_EN_INTERROGATIVES = _words(
    "what whats how when where why which who whom whose can could do does did is are was were will would "
    "should shall may"
)
_FR_INTERROGATIVES = _words(
    "combien comment quand ou pourquoi quel quelle quels quelles qui quoi lequel laquelle"
)
_FR_PHRASES = ("est-ce que", "est-ce qu", "puis-je", "y a-t-il", "y-a-t-il", "c'est combien", "c'est quoi")
_FR_INVERSION = re.compile(r"^[^\W\d_]+-(?:t-)?(?:vous|tu|je|il|elle|ils|elles|on|nous)\b")


def _trailing_punctuation(text: str) -> str:
    """The run of spaces and non-word characters that ends ``text`` (linear: read from the end)."""
    end = len(text)
    while end > 0 and not (text[end - 1].isalnum() or text[end - 1] == "_"):
        end -= 1
    return text[end:]


def looks_like_question(text: str, language: str | None) -> bool:
    """True when ``text`` reads as a question: it ends with "?" (possibly followed by "!", spaces or an
    emoji), or starts with an interrogative word of ``language`` ("how", "combien", "est-ce que",
    "pouvez-vous"...). With ``language`` None (or neither "en" nor "fr") both word lists are used.
    """
    stripped = text.strip()
    if not stripped:
        return False
    if "?" in _trailing_punctuation(stripped):
        return True
    lowered = _fold(stripped.lower()).replace("\u2019", "'")
    first = (_TOKEN.findall(lowered) or [""])[0]
    check_en = language not in ("fr",)
    check_fr = language not in ("en",)
    if check_en and first in _EN_INTERROGATIVES:
        return True
    if check_fr:
        if first in _FR_INTERROGATIVES or lowered.startswith(_FR_PHRASES):
            return True
        if _FR_INVERSION.match(lowered):
            return True
    return False
