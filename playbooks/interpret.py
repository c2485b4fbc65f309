"""The offline interpreter: reads a lead's message with rules, no model and no network.

It implements the ``Interpreter`` port of :mod:`playbooks.runtime` and reads the whole message
against the whole playbook:

1. **Intents first** (:func:`detect_intent`): an automatic reply (out of office), an opt-out in
   free words ("please stop emailing me", "ne m'écrivez plus"), "not interested", a request for a
   person, a question, small talk; else an answer. Opt-outs, "not interested" and automatic
   replies fill no slot.
2. **Questions are never answers**: the message is cut into sentences and a sentence that asks
   something (:func:`looks_like_question`) gives no slot value; the question goes to the optional
   knowledge-base ``answer`` callable.
3. **Every open slot the message answers**: the asked slot first (``AskContext``), then the other
   unfilled questions (``AskContext.others``): e-mail addresses, phone numbers, dates and times,
   numbers whose unit fits the question (``180 € a month`` for a bill, ``95 m²`` for a surface),
   options named in full, yes/no answers that repeat the question's words ("we own it"), and
   postcodes. Each value comes with the words that gave it, and words serve one slot only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from kernel.clock import Clock, SystemClock
from kernel.threads import SerialThread
from playbooks.choices import match_choice
from playbooks.language import follow_language
from playbooks.runtime import AskContext, ConversationState, Interpretation
from playbooks.slots import (
    SlotValue,
    asks_about_owning,
    asks_about_relative,
    find_numbers,
    fold,
    lead_regions,
    looks_like_email,
    parse_slot,
    relative_owner,
)

__all__ = [
    "BOT_DISCLOSURE",
    "OfferQuestion",
    "RuleInterpreter",
    "asked_offer",
    "asks_call_back",
    "asks_what_about",
    "detect_intent",
    "expand_shorthand",
    "find_not_offered",
    "find_remarks",
    "looks_like_question",
    "mentions_moment",
    "offer_question",
    "read_message",
]

MAX_CHARS = 2000
"""Only the first characters of a message are read (a pasted essay is cut, never looped over)."""

_READER: SerialThread | None = None
"""The one thread where :meth:`RuleInterpreter.interpret` reads texts, off the event loop (started
on first use, and again in a forked child, where the parent's thread does not exist)."""
_READER_PID = 0


def _reader() -> SerialThread:
    """:data:`_READER`, started when this process has none. A :class:`SerialThread` hand-off costs
    the event loop about half a ``run_in_executor`` on a ``ThreadPoolExecutor`` (its docstring)."""
    global _READER, _READER_PID
    if _READER is None or os.getpid() != _READER_PID:
        _READER, _READER_PID = SerialThread("leadwarm-reader"), os.getpid()
    return _READER


def _phrases(*items: str) -> re.Pattern[str]:
    body = "|".join(items)
    return re.compile(r"(?<![\w])(?:" + body + r")(?![\w])")


_AUTO_REPLY = _phrases(
    r"out of (?:the )?office",
    r"ooo",
    r"automatic reply",
    r"auto-?reply",
    r"autoreply",
    r"automated (?:reply|response|message)",
    r"reponse automatique",
    r"message automatique",
    r"absente? du bureau",
    r"je suis (?:actuellement )?absente?",
    r"actuellement absente?",
    r"en conges? jusqu",
    r"i am (?:currently )?(?:away|out|on (?:annual )?leave)",
    r"i'm (?:currently )?(?:away|out of office|on (?:annual )?leave)",
    r"on (?:annual |parental |sick )?leave until",
    r"will be back (?:on|in the office)",
    r"back in the office",
    r"de retour (?:le|au bureau|lundi|mardi|mercredi|jeudi|vendredi)",
    r"limited access to (?:my )?e-?mail",
    r"acces limite a (?:mes|ma) (?:e-?mails?|messagerie)",
    r"do not reply to this (?:e-?mail|message)",
    r"ne pas repondre a ce message",
    r"this mailbox is not monitored",
)
_OPT_OUT = _phrases(
    r"unsubscribe",
    r"unsub",
    r"opt[ -]?out",
    r"stop (?:e-?mailing|emailing|texting|messaging|contacting|calling|sending|writing|spamming|bothering)",
    r"(?:please )?stop (?:all )?(?:the )?(?:e-?mails?|messages?|texts?|sms|calls?)",
    r"remove me",
    r"take me off",
    r"(?:do not|don't|dont|never) (?:contact|e-?mail|email|text|message|call|write to|sms) me",
    r"no more (?:e-?mails?|messages?|texts?|calls?|sms)",
    r"delete my (?:data|details|number|e-?mail|information|info)",
    r"leave me alone",
    r"^stop\W*$",
    r"^arret\W*$",
    r"ne m'?(?:ecrivez|envoyez|contactez|appelez|relancez|sollicitez) plus",
    r"ne me (?:contactez|relancez|sollicitez|recontactez|rappelez|harcelez) plus",
    r"ne plus (?:me )?(?:contacter|recevoir|etre contacte|m'ecrire|me relancer)",
    r"plus jamais (?:me )?(?:contacter|m'ecrire|m'appeler)",
    r"arretez de m'?\w+",
    r"arretez (?:les|vos|de nous) (?:messages|mails|e-?mails|sms|appels|relances|envoyer)",
    r"arreter de m'?(?:ecrire|envoyer|contacter|appeler|relancer)",
    r"desinscri\w*",
    r"desabonn\w*",
    r"supprimez (?:mes|mon|toutes mes) (?:donnees|coordonnees|numero|adresse|informations|infos)",
    r"retirez[- ]moi",
    r"laissez[- ]moi tranquille",
    r"cessez de",
    r"stop aux (?:messages|mails|sms|appels)",
    r"stop les (?:messages|mails|sms|appels|relances)",
)
_NOT_INTERESTED = _phrases(
    r"not interested",
    r"no longer interested",
    r"not really interested",
    r"(?:i'?m|i am) not interested",
    r"not for me",
    r"no longer need",
    r"don'?t need (?:it|this|that|them|your)",
    r"already (?:found|signed|have|got|chose|chosen|went with|bought|installed)",
    r"changed my mind",
    r"(?:i'?ll|i will|we'?ll|we will) pass",
    r"not anymore",
    r"never ?mind",
    r"forget (?:it|about it)",
    r"(?:we'?ve|i'?ve|we have|i have) decided (?:not|against)",
    r"not going ahead",
    r"project (?:is )?(?:cancelled|canceled|on hold)",
    r"pas interesse(?:e|s|es)?",
    r"plus interesse(?:e|s|es)?",
    r"ne m'?interesse (?:pas|plus)",
    r"ca ne m'?interesse",
    r"ca m'?interesse pas",
    r"pas pour moi",
    r"plus besoin",
    r"deja (?:trouve|signe|choisi|equipe|installe|un devis signe)",
    r"j'?ai change d'?avis",
    r"on a change d'?avis",
    r"(?:on|nous) (?:abandonn|laiss)\w* (?:le|ce) projet",
    r"je passe mon tour",
    r"finalement non",
    r"laissez tomber",
    r"laisse tomber",
    r"on oublie",
    r"abandonne(?:r)? le projet",
)
_NOT_INTERESTED_WEAK = _phrases(
    r"no thanks?",
    r"no thank you",
    r"non merci",
    r"nan merci",
    r"no ty",
    r"pas besoin",
    r"no need",
    r"not needed",
    r"pas la peine",
    r"pas necessaire",
)
_CALL_BACK = (
    r"(?:can|could|would|will) (?:you|someone|somebody|anyone|one of you|an adviser|an advisor)(?: please)? "
    r"(?:call|ring|phone) me(?: back)?"
    r"|(?:please )?(?:call|ring|phone) me back|give me a (?:call|ring)(?: back)?"
    r"|(?:i'?d like|i would like|i want|i'?d prefer|can i (?:have|get)|could i (?:have|get)) "
    r"(?:a call ?back|a call|a phone call|to be called(?: back)?)"
    r"|(?:vous|tu) (?:pouvez|pourriez|pourrais|peux|voulez bien|voudriez bien) me "
    r"(?:rappeler|appeler|telephoner)"
    r"|(?:pouvez|pourriez)[- ]vous me (?:rappeler|appeler|telephoner)"
    r"|(?:est-ce qu'on|est ce qu'on|est-ce que quelqu'un|on|quelqu'un) (?:peut|pourrait) me "
    r"(?:rappeler|appeler|telephoner)"
    r"|(?:rappelez|appelez)[- ]moi"
    r"|(?:je voudrais|j'?aimerais|je souhaite|je souhaiterais|je veux|je prefere) "
    r"(?:etre rappelee?|etre appelee?|qu'on me rappelle|qu'on m'appelle|un appel|que vous me rappeliez|"
    r"que vous m'appeliez)"
)
"""A request to be called back, as a question or not ("vous pouvez me rappeler ?", "can someone
call me back?"): a request for a person; with a moment ("rappelez-moi demain à 10h") a time given
for the call instead (see :func:`detect_intent`)."""
_HUMAN = _phrases(
    _CALL_BACK,
    r"human",
    r"real person",
    r"actual person",
    r"(?:a|an) (?:person|agent|advisor|adviser|representative|rep|operator|salesperson|sales person|manager)",
    r"someone real",
    r"(?:speak|talk|chat) (?:to|with) (?:someone|somebody|a person|an? \w+|your team|the team|sales|"
    r"a human|an expert|a specialist)",
    r"(?:can|could) (?:someone|somebody|you) (?:call|ring|phone) me",
    r"(?:have|get) (?:someone|somebody) (?:to )?call me",
    r"(?:are you|is this|am i talking to|am i speaking to) (?:a |an )?real",
    r"representative",
    r"operator",
    r"un humain",
    r"une (?:vraie )?personne",
    r"un vrai (?:conseiller|humain|interlocuteur)",
    r"un (?:conseiller|commercial|technicien|agent|expert|interlocuteur|responsable)",
    r"parler (?:a|avec) (?:quelqu'?un|un|une|votre|vos|le|la|l'|des|vous)",
    r"parle (?:a|avec) (?:quelqu'?un|un humain|un conseiller|une personne)",
    r"(?:echanger|discuter) (?:avec|de vive voix)",
    r"quelqu'?un (?:peut|pourrait|qui|de chez vous|de votre equipe)\w*(?: \w+){0,3} (?:appeler|rappeler|"
    r"contacter|joindre|parler)",
    r"quelqu'?un (?:peut|pourrait) m'?(?:appeler|rappeler|contacter|joindre)",
    r"je prefere (?:parler|un appel|etre appele|qu'?on m'?appelle)",
    r"i'?d rather (?:talk|speak|have a call)",
    r"i prefer (?:to talk|to speak|a call)",
    r"appelez[- ]moi plutot",
    r"rappelez[- ]moi plutot",
    r"call me instead",
    r"just call me",
    r"de vive voix",
    r"(?:parler|discuter|echanger)(?: \w+){0,3} avec (?:quelqu'?un|une personne|un conseiller|un humain)",
    r"je prefere (?:en )?parler",
    r"(?:speak|talk|discuss|chat|go over)\b(?: \w+){0,5} (?:with|to) (?:someone|somebody|a person|"
    r"a human|a real person|an? advis[eo]r)",
    r"(?:rather|prefer to) (?:speak|talk)(?: \w+){0,3} (?:to|with) (?:someone|a person|a human)",
)
_CALL_ME = re.compile(
    r"(?:(?:can|could) (?:someone|somebody|you) (?:call|ring|phone) me|(?:have|get) (?:someone|"
    r"somebody) (?:to )?call me"
    r"|quelqu'?un (?:peut|pourrait) m'?(?:appeler|rappeler|contacter|joindre)|just call me|call me instead|"
    + _CALL_BACK
    + r")"
)
_GREETING = re.compile(
    r"^(?:(?:hi|hello|hey|hiya|dear|good (?:morning|afternoon|evening)|bonjour|bonsoir|salut|coucou|re|"
    r"allo|hello there|"
    r"hi there|madame|monsieur|messieurs|ok|okay|oki|so|alors|bon|well|ah|oh|euh|hmm|bah|ben|merci|"
    r"thanks|thank you|"
    r"thx|super|great|parfait|perfect|cool|nickel|top)\b[\s,!.:;-]*)+"
)
_SMALL_TALK = re.compile(
    r"^(?:hi|hello|hey|hiya|bonjour|bonsoir|salut|coucou|good (?:morning|afternoon|evening|night)|"
    r"merci(?: beaucoup| bien)?|"
    r"thanks?(?: a lot| so much)?|thank you(?: very much| so much)?|thx|ty|ok(?:ay)?|d'?accord|super|"
    r"great|cool|parfait|"
    r"perfect|nickel|top|bonne (?:journee|soiree|fin de journee)|have a (?:nice|good|great) (?:day|"
    r"evening|weekend)|"
    r"how are you(?: doing)?|how'?s it going|ca va|comment (?:ca va|allez[- ]vous)|vous allez bien|lol|"
    r"haha|mdr|"
    r"a bientot|see you|bye|au revoir|cordialement|regards|best|cheers|bien a vous|you too|vous aussi|"
    r"de meme|"
    r"no worries|de rien|you'?re welcome|je vous en prie|hello there|hi there|bonjour madame|"
    r"bonjour monsieur|"
    r"salutations|good|bien|tres bien|very good|nice|awesome|genial|ah ok|oh ok|ok merci|ok thanks)$"
)
_STRONG_QUESTION = re.compile(
    r"^(?:what|how|why|who|which|whose|combien|comment|pourquoi|quel|quelle|quels|quelles|qu'est|est-ce|"
    r"est ce|"
    r"c'est quoi|c'est combien|ca coute combien|ca fait combien|y a-t-il|y'a t'il|y a t il|ya t il|il y a|"
    r"il y a combien|"
    r"do you|does it|does your|did you|can you|could you|can i|could i|can we|will you|would you|"
    r"are you|is it|"
    r"is there|are there|is that|should i|should we|do i|do we|how's|what's|whats|pouvez|peut-on|peut on|"
    r"puis-je|puis je|avez-vous|avez vous|faites-vous|faites vous|proposez-vous|proposez vous|acceptez-vous|"
    r"acceptez vous|vous faites|vous proposez|vous acceptez|vous installez|vous intervenez|vous etes|"
    r"vous avez|"
    r"on peut|je peux|est-il|sont-ils|faut-il|faut il|dois-je|dois je|any idea|is this|are these|what about|"
    r"et pour|et si|and what|and how|que (?:faut|dois|couvre|comprend|veut)|qu'en est-il|how long|"
    r"how much|how many)(?!\w)"
)
_QUESTION_ANYWHERE = _phrases(
    r"how much",
    r"how long",
    r"how many",
    r"combien",
    r"i'?d like to know",
    r"i would like to know",
    r"i was wondering",
    r"i wonder",
    r"je voudrais savoir",
    r"j'?aimerais savoir",
    r"je me demandais",
    r"je me demande",
    r"can you tell me",
    r"could you tell me",
    r"pouvez[- ]vous me dire",
    r"pourriez[- ]vous me dire",
    r"savez[- ]vous",
    r"do you know",
    r"any idea (?:how|what|when|if)",
    r"c'est quoi",
    r"what is the (?:price|cost)",
    r"quel (?:est le )?(?:prix|tarif|cout)",
    r"quels sont les (?:prix|tarifs|delais|aides)",
)
_WEAK_QUESTION = re.compile(
    r"^(?:when|where|quand|ou|que|qui|can|could|do|does|is|are|will|would|should|may)(?!\w)"
)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|(?<=\?)(?=\w)|\n+")
_CLAUSE = re.compile(
    r"\s*(?:,|;|\band\b|\bet\b|\bbut\b|\bmais\b|\balso\b|\baussi\b|\bplus\b|\bso\b|\bdonc\b|&|\+)\s*"
)
_POSTCODE_SLOT = re.compile(r"(?:post|zip|postal|cp\b|code_?p)")
_POSTCODES = [
    re.compile(
        r"(?<![\d+])(?<!\d )(?<!\d\.)\b(?:[0-8]\d|9[0-8]|2[ab])\s?\d{3}\b(?!\s?\d)(?!\s*(?:€|eur|euros?|"
        r"\$|£|m2|m²|k\b|kwh))",
        re.I,
    ),
    re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b", re.I),
]
_MONEY_Q = _phrases(
    r"€",
    r"euros?",
    r"\$",
    r"£",
    r"spend",
    r"spending",
    r"depens\w*",
    r"bill",
    r"bills",
    r"facture\w*",
    r"budget",
    r"price",
    r"prix",
    r"cost",
    r"cout\w*",
    r"montant",
    r"pay",
    r"payez",
    r"payer",
    r"paie",
    r"mensualite",
)
_AREA_Q = _phrases(r"m²", r"m2", r"surface", r"superficie", r"square", r"sq", r"metres? carres?", r"size")


_SMALL_TALK_WORDS = set(
    [
        "hi",
        "hello",
        "hey",
        "hiya",
        "bonjour",
        "bonsoir",
        "salut",
        "coucou",
        "good",
        "morning",
        "afternoon",
        "evening",
        "night",
        "merci",
        "beaucoup",
        "bien",
        "thanks",
        "thank",
        "you",
        "thx",
        "ty",
        "ok",
        "okay",
        "oki",
        "super",
        "great",
        "cool",
        "parfait",
        "perfect",
        "nickel",
        "top",
        "bonne",
        "journee",
        "soiree",
        "have",
        "a",
        "nice",
        "day",
        "weekend",
        "speak",
        "talk",
        "soon",
        "see",
        "bye",
        "au",
        "revoir",
        "a",
        "bientot",
        "cordialement",
        "regards",
        "best",
        "cheers",
        "vous",
        "aussi",
        "de",
        "meme",
        "lol",
        "haha",
        "mdr",
        "lovely",
        "wonderful",
        "awesome",
        "genial",
        "much",
        "so",
        "lot",
        "very",
        "tres",
        "rien",
        "welcome",
        "ah",
        "oh",
        "and",
        "et",
        "the",
        "to",
        "madame",
        "monsieur",
        "there",
        "all",
        "fine",
        "noted",
        "note",
        "c'est",
        "ca",
        "va",
        "well",
        "will",
        "later",
        "tout",
    ]
)


_SHORTHAND_FR = {
    "ds": "dans", "qqn": "quelqu'un", "qqun": "quelqu'un", "qq1": "quelqu'un", "jsuis": "je suis",
    "jsui": "je suis", "chui": "je suis", "chuis": "je suis", "jveux": "je veux", "jvx": "je veux",
    "jveu": "je veux", "kelkun": "quelqu'un", "kelqun": "quelqu'un", "quelqun": "quelqu'un",
    "qlqun": "quelqu'un", "jvoudrais": "je voudrais", "jaimerais": "j'aimerais", "jai": "j'ai", "g": "j'ai",
    "jpense": "je pense", "jcrois": "je crois", "jpeux": "je peux", "jsais": "je sais", "jsai": "je sais",
    "chais": "je sais", "jsp": "je ne sais pas", "jsé": "je sais",
    "wi": "oui", "ui": "oui", "ouai": "ouais", "wai": "ouais", "ouep": "ouais", "oué": "ouais", "nn": "non",
    "pr": "pour", "tt": "tout", "bcp": "beaucoup", "c": "c'est", "cest": "c'est", "kesako": "c'est quoi",
    "dac": "d'accord", "dacc": "d'accord", "stp": "s'il te plaît", "svp": "s'il vous plaît",
    "msn": "maison", "mson": "maison", "appt": "appartement", "apart": "appartement",
    "pk": "pourquoi", "pq": "pourquoi", "pkoi": "pourquoi", "pourkoi": "pourquoi",
    "cb": "combien", "cmb": "combien", "cmt": "comment", "cmnt": "comment", "koi": "quoi", "ki": "qui",
    "ke": "que", "qd": "quand", "kan": "quand", "qqch": "quelque chose", "qlq": "quelques",
    "pcq": "parce que", "pck": "parce que", "psk": "parce que", "paske": "parce que",
    "tkt": "sans souci", "dsl": "désolé", "mtn": "maintenant", "mnt": "maintenant",
    "ac": "avec", "avc": "avec", "vrmt": "vraiment", "vraimt": "vraiment", "trkl": "tranquille",
    "ptet": "peut-être", "ptetre": "peut-être", "tjrs": "toujours", "tjs": "toujours",
    "auj": "aujourd'hui", "ajd": "aujourd'hui", "dem1": "demain", "2m1": "demain", "rdv": "rendez-vous",
    "slt": "salut", "bjr": "bonjour", "bsr": "bonsoir", "mrc": "merci", "mr6": "merci", "vs": "vous",
    "dc": "donc", "tps": "temps", "jms": "jamais", "env": "environ", "bi1": "bien",
}  # fmt: skip
"""French SMS spellings (whole words), read as the words they stand for."""
_SHORTHAND_EN = {
    "u": "you", "r": "are", "ur": "your", "pls": "please", "plz": "please", "b4": "before",
    "tmrw": "tomorrow", "tmr": "tomorrow", "2moro": "tomorrow", "2morrow": "tomorrow", "2day": "today",
    "yh": "yeah", "im": "i'm", "wanna": "want to", "gonna": "going to", "gotta": "got to",
    "lemme": "let me", "gimme": "give me", "abt": "about", "dunno": "don't know", "idk": "i don't know",
    "thx": "thanks", "thnx": "thanks", "thanx": "thanks", "ty": "thank you", "cuz": "because",
    "coz": "because", "bc": "because", "bcoz": "because", "ppl": "people", "sth": "something",
    "smth": "something", "some1": "someone", "any1": "anyone", "nxt": "next", "wk": "week",
    "wkend": "weekend", "tues": "tuesday", "thurs": "thursday", "thur": "thursday", "thru": "through",
    "arvo": "afternoon", "tlk": "talk", "spk": "speak", "sum1": "someone", "sumone": "someone",
    "somone": "someone", "smone": "someone", "sb": "somebody", "pers": "person",
    # common typos of period words
    "monhts": "months", "mnths": "months", "mths": "months", "mounths": "months", "wks": "weeks",
}  # fmt: skip
"""English SMS spellings (whole words) and common typos of period words."""
_SHORTHAND = {**_SHORTHAND_EN, **_SHORTHAND_FR}
"""Both tables, for a message whose language is not known (French wins where both spell a word)."""
_SHORTHAND_BY_LANGUAGE = {"fr": _SHORTHAND_FR, "en": _SHORTHAND_EN}
_LONGEST_SHORTHAND = max(map(len, _SHORTHAND))
_CALL_WORDS = frozenset({"call", "talk", "speak", "chat", "ring"})
_EDGE_PUNCTUATION = '.,;:!?()[]"«»“”…'
_SPACES = re.compile(r"(\s+)")
_YA = re.compile(
    r"(?<![\w'])(?:ya|y'a|y a)(?= (?:des|un|une|du|de|pas|quoi|combien|t'il|til)\b)", re.IGNORECASE
)


def expand_shorthand(text: str, *, language: str | None = None) -> str:
    """``text`` (its first :data:`MAX_CHARS` characters) with SMS shorthands written out: "ds 2
    mois" -> "dans 2 mois", "une msn" -> "une maison", "jveux parler a qqn" -> "je veux parler a
    quelqu'un", "can u get someone 2 call me" -> "can you get someone to call me", "ya des aides ?"
    -> "il y a des aides ?". ``language`` (ISO 639-1): ``fr`` or ``en`` reads only that language's
    table ("ac" is "avec" in French, air conditioning in English); any other or ``None`` reads both.

    Token by token: the text is split at white space, each word (less the punctuation around it) is
    looked up in a table, so the work is one pass over at most :data:`MAX_CHARS` characters; words
    holding ``@``, ``.``, ``'`` or ``-`` inside (addresses, "U.K.", "c'est") are left alone. Never
    raises."""
    text = _YA.sub("il y a", text[:MAX_CHARS])
    table = _SHORTHAND_BY_LANGUAGE.get((language or "").split("-")[0].lower(), _SHORTHAND)
    parts = _SPACES.split(text)
    changed = False
    for i in range(0, len(parts), 2):
        chunk = parts[i]
        if len(chunk) > _LONGEST_SHORTHAND + 4:
            continue  # longer than any shorthand with its punctuation
        core = chunk.strip(_EDGE_PUNCTUATION)
        if not core or len(core) > _LONGEST_SHORTHAND or any(c in core for c in "@.'-’"):
            continue
        word = core.lower()
        previous = parts[i - 2] if i >= 2 else ""
        if word == "pm" and not previous[-1:].isdigit() and table is not _SHORTHAND_FR:
            expansion: str | None = "afternoon"  # "tmrw pm"; "3 pm" is a time
        elif word == "2":
            following = parts[i + 2].strip(_EDGE_PUNCTUATION).lower() if i + 2 < len(parts) else ""
            expansion = "to" if following in _CALL_WORDS and table is not _SHORTHAND_FR else None
        else:
            expansion = table.get(word)
        if expansion is not None:
            at = chunk.index(core)
            parts[i] = chunk[:at] + expansion + chunk[at + len(core) :]
            changed = True
    return "".join(parts) if changed else text


_QUESTION_AFTER_COMMA = re.compile(
    r",\s*(?:(?:and|but|also|so|et|mais|aussi|alors)\s+)?"
    r"(?=(?:how|what|whats|what's|when|where|why|which|do you|does it|can you|could you|is there|"
    r"are there|can i|could i|can we|could we|do i|do we|is it possible|"
    r"combien|c'est combien|c'est quoi|est-ce|pourquoi|quand|quel|quelle|quels|quelles|pouvez|"
    r"avez-vous|vous faites|il y a|y a-t-il|est-il possible|puis-je|peut-on|ai-je droit)(?![\w]))",
    re.IGNORECASE,
)
"""A question after a comma, its "and" / "et" left with the comma ("budget maybe 8k, and can i get
a grant": the grant is asked, the budget is an answer)."""
_QUESTION_AFTER_AND = re.compile(
    r"\s+(?:and|but|et|mais)\s+(?=(?:can i|could i|can we|could we|can you|could you|do you|is there|"
    r"are there|how much|how long|what about|est-ce que|pouvez-vous|avez-vous|y a-t-il|est-il possible|"
    r"puis-je|peut-on|c'est combien|ca coute combien|ça coûte combien|ca fait combien|combien ca coute|"
    r"combien ça coûte|c'est quoi)(?![\w]))",
    re.IGNORECASE,
)
"""A question joined by "and" / "et" with no comma ("about 120 and can i get a grant")."""

#: In a sentence that ends with a question mark, a clause after a comma that speaks to the business
#: ("je cherche à isoler les murs, vs intervenez où ?", "we own it, do u do batteries?") is the
#: question, and what comes before it an answer of its own.
_ADDRESSED_AFTER_COMMA = re.compile(
    r",\s*(?=(?:vous|vs|ya|y a|y'a|tu|do u|can u|r u|are you|is it|will you|would you|have you|"
    r"hows|how's|whats|wat|wot)(?![\w']))",
    re.IGNORECASE,
)


def _split_questions(part: str) -> list[str]:
    """``part`` cut before each question clause that follows a comma or "and"
    (:data:`_QUESTION_AFTER_COMMA`, :data:`_QUESTION_AFTER_AND`, and :data:`_ADDRESSED_AFTER_COMMA`
    when ``part`` has a question mark)."""
    pieces = [cut for piece in _QUESTION_AFTER_COMMA.split(part) for cut in _QUESTION_AFTER_AND.split(piece)]
    if "?" not in part:
        return pieces
    return [cut for piece in pieces for cut in _ADDRESSED_AFTER_COMMA.split(piece)]


def _sentences(text: str) -> list[str]:
    """The sentences of ``text``; a question after a comma is a sentence of its own ("about 100 a
    month, how much are panels?"), unless only a greeting comes before it ("Bonjour, est-ce long ?")."""
    out: list[str] = []
    for part in _SENTENCE_END.split(text):
        if not part:
            continue
        pieces = _split_questions(part)
        merged: list[str] = []
        for piece in pieces:
            if merged and not _strip_greeting(fold(merged[-1])).strip(" ,.!"):
                merged[-1] = f"{merged[-1]}, {piece}"
            else:
                merged.append(piece)
        out.extend(s.strip() for s in merged if s and s.strip(" .!?;\n"))
    return out


_LEADING_ANSWER = re.compile(
    r"^\W*(?:oui|non|yes|no|yeah|yep|nope|ouais|bien sur|of course|sure)\b\s*[,!.:;-]"
)


_ADDRESSED = re.compile(r"(?:vous|vs|tu) [a-z]")
"""A sentence whose subject is the business ("vous gérez...", "tu peux...")."""


_HEDGES = re.compile(
    r"(?<![\w'])(?:je ne sais pas|j'?sais pas|je sais pas|i don'?t know|not sure|pas sur|peut-?etre|"
    r"peut etre|maybe|perhaps|probably|environ|a peu pres|about|around|roughly|je pense|je crois|i think|"
    r"i guess)(?![\w'])"
)
"""Words of doubt around a short answer ("jsp, 90 m2 peut être ?"): not counted as its words."""


def _tentative(sentence: str, kind: str | None) -> bool:
    """A short answer said with a question mark ("maybe 120?", "jeudi 10h ?"): no question word,
    six words at most, and the question pending wants a number, a date or an option. A French
    question put to the business by intonation ("vous gérez les aides ?") is no answer."""
    if kind not in ("number", "datetime", "choice"):
        return False
    body = _strip_greeting(fold(sentence).strip())
    if _STRONG_QUESTION.match(body) or _QUESTION_ANYWHERE.search(body) or _WEAK_QUESTION.match(body):
        return False
    if _ADDRESSED.match(body):
        return False
    words = len(re.findall(r"\w+", _HEDGES.sub(" ", body)))
    return words <= 6 and bool(re.search(r"\d", body) or kind == "choice")


def _answer_sentences(text: str, kind: str | None = None) -> list[str]:
    """The sentences that do not ask anything; a question's leading "Oui," / "No," is kept."""
    out: list[str] = []
    for sentence in _sentences(text):
        if not _sentence_is_question(sentence) or _tentative(sentence, kind):
            out.append(sentence)
            continue
        lead = _LEADING_ANSWER.match(fold(sentence))
        if lead:
            out.append(sentence[: lead.end()])
    return out


def _strip_greeting(folded: str) -> str:
    return _GREETING.sub("", folded.strip()).strip()


def looks_like_question(text: str) -> bool:
    """Whether ``text`` asks something: a question mark, a question word or phrase first (what,
    how, combien, est-ce que, do you, vous faites...), or a question phrase anywhere (how much,
    je voudrais savoir...). A greeting before it does not count ("Bonjour, c'est combien ?")."""
    folded = fold(text[:MAX_CHARS]).strip()
    if "?" in folded:
        return True
    body = _strip_greeting(folded)
    return bool(_STRONG_QUESTION.match(body) or _QUESTION_ANYWHERE.search(body))


def _sentence_is_question(sentence: str) -> bool:
    folded = fold(sentence).strip()
    body = _strip_greeting(folded)
    call_me = _CALL_ME.search(body)
    if call_me and _MOMENT.search(body) and "?" not in body:
        return False  # "can you call me tomorrow at 9": a time given, not a question
    if _STRONG_QUESTION.match(body) or _QUESTION_ANYWHERE.search(body) or _WHAT_ABOUT.fullmatch(body):
        return True
    return "?" in folded and bool(body.strip(" ?"))


def _is_small_talk(text: str) -> bool:
    folded = fold(text[:MAX_CHARS]).strip()
    parts = [p.strip(" ,.!?;:-") for p in re.split(r"[,.!?;\n]+", folded)]
    parts = [p for p in parts if p and re.search(r"\w", p)]
    emoji_only = not re.search(r"\w", folded)
    if emoji_only or (bool(parts) and all(_SMALL_TALK.match(p) for p in parts)):
        return True
    words = re.findall(r"[a-z']+", folded)
    return bool(words) and len(words) <= 8 and all(w in _SMALL_TALK_WORDS for w in words)


def asks_call_back(text: str) -> bool:
    """Whether ``text`` asks to be called on the phone ("vous pouvez me rappeler ?", "can someone
    call me back? my number is …", "appelez-moi plutôt"), French or English; a request for a
    person in writing ("je voudrais parler à un conseiller") is not."""
    return _CALL_ME.search(fold(expand_shorthand(text[:MAX_CHARS])).strip()) is not None


def detect_intent(text: str, *, ask_kind: str | None = None) -> str:
    """The message's intent, from French and English cues, in this order: ``auto_reply``,
    ``opt_out``, ``not_interested``, ``wants_human``, ``question``, ``small_talk``, ``answer``.

    ``ask_kind``: the kind of the question pending, if any; "no thanks" is "not interested" only
    while another kind of question is pending (a plain no to a yes/no question, or to "any
    questions?" when none is).
    """
    folded = fold(text[:MAX_CHARS]).strip()
    if _AUTO_REPLY.search(folded):
        return "auto_reply"
    if _OPT_OUT.search(folded):
        return "opt_out"
    if _NOT_INTERESTED.search(folded):
        return "not_interested"
    if ask_kind not in (None, "yes_no") and _NOT_INTERESTED_WEAK.search(folded) and len(folded.split()) <= 6:
        return "not_interested"
    human = _HUMAN.search(folded)
    if human and not (_CALL_ME.fullmatch(human.group()) and _MOMENT.search(folded)):
        return "wants_human"  # "can you call me tomorrow at 9" gives a time, it is not a handoff request
    if any(_sentence_is_question(s) for s in _sentences(text[:MAX_CHARS])):
        return "question"
    if _is_small_talk(text):
        return "small_talk"
    return "answer"


# --------------------------------------------------------------------------- reading slots


@dataclass
class _Reading:
    """The message's answer part, with the words already used by a slot blanked out."""

    text: str
    slots: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)

    def take(self, slot: str, found: SlotValue) -> None:
        self.slots[slot] = found.value
        self.evidence[slot] = found.evidence
        self.consume(found.evidence)

    def consume(self, words: str) -> None:
        if not words:
            return
        index = self.text.find(words)
        if index < 0:
            index = fold(self.text).find(fold(words))
        if index >= 0:
            self.text = self.text[:index] + " " * len(words) + self.text[index + len(words) :]


