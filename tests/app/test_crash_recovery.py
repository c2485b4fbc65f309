"""A process killed between the webhook's 200 and the reply: the reply goes out after a restart,
once, and a redelivery of the same webhook afterwards changes nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.composition import open_store
from app.core.settings import Settings
from tests.app.conftest import (
    ADMIN_KEY,
    APP_SECRET,
    PHONE_ID,
    VERIFY_TOKEN,
    make_settings,
    sent_texts,
    sign,
    text_webhook,
)
from tests.support.recording import RecordingServer
from tests.support.service import Service, service_env

WHATSAPP = {
    "whatsapp_token": "test-token",
    "whatsapp_phone_id": PHONE_ID,
    "whatsapp_app_secret": APP_SECRET,
    "webhook_verify_token": VERIFY_TOKEN,
}


def _env(data_dir: Path, graph_url: str, backend: dict[str, Any]) -> dict[str, str]:
    """The service's environment on the backend under test; leases expire after 2 s."""
    return service_env(
        data_dir=data_dir,
        graph_url=graph_url,
        store=backend,
        admin_key=ADMIN_KEY,
        whatsapp=WHATSAPP,
        JOB_LEASE_SECONDS="2",
    )


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        service.stop()


def _wait_for(predicate: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _count(settings: Settings, collection: str) -> int:
    """Documents of the default tenant's ``collection``, read through a store of the service's backend."""

    async def count() -> int:
        store = open_store(settings)
        try:
            return len(await store.query(settings.default_tenant_id, collection))
        finally:
            await store.close()

    return asyncio.run(count())


def test_reply_is_sent_after_a_kill_between_ack_and_reply(
    tmp_path: Path, services: list[Service], backend_settings: dict[str, Any]
) -> None:
    graph = RecordingServer()
    try:
        env = _env(tmp_path / "data", graph.base_url, backend_settings)
        settings = make_settings(tmp_path / "data", graph.base_url, **backend_settings)
        web_only = Service.start(env, tmp_path / "web.log", "--no-worker")
        services.append(web_only)
        body = text_webhook("Hi, I'd like solar panels", wamid="wamid.CRASH1")
        response = httpx.post(f"{web_only.base}/api/webhooks/whatsapp", content=body, headers=sign(body))
        assert response.status_code == 200
        web_only.kill()  # SIGKILL: no shutdown hook runs
        assert graph.requests == []

        restarted = Service.start(env, tmp_path / "restarted.log")
        services.append(restarted)
        _wait_for(lambda: len(sent_texts(graph)) >= 2)
        _wait_for(lambda: _count(settings, "jobs") == 0)
        replies = sent_texts(graph)
        assert replies[0].startswith("Hi Camille!")
        assert _count(settings, "inbox") == 1  # the services used the backend under test

        again = httpx.post(f"{restarted.base}/api/webhooks/whatsapp", content=body, headers=sign(body))
        assert again.status_code == 200 and again.json()["duplicates"] == 1
        _wait_for(lambda: _count(settings, "jobs") == 0)
        assert sent_texts(graph) == replies
    finally:
        graph.close()
