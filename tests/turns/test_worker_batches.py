"""The worker's lease batch adapts to how long handlers run: fast handlers (a timer's commit) take
big batches, so a burst of due timers costs a few lease queries; slow ones (an LLM turn) take
small batches, so no prefetched job waits in this process until its lease expires."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pydantic
import pytest

from app.jobs.queue import Job, JobQueue
from app.jobs.worker import MAX_PREFETCH, Worker
from app.store.sqlite import SQLiteStore
from kernel.clock import ManualClock


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "jobs.db")
    yield s
    await s.close()


class RecordingQueue(JobQueue):
    """A job queue that records the limit of every lease and when each job was leased."""

    def __init__(self, store: SQLiteStore, clock: ManualClock, *, lease_s: float = 60.0) -> None:
        super().__init__(store, clock, owner="p1", lease_s=lease_s)
        self.limits: list[int] = []
        self.leased_at: dict[str, float] = {}

    async def lease_due(self, *, limit: int = 16) -> list[Job]:
        self.limits.append(limit)
        jobs = await super().lease_due(limit=limit)
        for job in jobs:
            self.leased_at[job.key] = self.clock.now()
        return jobs


async def _enqueue(jobs: JobQueue, count: int) -> None:
    for i in range(count):
        await jobs.enqueue(f"t{i % 3}", "timer", f"cv_{i:04d}", due_at=900.0)


async def test_fast_handlers_take_big_batches(store: SQLiteStore) -> None:
    clock = ManualClock(1_000.0)
    jobs = RecordingQueue(store, clock)
    await _enqueue(jobs, 600)
    ran: list[str] = []
    running = peak = 0

    async def handler(job: Job) -> None:  # takes no time on the queue's clock
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        ran.append(job.key)
        running -= 1

    worker = Worker(jobs, {"timer": handler}, concurrency=4)
    assert worker.lease_limit == 16  # nothing ran yet: four jobs a slot
    assert await worker.drain() == 600
    assert sorted(ran) == sorted(f"cv_{i:04d}" for i in range(600))  # each once
    assert peak <= 4
    # the first lease takes 16; once handlers are known to be fast, up to MAX_PREFETCH at a time
    assert jobs.limits[0] == 16 and max(jobs.limits) == MAX_PREFETCH
    assert len(jobs.limits) <= 2 + 600 // MAX_PREFETCH + 1, jobs.limits
    assert await store.query("t0", "jobs") == []


async def test_slow_handlers_take_batches_they_run_within_a_quarter_lease(store: SQLiteStore) -> None:
    """3 s handlers, one slot, 60 s leases: batches of 5 (15 s / 3 s), so each job starts within a
    quarter lease of being leased (a batch of 64 would hold its last job 189 s, three leases)."""
    clock = ManualClock(1_000.0)
    jobs = RecordingQueue(store, clock, lease_s=60.0)
    await _enqueue(jobs, 40)
    started: dict[str, float] = {}

    async def handler(job: Job) -> None:  # an LLM turn: 3 s on the queue's clock
        started[job.key] = clock.now()
        clock.advance(3.0)

    worker = Worker(jobs, {"timer": handler}, concurrency=1, max_prefetch=64)
    assert await worker.drain() == 40
    assert worker.mean_run_s == pytest.approx(3.0)
    assert worker.lease_limit == 5
    assert jobs.limits[0] == 4 and max(jobs.limits) == 5, jobs.limits
    waits = [started[key] - jobs.leased_at[key] for key in started]
    assert max(waits) <= 60.0 / 4, max(waits)


async def test_a_fixed_prefetch_does_not_adapt(store: SQLiteStore) -> None:
    clock = ManualClock(1_000.0)
    jobs = RecordingQueue(store, clock)
    await _enqueue(jobs, 50)

    async def handler(job: Job) -> None:
        return None

    worker = Worker(jobs, {"timer": handler}, concurrency=2, prefetch=10)
    assert await worker.drain() == 50
    assert set(jobs.limits) == {10}


def test_a_trusted_job_rejects_a_document_that_is_not_a_job() -> None:
    with pytest.raises(pydantic.ValidationError):
        Job.trusted({"id": "timer:cv_1", "tenant_id": "t1", "kind": "nonsense", "key": "cv_1"})


async def test_a_lease_registers_a_tenants_jobs_collection_once(tmp_path: Path) -> None:
    """A fresh process leasing 50 jobs of one tenant in one transaction writes the collection
    registry once, not once a job (its cache fills only after the commit)."""
    first = SQLiteStore(tmp_path / "jobs.db")
    clock = ManualClock(1_000.0)
    await _enqueue(JobQueue(first, clock, owner="p0"), 150)
    await first.close()
    store = SQLiteStore(tmp_path / "jobs.db")  # a new process: its registry cache is empty
    try:
        statements: list[str] = []
        store._writer.set_trace_callback(statements.append)
        leased = await JobQueue(store, clock, owner="p1").lease_due(limit=150)
        assert len(leased) == 150
        registry = [s for s in statements if s.startswith("INSERT OR IGNORE INTO colls")]
        assert len(registry) == 3, len(registry)  # one a tenant
    finally:
        await store.close()


async def test_a_job_that_waited_most_of_its_lease_extends_it_before_it_runs(store: SQLiteStore) -> None:
    """A fixed batch of 20 behind 5 s handlers on one slot: the later jobs would start after
    their 60 s lease expired; each extends its lease first, so every handler starts holding it."""
    clock = ManualClock(1_000.0)
    jobs = RecordingQueue(store, clock, lease_s=60.0)
    await _enqueue(jobs, 20)
    held_at_start: list[bool] = []

    async def handler(job: Job) -> None:
        doc = await store.get(job.tenant_id, "jobs", job.id)
        assert doc is not None
        held_at_start.append(doc["lease_owner"] == "p1" and doc["lease_until"] > clock.now())
        clock.advance(5.0)

    worker = Worker(jobs, {"timer": handler}, concurrency=1, prefetch=20)
    assert await worker.drain() == 20
    assert held_at_start == [True] * 20
    assert await store.query("t0", "jobs") == []


async def test_a_job_whose_lease_another_process_took_is_not_run_here(store: SQLiteStore) -> None:
    clock = ManualClock(1_000.0)
    mine = RecordingQueue(store, clock, lease_s=60.0)
    await _enqueue(mine, 2)
    ran: list[str] = []

    async def handler(job: Job) -> None:
        ran.append(job.key)

    worker = Worker(mine, {"timer": handler}, concurrency=1, prefetch=2)
    leased = await mine.lease_due(limit=2)
    assert len(leased) == 2
    clock.advance(61.0)  # this process stalled; its leases expired and another process took one
    theirs = JobQueue(store, clock, owner="p2", lease_s=60.0)
    taken = await theirs.lease_due(limit=1)
    assert len(taken) == 1
    for job in leased:
        await worker._run_job(job)
    assert ran == [job.key for job in leased if job.key != taken[0].key]
    doc = await store.get(taken[0].tenant_id, "jobs", taken[0].id)
    assert doc is not None and doc["lease_owner"] == "p2"  # still theirs, untouched


def test_a_job_is_completed_only_once_marked() -> None:
    job = Job(id="timer:cv_1", tenant_id="t1", kind="timer", key="cv_1", due_at=5.0)
    assert job.completed is False
    job.mark_completed()
    assert job.completed is True
    assert Job.trusted(job.to_doc()).completed is False  # a fresh lease of it starts over