def _number_class(question: str) -> str:
    folded = fold(question)
    if _AREA_Q.search(folded):
        return "area"
    if _MONEY_Q.search(folded):
        return "money"
    return ""


def _read_number(text: str, question: str, *, language: str, asked: bool) -> SlotValue | None:
    wanted = _number_class(question)
    mentions = [m for m in find_numbers(text, language=language) if m.unit in ("", "money", "area")]
    for mention in mentions:
        if wanted and mention.unit == wanted:
            return SlotValue(mention.value, mention.evidence)
    if not asked:
        return None
    for mention in mentions:
        if mention.unit == "":
            return SlotValue(mention.value, mention.evidence)
    if not wanted:
        for mention in mentions:
            return SlotValue(mention.value, mention.evidence)
    if not find_numbers(text, language=language):
        words = parse_slot("number", text, language=language)
        if words is not None and not re.search(r"\d", words.evidence):
            return words
    return None


def _number_by_topic(text: str, question: str, *, language: str) -> SlotValue | None:
    """A number without a unit in a clause that names the question's topic ("bill is about 120"
    for "how much do you spend on electricity per month?", "surface 120" for a surface): the
    answer to that question, given while another one was asked. ``None`` otherwise."""
    wanted = _number_class(question)
    if not wanted:
        return None
    for clause in _clauses(text):
        if _number_class(clause) != wanted:
            continue
        for mention in find_numbers(clause, language=language):
            if mention.unit in ("", wanted):
                return SlotValue(mention.value, mention.evidence)
    return None


