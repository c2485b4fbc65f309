"""A small ingest-log group is committed in place (on the event loop's thread) only when that can
never wait: the writer thread idle, no transaction of this process open, SQLite's write lock free
at once. Otherwise the writer thread takes it, as before, and the loop keeps running."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from app.store import LogRecord, Transaction
from app.store.sqlite import SerialThread, SQLiteStore


def _records(n: int, tenant: str = "t1", start: int = 0) -> list[LogRecord]:
    return [LogRecord(tenant, f"m:{start + i}", float(start + i), {"v": start + i}) for i in range(n)]


def _logged(path: Path) -> int:
    """Entries another connection sees (committed, so durable past a process kill)."""
    with sqlite3.connect(path) as other:
        return int(other.execute("SELECT COUNT(*) FROM ingest_log").fetchone()[0])


async def test_a_small_group_commits_in_place_and_is_committed_when_the_call_returns(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    await store.set("t1", "inbox", "seen", {"x": 1})
    threads: list[str] = []

    async def on_new(tx: Transaction) -> None:
        threads.append(threading.current_thread().name)
        existing = await tx.get("jobs", "ingest:log")  # a read in place, inside the group's commit
        tx.set("jobs", "ingest:log", {"n": (existing or {}).get("n", 0) + 1})

    before = store.commits
    records = [*_records(3), _records(1)[0], LogRecord("t1", "s", 9.0, {"v": 9}, seen=("inbox", "seen"))]
    assert await store.append_log(records, on_new=on_new) == [True, True, True, False, False]
    assert store.in_place_appends == 1 and store.commits == before + 1
    assert threads == [threading.current_thread().name]  # the loop's own thread
    assert _logged(tmp_path / "db.sqlite") == 3
    assert await store.get("t1", "jobs", "ingest:log") == {"n": 1}
    # the writer's busy timeout is back to its own value after the in-place attempt
    assert store._writer.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
    await store.close()


async def test_a_large_group_or_a_busy_writer_thread_goes_to_the_thread(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    assert await store.append_log(_records(store.in_place_append_max + 1)) == [True] * 65
    assert store.in_place_appends == 0
    release = threading.Event()
    blocked = store._writer_thread.call(release.wait)  # the writer thread is busy
    append = asyncio.create_task(store.append_log(_records(2, start=1000)))
    await asyncio.sleep(0.05)
    assert not append.done() and store.in_place_appends == 0  # queued behind the thread's work
    release.set()
    await blocked
    assert await asyncio.wait_for(append, timeout=5) == [True, True]
    assert store.in_place_appends == 0
    assert _logged(tmp_path / "db.sqlite") == 67
    await store.close()


async def test_a_lock_held_by_another_process_never_blocks_the_loop(tmp_path: Path) -> None:
    """The in-place ``BEGIN IMMEDIATE`` does not wait: the group goes to the writer thread, which
    waits for the lock while the loop keeps running, and commits once the other writer is done."""
    store = SQLiteStore(tmp_path / "db.sqlite", busy_timeout_s=5.0)
    await store.append_log(_records(1))  # schema and WAL in place
    other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    tick_task = asyncio.create_task(ticker())
    append = asyncio.create_task(store.append_log(_records(2, start=10)))
    await asyncio.sleep(0.5)
    assert not append.done()  # waiting for the lock, on the writer thread...
    assert ticks >= 20  # ...while the loop kept running
    other.execute("COMMIT")
    assert await asyncio.wait_for(append, timeout=5) == [True, True]
    tick_task.cancel()
    assert store.in_place_appends == 1  # the first group only
    assert store._writer.execute("PRAGMA busy_timeout").fetchone()[0] == 5_000
    other.close()
    await store.close()


async def test_in_place_appends_can_be_turned_off(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    store.in_place_append_max = 0
    assert await store.append_log(_records(1)) == [True]
    assert store.in_place_appends == 0 and _logged(tmp_path / "db.sqlite") == 1
    await store.close()


async def test_serial_thread_is_idle_once_everything_given_has_run() -> None:
    thread = SerialThread("test-idle")
    assert thread.idle
    release = threading.Event()
    first = thread.call(release.wait)
    second = thread.call(lambda: 2)
    second.cancel()  # skipped when its turn comes: still counted as finished
    assert not thread.idle
    release.set()
    await first
    for _ in range(200):
        if thread.idle:
            break
        await asyncio.sleep(0.01)
    assert thread.idle
    thread.shutdown()
