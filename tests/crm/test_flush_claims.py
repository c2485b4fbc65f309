"""Two writers of the same queued leads never both write them: a flush job whose lease expired
while its batch was still being sent (a slow CRM, 429 waits), and an hourly batch job of the same
connection, each take only the ``crm_batch`` entries nobody else holds, so HubSpot gets each lead
once."""

from __future__ import annotations

import asyncio
from typing import Any

from app.crm.records import Integration, Link
from app.jobs.queue import Job, RetryLater
from app.store import collections as col
from tests.crm.conftest import TENANT, connect, crm_of, qualified_lead, run_until_idle
from tests.crm.helpers import OPTIONS, counts
from tests.crm_sync.fakes import HubSpotFake


def _job(connection_id: str, op: str, shard: int | None) -> Job:
    payload: dict[str, Any] = {"op": op, "connection_id": connection_id}
    if shard is not None:
        payload["shard"] = shard
    key = f"f:{connection_id}:{shard}" if op == "flush" else f"b:{connection_id}"
    return Job(id=f"crm_sync:{key}", tenant_id=TENANT, kind="crm_sync", key=key, due_at=0.0, payload=payload)


async def _run(sync, job: Job) -> str:
    try:
        await sync.handle(job)
    except RetryLater as later:
        return f"later {later.delay_s:.0f}"
    return "done"


async def _queue(rt, sync, connection_id: str, n: int) -> None:
    for i in range(n):
        lead = await qualified_lead(rt, i, enqueue=False)
        await rt.store.set(TENANT, col.LEADS, lead.id, {"email": f"camille{i}@example.com"}, merge=True)
        await sync.enqueue_flush(TENANT, connection_id, lead.id, events=["lead.qualified"])


async def test_two_runs_of_one_shard_at_once_write_each_lead_once(rt) -> None:
    fake = await HubSpotFake().start()
    try:
        connection = await connect(rt, "hubspot", fake)
        sync = crm_of(rt)
        sync.flush_shards = 1
        await sync.save_integration(
            TENANT, Integration(connection_id=connection.id, options=OPTIONS["hubspot"])
        )
        await _queue(rt, sync, connection.id, 20)
        job = _job(connection.id, "flush", 0)
        fake.slow_paths["/crm/v3/objects/deals/batch/create"] = [0.5]
        # the same job run twice at once, as after a lease that expired mid-batch
        outcomes = await asyncio.gather(_run(sync, job), _run(sync, job))
        assert "done" in outcomes
        assert counts("hubspot", fake) == (20, 20, 20)
        assert [p for _, p in fake.requests].count("/crm/v3/objects/contacts/batch/upsert") == 1
        await run_until_idle(rt)
        assert counts("hubspot", fake) == (20, 20, 20)
        links = [Link.from_doc(d.data) for d in await rt.store.query(TENANT, col.CRM_LINKS)]
        assert len(links) == 20 and all(link.writes == 1 for link in links)
        assert await rt.store.query(TENANT, col.CRM_BATCH) == []
    finally:
        await fake.stop()


async def test_an_hourly_batch_and_a_flush_at_once_write_each_lead_once(rt) -> None:
    fake = await HubSpotFake().start()
    try:
        connection = await connect(rt, "hubspot", fake)
        sync = crm_of(rt)
        await sync.save_integration(
            TENANT,
            Integration(connection_id=connection.id, options=OPTIONS["hubspot"], frequency="hourly"),
        )
        await _queue(rt, sync, connection.id, 20)
        shards = {sync.shard_of(f"ld_test_{i:06d}") for i in range(20)}
        fake.slow_paths["/crm/v3/objects/deals/batch/create"] = [0.5]
        runs = [_run(sync, _job(connection.id, "batch", None))]
        runs += [_run(sync, _job(connection.id, "flush", s)) for s in sorted(shards)]
        await asyncio.gather(*runs)
        await run_until_idle(rt)
        assert counts("hubspot", fake) == (20, 20, 20)
        links = [Link.from_doc(d.data) for d in await rt.store.query(TENANT, col.CRM_LINKS)]
        assert len(links) == 20 and all(link.writes == 1 for link in links)
    finally:
        await fake.stop()


async def test_failed_attempts_are_counted_per_lead_not_per_flush_job(rt) -> None:
    """A lead queued into a flush job that already failed twice gets its own attempts: when the
    third failure dead-letters the first lead (3 attempts), the newcomer is retried and synced."""
    fake = await HubSpotFake().start()
    try:
        connection = await connect(rt, "hubspot", fake)
        sync = crm_of(rt)
        sync.max_attempts = 3
        sync.breaker.threshold = 100
        await sync.save_integration(
            TENANT, Integration(connection_id=connection.id, options=OPTIONS["hubspot"])
        )
        fake.fail_paths["/crm/v3/objects/contacts/batch/upsert"] = [503, 503, 503]
        await _queue(rt, sync, connection.id, 1)
        for _ in range(2):
            await rt.worker.drain()
            rt.clock.advance(60.0)
        lead = await qualified_lead(rt, 8, enqueue=False)  # the same flush shard as lead 0
        await rt.store.set(TENANT, col.LEADS, lead.id, {"email": "camille8@example.com"}, merge=True)
        await sync.enqueue_flush(TENANT, connection.id, lead.id, events=["lead.qualified"])
        assert sync.shard_of(lead.id) == sync.shard_of("ld_test_000000")
        await run_until_idle(rt, step_s=5.0)
        links = {
            d.data["lead_id"]: Link.from_doc(d.data) for d in await rt.store.query(TENANT, col.CRM_LINKS)
        }
        assert links["ld_test_000000"].status == "dead" and links["ld_test_000000"].attempts == 3
        assert links["ld_test_000008"].status == "synced"
        assert counts("hubspot", fake) == (1, 1, 1)
    finally:
        await fake.stop()
