"""The integrations API: an api_key provider connecting and testing, bad input, conflicts, the sync
seam, another tenant's ids (404, never its data), and a scan of every response body and log line
of a whole session for secrets."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import structlog

from crm_sync.models import Connection
from tests.connections.app_support import ADMIN_KEY, KEY_B, TENANT_A, AppEnv, app_env, app_oauth_server
from tests.connections.helpers import authorize
from tests.connections.test_api_key_connections import PIPEDRIVE_TOKEN, Provider, provider_api

__all__ = ["app_env", "app_oauth_server", "provider_api"]


async def _pipedrive(env: AppEnv, api: Provider, **extra: Any) -> dict[str, Any]:
    body = {
        "provider": "pipedrive",
        "auth_mode": "api_key",
        "label": "Shop CRM",
        "credentials": {"api_token": PIPEDRIVE_TOKEN, "company_domain": "shop"},
        "settings": {"base_url": api.url},
        **extra,
    }
    resp = await env.call("POST", "/api/v1/integrations", json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def test_api_key_provider_connects_and_tests(app_env: AppEnv, provider_api: Provider) -> None:
    env = app_env
    catalog = (await env.call("GET", "/api/v1/integrations")).json()["providers"]
    by_name = {p["name"]: p for p in catalog}
    assert {"gohighlevel", "hubspot", "pipedrive", "cal_com", "twilio", "smtp_imap", "webhook"} <= set(
        by_name
    )
    assert by_name["gohighlevel"]["oauth_app_configured"] is True
    assert by_name["hubspot"]["oauth_app_configured"] is False
    assert by_name["gohighlevel"]["connect_url"] == "/auth/gohighlevel/init"

    view = await _pipedrive(env, provider_api)
    assert view["auth_mode"] == "api_key" and view["status"] == "active" and view["label"] == "Shop CRM"
    assert view["secret_fields"] == ["api_token"] and view["settings"]["company_domain"] == "shop"
    conn_id = view["id"]

    tested = (await env.call("POST", f"/api/v1/integrations/{conn_id}/test")).json()
    assert tested["ok"] is True and tested["account"]["user_id"] == 7 and tested["account"]["name"] == "Marie"
    assert provider_api.seen[-1]["headers"]["x-api-token"] == PIPEDRIVE_TOKEN

    # a wrong token: the test fails, says why, and the connection needs new credentials
    resp = await env.call(
        "PUT", f"/api/v1/integrations/{conn_id}", json={"credentials": {"api_token": "bad"}}
    )
    assert resp.status_code == 200
    failed = (await env.call("POST", f"/api/v1/integrations/{conn_id}/test")).json()
    assert failed["ok"] is False and failed["error"] == "auth_failed" and failed["status"] == "needs_reauth"
    refused = await env.call("POST", f"/api/v1/integrations/{conn_id}/enable")
    assert refused.status_code == 409 and refused.json()["extra"]["code"] == "needs_reauthorisation"
    body = {"credentials": {"api_token": PIPEDRIVE_TOKEN}, "label": "Shop"}
    fixed = (await env.call("PUT", f"/api/v1/integrations/{conn_id}", json=body)).json()
    assert fixed["status"] == "active" and fixed["label"] == "Shop"
    assert (await env.call("POST", f"/api/v1/integrations/{conn_id}/test")).json()["ok"] is True

    disabled = (await env.call("POST", f"/api/v1/integrations/{conn_id}/disable")).json()
    assert disabled["status"] == "disabled"
    assert (await env.call("POST", f"/api/v1/integrations/{conn_id}/enable")).json()["status"] == "active"

    kinds = [
        e["kind"] for e in (await env.call("GET", f"/api/v1/integrations/{conn_id}/logs")).json()["events"]
    ]
    assert kinds[:2] == ["enable", "disable"] and kinds[-1] == "connect" and "credentials_updated" in kinds

    deleted = (await env.call("DELETE", f"/api/v1/integrations/{conn_id}")).json()
    assert deleted == {"id": conn_id, "deleted": True, "revoked": False, "tokens_deleted": True}
    assert (await env.call("GET", f"/api/v1/integrations/{conn_id}")).status_code == 404
    assert (await env.services.repository.get_connection(TENANT_A, conn_id)) is None


@pytest.mark.parametrize(
    ("body", "reason", "code", "params"),
    [
        (
            {"provider": "pipedrive", "credentials": {"company_domain": "x"}},
            "api_token is required",
            "credential_required",
            {"provider": "pipedrive", "field": "api_token"},
        ),
        (
            {"provider": "nope", "credentials": {}},
            "unknown provider",
            "provider_unknown",
            {"provider": "nope"},
        ),
        (
            {"provider": "gohighlevel", "credentials": {}},
            "/auth/gohighlevel/init",
            "provider_oauth_only",
            {"provider": "gohighlevel"},
        ),
        (
            {"provider": "cal_com", "credentials": {"api_key": "k", "extra": "v"}},
            "unknown field",
            "credential_unknown",
            {"provider": "cal_com", "fields": "extra"},
        ),
        ({"provider": "cal_com", "credentials": {"api_key": "k"}, "colour": "red"}, "colour", None, None),
        (
            {"provider": "cal_com", "credentials": {"api_key": "k"}, "settings": {"host": "x"}},
            "unknown key",
            None,
            None,
        ),
        (
            {"provider": "cal_com", "credentials": {"api_key": "k"}, "settings": {"base_url": "ftp://x"}},
            "http",
            "not_http_url",
            {},
        ),
        (
            {"provider": "cal_com", "auth_mode": "basic", "credentials": {"api_key": "k"}},
            "auth_mode",
            "auth_mode_not_offered",
            {"provider": "cal_com"},
        ),
        (
            {"provider": "cal_com", "credentials": {"api_key": "k" * 5000}},
            "too long",
            "credential_too_long",
            {"provider": "cal_com", "field": "api_key"},
        ),
        ([1, 2], "JSON object", None, None),
    ],
)
async def test_bad_input_gets_400_with_the_reason(
    app_env: AppEnv, body: Any, reason: str, code: str | None, params: dict[str, str] | None
) -> None:
    """The English reason for API users; a code and its parameters where a page says it in its
    reader's words (app/dashboard/i18n_errors.py has words for every code)."""
    from app.dashboard.i18n import STRINGS

    resp = await app_env.call("POST", "/api/v1/integrations", json=body)
    assert resp.status_code == 400, resp.text
    assert reason in resp.json()["detail"]
    assert "k" * 100 not in resp.text  # a value is never echoed
    extra = resp.json().get("extra") or {}
    assert (extra.get("code"), extra.get("params")) == (code, params)
    assert code is None or {"en", "fr"} <= set(STRINGS[f"err_{code}"])


