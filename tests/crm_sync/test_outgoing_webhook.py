"""The generic outgoing webhook: a receiver on 127.0.0.1 verifies the signature over the raw bytes
it received (valid, tampered, expired, wrong secret, rotation)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from crm_sync.base import AuthError
from crm_sync.crm import WebhookAdapter, WebhookSignatureError, sign_payload, verify_signature
from crm_sync.crm._common import AdapterConfigError
from crm_sync.crm.webhook import SIGNATURE_HEADER
from kernel.clock import ManualClock
from tests.crm_sync.leads import qualified_lead
from tests.crm_sync.support import Route, TestApiClient

SECRET = "whsec_test_0123456789"
NOW = 1_764_504_000.0


class Receiver:
    """An n8n-like receiver: verifies each request with :func:`verify_signature` and keeps it."""

    def __init__(self, secret: str, clock: ManualClock) -> None:
        self.secret = secret
        self.clock = clock
        self.received: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            verify_signature(
                raw, request.headers.get(SIGNATURE_HEADER), secret=self.secret, now=self.clock.now()
            )
        except WebhookSignatureError as exc:
            self.rejected.append(str(exc))
            return web.json_response({"error": "bad signature"}, status=401)
        document = json.loads(raw)
        self.received.append({"body": document, "headers": dict(request.headers)})
        return web.json_response({"id": f"rcv-{document.get('id')}"})

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver(SECRET, ManualClock(NOW)).start()
    try:
        yield server
    finally:
        await server.stop()


def client_for(url: str) -> TestApiClient:
    return TestApiClient("webhook", routes=[], account={"url": url})


async def test_receiver_verifies_the_lead(receiver):
    client = client_for(receiver.url)
    adapter = WebhookAdapter(client, secret=SECRET, clock=ManualClock(NOW))
    lead = qualified_lead()
    ids = await adapter.upsert_lead(lead)
    assert ids.contact == "rcv-lead-0001" and ids.created
    (got,) = receiver.received
    body = got["body"]
    assert body["event"] == "lead.synced" and body["sent_at"] == int(NOW)
    sent = body["lead"]
    assert sent["email"] == lead.email and sent["score"] == 82 and sent["slots"]["budget"] == 5000
    assert sent["score_reasons"][0]["reason"] == "Budget confirmed"
    assert sent["source"]["referral"] == {"ad_id": "120210"} and sent["transcript_url"] == lead.transcript_url
    assert "options" not in sent
    assert got["headers"]["LeadWarm-Event"] == "lead.synced"
    assert got["headers"]["Idempotency-Key"].startswith("lead-0001:")
    assert got["headers"][SIGNATURE_HEADER].startswith(f"t={int(NOW)},v1=")
    assert await adapter.record_activity(lead, kind="meeting", text="Tuesday") == "rcv-lead-0001"
    assert receiver.received[-1]["body"]["kind"] == "meeting"
    await client.aclose()


async def test_receiver_rejects_a_wrong_secret_and_a_stale_timestamp(receiver):
    client = client_for(receiver.url)
    with pytest.raises(AuthError):
        await WebhookAdapter(client, secret="another-secret", clock=ManualClock(NOW)).upsert_lead(
            qualified_lead()
        )
    with pytest.raises(AuthError):
        await WebhookAdapter(client, secret=SECRET, clock=ManualClock(NOW - 301)).upsert_lead(
            qualified_lead()
        )
    assert receiver.rejected == [
        "signature does not match",
        "signature timestamp outside the tolerance window",
    ]
    # during a rotation the header carries both signatures; the receiver with the old secret accepts it
    await WebhookAdapter(client, secret=["new-secret", SECRET], clock=ManualClock(NOW)).upsert_lead(
        qualified_lead()
    )
    assert len(receiver.received) == 1
    await client.aclose()


def test_verify_signature_valid_tampered_expired_malformed():
    body = b'{"event":"lead.synced","id":"x"}'
    header = sign_payload(body, secrets=[SECRET], timestamp=int(NOW))
    assert verify_signature(body, header, secret=SECRET, now=NOW + 299) == int(NOW)
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_signature(body.replace(b"x", b"y"), header, secret=SECRET, now=NOW)
    with pytest.raises(WebhookSignatureError, match="outside"):
        verify_signature(body, header, secret=SECRET, now=NOW + 301)
    with pytest.raises(WebhookSignatureError, match="outside"):
        verify_signature(body, header, secret=SECRET, now=NOW - 301)
    # the timestamp is signed: moving it breaks the signature
    moved = header.replace(f"t={int(NOW)}", f"t={int(NOW) + 100}")
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_signature(body, moved, secret=SECRET, now=NOW + 100)
    for bad in (None, "", "v1=abc", "t=abc,v1=abc", "t=1", "x" * 5000):
        with pytest.raises(WebhookSignatureError):
            verify_signature(body, bad, secret=SECRET, now=NOW)


def test_adapter_needs_a_secret_and_a_url():
    with pytest.raises(AdapterConfigError):
        WebhookAdapter(client_for("http://127.0.0.1:9/hook"), secret="")
    adapter = WebhookAdapter(client_for("ftp://nowhere"), secret=SECRET)
    assert SECRET not in repr(adapter)


async def test_no_url_is_a_config_error():
    adapter = WebhookAdapter(
        TestApiClient("webhook", routes=[Route("/", "http://127.0.0.1:9")]), secret=SECRET
    )
    with pytest.raises(AdapterConfigError):
        await adapter.upsert_lead(qualified_lead())
