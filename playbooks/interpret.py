"""The offline interpreter: reads a lead's message with rules, no model and no network.

It implements the ``Interpreter`` port of :mod:`playbooks.runtime`. The asked slot is read with
:func:`playbooks.slots.parse_slot`; e-mail addresses and phone numbers in the message also fill
any other open slot of that kind. Intents: ``wants_human``, ``not_interested``, ``question``,
else ``answer``. Questions go to an optional knowledge-base ``answer`` callable.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from kernel.clock import Clock, SystemClock
from playbooks.runtime import AskContext, ConversationState, Interpretation
from playbooks.slots import fold, parse_slot

__all__ = ["RuleInterpreter", "detect_intent", "looks_like_question"]

_HUMAN = [
    "human", "real person", "a person", "an agent", "agent", "someone real", "speak to someone",
    "talk to someone", "speak with someone", "talk with someone", "representative", "operator",
    "conseiller", "conseillere", "quelqu'un", "une personne", "un humain", "une vraie personne",
    "parler a", "un agent", "un commercial", "un technicien",
]  # fmt: skip
_NOT_INTERESTED = [
    "not interested", "no longer interested", "no thanks", "no thank you", "leave me alone",
    "unsubscribe", "pas interesse", "pas interessee", "plus interesse", "plus interessee",
    "ne m'interesse pas", "ca ne m'interesse", "non merci", "laissez-moi tranquille",
    "laissez moi tranquille",
]  # fmt: skip
_QUESTION_START = re.compile(
    r"^(?:what|how|why|when|where|who|which|whose|can|could|do|does|did|is|are|will|would|should|may|"
    r"combien|comment|quel|quelle|quels|quelles|pourquoi|quand|ou|qui|que|qu'est|est-ce|est ce|pouvez|"
    r"peut-on|peut on|puis-je|puis je|avez|faites|proposez|acceptez)(?!\w)"
)


def _has(folded: str, phrases: list[str]) -> bool:
    return any(re.search(r"(?<![\w'])" + re.escape(p) + r"(?!\w)", folded) for p in phrases)


def looks_like_question(text: str) -> bool:
    """A question mark anywhere, or a question word first (what, how, combien, comment, quel...)."""
    folded = fold(text).strip()
    return "?" in folded or bool(_QUESTION_START.match(folded))


def detect_intent(text: str) -> str:
    """``wants_human``, ``not_interested``, ``question`` or ``answer`` (French and English cues)."""
    folded = fold(text)
    if _has(folded, _HUMAN):
        return "wants_human"
    if _has(folded, _NOT_INTERESTED):
        return "not_interested"
    if looks_like_question(text):
        return "question"
    return "answer"


class RuleInterpreter:
    """Offline ``Interpreter``: rules from :mod:`playbooks.slots`, optional knowledge-base answers.

    ``clock``, ``timezone`` (IANA) and ``default_region`` (ISO 3166) anchor dates and phone
    numbers; pass the same values as the engine's ``Ports`` (the system clock otherwise).
    ``detect_language(text) -> 'fr' | None`` sets ``Interpretation.language``.
    ``answer(question, language) -> str | None`` is awaited when the message is a question or
    does not fill the asked slot; its result becomes ``Interpretation.answer``.
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
        """Read ``text`` against the asked slot (``ask``) and the other ``open_slots``."""
        language = self._detect_language(text) if self._detect_language else None
        reading = language or state.language
        options: dict[str, Any] = {
            "language": reading,
            "now": self._clock.now(),
            "timezone": self._timezone,
            "default_region": self._default_region,
        }
        slots: dict[str, Any] = {}
        evidence: dict[str, str] = {}
        if ask is not None:
            labels = {c.id: [c.title, *ask.choice_synonyms.get(c.id, [])] for c in ask.choices}
            parsed = parse_slot(ask.kind, text, choices=labels, choice_id=choice_id, **options)
            if parsed is not None:
                slots[ask.slot] = parsed.value
                evidence[ask.slot] = parsed.evidence
        for slot, kind in open_slots.items():
            if slot in slots or kind not in ("email", "phone"):
                continue
            parsed = parse_slot(kind, text, **options)
            if parsed is not None and parsed.evidence not in evidence.values():
                slots[slot] = parsed.value
                evidence[slot] = parsed.evidence
        intent = detect_intent(text)
        reply: str | None = None
        # Only a real question goes to the knowledge base: "Hi, solar panels please" is not one,
        # and answering it from the nearest entry would be a non sequitur.
        wants_answer = intent == "question"
        if self._answer is not None and wants_answer and intent not in ("wants_human", "not_interested"):
            reply = await self._answer(text, reading)
        return Interpretation(language=language, intent=intent, slots=slots, evidence=evidence, answer=reply)
