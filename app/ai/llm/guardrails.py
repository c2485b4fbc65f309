"""Guardrails: checks every generated reply must pass before it is sent to a lead.

:func:`check_reply` runs six checks and returns a :class:`Verdict` whose ``reasons`` start with one of
the codes below followed by ``": "`` and a detail meant for the regeneration prompt and the logs (a
detail never quotes a secret marker):

``no_go_topic``
    The reply touches one of the tenant's ``noGoTopics`` (aiConfig). A topic is split into
    alternatives on "or"/"ou"/","/";"/"/"; an alternative matches a sentence of the reply that holds
    every one of its content words. Words are compared by Snowball stem (English and French, accents
    and case folded) and through a small bilingual concept lexicon (:data:`CONCEPTS`), so the topic
    "Politics" matches "politique" and "Guaranteed savings" matches "nous garantissons des économies".
    A sentence *grounded* in the knowledge base (at least :data:`GROUNDED_SHARE` of its content stems
    found in one knowledge-base sentence) is exempt: the tenant wrote it.
``unsupported_claim``
    A price, amount, percentage or other figure, or a promise word (guaranteed, free, gratuit, offert,
    discount, remise...), that the knowledge texts do not support. Money amounts must appear as money
    in the knowledge texts (same value), percentages as percentages; a bare number is a claim when its
    sentence speaks of price, cost, savings, payback or discounts and must appear somewhere in the
    knowledge texts or, for a plain number (a roof area), in ``ctx.lead_text``; the lead's amounts and
    percentages never count, so a lead cannot make the bot confirm a price they typed. A promise word is
    supported when a knowledge-base sentence holds the same word (stem) and at least half of the
    content words around it in the reply (three on each side): "the survey is free" passes when the KB
    says "a free site survey", "installation is guaranteed free" does not.
``too_long``
    Longer than the channel allows: SMS more than ``ctx.max_sms_segments`` segments (GSM-7/UCS-2 rules,
    :func:`channels.sms.sms_segments`); other channels :func:`max_reply_chars` characters.
``wrong_language``
    :func:`app.ai.language.detect_language` is confident the reply is not in ``ctx.language``
    (unknown = passes).
``prompt_leak``
    The reply quotes a secret marker (case, accents, punctuation and spacing ignored; also inside base64
    and reversed text), or says things a model says about its prompt or itself ("as an AI language
    model", "system prompt", "my instructions", "je suis un modèle de langage", "ignore previous"...).
``persona``
    The reply names a competitor (``ctx.competitors``), or presents itself as someone else ("I am DAN",
    "je suis EcoSolar", "you are now talking to ...") in a sentence that does not name the persona.
``unsafe_content``
    HTML tags, markdown images, or links that do not appear in the knowledge texts.

The checks are lexical and deliberately conservative: a polite refusal that names a no-go topic
("I can't discuss politics") is a breach too; the caller regenerates once, then uses
:func:`safe_fallback`.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache, lru_cache

import snowballstemmer

from app.ai.knowledge.retrieval import STOP_WORDS
from app.ai.language import detect_language
from channels.registry import channel_class
from channels.sms import sms_segments

__all__ = [
    "CONCEPTS",
    "DEFAULT_MAX_SMS_SEGMENTS",
    "GROUNDED_SHARE",
    "NO_GO_TOPIC",
    "PERSONA",
    "PROMPT_LEAK",
    "REASON_CODES",
    "TOO_LONG",
    "UNSAFE_CONTENT",
    "UNSUPPORTED_CLAIM",
    "WRONG_LANGUAGE",
    "GuardrailContext",
    "Verdict",
    "check_reply",
    "max_reply_chars",
    "reason_codes",
    "safe_fallback",
]

NO_GO_TOPIC = "no_go_topic"
UNSUPPORTED_CLAIM = "unsupported_claim"
TOO_LONG = "too_long"
WRONG_LANGUAGE = "wrong_language"
PROMPT_LEAK = "prompt_leak"
PERSONA = "persona"
UNSAFE_CONTENT = "unsafe_content"
#: Every reason code, in the order the checks run.
REASON_CODES = (
    NO_GO_TOPIC,
    UNSUPPORTED_CLAIM,
    TOO_LONG,
    WRONG_LANGUAGE,
    PROMPT_LEAK,
    PERSONA,
    UNSAFE_CONTENT,
)

#: Default SMS budget of a reply, in segments (a setting of the caller; 3 segments = 459 GSM-7 chars).
DEFAULT_MAX_SMS_SEGMENTS = 3
#: Longest reply on a channel the registry does not know (SMS is counted in segments).
OTHER_CHANNEL_MAX_CHARS = 2000


def max_reply_chars(channel: str) -> int:
    """Longest reply on ``channel``, in characters: the channel's own limit (its
    ``traits.max_text_chars``, e.g. WhatsApp's 4,096-character text body), else
    :data:`OTHER_CHANNEL_MAX_CHARS`."""
    try:
        return channel_class(channel).traits.max_text_chars
    except KeyError:
        return OTHER_CHANNEL_MAX_CHARS


#: Share of a reply sentence's content stems one knowledge-base sentence must hold to ground it.
GROUNDED_SHARE = 0.8


@dataclass(slots=True)
class GuardrailContext:
    """What a reply is checked against (built per turn by the interpreter).

    ``language``: the lead's ISO 639-1 code. ``channel``: ``whatsapp``, ``sms``, ``email``, ``webchat``...
    ``knowledge_texts``: the tenant's KB questions and responses (every figure and promise must come
    from them). ``no_go_topics``: aiConfig ``noGoTopics``. ``secret_markers``: distinctive phrases of
    the system prompt. ``persona_name``: aiConfig ``companyName``. Optional: ``competitors`` (brand
    names from aiConfig ``competitors``), ``lead_text`` (the lead's own recent words, whose plain
    numbers may be echoed back), ``max_sms_segments``. ``secret_markers`` must be distinctive (a marker
    found anywhere in a reply is a leak); markers shorter than 8 letters and digits are ignored.
    """

    language: str
    channel: str
    knowledge_texts: list[str]
    no_go_topics: list[str]
    secret_markers: list[str]
    persona_name: str
    competitors: list[str] = field(default_factory=list)
    lead_text: str = ""
    max_sms_segments: int = DEFAULT_MAX_SMS_SEGMENTS


@dataclass(slots=True)
class Verdict:
    """``ok`` is True when no check failed; ``reasons`` holds one ``"<code>: <detail>"`` per breach."""

    ok: bool
    reasons: list[str] = field(default_factory=list)


def reason_codes(verdict: Verdict) -> set[str]:
    """The codes (``no_go_topic``...) of ``verdict``'s reasons."""
    return {reason.split(":", 1)[0] for reason in verdict.reasons}


