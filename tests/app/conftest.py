"""Fixtures for app tests: a runtime on a fresh store, wired to a recording WhatsApp Graph API on
127.0.0.1, and helpers to sign Meta webhooks.

The ``runtime`` fixture (and ``client`` with it) runs every test twice: on a fresh SQLite file and
with ``STORE=firestore`` against the session's Firestore emulator, wiped first."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.core.settings import Settings
from app.main import create_app
from app.tenancy.bootstrap import bootstrap
from tests.conftest import EMULATOR_PROJECT
from tests.support.firestore_emulator import FirestoreEmulator
from tests.support.recording import RecordingServer

APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
PHONE_ID = "106540352242922"
ADMIN_KEY = "lw_test_admin_key"


#: The backends every ``runtime`` test runs on.
BACKENDS = ["sqlite", "firestore"]


@pytest.fixture(params=BACKENDS)
def backend_settings(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Settings fields selecting the backend under test (``STORE`` and its companions).

    ``firestore``: the session's emulator, wiped now; ``FIRESTORE_EMULATOR_HOST`` is also set in
    this process's environment for the test (``open_store()`` exports it for the client) and
    restored after.
    """
    if request.param == "sqlite":
        return {"store": "sqlite"}
    emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
    emulator.reset()
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulator.host_port)
    return {
        "store": "firestore",
        "firebase_project_id": EMULATOR_PROJECT,
        "firestore_emulator_host": emulator.host_port,
    }


def make_settings(data_dir: Path, graph_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "leadwarm_data_dir": data_dir,
        "admin_api_key": ADMIN_KEY,
        "whatsapp_token": "test-token",
        "whatsapp_phone_id": PHONE_ID,
        "whatsapp_app_secret": APP_SECRET,
        "webhook_verify_token": VERIFY_TOKEN,
        "whatsapp_api_base_url": graph_url,
        "worker_poll_interval": 0.05,
        "burst_window_seconds": 0.0,
        "log_level": "WARNING",
        # the clock of these tests stands still between turns: a rate limiter would hold every
        # send past its burst (pacing has its own tests, tests/turns/test_pacing.py)
        "send_pacing": False,
        # the tests' webhook receivers listen on 127.0.0.1 (kernel/egress.py refuses it by default)
        "egress_allow_private": True,
        **overrides,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture
async def runtime(
    tmp_path: Path, graph: RecordingServer, backend_settings: dict[str, Any]
) -> AsyncIterator[Runtime]:
    """A bootstrapped runtime whose worker does NOT run by itself: tests call ``worker.drain()``.

    Runs on every backend of :data:`BACKENDS` (through ``backend_settings``)."""
    rt = Runtime.build(make_settings(tmp_path / "data", graph.base_url, **backend_settings))
    await bootstrap(rt)
    await no_quiet_hours(rt)
    yield rt
    await rt.channels.aclose()
    await rt.store.close()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = create_app(runtime=runtime, start_worker=False)
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def no_quiet_hours(rt: Runtime, tenant_id: str = "demo") -> None:
    """Tests run at any hour: turn the demo tenant's quiet hours off (policy tests set their own)."""
    profile = await rt.tenants.profile(tenant_id)
    await rt.tenants.save_profile(
        profile.model_copy(update={"quiet_hours_start": "00:00", "quiet_hours_end": "00:00"})
    )


INTRO_TEMPLATE = {"name": "lead_intro", "language": "en", "parameters": ["{{ lead.first_name }}"]}


def sign(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    """Headers Meta sends: ``X-Hub-Signature-256: sha256=<hex HMAC of the raw body>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def text_webhook(
    text: str,
    *,
    wamid: str,
    sender: str = "33612345678",
    name: str = "Camille",
    timestamp: int = 1_763_000_000,
    phone_number_id: str = PHONE_ID,
) -> bytes:
    """A WhatsApp text-message webhook in Meta's documented shape, to our ``phone_number_id``."""
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": phone_number_id,
                            },
                            "contacts": [{"profile": {"name": name}, "wa_id": sender}],
                            "messages": [
                                {
                                    "from": sender,
                                    "id": wamid,
                                    "timestamp": str(timestamp),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(body).encode()


def sent_texts(graph: RecordingServer, to: str = "33612345678") -> list[str]:
    """Texts the app sent to ``to`` through the Graph API, in order."""
    out = []
    for req in graph.requests:
        body = req.body or {}
        if body.get("to", "").lstrip("+") != to:
            continue
        if body.get("type") == "text":
            out.append(body["text"]["body"])
        elif body.get("type") == "interactive":
            out.append(body["interactive"]["body"]["text"])
    return out
