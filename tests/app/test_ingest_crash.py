"""kill -9 between the webhook's append and the worker's consume: every acknowledged message is in
the log on disk, and after a restart each becomes one inbox item and gets one reply."""

from __future__ import annotations

import concurrent.futures
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.app.conftest import ADMIN_KEY, APP_SECRET, PHONE_ID, VERIFY_TOKEN, sent_texts, sign, text_webhook
from tests.support.recording import RecordingServer
from tests.support.service import Service, service_env

WHATSAPP = {
    "whatsapp_token": "test-token",
    "whatsapp_phone_id": PHONE_ID,
    "whatsapp_app_secret": APP_SECRET,
    "webhook_verify_token": VERIFY_TOKEN,
}
LEADS = 6


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        service.stop()


def _rows(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


def _wait_for(predicate: object, timeout_s: float = 40.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_acknowledged_webhooks_survive_a_kill_before_the_worker_consumed_them(
    tmp_path: Path, services: list[Service]
) -> None:
    """With the default DURABILITY=process (a power loss is not something a test can cause; the
    ``power`` setting's fsync is checked in tests/store/test_sqlite_threads.py)."""
    graph = RecordingServer()
    db = tmp_path / "data" / "leadwarm.db"
    try:
        env = service_env(
            data_dir=tmp_path / "data",
            graph_url=graph.base_url,
            store={"store": "sqlite"},
            admin_key=ADMIN_KEY,
            whatsapp=WHATSAPP,
            JOB_LEASE_SECONDS="2",
            DURABILITY="process",
        )
        web_only = Service.start(env, tmp_path / "web.log", "--no-worker")
        services.append(web_only)
        senders = [f"3361400{i:04d}" for i in range(LEADS)]

        def deliver(sender: str) -> int:
            body = text_webhook("Hi, I'd like solar panels", wamid=f"wamid.KILL.{sender}", sender=sender)
            url = f"{web_only.base}/api/webhooks/whatsapp"
            return httpx.post(url, content=body, headers=sign(body), timeout=30).status_code

        with concurrent.futures.ThreadPoolExecutor(LEADS) as pool:
            assert list(pool.map(deliver, senders)) == [200] * LEADS
        web_only.kill()  # SIGKILL right after the last 200: no shutdown hook runs
        assert _rows(db, "SELECT COUNT(*) FROM ingest_log") == LEADS
        assert _rows(db, "SELECT COUNT(*) FROM docs WHERE coll='inbox'") == 0

        restarted = Service.start(env, tmp_path / "restarted.log")
        services.append(restarted)
        _wait_for(lambda: all(sent_texts(graph, to=s) for s in senders))
        _wait_for(lambda: _rows(db, "SELECT COUNT(*) FROM docs WHERE coll='jobs'") == 0)
        assert _rows(db, "SELECT COUNT(*) FROM ingest_log") == 0
        assert _rows(db, "SELECT COUNT(*) FROM docs WHERE coll='inbox'") == LEADS
        for sender in senders:
            assert sent_texts(graph, to=sender)[0].startswith("Hi Camille!")
        firsts = [sent_texts(graph, to=s)[0] for s in senders]
        assert len(firsts) == LEADS
    finally:
        graph.close()