# --------------------------------------------------------------------------- text helpers


def _words(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text``."""
    return frozenset(text.split())


def _fold(text: str) -> str:
    """Lower-case, accents removed, typographic apostrophes made plain."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("\u2019", "'")


_WORD = re.compile(r"[^\W\d_]+")
_SENTENCE = re.compile(r"(?<=[.!?…])\s+|\n+")
_STOP = frozenset().union(*STOP_WORDS.values()) | _words(
    "any all tout tous toute toutes other autre autres such tel telle regarding concernant sur about"
)


@cache
def _stemmer(language: str) -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer({"en": "english", "fr": "french"}[language])


@lru_cache(maxsize=8192)
def _stems(word: str) -> tuple[str, str]:
    """(English stem, French stem) of a lower-case word, both accent-folded."""
    return _fold(_stemmer("en").stemWord(word)), _fold(_stemmer("fr").stemWord(word))


def _content_words(text: str) -> list[str]:
    """Lower-case words of ``text`` that are not stop words (in either language)."""
    words = [w.lower() for w in _WORD.findall(text.replace("\u2019", "'"))]
    return [w for w in words if len(w) > 1 and _fold(w) not in _STOP]


def _sentences(text: str) -> list[str]:
    return [s for s in (part.strip() for part in _SENTENCE.split(text)) if s]


#: Bilingual concepts: a topic word and a reply word match when both belong to the same concept.
CONCEPTS: dict[str, dict[str, tuple[str, ...]]] = {
    "politics": {
        "en": ("politics", "political", "politician", "election", "vote", "voting"),
        "fr": ("politique", "politicien", "élection", "voter", "vote"),
    },
    "religion": {"en": ("religion", "religious"), "fr": ("religion", "religieux")},
    "guarantee": {
        "en": ("guarantee", "guaranteed", "promise", "promised", "certain"),
        "fr": ("garantie", "garanti", "garantir", "garantissons", "promettre", "promis", "certain"),
    },
    "savings": {
        "en": ("savings", "saving", "save", "economy"),
        "fr": ("économie", "économies", "économiser", "économisez"),
    },
    "price": {
        "en": ("price", "prices", "pricing", "cost", "costs", "tariff"),
        "fr": ("prix", "tarif", "tarifs", "coût", "coûte", "montant"),
    },
    "payback": {
        "en": ("payback", "return", "roi", "profitable", "profitability"),
        "fr": ("rentabilité", "rentable", "amortissement", "amorti", "retour"),
    },
    "figure": {"en": ("figure", "figures", "number", "amount"), "fr": ("chiffre", "chiffres", "montant")},
    "competitor": {
        "en": ("competitor", "competitors", "competition", "rival"),
        "fr": ("concurrent", "concurrents", "concurrence"),
    },
    "quality": {"en": ("quality", "reliability"), "fr": ("qualité", "fiabilité")},
    "exact": {"en": ("exact", "exactly", "precise"), "fr": ("exact", "exacte", "exactement", "précis")},
    "survey": {"en": ("survey", "visit", "assessment"), "fr": ("visite", "étude")},
    "discount": {
        "en": ("discount", "discounts", "rebate", "promotion", "promo"),
        "fr": ("remise", "réduction", "rabais", "promotion", "promo", "ristourne"),
    },
}


@cache
def _concept_stems() -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    out = {}
    for name, words in CONCEPTS.items():
        en = frozenset(_stems(w)[0] for w in words["en"])
        fr = frozenset(_stems(w)[1] for w in words["fr"])
        out[name] = (en, fr)
    return out


def _keys(word: str) -> frozenset[str]:
    """Matching keys of one word: ``en:<stem>``, ``fr:<stem>`` and ``c:<concept>`` for its concepts."""
    en, fr = _stems(word)
    keys = {f"en:{en}", f"fr:{fr}"}
    for name, (en_set, fr_set) in _concept_stems().items():
        if en in en_set or fr in fr_set:
            keys.add(f"c:{name}")
    return frozenset(keys)


def _term(word: str) -> frozenset[str]:
    """What a topic word must meet in a sentence: its concepts when it has some, else its stems."""
    keys = _keys(word)
    concepts = frozenset(k for k in keys if k.startswith("c:"))
    return concepts or keys


def _sentence_keys(sentence: str) -> frozenset[str]:
    return frozenset().union(*(_keys(w) for w in _content_words(sentence)))


def _stem_set(text: str) -> frozenset[str]:
    return frozenset(_stems(w)[0] for w in _content_words(text)) | frozenset(
        _stems(w)[1] for w in _content_words(text)
    )


# --------------------------------------------------------------------------- knowledge


_NUMBER = r"\d{1,3}(?:[ \u00a0\u202f.,]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?"
_CURRENCY = r"€|\$|£|eur\b|euros?\b|usd\b|dollars?\b|gbp\b|pounds?\b"
_MONEY = re.compile(
    rf"(?:(?:{_CURRENCY})\s?(?P<a>{_NUMBER})\s?(?P<ka>k\b)?)|(?:(?P<b>{_NUMBER})\s?(?P<kb>k)?\s?(?:{_CURRENCY}))",
    re.IGNORECASE,
)
_PERCENT = re.compile(
    rf"(?P<n>{_NUMBER})\s?(?:%|percent\b|per cent\b|pour ?cent\b|pourcent\b)", re.IGNORECASE
)
_PER_PERIOD = re.compile(
    rf"(?P<n>{_NUMBER})\s?(?:/\s?|(?:per|a|an|par)\s)(?:month|mois|year|an|année|week|semaine)\b",
    re.IGNORECASE,
)
_BARE = re.compile(rf"(?<![\w.,])(?P<n>{_NUMBER})(?![\w])")
_CLAIM_CONTEXT = frozenset({"c:price", "c:savings", "c:payback", "c:discount", "c:figure", "c:guarantee"})

#: Promise words (folded lower case, matched as whole words or stems).
_PROMISE_WORDS = _words(
    "guarantee guaranteed guarantees guaranteeing promise promised promises free gratis discount discounts "
    "rebate risk-free garanti garantie garanties garantis garantissons garantir gratuit gratuite gratuits "
    "gratuites offert offerte offerts offertes remise rabais ristourne promo promotion promis promettons"
)


@cache
def _promise_stems() -> frozenset[str]:
    return frozenset(s for w in _PROMISE_WORDS for s in _stems(w))


def _is_promise(word: str) -> bool:
    folded = _fold(word)
    if folded in {_fold(w) for w in _PROMISE_WORDS}:
        return True
    en, fr = _stems(word)
    return (en in _promise_stems() and len(en) > 3) or (fr in _promise_stems() and len(fr) > 3)


def _to_number(raw: str, k: str | None = None) -> float | None:
    """``"8 000"``, ``"8,000"``, ``"8.000"`` -> 8000; ``"2,5"`` -> 2.5; ``k`` multiplies by 1000."""
    text = re.sub(r"[ \u00a0\u202f]", "", raw)
    if "," in text and "." in text:
        decimal = "," if text.rfind(",") > text.rfind(".") else "."
        text = text.replace("." if decimal == "," else ",", "").replace(decimal, ".")
    elif "," in text or "." in text:
        sep = "," if "," in text else "."
        parts = text.split(sep)
        if len(parts) > 2 or (len(parts[-1]) == 3 and parts[0] != "0"):
            text = "".join(parts)
        else:
            text = ".".join(parts)
    try:
        value = float(text)
    except ValueError:
        return None
    return value * 1000 if k else value


@dataclass(frozen=True, slots=True)
class _Figures:
    money: frozenset[float]
    percent: frozenset[float]
    any: frozenset[float]


def _figures(text: str) -> _Figures:
    money = set()
    for m in _MONEY.finditer(text):
        value = _to_number(m.group("a") or m.group("b"), m.group("ka") or m.group("kb"))
        if value is not None:
            money.add(value)
    for m in _PER_PERIOD.finditer(text):
        value = _to_number(m.group("n"))
        if value is not None:
            money.add(value)
    percent = {v for m in _PERCENT.finditer(text) if (v := _to_number(m.group("n"))) is not None}
    every = {v for m in _BARE.finditer(text) if (v := _to_number(m.group("n"))) is not None}
    return _Figures(frozenset(money), frozenset(percent), frozenset(every | money | percent))


@dataclass(frozen=True, slots=True)
class _Knowledge:
    """The knowledge texts, pre-processed once per distinct list."""

    sentences: tuple[frozenset[str], ...]  # stems of each KB sentence
    figures: _Figures
    folded: str  # every text, folded, for links


@lru_cache(maxsize=64)
def _knowledge(texts: tuple[str, ...]) -> _Knowledge:
    sentences = tuple(_stem_set(s) for text in texts for s in _sentences(text))
    return _Knowledge(sentences=sentences, figures=_figures("\n".join(texts)), folded=_fold(" ".join(texts)))


# --------------------------------------------------------------------------- checks


def _grounded(sentence: str, kb: _Knowledge) -> bool:
    words = _content_words(sentence)
    if not words:
        return True
    en = [_stems(w)[0] for w in words]
    fr = [_stems(w)[1] for w in words]
    for kb_stems in kb.sentences:
        hits = sum(1 for e, f in zip(en, fr, strict=True) if e in kb_stems or f in kb_stems)
        if hits / len(words) >= GROUNDED_SHARE:
            return True
    return False


def _topic_alternatives(topic: str) -> list[list[frozenset[str]]]:
    parts = re.split(r"\bor\b|\bou\b|[,;/]", topic, flags=re.IGNORECASE)
    return [[_term(w) for w in words] for part in parts if (words := _content_words(part))]


def _check_no_go(text: str, ctx: GuardrailContext, kb: _Knowledge) -> list[str]:
    alternatives = [(topic, _topic_alternatives(topic)) for topic in ctx.no_go_topics if topic.strip()]
    if not alternatives:
        return []
    reasons: list[str] = []
    for sentence in _sentences(text):
        keys = _sentence_keys(sentence)
        for topic, alts in alternatives:
            if any(all(term & keys for term in alt) for alt in alts) and not _grounded(sentence, kb):
                reason = f"{NO_GO_TOPIC}: the reply touches the no-go topic {topic!r}"
                if reason not in reasons:
                    reasons.append(reason)
    return reasons


def _check_claims(text: str, ctx: GuardrailContext, kb: _Knowledge) -> list[str]:
    found: list[str] = []
    lead = _figures(ctx.lead_text) if ctx.lead_text else _Figures(frozenset(), frozenset(), frozenset())
    # The lead's plain numbers (a roof area, a number of panels) may be echoed, never their amounts or
    # percentages: a lead must not be able to make the bot confirm a price they typed.
    allowed_any = kb.figures.any | (lead.any - lead.money - lead.percent)
    for sentence in _sentences(text):
        reply = _figures(sentence)
        for value in sorted(reply.money - kb.figures.money):
            found.append(f"amount {value:g}")
        for value in sorted(reply.percent - kb.figures.percent):
            found.append(f"percentage {value:g}%")
        if _sentence_keys(sentence) & _CLAIM_CONTEXT:
            for value in sorted(reply.any - reply.money - reply.percent - allowed_any):
                found.append(f"figure {value:g}")
        words = [w.lower() for w in _WORD.findall(sentence.replace("\u2019", "'"))]
        for i, word in enumerate(words):
            if _is_promise(word) and not _promise_supported(words, i, kb):
                found.append(f"promise {word!r}")
    if not found:
        return []
    unique = list(dict.fromkeys(found))
    return [f"{UNSUPPORTED_CLAIM}: not in the knowledge base: {', '.join(unique)}"]


def _promise_supported(words: list[str], index: int, kb: _Knowledge) -> bool:
    stems = set(_stems(words[index]))
    window = [
        w
        for w in words[max(0, index - 3) : index] + words[index + 1 : index + 4]
        if len(w) > 1 and _fold(w) not in _STOP and not _is_promise(w)
    ]
    for kb_stems in kb.sentences:
        if not stems & kb_stems:
            continue
        if not window:
            return True
        hits = sum(1 for w in window if set(_stems(w)) & kb_stems)
        if hits * 2 >= len(window):
            return True
    return False


def _check_length(text: str, ctx: GuardrailContext) -> list[str]:
    if ctx.channel == "sms":
        segments = sms_segments(text)
        if segments > ctx.max_sms_segments:
            return [f"{TOO_LONG}: {segments} SMS segments, at most {ctx.max_sms_segments}"]
        return []
    limit = max_reply_chars(ctx.channel)
    if len(text) > limit:
        return [f"{TOO_LONG}: {len(text)} characters, at most {limit} on {ctx.channel}"]
    return []


def _check_language(text: str, ctx: GuardrailContext) -> list[str]:
    wanted = (ctx.language or "").lower()
    if not wanted:
        return []
    try:
        detected = detect_language(text, supported=tuple(dict.fromkeys((wanted, "en", "fr"))))
    except ValueError:
        return []  # a language py3langid does not know: not checked
    if detected is not None and detected != wanted:
        return [f"{WRONG_LANGUAGE}: the reply is in {detected!r}, the lead writes {wanted!r}"]
    return []


def _compact(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", _fold(text))


def _spaced(text: str) -> str:
    return " ".join(re.findall(r"[0-9a-z]+", _fold(text)))


_LEAK_PATTERNS = [
    re.compile(p)
    for p in (
        r"\bas an? (?:ai|artificial intelligence|language model|large language model|llm)\b",
        r"\b(?:i am|i'm|im) (?:an? )?(?:ai|artificial intelligence|large language model|language model|llm|"
        r"chatbot|bot created by)\b",
        r"\b(?:large )?language model\b",
        r"\bsystem (?:prompt|message|instructions?)\b",
        r"\bmy (?:initial |original |previous |hidden |secret )?(?:instructions|prompt|guidelines)\b",
        r"\byour (?:system )?prompt\b",
        r"\bi (?:was|have been|am|'m) (?:instructed|programmed|told) to\b",
        r"\bignore (?:all |any |the |your )*(?:previous|prior|above|earlier)\b",
        r"\b(?:developer|dev|god|dan|jailbreak|jailbroken) mode\b",
        r"\bjailbr(?:eak|oken)\b",
        r"\b(?:chatgpt|openai|gpt-?[345][a-z0-9.-]*|anthropic|claude|gemini|llama)\b",
        r"\bje suis (?:un |une )?(?:ia|intelligence artificielle|modele de langage|grand modele|llm|"
        r"robot conversationnel)\b",
        r"\ben tant qu'?(?:e )?(?:ia|intelligence artificielle|modele|assistant virtuel ia)\b",
        r"\bmodele de langage\b",
        r"\b(?:prompt|invite|message|consignes?|instructions?) (?:systeme|system)\b",
        r"\b(?:mes|tes) (?:instructions|consignes)\b",
        r"\b(?:instructions|consignes) (?:initiales|d'origine|cachees|secretes|precedentes)\b",
        r"\bmon (?:prompt|invite)\b",
        r"\bon m'a (?:demande|programme|ordonne) de\b",
        r"\bignore[rz]? (?:toutes |les |tes |vos )*(?:instructions|consignes) "
        r"(?:precedentes|ci-dessus|anterieures)\b",
        r"\bmode (?:developpeur|dan|sans restriction|sans filtre)\b",
        r"(?m)^\s*(?:#+\s*)?(?:system|systeme|developer|assistant)\s*:",
        r"</?\s*(?:system|instructions?|prompt)\s*>|\[(?:system|inst)\]",
    )
]


_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def _decoded_variants(text: str) -> list[str]:
    """Text hidden in the reply: base64 runs decoded as UTF-8, and the reply reversed."""
    out = [text[::-1]]
    for match in _BASE64.finditer(text):
        chunk = match.group(0)
        try:
            decoded = base64.b64decode(chunk + "=" * (-len(chunk) % 4), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if decoded.isprintable() or "\n" in decoded:
            out.append(decoded)
    return out


def _check_leak(text: str, ctx: GuardrailContext) -> list[str]:
    reasons: list[str] = []
    variants = [text, *_decoded_variants(text)]
    markers = [m for m in ctx.secret_markers if len(_compact(m)) >= 8]
    for variant in variants:
        spaced, compact = _spaced(variant), _compact(variant)
        for marker in markers:
            if _spaced(marker) in spaced or (len(_compact(marker)) >= 12 and _compact(marker) in compact):
                reasons.append(f"{PROMPT_LEAK}: the reply quotes the system prompt")
                break
        else:
            folded = _fold(variant)
            if any(p.search(folded) for p in _LEAK_PATTERNS):
                reasons.append(f"{PROMPT_LEAK}: the reply talks about the model, its prompt or instructions")
        if reasons:
            break
    return reasons


_IDENTITY = re.compile(
    r"\b(?i:i am|i'm|my name is|we are|we're|you are (?:now )?(?:talking|chatting|speaking) (?:to|with)|"
    r"speaking for|on behalf of|here at|je suis|je m'appelle|nous sommes|"
    r"vous (?:parlez|discutez) (?:a|à|avec)|"
    r"au nom de|de la part de)\s+(?i:(?:the|an?|le|la|l'|un|une)\s+)?"
    r"(?P<name>[A-Z][\w&'.-]*(?:\s+[A-Z][\w&'.-]*){0,3})"
)
#: Personas a jailbroken model likes to adopt.
_AI_PERSONAS = _words("dan chatgpt gpt openai claude bard gemini llama copilot aim stan")


def _competitor_names(ctx: GuardrailContext) -> list[str]:
    """Competitor entries short enough to be names (a descriptive sentence is not matched)."""
    return [c.strip() for c in ctx.competitors if c.strip() and len(c.split()) <= 4]


def _check_persona(text: str, ctx: GuardrailContext) -> list[str]:
    reasons: list[str] = []
    folded_text = f" {_spaced(text)} "
    for name in _competitor_names(ctx):
        if f" {_spaced(name)} " in folded_text:
            reasons.append(f"{PERSONA}: the reply names the competitor {name!r}")
    persona = _spaced(ctx.persona_name) if ctx.persona_name.strip() else ""
    for sentence in _sentences(text.replace("\u2019", "'")):
        for match in _IDENTITY.finditer(sentence):
            name = _spaced(match.group("name"))
            if not name:
                continue
            own = bool(persona) and (persona in name or persona in _spaced(sentence))
            if name.split(" ")[0] in _AI_PERSONAS or not own:
                reasons.append(f"{PERSONA}: the reply presents itself as {match.group('name')!r}")
    return list(dict.fromkeys(reasons))


_HTML = re.compile(r"<\s*/?\s*[a-zA-Z!][^>]*>")
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_URL = re.compile(r"(?:https?://|www\.|javascript:|data:)[^\s)\]>\"']+", re.IGNORECASE)


def _check_content(text: str, kb: _Knowledge) -> list[str]:
    problems = []
    if _HTML.search(text):
        problems.append("HTML markup")
    if _MD_IMAGE.search(text):
        problems.append("a markdown image")
    links = [u.rstrip(".,;:!?") for u in _URL.findall(text)]
    if any(_fold(u) not in kb.folded for u in links):
        problems.append("a link that is not in the knowledge base")
    return [f"{UNSAFE_CONTENT}: {', '.join(problems)}"] if problems else []


def check_reply(text: str, ctx: GuardrailContext) -> Verdict:
    """Check a generated reply before it is sent; see the module docstring for each check.

    Pure and deterministic; never raises on odd input (an empty reply passes every check but the
    caller should not send it).
    """
    kb = _knowledge(tuple(ctx.knowledge_texts))
    reasons = [
        *_check_no_go(text, ctx, kb),
        *_check_claims(text, ctx, kb),
        *_check_length(text, ctx),
        *_check_language(text, ctx),
        *_check_leak(text, ctx),
        *_check_persona(text, ctx),
        *_check_content(text, kb),
    ]
    return Verdict(ok=not reasons, reasons=reasons)


_FALLBACKS = {
    "en": "Thank you for your message! A member of the {team} will get back to you shortly.",
    "fr": "Merci pour votre message ! Un membre de {team} vous répondra très prochainement.",
}
_TEAMS = {"en": ("{company} team", "our team"), "fr": ("l'équipe {company}", "notre équipe")}


def safe_fallback(language: str, *, company: str) -> str:
    """A polite, safe template (thanks + a human will follow up) in ``language`` (fr, else en).

    ``company`` (aiConfig ``companyName``) is reduced to letters, digits, spaces and ``&'.-``, at most
    60 characters; empty gives "our team". The text passes :func:`check_reply` on every channel.
    """
    lang = "fr" if (language or "").lower().startswith("fr") else "en"
    name = re.sub(r"[^\w &'.-]+", " ", company or "")
    name = re.sub(r"\s+", " ", name).strip()[:60].strip()
    named, anonymous = _TEAMS[lang]
    team = named.format(company=name) if name else anonymous
    return _FALLBACKS[lang].format(team=team)
