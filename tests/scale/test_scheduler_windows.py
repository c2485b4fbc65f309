"""The scheduler asks the store for one window of job shards at a time, from a random window, and
for expired leases at most every quarter lease (or 5 s): fewer and smaller scheduler queries, and processes
polling together mostly look at different jobs (docs/capacity.md). Run on SQLite: the queries are
counted, not timed."""

from __future__ import annotations

import collections
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from app.jobs.queue import JOB_SHARDS, SHARD_WINDOW, JobQueue, job_doc_id
from app.store import Document, Filter, Order
from app.store.ids import shard_of
from app.store.sqlite import SQLiteStore
from kernel.clock import ManualClock


class CountingStore(SQLiteStore):
    """SQLite, recording the filters of every collection-group query."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.group_queries: list[dict[str, Any]] = []

    async def query_group(
        self,
        collection: str,
        *,
        filters: Sequence[Filter] = (),
        order_by: Sequence[Order] = (),
        limit: int | None = None,
    ) -> list[Document]:
        self.group_queries.append({f.field: f.value for f in filters})
        return await super().query_group(collection, filters=filters, order_by=order_by, limit=limit)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    s = CountingStore(tmp_path / "jobs.db")
    yield s
    await s.close()


def _window(shard: int) -> int:
    return shard // SHARD_WINDOW


async def test_a_busy_scheduler_finds_its_batch_in_one_window(store: CountingStore) -> None:
    clock = ManualClock(1_000.0)
    jobs = JobQueue(store, clock, owner="p1", lease_s=60.0)
    keys = [f"cv_{i}" for i in range(160)]
    per_window = collections.Counter(_window(shard_of(job_doc_id("timer", k), JOB_SHARDS)) for k in keys)
    assert min(per_window.values()) >= 16  # every window holds a whole batch
    for key in keys:
        await jobs.enqueue("t1", "timer", key, due_at=999.0)
    random.seed(7)
    leased = await jobs.lease_due(limit=16)
    assert len(leased) == 16
    [query] = store.group_queries  # one window, no look for expired leases (enough found)
    assert len(query["shard"]) == SHARD_WINDOW
    assert {_window(job.shard) for job in leased} == {_window(query["shard"][0])}
    # a second process polling at the same moment, from another window, takes other jobs
    other = JobQueue(store, clock, owner="p2")
    taken = {job.id for job in leased}
    for _ in range(20):
        more = await other.lease_due(limit=16)
        if not more:
            break
        assert taken.isdisjoint(job.id for job in more)
        taken |= {job.id for job in more}
    assert len(taken) == len(keys)  # every window reached, nothing leased twice


async def test_an_idle_scheduler_looks_at_every_window_and_for_expired_leases_every_quarter_lease(
    store: CountingStore,
) -> None:
    clock = ManualClock(1_000.0)
    jobs = JobQueue(store, clock, owner="p1", lease_s=16.0)
    await jobs.enqueue("t1", "timer", "late", due_at=5_000.0)
    assert await jobs.lease_due(limit=16) == []
    windows = [q["shard"] for q in store.group_queries if q["status"] == "pending"]
    assert sorted(s for w in windows for s in w) == list(range(JOB_SHARDS))  # every shard, once
    assert sum(q["status"] == "leased" for q in store.group_queries) == 1
    store.group_queries.clear()
    clock.advance(3.9)  # within a quarter of the 16 s lease: no second look for expired leases
    assert await jobs.lease_due(limit=16) == []
    assert [q for q in store.group_queries if q["status"] == "leased"] == []
    clock.advance(0.2)
    assert await jobs.lease_due(limit=16) == []
    assert sum(q["status"] == "leased" for q in store.group_queries) == 1


async def test_an_expired_lease_is_taken_over_within_five_seconds_of_the_last_look(
    store: CountingStore,
) -> None:
    clock = ManualClock(1_000.0)
    mine, theirs = JobQueue(store, clock, owner="p1", lease_s=5.0), JobQueue(store, clock, owner="p2")
    await mine.enqueue("t1", "dispatch", "x")
    [job] = await mine.lease_due()
    assert await theirs.lease_due() == []
    clock.advance(5.5)  # the lease ran out (its process died); p2 looked 5.5 s ago
    [taken] = await theirs.lease_due()
    assert (taken.id, taken.lease_owner) == (job.id, "p2")
