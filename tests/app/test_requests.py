"""Request ids, security headers and the 500 handler: every unexpected error is logged with the
request id it answers with, and tells the caller nothing else."""

from __future__ import annotations

from pathlib import Path

import structlog
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.core.features import Feature
from app.main import create_app
from app.ops.plugin import OpsFeature
from app.tenancy.plugin import TenancyFeature
from tests.app.conftest import make_settings


@get("/boom", sync_to_thread=False)
def boom() -> dict[str, str]:
    raise RuntimeError("secret detail that must not leave: token=abc123")


class Boom(Feature):
    route_handlers = (boom,)


async def test_an_unexpected_error_is_logged_with_the_request_id_it_answers(tmp_path: Path) -> None:
    rt = Runtime.build(make_settings(tmp_path / "data", "http://127.0.0.1:9"))
    app = Litestar(plugins=[OpsFeature(rt), TenancyFeature(rt), Boom(rt)])
    async with AsyncTestClient(app=app) as client:
        with structlog.testing.capture_logs() as logs:
            response = await client.get("/boom", headers={"X-Request-ID": "req-12345678"})
        assert response.status_code == 500
        assert response.json() == {"error": "internal error", "request_id": "req-12345678"}
        assert "secret detail" not in response.text and "abc123" not in response.text
        failed = [e for e in logs if e["event"] == "request.failed"]
        assert len(failed) == 1 and failed[0]["request_id"] == "req-12345678"
        assert failed[0]["path"] == "/boom" and failed[0]["error"] == "RuntimeError"
        # A request id the caller cannot be trusted with is replaced by ours.
        response = await client.get("/boom", headers={"X-Request-ID": "bad id\nwith newline"})
        assert response.json()["request_id"] != "bad id\nwith newline"
        assert response.headers["x-request-id"] == response.json()["request_id"]
    await rt.store.close()


async def test_every_response_carries_an_id_and_the_security_headers(tmp_path: Path) -> None:
    rt = Runtime.build(make_settings(tmp_path / "data", "http://127.0.0.1:9"))
    app = Litestar(plugins=[OpsFeature(rt), TenancyFeature(rt)])
    async with AsyncTestClient(app=app) as client:
        for path in ("/health", "/health?probe=1"):
            response = await client.get(path)
            assert len(response.headers["x-request-id"]) >= 8
            assert response.headers["x-content-type-options"] == "nosniff"
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        missing = await client.get("/nowhere")
        assert missing.status_code == 404 and "detail" in missing.json()  # Litestar's own answer
    await rt.store.close()


async def test_public_pages_are_rate_limited_per_client_with_a_time_to_wait(tmp_path: Path) -> None:
    rt = Runtime.build(make_settings(tmp_path / "data", "http://127.0.0.1:9", rate_limit_public_per_minute=5))
    async with AsyncTestClient(app=create_app(runtime=rt, start_worker=False)) as client:
        statuses = [(await client.get("/api/unsubscribe/not-a-token")).status_code for _ in range(8)]
        assert statuses[:5] == [404] * 5  # an unknown link, answered
        assert statuses[5:] == [429] * 3
        refused = await client.get("/api/unsubscribe/not-a-token")
        assert int(refused.headers["retry-after"]) >= 1
        # a refusal is a response like any other: its request id and the security headers
        assert len(refused.headers["x-request-id"]) >= 8
        assert refused.headers["x-content-type-options"] == "nosniff"
        assert refused.json()["status_code"] == 429
        # The authenticated admin API is not on that budget.
        health = [(await client.get("/health")).status_code for _ in range(10)]
        assert set(health) == {200}
    await rt.store.close()