def _postcode(text: str) -> SlotValue | None:
    """A French or British postcode in ``text``, written the post's way: "75 011" -> "75011",
    "sw1a1aa" -> "SW1A 1AA" (a British postcode's last three characters are its inward code)."""
    for index, pattern in enumerate(_POSTCODES):
        match = pattern.search(text)
        if match:
            code = re.sub(r"\s+", "", match.group().upper())
            if index == 1:
                code = f"{code[:-3]} {code[-3:]}"
            return SlotValue(code, match.group())
    return None


def _labels(context: AskContext) -> dict[str, list[str]]:
    return {c.id: [c.title, *context.choice_synonyms.get(c.id, [])] for c in context.choices}


def _clauses(text: str) -> list[str]:
    return [c for c in _CLAUSE.split(text) if c and c.strip()]


_AMBIGUOUS = {
    "soon", "later", "flat", "vite", "tin", "tard", "curious", "curieux", "quickly", "rapidement",
    "tile", "metal",
    "global", "globale", "mur", "murs", "pente", "terrasse", "renseignement", "researching", "regarde",
    "year", "years", "annee", "month", "months", "mois", "looking", "look",
}  # fmt: skip
"""Single words too common to be read as an option of a question that was not the one asked."""


def _strict_labels(
    labels: Mapping[str, Sequence[str]], *, project: bool = False
) -> Mapping[str, Sequence[str]]:
    """Labels specific enough to be recognised in a message that answers another question, per
    option: one shared, read-only mapping per question's labels (computed once, not per message)."""
    return _strict_label_map(tuple((cid, tuple(options)) for cid, options in labels.items()), project)


