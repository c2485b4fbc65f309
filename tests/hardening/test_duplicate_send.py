"""The duplicate-send window: a process that dies between the provider's answer and our record of it.

The crash is injected where it hurts (the record of a send that the provider accepted raises a
``BaseException``, as a kill would leave it: the provider has the message, we have only the intent).
WhatsApp templates (the OpenAPI description allows ``biz_opaque_callback_data`` on templates
only): the next dispatch waits for the provider's status, which echoes our outbox id and becomes
our record: one message reaches the Graph API. Without a
status within ``RECONCILE_WAIT_S`` it is sent again (the window that remains). E-mail: the resend
carries the same Message-ID.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.jobs.queue import Job, RetryLater
from app.main import create_app
from app.messaging.dispatcher import RECONCILE_WAIT_S, Dispatcher
from app.store import where
from app.store.collections import CONVERSATIONS, JOBS, OUTBOX
from app.store.ids import compound_id
from app.tenancy.bootstrap import bootstrap
from channels.base import InboundMessage
from kernel.clock import ManualClock
from tests.app.conftest import ADMIN_KEY, INTRO_TEMPLATE, PHONE_ID, make_settings, no_quiet_hours, sign
from tests.channels.conftest import fixture_bytes
from tests.support.recording import RecordingServer, Reply
from tests.support.smtp_server import SmtpRecorder, running_smtp_server

T0 = 1_764_500_000.0
LEAD = "+33612340000"
MAILBOX = "bot@leadwarm.test"


class Killed(BaseException):
    """The process died here (nothing after it runs, no ``except Exception`` catches it)."""


@pytest.fixture
async def world(
    tmp_path: Path,
) -> AsyncIterator[tuple[Runtime, AsyncTestClient[Litestar], RecordingServer, SmtpRecorder]]:
    graph = RecordingServer()
    with running_smtp_server() as (controller, smtp):
        settings = make_settings(
            tmp_path / "data",
            graph.base_url,
            email_host="127.0.0.1",
            email_port=controller.port,
            email_from=MAILBOX,
            email_starttls=False,
        )
        rt = Runtime.build(settings, clock=ManualClock(T0))
        await bootstrap(rt)
        await no_quiet_hours(rt)
        async with AsyncTestClient(app=create_app(runtime=rt, start_worker=False)) as client:
            yield rt, client, graph, smtp
        await rt.channels.aclose()
        await rt.store.close()
    graph.close()


def _graph_sends(graph: RecordingServer) -> list[dict[str, Any]]:
    return [r.body for r in graph.requests if r.method == "POST" and r.path.endswith("/messages")]


async def _first_reply_pending(rt: Runtime, channel: str, address: str, recipient: str) -> str:
    """The lead writes; their turn runs; returns the conversation whose reply waits in the outbox."""
    pid = "wamid.IN1" if channel == "whatsapp" else "<in1@example.com>"
    await rt.accept(
        "demo", InboundMessage(channel, pid, address, recipient, "Hi, solar please", timestamp=T0)
    )
    job = await rt.store.get("demo", JOBS, compound_id("inbound", f"{channel}:{address}"))
    assert job is not None
    await rt.worker.handlers["inbound"](Job.from_doc(job))
    [conv] = await rt.store.query("demo", CONVERSATIONS, filters=[where("address", "==", address)])
    return conv.id


async def _template_opening_pending(rt: Runtime, client: AsyncTestClient[Litestar]) -> str:
    """A lead created by API on WhatsApp outside the window: its opening template waits in the
    outbox; returns the conversation's id."""
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    r = await client.put(
        "/api/v1/settings", json={"whatsapp_templates": {"default": INTRO_TEMPLATE}}, headers=auth
    )
    assert r.status_code == 200, r.text
    lead = {"name": "Alex Martin", "phone": LEAD, "channel": "whatsapp", "language": "en"}
    r = await client.post("/api/v1/leads", json=lead, headers=auth)
    assert r.status_code == 201 and r.json()["opening"] == "template", r.text
    return str(r.json()["conversation_id"])


async def _dispatch(rt: Runtime, conversation_id: str) -> None:
    doc = await rt.store.get("demo", JOBS, compound_id("dispatch", conversation_id))
    assert doc is not None
    await rt.worker.handlers["dispatch"](Job.from_doc(doc))


