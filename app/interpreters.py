"""Which interpreter reads a tenant's leads: offline rules plus the tenant's knowledge base.

The GPT interpreter (issue 4) plugs in here when OPENAI_API_KEY is set; the offline one stays the
fallback when the model is slow, down or over budget.
"""

from __future__ import annotations

from typing import Any

from app.knowledge.repository import KnowledgeRepository
from app.nlu.language import detect_language
from playbooks import RuleInterpreter

__all__ = ["InterpreterDirectory"]


class InterpreterDirectory:
    """Builds the interpreter for a tenant (cheap: a few closures over shared indexes)."""

    def __init__(
        self, knowledge: KnowledgeRepository, *, clock: Any, languages: tuple[str, ...] = ("en", "fr")
    ) -> None:
        self.knowledge = knowledge
        self.clock = clock
        self.languages = languages

    async def for_lead(self, tenant_id: str, *, timezone: str, default_region: str | None) -> RuleInterpreter:
        """The offline interpreter bound to the tenant's knowledge base, reading dates in the
        lead's ``timezone`` (IANA) and phone numbers in ``default_region`` (ISO 3166)."""

        async def answer(question: str, language: str) -> str | None:
            return await self.knowledge.answer(tenant_id, question, language)

        def detect(text: str) -> str | None:
            return detect_language(text, supported=self.languages)

        return RuleInterpreter(
            detect_language=detect,
            answer=answer,
            clock=self.clock,
            timezone=timezone,
            default_region=default_region,
        )
