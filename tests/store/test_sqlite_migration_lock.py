"""A second process opening an SQLite file while another migrates it waits for that migration
(bounded), then finds the schema migrated; one that gives up says which file and why. Two real
processes: the migrating one is this test's subprocess, made slow inside its migration's
transaction (it holds the write lock there, as the 15 s migration of a 220,000-document file does)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.store import StoreError, where
from app.store.sqlite import SQLiteStore

#: The migrating process: fills the columns of `leads`, then signals and sleeps, write lock held.
_SLOW_MIGRATION = """
import asyncio, sys, time
from pathlib import Path
import app.store.sqlite_schema as schema
from app.store.sqlite import SQLiteStore

path, ready, hold_s = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
fill = schema._fill

def slow_fill(conn, leaf, fields):
    count = fill(conn, leaf, fields)
    ready.write_text("migrating")
    time.sleep(hold_s)  # still inside the migration's transaction
    return count

schema._fill = slow_fill
store = SQLiteStore(path)
asyncio.run(store.close())
print("migrated")
"""


async def _file_needing_migration(path: Path) -> None:
    """A file whose `leads` columns are recorded as never filled (as an older version left it)."""
    store = SQLiteStore(path)
    for i in range(50):
        await store.set("t1", "leads", f"l{i}", {"phone": f"+3360000{i:04d}", "created_at": float(i)})
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE docs SET f_phone = NULL, f_created_at = NULL WHERE leaf = 'leads'")
        conn.execute("DELETE FROM doc_columns WHERE leaf = 'leads'")


@pytest.fixture
def migrating(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str], float]]:
    """``(file, the migrating process, when it signalled)``: the process is inside its migration."""
    import asyncio

    path = tmp_path / "db.sqlite"
    asyncio.run(_file_needing_migration(path))
    ready = tmp_path / "ready"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_MIGRATION, str(path), str(ready), "3.0"],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the migrating process never began"
        time.sleep(0.01)
    try:
        yield path, proc, time.monotonic()
    finally:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err


def test_a_second_opener_waits_for_a_migration_in_progress_then_sees_it_done(
    migrating: tuple[Path, subprocess.Popen[str], float],
) -> None:
    path, proc, began = migrating
    # a busy timeout far shorter than the migration: it failed with "database is locked"
    store = SQLiteStore(path, busy_timeout_s=0.2)
    assert time.monotonic() - began > 1.0  # it waited for the migration...
    assert proc.wait(timeout=30) == 0  # ...which ended first
    filled = store._reader.execute("SELECT field FROM doc_columns WHERE leaf = 'leads'").fetchall()
    assert {"phone", "created_at"} <= {f for (f,) in filled}
    row = store._reader.execute("SELECT f_phone FROM docs WHERE leaf = 'leads' AND id = 'l7'").fetchone()
    assert row == ("+33600000007",)  # the column the other process filled

    import asyncio

    async def read_and_close() -> list[str]:
        found = await store.query("t1", "leads", filters=[where("phone", "==", "+33600000007")])
        await store.close()
        return [d.id for d in found]

    assert asyncio.run(read_and_close()) == ["l7"]


def test_an_opener_that_gives_up_names_the_file_and_the_migration(
    migrating: tuple[Path, subprocess.Popen[str], float],
) -> None:
    path, proc, _ = migrating
    start = time.monotonic()
    with pytest.raises(StoreError) as raised:
        SQLiteStore(path, busy_timeout_s=0.2, migration_wait_s=0.5)
    assert time.monotonic() - start >= 0.5
    assert proc.poll() is None  # it gave up while the migration still ran (it holds for 3 s)
    message = str(raised.value)
    assert str(path) in message and "migrating" in message and f"pid {proc.pid}" in message
