"""Two spine fixes: a turn that read the inbox commits only if the lead did not write again
meanwhile (the inbound job's generation, on the main path too), and the dispatcher waits exactly
what a provider's ``Retry-After`` asks for within its quick retries."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import stamina

from app.composition import Runtime
from app.conversations.records import Conversation
from app.store import Order
from app.store.collections import CONVERSATIONS, messages_collection
from app.tenancy.bootstrap import bootstrap
from channels.base import InboundMessage, OutboundMessage, SendError
from channels.webchat import WebChatChannel
from tests.app.conftest import make_settings, no_quiet_hours

SESSION = "wc_spine_session_1"


def webchat_message(message_id: str, text: str) -> InboundMessage:
    return InboundMessage(
        channel="webchat",
        provider_message_id=f"{SESSION}:{message_id}",
        sender=SESSION,
        recipient="demo",
        text=text,
    )


async def conversation_messages(rt: Runtime) -> list[dict[str, Any]]:
    convs = await rt.store.query("demo", CONVERSATIONS)
    assert len(convs) == 1
    conv = Conversation.from_doc(convs[0].data)
    docs = await rt.store.query("demo", messages_collection(conv.id), order_by=[Order("seq")])
    return [d.data for d in docs]


async def test_a_message_arriving_during_the_turn_is_read_by_that_turn(
    tmp_path: Path, backend_settings: dict[str, Any]
) -> None:
    rt = Runtime.build(make_settings(tmp_path / "data", "http://127.0.0.1:9", **backend_settings))
    await bootstrap(rt)
    await no_quiet_hours(rt)
    directory = rt.conversations.interpreters
    original = directory.for_lead
    injected: list[str] = []

    async def for_lead(tenant_id: str, **kwargs: Any) -> Any:
        interpreter = await original(tenant_id, **kwargs)

        class WritesMeanwhile:
            async def interpret(self, **call: Any) -> Any:
                if not injected:
                    # the lead writes again while the model is reading their first message
                    injected.append("m2")
                    await rt.accept("demo", webchat_message("m2", "my bill is about 180 a month"))
                return await interpreter.interpret(**call)

        return WritesMeanwhile()

    directory.for_lead = for_lead  # type: ignore[method-assign]
    try:
        await rt.accept("demo", webchat_message("m1", "Hi, I'm interested in solar panels"))
        await rt.worker.drain()
        messages = await conversation_messages(rt)
        inbound = [m["text"] for m in messages if m["direction"] == "inbound"]
        assert inbound == ["Hi, I'm interested in solar panels", "my bill is about 180 a month"]
        # Both messages were read by ONE turn: the greeting and the first question went out once.
        outbound = [m for m in messages if m["direction"] == "outbound"]
        texts = [m["text"] for m in outbound]
        assert len(texts) == len(set(texts)), texts
        assert all(m["seq"] > 2 for m in outbound), "a reply was committed before the second message was read"
    finally:
        await rt.channels.aclose()
        await rt.store.close()


class RateLimitedOnce(WebChatChannel):
    """A web chat whose first send is refused with 429 and ``Retry-After: 2``."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[float] = []

    async def send(self, message: OutboundMessage) -> str:
        self.calls.append(time.monotonic())
        if len(self.calls) == 1:
            raise SendError("429 rate limited", retryable=True, code="429", retry_after_s=2.0)
        return await super().send(message)


async def test_dispatcher_waits_what_retry_after_asks_within_its_quick_retries(tmp_path: Path) -> None:
    channel = RateLimitedOnce()
    rt = Runtime.build(make_settings(tmp_path / "data", "http://127.0.0.1:9"), channels={"webchat": channel})
    await bootstrap(rt)
    await no_quiet_hours(rt)
    stamina.set_testing(False)  # real waits: what is measured is the wait itself
    try:
        await rt.accept("demo", webchat_message("m1", "Hello"))
        await rt.worker.drain()
        assert len(channel.calls) >= 2
        waited = channel.calls[1] - channel.calls[0]
        assert 2.0 <= waited < 3.5, waited  # stamina alone would wait at most 1.1 s
        sent = [m for m in await conversation_messages(rt) if m["direction"] == "outbound"]
        assert sent and all(m["status"] == "sent" for m in sent)
    finally:
        stamina.set_testing(True, attempts=3)
        await rt.channels.aclose()
        await rt.store.close()
