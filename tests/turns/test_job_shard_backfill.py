"""Jobs stored by an older LeadWarm without ``shard`` are invisible to the scheduler's queries
(``shard IN (...)``): the backfill gives them one, after which they are leased and run; a finished
backfill is recorded so that later starts skip it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from app.composition import Runtime
from app.core.settings import Settings
from app.jobs.backfill import MIGRATION_ID, backfill_job_shards
from app.jobs.queue import COLLECTION, JobQueue
from app.store import SYSTEM_TENANT, Store
from app.store.sqlite import SQLiteStore
from kernel.clock import ManualClock
from tests.store.conftest import open_store  # noqa: F401 - the fixture (SQLite and Firestore)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "jobs.db")
    yield s
    await s.close()


async def _old_job(store: Store, jobs: JobQueue, tenant: str, key: str) -> str:
    """A due job as an older version stored it: every field but ``shard``."""
    await jobs.enqueue(tenant, "timer", key, due_at=999.0)
    [doc] = [d for d in await store.query(tenant, COLLECTION) if d.data["key"] == key]
    await store.set(tenant, COLLECTION, doc.id, {k: v for k, v in doc.data.items() if k != "shard"})
    return doc.id


async def test_old_jobs_get_their_shard_and_are_leased(store: SQLiteStore) -> None:
    clock = ManualClock(1_000.0)
    jobs = JobQueue(store, clock, owner="p1")
    old = {await _old_job(store, jobs, "t1", "cv_a"), await _old_job(store, jobs, "t2", "cv_b")}
    await jobs.enqueue("t1", "timer", "cv_new", due_at=999.0)
    assert [j.key for j in await jobs.lease_due(limit=10)] == ["cv_new"]  # the old ones: unseen

    assert await backfill_job_shards(store, clock) == 2
    assert {j.id for j in await jobs.lease_due(limit=10)} == old
    marker = await store.get(SYSTEM_TENANT, "migrations", MIGRATION_ID)
    assert marker == {"done_at": 1_000.0, "written": 2}

    # recorded: a later start reads nothing and writes nothing, even if a job lacked the field
    await _old_job(store, jobs, "t1", "cv_c")
    assert await backfill_job_shards(store, clock) == 0


async def test_the_runtime_backfills_at_start(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, leadwarm_data_dir=tmp_path, log_level="ERROR")
    runtime = Runtime.build(settings)
    old = await _old_job(runtime.store, runtime.jobs, "t1", "cv_a")
    await runtime.start()
    await runtime.stop()  # waits for the start's tasks, the backfill among them
    store = SQLiteStore(tmp_path / "leadwarm.db")
    try:
        doc = await store.get("t1", COLLECTION, old)
        assert doc is not None and isinstance(doc.get("shard"), int)
    finally:
        await store.close()


async def test_the_backfill_reads_a_page_at_a_time_and_misses_none(
    open_store: Callable[[], Store],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import app.jobs.backfill as backfill

    store = open_store()
    monkeypatch.setattr(backfill, "PAGE_SIZE", 3)
    clock = ManualClock(1_000.0)
    jobs = JobQueue(store, clock, owner="p1")
    old = {await _old_job(store, jobs, "t1", f"cv_{i}") for i in range(8)}  # same due_at: ids break ties
    pages: list[int] = []
    query = store.query

    async def counting_query(*args: object, **kwargs: object) -> list[object]:
        result = await query(*args, **kwargs)  # type: ignore[arg-type]
        if args[1:2] == (COLLECTION,):
            pages.append(len(result))
        return result  # type: ignore[return-value]

    monkeypatch.setattr(store, "query", counting_query)
    assert await backfill_job_shards(store, clock) == 8
    assert max(pages) <= 3  # never more than a page in memory
    assert {j.id for j in await jobs.lease_due(limit=20)} == old
