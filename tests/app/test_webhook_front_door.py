"""The webhook front door (issue 15): WhatsApp and Twilio POSTs answered before Litestar's router,
with the same answers as the route path: request id and security headers, the shared rate-limit
budget (429 with a time to wait), the app's 500 handler (logged with the request id, no detail),
503 when the store refuses; and no front door at all when the app holds a middleware it could not
reproduce."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import structlog
from litestar import Litestar
from litestar.testing import AsyncTestClient
from litestar.types import Receive, Scope, Send
from twilio.request_validator import RequestValidator

from app.composition import Runtime
from app.main import create_app
from app.messaging.webhooks.front_door import WebhookFrontDoor, install_front_door
from app.store import StoreError
from app.store.sqlite import SQLiteStore
from app.tenancy.bootstrap import bootstrap
from tests.app.conftest import make_settings, sign, text_webhook

WEBHOOK = "/api/webhooks/whatsapp"


async def _logged(rt: Runtime) -> int:
    assert isinstance(rt.store, SQLiteStore)
    return await rt.store.log_size("demo")


class Inner:
    """Stands for Litestar's own handler behind the front door: counts the requests it gets."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.paths: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append((str(scope.get("method")), scope["path"]))
        await self.app(scope, receive, send)


async def _built(tmp_path: Path, **overrides: Any) -> tuple[Runtime, Litestar, Inner]:
    rt = Runtime.build(make_settings(tmp_path / "data", "http://127.0.0.1:9", **overrides))
    await bootstrap(rt)
    app = create_app(runtime=rt, start_worker=False)
    door = app.asgi_handler
    assert isinstance(door, WebhookFrontDoor)
    assert set(door.routes) == {WEBHOOK, "/api/webhooks/twilio/sms", "/api/webhooks/twilio/status"}
    inner = Inner(door.app)
    door.app = inner
    return rt, app, inner


async def test_the_front_door_answers_webhook_posts_with_every_guarantee(tmp_path: Path) -> None:
    rt, app, inner = await _built(tmp_path)
    async with AsyncTestClient(app=app) as client:
        body = text_webhook("Hello", wamid="wamid.FD1")
        first = await client.post(
            WEBHOOK, content=body, headers={**sign(body), "X-Request-ID": "req-fd-0001"}
        )
        assert (first.status_code, first.json()) == (200, {"messages": 1, "duplicates": 0, "statuses": 0})
        assert first.headers["x-request-id"] == "req-fd-0001"
        assert first.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in first.headers["content-security-policy"]
        assert first.headers["x-frame-options"] == "DENY"
        assert await _logged(rt) == 1  # stored before the 200
        again = await client.post(WEBHOOK, content=body, headers=sign(body))
        assert again.json() == {"messages": 0, "duplicates": 1, "statuses": 0}
        with structlog.testing.capture_logs() as logs:
            forged = await client.post(WEBHOOK, content=body, headers=sign(body, "wrong"))
        assert (forged.status_code, forged.json()) == (401, {"error": "invalid signature"})
        assert [e["event"] for e in logs] == ["webhook.bad_signature"]
        assert inner.paths == []  # none of them went through Litestar's router
        # the same route through Litestar (a trailing slash is not the front door's) answers alike
        routed = await client.post(WEBHOOK + "/", content=body, headers=sign(body))
        assert routed.json() == {"messages": 0, "duplicates": 1, "statuses": 0}
        assert inner.paths == [("POST", WEBHOOK + "/")]
        handshake = await client.get(WEBHOOK, params={"hub.mode": "subscribe"})
        assert handshake.status_code == 403  # GET is Litestar's: the subscription handshake
        assert inner.paths[-1] == ("GET", WEBHOOK)
    await rt.channels.aclose()
    await rt.store.close()


