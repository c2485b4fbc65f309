"""The job queue leases a tenant's due jobs in one transaction, completes a job inside its
handler's transaction when asked, and the worker sleeps until the next due job instead of polling
on a fixed period (woken early by an in-process enqueue of an earlier job)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from app.jobs.queue import Job, JobQueue
from app.jobs.worker import Worker
from app.store import Transaction
from app.store.sqlite import SQLiteStore
from kernel.clock import ManualClock, SystemClock


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "jobs.db")
    yield s
    await s.close()


def _begins(store: SQLiteStore) -> list[str]:
    statements: list[str] = []
    store._writer.set_trace_callback(statements.append)
    return statements


async def test_due_jobs_of_a_tenant_are_leased_in_one_transaction(store: SQLiteStore) -> None:
    clock = ManualClock(1_000.0)
    jobs = JobQueue(store, clock, owner="p1")
    for i in range(40):
        await jobs.enqueue("t1", "timer", f"cv_{i}", due_at=999.0)
    for i in range(5):
        await jobs.enqueue("t2", "timer", f"cv_{i}", due_at=999.0)
    await jobs.enqueue("t1", "timer", "later", due_at=2_000.0)
    statements = _begins(store)
    leased = await jobs.lease_due(limit=100)
    assert len(leased) == 45
    # one transaction per tenant, run together: one SQLite transaction (a savepoint each)
    assert sum(s.startswith("BEGIN") for s in statements) == 1
    assert sum(s.startswith("SAVEPOINT") for s in statements) == 2
    assert {j.tenant_id for j in leased if j.key.startswith("cv_")} == {"t1", "t2"}
    assert {j.status for j in leased} == {"leased"} and {j.lease_owner for j in leased} == {"p1"}
    # another process sees nothing left to take
    assert await JobQueue(store, clock, owner="p2").lease_due(limit=100) == []
    assert await jobs.next_due_at(within_s=1_000.0) == 2_000.0
    assert await jobs.next_due_at(within_s=999.0) is None  # beyond the horizon


async def test_complete_in_deletes_or_requeues_in_the_callers_transaction(store: SQLiteStore) -> None:
    clock = ManualClock(1_000.0)
    jobs = JobQueue(store, clock, owner="p1")
    await jobs.enqueue("t1", "dispatch", "a")
    await jobs.enqueue("t1", "dispatch", "b")
    a, b = sorted(await jobs.lease_due(), key=lambda j: j.key)
    await jobs.enqueue("t1", "dispatch", "b", due_at=1_005.0)  # b re-enqueued while it runs

    async def finish(job: Job) -> None:
        async def fn(tx: Transaction) -> None:
            current = await jobs.read_job(tx, job)
            tx.set("work", job.key, {"done": True})
            jobs.complete_in(tx, job, current)

        await store.run_transaction("t1", fn)
        job.mark_completed()

    await finish(a)
    await finish(b)
    assert a.completed and b.completed
    assert await store.get("t1", "jobs", a.id) is None
    again = await store.get("t1", "jobs", b.id)
    assert again is not None and again["status"] == "pending" and again["due_at"] == 1_005.0
    assert await store.get("t1", "work", "a") == {"done": True}


async def test_complete_in_leaves_a_job_whose_lease_was_lost(store: SQLiteStore) -> None:
    clock = ManualClock(1_000.0)
    mine, theirs = JobQueue(store, clock, owner="p1", lease_s=5), JobQueue(store, clock, owner="p2")
    await mine.enqueue("t1", "timer", "x")
    [job] = await mine.lease_due()
    clock.advance(10)  # our lease expired: p2 takes the job over
    [taken] = await theirs.lease_due()
    assert taken.lease_owner == "p2"

    async def fn(tx: Transaction) -> None:
        mine.complete_in(tx, job, await mine.read_job(tx, job))

    await store.run_transaction("t1", fn)
    doc = await store.get("t1", "jobs", job.id)
    assert doc is not None and doc["lease_owner"] == "p2" and doc["status"] == "leased"


async def test_the_worker_runs_a_timer_at_its_due_time_not_on_the_next_poll(store: SQLiteStore) -> None:
    clock = SystemClock()
    jobs = JobQueue(store, clock, owner="p1")
    ran: dict[str, float] = {}

    async def handler(job: Job) -> None:
        ran[job.key] = clock.now()

    # a long idle poll: only the due time (or an in-process enqueue) can wake the worker in time
    worker = Worker(jobs, {"timer": handler}, poll_interval_s=30.0)
    stop = asyncio.Event()
    due = clock.now() + 0.4
    await jobs.enqueue("t1", "timer", "soon", due_at=due)
    task = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(0.1)  # the worker is asleep until `due`...
        early = clock.now() + 0.1
        await jobs.enqueue("t1", "timer", "earlier", due_at=early)  # ...and woken for this one
        deadline = time.monotonic() + 5
        while len(ran) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        jobs.notify()
        await asyncio.wait_for(task, 5)
    assert set(ran) == {"soon", "earlier"}
    assert 0 <= ran["earlier"] - early < 0.25, ran["earlier"] - early
    assert 0 <= ran["soon"] - due < 0.25, ran["soon"] - due
    assert ran["earlier"] < ran["soon"]


async def test_the_worker_leases_a_batch_and_starts_it_as_slots_free(store: SQLiteStore) -> None:
    """100 due jobs, 4 slots: one lease per prefetch (16), not one per freed slot; never more
    than 4 handlers at once; every job runs once, oldest due first within a batch."""
    clock = ManualClock(1_000.0)
    jobs = JobQueue(store, clock, owner="p1")
    for i in range(100):
        await jobs.enqueue("t1", "timer", f"cv_{i:03d}", due_at=900.0 + i)
    ran: list[str] = []
    running = 0
    peak = 0

    async def handler(job: Job) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        ran.append(job.key)
        running -= 1

    worker = Worker(jobs, {"timer": handler}, concurrency=4, prefetch=16)
    statements = _begins(store)
    assert await worker.drain() == 100
    leases = [s for s in statements if "$.shard" in s and "$.due_at" in s]
    assert sorted(ran) == [f"cv_{i:03d}" for i in range(100)]
    assert peak == 4
    assert len(leases) <= 100 // 16 + 2, len(leases)  # batches of 16 (and the final empty look)
    assert await store.query("t1", "jobs") == []


async def test_a_stopping_worker_releases_the_jobs_it_never_started(store: SQLiteStore) -> None:
    clock = ManualClock(1_000.0)
    jobs = JobQueue(store, clock, owner="p1")
    for i in range(10):
        await jobs.enqueue("t1", "timer", f"cv_{i}", due_at=999.0)
    gate = asyncio.Event()
    started: list[str] = []

    async def handler(job: Job) -> None:
        started.append(job.key)
        await gate.wait()

    worker = Worker(jobs, {"timer": handler}, concurrency=2, prefetch=10)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    for _ in range(200):
        if len(started) == 2:
            break
        await asyncio.sleep(0.005)
    assert len(started) == 2
    stop.set()
    jobs.notify()
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.wait_for(task, 5)
    # the two that ran are done; the eight that waited in this process are pending again, at once
    # leasable by another process, with their attempts untouched
    docs = {d.data["key"]: d.data for d in await store.query("t1", "jobs")}
    assert sorted(docs) == sorted(f"cv_{i}" for i in range(10) if f"cv_{i}" not in started)
    assert {d["status"] for d in docs.values()} == {"pending"}
    assert {d["attempts"] for d in docs.values()} == {0}
    assert len(await JobQueue(store, clock, owner="p2").lease_due(limit=50)) == 8


async def test_a_transactions_batch_read_is_one_hand_off(store: SQLiteStore) -> None:
    await store.set("t1", "a", "x", {"v": 1})
    await store.set("t1", "b", "y", {"v": 2})
    hops = 0
    original = store._write_op

    async def counted(fn: Callable[[], Any]) -> Any:
        nonlocal hops
        hops += 1
        return await original(fn)

    store._write_op = counted  # type: ignore[method-assign]

    async def fn(tx: Transaction) -> list[dict[str, Any] | None]:
        return await tx.get_many([("a", "x"), ("b", "missing"), ("b", "y")])

    docs = await store.run_transaction("t1", fn)
    assert docs == [{"v": 1}, None, {"v": 2}]
    assert hops == 2  # the reads, then the commit


async def test_a_pending_job_carries_no_lease_fields(store: SQLiteStore) -> None:
    """A pending job has no ``lease_until``/``lease_owner`` (so the expired-lease index holds
    leased jobs only); leasing sets them, giving the job back removes them again."""
    clock = ManualClock(1_000.0)
    jobs = JobQueue(store, clock, owner="p1")
    await jobs.enqueue("t1", "timer", "cv_1", due_at=999.0)
    doc = await store.get("t1", "jobs", "timer:cv_1")
    assert doc is not None and "lease_until" not in doc and "lease_owner" not in doc
    (job,) = await jobs.lease_due()
    doc = await store.get("t1", "jobs", "timer:cv_1")
    assert doc is not None and doc["lease_until"] == 1_060.0 and doc["lease_owner"] == "p1"
    assert (job.lease_until, job.lease_owner, job.status) == (1_060.0, "p1", "leased")
    await jobs.release([job])
    doc = await store.get("t1", "jobs", "timer:cv_1")
    assert doc is not None and doc["status"] == "pending" and "lease_until" not in doc
    rows = store._reader.execute(
        "SELECT COUNT(*) FROM docs INDEXED BY ix_g_status_lease_until WHERE leaf = 'jobs' AND coll='jobs' "
        "AND (f_lease_until IS NOT NULL OR instr(nulls, ',lease_until,') > 0)"
    ).fetchone()
    assert rows == (0,)


def test_a_trusted_job_does_not_share_its_payload_with_the_document() -> None:
    data: dict[str, Any] = {
        "id": "timer:cv_1",
        "tenant_id": "t1",
        "kind": "timer",
        "key": "cv_1",
        "due_at": 5.0,
        "payload": {"timer_id": "x"},
        "unknown": 1,
    }
    job = Job.trusted(data)
    job.payload["timer_id"] = "y"
    assert data["payload"] == {"timer_id": "x"}
    assert (job.status, job.generation, job.lease_until) == ("pending", 0, None)
    assert not hasattr(job, "unknown")


async def test_notify_from_another_thread_wakes_the_sleeping_worker(store: SQLiteStore) -> None:
    """An inline transaction's function runs on the store's writer thread; an enqueue made there
    (a commit hook) notifies from that thread, and the sleeping worker still wakes at once."""
    jobs = JobQueue(store, SystemClock(), owner="p1")
    sleeper = asyncio.create_task(jobs.wait(30.0))
    await asyncio.sleep(0.05)
    started = time.monotonic()

    def later() -> None:  # once the loop sleeps in its selector, where nothing else wakes it
        time.sleep(0.2)
        jobs.notify()

    thread = threading.Thread(target=later)
    thread.start()
    await asyncio.wait_for(sleeper, timeout=5.0)
    thread.join()
    assert time.monotonic() - started < 2.0
