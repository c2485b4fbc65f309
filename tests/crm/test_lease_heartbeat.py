"""A job may outlive its lease without being run twice: its holder extends the lease
(:meth:`JobQueue.extend`, on both stores), and a CRM flush does so while it runs, so a second
worker polling for expired leases does not take the flush job meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.crm.records import Integration
from app.jobs.queue import JobQueue
from app.store import Store
from app.store.firestore import FirestoreStore
from app.store.sqlite import SQLiteStore
from kernel.clock import ManualClock, SystemClock
from tests.conftest import EMULATOR_PROJECT
from tests.crm.conftest import TENANT, close_runtime, connect, crm_of, open_runtime, qualified_lead
from tests.crm.helpers import OPTIONS, counts
from tests.crm_sync.fakes import GoHighLevelFake


@pytest.fixture(params=["sqlite", "firestore"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend: Store
    if request.param == "sqlite":
        backend = SQLiteStore(tmp_path / "jobs.db")
    else:
        emulator = request.getfixturevalue("firestore_emulator")
        emulator.reset()
        backend = FirestoreStore(project_id=EMULATOR_PROJECT, emulator_host=emulator.host_port)
    yield backend
    await backend.close()


async def test_a_heartbeat_keeps_a_job_from_being_leased_again(store: Store) -> None:
    clock = ManualClock(1_000.0)
    mine = JobQueue(store, clock, owner="p1", lease_s=60.0)
    theirs = JobQueue(store, clock, owner="p2", lease_s=60.0)
    await mine.enqueue("t1", "crm_sync", "f:cn_1:0", payload={"op": "flush"})
    (job,) = await mine.lease_due()
    assert job.lease_until == 1_060.0
    clock.advance(40.0)
    assert await mine.extend(job) is True and job.lease_until == 1_100.0
    clock.advance(40.0)  # past the first lease, within the extended one
    assert await theirs.lease_due() == []
    assert await theirs.extend(job) is False  # only the holder may extend
    clock.advance(21.0)  # no more beats: the lease runs out and another process takes the job
    (taken,) = await theirs.lease_due()
    assert taken.id == job.id and taken.lease_owner == "p2"
    assert await mine.extend(job) is False  # the lease was lost: nothing changes
    assert (await theirs.lease_due()) == [] and taken.lease_until == 1_161.0
    await theirs.complete(taken)
    assert await theirs.extend(taken) is False  # a finished job has no lease to extend


@contextlib.contextmanager
def _no_heartbeat(sync: Any) -> Iterator[None]:
    real: Callable[..., Any] = sync._heartbeat

    @contextlib.asynccontextmanager
    async def none(job: Any) -> AsyncIterator[None]:
        yield

    sync._heartbeat = none
    try:
        yield
    finally:
        sync._heartbeat = real


@pytest.mark.parametrize("heartbeat", [True, False])
async def test_a_flush_longer_than_its_lease_is_not_taken_by_another_worker(
    tmp_path: Path, vault_key: str, heartbeat: bool
) -> None:
    rt = await open_runtime(tmp_path / "data", vault_key, clock=SystemClock())  # type: ignore[arg-type]
    fake = await GoHighLevelFake().start()
    try:
        rt.jobs.lease_s = 0.6  # the flush below takes over 1.5 s: more than two leases
        connection = await connect(rt, "gohighlevel", fake)
        sync = crm_of(rt)
        sync.flush_shards = 1
        await sync.save_integration(
            TENANT, Integration(connection_id=connection.id, options=OPTIONS["gohighlevel"])
        )
        lead = await qualified_lead(rt, 1, enqueue=False)
        await sync.enqueue_flush(TENANT, connection.id, lead.id, events=["lead.qualified"])
        fake.slow_paths["/contacts/upsert"] = [1.6]
        (job,) = await rt.jobs.lease_due()
        other = JobQueue(rt.store, rt.clock, owner="another-worker", lease_s=0.6)
        taken: list[str] = []

        async def poll() -> None:
            while True:
                other._expired_check_at = float("-inf")  # look for expired leases at every poll
                taken.extend(j.id for j in await other.lease_due())
                await asyncio.sleep(0.1)

        poller = asyncio.create_task(poll())
        try:
            with contextlib.nullcontext() if heartbeat else _no_heartbeat(sync):
                await sync.handle(job)
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        if heartbeat:
            assert taken == []
            await rt.jobs.complete(job)
        else:  # the control: without beats the flush job is leased again while it runs
            assert job.id in taken
        assert counts("gohighlevel", fake) == (1, 1, 1)  # written once either way (the claims)
    finally:
        await fake.stop()
        await close_runtime(rt)
