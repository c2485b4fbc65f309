"""Batch reads, counter increments and per-document serialisation, on every backend.

``get_many`` (one ``BatchGetDocuments`` on Firestore) and ``increment`` (``FieldValue.increment`` on
Firestore, a transaction on SQLite) keep the same contract on both stores. The last tests show what
replacing the per-tenant lock of the Firestore backend by per-document locks buys: transactions of
one tenant on different documents overlap in time, and those on one document still lose no update.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable

import pytest

from app.store import Store, StoreError, Transaction
from app.store import firestore as firestore_module
from app.store.firestore import FirestoreStore

pytestmark = pytest.mark.asyncio


async def test_get_many_follows_the_order_asked_with_none_for_missing(store: Store) -> None:
    await store.set("t1", "leads", "a", {"n": 1})
    await store.set("t1", "convs", "b", {"n": 2})
    await store.set("t2", "leads", "z", {"n": 9})
    refs = [("convs", "b"), ("leads", "missing"), ("leads", "a"), ("leads", "z")]
    assert await store.get_many("t1", refs) == [{"n": 2}, None, {"n": 1}, None]
    assert await store.get_many("t1", []) == []

    async def fn(tx: Transaction) -> list[dict[str, object] | None]:
        found = await tx.get_many(refs)
        tx.set("leads", "a", {"n": 3})
        return found

    assert await store.run_transaction("t1", fn) == [{"n": 2}, None, {"n": 1}, None]
    assert await store.get("t1", "leads", "a") == {"n": 3}


async def test_concurrent_increments_add_up(open_store: Callable[[], Store]) -> None:
    first, second = open_store(), open_store()  # two processes
    await asyncio.gather(
        *(
            backend.increment(
                "t1",
                "counters",
                "c:0",
                {"n": 1, "cost": 2.5, "reasons.timeout": 1},
                fields={"month": "2026-11"},
            )
            for backend in (first, second)
            for _ in range(10)
        )
    )
    await first.increment("t1", "counters", "c:0", {"reasons.malformed": 2})
    assert await second.get("t1", "counters", "c:0") == {
        "n": 20,
        "cost": 50.0,
        "reasons": {"timeout": 20, "malformed": 2},
        "month": "2026-11",
    }


async def test_increment_refuses_bad_deltas(store: Store) -> None:
    with pytest.raises(StoreError):
        await store.increment("t1", "counters", "c", {"a.b.c": 1})
    with pytest.raises(StoreError):
        await store.increment("t1", "counters", "c", {"n": "1"})  # type: ignore[dict-item]
    with pytest.raises(StoreError):
        await store.increment("t1", "counters", "c", {"n": True})
    assert await store.get("t1", "counters", "c") is None


async def test_transactions_on_different_documents_of_one_tenant_overlap(store: Store) -> None:
    if not isinstance(store, FirestoreStore):
        pytest.skip("SQLite runs one transaction at a time by design")
    count = 12
    for i in range(count):
        await store.set("t1", "conversations", f"c{i}", {"version": 0})
    inside, most_inside = 0, 0
    everyone_in = asyncio.Event()

    async def turn(i: int) -> None:
        async def fn(tx: Transaction) -> None:
            nonlocal inside, most_inside
            doc = await tx.get("conversations", f"c{i}")
            assert doc is not None
            inside += 1
            most_inside = max(most_inside, inside)
            if inside == count:
                everyone_in.set()
            # the turn's work while its transaction is open; one at a time per tenant would never
            # let the others in, so the wait is bounded
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(everyone_in.wait(), timeout=5.0)
            inside -= 1
            tx.set("conversations", f"c{i}", {"version": doc["version"] + 1})

        await store.run_transaction("t1", fn)

    await asyncio.gather(*(turn(i) for i in range(count)))
    assert most_inside == count  # every conversation's transaction was open at the same time
    for i in range(count):
        assert await store.get("t1", "conversations", f"c{i}") == {"version": 1}


async def test_contended_transactions_in_one_process_take_turns_without_firestore_aborts(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not isinstance(store, FirestoreStore):
        pytest.skip("Firestore's lock timeout only")
    aborts: list[int] = []
    backoff = firestore_module._backoff

    async def counting_backoff(attempt: int) -> None:  # called on every ABORTED from Firestore
        aborts.append(attempt)
        await backoff(attempt)

    monkeypatch.setattr(firestore_module, "_backoff", counting_backoff)
    await store.set("t1", "counters", "hot", {"n": 0})
    await store.set("t1", "counters", "other", {"n": 0})
    turns = itertools.count()

    async def incr(tx: Transaction) -> None:
        # two documents, read in opposite orders by half of the transactions: wait-die, no deadlock
        names = ["hot", "other"] if next(turns) % 2 else ["other", "hot"]
        docs = [await tx.get("counters", name) for name in names]
        for name, doc in zip(names, docs, strict=True):
            assert doc is not None
            tx.set("counters", name, {"n": doc["n"] + 1})

    await asyncio.gather(*(store.run_transaction("t1", incr) for _ in range(15)))
    # the store's statistics saw the contention: 15 transactions of this kind, the retries of those
    # that lost a wait-die conflict, waits on the two documents only, and no request outside them
    # but the two sets
    stats = store.stats.summary()
    kind = stats["kinds"][
        f"{test_contended_transactions_in_one_process_take_turns_without_firestore_aborts.__name__}.incr"
    ]
    assert kind["transactions"] == 15 and kind["aborted"] == 0
    assert kind["attempts"] == 15 + kind["died"]
    assert stats["lock_waits"] + kind["died"] > 0
    assert {path for path, _ in stats["hot"]} <= {"tenants/t1/counters/hot", "tenants/t1/counters/other"}
    assert stats["calls"] == {"set": 2}
    assert await store.get("t1", "counters", "hot") == {"n": 15}
    assert await store.get("t1", "counters", "other") == {"n": 15}
    # without the in-process locks, the transactions hold each other's read locks and the emulator
    # aborts them after its lock timeout (about 2 s each)
    assert aborts == []
