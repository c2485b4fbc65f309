"""Fixtures for the dashboard's tests: a runtime on a fresh SQLite store with a manual clock, a
test client on a loopback base URL (so the session cookie is sent over plain HTTP), people, and a
tiny playbook that hands a big-budget lead to a human.

The dashboard's logic is backend-independent (it only uses the store port), so these tests run on
SQLite; the store contract suite covers Firestore."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.main import create_app
from app.tenancy.bootstrap import bootstrap
from app.tenancy.directory import new_api_key
from app.tenancy.records import TenantProfile
from channels.base import InboundMessage
from kernel.clock import ManualClock
from tests.app.conftest import ADMIN_KEY, make_settings, no_quiet_hours
from tests.support.recording import RecordingServer

T0 = 1_764_500_000.0
#: argon2 with the smallest cost: real hashes, without 0.6 s per hash on a busy test machine.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
OWNER = ("owner@demo.test", "owner-password-1")
AGENT = ("agent@demo.test", "agent-password-1")
MARKETER = ("marketer@demo.test", "marketer-password-1")
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}

HANDOFF_PLAYBOOK = """\
id: handoff-demo
name: Budget check then a human
version: 1
language: en
triggers: [lead_created, inbound_unknown_lead]
qualification_threshold: 50
steps:
  - id: hello
    type: message
    text: {en: "Hello! Two questions.", fr: "Bonjour ! Deux questions."}
  - id: budget
    type: ask
    slot: budget
    kind: number
    question: {en: "What is your budget?", fr: "Quel est votre budget ?"}
  - id: score-budget
    type: score
    if: (slots.budget or 0) >= 1000
    points: 60
    reason: Big budget
  - id: small
    type: condition
    if: (slots.budget or 0) < 1000
    then: bye
  - id: human
    type: handoff
    reason: Hot lead
    message: {en: "A person will answer you now.", fr: "Une personne va vous répondre."}
  - id: bye
    type: end
    outcome: disqualified
    message: {en: "Thanks, goodbye.", fr: "Merci, au revoir."}
"""


async def setup_runtime(rt: Runtime) -> None:
    """Bootstrap the demo tenant, then :func:`setup_tenant` for it."""
    await bootstrap(rt)
    await setup_tenant(rt, "demo")


async def setup_tenant(rt: Runtime, tenant_id: str) -> str:
    """The tenant (created if absent, with a new admin key, returned; "" for an existing one),
    quiet hours off, the handoff playbook, and three people (owner, agent, marketer)."""
    key = ""
    if not await rt.tenants.exists(tenant_id):
        await rt.tenants.save_profile(TenantProfile(id=tenant_id, name=f"Tenant {tenant_id}"))
        key = new_api_key()
        await rt.tenants.add_api_key(tenant_id, key, label="test")
    await no_quiet_hours(rt, tenant_id)
    await rt.playbooks.save(tenant_id, HANDOFF_PLAYBOOK, origin="handoff-demo.yaml")
    people = dashboard_people(rt)
    people.hasher = FAST_HASHER
    for (email, password), role in ((OWNER, "owner"), (AGENT, "agent"), (MARKETER, "marketer")):
        await people.create_user(tenant_id, email, password, role=role, name=role.title())
    return key


def dashboard_people(rt: Runtime) -> Any:
    """The dashboard feature's :class:`PeopleDirectory` of this runtime."""
    from app.dashboard.plugin import DashboardFeature

    return next(f for f in rt.features if isinstance(f, DashboardFeature)).people


@pytest.fixture
async def runtime(tmp_path: Path, graph: RecordingServer) -> AsyncIterator[Runtime]:
    """A runtime on SQLite with a :class:`ManualClock` at ``T0``; the worker runs only on ``drain()``."""
    rt = Runtime.build(make_settings(tmp_path / "data", graph.base_url), clock=ManualClock(T0))
    await setup_runtime(rt)
    yield rt
    await rt.channels.aclose()
    await rt.store.close()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = create_app(runtime=runtime, start_worker=False)
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as test_client:
        yield test_client


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


async def sign_in(client: AsyncTestClient[Litestar], email: str, password: str, tenant: str = "demo") -> str:
    """Sign in through the form; returns the session's CSRF token (from the inbox page)."""
    page = await client.get("/app/signin")
    token = CSRF_FIELD.search(page.text)
    assert token, page.text
    response = await client.post(
        "/app/signin",
        data={"tenant": tenant, "email": email, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    inbox = await client.get("/app/inbox")
    assert inbox.status_code == 200
    meta = CSRF_META.search(inbox.text)
    assert meta and meta.group(1)
    return meta.group(1)


async def start_webchat_lead(rt: Runtime, client: AsyncTestClient[Litestar], name: str) -> dict[str, Any]:
    """Create a web-chat lead on the handoff playbook through the API and run its first turn."""
    response = await client.post(
        "/api/v1/leads",
        json={"name": name, "channel": "webchat", "playbook_id": "handoff-demo", "source": "test"},
        headers=AUTH,
    )
    assert response.status_code == 201, response.text
    await rt.worker.drain()
    body: dict[str, Any] = response.json()
    return body


async def lead_says(rt: Runtime, webchat_id: str, text: str) -> None:
    """The lead writes ``text`` on web chat; the worker runs the turn."""
    await rt.accept(
        "demo",
        InboundMessage(
            channel="webchat",
            provider_message_id=f"wc-{uuid.uuid4().hex}",
            sender=webchat_id,
            recipient="",
            text=text,
            timestamp=rt.clock.now(),
        ),
    )
    await rt.worker.drain()
