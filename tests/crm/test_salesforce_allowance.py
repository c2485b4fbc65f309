"""Salesforce's daily API allowance (``403 REQUEST_LIMIT_EXCEEDED``) is a wait, not a credential
problem: the sync is deferred without spending an attempt, the connection stays active, the
breaker stays closed, and the lead is synced once the allowance frees."""

from __future__ import annotations

from pathlib import Path

from app.crm.records import Integration, Link, link_id
from app.jobs.queue import job_doc_id
from app.store import collections as col
from app.store import where
from tests.crm.conftest import TENANT, close_runtime, connect, crm_of, open_runtime, qualified_lead
from tests.crm.helpers import OPTIONS, counts
from tests.crm_sync.fakes import SalesforceFake, _Window


async def test_request_limit_exceeded_defers_until_the_allowance_frees(
    tmp_path: Path, vault_key: str
) -> None:
    # Contact + Opportunity mode without an external id: a query and a composite call per lead
    fake = await SalesforceFake(allowance=2, window_s=600.0).start()
    rt = await open_runtime(tmp_path / "data", vault_key)
    try:
        connection = await connect(rt, "salesforce", fake)
        await crm_of(rt).save_integration(
            TENANT, Integration(connection_id=connection.id, options=OPTIONS["salesforce"])
        )
        first = await qualified_lead(rt, 1)
        await rt.worker.drain()
        second = await qualified_lead(rt, 2)
        await rt.worker.drain()
        links = {
            lead.id: await rt.store.get(TENANT, col.CRM_LINKS, link_id(connection.id, lead.id))
            for lead in (first, second)
        }
        synced = [lid for lid, doc in links.items() if doc and doc["status"] == "synced"]
        assert synced == [first.id] and fake.rejected_429 == 1  # the allowance held one lead's two calls
        waiting = second
        job = await rt.store.get(
            TENANT, col.JOBS, job_doc_id("crm_sync", f"f:{connection.id}:{crm_of(rt).shard_of(waiting.id)}")
        )
        assert job is not None and job["status"] == "pending" and job["attempts"] == 0
        assert job["due_at"] >= rt.clock.now() + 500  # the fake's Retry-After: the window's rest
        logs = await rt.store.query(TENANT, col.CRM_SYNC_LOGS, filters=[where("lead_id", "==", waiting.id)])
        assert [d.data["status"] for d in logs] == ["deferred"]
        assert "REQUEST_LIMIT_EXCEEDED" in logs[0].data["error"]
        assert await rt.store.get(TENANT, col.CRM_BATCH, link_id(connection.id, waiting.id))  # still queued
        stored = await rt.connections.repository.get_connection(TENANT, connection.id)  # type: ignore[union-attr]
        assert stored is not None and stored.status == "active"  # not a credential problem
        assert (await crm_of(rt).breaker.state(TENANT, connection.id))["state"] == "closed"
        # the allowance frees (a new window): the deferred lead is synced, once
        fake.window = _Window(100, 600.0)
        rt.clock.advance(job["due_at"] - rt.clock.now() + 700)  # type: ignore[attr-defined]
        await rt.worker.drain()
        doc = await rt.store.get(TENANT, col.CRM_LINKS, link_id(connection.id, waiting.id))
        assert doc is not None and Link.from_doc(doc).status == "synced"
        assert counts("salesforce", fake) == (2, 2, 2)
    finally:
        await close_runtime(rt)
        await fake.stop()
