"""A CRM with batch endpoints is written in vendor batches through the queue: 40 qualified leads
reach HubSpot in a handful of batch calls (not 5 per lead), each once, with their links and logs;
a restart with leads still queued loses none and writes none twice."""

from __future__ import annotations

from pathlib import Path

from app.crm.records import Integration, Link
from app.store import collections as col
from tests.crm.conftest import (
    TENANT,
    close_runtime,
    connect,
    crm_of,
    open_runtime,
    qualified_lead,
    run_until_idle,
)
from tests.crm.helpers import OPTIONS, counts
from tests.crm_sync.fakes import HubSpotFake


async def test_forty_leads_in_a_few_batch_calls_then_a_restart_loses_none(
    tmp_path: Path, vault_key: str
) -> None:
    fake = await HubSpotFake().start()
    rt = await open_runtime(tmp_path / "data", vault_key)
    try:
        connection = await connect(rt, "hubspot", fake)
        await crm_of(rt).save_integration(
            TENANT, Integration(connection_id=connection.id, options=OPTIONS["hubspot"])
        )
        sync = crm_of(rt)
        for n in range(40):  # queued as the trigger queues them (their e-mail already known)
            lead = await qualified_lead(rt, n, enqueue=False)
            await rt.store.set(TENANT, col.LEADS, lead.id, {"email": f"camille{n}@example.com"}, merge=True)
            await sync.enqueue_flush(TENANT, connection.id, lead.id, events=["lead.qualified"])
        await run_until_idle(rt)
        assert counts("hubspot", fake) == (40, 40, 40)
        # per shard (2): upsert contacts, create deals, read their associations, create notes,
        # read theirs: 5 calls for up to 100 leads
        assert len(fake.requests) == 2 * 5
        assert all("/batch/" in path for _, path in fake.requests)
        links = [Link.from_doc(d.data) for d in await rt.store.query(TENANT, col.CRM_LINKS)]
        assert len(links) == 40 and {link.status for link in links} == {"synced"}
        assert all({"contact", "deal", "note"} <= set(link.remote_ids) for link in links)
        logs = await rt.store.query(TENANT, col.CRM_SYNC_LOGS)
        assert sorted(d.data["status"] for d in logs) == ["ok"] * 40
        assert await rt.store.query(TENANT, col.CRM_BATCH) == []

        # 10 more queued, the process stops before its flush runs; a new one picks them up
        for n in range(40, 50):
            await qualified_lead(rt, n)
        await rt.worker.drain(max_rounds=1)  # the triggers ran: entries and flush jobs are stored
    finally:
        await close_runtime(rt)
    rt = await open_runtime(tmp_path / "data", vault_key)
    try:
        await run_until_idle(rt)
        assert counts("hubspot", fake) == (50, 50, 50)
        links = [Link.from_doc(d.data) for d in await rt.store.query(TENANT, col.CRM_LINKS)]
        assert len(links) == 50 and all(link.writes == 1 for link in links)
    finally:
        await close_runtime(rt)
        await fake.stop()
