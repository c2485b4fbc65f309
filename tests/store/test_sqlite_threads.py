"""The embedded store keeps the event loop free, honours DURABILITY, and appends the ingest log in
one commit per call, idempotently."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from app.composition import open_store
from app.core.settings import Settings
from app.store import LogRecord, Transaction
from app.store.sqlite import SQLiteStore


async def test_a_write_waiting_for_the_file_lock_does_not_block_the_event_loop(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite", busy_timeout_s=5.0)
    other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    tick_task = asyncio.create_task(ticker())
    write = asyncio.create_task(store.set("t1", "leads", "l1", {"name": "A"}))
    await asyncio.sleep(0.5)
    assert not write.done()  # waiting for the lock, on the writer thread...
    assert ticks >= 20  # ...while the loop kept running (a blocking call would have frozen it)
    other.execute("COMMIT")
    await asyncio.wait_for(write, timeout=5)
    tick_task.cancel()
    assert await store.get("t1", "leads", "l1") == {"name": "A"}
    other.close()
    await store.close()


@pytest.mark.parametrize(("durability", "syncs"), [("process", 0), ("power", 1)])
async def test_durability_sets_synchronous(tmp_path: Path, durability: str, syncs: int) -> None:
    settings = Settings(_env_file=None, leadwarm_data_dir=tmp_path, durability=durability)  # type: ignore[arg-type]
    store = open_store(settings)
    assert isinstance(store, SQLiteStore)
    # NORMAL=1 in both: power syncs the WAL after the commit itself (sync_commits), not in COMMIT
    assert store._writer.execute("PRAGMA synchronous").fetchone()[0] == 1
    assert store._writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    await store.set("t1", "c", "d", {"v": 1})
    assert store.wal_syncs == syncs  # the write returned after its sync (power) or with none
    await store.close()
    with pytest.raises(ValueError, match="durability"):
        SQLiteStore(tmp_path / "x.db", durability="disk")  # type: ignore[arg-type]


async def test_append_log_is_one_commit_idempotent_and_runs_on_new_inside_it(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    await store.set("t1", "inbox", "seen-already", {"x": 1})
    before = store.commits
    calls: list[str] = []

    async def on_new(tx: Transaction) -> None:
        calls.append(tx.tenant_id)
        existing = await tx.get("jobs", "ingest:log")
        tx.set("jobs", "ingest:log", {"n": (existing or {}).get("n", 0) + 1})

    records = [
        LogRecord("t1", "a", 1.0, {"v": 1}),
        LogRecord("t1", "a", 1.0, {"v": 1}),  # the same id twice in one call
        LogRecord("t2", "b", 2.0, {"v": 2}),
        LogRecord("t1", "c", 3.0, {"v": 3}, seen=("inbox", "seen-already")),
    ]
    assert await store.append_log(records, on_new=on_new) == [True, False, True, False]
    assert store.commits == before + 1
    assert sorted(calls) == ["t1", "t2"]
    assert await store.get("t1", "jobs", "ingest:log") == {"n": 1}
    assert await store.append_log(records[:1], on_new=on_new) == [False]  # nothing new: no on_new
    assert sorted(calls) == ["t1", "t2"]
    assert await store.log_size() == 2

    consumed: list[str] = []

    async def into_inbox(tx: Transaction, batch: list[LogRecord]) -> None:
        for record in batch:
            consumed.append(record.id)
            tx.create("inbox", record.id, record.data)

    assert await store.consume_log("t1", into_inbox) == 1
    assert await store.consume_log("t1", into_inbox) == 0
    assert consumed == ["a"] and await store.get("t1", "inbox", "a") == {"v": 1}
    assert await store.log_size("t1") == 0 and await store.log_size("t2") == 1
    await store.close()


async def test_concurrent_transactions_still_serialise(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")

    async def increment(tx: Transaction) -> None:
        current = await tx.get("c", "n")
        await asyncio.sleep(0)  # another coroutine runs here
        tx.set("c", "n", {"v": (current or {}).get("v", 0) + 1})

    start = time.monotonic()
    await asyncio.gather(*(store.run_transaction("t1", increment) for _ in range(50)))
    assert await store.get("t1", "c", "n") == {"v": 50}
    assert time.monotonic() - start < 10
    await store.close()


async def _checkpoint_settled(store: SQLiteStore, timeout_s: float = 10.0) -> None:
    """Wait until no background checkpoint is in flight (at most ``timeout_s`` seconds)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    await asyncio.sleep(0)
    while store._checkpointing is not None:
        assert asyncio.get_running_loop().time() < deadline, "checkpoint still running"
        await asyncio.sleep(0.002)


