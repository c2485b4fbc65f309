"""Failures: an outage (5xx and 429) with a restart in the middle of the batch, then recovery,
syncs every lead exactly once; the circuit breaker opens and closes; the dead letter is replayed
through the API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.crm.records import Integration, Link, link_id
from app.main import create_app
from app.store import collections as col
from kernel.clock import ManualClock
from tests.app.conftest import ADMIN_KEY
from tests.crm.conftest import (
    START,
    TENANT,
    close_runtime,
    connect,
    crm_of,
    open_runtime,
    qualified_lead,
    run_until_idle,
)
from tests.crm.helpers import OPTIONS, counts
from tests.crm_sync.fakes import Answer, HubSpotFake

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def outage(fake: HubSpotFake, clock: ManualClock, until: float, *, first_429s: int = 2) -> dict[str, int]:
    """Make ``fake`` answer 429 (``first_429s`` times, with its Retry-After) then 503 while
    ``clock`` is before ``until``; returns the counters."""
    seen = {"429": 0, "503": 0}
    normal = fake.limit

    def limit(method: str, path: str) -> Answer | None:
        if clock.now() < until:
            if seen["429"] < first_429s:
                seen["429"] += 1
                return 429, {"status": "error", "category": "RATE_LIMITS"}, {"Retry-After": "2"}
            seen["503"] += 1
            return 503, {"status": "error", "message": "simulated outage"}, {}
        return normal(method, path)

    fake.limit = limit  # type: ignore[method-assign]
    return seen


async def synced_links(rt: Runtime, connection_id: str) -> list[Link]:
    docs = await rt.store.query(TENANT, col.CRM_LINKS, filters=[])
    return [Link.from_doc(d.data) for d in docs if d.data["connection_id"] == connection_id]


async def test_outage_restart_and_recovery_sync_every_lead_exactly_once(
    tmp_path: Path, vault_key: str
) -> None:
    fake = await HubSpotFake().start()
    clock = ManualClock(START)
    rt = await open_runtime(tmp_path / "data", vault_key, clock=clock)
    try:
        connection = await connect(rt, "hubspot", fake)
        await crm_of(rt).save_integration(
            TENANT, Integration(connection_id=connection.id, options=OPTIONS["hubspot"])
        )
        crm_of(rt).max_attempts = 8
        seen = outage(fake, clock, START + 600)  # a 10-minute outage
        leads = [await qualified_lead(rt, n) for n in range(20)]
        # a few minutes of the outage: retries, then the breaker holds the calls back
        for _ in range(18):
            await rt.worker.drain()
            clock.advance(10)
        assert counts("hubspot", fake) == (0, 0, 0)
        breaker = await crm_of(rt).breaker.state(TENANT, connection.id)
        assert breaker["state"] in ("open", "half_open") and breaker["opened"] >= 1
        assert seen["429"] == 2 and seen["503"] >= 3
        # the outage ends; the process dies in the middle of the batch (jobs leased, requests out)
        clock.set(START + 601)
        await rt.worker.run_once()
        await asyncio.sleep(0.05)
        for task in list(rt.worker._running):
            task.cancel()
        await asyncio.gather(*rt.worker._running, return_exceptions=True)
        await close_runtime(rt)
        # a new process over the same file takes over the expired leases and finishes
        clock.advance(120)
        rt = await open_runtime(tmp_path / "data", vault_key, clock=clock)
        crm_of(rt).max_attempts = 8
        await run_until_idle(rt, step_s=10)
        links = await synced_links(rt, connection.id)
        assert sorted(link.lead_id for link in links) == sorted(lead.id for lead in leads)
        assert all(link.status == "synced" for link in links)
        assert counts("hubspot", fake) == (20, 20, 20)  # nothing lost, nothing twice
        assert (
            len(
                {
                    fake.objects["contacts"][link.remote_ids["contact"]]["properties"]["email"]
                    for link in links
                }
            )
            == 20
        )
        assert (await crm_of(rt).breaker.state(TENANT, connection.id))["state"] == "closed"
    finally:
        await close_runtime(rt)
        await fake.stop()


async def test_the_circuit_breaker_opens_then_closes(rt: Runtime) -> None:
    fake = await HubSpotFake().start()
    clock = rt.clock
    assert isinstance(clock, ManualClock)
    try:
        connection = await connect(rt, "hubspot", fake)
        sync = crm_of(rt)
        fake.fail_next = [503, 503, 503]
        await qualified_lead(rt, 1)
        states = []
        for _ in range(3):  # three failed attempts, backoff 1 s then 2 s (+-20 %)
            await rt.worker.drain()
            states.append((await sync.breaker.state(TENANT, connection.id))["state"])
            clock.advance(3)
        assert states == ["closed", "closed", "open"]
        # while open, the job waits without calling the CRM (and without spending an attempt)
        requests = len(fake.requests)
        clock.advance(5)
        await rt.worker.drain()
        assert len(fake.requests) == requests
        logs = await rt.store.query(TENANT, col.CRM_SYNC_LOGS)
        assert sorted(d.data["status"] for d in logs).count("deferred") >= 1
        # after the cool-down one probe goes, succeeds, and closes the breaker
        clock.advance(30)
        await run_until_idle(rt)
        assert (await sync.breaker.state(TENANT, connection.id))["state"] == "closed"
        assert counts("hubspot", fake) == (1, 1, 1)
    finally:
        await fake.stop()


async def test_dead_letter_then_replay_through_the_api(rt: Runtime) -> None:
    fake = await HubSpotFake().start()
    try:
        connection = await connect(rt, "hubspot", fake)
        sync = crm_of(rt)
        sync.max_attempts = 2
        fake.fail_next = [502, 502]  # two attempts fail: the dead letter
        lead = await qualified_lead(rt, 1)
        await run_until_idle(rt)
        doc = await rt.store.get(TENANT, col.CRM_LINKS, link_id(connection.id, lead.id))
        assert doc is not None and doc["status"] == "dead" and "502" in doc["last_error"]
        fake.fail_paths["/crm/v3/objects/contacts/batch/upsert"] = [400]  # not retryable: dead at once
        other = await qualified_lead(rt, 2)
        await run_until_idle(rt)
        assert (await rt.store.get(TENANT, col.CRM_LINKS, link_id(connection.id, other.id)) or {})[
            "status"
        ] == "dead"
        assert counts("hubspot", fake) == (0, 0, 0)

        app = create_app(runtime=rt, start_worker=False)
        async with AsyncTestClient(app=app) as client:
            resp = await client.post(f"/api/v1/crm/{connection.id}/replay", headers=AUTH)
            assert resp.status_code == 200 and resp.json() == {"replayed": 2}
            await run_until_idle(rt)
            assert counts("hubspot", fake) == (2, 2, 2)
            logs: Any = (await client.get(f"/api/v1/crm/{connection.id}/logs", headers=AUTH)).json()["logs"]
            assert [entry["status"] for entry in logs].count("ok") == 2
            assert {"dead", "retry"} <= {entry["status"] for entry in logs}
            dead = next(entry for entry in logs if entry["status"] == "dead")
            assert dead["error"] and dead["response"]["status"] in (400, 502)
            assert "access_token" not in str(logs) and "test-token" not in str(logs)
            assert (await client.post("/api/v1/crm/nope/replay", headers=AUTH)).status_code == 404
            assert (await client.post(f"/api/v1/crm/{connection.id}/replay")).status_code == 401
    finally:
        await fake.stop()