@lru_cache(maxsize=1024)  # labels are the playbooks' constants: once per question, not per message
def _strict_label_map(
    labels: tuple[tuple[str, tuple[str, ...]], ...], project: bool
) -> Mapping[str, tuple[str, ...]]:
    from playbooks.choices import _GENERIC, _tokens

    out: dict[str, tuple[str, ...]] = {}
    for cid, options in labels:
        kept = []
        for label in options:
            tokens = _tokens(label)
            if len(tokens) >= 2 or (
                len(tokens) == 1
                and len(tokens[0].text) >= 3
                and tokens[0].text not in (_GENERIC if project else _GENERIC | _AMBIGUOUS)
            ):
                kept.append(label)
        out[cid] = tuple(kept)
    return MappingProxyType(out)


_AMOUNT = (
    r"(?:[£€$]\s?)?\d{1,3}(?:[ ,.]?\d{3}){0,2}(?:[.,]\d{1,2})?"
    r"(?:\s?(?:k€|k£|keur|ke|k|euros?|eur|€|£|\$|pounds?|quid|grand|mille|balles))?(?!\w)"
)
_BUDGET_WORD = r"(?:budget|enveloppe)"
_BUDGET = re.compile(
    r"(?<!\w)"
    + _BUDGET_WORD
    + r"(?:\W{1,3}[a-z']{1,12}){0,4}?\W{1,3}"
    + _AMOUNT
    + r"|"
    + _AMOUNT
    + r"\s{0,3}(?:(?:de|of|as|d')\s{0,3})?"
    + _BUDGET_WORD
    + r"(?!\w)"
)
"""A budget said with its amount, folded: "budget maybe 8k", "budget d'environ 8 000 €", "8k
budget", "8000€ de budget". At most four words between the word and the amount, every run
bounded: linear on a message of :data:`MAX_CHARS` characters."""
_BUDGET_SLOT = re.compile(r"(?<![a-z])" + _BUDGET_WORD)
"""A slot name or question about the budget: the playbook reads the budget itself."""


@lru_cache(maxsize=1024)  # slot names and questions are the playbooks' constants
def _names_budget(named: tuple[str, ...]) -> bool:
    """Whether one of the slot names or questions ``named`` is about the budget."""
    return any(_BUDGET_SLOT.search(fold(words[:MAX_CHARS])) for words in named)


def _read_remarks(
    reading: _Reading, result: Interpretation, ask: AskContext | None, open_slots: Mapping[str, str]
) -> None:
    """A budget the lead gives with its amount ("budget maybe 8k") while the playbook has no slot
    for it (none named or asked about the budget): its words go to ``result.remarks["budget"]``
    and out of the reading, so that they answer no other question (8,000 is no monthly bill). A
    number question asked keeps them when they are all the answer part holds a number in."""
    contexts = [ask, *ask.others, *ask.answered] if ask is not None else []
    if _names_budget((*(c.slot for c in contexts), *open_slots, *(c.question for c in contexts))):
        return
    folded = fold(reading.text[:MAX_CHARS])
    found = _BUDGET.search(folded)
    if found is None:
        return
    rest = folded[: found.start()] + folded[found.end() :]
    if ask is not None and ask.kind == "number" and not re.search(r"\d", rest):
        return
    words = reading.text[found.start() : found.end()]
    result.remarks["budget"] = words.strip()
    reading.consume(words)


def find_remarks(
    text: str, *, ask: AskContext | None, open_slots: Mapping[str, str], language: str | None = None
) -> dict[str, str]:
    """What :func:`read_message` keeps in ``Interpretation.remarks`` for ``text`` (SMS shorthand
    written out for ``language``; its answer sentences, the first :data:`MAX_CHARS` characters of
    each reading): topic -> the lead's words, e.g. ``{"budget": "budget maybe 8k"}`` when no
    question of the playbook (``ask`` with its others, ``open_slots``) is about the budget; empty
    when nothing is. For a reader of the message other than :func:`read_message` (the GPT
    interpreter), so that both keep the same remarks."""
    expanded = expand_shorthand(text, language=language)
    reading = _Reading(" ".join(_answer_sentences(expanded, ask.kind if ask is not None else None)))
    result = Interpretation()
    _read_remarks(reading, result, ask, open_slots)
    return result.remarks