async def test_checkpoints_run_on_their_own_thread_and_keep_the_wal_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each background checkpoint is held on its thread until the test lets it go: the writes go
    on meanwhile (no commit waits for it), and once it ran, found the WAL past MAX_WAL_FRAMES
    and asked for a restart, the next write's restart truncates the WAL.

    The test held nothing before and measured the WAL's size wherever 600 writes ended: where
    that fell in the checkpoint/restart cycle depended on how promptly the checkpoint thread
    ran, and a starved one (load 8 on 2 cores) let the WAL grow past the bound over several of
    the 50-write windows it waited in (reproduced: 1,973,512 bytes, 6 restarts in 600 writes,
    with three busy loops running)."""
    import threading

    import app.store.sqlite as sqlite_module

    monkeypatch.setattr(sqlite_module, "CHECKPOINT_EVERY_WRITES", 16)
    monkeypatch.setattr(sqlite_module, "MAX_WAL_FRAMES", 64)
    path = tmp_path / "db.sqlite"
    wal = Path(f"{path}-wal")
    store = SQLiteStore(path)
    threads: set[str] = set()
    go = threading.Semaphore(0)
    checkpoint = store._checkpoint

    def held() -> int:
        threads.add(threading.current_thread().name)
        assert go.acquire(timeout=60), "the test never let the checkpoint go"
        return checkpoint()

    monkeypatch.setattr(store, "_checkpoint", held)
    writer_pragma = store._writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    assert writer_pragma == 0  # no checkpoint inside a commit
    text = "x" * 3000  # about a page per entry
    n = 0
    for cycle in range(6):
        for _ in range(100):
            records = [LogRecord("t1", f"m:{n}", float(n), {"text": text})]
            assert await store.append_log(records) == [True]
            n += 1
        assert store._checkpointing is not None  # began after 16 writes, held since
        assert wal.stat().st_size > 64 * 4096  # 100 commits of a page or more: past the bound
        go.release()
        await _checkpoint_settled(store)
        assert store.checkpoints == cycle + 1 and store._wal_restart_due
        await store.append_log([LogRecord("t1", f"m:{n}", float(n), {"text": text})])
        n += 1
        await store._writer_thread.call(lambda: None)  # the restart queued after that write ran
        assert store.wal_restarts == cycle + 1
        assert wal.stat().st_size == 0  # truncated
    assert threads and all(name.startswith("sqlite-checkpoint") for name in threads)
    for _ in range(8):
        go.release()  # the checkpoint in flight, if any, runs and the store closes
    assert await store.log_size("t1") == n
    await store.close()
    with sqlite3.connect(path) as conn:  # everything reached the file
        assert conn.execute("SELECT COUNT(*) FROM ingest_log").fetchone()[0] == n


async def test_a_wal_restart_held_up_by_a_reader_is_tried_again_after_the_next_writes(tmp_path: Path) -> None:
    """``PRAGMA wal_checkpoint(TRUNCATE)`` reports "busy" in its result rather than raising: a
    restart held up by a reader's snapshot (or the passive checkpoint) is tried again after the
    next write, and the WAL is truncated once it can be; it was counted as done and the WAL kept
    growing until the next passive checkpoint asked again."""
    path = tmp_path / "db.sqlite"
    store = SQLiteStore(path, busy_timeout_s=0.05)
    text = "x" * 3000
    for i in range(20):
        assert await store.append_log([LogRecord("t1", f"m:{i}", float(i), {"text": text})]) == [True]
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT COUNT(*) FROM ingest_log").fetchone()[0] == 20  # holds a snapshot
    await store.append_log([LogRecord("t1", "m:20", 20.0, {"text": text})])
    await store._writer_thread.call(store._restart_wal)
    assert store.wal_restarts == 0 and store._wal_restart_due  # busy: tried again after a write
    reader.execute("COMMIT")
    reader.close()
    await store.append_log([LogRecord("t1", "m:21", 21.0, {"text": text})])
    await store.append_log([LogRecord("t1", "m:22", 22.0, {"text": text})])  # runs after the retry
    assert store.wal_restarts == 1
    assert await store.log_size("t1") == 23
    await store.close()


async def test_a_wal_restart_that_gave_up_leaves_the_next_one_its_own_retries(tmp_path: Path) -> None:
    """A restart busy :data:`WAL_RESTART_RETRIES` times more gives up (the next passive checkpoint
    asks again); the NEXT restart asked for, busy once, is still tried again after a write and
    truncates the WAL. The busy count was not reset when a restart gave up, so every later
    restart found busy once gave up at once and the WAL kept growing."""
    from app.store.sqlite import WAL_RESTART_RETRIES

    path = tmp_path / "db.sqlite"
    wal = Path(f"{path}-wal")
    store = SQLiteStore(path, busy_timeout_s=0.05)
    text = "x" * 3000
    n = 0

    async def append() -> None:
        nonlocal n
        assert await store.append_log([LogRecord("t1", f"m:{n}", float(n), {"text": text})]) == [True]
        n += 1

    def hold_snapshot() -> sqlite3.Connection:
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM ingest_log").fetchone()  # a read snapshot, held
        return reader

    for _ in range(20):
        await append()
    reader = hold_snapshot()
    await append()
    await store._writer_thread.call(store._restart_wal)  # busy: tried again after each write
    for _ in range(WAL_RESTART_RETRIES):
        assert store._wal_restart_due
        await append()
        await store._writer_thread.call(lambda: None)  # the retry queued behind the write ran
    assert not store._wal_restart_due and store.wal_restarts == 0  # gave up
    reader.close()

    reader = hold_snapshot()  # the next restart asked for is busy once...
    await append()
    await store._writer_thread.call(store._restart_wal)
    assert store._wal_restart_due  # ...and tried again after the next write
    reader.close()
    grown = wal.stat().st_size
    await append()
    await store._writer_thread.call(lambda: None)
    assert store.wal_restarts == 1
    assert wal.stat().st_size < grown / 4  # truncated, then one append's frames
    assert await store.log_size("t1") == n
    await store.close()


async def test_a_wal_restart_is_due_before_the_next_passive_checkpoint_may_start(tmp_path: Path) -> None:
    """A checkpoint that found the WAL too long asks for the restart BEFORE it clears
    ``_checkpointing``: a write in between then sees the restart due and starts no passive
    checkpoint (which would hold the restart busy until it gave up, the WAL growing meanwhile)."""
    import concurrent.futures

    from app.store.sqlite import MAX_WAL_FRAMES

    seen: list[bool] = []

    class Spy(SQLiteStore):
        def __setattr__(self, name: str, value: object) -> None:
            if name == "_checkpointing" and value is None and "_wal_restart_due" in self.__dict__:
                seen.append(self._wal_restart_due)  # what a write sees once the slot is free
            super().__setattr__(name, value)

    store = Spy(tmp_path / "db.sqlite")
    seen.clear()
    done: concurrent.futures.Future[int] = concurrent.futures.Future()
    done.set_result(MAX_WAL_FRAMES + 1)
    store._checkpointed(done)
    assert seen == [True] and store.checkpoints == 1
    failed: concurrent.futures.Future[int] = concurrent.futures.Future()
    failed.set_exception(sqlite3.OperationalError("database is locked"))
    store._wal_restart_due = False
    store._checkpointed(failed)  # a failed checkpoint asks for nothing and is not counted
    assert seen == [True, False] and store.checkpoints == 1
    await store.close()
