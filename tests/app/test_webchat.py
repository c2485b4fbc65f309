"""Web chat: the page and its WebSocket run a whole conversation through the shipped playbook,
with the real background worker, to its end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.testing import TestClient
from litestar.testing.websocket_test_session import WebSocketTestSession

from app.composition import Runtime, open_store
from app.main import create_app
from playbooks import load_library
from tests.app.conftest import make_settings

EN = load_library()["solar-qualification-en"]


def _text(step_id: str, field: str = "question", language: str = "en") -> str:
    step = next(s for s in EN.steps if s.id == step_id)
    value = getattr(step, field)
    return value if isinstance(value, str) else value[language]


def _say(ws: WebSocketTestSession, text: str, msg_id: str, *, choice_id: str | None = None) -> None:
    ws.send_json({"type": "message", "id": msg_id, "text": text, "choice_id": choice_id})


def _until(ws: WebSocketTestSession, expected: str) -> list[dict[str, Any]]:
    """Frames up to and including the bot message ``expected`` (pytest-timeout bounds the wait)."""
    frames = []
    while True:
        frame = ws.receive_json()
        frames.append(frame)
        if frame.get("type") == "error":
            raise AssertionError(frame)
        if frame.get("type") == "message" and frame["direction"] == "outbound" and frame["text"] == expected:
            return frames


def test_chat_page_is_served(tmp_path: Path) -> None:
    runtime = Runtime.build(make_settings(tmp_path / "data", "http://127.0.0.1:9"))
    with TestClient(create_app(runtime=runtime)) as client:
        page = client.get("/chat")
        assert page.status_code == 200
        assert "/chat/ws" in page.text and "<form" in page.text


def test_a_conversation_runs_to_its_end_over_the_socket(
    tmp_path: Path, backend_settings: dict[str, Any]
) -> None:
    runtime = Runtime.build(make_settings(tmp_path / "data", "http://127.0.0.1:9", **backend_settings))
    with (
        TestClient(create_app(runtime=runtime)) as client,
        client.websocket_connect("/chat/ws?session=wc_test_session_1") as ws,
    ):
        _say(ws, "Hi! I'm thinking about solar panels", "m1")
        frames = _until(ws, _text("homeowner"))
        assert any(f.get("type") == "ack" and f["id"] == "m1" for f in frames)
        assert any(f.get("direction") == "inbound" for f in frames)
        _say(ws, "yes I do", "m2")
        _until(ws, _text("bill"))
        _say(ws, "about 90 euros", "m3")
        roof = _until(ws, _text("roof"))[-1]
        assert {c["id"] for c in roof["choices"]} >= {"flat", "pitched_tiles"}
        _say(ws, "Flat roof", "m4", choice_id="flat")
        _until(ws, _text("timeline"))
        _say(ws, "just researching for now", "m5")
        _until(ws, _text("postcode"))
        _say(ws, "75011", "m6")
        _until(ws, _text("email"))
        _say(ws, "my email is sam@example.com", "m7")
        offer = _until(ws, _text("callback") + "\nYou can also suggest another day and time.")[-1]
        assert len(offer["choices"]) == 3  # the book step offers free slots as buttons
        first = offer["choices"][0]
        _say(ws, first["title"], "m8", choice_id=first["id"])
        frames = _until(ws, _text("any-questions", "text"))
        assert any(str(f.get("text", "")).startswith("Booked: ") for f in frames)
        _say(ws, "no thanks", "m9")
        _until(ws, _text("nurture-end", "message"))
        _say(ws, "no thanks", "m9")  # the same frame again (a reconnect resend) is stored once
        ack = ws.receive_json()
        assert ack == {"type": "ack", "id": "m9"}
    import asyncio

    async def check() -> None:
        store = open_store(runtime.settings)
        [conv] = [d.data for d in await store.query("demo", "conversations")]
        lead = await store.get("demo", "leads", conv["lead_id"])
        await store.close()
        assert (conv["status"], conv["outcome"]) == ("closed", "nurture")
        assert lead is not None
        assert lead["slots"]["homeowner"] is True and lead["slots"]["roof_type"] == "flat"
        assert lead["slots"]["email"] == "sam@example.com" and lead["slots"]["postcode"] == "75011"
        assert lead["stage"] == "booked"  # a booked meeting outranks the nurture outcome
        reasons = [e["detail"]["reason"] for e in conv["events"] if e["type"] == "score_changed"]
        assert "Owns the home" in reasons and "Only researching for now" in reasons

    asyncio.run(check())


def test_bad_frames_get_an_error_not_a_crash(tmp_path: Path) -> None:
    runtime = Runtime.build(make_settings(tmp_path / "data", "http://127.0.0.1:9"))
    with TestClient(create_app(runtime=runtime)) as client:
        with client.websocket_connect("/chat/ws?session=wc_test_session_2") as ws:
            ws.send_text("{not json")
            assert ws.receive_json()["type"] == "error"
            ws.send_json({"type": "message", "text": "no id"})
            assert "id" in ws.receive_json()["reason"]
            _say(ws, "Hello", "ok1")
            assert ws.receive_json() == {"type": "ack", "id": "ok1"}
        with client.websocket_connect("/chat/ws?session=bad") as ws:
            assert ws.receive_json()["type"] == "error"


async def test_a_web_chat_reply_is_sent_without_a_provider_id_index_entry_and_a_whatsapp_one_with(
    runtime: Runtime,
) -> None:
    """Nothing comes back about a web chat message (no delivery status, no reply naming it), so the
    dispatcher writes no ``provider_ids`` entry for it; a WhatsApp send keeps its entry (statuses
    find their message through it)."""
    import json as json_

    from app.messaging.dispatcher import PROVIDER_IDS, provider_index_id
    from app.messaging.inbox import accept_message
    from tests.app.conftest import sign, text_webhook

    chat = runtime.webchat()
    frame = json_.dumps({"type": "message", "id": "m1", "text": "Hi, I'd like solar panels"}).encode()
    for message in chat.parse({"x-session-id": "index_session"}, frame).messages:
        await accept_message(runtime.jobs, "demo", message)
    body = text_webhook("Hi, I'd like solar panels", wamid="wamid.INDEX1")
    for message in runtime.channels.get("demo", "whatsapp").parse(sign(body), body).messages:
        await accept_message(runtime.jobs, "demo", message)
    await runtime.worker.drain()

    outbox = await runtime.store.query("demo", "outbox")
    sent = {doc.data["channel"]: doc.data for doc in outbox if doc.data.get("status") == "sent"}
    assert set(sent) == {"webchat", "whatsapp"}, outbox
    for channel, item in sent.items():
        entry = await runtime.store.get(
            "demo", PROVIDER_IDS, provider_index_id(channel, item["provider_message_id"])
        )
        if channel == "webchat":
            assert entry is None
        else:
            assert entry == {"conversation_id": item["conversation_id"], "message_id": item["message_id"]}