def read_message(
    text: str,
    *,
    ask: AskContext | None,
    open_slots: Mapping[str, str],
    language: str,
    now: float,
    timezone: str = "UTC",
    default_region: str | None = None,
    regions: Sequence[str] = (),
    choice_id: str | None = None,
) -> Interpretation:
    """Read ``text`` against the asked question and every other open one; no knowledge answer.

    ``ask``: the question pending (with ``others``, the other unfilled questions); ``open_slots``:
    every unfilled slot -> kind (used for e-mail and phone slots no ask context describes).
    ``language`` (ISO 639-1) reads numbers and dates, ``now`` (seconds since the epoch, UTC) and
    ``timezone`` (IANA) anchor dates, ``regions`` then ``default_region`` (ISO 3166) read phone
    numbers. Returns an :class:`Interpretation` with ``intent``, ``slots``, ``evidence``, ``other``
    and ``clarify`` set (``language`` and ``answer`` left to the caller).
    """
    text = expand_shorthand(text, language=language)
    kind = ask.kind if ask is not None else None
    intent = detect_intent(text, ask_kind=kind)
    if intent == "question" and all(
        not _sentence_is_question(s) or _tentative(s, kind) for s in _sentences(text)
    ):
        intent = "answer"
    result = Interpretation(intent=intent, call_back=intent == "wants_human" and asks_call_back(text))
    if intent in ("auto_reply", "opt_out", "not_interested") and choice_id is None:
        return result
    answer_part = " ".join(_answer_sentences(text, kind))
    reading = _Reading(answer_part)
    options: dict[str, Any] = {
        "language": language,
        "now": now,
        "timezone": timezone,
        "default_region": default_region,
        "regions": regions,
    }
    if choice_id is None:
        _read_remarks(reading, result, ask, open_slots)
    correcting = (
        ask is not None and bool(ask.answered) and choice_id is None and _CORRECTION.search(fold(answer_part))
    )
    # "non en fait c'est 200 €": the "non" belongs to the correction, not to a yes/no question
    corrected = bool(
        correcting and ask is not None and ask.kind == "yes_no" and _read_correction(reading, ask, options)
    )
    if ask is not None and ask.not_offered is not None and choice_id is None:
        # read first, over the whole message ("vous faites les panneaux solaires ?" names it too),
        # with where it would go: "panneaux solaires sur la toiture" is no roof insulation
        _read_not_offered(reading, ask.not_offered, text, intent)
    if ask is not None and not corrected:
        _read_asked(reading, result, ask, text, choice_id, options)
        if correcting and ask.slot not in reading.slots and _read_correction(reading, ask, options):
            result.other.pop(ask.slot, None)
            result.clarify.pop(ask.slot, None)
    other_words = (
        result.other.pop(ask.slot, None) if ask is not None and ask.slot not in reading.slots else None
    )
    contexts = list(ask.others) if ask is not None else []
    described = {c.slot for c in contexts} | ({ask.slot} if ask is not None else set())
    for slot, slot_kind in open_slots.items():
        if slot not in described and slot_kind in ("email", "phone"):
            contexts.append(AskContext(step_id=slot, slot=slot, kind=slot_kind, question=""))  # type: ignore[arg-type]
    order = {"email": 0, "phone": 1, "datetime": 2, "number": 3, "choice": 4, "yes_no": 5, "text": 6}
    for context in sorted(contexts, key=lambda c: order.get(c.kind, 9)):
        if context.slot in reading.slots:
            continue
        _read_other(reading, context, text, options)
    owner_asked = ask is not None and ask.kind == "yes_no" and asks_about_owning(ask.question)
    _read_relative_owner(reading, contexts, text, owner_asked=owner_asked)
    if ask is not None and not reading.slots and ask.kind in ("choice", "yes_no"):
        _read_lone_number(reading, ask, language=language)
    result.slots, result.evidence = reading.slots, reading.evidence
    if ask is not None and other_words is not None and not reading.slots and _has_content(reading.text):
        # none of the options, and the words are not the answer to another question either
        result.other[ask.slot] = other_words
    result.declined = [slot for slot in result.declined if slot in result.other]
    if intent == "small_talk" and result.slots:
        result.intent = "answer"
    if intent in ("question", "answer") and asks_call_back(text) and not _took_time(result, ask, open_slots):
        # "can you call me back tomorrow morning?" with no date-and-time question to take the
        # moment: a request to be called back, not a question for an adviser nor an answer
        result.intent, result.call_back = "wants_human", True
    return result


def _took_time(result: Interpretation, ask: AskContext | None, open_slots: Mapping[str, str]) -> bool:
    """Whether ``result`` filled a date-and-time slot (the asked one or another open one)."""
    kinds = {**open_slots, **({ask.slot: ask.kind} if ask is not None else {})}
    return any(kinds.get(slot) == "datetime" for slot in result.slots)


_SEVERAL = re.compile(r"(?<!\w)(?:et|and|both|les deux|tous les deux|toutes les deux|plus|\+|&)(?!\w)|[+&]")
"""Words joining two options in one answer ("combles et pac", "both", "tiles + slate")."""


def _several_named(text: str, candidates: list[str], labels: Mapping[str, Sequence[str]]) -> list[str] | None:
    """The ``candidates`` (choice ids) that ``text`` names word for word (one of their labels as
    whole words), in the order named, when it names at least two joined by :data:`_SEVERAL`
    ("combles et pac", "both tiles and slate"); else ``None`` (the engine asks which one)."""
    if not candidates or not _SEVERAL.search(fold(text)):
        return None
    words = " " + " ".join(re.findall(r"[a-z0-9]+", fold(text))) + " "
    places: dict[str, int] = {}
    for cid in candidates:
        for label in labels.get(cid, ()):
            spaced = " " + " ".join(re.findall(r"[a-z0-9]+", fold(label))) + " "
            at = words.find(spaced) if spaced.strip() else -1
            if at >= 0:
                places[cid] = min(at, places.get(cid, at))
    return sorted(places, key=lambda cid: places[cid]) if len(places) >= 2 else None


def _read_asked(
    reading: _Reading,
    result: Interpretation,
    ask: AskContext,
    text: str,
    choice_id: str | None,
    options: dict[str, Any],
) -> None:
    kind = ask.kind
    part = reading.text
    if choice_id is not None and kind == "choice":
        found = match_choice(text, _labels(ask), choice_id=choice_id)
        if found.value is not None:
            reading.take(ask.slot, SlotValue(found.value, found.evidence))
        return
    if not part.strip() or (result.intent == "small_talk" and kind not in ("yes_no", "choice")):
        return
    if kind in ("email", "phone"):
        parsed = parse_slot(kind, text, **options)
        if parsed is not None:
            reading.take(ask.slot, parsed)
        elif (_NO_EMAIL if kind == "email" else _NO_PHONE).search(fold(part)):
            # "pas d'email", "i don't have one": kept for the adviser, never "could you check it?"
            result.other[ask.slot] = part.strip()
            result.declined.append(ask.slot)
        return
    if kind == "choice":
        part = _mask_contacts(part, options)
        if result.intent == "wants_human":  # the request is no answer: "quelqu'un" is not "quelques mois"
            part = _HUMAN.sub(" ", fold(part))
        found = match_choice(
            _mask_current_heating(part),
            _labels(ask),
            now=options["now"],
            timezone=options["timezone"],
            question=ask.question,
        )
        if found.value is not None:
            reading.take(ask.slot, SlotValue(found.value, found.evidence))
            if found.other:
                result.other[ask.slot] = part.strip()
            elif found.fuzzy:
                result.fuzzy.append(ask.slot)
        elif (named := _several_named(part, list(found.candidates), _labels(ask))) is not None:
            # "les deux : combles et pac": both are meant; the first named is the answer
            reading.take(ask.slot, SlotValue(named[0], part.strip()))
            result.also[ask.slot] = named[1:]
        elif found.candidates:
            result.clarify[ask.slot] = list(found.candidates)
        elif found.other and result.intent not in ("wants_human", "small_talk"):
            result.other[ask.slot] = part.strip()
            if found.declined:
                result.declined.append(ask.slot)
        return
    if kind == "number":
        masked = _mask_postcodes(_mask_contacts(part, options))
        parsed = _read_number(masked, ask.question, language=options["language"], asked=True)
        if parsed is not None:
            reading.take(ask.slot, parsed)
        return
    if kind == "yes_no":
        if result.intent == "wants_human":
            return
        clauses = _clauses(part)
        # a clause that repeats the question's words answers it ("non pas de panneaux, je suis
        # proprio": the "non" is about the panels)
        echoing = [c for c in clauses if _echoes(c, ask.question)] if len(clauses) > 1 else []
        for clause in [*echoing, part, *clauses]:
            parsed = parse_slot("yes_no", clause, question=ask.question, **options)
            if parsed is not None:
                reading.take(ask.slot, parsed)
                return
        return
    if kind == "datetime":
        if _UNAVAILABLE.search(fold(part)):
            return  # "je ne suis pas dispo cette semaine" gives no time
        parsed = parse_slot("datetime", _mask_contacts(part, options), **options)
        if parsed is not None:
            reading.take(ask.slot, parsed)
        return
    # text
    if result.intent in ("wants_human", "small_talk"):
        return
    if _POSTCODE_SLOT.search(ask.slot):
        postcode = _postcode(_mask_contacts(part, options))
        if postcode is not None:
            reading.take(ask.slot, postcode)
            return
    body = _GREETING.sub("", part.strip()).strip(" ,.;") if fold(part).strip() else ""
    if body and not looks_like_email(body):
        reading.take(ask.slot, SlotValue(body, body))


