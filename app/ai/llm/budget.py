"""The monthly LLM budget of a tenant: past it, the bot answers with the offline interpreter.

The default budget is the setting ``LLM_MONTHLY_BUDGET_USD``; ``override`` may return a tenant's own
budget (from its profile) or ``None`` to keep the default. A budget of 0 means "never call the model".
The breach is logged as ``llm.budget_exceeded`` once per tenant per month (see
:meth:`app.ai.llm.usage.UsageLedger.claim_budget_notice`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.ai.llm.usage import UsageLedger, month_key
from app.core.logs import get_logger

__all__ = ["BudgetCheck", "MonthlyBudget"]

log = get_logger("leadwarm.llm.budget")

BudgetOverride = Callable[[str], Awaitable[float | None]]


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """Whether the tenant may call the model this month; amounts in micro-USD."""

    allowed: bool
    spent_micro_usd: int
    budget_micro_usd: int


class MonthlyBudget:
    """Compares the month's recorded cost (``llm_usage/YYYY-MM``) with the tenant's budget."""

    def __init__(
        self, ledger: UsageLedger, *, default_usd: float, override: BudgetOverride | None = None
    ) -> None:
        if default_usd < 0:
            raise ValueError("the monthly budget cannot be negative")
        self.ledger = ledger
        self.default_usd = default_usd
        self.override = override

    async def budget_usd(self, tenant_id: str) -> float:
        """The tenant's monthly budget in USD (its own, else the default)."""
        own = await self.override(tenant_id) if self.override is not None else None
        return self.default_usd if own is None else max(0.0, float(own))

    async def check(self, tenant_id: str) -> BudgetCheck:
        """Read this month's spend; when it has reached the budget, log ``llm.budget_exceeded`` (once a
        month per tenant) and return ``allowed=False``."""
        budget = round(await self.budget_usd(tenant_id) * 1_000_000)
        month = await self.ledger.month(tenant_id)
        spent = int(month.get("cost_micro_usd", 0))
        allowed = spent < budget
        first_notice = not allowed and not month.get("budget_exceeded_logged")
        if first_notice and await self.ledger.claim_budget_notice(tenant_id):
            log.warning(
                "llm.budget_exceeded",
                tenant=tenant_id,
                month=month_key(self.ledger.clock.now()),
                spent_usd=spent / 1_000_000,
                budget_usd=budget / 1_000_000,
                action="falling back to the offline interpreter until next month",
            )
        return BudgetCheck(allowed=allowed, spent_micro_usd=spent, budget_micro_usd=budget)
