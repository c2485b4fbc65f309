"""The web chat as a product, over its real socket: the playbook's first message on open (a
``start`` frame) without the visitor writing, a session created through the API opened by its
link, typing frames, the tenant's branding, and the origin allowlist."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from litestar.testing.websocket_test_session import WebSocketTestSession

from app.composition import Runtime
from app.jobs.queue import job_doc_id
from app.main import create_app
from app.store import collections as col
from kernel.clock import ManualClock
from playbooks import load_library
from tests.app.conftest import ADMIN_KEY, make_settings

EN = load_library()["solar-qualification-en"]
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
HOMEOWNER = next(s for s in EN.steps if s.id == "homeowner").question["en"]  # type: ignore[union-attr,index]


def until(ws: WebSocketTestSession, text: str) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = ws.receive_json()
        frames.append(frame)
        assert frame.get("type") != "error", frame
        if frame.get("type") == "message" and frame["direction"] == "outbound" and frame["text"] == text:
            return frames


@pytest.fixture
def client(tmp_path: Path) -> Any:
    runtime = Runtime.build(make_settings(tmp_path / "data", "http://127.0.0.1:9"))
    with TestClient(create_app(runtime=runtime)) as test_client:
        r = test_client.put(
            "/api/v1/settings",
            json={
                "quiet_hours_start": "00:00",
                "quiet_hours_end": "00:00",
                "name": "SunnyWatt",
                "greeting": {"fr": "Bonjour ! Une question ?"},
                "webchat_allowed_origins": ["https://www.sunnywatt.example"],
            },
            headers=AUTH,
        )
        assert r.status_code == 200, r.text
        yield test_client


def test_the_playbook_greets_on_open_without_waiting(client: TestClient[Any]) -> None:
    with client.websocket_connect("/chat/ws?session=wc_open_session_1&lang=en") as ws:
        ws.send_json({"type": "start"})
        frames = until(ws, HOMEOWNER)
        assert {"type": "typing"} in frames
        assert [f["direction"] for f in frames if f.get("type") == "message"] == ["outbound", "outbound"]
    # reconnect: the history comes first, and a second start does not restart anything
    with client.websocket_connect("/chat/ws?session=wc_open_session_1&lang=en") as ws:
        ws.send_json({"type": "start"})
        history = until(ws, HOMEOWNER)
        assert len([f for f in history if f.get("type") == "message"]) == 2
        ws.send_json({"type": "message", "id": "m1", "text": "yes"})
        frames = until(ws, next(s for s in EN.steps if s.id == "bill").question["en"])  # type: ignore[union-attr,index]
        assert frames[0] == {"type": "ack", "id": "m1"} and frames[1] == {"type": "typing"}


def test_a_session_created_by_the_api_opens_by_its_link(client: TestClient[Any]) -> None:
    r = client.post(
        "/api/v1/leads", json={"name": "Ana", "channel": "webchat", "language": "en"}, headers=AUTH
    )
    assert r.status_code == 201, r.text
    session = r.json()["lead"]["webchat_id"]
    page = client.get(f"/chat?session={session}")
    assert page.status_code == 200 and 'params.get("session")' in page.text
    with client.websocket_connect(f"/chat/ws?session={session}") as ws:
        ws.send_json({"type": "start"})
        frames = until(ws, HOMEOWNER)
        assert frames[0]["text"].startswith("Hi Ana!")


def test_branding_and_origins(client: TestClient[Any]) -> None:
    config = client.get("/chat/config?lang=fr", headers={"Origin": "https://www.sunnywatt.example"})
    assert config.status_code == 200
    assert config.json()["name"] == "SunnyWatt" and config.json()["greeting"] == "Bonjour ! Une question ?"
    assert config.headers["access-control-allow-origin"] == "https://www.sunnywatt.example"
    assert client.get("/chat/config?lang=en").json()["greeting"].startswith("Hi! 👋 Welcome to SunnyWatt")
    assert client.get("/chat/config", headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.get("/chat/config?tenant=ghost").status_code == 404
    assert (
        "frame-ancestors 'self' https://www.sunnywatt.example"
        in client.get("/chat").headers["content-security-policy"]
    )
    assert "New lead" in client.get("/chat").text and "hidden>New lead" in client.get("/chat").text
    widget = client.get("/widget.js")
    assert widget.status_code == 200 and widget.headers["content-type"].startswith("text/javascript")
    with client.websocket_connect(
        "/chat/ws?session=wc_evil_session_1", headers={"Origin": "https://evil.example"}
    ) as ws:
        assert ws.receive_json() == {"type": "error", "reason": "origin not allowed"}
    with client.websocket_connect(
        "/chat/ws?session=wc_good_session_1", headers={"Origin": "https://www.sunnywatt.example"}
    ) as ws:
        ws.send_json({"type": "start"})
        until(ws, HOMEOWNER)


def test_typing_holds_the_reply_until_the_visitor_stops(tmp_path: Path) -> None:
    """No fixed burst window in the web chat: a message is answered at once, unless the page says
    the visitor is still typing; then it waits for them (3 s after the last signal, 12 s at most)."""
    clock = ManualClock(1_764_583_200.0)
    runtime = Runtime.build(
        make_settings(tmp_path / "data", "http://127.0.0.1:9", burst_window_seconds=3.0), clock=clock
    )
    job_id = job_doc_id("inbound", "webchat:wc_typing_session_1")

    def due() -> float:
        async def read() -> float:
            job = await runtime.store.get("demo", col.JOBS, job_id)
            assert job is not None
            return float(job["due_at"])

        return asyncio.run(read())

    def settle(ws: WebSocketTestSession) -> None:
        """Frames are handled in order: an error answer means the frames before it were handled."""
        ws.send_text("not json")
        while ws.receive_json().get("type") != "error":
            pass

    with (
        TestClient(create_app(runtime=runtime, start_worker=False)) as client,
        client.websocket_connect("/chat/ws?session=wc_typing_session_1") as ws,
    ):
        ws.send_json({"type": "message", "id": "m1", "text": "Hello, I have a question"})
        settle(ws)
        start = clock.now()
        assert due() == start  # the tenant's web-chat window is 0: due at once
        ws.send_json({"type": "typing"})
        settle(ws)
        assert due() == start + 3.0
        clock.advance(2.0)
        ws.send_json({"type": "typing"})
        settle(ws)
        assert due() == start + 5.0
        clock.advance(9.0)
        ws.send_json({"type": "typing"})
        settle(ws)
        assert due() == start + 12.0  # never more than 12 s after the first message
