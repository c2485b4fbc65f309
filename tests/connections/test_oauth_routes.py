"""The connect -> use -> refresh -> disconnect cycle through the HTTP routes, against the real
OAuth 2.0 server on 127.0.0.1; the callback's failures (cancelled, bad state, exchange failed);
signed init links."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from crm_sync.models import OAuthState
from tests.connections.app_support import (
    BASE,
    KEY_B,
    TENANT_A,
    AppEnv,
    app_env,
    app_oauth_server,
)
from tests.connections.helpers import authorize
from tests.crm_sync.oauth_server import LOCATION_ID

__all__ = ["app_env", "app_oauth_server"]


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def _start(env: AppEnv, **params: str) -> tuple[str, str]:
    """GET /auth/gohighlevel/init with the admin key, then the provider's authorize step."""
    resp = await env.call("GET", "/auth/gohighlevel/init", params=params)
    assert resp.status_code == 302, resp.text
    location = resp.headers["location"]
    assert location.startswith(env.server.url + "/authorize?")
    q = _query(location)
    assert q["redirect_uri"] == f"{BASE}/auth/gohighlevel/callback"
    assert q["code_challenge_method"] == "S256" and q["client_id"] == env.server.client_id
    return await authorize(location)


async def _callback(env: AppEnv, **params: str) -> dict[str, str]:
    resp = await env.call("GET", "/auth/gohighlevel/callback", key=None, params=params)
    assert resp.status_code == 302, resp.text
    location = resp.headers["location"]
    assert location.startswith(f"{BASE}/auth/result?")
    return _query(location)


@pytest.mark.parametrize("app_env", ["sqlite", "firestore"], indirect=True)
async def test_connect_use_refresh_disconnect_over_http(app_env: AppEnv) -> None:
    env, server = app_env, app_env.server
    state, code = await _start(env)
    result = await _callback(env, state=state, code=code)
    assert result["status"] == "connected" and result["provider"] == "gohighlevel"
    conn_id = result["connection_id"]

    page = await env.call("GET", "/auth/result", key=None, params=result)
    assert page.status_code == 200 and "gohighlevel is connected" in page.text

    view = (await env.call("GET", f"/api/v1/integrations/{conn_id}")).json()
    assert view["status"] == "active" and view["auth_mode"] == "oauth2"
    assert view["account"]["location_id"] == LOCATION_ID and view["account"]["name"] == "Agence Test"
    assert view["secret_fields"] == ["access_token", "refresh_token"] and "secrets" not in view
    listed = (await env.call("GET", "/api/v1/integrations/configured")).json()
    assert [c["id"] for c in listed["integrations"]] == [conn_id]

    # use: the authorised client an adapter gets
    client = await env.services.clients.client(TENANT_A, conn_id)
    assert (await client.request("GET", "/api/me")).json() == {"ok": True}

    # refresh: the token is about to expire; the test action goes through the client and refreshes
    await env.services.repository.update_connection(TENANT_A, conn_id, lambda c: c.replace(expires_at=0.0))
    tested = (await env.call("POST", f"/api/v1/integrations/{conn_id}/test")).json()
    assert tested == {"ok": True, "account": {"name": "Agence Test", "email": "owner@agence.test"}}
    assert server.refresh_grants == 1
    refreshed = (await env.call("GET", f"/api/v1/integrations/{conn_id}")).json()
    assert refreshed["expires_at"] > 1e9 and refreshed["refreshed_at"] is not None

    # a refresh token the provider revoked: needs_reauth, audited; enable refuses (409)
    await env.services.repository.update_connection(TENANT_A, conn_id, lambda c: c.replace(expires_at=0.0))
    server.revoke_all_refresh_tokens()
    failed = (await env.call("POST", f"/api/v1/integrations/{conn_id}/test")).json()
    assert failed["ok"] is False and failed["error"] == "auth_failed" and failed["status"] == "needs_reauth"
    assert (await env.call("POST", f"/api/v1/integrations/{conn_id}/enable")).status_code == 409

    # reconnect the same connection through the routes
    state, code = await _start(env, connection_id=conn_id)
    again = await _callback(env, state=state, code=code)
    assert again["status"] == "connected" and again["connection_id"] == conn_id
    assert (await env.call("GET", f"/api/v1/integrations/{conn_id}")).json()["status"] == "active"

    # disconnect: revoked at the provider, tokens deleted, and the answer says so
    resp = await env.call("POST", "/auth/gohighlevel/disconnect", params={"connection_id": conn_id})
    assert resp.status_code == 200
    assert resp.json() == {"disconnected": [{"id": conn_id, "revoked": True, "tokens_deleted": True}]}
    assert server.revoked
    assert (await env.call("GET", f"/api/v1/integrations/{conn_id}")).status_code == 404
    assert (await env.call("POST", "/auth/gohighlevel/disconnect")).status_code == 404

    logs = (await env.call("GET", f"/api/v1/integrations/{conn_id}/logs")).json()["events"]
    kinds = [e["kind"] for e in logs]
    assert kinds[0] == "disconnect" and kinds[-1] == "connect"
    assert {"refresh", "needs_reauth", "reconnect", "test"} <= set(kinds)
    assert logs[0]["detail"] == {"revoked": True, "tokens_deleted": True}
    assert logs[0]["actor"].startswith("admin_key:") and logs[-1]["actor"] == logs[0]["actor"]
    trail = (
        await env.call("GET", "/api/v1/integrations/audit", params={"kind": "admin_api", "limit": 1000})
    ).json()
    paths = {e["detail"]["path"] for e in trail["events"]}
    assert "/auth/gohighlevel/disconnect" in paths and f"/api/v1/integrations/{conn_id}/test" in paths


