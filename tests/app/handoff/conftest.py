"""Fixtures for the handoff, settings, routing and opening tests: every channel wired to a stand-in
on 127.0.0.1 (WhatsApp: a recording Graph API; SMS: a fake Twilio; email: aiosmtpd), a webhook
receiver, a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime, build_channels
from app.main import create_app
from app.tenancy.bootstrap import bootstrap
from channels.email import EmailChannel
from channels.sms import TwilioSmsChannel
from kernel.clock import ManualClock
from tests.app.conftest import ADMIN_KEY, make_settings
from tests.conftest import EMULATOR_PROJECT
from tests.fixtures.twilio.fake_twilio import FakeTwilio
from tests.support.firestore_emulator import FirestoreEmulator
from tests.support.recording import RecordingServer
from tests.support.smtp_server import SmtpRecorder, running_smtp_server

Client = AsyncTestClient[Litestar]
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-auth-token-0123456789"
OUR_NUMBER = "+15017122661"
OUR_MAILBOX = "hello@sunnywatt.example"
OPS = ["ops@sunnywatt.example", "sales@sunnywatt.example"]
#: A Monday, 10:00 UTC.
MONDAY_10H = 1_764_583_200.0


@dataclass
class World:
    runtime: Runtime
    client: Client
    clock: ManualClock
    graph: RecordingServer
    twilio: FakeTwilio
    smtp: SmtpRecorder
    hook: RecordingServer
    secret: str


@pytest.fixture
def smtp() -> Iterator[tuple[int, SmtpRecorder]]:
    with running_smtp_server() as (controller, recorder):
        yield controller.port, recorder


@pytest.fixture
def twilio_api() -> Iterator[FakeTwilio]:
    server = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def receiver() -> Iterator[RecordingServer]:
    server = RecordingServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def world(
    tmp_path: Path,
    graph: RecordingServer,
    twilio_api: FakeTwilio,
    smtp: tuple[int, SmtpRecorder],
    receiver: RecordingServer,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[World]:
    """Every channel wired to its stand-in, the demo tenant with notification addresses, a webhook
    and office hours around the clock; the clock is manual, the worker runs on ``drain()``.

    On SQLite; ``@pytest.mark.parametrize("world", ["firestore"], indirect=True)`` runs a test on
    the Firestore emulator instead."""
    backend: dict[str, Any] = {"store": "sqlite"}
    if getattr(request, "param", "sqlite") == "firestore":
        emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
        emulator.reset()
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulator.host_port)
        backend = {
            "store": "firestore",
            "firebase_project_id": EMULATOR_PROJECT,
            "firestore_emulator_host": emulator.host_port,
        }
    settings = make_settings(
        tmp_path / "data",
        graph.base_url,
        **backend,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_phone_number=OUR_NUMBER,
        public_base_url="https://leads.example.com",
    )
    sms = TwilioSmsChannel(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_number=OUR_NUMBER,
        public_base_url="https://leads.example.com",
        api_base_url=twilio_api.base_url,
    )
    email = EmailChannel(
        host="127.0.0.1",
        port=smtp[0],
        from_address=f"SunnyWatt <{OUR_MAILBOX}>",
        starttls=False,
        unsubscribe_base_url="https://leads.example.com",
        unsubscribe_secret="unsub-secret",
        tenant_id=settings.default_tenant_id,
        timeout_s=5.0,
    )
    clock = ManualClock(MONDAY_10H)
    rt = Runtime.build(
        settings, clock=clock, channels={**build_channels(settings), "sms": sms, "email": email}
    )
    await bootstrap(rt)
    profile = await rt.tenants.profile("demo")
    await rt.tenants.save_profile(
        profile.model_copy(
            update={
                "quiet_hours_start": "00:00",
                "quiet_hours_end": "00:00",
                "timezone": "UTC",
                "handoff_emails": OPS,
                "handoff_webhook_url": receiver.base_url + "/hooks/leadwarm",
                "handoff_response_minutes": 30,
                "office_hours_start": "08:00",
                "office_hours_end": "19:00",
            }
        )
    )
    app = create_app(runtime=rt, start_worker=False)
    async with AsyncTestClient(app=app) as client:
        rotated = await client.post("/api/v1/handoff/webhook-secret", headers=AUTH)
        assert rotated.status_code == 201
        yield World(rt, client, clock, graph, twilio_api, smtp[1], receiver, rotated.json()["secret"])
    await rt.channels.aclose()
    await rt.store.close()