async def test_conflicts_and_the_sync_seam(app_env: AppEnv, provider_api: Provider) -> None:
    env = app_env
    view = await _pipedrive(env, provider_api, id="pd-main")
    assert view["id"] == "pd-main"
    body = {"provider": "cal_com", "credentials": {"api_key": "k"}, "id": "pd-main"}
    taken = await env.call("POST", "/api/v1/integrations", json=body)
    assert taken.status_code == 409
    assert taken.json()["extra"] == {"code": "integration_exists", "params": {"id": "pd-main"}}

    # A CRM connection's /sync replays its dead letters (the CRM feature's handler): none yet.
    resp = await env.call("POST", "/api/v1/integrations/pd-main/sync")
    assert resp.status_code == 202 and resp.json()["status"] == "accepted"
    assert resp.json()["replayed"] == 0
    # A provider without a handler has nothing to sync.
    cal = await env.call(
        "POST",
        "/api/v1/integrations",
        json={"provider": "cal_com", "credentials": {"api_key": "k"}, "id": "cal"},
    )
    assert cal.status_code in (200, 201), cal.text
    resp = await env.call("POST", "/api/v1/integrations/cal/sync")
    assert resp.status_code == 202 and resp.json()["status"] == "nothing_to_sync"

    calls: list[tuple[str, str]] = []

    async def start_sync(connection: Connection, *, actor: str) -> Mapping[str, Any]:
        calls.append((connection.id, actor))
        return {"job_id": "job-1"}

    env.feature.sync.register("pipedrive", start_sync)
    resp = await env.call("POST", "/api/v1/integrations/pd-main/sync")
    assert resp.status_code == 202 and resp.json() == {
        "status": "accepted",
        "id": "pd-main",
        "job_id": "job-1",
    }
    assert calls and calls[0][0] == "pd-main" and calls[0][1].startswith("admin_key:")
    await env.call("POST", "/api/v1/integrations/pd-main/disable")
    stopped = await env.call("POST", "/api/v1/integrations/pd-main/sync")
    assert stopped.status_code == 409
    assert stopped.json()["extra"] == {"code": "connection_not_active", "params": {"status": "disabled"}}


