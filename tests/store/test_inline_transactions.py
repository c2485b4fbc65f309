"""``run_transaction(..., inline=True)``: the same results as an ordinary transaction on every
backend; on SQLite, inline transactions that queue together share one hand-off and one commit,
each in a savepoint of its own."""

from __future__ import annotations

import asyncio
import contextvars
from pathlib import Path

import pytest

from app.store import DocumentExistsError, Store, Transaction
from app.store.sqlite import SQLiteStore

_who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


async def _increment(store: Store, tenant: str, *, inline: bool) -> int:
    async def fn(tx: Transaction) -> int:
        doc = await tx.get("counters", "c")
        value = (doc or {}).get("n", 0) + 1
        tx.set("counters", "c", {"n": value})
        return int(value)

    return await store.run_transaction(tenant, fn, inline=inline)


async def test_inline_transactions_read_their_own_data_and_commit(store: Store) -> None:
    assert await _increment(store, "t1", inline=True) == 1
    assert await _increment(store, "t1", inline=False) == 2
    assert await _increment(store, "t1", inline=True) == 3
    assert await store.get("t1", "counters", "c") == {"n": 3}
    assert await store.get("t2", "counters", "c") is None  # scoped to its tenant


async def test_an_inline_transaction_that_raises_writes_nothing(store: Store) -> None:
    async def fn(tx: Transaction) -> None:
        tx.set("notes", "a", {"x": 1})
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await store.run_transaction("t1", fn, inline=True)
    assert await store.get("t1", "notes", "a") is None


async def test_an_inline_transaction_may_await_something_else(store: Store) -> None:
    """A function that suspends on something else than its reads still commits, once."""
    runs: list[int] = []

    async def fn(tx: Transaction) -> str:
        runs.append(1)
        before = await tx.get("notes", "a")
        await asyncio.sleep(0)
        tx.set("notes", "a", {"seen": before is not None})
        return "ok"

    assert await store.run_transaction("t1", fn, inline=True) == "ok"
    assert await store.get("t1", "notes", "a") == {"seen": False}
    assert 1 <= len(runs) <= 2  # SQLite runs it again the ordinary way


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "inline.db")


async def test_concurrent_inline_transactions_share_commits(sqlite_store: SQLiteStore) -> None:
    """Fifty increments started together all count (serialisable: each reads the one before)
    and take far fewer commits than fifty."""
    store = sqlite_store
    try:
        before = store.commits
        values = await asyncio.gather(*(_increment(store, "t1", inline=True) for _ in range(50)))
        assert sorted(values) == list(range(1, 51))
        assert await store.get("t1", "counters", "c") == {"n": 50}
        assert store.commits - before < 10, store.commits - before
    finally:
        await store.close()


async def test_a_failing_member_of_a_group_is_rolled_back_alone(sqlite_store: SQLiteStore) -> None:
    store = sqlite_store
    try:
        await store.set("t1", "notes", "taken", {"x": 0})

        async def create(doc_id: str) -> None:
            async def fn(tx: Transaction) -> None:
                tx.set("notes", f"{doc_id}-side", {"x": 1})
                tx.create("notes", doc_id, {"x": 1})

            await store.run_transaction("t1", fn, inline=True)

        results = await asyncio.gather(
            create("a"),
            create("taken"),
            create("b"),
            _increment(store, "t2", inline=True),
            return_exceptions=True,
        )
        assert results[0] is None and results[2] is None and results[3] == 1
        assert isinstance(results[1], DocumentExistsError)
        assert await store.get("t1", "notes", "taken-side") is None  # its other write went too
        assert await store.get("t1", "notes", "a-side") == {"x": 1}
        assert await store.get("t1", "notes", "b") == {"x": 1}
    finally:
        await store.close()


async def test_inline_transactions_keep_their_callers_context(sqlite_store: SQLiteStore) -> None:
    store = sqlite_store
    try:

        async def as_(name: str) -> str:
            _who.set(name)

            async def fn(tx: Transaction) -> str:
                tx.set("notes", name, {"by": _who.get()})
                return _who.get()

            return await store.run_transaction("t1", fn, inline=True)

        assert await asyncio.gather(as_("ann"), as_("bob")) == ["ann", "bob"]
        assert await store.get("t1", "notes", "bob") == {"by": "bob"}
    finally:
        await store.close()


async def test_an_inline_transaction_runs_off_the_event_loop(sqlite_store: SQLiteStore) -> None:
    """Its function runs on the writer thread (the event loop's thread is free meanwhile)."""
    import threading

    store = sqlite_store
    try:
        threads: list[str] = []

        async def fn(tx: Transaction) -> None:
            await tx.get("notes", "a")
            threads.append(threading.current_thread().name)

        await store.run_transaction("t1", fn, inline=True)
        assert threads and threads[0].startswith("sqlite-writer")
    finally:
        await store.close()