_CORRECTION_STRONG = re.compile(
    r"(?<![\w'])(?:actually|no wait|my bad|i meant|i mean|correction|more like|rather|not|en fait|enfait|"
    r"je voulais dire|je veux dire|plutot|je me suis trompee?|non c'est|non c est)(?![\w'])"
    r"|(?<![\w'])non,? (?=\d)"
)
"""Words that say outright that the message corrects an earlier answer ("non en fait c'est 200 €",
"actually it's more like 200", "200 not 150"): a bare number is then read as the corrected one.
Matched on the folded answer part (at most :data:`MAX_CHARS` characters)."""
_CORRECTION = re.compile(
    _CORRECTION_STRONG.pattern
    + r"|(?<![\w'])(?:wait|sorry|oops|pardon|oups|erreur|finalement|au fait)(?![\w'])"
)
""":data:`_CORRECTION_STRONG` and softer words ("sorry", "pardon"): with these, only a value that
says what it is (an option's label, an address, a postcode, an amount with its unit) corrects."""


def _read_correction(reading: _Reading, ask: AskContext, options: dict[str, Any]) -> bool:
    """Read ``reading`` against the questions already answered (``ask.answered``, nearest first)
    and take the first value one of them gives: a number (not when the pending question asks a
    number too: the number answers it; a bare number only after :data:`_CORRECTION_STRONG` words),
    a whole option label, an e-mail address, a phone number or a postcode. Returns whether a value
    was taken."""
    part = reading.text
    if not part.strip():
        return False
    strong = _CORRECTION_STRONG.search(fold(part)) is not None
    if ask.kind != "yes_no" and (relative := relative_owner(part)) is not None:
        # "c'est ma mère qui a la maison en fait" after "oui": the home is a relative's, so the
        # lead is not the owner (read before the other answers: "maison" names no new home type;
        # the relative slot is read in passing)
        for context in ask.answered:
            if context.kind == "yes_no" and asks_about_owning(context.question):
                reading.take(context.slot, SlotValue(False, relative))
                return True
    for context in ask.answered:
        parsed: SlotValue | None = None
        if context.kind == "number" and ask.kind != "number":
            masked = _mask_postcodes(_mask_contacts(part, options))
            parsed = _read_number(masked, context.question, language=options["language"], asked=strong)
        elif context.kind == "choice":
            found = match_choice(
                _mask_contacts(part, options), _labels(context), question=context.question, strict=True
            )
            if found.value is not None and not found.other:
                parsed = SlotValue(found.value, found.evidence)
        elif context.kind in ("email", "phone") and ask.kind != context.kind:
            parsed = parse_slot(context.kind, part, **options)
        elif context.kind == "text" and _POSTCODE_SLOT.search(context.slot):
            parsed = _postcode(_mask_contacts(part, options))
        elif context.kind == "yes_no" and strong and ask.kind != "yes_no":
            # "actually we rent": only a clause repeating the question's words, after outright
            # correction words, changes a yes/no answer (it may change the playbook's path)
            for clause in _clauses(part):
                if _echoes(clause, context.question):
                    said = parse_slot("yes_no", clause, question=context.question, **options)
                    parsed = SlotValue(said.value, clause.strip()) if said is not None else None
                    if parsed is not None:
                        break
        if parsed is not None:
            reading.take(context.slot, parsed)
            return True
    return False


_CURRENT_HEATING = re.compile(
    r"(?<!\w)(?:chauffage|chaudiere|heating|boiler|poele)(?=\s+(?:(?:au|a|par|en|de|du|on|with)\s+)?"
    r"(?:fioul|fuel|mazout|gaz|gas|electrique|electric|bois|wood|granules?|pellets?|charbon|coal|oil|"
    r"propane|gpl|lpg|convecteurs?)(?!\w))"
    r"|(?<=(?:oil|gas) )(?:heating|boiler)(?!\w)"
)
"""The word for a heating system followed (or, in English, preceded) by its fuel ("chauffage
fioul", "chaudière au gaz", "oil heating"): the lead describes the heating they have, they do not
name a heat pump by it. Blanked before options are matched, so the fuel is what is left to read."""


def _mask_current_heating(text: str) -> str:
    """``text`` with the heating word of :data:`_CURRENT_HEATING` blanked (same length)."""
    folded = fold(text)
    if len(folded) != len(text):
        return text
    for match in _CURRENT_HEATING.finditer(folded):
        text = text[: match.start()] + " " * len(match.group()) + text[match.end() :]
    return text


def _has_content(text: str) -> bool:
    """Whether ``text`` still holds a meaningful word (four letters or more, not a stop word)."""
    from playbooks.choices import _tokens

    return any(len(t.text) >= 4 and not t.text.isdigit() for t in _tokens(text))


def _mask_contacts(text: str, options: dict[str, Any]) -> str:
    """``text`` with e-mail addresses and phone numbers blanked out (their digits are no number)."""
    masked = text
    for kind in ("email", "phone"):
        for _ in range(3):
            parsed = parse_slot(kind, masked, **options)
            if parsed is None or not parsed.evidence or parsed.evidence not in masked:
                break
            masked = masked.replace(parsed.evidence, " " * len(parsed.evidence))
    return masked


def _mask_postcodes(text: str) -> str:
    """``text`` with British postcodes blanked out ("M1 1AE" holds no amount); French ones, five
    digits, stay (they are read as postcodes where a postcode question is open)."""
    return _POSTCODES[1].sub(lambda m: " " * len(m.group()), text)


def _read_other(reading: _Reading, context: AskContext, text: str, options: dict[str, Any]) -> None:
    kind, part = context.kind, reading.text
    if not part.strip() and kind not in ("email", "phone"):
        return
    parsed: SlotValue | None = None
    if kind in ("email", "phone"):
        parsed = parse_slot(kind, part if part.strip() else text, **options)
        if parsed is not None and kind == "phone" and len(re.sub(r"\D", "", parsed.evidence)) < 8:
            parsed = None
    elif kind == "datetime":
        masked = _mask_contacts(part, options)
        if _mentions_moment(masked):
            parsed = parse_slot("datetime", masked, **options)
    elif kind == "number":
        masked = _mask_postcodes(_mask_contacts(part, options))
        parsed = _read_number(masked, context.question, language=options["language"], asked=False)
        if parsed is None:
            parsed = _number_by_topic(masked, context.question, language=options["language"])
    elif kind == "choice":
        folded = fold(part)
        project = _PROJECT.search(folded) is not None or _ANCHORED_PERIOD.search(folded) is not None
        strict = _strict_labels(_labels(context), project=project)
        # a short reply's period is the project's too ("idk, maybe nxt year"); its common words
        # ("looking", "soon") still name no option of a question not asked
        now = options["now"] if project or _short_unprompted_period(folded) else None
        found = match_choice(
            _mask_current_heating(part), strict, now=now, timezone=options["timezone"], strict=True
        )
        if found.value is not None and not found.other:
            parsed = SlotValue(found.value, found.evidence)
    elif kind == "yes_no" and not asks_about_relative(context.question):  # see _read_relative_owner
        for clause in _clauses(part):
            if _echoes(clause, context.question):
                parsed = parse_slot("yes_no", clause, question=context.question, **options)
                if parsed is not None:
                    parsed = SlotValue(parsed.value, clause.strip())
                    break
    elif kind == "text" and _POSTCODE_SLOT.search(context.slot):
        parsed = _postcode(_mask_contacts(part, options))
    if parsed is not None:
        reading.take(context.slot, parsed)


def _read_relative_owner(
    reading: _Reading, contexts: Sequence[AskContext], text: str, *, owner_asked: bool = False
) -> None:
    """A yes/no question asking whether the home is a relative's (often ``listen_only``), answered
    in passing by a message naming a relative owner ("c'est ma mère la proprio" while "Êtes-vous
    propriétaire ?" waits): yes, with the relative's words, even when those words already said the
    lead is not the owner. ``owner_asked``: the message answers "do you own the home?" (a short
    "non, ma mère" says whose it is)."""
    for context in contexts:
        if (
            context.kind != "yes_no"
            or context.slot in reading.slots
            or not asks_about_relative(context.question)
        ):
            continue
        relative = relative_owner(text, answering_owner=owner_asked)
        if relative is not None:
            reading.slots[context.slot] = True
            reading.evidence[context.slot] = relative


_LONE_NUMBER = re.compile(
    r"^\W*(?:env(?:iron)?|about|around|approx\w*|roughly|~|vers|a peu pres|like|maybe|peut-etre)?\s*"
    r"\d{1,6}(?:[.,]\d{1,2})?\s*(?:ish|environ)?\W*$"
)
"""A reply that is a number alone, perhaps with "about" ("95", "env 120", "150ish")."""


_NO_EMAIL = re.compile(
    r"(?<![\w'])(?:no|not|don'?t have|dont have|do not have|haven'?t got|never use|without|pas d'?|pas de|"
    r"sans|je n'?ai pas d'?|j'?ai pas d'?|aucune?)\s*(?:an?\s+|une?\s+|d'?\s*)?"
    r"(?:e-?mail|email|mail|adresse(?: e-?mail| mail)?)(?![\w'])"
    r"|(?<![\w'])(?:i )?(?:don'?t|do not) have (?:one|any)(?![\w'])"
)
"""A lead who says they have no e-mail address ("pas d'email", "i dont have email")."""
_NO_PHONE = re.compile(
    r"(?<![\w'])(?:no|don'?t have|dont have|do not have|pas de|sans|je n'?ai pas de|j'?ai pas de)\s*"
    r"(?:an?\s+|un\s+)?(?:phone|mobile|cell|telephone|tel|portable|numero)(?![\w'])"
    r"|(?<![\w'])(?:i )?(?:don'?t|do not) have (?:one|any)(?![\w'])"
)
"""A lead who says they have no phone number to give."""


def _read_lone_number(reading: _Reading, ask: AskContext, *, language: str) -> None:
    """A number alone, given while a choice or yes/no question waits (the lead answered the next
    question they expected, or a clarification): the answer to the one open number question, when
    there is exactly one and the number is no option's rank ("2" picks the second option)."""
    folded = fold(reading.text[:MAX_CHARS]).strip()
    if not _LONE_NUMBER.match(folded):
        return
    targets = [c for c in ask.others if c.kind == "number"]
    mentions = find_numbers(reading.text, language=language)
    if len(targets) != 1 or len(mentions) != 1 or mentions[0].unit not in ("", "money", "area"):
        return
    value = mentions[0].value
    if ask.kind == "choice" and float(value).is_integer() and 1 <= value <= max(len(ask.choices), 9):
        return  # may be an option's rank
    reading.take(targets[0].slot, SlotValue(value, mentions[0].evidence))


_PLACE = re.compile(
    r"\s*(?:sur|on|onto|for|pour|dans|in)\s+(?:the|my|our|a|le|la|les|l'|mon|ma|mes|notre|nos|un|une)?\s*"
    r"[\w'-]{2,30}"
)
"""Where a project would go, right after it ("sur la toiture", "on my roof")."""


