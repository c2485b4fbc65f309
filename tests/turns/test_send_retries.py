"""A send that succeeds at once builds no retry machinery (stamina's, about as much CPU as the
send itself); one that fails transiently is still retried by stamina, attempts and waits its own."""

from __future__ import annotations

import json
from typing import Any

import pytest
import stamina

from app.composition import Runtime
from app.messaging import dispatcher as dispatcher_module
from app.store import where
from channels.base import SendError


async def _say(rt: Runtime, text: str) -> None:
    frame = json.dumps({"type": "message", "id": "m-1", "text": text}).encode()
    for message in rt.webchat().parse({"x-session-id": "retry_session"}, frame).messages:
        assert await rt.accept("demo", message)


async def test_a_first_try_that_succeeds_builds_no_retry_context(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[int] = []
    original = stamina.retry_context

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(dispatcher_module.stamina, "retry_context", counting)
    await _say(runtime, "Hi, I'd like a quote for solar panels")
    await runtime.worker.drain()
    sent = await runtime.store.query("demo", "outbox", filters=[where("status", "==", "sent")])
    assert sent, "the replies went out"
    assert built == []


async def test_a_transient_failure_is_retried_by_stamina(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = await runtime.channels.resolve("demo", "webchat")
    original_send = channel.send
    calls: list[str] = []

    async def flaky(message: Any) -> str:
        calls.append(message.idempotency_key)
        if len(calls) <= 2:  # the first try and stamina's first retry fail
            raise SendError("busy", retryable=True)
        return str(await original_send(message))

    monkeypatch.setattr(channel, "send", flaky)
    stamina.set_testing(True, attempts=3)  # no waiting; three attempts in all
    try:
        await _say(runtime, "Hi, I'd like a quote for solar panels")
        await runtime.worker.drain()
    finally:
        stamina.set_testing(False)
    assert calls[0] == calls[1] == calls[2]  # one item: tried, retried, then sent
    sent = await runtime.store.query("demo", "outbox", filters=[where("status", "==", "sent")])
    assert calls[0] in {d.id for d in sent}
