"""A process killed between the webhook's 200 and the reply: the reply goes out after a restart,
once, and a redelivery of the same webhook afterwards changes nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.runtime import open_store
from app.settings import Settings
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
from tests.support.ports import free_port
from tests.support.recording import RecordingServer

LEADWARM = str(Path(sys.executable).parent / "leadwarm")


def _env(data_dir: Path, graph_url: str, backend: dict[str, Any]) -> dict[str, str]:
    """The service's environment; ``backend`` holds the settings fields choosing the store."""
    return {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("WHATSAPP", "LEADWARM", "ADMIN", "STORE", "FIREBASE", "FIRESTORE", "GOOGLE"))
        },
        **{k.upper(): str(v) for k, v in backend.items()},
        "LEADWARM_DATA_DIR": str(data_dir),
        "ADMIN_API_KEY": ADMIN_KEY,
        "WHATSAPP_TOKEN": "test-token",
        "WHATSAPP_PHONE_ID": PHONE_ID,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WEBHOOK_VERIFY_TOKEN": VERIFY_TOKEN,
        "WHATSAPP_API_BASE_URL": graph_url,
        "WORKER_POLL_INTERVAL": "0.1",
        "JOB_LEASE_SECONDS": "2",
        "LOG_LEVEL": "WARNING",
    }


class Service:
    """``leadwarm serve`` in its own process group."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [LEADWARM, "serve", "--port", str(self.port), *args],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"service exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}"
                )
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError("service did not become healthy")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


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
        web_only = Service(env, "--no-worker")
        services.append(web_only)
        body = text_webhook("Hi, I'd like solar panels", wamid="wamid.CRASH1")
        response = httpx.post(f"{web_only.base}/api/webhooks/whatsapp", content=body, headers=sign(body))
        assert response.status_code == 200
        web_only.kill()  # SIGKILL: no shutdown hook runs
        assert graph.requests == []

        restarted = Service(env)
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