def _read_not_offered(reading: _Reading, context: AskContext, text: str, intent: str) -> None:
    """A project the playbook does not offer named anywhere in ``text`` (its questions included),
    by a whole label; not in an opt-out, a "not interested" or an automatic reply."""
    if intent in ("auto_reply", "opt_out", "not_interested"):
        return
    found = match_choice(text, _strict_labels(_labels(context), project=True), strict=True)
    if found.value is None or found.other:
        return
    reading.take(context.slot, SlotValue(found.value, found.evidence))
    at = fold(reading.text).find(" " * len(found.evidence)) if found.evidence else -1
    if at >= 0:
        place = _PLACE.match(fold(reading.text), at + len(found.evidence))
        if place is not None:
            reading.consume(reading.text[place.start() : place.end()])


def find_not_offered(text: str, context: AskContext, *, language: str | None = None) -> SlotValue | None:
    """The project not offered (``context``: :attr:`AskContext.not_offered`) that ``text`` names by a
    whole label, as the offline reader hears it (SMS shorthand expanded, questions included), with
    the words that named it; ``None`` when it names none, or in an opt-out, a "not interested" or an
    automatic reply. ``language`` (ISO 639-1) picks the shorthand table. Reads the first
    :data:`MAX_CHARS` characters."""
    expanded = expand_shorthand(text[:MAX_CHARS], language=language)
    reading = _Reading(expanded)
    _read_not_offered(reading, context, expanded, detect_intent(expanded))
    found = reading.slots.get(context.slot)
    return None if found is None else SlotValue(found, reading.evidence.get(context.slot, ""))


_PROJECT = re.compile(
    r"(?<!\w)(?:want|wants|wanted|would like|we'?d like|i'?d like|hoping|hope|hopefully|ideally|"
    r"planning|plan|aiming|aim|looking to|thinking|espere\w*|"
    r"need|needs|"
    r"install\w*|done|fitted|start\w*|get it|have it|voudrai\w*|souhait\w*|aimerai\w*|prevoi\w*|prevu|faire|"
    r"realiser|commencer|demarrer|installer|travaux|projet|project|idealement|envisag\w*|compt\w*)(?!\w)"
)
"""Words that tie a period to the project ("we want it before summer"), not to something else
("we complete next month")."""
_ANCHORED_PERIOD = re.compile(
    r"(?<!\w)(?:dans|d'ici|d ici|within|in the next|in the coming|before|avant|by|sous)\s+"
    r"(?:(?:the|l'|le|la|les|les prochains?|un|une|a|\d{1,3})\s*)?"
    r"(?:spring|printemps|summer|ete|autumn|fall|automne|winter|hiver|christmas|xmas|noel|"
    r"months?|mois|weeks?|semaines?|years?|ans?|annees?|couple|few|quelques|deux|trois|quatre|"
    r"cinq|six|two|three|four|five)(?!\w)"
)
"""A period said with "in/within/before" ("dans 2 mois", "before summer", "d'ici l'été"): it is
the project's timeline even without a verb tying it to the project (an answer given out of order);
"next month" or "in March" alone still need one of :data:`_PROJECT`'s words. Bounded: at most a
few words, read over the message's first :data:`MAX_CHARS` characters."""
_ELSEWHERE = re.compile(
    r"(?<![\w'])(?:ago|last|since|passe\w*|dernier\w*|depuis|il y a|moved?|moving|bought|built|"
    r"sold|sell\w*|redone|replaced|renovated|achete\w*|construit\w*|vendu\w*|vend\w*|refait\w*|"
    r"demenag\w*|emmenag\w*|holiday\w*|vacation|vacances|away|absent\w*|retire\w*|retraite|baby|"
    r"bebe|wedding|mariage|birthday|anniversaire|born|ne|nee|roof|toit\w*|toiture|bill|facture|"
    r"call|appel\w*|rappel\w*|meeting|rdv|rendez-vous|dispo\w*|available|free|libre)(?![\w'])"
)
"""Words saying that a period is about something else than the project ("we moved in last year",
"on a refait le toit l'an dernier", "away next month", "free next week" for a call): with one of
them, a period said without a word tying it to the project is not the project's timeline."""
_PERIOD_HINT = re.compile(
    r"\d|year|month|week|mois|semaine|\ban\b|annee|spring|summer|autumn|fall|winter|printemps|ete\b|"
    r"automne|hiver|christmas|xmas|noel|fetes|janv|fevr|mars|march|avril|april|mai\b|may\b|juin|june|"
    r"juil|july|aout|august|sept|octob|novem|decem|janua|febru"
)
"""A cheap first look for a period in a short reply, before the period reader runs."""
_SHORT_REPLY_WORDS = 8
"""A reply of at most this many words (what is left of it once other answers took their words)
that says a period and nothing tying it elsewhere gives the project's timeline ("idk, maybe nxt
year" to the roof question, "probably in spring")."""


_PERIOD_CLAUSE = re.compile(r"[.!?;,]|\b(?:and|et|but|mais)\b")
"""Where a reply of two answers splits ("roof is tiles, south facing. maybe in spring")."""


def _short_unprompted_period(folded: str) -> bool:
    """Whether ``folded`` (folded text, at most :data:`MAX_CHARS` characters) is a short reply whose
    period can only be the project's: at most :data:`_SHORT_REPLY_WORDS` words, none of
    :data:`_ELSEWHERE`'s; or, in a reply of up to twice that (two answers in one message), a
    clause of its own that says the period and nothing tying it elsewhere ("roof is tiles. maybe
    in spring": the roof is the other answer's). The period itself is still read by
    :func:`playbooks.choices.match_choice` (with a temporal word: "next", "in", "by"...), so a
    bare "year" gives nothing."""
    text = folded[:MAX_CHARS]
    words = re.findall(r"[\w']+", text)
    if not 0 < len(words) <= 2 * _SHORT_REPLY_WORDS or _PERIOD_HINT.search(text) is None:
        return False
    if len(words) <= _SHORT_REPLY_WORDS and _ELSEWHERE.search(text) is None:
        return True
    return any(
        _PERIOD_HINT.search(clause) is not None and _ELSEWHERE.search(clause) is None
        for clause in _PERIOD_CLAUSE.split(text)
    )


_UNAVAILABLE = re.compile(
    r"(?<!\w)(?:pas|not|n'?est pas|can'?t|cannot|unable|impossible|aren'?t|isn'?t|won'?t)\s+(?:\w+\s+)?"
    r"(?:dispo\w*|available|free|libre|possible|around|there|la)(?!\w)"
)
_MOMENT = re.compile(
    r"(?<!\w)(?:lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday|tomorrow|demain|apres-demain|tonight|ce soir|today|aujourd'hui|tmrw)(?!\w)"
    r"|(?<![\d£$€])\d{1,2}\s*(?:h\b|h\d|heures?\b|am\b|pm\b|a\.m|p\.m|:\d\d)"
)


def _mentions_moment(text: str) -> bool:
    return _MOMENT.search(fold(text)) is not None


_PART_OF_DAY = re.compile(
    r"(?<!\w)(?:morning|afternoon|evening|lunchtime|lunch time|midday|noon|weekend|next week|matin|"
    r"matinee|apres-midi|apres midi|soir|soiree|midi|week-end|semaine prochaine|en journee)(?!\w)"
)


def mentions_moment(text: str) -> bool:
    """Whether ``text`` (its first :data:`MAX_CHARS` characters) names a moment, in French or
    English: a day ("demain", "friday"), an hour ("9h", "3pm") or a part of the day ("in the
    morning", "l'après-midi")."""
    folded = fold(text[:MAX_CHARS])
    return _MOMENT.search(folded) is not None or _PART_OF_DAY.search(folded) is not None


def _echoes(clause: str, question: str) -> bool:
    """Whether ``clause`` repeats a content word of ``question`` (or says the opposite of owning)."""
    from playbooks.choices import _same, _tokens
    from playbooks.slots import _OWN, _RENT

    asked = [t for t in _tokens(question) if len(t.text) >= 4]
    said = _tokens(clause)
    owning = any(t.text in _OWN for t in _tokens(question))  # "own" has three letters
    if owning and any(t.text in _RENT or t.text in _OWN for t in said):
        return True
    return any(len(t.text) >= 4 and any(_same(t, q) for q in asked) for t in said)


_WHO_ARE_YOU = re.compile(
    r"(?<!\w)(?:who (?:is|are) (?:this|you|u)|who'?s (?:this|that)|who am i (?:talking|speaking|chatting) "
    r"(?:to|with)|(?:is this|are you|r u) (?:a )?(?:bot|robot|real person|human|person)|"
    r"qui (?:etes|est)[- ](?:vous|ce)|vous etes qui|c'?est qui|t'?es qui|"
    r"qui me (?:parle|repond|contacte|ecrit)|"
    r"(?:etes|es)[- ](?:vous|tu) (?:un )?(?:robot|bot|humain)|c'?est un (?:robot|bot))(?!\w)"
)
"""A lead asking who writes to them ("who is this?", "vous êtes qui ?", "is this a bot?")."""
_ASKS_IF_BOT = re.compile(
    r"(?<!\w)(?:(?:are you|is this|r u|am i (?:talking|speaking|chatting) (?:to|with)) (?:a |an |just a )?"
    r"(?:bot|robot|machine|ai|computer|chatbot)|"
    r"(?:c'?est|vous etes|es-tu|t'?es|etes[- ]vous|je parle a|je parle avec) (?:un |une )?"
    r"(?:robot|bot|ia|machine|chatbot|ordinateur))(?!\w)"
)
"""A lead asking whether a machine writes to them: told plainly, never handed off for it alone."""
BOT_DISCLOSURE = {
    "en": "Yes, I'm a virtual assistant: I ask the first questions so that an adviser can prepare "
    "your project. A member of the team can take over at any time, just ask.",
    "fr": "Oui, je suis un assistant virtuel : je pose les premières questions pour qu'un conseiller "
    "prépare votre projet. Un membre de l'équipe peut prendre le relais à tout moment, il suffit de "
    "le demander.",
}
"""The answer to "is this a bot?" (transparency about automated conversations: the lead is told
they write to a machine, and how to reach a person)."""
_ABOUT_US = {"en": "about the company", "fr": "à propos de votre société"}
"""What the knowledge base is asked instead: its entry about the company answers."""
_WHAT_ABOUT = re.compile(
    r"(?:(?:so|and|but|sorry|ok|alors|mais|euh|pardon|excusez-moi|et)\W+)?(?:"
    r"what(?:'?s|s| is| was)? (?:this|that|it|all this)(?: all| even)?(?: (?:about|for|regarding|re))?"
    r"|what (?:is|'s|s) (?:this|that|your) (?:company|business|firm|message|text|service|offer)(?: about)?"
    r"|what (?:do|does) (?:you|u|you guys|your (?:company|business|firm)) (?:do|sell|offer)"
    r"|what are (?:you|u) (?:about|selling|offering)"
    r"|c'?est (?:pour|a propos de|au sujet de|en rapport avec) quoi|c'?est pourquoi|c'?est a quel sujet"
    r"|c'?est quoi(?: (?:ce|cette|votre) (?:message|sms|texto|mail|truc|conversation|demande|societe|"
    r"entreprise|boite|activite|service))?"
    r"|c'?est quoi (?:le but|ce que vous faites|votre (?:metier|activite))|quel est le but"
    r"|de quoi (?:s'agit-il|il s'agit|ca parle)|il s'agit de quoi|ca (?:concerne|parle de) quoi"
    r"|vous (?:faites|vendez|proposez) quoi|qu'est-ce que (?:c'est|vous faites|vous vendez)|que faites-vous"
    r")(?: (?:exactly|then|again|here|please|exactement|au juste|donc|alors|la|svp|s'il vous plait))*\W*"
)
"""A lead asking what the conversation is about ("whats this abt", "c pour quoi exactement ?",
"c'est quoi ?"), matched in full (``fullmatch``) on a question sentence, folded, its greeting
left out: answered with the knowledge base's entry about the company (:data:`_ABOUT_US`). Linear:
alternatives of fixed words, read on one sentence of a message of at most :data:`MAX_CHARS`."""


