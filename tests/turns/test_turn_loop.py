"""CPU work of a turn that depends on the lead's text runs off the event loop's thread."""

from __future__ import annotations

import json
import threading

import pytest

import app.conversations.service as service
from app.composition import Runtime
from app.conversations.records import Conversation
from app.store import where


async def test_a_first_message_is_read_for_its_language_off_the_event_loop(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first message's language (py3langid, 0.5-1.7 ms) is detected in a worker thread, and
    still decides the conversation's language."""
    threads: list[threading.Thread] = []
    detect = service.detect_language

    def recorded(text: str, **kwargs: object) -> str | None:
        threads.append(threading.current_thread())
        return detect(text, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "detect_language", recorded)
    frame = json.dumps({"type": "message", "id": "m1", "text": "Bonjour, je voudrais un devis"}).encode()
    for message in runtime.webchat().parse({"x-session-id": "loop_session_1"}, frame).messages:
        assert await runtime.accept("demo", message)
    await runtime.worker.drain()
    assert threads and all(t is not threading.main_thread() for t in threads)
    [doc] = await runtime.store.query(
        "demo", "conversations", filters=[where("address", "==", "loop_session_1")]
    )
    assert Conversation.from_doc(doc.data).state["language"] == "fr"