async def test_callback_failures_redirect_with_the_reason(app_env: AppEnv) -> None:
    env, server = app_env, app_env.server
    # the person cancels at the provider
    resp = await env.call("GET", "/auth/gohighlevel/init")
    state = _query(resp.headers["location"])["state"]
    assert (await _callback(env, state=state, error="access_denied")) == {
        "provider": "gohighlevel",
        "status": "error",
        "error": "cancelled",
    }
    # a forged state, then a replayed one
    assert (await _callback(env, state="x" * 43, code="c"))["error"] == "bad_state"
    state, code = await _start(env)
    assert (await _callback(env, state=state, code=code))["status"] == "connected"
    assert (await _callback(env, state=state, code=code))["error"] == "bad_state"
    # a code the provider refuses
    state, _ = await _start(env)
    assert (await _callback(env, state=state, code="not-a-code"))["error"] == "exchange_failed"
    # no state at all
    assert (await _callback(env))["error"] == "bad_state"
    assert server.code_grants == 1

    failures = (
        await env.call("GET", "/api/v1/integrations/audit", params={"kind": "connect_failed"})
    ).json()["events"]
    assert sorted(e["detail"]["reason"] for e in failures) == ["cancelled", "exchange_failed"]
    page = await env.call("GET", "/auth/result", key=None, params={"status": "error", "error": "bad_state"})
    assert "no longer valid" in page.text


async def test_init_needs_the_admin_key_or_a_signed_link(app_env: AppEnv) -> None:
    env = app_env
    assert (await env.call("GET", "/auth/gohighlevel/init", key=None)).status_code == 401
    assert (await env.call("GET", "/auth/gohighlevel/init", key="lw_wrong")).status_code == 401
    assert (await env.call("GET", "/auth/nope/init")).status_code == 404
    assert (await env.call("GET", "/auth/pipedrive/init")).status_code == 400  # no OAuth app configured
    assert (await env.call("GET", "/auth/cal_com/init")).status_code == 400  # an api_key provider
    # the other tenant has no GoHighLevel app of its own yet
    resp = await env.call("GET", "/auth/gohighlevel/init", key=KEY_B)
    assert resp.status_code == 400 and "GHL_CLIENT_ID" in resp.text

    link = (await env.call("POST", "/auth/gohighlevel/link")).json()
    assert link["url"].startswith(f"{BASE}/auth/gohighlevel/init?")
    resp = await env.call("GET", link["url"].removeprefix(BASE), key=None)
    assert resp.status_code == 302 and resp.headers["location"].startswith(env.server.url)
    q = _query(link["url"])
    tampered = {**q, "tenant": "acme"}
    assert (await env.call("GET", "/auth/gohighlevel/init", key=None, params=tampered)).status_code == 401
    expired = {**q, "exp": "1000"}
    assert (await env.call("GET", "/auth/gohighlevel/init", key=None, params=expired)).status_code == 401


async def test_another_tenant_registers_its_own_oauth_app(app_env: AppEnv) -> None:
    env, server = app_env, app_env.server
    body = {"client_id": server.client_id, "client_secret": server.client_secret}
    assert (await env.call("PUT", "/api/v1/oauth-apps/gohighlevel", key=KEY_B, json=body)).status_code == 200
    apps = (await env.call("GET", "/api/v1/oauth-apps", key=KEY_B)).json()["apps"]
    assert [(a["provider"], a["client_id"]) for a in apps] == [("gohighlevel", server.client_id)]
    resp = await env.call("GET", "/auth/gohighlevel/init", key=KEY_B)
    state, code = await authorize(resp.headers["location"])
    result = await _callback(env, state=state, code=code)
    assert result["status"] == "connected"
    assert (
        await env.call("GET", f"/api/v1/integrations/{result['connection_id']}", key=KEY_B)
    ).status_code == 200
    assert (await env.call("GET", f"/api/v1/integrations/{result['connection_id']}")).status_code == 404
    resp = await env.call("PUT", "/api/v1/oauth-apps/gohighlevel", key=KEY_B, json={"client_id": "x"})
    assert resp.status_code == 400 and "client_secret" in resp.text
    assert (await env.call("DELETE", "/api/v1/oauth-apps/gohighlevel", key=KEY_B)).status_code == 200
    assert (await env.call("DELETE", "/api/v1/oauth-apps/gohighlevel", key=KEY_B)).status_code == 404


async def test_expired_states_are_purged_in_the_background(app_env: AppEnv) -> None:
    env = app_env
    repo = env.services.repository
    now = time.time()
    for key, expires in (("expired", now - 1), ("pending", now + 600)):
        await repo.create_state(
            OAuthState(key, TENANT_A, "gohighlevel", f"{BASE}/cb", (), now - 700, expires)
        )
    stop = asyncio.Event()
    (task_fn,) = env.feature.background_tasks()
    task = asyncio.create_task(task_fn(stop))
    try:
        for _ in range(100):
            if await repo.peek_state("expired") is None:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert await repo.peek_state("expired") is None and await repo.peek_state("pending") is not None
