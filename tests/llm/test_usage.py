"""Token cost, the tenant's monthly ledger and the monthly budget."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from app.ai.llm.budget import MonthlyBudget
from app.ai.llm.usage import (
    DEFAULT_PRICES,
    USAGE_COLLECTION,
    USAGE_SHARDS,
    USAGE_SHARDS_COLLECTION,
    ModelPrice,
    TurnUsage,
    UsageLedger,
    add_to_totals,
    cost_micro_usd,
    month_key,
    parse_prices,
    price_for,
)
from app.store.sqlite import SQLiteStore

NOV_2026 = 1_795_000_000.0  # 2026-11-17 UTC


class FixedClock:
    def __init__(self, now: float) -> None:
        self.t = now

    def now(self) -> float:
        return self.t


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "usage.db")
    yield s
    await s.close()


def test_cost_bills_cached_tokens_at_the_cached_rate_and_rounds_up() -> None:
    price = DEFAULT_PRICES["gpt-4o-mini"]
    cost = cost_micro_usd("gpt-4o-mini", prompt_tokens=2000, cached_tokens=1536, completion_tokens=100)
    micro_usd = (464 * price.prompt + 1536 * price.cached + 100 * price.completion) / 1_000_000
    assert cost == math.ceil(micro_usd)
    uncached = cost_micro_usd("gpt-4o-mini", prompt_tokens=2000, cached_tokens=0, completion_tokens=100)
    assert uncached > cost  # caching makes the same prompt cheaper
    assert cost_micro_usd("gpt-4o-mini", prompt_tokens=1, cached_tokens=0, completion_tokens=0) == 1


def test_dated_model_names_use_their_family_price_and_overrides_win() -> None:
    assert price_for("gpt-4o-mini-2024-07-18") == DEFAULT_PRICES["gpt-4o-mini"]
    assert price_for("gpt-4o-2024-08-06") == DEFAULT_PRICES["gpt-4o"]
    assert price_for("llama3.1:8b") is None
    assert cost_micro_usd("llama3.1:8b", prompt_tokens=10_000, cached_tokens=0, completion_tokens=500) == 0
    overrides = parse_prices({"llama3.1": [1_000_000, 0, 2_000_000]})
    assert price_for("llama3.1:8b", overrides) == ModelPrice(1_000_000, 0, 2_000_000)
    assert (
        cost_micro_usd(
            "llama3.1:8b", prompt_tokens=1000, cached_tokens=0, completion_tokens=500, overrides=overrides
        )
        == 2000
    )
    with pytest.raises(ValueError, match="3 non-negative"):
        parse_prices({"x": [1, 2]})


def test_conversation_totals_add_up() -> None:
    first = TurnUsage(
        model="m", calls=1, prompt_tokens=100, cached_tokens=0, completion_tokens=10, cost_micro_usd=7
    )
    fallback = TurnUsage(
        model="m", calls=2, prompt_tokens=50, completion_tokens=0, cost_micro_usd=3, fallback="malformed"
    )
    totals = add_to_totals(add_to_totals(None, first), fallback)
    assert totals == {
        "turns": 2,
        "calls": 3,
        "prompt_tokens": 150,
        "cached_tokens": 0,
        "completion_tokens": 10,
        "cost_micro_usd": 10,
        "fallbacks": 1,
    }


def test_month_key_is_utc() -> None:
    assert month_key(NOV_2026) == "2026-11"
    assert month_key(1_798_761_599.0) == "2026-12"  # 2026-12-31 23:59:59 UTC
    assert month_key(1_798_761_600.0) == "2027-01"


async def test_the_ledger_increments_the_month_in_transactions(store: SQLiteStore) -> None:
    ledger = UsageLedger(store, FixedClock(NOV_2026))
    turn = TurnUsage(
        model="gpt-4o-mini",
        calls=1,
        prompt_tokens=1000,
        cached_tokens=512,
        completion_tokens=50,
        cost_micro_usd=140,
    )
    await asyncio.gather(*(ledger.record("t1", turn) for _ in range(5)))
    await ledger.record("t1", TurnUsage(model="gpt-4o-mini", fallback="timeout"))
    month = await ledger.month("t1")
    assert (month["turns"], month["calls"], month["prompt_tokens"], month["cached_tokens"]) == (
        6,
        5,
        5000,
        2560,
    )
    assert month["cost_micro_usd"] == 700
    assert (month["fallbacks"], month["fallback_reasons"]) == (1, {"timeout": 1})
    assert await ledger.month("t2") == {"month": "2026-11", "cost_micro_usd": 0}  # per tenant
    assert await store.get("t1", USAGE_COLLECTION, "2026-11") is None  # no hot month document
    shards = await store.query("t1", USAGE_SHARDS_COLLECTION)
    assert 1 <= len(shards) <= USAGE_SHARDS
    assert sum(d.data["turns"] for d in shards) == 6


async def test_the_month_adds_totals_written_before_the_ledger_was_sharded(store: SQLiteStore) -> None:
    ledger = UsageLedger(store, FixedClock(NOV_2026), shards=2)
    legacy = {"month": "2026-11", "turns": 10, "cost_micro_usd": 900, "fallback_reasons": {"timeout": 2}}
    await store.set("t1", USAGE_COLLECTION, "2026-11", {**legacy, "budget_exceeded_logged": True})
    await ledger.record("t1", TurnUsage(model="m", calls=1, cost_micro_usd=100, fallback="timeout"))
    month = await ledger.month("t1")
    assert (month["turns"], month["cost_micro_usd"], month["fallback_reasons"]) == (11, 1000, {"timeout": 3})
    assert month["budget_exceeded_logged"] is True
    with pytest.raises(ValueError):
        UsageLedger(store, FixedClock(NOV_2026), shards=0)


async def test_over_budget_is_refused_and_logged_once_a_month(store: SQLiteStore) -> None:
    clock = FixedClock(NOV_2026)
    ledger = UsageLedger(store, clock)
    budget = MonthlyBudget(ledger, default_usd=0.001)  # 1000 micro-USD
    assert (await budget.check("t1")).allowed
    await ledger.record("t1", TurnUsage(model="m", calls=1, cost_micro_usd=1000))
    with capture_logs() as logs:
        checks = [await budget.check("t1") for _ in range(3)]
    assert not any(c.allowed for c in checks)
    assert checks[0].spent_micro_usd == 1000 and checks[0].budget_micro_usd == 1000
    assert [e["event"] for e in logs].count("llm.budget_exceeded") == 1
    clock.t = NOV_2026 + 31 * 86400  # next month: a fresh budget
    assert (await budget.check("t1")).allowed


async def test_a_tenant_budget_overrides_the_default(store: SQLiteStore) -> None:
    ledger = UsageLedger(store, FixedClock(NOV_2026))
    await ledger.record("rich", TurnUsage(model="m", calls=1, cost_micro_usd=2_000_000))
    await ledger.record("poor", TurnUsage(model="m", calls=1, cost_micro_usd=2_000_000))

    async def own(tenant_id: str) -> float | None:
        return 100.0 if tenant_id == "rich" else None

    budget = MonthlyBudget(ledger, default_usd=1.0, override=own)
    assert (await budget.check("rich")).allowed
    assert not (await budget.check("poor")).allowed
    with pytest.raises(ValueError):
        MonthlyBudget(ledger, default_usd=-1)
