"""The store-backed repository on both backends: leases, single-use states, paging, audit order,
atomic secret updates. ``open_repo()`` opens a second repository over the same data (another
process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from app.connections import StoreConnectionRepository
from app.store import Store
from app.store.firestore import FirestoreStore
from app.store.sqlite import SQLiteStore
from crm_sync.audit import AuditEvent
from crm_sync.models import Connection, OAuthState
from tests.conftest import EMULATOR_PROJECT
from tests.support.firestore_emulator import FirestoreEmulator


@pytest.fixture(params=["sqlite", "firestore"])
async def open_repo(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[[], StoreConnectionRepository]]:
    opened: list[Store] = []
    if request.param == "firestore":
        emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
        emulator.reset()

    def open_one() -> StoreConnectionRepository:
        backend: Store
        if request.param == "sqlite":
            backend = SQLiteStore(tmp_path / "leadwarm.db")
        else:
            backend = FirestoreStore(project_id=EMULATOR_PROJECT, emulator_host=emulator.host_port)
        opened.append(backend)
        return StoreConnectionRepository(backend)

    yield open_one
    for backend in opened:
        await backend.close()


def _conn(i: int, tenant: str = "t1") -> Connection:
    return Connection(
        id=f"conn_{i:03d}",
        tenant_id=tenant,
        provider="hubspot",
        auth_mode="oauth2",
        secrets={"access_token": "v1.00000000.sealed"},
    )


async def test_connections_crud_and_paging(open_repo: Callable[[], StoreConnectionRepository]) -> None:
    repo = open_repo()
    for i in range(5):
        stored = await repo.save_connection(_conn(i))
        assert stored.version == 1
    await repo.save_connection(_conn(9, tenant="t2"))
    page1 = await repo.list_connections("t1", limit=2)
    page2 = await repo.list_connections("t1", after=page1[-1].id, limit=2)
    page3 = await repo.list_connections("t1", after=page2[-1].id, limit=2)
    assert [c.id for c in page1 + page2 + page3] == [f"conn_{i:03d}" for i in range(5)]
    assert await repo.list_sealed_ids("t2", "connection") == ["conn_009"]
    assert set(await repo.list_tenants()) >= {"t1", "t2"}
    updated = await repo.update_connection("t1", "conn_001", lambda c: c.replace(label="main"))
    assert updated is not None and updated.label == "main" and updated.version == 2
    assert await repo.update_connection("t1", "missing", lambda c: c) is None
    assert await repo.update_secrets(
        "t1", "connection", "conn_002", lambda s: {"access_token": "v1.11111111.x"}
    )
    assert await repo.get_secrets("t1", "connection", "conn_002") == {"access_token": "v1.11111111.x"}
    assert not await repo.update_secrets("t1", "connection", "conn_002", lambda s: None)
    await repo.delete_connection("t1", "conn_000")
    assert await repo.get_connection("t1", "conn_000") is None
    assert await repo.get_connection("t2", "conn_001") is None  # tenant-scoped


async def test_lease_is_exclusive_until_released_or_expired(
    open_repo: Callable[[], StoreConnectionRepository],
) -> None:
    a, b = open_repo(), open_repo()
    await a.save_connection(_conn(1))
    assert await a.acquire_lease("t1", "conn_001", owner="A", ttl_s=30, now=1000.0)
    assert not await b.acquire_lease("t1", "conn_001", owner="B", ttl_s=30, now=1001.0)
    assert await a.acquire_lease("t1", "conn_001", owner="A", ttl_s=30, now=1002.0)  # re-entrant
    await b.release_lease("t1", "conn_001", owner="B")  # not B's: no effect
    assert not await b.acquire_lease("t1", "conn_001", owner="B", ttl_s=30, now=1003.0)
    assert await b.acquire_lease("t1", "conn_001", owner="B", ttl_s=30, now=1040.0)  # A's expired
    await b.release_lease("t1", "conn_001", owner="B")
    assert await a.acquire_lease("t1", "conn_001", owner="A", ttl_s=30, now=1041.0)


async def test_concurrent_lease_takers_one_wins(open_repo: Callable[[], StoreConnectionRepository]) -> None:
    repos = [open_repo(), open_repo()]
    results = await asyncio.gather(
        *(repos[i % 2].acquire_lease("t1", "c", owner=f"o{i}", ttl_s=30, now=5000.0) for i in range(10))
    )
    assert results.count(True) == 1


async def test_states_are_single_use(open_repo: Callable[[], StoreConnectionRepository]) -> None:
    a, b = open_repo(), open_repo()
    state = OAuthState(
        key="k" * 64,
        tenant_id="t1",
        provider="hubspot",
        redirect_uri="https://x/cb",
        scopes=("a",),
        created_at=100.0,
        expires_at=700.0,
        secrets={"code_verifier": "v1.x.y"},
    )
    await a.create_state(state)
    firsts = await asyncio.gather(a.consume_state("k" * 64, now=200.0), b.consume_state("k" * 64, now=200.0))
    fresh = [s for s in firsts if s is not None and s.used_at is None]
    assert len(fresh) == 1 and fresh[0].tenant_id == "t1" and fresh[0].secrets
    again = await a.consume_state("k" * 64, now=300.0)
    assert again is not None and again.used_at == 200.0 and again.secrets == {}
    assert await a.consume_state("unknown", now=300.0) is None
    assert await a.purge_states(before=800.0) == 1
    assert await a.consume_state("k" * 64, now=900.0) is None


async def test_audit_newest_first(open_repo: Callable[[], StoreConnectionRepository]) -> None:
    repo = open_repo()
    for i, kind in enumerate(["connect", "refresh", "disconnect"]):
        await repo.append_audit(
            AuditEvent.new("t1", kind, connection_id="c1", provider="hubspot", at=1000.0 + i)
        )
    await repo.append_audit(AuditEvent.new("t1", "connect", connection_id="c2", at=2000.0))
    assert [e.kind for e in await repo.list_audit("t1", connection_id="c1")] == [
        "disconnect",
        "refresh",
        "connect",
    ]
    assert [e.connection_id for e in await repo.list_audit("t1", limit=2)] == ["c2", "c1"]
    assert await repo.list_audit("t2") == []