@pytest.mark.parametrize("app_env", ["sqlite", "firestore"], indirect=True)
async def test_another_tenants_ids_are_404(app_env: AppEnv, provider_api: Provider) -> None:
    env = app_env
    conn_id = (await _pipedrive(env, provider_api))["id"]
    for method, path, kw in [
        ("GET", f"/api/v1/integrations/{conn_id}", {}),
        ("PUT", f"/api/v1/integrations/{conn_id}", {"json": {"label": "mine now"}}),
        ("DELETE", f"/api/v1/integrations/{conn_id}", {}),
        ("POST", f"/api/v1/integrations/{conn_id}/enable", {}),
        ("POST", f"/api/v1/integrations/{conn_id}/disable", {}),
        ("POST", f"/api/v1/integrations/{conn_id}/test", {}),
        ("POST", f"/api/v1/integrations/{conn_id}/sync", {}),
        ("GET", f"/api/v1/integrations/{conn_id}/logs", {}),
        ("POST", "/auth/pipedrive/disconnect", {"params": {"connection_id": conn_id}}),
        ("GET", "/auth/gohighlevel/init", {"params": {"connection_id": conn_id}}),
    ]:
        resp = await env.call(method, path, key=KEY_B, **kw)
        assert resp.status_code in (404, 400), (method, path, resp.status_code)
        assert resp.status_code == 404 or path.startswith("/auth/gohighlevel"), (method, path)
        assert "Shop" not in resp.text and "shop" not in resp.text
    assert (await env.call("GET", "/api/v1/integrations/configured", key=KEY_B)).json()["integrations"] == []
    b_audit = (await env.call("GET", "/api/v1/integrations/audit", key=KEY_B, params={"limit": 1000})).json()[
        "events"
    ]
    assert b_audit and all(e["connection_id"] in (None, conn_id) for e in b_audit)
    assert not any(e["kind"] in ("connect", "test", "disable") for e in b_audit)
    # A's connection is untouched by all of that
    mine = (await env.call("GET", f"/api/v1/integrations/{conn_id}")).json()
    assert mine["status"] == "active" and mine["label"] == "Shop CRM"
    assert (await env.call("GET", "/api/v1/integrations", key=None)).status_code == 401
    assert (await env.call("GET", "/api/v1/integrations/audit", key="lw_nope")).status_code == 401


