"""DURABILITY=power: a commit's caller returns only after an fsync of the WAL that began after the
commit; the sync runs outside the write lock (the next transaction commits during it), callers
that arrive during one sync share the next, and a failed sync is a StoreError (a webhook's 503)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import uvicorn

from app.composition import Runtime
from app.main import create_app
from app.messaging.ingest_log import message_record
from app.store import StoreError
from app.store.sqlite import SYNC_THREADS, SQLiteStore
from app.tenancy.bootstrap import bootstrap
from channels.base import InboundMessage
from tests.app.conftest import make_settings, sign, text_webhook


class GatedSync:
    """Stands in for the store's WAL sync: each sync waits for :meth:`open` (or fails with
    ``error``), records how many rows ``table`` held when it began, then runs the real sync."""

    def __init__(self, store: SQLiteStore, *, table: str, error: Exception | None = None) -> None:
        self.store = store
        self.table = table
        self.error = error
        self.gate = threading.Event()
        self.started = threading.Event()
        self.rows_at_start: list[int] = []
        self._real = store._fsync_wal

    def __call__(self) -> None:
        with sqlite3.connect(self.store.path) as conn:
            self.rows_at_start.append(conn.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0])
        self.started.set()
        if not self.gate.wait(10):
            raise TimeoutError("gate never opened")
        if self.error is not None:
            raise self.error
        self._real()

    def open(self) -> None:
        self.gate.set()


def _rows(store: SQLiteStore, table: str) -> int:
    """Rows of ``table`` committed, read by a connection of its own."""
    with sqlite3.connect(store.path) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


async def _until(predicate: Callable[[], bool], *, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.005)


async def test_a_power_commit_returns_after_a_sync_that_began_after_it(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite", durability="power")
    gated = GatedSync(store, table="docs")
    store._fsync_wal = gated  # type: ignore[method-assign]
    first = asyncio.create_task(store.set("t1", "leads", "a", {"n": 0}))
    await _until(gated.started.is_set)
    assert _rows(store, "docs") == 1 and gated.rows_at_start == [1]  # committed, then synced
    await asyncio.sleep(0.05)
    assert not first.done()  # ...and its caller waits for that sync
    # the next commits do not wait for the running sync to end: each idle sync thread syncs one
    writes = [first]
    for i in range(1, SYNC_THREADS):
        writes.append(asyncio.create_task(store.set("t1", "leads", f"b{i}", {"n": i})))
        await _until(lambda i=i: len(gated.rows_at_start) == i + 1)  # type: ignore[misc]
    assert gated.rows_at_start == list(range(1, SYNC_THREADS + 1))
    # with every sync thread busy, ten more transactions commit (the lock is free) and wait
    others = [asyncio.create_task(store.set("t1", "leads", f"c{i}", {"n": i})) for i in range(10)]
    await _until(lambda: _rows(store, "docs") == SYNC_THREADS + 10)
    await asyncio.sleep(0.05)
    assert not any(t.done() for t in [*writes, *others]) and len(gated.rows_at_start) == SYNC_THREADS
    gated.open()
    await asyncio.wait_for(asyncio.gather(*writes, *others), timeout=10)
    # the ten that came while every thread was busy shared one more sync, begun after all ten
    # (the last sync may end before the first ones do, and answer their callers too)
    await _until(lambda: store.wal_syncs == SYNC_THREADS + 1)
    assert gated.rows_at_start == [*range(1, SYNC_THREADS + 1), SYNC_THREADS + 10]
    await store.close()


async def test_process_durability_syncs_nothing(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite", durability="process")
    await asyncio.gather(*(store.set("t1", "leads", f"l{i}", {"n": i}) for i in range(5)))
    assert store.wal_syncs == 0 and not store.syncs_commits_apart
    await store.close()


async def test_a_failed_sync_is_a_store_error_for_every_waiter(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite", durability="power")
    gated = GatedSync(store, table="docs", error=OSError(5, "I/O error"))
    store._fsync_wal = gated  # type: ignore[method-assign]
    gated.open()
    with pytest.raises(StoreError, match="WAL sync failed: OSError"):
        await store.set("t1", "leads", "a", {"n": 0})
    gated.error = None  # the next sync works again
    await store.set("t1", "leads", "b", {"n": 1})
    assert store.wal_syncs == 1
    await store.close()


def _message(i: int) -> InboundMessage:
    return InboundMessage(
        channel="whatsapp",
        provider_message_id=f"wamid.power.{i}",
        sender=f"+3361200{i:04d}",
        recipient="106540352242922",
        text="hello",
    )


@pytest.fixture
async def power_runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = Runtime.build(make_settings(tmp_path / "data", "http://127.0.0.1:9", durability="power"))
    await bootstrap(rt)
    yield rt
    await rt.channels.aclose()
    await rt.store.close()


async def test_the_next_ingest_group_commits_while_the_last_one_syncs(power_runtime: Runtime) -> None:
    store = power_runtime.store
    assert isinstance(store, SQLiteStore) and store.syncs_commits_apart
    gated = GatedSync(store, table="ingest_log")
    store._fsync_wal = gated  # type: ignore[method-assign]
    now = power_runtime.clock.now()
    first = asyncio.create_task(power_runtime.ingest.append([message_record("demo", _message(0), at=now)]))
    await _until(gated.started.is_set)
    assert _rows(store, "ingest_log") == 1
    # a second group commits while the first group's sync is in flight, and is not answered either
    second = asyncio.create_task(
        power_runtime.ingest.append([message_record("demo", _message(i), at=now) for i in (1, 2)])
    )
    await _until(lambda: _rows(store, "ingest_log") == 3)
    await asyncio.sleep(0.05)
    assert not first.done() and not second.done()
    gated.open()
    assert await asyncio.wait_for(first, timeout=10) == [True]
    assert await asyncio.wait_for(second, timeout=10) == [True, True]
    assert power_runtime.ingest.groups == 2
    assert gated.rows_at_start == [1, 3]  # two syncs since the gate was put in (one a group)


@contextlib.asynccontextmanager
async def _serve(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The app served by uvicorn on 127.0.0.1 (ephemeral port), and a client; stopped after."""
    app = create_app(runtime=runtime, start_worker=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http
    finally:
        server.should_exit = True
        await task


async def test_a_webhook_whose_sync_fails_gets_503_and_its_redelivery_200(power_runtime: Runtime) -> None:
    store = power_runtime.store
    assert isinstance(store, SQLiteStore)
    async with _serve(power_runtime) as http:
        gated = GatedSync(store, table="ingest_log", error=OSError(5, "I/O error"))
        gated.open()
        store._fsync_wal = gated  # type: ignore[method-assign]
        body = text_webhook("hello", wamid="wamid.power.fail")
        refused = await http.post("/api/webhooks/whatsapp", content=body, headers=sign(body))
        assert refused.status_code == 503
        assert refused.json() == {"error": "temporarily unavailable"}
        gated.error = None  # the provider delivers again: the entry is there already, now synced
        again = await http.post("/api/webhooks/whatsapp", content=body, headers=sign(body))
        assert again.status_code == 200
        assert again.json() == {"messages": 0, "duplicates": 1, "statuses": 0}
        assert _rows(store, "ingest_log") == 1


async def test_the_writer_starts_the_sync_without_the_event_loop(tmp_path: Path) -> None:
    """The writer thread wakes the sync thread after a commit: the sync begins while the event
    loop is blocked (no trip through the loop between COMMIT and fdatasync)."""
    store = SQLiteStore(tmp_path / "db.sqlite", durability="power")
    gated = GatedSync(store, table="docs")
    store._fsync_wal = gated  # type: ignore[method-assign]
    write = asyncio.create_task(store.set("t1", "leads", "a", {"n": 0}))
    await asyncio.sleep(0)  # the hand-off is queued; from here on the loop is held
    started = gated.started.wait(5)  # blocks the loop's thread: only the writer can start it
    assert started and gated.rows_at_start == [1]
    gated.open()
    await asyncio.wait_for(write, timeout=10)
    assert store.wal_syncs == 1
    await store.close()


async def test_a_caller_whose_commits_are_synced_returns_without_a_sync(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite", durability="power")
    await store.set("t1", "leads", "a", {"n": 0})
    assert store.wal_syncs == 1
    await store.sync_commits()  # nothing committed since: no sync, no wait
    await store.get("t1", "leads", "a")
    await store.sync_commits()
    assert store.wal_syncs == 1
    await store.set("t1", "leads", "a", {"n": 0})  # rewritten as it was: still a change, synced
    assert store.wal_syncs == 2
    await store.close()


async def test_a_failed_sync_is_tried_again_by_the_next_caller(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite", durability="power")
    gated = GatedSync(store, table="docs", error=OSError(5, "I/O error"))
    store._fsync_wal = gated  # type: ignore[method-assign]
    gated.open()
    with pytest.raises(StoreError, match="WAL sync failed: OSError"):
        await store.set("t1", "leads", "a", {"n": 0})
    with pytest.raises(StoreError):  # still failing: asked again, failed again
        await store.sync_commits()
    assert store.wal_syncs == 0
    gated.error = None
    await asyncio.wait_for(store.sync_commits(), timeout=10)  # no new commit, yet a new sync
    assert store.wal_syncs == 1 and len(gated.rows_at_start) >= 3  # one try or more per failing call
    await store.close()
    assert not any(thread.is_alive() for thread in store._sync_threads)
