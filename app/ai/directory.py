"""Which interpreter reads a tenant's leads: GPT when OPENAI_API_KEY is set, offline rules otherwise.

The offline interpreter (rules plus the tenant's knowledge base) is always built: it is the GPT
interpreter's fallback when the model is slow, down, malformed or over the tenant's monthly budget.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from app.ai.knowledge.repository import KnowledgeRepository
from app.ai.knowledge.stats import record_kb_usage
from app.ai.language import detect_language
from app.ai.llm.budget import MonthlyBudget
from app.ai.llm.client import LlmConfig, TurnAnalyzer
from app.ai.llm.interpreter import GptInterpreter
from app.ai.llm.usage import UsageLedger
from app.authoring.repository import PlaybookRepository
from app.core.settings import Settings
from app.store import Store
from kernel.clock import Clock
from playbooks import RuleInterpreter
from playbooks.runtime import Interpreter

__all__ = ["InterpreterDirectory"]

BudgetOverride = Callable[[str], Awaitable[float | None]]


class InterpreterDirectory:
    """Builds the interpreter for a lead's turn (cheap: closures over shared indexes and one HTTP client).

    The GPT interpreter is used when ``settings`` hold an ``OPENAI_API_KEY`` and ``store`` and
    ``playbooks`` are given; ``budget_override(tenant_id)`` may return a tenant's own monthly budget in
    USD (``None``: the ``LLM_MONTHLY_BUDGET_USD`` default).
    """

    def __init__(
        self,
        knowledge: KnowledgeRepository,
        *,
        clock: Clock,
        languages: tuple[str, ...] = ("en", "fr"),
        settings: Settings | None = None,
        store: Store | None = None,
        playbooks: PlaybookRepository | None = None,
        budget_override: BudgetOverride | None = None,
        llm: LlmConfig | None = None,
    ) -> None:
        self.knowledge = knowledge
        self.clock = clock
        self.languages = languages
        self.store = store
        self.playbooks = playbooks
        config = llm or (LlmConfig.from_settings(settings) if settings is not None else None)
        self.llm = config if store is not None and playbooks is not None else None
        self.analyzer: TurnAnalyzer | None = None
        self.ledger: UsageLedger | None = None
        self.budget: MonthlyBudget | None = None
        if self.llm is not None and store is not None:
            self.analyzer = TurnAnalyzer(self.llm)
            self.ledger = UsageLedger(store, clock)
            self.budget = MonthlyBudget(
                self.ledger, default_usd=self.llm.monthly_budget_usd, override=budget_override
            )

    @property
    def uses_model(self) -> bool:
        """Whether turns go to the model first."""
        return self.analyzer is not None

    def offline(
        self, tenant_id: str, *, timezone: str, default_region: str | None, conversation_id: str | None = None
    ) -> RuleInterpreter:
        """The offline interpreter bound to the tenant's knowledge base, reading dates in the lead's
        ``timezone`` (IANA) and phone numbers in ``default_region`` (ISO 3166). An answer it takes
        from the knowledge base counts as a use of that entry in ``conversation_id``."""

        async def answer(question: str, language: str) -> str | None:
            entry = await self.knowledge.best_entry(tenant_id, question, language)
            if entry is None:
                return None
            if conversation_id is not None:
                await record_kb_usage(
                    self.knowledge.store, tenant_id, entry.id, conversation_id=conversation_id
                )
            return entry.response

        def detect(text: str) -> str | None:
            return detect_language(text, supported=self.languages)

        return RuleInterpreter(
            detect_language=detect,
            answer=answer,
            clock=self.clock,
            timezone=timezone,
            default_region=default_region,
        )

    async def for_lead(
        self,
        tenant_id: str,
        *,
        timezone: str,
        default_region: str | None,
        conversation_id: str | None = None,
        channel: str = "webchat",
    ) -> Interpreter:
        """The interpreter for one turn: :class:`GptInterpreter` (offline fallback inside) when a key is
        set, else the offline one. ``conversation_id`` puts the last messages in the prompt; ``channel``
        sets the reply length the guardrails allow."""
        offline = self.offline(
            tenant_id, timezone=timezone, default_region=default_region, conversation_id=conversation_id
        )
        if self.analyzer is None or self.ledger is None or self.budget is None:
            return offline
        assert self.store is not None and self.playbooks is not None
        return GptInterpreter(
            tenant_id=tenant_id,
            analyzer=self.analyzer,
            fallback=offline,
            store=self.store,
            knowledge=self.knowledge,
            playbooks=self.playbooks,
            ledger=self.ledger,
            budget=self.budget,
            clock=self.clock,
            timezone=timezone,
            default_region=default_region,
            channel=channel,
            conversation_id=conversation_id,
            languages=self.languages,
        )

    async def aclose(self) -> None:
        """Close the model's HTTP client (call on shutdown)."""
        if self.analyzer is not None:
            await self.analyzer.aclose()
