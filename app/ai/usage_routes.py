"""Model usage API: ``GET /api/v1/usage`` (tokens, cost and budget of a month). Admin key required."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from app.ai.llm.usage import UsageLedger
from app.composition import Runtime

__all__ = ["ROUTES"]


@get("/api/v1/usage", summary="The tenant's model usage and cost for a month")
async def get_usage(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    month: Annotated[str | None, QueryParameter(pattern=r"^\d{4}-\d{2}$")] = None,
) -> dict[str, Any]:
    """Tokens and cost of ``month`` (``YYYY-MM``, default: this month, UTC), with the budget."""
    ledger = UsageLedger(runtime.store, runtime.clock)
    data = await ledger.month(tenant_id, month)
    profile = await runtime.tenants.profile(tenant_id)
    budget = profile.llm_monthly_budget_usd
    if budget is None:
        budget = runtime.settings.llm_monthly_budget_usd
    return {**data, "cost_usd": int(data.get("cost_micro_usd", 0)) / 1_000_000, "budget_usd": budget}


ROUTES = (get_usage,)