def asks_what_about(sentence: str) -> bool:
    """Whether ``sentence`` (one sentence of a lead's message, SMS shorthand written out) only asks
    what the conversation or the business is about ("what's this about?", "c'est pour quoi ?")."""
    return _WHAT_ABOUT.fullmatch(_strip_greeting(fold(sentence[:MAX_CHARS]).strip())) is not None


_ASKS_OFFER = re.compile(
    r"(?:^|[,.!:;]\s*|(?<![\w'])(?:and|et|also|aussi|mais|but|so|alors|donc|hi|hello|bonjour|salut)\s+)"
    r"(?:do (?:you|u|ya)(?: guys)?(?: also| even)? "
    r"(?:do|install|fit|offer|sell|supply|provide|put in|work on)"
    r"|(?:can|could) (?:you|u)(?: also)? (?:do|install|fit|supply|put in)"
    r"|(?:est-ce que |est ce que |est-ce qu'|est ce qu')?(?:vous|vs)(?: nous)? "
    r"(?:faites|proposez|installez|posez|vendez|fournissez|realisez|traitez|gerez)"
    r"(?: aussi| egalement| meme)?"
    r"|(?:faites|proposez|installez|posez|vendez|realisez)[- ]vous(?: aussi| egalement)?"
    r") (?P<what>[a-z'-]+(?: [a-z'-]+){0,5}?)"
    r"(?: (?:too|as well|also|aussi|egalement|par hasard|svp|please|chez vous))?\W*$"
)
"""A question asking whether the business does something ("do you do plumbing?", "vous faites la
plomberie ?", "proposez-vous l'isolation des murs"): the words asked about (``what``), at most
six, to the end of the sentence. Matched on one folded sentence (at most :data:`MAX_CHARS`
characters); the repetitions are bounded, so the matching stays linear."""
_NOT_A_THING = frozenset(
    {
        "quoi", "what", "that", "this", "it", "ca", "cela", "ceci", "le", "la", "les", "one", "aussi",
        "tout", "everything", "anything", "rien", "comment", "how", "ou", "where", "quand", "when", "des",
        "du", "de", "un", "une", "weekends", "weekend", "saturdays", "sundays", "evenings", "nights",
        "samedi", "samedis", "dimanche", "dimanches", "soir", "week-end", "week-ends",
    }
)  # fmt: skip
"""Words that name nothing offered: "vous faites quoi ?" asks what the business is."""


_OFFER_VERB = re.compile(
    r"(?<![\w'])(do|install|fit|offer|sell|supply|provide|put in|work on|faites|proposez|installez|posez|"
    r"vendez|fournissez|realisez|traitez|gerez)(?![\w'])"
)
"""The verbs of :data:`_ASKS_OFFER`, folded: the last one before the thing asked about is the one
the question asks with ("do you do" -> "do")."""


@dataclass(frozen=True, slots=True)
class OfferQuestion:
    """A question asking whether the business does something: ``what``, the words asked about as
    the lead wrote them ("solar panels"); ``verb``, the verb asked with, folded ("install",
    "faites")."""

    what: str
    verb: str


def offer_question(text: str) -> OfferQuestion | None:
    """The first sentence of ``text`` (SMS shorthand written out; its first :data:`MAX_CHARS`
    characters) that asks whether the business does X ("do you install solar panels?"), read as
    :class:`OfferQuestion`; ``None`` when no sentence does."""
    for sentence in _sentences(text[:MAX_CHARS]):
        folded = fold(sentence)
        match = _ASKS_OFFER.search(folded)
        if match is None or len(folded) != len(sentence):
            continue
        said = re.findall(r"[a-z][a-z-]*", match.group("what").replace("'", " "))
        words = [w for w in said if w not in _NOT_A_THING and len(w) > 1]
        if words:
            verbs = _OFFER_VERB.findall(folded, match.start(), match.start("what"))
            what = sentence[match.start("what") : match.end("what")]
            return OfferQuestion(what, verbs[-1] if verbs else "do")
    return None


def asked_offer(text: str) -> str | None:
    """The words X of the first sentence of ``text`` (SMS shorthand written out) that asks whether
    the business does X ("do you do plumbing?" -> "plumbing"), as written; ``None`` when none."""
    found = offer_question(text)
    return found.what if found is not None else None


class RuleInterpreter:
    """Offline ``Interpreter``: :func:`read_message`, plus optional knowledge-base answers.

    ``clock``, ``timezone`` (IANA) and ``default_region`` (ISO 3166) anchor dates and phone
    numbers; pass the same values as the engine's ``Ports`` (the system clock otherwise). Phone
    numbers are read first with the lead's own country (from ``state.lead["phone"]`` and the
    time zone), then ``default_region``. ``detect_language(text) -> 'fr' | None`` sets
    ``Interpretation.language``. ``answer(question, language) -> str | None`` is awaited when the
    message asks something, in the language the conversation continues in
    (:func:`playbooks.language.follow_language`), then in the message's own language if that gave
    nothing; its result becomes ``Interpretation.answer``.
    """

    def __init__(
        self,
        *,
        detect_language: Callable[[str], str | None] | None = None,
        answer: Callable[[str, str], Awaitable[str | None]] | None = None,
        clock: Clock | None = None,
        timezone: str = "UTC",
        default_region: str | None = None,
    ) -> None:
        self._detect_language = detect_language
        self._answer = answer
        self._clock: Clock = clock or SystemClock()
        self._timezone = timezone
        self._default_region = default_region

    async def interpret(
        self,
        *,
        text: str,
        choice_id: str | None,
        ask: AskContext | None,
        open_slots: dict[str, str],
        state: ConversationState,
    ) -> Interpretation:
        """Read ``text`` against the asked slot (``ask`` and its ``others``) and ``open_slots``.

        The reading (language detection, slot parsing, dates) is CPU work over the lead's text: it
        runs in :data:`_READER`'s one thread, so one long message never holds the event loop that
        every tenant's webhooks share (issue 16), and the parsing libraries (dateparser, the Snowball
        stemmers, py3langid) are never entered by two readers at once."""
        now = float(self._clock.now())
        phone = state.lead.get("phone") if isinstance(state.lead.get("phone"), str) else None

        def read() -> tuple[str, Interpretation]:
            language = self._detect_language(text) if self._detect_language else None
            reading = language or state.language
            result = read_message(
                text,
                ask=ask,
                open_slots=open_slots,
                language=reading,
                now=now,
                timezone=self._timezone,
                default_region=self._default_region,
                regions=lead_regions(timezone=self._timezone, phone=phone),
                choice_id=choice_id,
            )
            result.language = language
            return reading, result

        reading, result = await _reader().call(read)
        if result.intent == "question":
            offer = offer_question(expand_shorthand(text, language=reading))
            if offer is not None:
                result.asks_offer, result.asks_offer_verb = offer.what, offer.verb
        if self._answer is not None and result.intent == "question":
            expanded = expand_shorthand(text, language=reading)
            questions = [s for s in _sentences(expanded) if _sentence_is_question(s)]
            question = " ".join(questions) or text
            # the reply is in the conversation's language (a short line in another one does not
            # switch it); the message's own language when the knowledge base has nothing in it
            replying = follow_language(
                current=state.language, lead_language=state.lead_language, detected=result.language, text=text
            ).language
            if _ASKS_IF_BOT.search(fold(question)):
                result.answer = BOT_DISCLOSURE.get(replying, BOT_DISCLOSURE["en"])
                return result
            about = [s for s in questions if asks_what_about(s)]
            if about or _WHO_ARE_YOU.search(fold(question)):
                # "who is this?", "what's this about?" are all function words to a search: ask the
                # knowledge base about us, and about what else the message asks
                rest = " ".join(s for s in questions if s not in about)
                question = _ABOUT_US.get(replying, _ABOUT_US["en"])
                answers = [await self._ask(question, replying, reading)]
                if about and rest:
                    answers.append(await self._ask(rest, replying, reading))
                result.answer = " ".join(a for a in dict.fromkeys(answers) if a) or None
                return result
            offers = [offer_question(s) for s in questions]
            if offers and all(offers):
                # "do you install solar panels?" asks about solar panels: the entry about them
                # answers, not the price entry the rest of the sentence would find
                question = " ".join(o.what for o in offers if o is not None)
            result.answer = await self._ask(question, replying, reading)
        return result

    async def _ask(self, question: str, replying: str, reading: str) -> str | None:
        """The knowledge base's answer to ``question`` in ``replying``, else in ``reading``."""
        assert self._answer is not None
        answer = await self._answer(question, replying)
        if answer is None and replying != reading:
            answer = await self._answer(question, reading)
        return answer
