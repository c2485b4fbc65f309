"""Fixtures for the CRM sync tests: a runtime on a fresh SQLite file with a manual clock, the
credential layer wired in (``runtime.connections``), CRM connections pointing at the stateful
fakes of :mod:`tests.crm_sync.fakes`, and qualified leads."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import stamina

from app.composition import Runtime
from app.connections.plugin import connections_feature
from app.conversations.records import Conversation, ConversationEvent, Lead
from app.crm.plugin import CrmFeature
from app.crm.sync import CrmSync
from app.store import collections as col
from app.tenancy.bootstrap import bootstrap
from crm_sync.models import Connection
from crm_sync.vault import generate_key
from kernel.clock import ManualClock
from tests.app.conftest import make_settings, no_quiet_hours
from tests.crm_sync.fakes import FakeServer
from tests.crm_sync.support import TEST_TOKEN

TENANT = "demo"
LOCATION = "ve9EPM428h8vShlRW1KT"
START = 1_800_000_000.0


async def open_runtime(data_dir: Path, key: str, *, clock: ManualClock | None = None) -> Runtime:
    """A bootstrapped runtime over ``data_dir`` with the credential layer (``key``), its CRM sync
    tuned for tests (tiny backoff, a 3-failure breaker with a 30 s cool-down) and fast clients
    (one attempt each: the queue does the retrying)."""
    rt = Runtime.build(
        make_settings(
            data_dir, "http://127.0.0.1:9", public_base_url="https://app.leadwarm.test", encryption_key=key
        ),
        clock=clock or ManualClock(START),
    )
    await bootstrap(rt)
    await no_quiet_hours(rt)
    services = connections_feature(rt).services  # built by the connections feature, with ``key``
    services.clients.retry_attempts = 1
    services.clients.clock = rt.clock  # rate-limit pauses in the test's time
    sync = crm_of(rt)
    sync.backoff_base_s = 1.0
    sync.breaker.threshold = 3
    sync.breaker.cooldown_s = 30.0
    return rt


async def close_runtime(rt: Runtime) -> None:
    if rt.connections is not None:
        await rt.connections.aclose()
    await rt.channels.aclose()
    await rt.store.close()


def crm_of(rt: Runtime) -> CrmSync:
    """The runtime's CRM sync service."""
    return next(f for f in rt.features if isinstance(f, CrmFeature)).sync


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    """The authorised client tries once (stamina's testing mode, one attempt): the sync queue's own
    retries, backoff and circuit breaker are under test here."""
    stamina.set_testing(True, attempts=1)
    yield
    stamina.set_testing(False)


@pytest.fixture
def vault_key() -> str:
    return generate_key()


@pytest.fixture
async def rt(tmp_path: Path, vault_key: str) -> AsyncIterator[Runtime]:
    runtime = await open_runtime(tmp_path / "data", vault_key)
    try:
        yield runtime
    finally:
        await close_runtime(runtime)


ACCOUNTS: dict[str, dict[str, Any]] = {
    "gohighlevel": {"location_id": LOCATION},  # as the catalog stores the token response's locationId
    "hubspot": {"portal_id": "62515"},
    "pipedrive": {},
    "salesforce": {"api_version": "v61.0"},
}


async def connect(rt: Runtime, provider: str, fake: FakeServer, *, tenant_id: str = TENANT) -> Connection:
    """An active OAuth connection of ``provider`` whose API is ``fake`` (token ``test-token``)."""
    services = rt.connections
    assert services is not None
    account = dict(ACCOUNTS[provider])
    if provider == "salesforce":
        account["instance_url"] = fake.base_url
    connection = Connection(
        id=f"cn_{provider}_{uuid.uuid4().hex[:8]}",
        tenant_id=tenant_id,
        provider=provider,
        auth_mode="oauth2",
        account=account,
        settings={"base_url": fake.base_url},
        expires_at=rt.clock.now() + 10 * 86400 + 1e9,
    ).with_secrets(services.vault, {"access_token": TEST_TOKEN, "refresh_token": "refresh-me"})
    return await services.repository.save_connection(connection)


async def qualified_lead(rt: Runtime, n: int, *, tenant_id: str = TENANT, enqueue: bool = True) -> Lead:
    """Lead ``n``, qualified on WhatsApp (answers, score events), written as a turn would, and its
    ``lead.qualified`` trigger queued (``enqueue``)."""
    now = rt.clock.now()
    lead = Lead(
        id=f"ld_test_{n:06d}",
        tenant_id=tenant_id,
        name=f"Camille Test{n}",
        phone=f"+336{10000000 + n:08d}",
        slots={
            "homeowner": True,
            "monthly_bill": 180.0,
            "timeline": "asap",
            "email": f"camille{n}@example.com",
        },
        score=80,
        stage="qualified",
        language="en",
        created_at=now,
        updated_at=now,
    )
    conv = Conversation(
        id=f"cv_test_{n:06d}",
        tenant_id=tenant_id,
        lead_id=lead.id,
        channel="whatsapp",
        address=lead.phone or "",
        playbook_id="solar-qualification-en",
        playbook_version=1,
        status="active",
        events=[
            ConversationEvent(at=now, type="score_changed", detail={"points": 20, "reason": "Owns the home"}),
            ConversationEvent(at=now, type="score_changed", detail={"points": 60, "reason": "Hot"}),
            ConversationEvent(at=now, type="lead.qualified", detail={"score": 80, "threshold": 60}),
        ],
        created_at=now,
        updated_at=now,
    )
    await rt.store.set(tenant_id, col.LEADS, lead.id, lead.to_doc())
    await rt.store.set(tenant_id, col.CONVERSATIONS, conv.id, conv.to_doc())
    if enqueue:
        await rt.jobs.enqueue(
            tenant_id,
            "crm_sync",
            f"t:{lead.id}",
            payload={
                "op": "trigger",
                "lead_id": lead.id,
                "conversation_id": conv.id,
                "events": ["lead.qualified"],
                "at": now,
            },
        )
    return lead


async def run_until_idle(
    rt: Runtime, *, step_s: float = 1.0, max_steps: int = 2000, horizon_s: float | None = None
) -> None:
    """Drain the queue, moving the manual clock on while jobs wait (backoff, circuit cool-down),
    until no job is left (or none due within ``horizon_s`` seconds)."""
    clock = rt.clock
    assert isinstance(clock, ManualClock)
    for _ in range(max_steps):
        await rt.worker.drain()
        pending = await rt.store.query_group(col.JOBS)
        waiting = [
            d
            for d in pending
            if d.data.get("status") != "dead"
            and (horizon_s is None or float(d.data["due_at"]) <= clock.now() + horizon_s)
        ]
        if not waiting:
            return
        clock.advance(step_s)
    raise AssertionError("the queue never went idle")
