"""Token usage and its cost: per call, per turn, per conversation and per tenant per month.

Figures come from the API's ``usage`` object (``prompt_tokens``, ``completion_tokens``,
``prompt_tokens_details.cached_tokens``; https://platform.openai.com/docs/api-reference/chat/object).
``prompt_tokens`` includes the cached ones, which are billed at the cached rate.

Costs are integers in micro-USD (1 USD = 1,000,000), computed from :data:`DEFAULT_PRICES`, in micro-USD
per 1 million tokens (OpenAI's list prices, https://openai.com/api/pricing/, standard tier), or from
overrides (setting ``LLM_PRICES``: ``{"model": [prompt, cached, completion]}`` in micro-USD per 1M
tokens). A model is matched to the longest price-table key it starts with (``gpt-4o-mini-2024-07-18``
-> ``gpt-4o-mini``); an unknown model (a self-hosted one) costs 0.

The tenant ledger is collection ``llm_usage``, one document per month ``YYYY-MM`` (UTC), incremented
in a transaction.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.store import Store, Transaction
from app.store import collections as col
from kernel.clock import Clock

__all__ = [
    "DEFAULT_PRICES",
    "USAGE_COLLECTION",
    "ModelPrice",
    "TurnUsage",
    "UsageLedger",
    "add_to_totals",
    "cost_micro_usd",
    "month_key",
    "parse_prices",
    "price_for",
]

USAGE_COLLECTION = col.LLM_USAGE
_PER_TOKENS = 1_000_000


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Prices in micro-USD per 1 million tokens: uncached prompt, cached prompt, completion."""

    prompt: int
    cached: int
    completion: int


#: List prices (USD per 1M tokens x 1,000,000), https://openai.com/api/pricing/ (standard tier).
DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4o-mini": ModelPrice(150_000, 75_000, 600_000),
    "gpt-4o": ModelPrice(2_500_000, 1_250_000, 10_000_000),
    "gpt-4.1-nano": ModelPrice(100_000, 25_000, 400_000),
    "gpt-4.1-mini": ModelPrice(400_000, 100_000, 1_600_000),
    "gpt-4.1": ModelPrice(2_000_000, 500_000, 8_000_000),
    "gpt-5-nano": ModelPrice(50_000, 5_000, 400_000),
    "gpt-5-mini": ModelPrice(250_000, 25_000, 2_000_000),
    "gpt-5": ModelPrice(1_250_000, 125_000, 10_000_000),
}


def parse_prices(raw: Mapping[str, Sequence[int]] | None) -> dict[str, ModelPrice]:
    """``{"model": [prompt, cached, completion]}`` (micro-USD per 1M tokens) -> price table.

    Raises :class:`ValueError` when an entry does not hold three non-negative integers.
    """
    table: dict[str, ModelPrice] = {}
    for model, values in (raw or {}).items():
        if len(values) != 3 or any(int(v) != v or v < 0 for v in values):
            raise ValueError(f"price of {model!r} must be 3 non-negative integers (micro-USD per 1M tokens)")
        table[model] = ModelPrice(int(values[0]), int(values[1]), int(values[2]))
    return table


def price_for(model: str, overrides: Mapping[str, ModelPrice] | None = None) -> ModelPrice | None:
    """The price of ``model``: overrides first, then :data:`DEFAULT_PRICES`; longest prefix wins."""
    for table in (overrides or {}, DEFAULT_PRICES):
        if model in table:
            return table[model]
        prefixes = [key for key in table if model.startswith(key)]
        if prefixes:
            return table[max(prefixes, key=len)]
    return None