@pytest.fixture
def app_logs_at_debug() -> Iterator[None]:
    """structlog at DEBUG for the test (an earlier CLI test may have configured WARNING)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("app_logs_at_debug")
async def test_no_secret_in_any_response_or_log_line(
    app_env: AppEnv,
    provider_api: Provider,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    env, server = app_env, app_env.server
    # a session touching every route: OAuth connect, refresh, test, api_key connect, errors, disconnect
    resp = await env.call("GET", "/auth/gohighlevel/init")
    state, code = await authorize(resp.headers["location"])
    result = await env.call(
        "GET", "/auth/gohighlevel/callback", key=None, params={"state": state, "code": code}
    )
    conn_id = parse_qs(urlsplit(result.headers["location"]).query)["connection_id"][0]
    await env.call("GET", "/auth/gohighlevel/callback", key=None, params={"state": state, "code": code})
    await env.services.repository.update_connection(TENANT_A, conn_id, lambda c: c.replace(expires_at=0.0))
    await env.call("POST", f"/api/v1/integrations/{conn_id}/test")
    await env.call("GET", f"/api/v1/integrations/{conn_id}")
    pd = await _pipedrive(env, provider_api)
    await env.call("POST", f"/api/v1/integrations/{pd['id']}/test")
    await env.call(
        "PUT", f"/api/v1/integrations/{pd['id']}", json={"credentials": {"api_token": PIPEDRIVE_TOKEN}}
    )
    await env.call("GET", "/api/v1/integrations/configured")
    await env.call("GET", "/api/v1/integrations")
    body = {"client_id": server.client_id, "client_secret": server.client_secret}
    await env.call("PUT", "/api/v1/oauth-apps/gohighlevel", key=KEY_B, json=body)
    await env.call("GET", "/api/v1/oauth-apps", key=KEY_B)
    await env.call(
        "POST", "/api/v1/integrations", json={"provider": "pipedrive", "credentials": {"api_token": 5}}
    )
    await env.call("POST", "/auth/gohighlevel/link")
    await env.call("POST", "/auth/gohighlevel/disconnect")
    await env.call("DELETE", f"/api/v1/integrations/{pd['id']}")
    await env.call("GET", "/api/v1/integrations/audit", params={"limit": 1000})
    await env.call("GET", "/api/v1/integrations/audit", key=KEY_B, params={"limit": 1000})

    assert server.issued and server.refresh_grants == 1
    tokens = [v for v in server.issued if v != code]  # the code is the browser's (see below)
    secrets = [*tokens, server.client_secret, PIPEDRIVE_TOKEN, ADMIN_KEY, KEY_B, env.key_hex]
    out, _ = capfd.readouterr()  # structlog writes the app's lines to stdout
    # every stdlib record but the provider's own (the Authlib server logs what it issues)
    ours = [r for r in caplog.records if not r.name.startswith(("authlib", "werkzeug"))]
    logs = "\n".join(r.getMessage() for r in ours) + out
    assert "audit.admin_api" in out and "oauth.connected" in out  # the app's log lines were captured
    responses = "\n".join(env.bodies)
    for value in secrets:
        assert value not in responses, "a secret is in an API response"
        assert value not in logs, "a secret is in a log line"
    for kind in ("admin_api", "connect", "refresh", "test", "disconnect", "app_registered"):
        assert f"audit.{kind} " in out, f"no log line for the {kind} audit event"
    # the code and state ride in the browser's URLs (the test's own client logs them); the app never
    app_logs = out + "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("app", "crm_sync"))
    )
    assert code not in app_logs and state not in app_logs and code not in responses


async def test_a_secret_never_goes_to_a_new_host_without_being_entered_again(
    app_env: AppEnv, provider_api: Provider
) -> None:
    env = app_env
    conn_id = (await _pipedrive(env, provider_api))["id"]
    elsewhere = {"settings": {"base_url": "http://127.0.0.1:9/steal"}}
    resp = await env.call("PUT", f"/api/v1/integrations/{conn_id}", json=elsewhere)
    assert resp.status_code == 409 and "api_token" in resp.json()["detail"]
    assert resp.json()["extra"] == {"code": "secrets_needed_again", "params": {"fields": "api_token"}}
    assert (await env.call("GET", f"/api/v1/integrations/{conn_id}")).json()["settings"][
        "base_url"
    ] == provider_api.url
    # the same host again is no change; a new host with the secret entered again is accepted
    same = {"settings": {"base_url": provider_api.url}, "label": "same host"}
    assert (await env.call("PUT", f"/api/v1/integrations/{conn_id}", json=same)).status_code == 200
    moved = {**elsewhere, "credentials": {"api_token": "pd-new-token-for-new-host"}}
    resp = await env.call("PUT", f"/api/v1/integrations/{conn_id}", json=moved)
    assert resp.status_code == 200 and resp.json()["settings"]["base_url"] == "http://127.0.0.1:9/steal"