async def test_both_paths_share_one_budget_and_429_tells_the_time_to_wait(tmp_path: Path) -> None:
    rt, app, inner = await _built(tmp_path, rate_limit_webhooks_per_second=2)
    async with AsyncTestClient(app=app) as client:
        answers = []
        for i, path in enumerate([WEBHOOK, WEBHOOK + "/", WEBHOOK, WEBHOOK + "/"]):
            body = text_webhook("Hi", wamid=f"wamid.FDRL{i}")
            answers.append(await client.post(path, content=body, headers=sign(body)))
        statuses = [a.status_code for a in answers]
        assert statuses[:2] == [200, 200]  # a burst of two: one through each path
        refused = [a for a in answers if a.status_code == 429]
        assert refused and refused[0].headers["ratelimit-remaining"] == "0"
        assert all(int(a.headers["retry-after"]) >= 1 for a in refused)
        assert len(answers[2].headers["x-request-id"]) >= 8  # the front door's 429 names its request
        assert await _logged(rt) == statuses.count(200)
        assert ("POST", WEBHOOK + "/") in inner.paths and ("POST", WEBHOOK) not in inner.paths
    await rt.channels.aclose()
    await rt.store.close()


async def test_an_unexpected_error_is_a_500_logged_with_its_request_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt, app, _ = await _built(tmp_path)

    async def broken(records: Any) -> list[bool]:
        raise RuntimeError("secret detail token=abc123")

    async with AsyncTestClient(app=app) as client:
        monkeypatch.setattr(rt.ingest, "append", broken)
        body = text_webhook("Hello", wamid="wamid.FD500")
        with structlog.testing.capture_logs() as logs:
            response = await client.post(
                WEBHOOK, content=body, headers={**sign(body), "X-Request-ID": "req-fd-0500"}
            )
        assert response.status_code == 500
        assert response.json() == {"error": "internal error", "request_id": "req-fd-0500"}
        assert "abc123" not in response.text and response.headers["x-request-id"] == "req-fd-0500"
        failed = [e for e in logs if e["event"] == "request.failed"]
        assert len(failed) == 1 and failed[0]["request_id"] == "req-fd-0500"

        async def refused(records: Any) -> list[bool]:
            raise StoreError("disk full")

        monkeypatch.setattr(rt.ingest, "append", refused)
        unavailable = await client.post(WEBHOOK, content=body, headers=sign(body))
        assert (unavailable.status_code, unavailable.json()) == (503, {"error": "temporarily unavailable"})
    await rt.channels.aclose()
    await rt.store.close()


async def test_twilio_inbound_through_the_front_door_gets_empty_twiml(tmp_path: Path) -> None:
    token, number, public = "twilio-test-auth-token-0123456789", "+15017122661", "https://leads.example.com"
    rt, app, inner = await _built(
        tmp_path,
        public_base_url=public,
        twilio_account_sid="AC" + "0123456789abcdef" * 2,
        twilio_auth_token=token,
        twilio_phone_number=number,
    )
    form = {"From": "+14155552671", "To": number, "Body": "Hi", "MessageSid": "SM" + "f" * 32}
    signature = RequestValidator(token).compute_signature(public + "/api/webhooks/twilio/sms", form)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    async with AsyncTestClient(app=app) as client:
        response = await client.post("/api/webhooks/twilio/sms", content=urlencode(form), headers=headers)
        assert response.status_code == 200 and response.text.endswith("<Response></Response>")
        assert response.headers["content-type"].startswith("text/xml")
        assert await _logged(rt) == 1
        forged = await client.post(
            "/api/webhooks/twilio/sms",
            content=urlencode(form),
            headers={**headers, "X-Twilio-Signature": "x"},
        )
        assert forged.status_code == 401
        assert inner.paths == []
    await rt.channels.aclose()
    await rt.store.close()


async def test_no_front_door_when_the_app_holds_a_middleware_it_cannot_reproduce(tmp_path: Path) -> None:
    rt = Runtime.build(make_settings(tmp_path / "data", "http://127.0.0.1:9"))
    app = create_app(runtime=rt, start_worker=False)
    # the app as built has the admin audit; told nothing about it, the front door stays out
    plain = Litestar(plugins=list(rt.features))
    assert install_front_door(plain) is False
    assert not isinstance(plain.asgi_handler, WebhookFrontDoor)
    assert isinstance(app.asgi_handler, WebhookFrontDoor)
    await rt.store.close()