async def _dispatch_killed_after_the_provider_answered(
    rt: Runtime, conversation_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def die(*args: Any, **kwargs: Any) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(Dispatcher, "_record_sent", die)
        with contextlib.suppress(Killed):
            await _dispatch(rt, conversation_id)


async def _outbox(rt: Runtime, conversation_id: str) -> list[dict[str, Any]]:
    docs = await rt.store.query("demo", OUTBOX, filters=[where("conversation_id", "==", conversation_id)])
    return [d.data for d in docs]


async def test_whatsapp_status_reconciles_an_unrecorded_send(
    world: tuple[Runtime, AsyncTestClient[Litestar], RecordingServer, SmtpRecorder],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rt, client, graph, _ = world
    conversation_id = await _template_opening_pending(rt, client)
    graph.replies.append(Reply(body={"messaging_product": "whatsapp", "messages": [{"id": "wamid.OUT1"}]}))
    await _dispatch_killed_after_the_provider_answered(rt, conversation_id, monkeypatch)
    [sent] = _graph_sends(graph)
    outbox = await _outbox(rt, conversation_id)
    pending = [o for o in outbox if o["status"] == "pending" and o.get("intent_at")]
    assert pending and sent["biz_opaque_callback_data"] == pending[0]["id"]

    # restarted before the status came: the dispatcher waits instead of sending again
    with pytest.raises(RetryLater):
        await _dispatch(rt, conversation_id)
    assert len(_graph_sends(graph)) == 1

    # Meta's "sent" status for our message, echoing our reference
    status = json.loads(fixture_bytes("status_read"))
    value = status["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = PHONE_ID
    value["statuses"][0].update(
        {"id": "wamid.OUT1", "status": "sent", "biz_opaque_callback_data": pending[0]["id"]}
    )
    raw = json.dumps(status).encode()
    assert (await client.post("/api/webhooks/whatsapp", content=raw, headers=sign(raw))).status_code == 200
    await rt.worker.drain()
    rt.clock.advance(RECONCILE_WAIT_S + 60)  # type: ignore[attr-defined]
    await rt.worker.drain()

    first = next(o for o in await _outbox(rt, conversation_id) if o["id"] == pending[0]["id"])
    assert first["status"] == "sent" and first["provider_message_id"] == "wamid.OUT1"
    assert first.get("reconciled_at") and not first.get("intent_at")
    texts = [
        s.get("text", {}).get("body") or s.get("interactive", {}).get("body", {}).get("text")
        for s in _graph_sends(graph)
    ]
    assert len(texts) == len(set(texts)), texts  # nothing went out twice


async def test_without_a_status_the_send_is_repeated_after_the_wait(
    world: tuple[Runtime, AsyncTestClient[Litestar], RecordingServer, SmtpRecorder],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rt, client, graph, _ = world
    conversation_id = await _template_opening_pending(rt, client)
    await _dispatch_killed_after_the_provider_answered(rt, conversation_id, monkeypatch)
    assert len(_graph_sends(graph)) == 1
    rt.clock.advance(RECONCILE_WAIT_S / 2)  # type: ignore[attr-defined]
    with pytest.raises(RetryLater):
        await _dispatch(rt, conversation_id)
    rt.clock.advance(RECONCILE_WAIT_S)  # type: ignore[attr-defined]
    await _dispatch(rt, conversation_id)
    sends = _graph_sends(graph)
    assert len(sends) >= 2 and sends[1] == sends[0]  # the documented remaining window: sent again


async def test_an_email_resent_after_a_crash_keeps_its_message_id(
    world: tuple[Runtime, AsyncTestClient[Litestar], RecordingServer, SmtpRecorder],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rt, _, _, smtp = world
    conversation_id = await _first_reply_pending(rt, "email", "camille@example.com", MAILBOX)
    await _dispatch_killed_after_the_provider_answered(rt, conversation_id, monkeypatch)
    assert len(smtp.messages()) == 1
    await _dispatch(rt, conversation_id)
    mails = smtp.wait_for(2)
    first_ids = [m.message["Message-ID"] for m in mails]
    assert first_ids[0] == first_ids[1], first_ids
    recorded = next(o for o in await _outbox(rt, conversation_id) if o["status"] == "sent")
    assert f"<{recorded['provider_message_id']}>" == first_ids[0]
