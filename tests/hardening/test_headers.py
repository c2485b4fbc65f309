"""Security headers and cookies on every page: the chat page may be framed only by the tenant's
allowed sites (CSP ``frame-ancestors``, no contradicting ``X-Frame-Options``), every other page by
nobody, and every cookie the service sets is ``Secure``, ``HttpOnly`` and ``SameSite``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.main import create_app
from kernel.clock import ManualClock
from tests.app.conftest import make_settings
from tests.dashboard.conftest import AUTH, CSRF_META, OWNER, T0, setup_runtime
from tests.support.recording import RecordingServer

SITE = "https://www.acme.example"


@pytest.fixture
async def https_client(tmp_path: Path) -> AsyncIterator[tuple[Runtime, AsyncTestClient[Litestar]]]:
    graph = RecordingServer()
    rt = Runtime.build(make_settings(tmp_path / "data", graph.base_url), clock=ManualClock(T0))
    await setup_runtime(rt)
    app = create_app(runtime=rt, start_worker=False)
    async with AsyncTestClient(app=app, base_url="https://leads.example.test") as client:
        yield rt, client
    await rt.channels.aclose()
    await rt.store.close()
    graph.close()


def _ancestors(response: Any) -> list[str]:
    policy = response.headers["content-security-policy"]
    directive = next(d.strip() for d in policy.split(";") if d.strip().startswith("frame-ancestors"))
    return directive.split()[1:]


async def test_the_chat_page_is_framable_only_by_the_allowlist(
    https_client: tuple[Runtime, AsyncTestClient[Litestar]],
) -> None:
    rt, client = https_client
    page = await client.get("/chat?tenant=demo")
    assert page.status_code == 200
    assert _ancestors(page) == ["'self'"]
    assert "x-frame-options" not in page.headers  # it would contradict the policy's allowlist

    changed = await client.put(
        "/api/v1/settings", json={"webchat_allowed_origins": [SITE + "/"]}, headers=AUTH
    )
    assert changed.status_code == 200, changed.text
    page = await client.get("/chat?tenant=demo&embed=1")
    assert _ancestors(page) == ["'self'", SITE]

    # an origin stored by another path (an import) cannot smuggle a directive into the header
    profile = await rt.tenants.profile("demo")
    profile.webchat_allowed_origins = [SITE, "https://evil.example; script-src *", "javascript:alert(1)"]
    await rt.tenants.save_profile(profile)
    page = await client.get("/chat?tenant=demo")
    assert _ancestors(page) == ["'self'", SITE]
    assert "script-src *" not in page.headers["content-security-policy"]

    other = await client.get("/health")
    assert _ancestors(other) == ["'none'"] and other.headers["x-frame-options"] == "DENY"


async def test_every_page_sets_only_secure_http_only_same_site_cookies(
    https_client: tuple[Runtime, AsyncTestClient[Litestar]],
) -> None:
    _, client = https_client
    cookies: list[str] = []
    signin = await client.get("/app/signin")
    cookies += signin.headers.get_list("set-cookie")
    token = signin.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    signed = await client.post(
        "/app/signin",
        data={"tenant": "demo", "email": OWNER[0], "password": OWNER[1], "csrf_token": token},
        follow_redirects=False,
    )
    assert signed.status_code == 303
    cookies += signed.headers.get_list("set-cookie")
    pages = [
        "/app",
        "/app/inbox",
        "/app/leads",
        "/app/analytics",
        "/app/people",
        "/chat",
        "/chat/config",
        "/widget.js",
        "/health",
        "/schema/openapi.json",
    ]
    for path in pages:
        response = await client.get(path, follow_redirects=False)
        assert response.status_code < 500, path
        assert "content-security-policy" in response.headers, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        cookies += response.headers.get_list("set-cookie")
    meta = CSRF_META.search((await client.get("/app/inbox")).text)
    assert meta
    form = {"lang": "fr", "csrf_token": meta.group(1)}
    language = await client.post("/app/language", data=form, follow_redirects=False)
    assert language.status_code == 303
    cookies += language.headers.get_list("set-cookie")
    signout = await client.post("/app/signout", data=form, follow_redirects=False)
    assert signout.status_code == 303
    cookies += signout.headers.get_list("set-cookie")
    assert len(cookies) >= 3, cookies
    for raw in cookies:
        flags = {part.strip().split("=")[0].lower(): part.strip() for part in raw.split(";")[1:]}
        assert "secure" in flags and "httponly" in flags, raw
        assert flags.get("samesite", "").lower() in ("samesite=lax", "samesite=strict"), raw
