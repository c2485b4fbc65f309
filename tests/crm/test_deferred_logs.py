"""A spent allowance defers every queued lead of the connection, but is logged once per
connection per pause (one ``deferred`` sync log), not once per lead per retry."""

from __future__ import annotations

from app.crm.records import Integration
from app.store import collections as col
from app.store import where
from tests.crm.conftest import TENANT, connect, crm_of, qualified_lead
from tests.crm.helpers import OPTIONS
from tests.crm_sync.fakes import SalesforceFake


async def _deferred(rt) -> list[dict]:
    docs = await rt.store.query(TENANT, col.CRM_SYNC_LOGS, filters=[where("status", "==", "deferred")])
    return [d.data for d in docs]


async def test_a_spent_allowance_is_logged_once_per_pause(rt) -> None:
    fake = await SalesforceFake(allowance=1, window_s=3600.0).start()
    try:
        connection = await connect(rt, "salesforce", fake)
        sync = crm_of(rt)
        await sync.save_integration(
            TENANT, Integration(connection_id=connection.id, options=OPTIONS["salesforce"])
        )
        for n in range(12):
            lead = await qualified_lead(rt, n, enqueue=False)
            await rt.store.set(TENANT, col.LEADS, lead.id, {"email": f"camille{n}@example.com"}, merge=True)
            await sync.enqueue_flush(TENANT, connection.id, lead.id, events=["lead.qualified"])
        assert len({sync.shard_of(f"ld_test_{n:06d}") for n in range(12)}) == 2  # two flush jobs defer
        await rt.worker.drain()
        rt.clock.advance(5.0)  # within the pause: the jobs are not due, nothing more is logged
        await rt.worker.drain()
        first = await _deferred(rt)
        assert len(first) == 1 and "REQUEST_LIMIT_EXCEEDED" in first[0]["error"]
        assert "leads wait" in first[0]["error"]
        flushes = [d.data for d in await rt.store.query_group(col.JOBS) if d.data["key"].startswith("f:")]
        # both shards were deferred: by the CRM (its Retry-After), or by the paused client (its
        # pause is capped at 300 s, then the CRM is asked again)
        assert len(flushes) == 2
        assert all(j["due_at"] > rt.clock.now() + 250 and j["attempts"] == 0 for j in flushes)
        # the pause ends, the allowance is still spent: a new pause, one more line
        rt.clock.advance(3 * 3600.0)
        await rt.worker.drain()
        assert len(await _deferred(rt)) == 2
        assert len(await rt.store.query(TENANT, col.CRM_BATCH)) == 12  # every lead still queued
    finally:
        await fake.stop()