def cost_micro_usd(
    model: str,
    *,
    prompt_tokens: int,
    cached_tokens: int,
    completion_tokens: int,
    overrides: Mapping[str, ModelPrice] | None = None,
) -> int:
    """Cost of one call in micro-USD, rounded up; 0 for a model without a price."""
    price = price_for(model, overrides)
    if price is None:
        return 0
    cached = min(max(cached_tokens, 0), prompt_tokens)
    scaled = (
        (prompt_tokens - cached) * price.prompt + cached * price.cached + completion_tokens * price.completion
    )
    return -(-scaled // _PER_TOKENS)


@dataclass(frozen=True, slots=True)
class TurnUsage:
    """What one lead turn spent on the model (all its calls), or why it did not use the model.

    ``fallback`` names why the offline interpreter answered instead (``timeout``, ``rate_limited``,
    ``server_error``, ``connection``, ``malformed``, ``deadline``, ``budget_exceeded``, ``api_error``,
    ``error``), ``None`` when the model's analysis was used.
    """

    model: str
    calls: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    cost_micro_usd: int = 0
    fallback: str | None = None
    regenerated: bool = False

    def as_doc(self) -> dict[str, Any]:
        """JSON-compatible dict."""
        return {
            "model": self.model,
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_micro_usd": self.cost_micro_usd,
            "fallback": self.fallback,
            "regenerated": self.regenerated,
        }


_COUNTERS = ("calls", "prompt_tokens", "cached_tokens", "completion_tokens", "cost_micro_usd")


def add_to_totals(totals: Mapping[str, Any] | None, usage: TurnUsage) -> dict[str, Any]:
    """Conversation totals after one more turn: a new dict with ``turns``, ``calls``,
    ``prompt_tokens``, ``cached_tokens``, ``completion_tokens``, ``cost_micro_usd`` and ``fallbacks``
    (turns the offline path answered) summed. ``totals`` is left unchanged."""
    out: dict[str, Any] = {key: int((totals or {}).get(key, 0)) for key in (*_COUNTERS, "turns", "fallbacks")}
    out["turns"] += 1
    for key in _COUNTERS:
        out[key] += int(getattr(usage, key))
    if usage.fallback is not None:
        out["fallbacks"] += 1
    return out


def month_key(now: float) -> str:
    """``YYYY-MM`` of ``now`` (seconds since the epoch) in UTC."""
    return time.strftime("%Y-%m", time.gmtime(now))


class UsageLedger:
    """The tenant's monthly usage documents (``llm_usage/YYYY-MM``).

    Document fields: ``month``, ``calls``, ``turns``, ``prompt_tokens``, ``cached_tokens``,
    ``completion_tokens``, ``cost_micro_usd``, ``fallbacks`` (count), ``fallback_reasons``
    (``{reason: count}``), ``budget_exceeded_logged`` (bool), ``updated_at``.
    """

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def month(self, tenant_id: str, month: str | None = None) -> dict[str, Any]:
        """The month's document (the current month by default); zeros when nothing was recorded."""
        key = month or month_key(self.clock.now())
        data = await self.store.get(tenant_id, USAGE_COLLECTION, key)
        return dict(data) if data else {"month": key, "cost_micro_usd": 0}

    async def record(self, tenant_id: str, usage: TurnUsage) -> dict[str, Any]:
        """Add one turn to the current month, in a transaction; returns the updated document."""
        now = self.clock.now()
        key = month_key(now)

        async def fn(tx: Transaction) -> dict[str, Any]:
            data: dict[str, Any] = dict(await tx.get(USAGE_COLLECTION, key) or {"month": key})
            for counter in _COUNTERS:
                data[counter] = int(data.get(counter, 0)) + int(getattr(usage, counter))
            data["turns"] = int(data.get("turns", 0)) + 1
            if usage.fallback is not None:
                data["fallbacks"] = int(data.get("fallbacks", 0)) + 1
                reasons = dict(data.get("fallback_reasons") or {})
                reasons[usage.fallback] = int(reasons.get(usage.fallback, 0)) + 1
                data["fallback_reasons"] = reasons
            data["updated_at"] = now
            tx.set(USAGE_COLLECTION, key, data)
            return data

        return await self.store.run_transaction(tenant_id, fn)

    async def claim_budget_notice(self, tenant_id: str) -> bool:
        """Mark this month's budget breach as logged; ``True`` only for the first caller of the month
        (across processes: the flag lives in the month's document, set in a transaction)."""
        key = month_key(self.clock.now())

        async def fn(tx: Transaction) -> bool:
            data: dict[str, Any] = dict(await tx.get(USAGE_COLLECTION, key) or {"month": key})
            if data.get("budget_exceeded_logged"):
                return False
            data["budget_exceeded_logged"] = True
            tx.set(USAGE_COLLECTION, key, data)
            return True

        return await self.store.run_transaction(tenant_id, fn)
