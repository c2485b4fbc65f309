"""Token usage and its cost: per call, per turn, per conversation and per tenant per month.

Figures come from the API's ``usage`` object (``prompt_tokens``, ``completion_tokens``,
``prompt_tokens_details.cached_tokens``; https://platform.openai.com/docs/api-reference/chat/object).
``prompt_tokens`` includes the cached ones, which are billed at the cached rate.

Costs are integers in micro-USD (1 USD = 1,000,000), computed from :data:`DEFAULT_PRICES`, in micro-USD
per 1 million tokens (OpenAI's list prices, https://openai.com/api/pricing/, standard tier), or from
overrides (setting ``LLM_PRICES``: ``{"model": [prompt, cached, completion]}`` in micro-USD per 1M
tokens). A model is matched to the longest price-table key it starts with (``gpt-4o-mini-2024-07-18``
-> ``gpt-4o-mini``); an unknown model (a self-hosted one) costs 0.

The tenant ledger is one month ``YYYY-MM`` (UTC) spread over counter shards: every turn adds to one
of :data:`USAGE_SHARDS` documents ``llm_usage_shards/{month}:{n}`` (``n`` at random) with
``FieldValue.increment`` (no transaction, no read), and a read sums them with the month's own document
``llm_usage/{month}`` (its flags, and the totals written before the ledger was sharded). Firestore
sustains about one write per second on one document ("Best practices", "Updates to a single
document", https://firebase.google.com/docs/firestore/best-practices), so a single month document
capped a tenant near one LLM turn per second across every instance; shards raise that to about
:data:`USAGE_SHARDS` per second, and reads cost one batch get of ``USAGE_SHARDS + 1`` documents.
"""

from __future__ import annotations

import random
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
    "USAGE_SHARDS",
    "USAGE_SHARDS_COLLECTION",
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
USAGE_SHARDS_COLLECTION = col.LLM_USAGE_SHARDS
#: Counter shards per tenant and month (each sustains about one write per second on Firestore).
USAGE_SHARDS = 8
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


def _sum_month(key: str, docs: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """The month's figures: the month document's fields with every shard's counters added."""
    out: dict[str, Any] = {"month": key, "cost_micro_usd": 0}
    for doc in docs:
        if not doc:
            continue
        for field_name, value in doc.items():
            if field_name in _SUMMED and isinstance(value, int | float):
                out[field_name] = int(out.get(field_name, 0)) + int(value)
            elif field_name == "fallback_reasons" and isinstance(value, Mapping):
                reasons = out.setdefault("fallback_reasons", {})
                for reason, count in value.items():
                    reasons[reason] = int(reasons.get(reason, 0)) + int(count)
            elif field_name == "updated_at" and isinstance(value, int | float):
                out["updated_at"] = max(float(value), float(out.get("updated_at", 0.0)))
            elif field_name not in out:
                out[field_name] = value
    return out


_SUMMED = frozenset((*_COUNTERS, "turns", "fallbacks"))


class UsageLedger:
    """The tenant's monthly usage: ``llm_usage/YYYY-MM`` plus its counter shards (module docstring).

    Fields of :meth:`month`: ``month``, ``calls``, ``turns``, ``prompt_tokens``, ``cached_tokens``,
    ``completion_tokens``, ``cost_micro_usd``, ``fallbacks`` (count), ``fallback_reasons``
    (``{reason: count}``), ``budget_exceeded_logged`` (bool), ``updated_at``.
    """

    def __init__(self, store: Store, clock: Clock, *, shards: int = USAGE_SHARDS) -> None:
        if shards < 1:
            raise ValueError("a usage ledger needs at least one shard")
        self.store = store
        self.clock = clock
        self.shards = shards

    async def month(self, tenant_id: str, month: str | None = None) -> dict[str, Any]:
        """The month's figures (the current month by default), summed over its shards in one batch
        read; ``{"month": key, "cost_micro_usd": 0}`` when nothing was recorded."""
        key = month or month_key(self.clock.now())
        refs = [
            (USAGE_COLLECTION, key),
            *((USAGE_SHARDS_COLLECTION, f"{key}:{n}") for n in range(self.shards)),
        ]
        return _sum_month(key, await self.store.get_many(tenant_id, refs))

    async def record(self, tenant_id: str, usage: TurnUsage) -> None:
        """Add one turn to the current month: one increment of one shard chosen at random (no
        transaction, no read, so concurrent turns of one tenant never contend)."""
        now = self.clock.now()
        key = month_key(now)
        deltas: dict[str, int | float] = {counter: int(getattr(usage, counter)) for counter in _COUNTERS}
        deltas["turns"] = 1
        if usage.fallback is not None:
            deltas["fallbacks"] = 1
            reason = usage.fallback.replace(".", "_") or "error"
            deltas[f"fallback_reasons.{reason}"] = 1
        shard = f"{key}:{random.randrange(self.shards)}"
        await self.store.increment(
            tenant_id, USAGE_SHARDS_COLLECTION, shard, deltas, fields={"month": key, "updated_at": now}
        )

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
