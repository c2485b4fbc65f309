"""The connect -> use -> refresh -> disconnect cycle against a real OAuth 2.0 server on 127.0.0.1,
and every way the callback's state can be wrong."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from app.connections import StoreConnectionRepository
from crm_sync.base import AuthError, IntegrationError
from crm_sync.client import ConnectionClients
from crm_sync.models import OAuthAppCredentials
from crm_sync.oauth import (
    AppNotConfiguredError,
    AuthorizationDeniedError,
    ExpiredStateError,
    ForgedStateError,
    OAuthService,
    RedirectNotAllowedError,
    ReplayedStateError,
)
from crm_sync.vault import Secret, Vault
from kernel.clock import ManualClock
from tests.connections.conftest import TENANT, catalog_for
from tests.connections.helpers import authorize, connect
from tests.crm_sync.oauth_server import LOCATION_ID, OAuthTestServer


async def test_connect_use_refresh_disconnect(
    oauth: OAuthService,
    clients: ConnectionClients,
    repo: StoreConnectionRepository,
    vault: Vault,
    oauth_server: OAuthTestServer,
    db_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = await oauth.begin(TENANT, "gohighlevel", oauth_server.redirect_uri)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["client_id"] == [oauth_server.client_id]
    assert "contacts.readonly" in query["scope"][0].split(" ")
    assert len(query["state"][0]) >= 43

    state, code = await authorize(url)
    conn = await oauth.complete(state, code, provider="gohighlevel")
    assert conn.status == "active" and conn.provider == "gohighlevel" and conn.auth_mode == "oauth2"
    # GoHighLevel's token-response quirks and the identity call ("Compte connecté")
    assert conn.account["location_id"] == LOCATION_ID and conn.account["user_type"] == "Location"
    assert conn.account["name"] == "Agence Test" and conn.account["email"] == "owner@agence.test"
    assert conn.expires_at is not None and set(conn.secrets) == {"access_token", "refresh_token"}
    first_access = conn.secret(vault, "access_token")
    assert first_access is not None and first_access.reveal() in oauth_server.issued

    client = await clients.client(TENANT, conn.id)
    assert client.account["location_id"] == LOCATION_ID
    with pytest.raises(IntegrationError):  # tenant-scoped: another tenant cannot use it
        await clients.client("other-tenant", conn.id)
    assert (await client.request("GET", "/api/me")).json() == {"ok": True}

    # the token is about to expire: the next call refreshes first (rotation: a new refresh token)
    await repo.update_connection(TENANT, conn.id, lambda c: c.replace(expires_at=0.0))
    old_refresh = conn.secret(vault, "refresh_token")
    client = await clients.client(TENANT, conn.id)
    assert (await client.request("GET", "/api/me")).status_code == 200
    assert oauth_server.refresh_grants == 1
    after = await repo.get_connection(TENANT, conn.id)
    assert after is not None and after.expires_at is not None and after.expires_at > 1e9
    new_refresh = after.secret(vault, "refresh_token")
    assert new_refresh is not None and old_refresh is not None and new_refresh != old_refresh

    # a 401 (the provider revoked the access token early) refreshes once and retries
    oauth_server.expire_access_tokens()
    assert (await client.request("GET", "/api/me")).status_code == 200
    assert oauth_server.refresh_grants == 2

    # nothing secret in clear in the database file
    wal = db_path.with_name(db_path.name + "-wal")
    raw = db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    for value in [*oauth_server.issued, oauth_server.client_secret]:
        assert value.encode() not in raw

    result = await oauth.disconnect(TENANT, conn.id, actor="admin:k1")
    assert result.revoked and result.deleted
    assert oauth_server.revoked and await repo.get_connection(TENANT, conn.id) is None
    with pytest.raises(AuthError):
        await client.request("GET", "/api/me")

    kinds = [e.kind for e in await repo.list_audit(TENANT, connection_id=conn.id)]
    assert kinds[0] == "disconnect" and kinds.count("refresh") == 2 and kinds[-1] == "connect"
    events = await repo.list_audit(TENANT, connection_id=conn.id)
    assert events[0].detail == {"revoked": True, "tokens_deleted": True} and events[0].actor == "admin:k1"

    # no token, code or secret in any log line or repr
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("crm_sync", "app", "httpx")]
    text = (
        "\n".join(r.getMessage() for r in ours)
        + repr(conn)
        + repr(after)
        + repr(client)
        + repr(vault)
        + repr(events)
    )
    for value in [*oauth_server.issued, oauth_server.client_secret]:
        assert value not in text


async def test_state_is_single_use(oauth: OAuthService, oauth_server: OAuthTestServer) -> None:
    url = await oauth.begin(TENANT, "gohighlevel", oauth_server.redirect_uri)
    state, code = await authorize(url)
    await oauth.complete(state, code)
    with pytest.raises(ReplayedStateError):
        await oauth.complete(state, code)
    assert oauth_server.code_grants == 1


async def test_forged_state_and_wrong_provider(oauth: OAuthService, oauth_server: OAuthTestServer) -> None:
    with pytest.raises(ForgedStateError):
        await oauth.complete("made-up-state", "code")
    with pytest.raises(ForgedStateError):
        await oauth.complete("", "code")
    url = await oauth.begin(TENANT, "gohighlevel", oauth_server.redirect_uri)
    state, code = await authorize(url)
    with pytest.raises(ForgedStateError):
        await oauth.complete(state, code, provider="hubspot")
    assert oauth_server.code_grants == 0


async def test_expired_state(
    oauth: OAuthService, oauth_server: OAuthTestServer, repo: StoreConnectionRepository
) -> None:
    clock = ManualClock(1_900_000_000.0)
    oauth.clock = clock
    url = await oauth.begin(TENANT, "gohighlevel", oauth_server.redirect_uri)
    state, code = await authorize(url)
    clock.advance(601)
    with pytest.raises(ExpiredStateError):
        await oauth.complete(state, code)
    assert oauth_server.code_grants == 0 and await repo.list_connections(TENANT) == []


async def test_user_cancelled_and_bad_redirect(oauth: OAuthService, oauth_server: OAuthTestServer) -> None:
    url = await oauth.begin(TENANT, "gohighlevel", oauth_server.redirect_uri)
    state = parse_qs(urlsplit(url).query)["state"][0]
    with pytest.raises(AuthorizationDeniedError) as info:
        await oauth.complete(state, None, error="access_denied")
    assert info.value.error == "access_denied"
    with pytest.raises(RedirectNotAllowedError):
        await oauth.begin(TENANT, "gohighlevel", "https://evil.example/callback")
    with pytest.raises(AppNotConfiguredError):
        await oauth.begin("other-tenant", "gohighlevel", oauth_server.redirect_uri)


async def test_tenant_registered_app(
    oauth: OAuthService, oauth_server: OAuthTestServer, repo: StoreConnectionRepository
) -> None:
    await oauth.register_app(
        "t2", "gohighlevel", client_id=oauth_server.client_id, client_secret=oauth_server.client_secret
    )
    stored = await repo.get_oauth_app("t2", "gohighlevel")
    assert stored is not None and oauth_server.client_secret not in repr(stored.to_doc())
    conn = await connect(oauth, "t2", oauth_server.redirect_uri)
    assert conn.tenant_id == "t2" and await repo.get_connection(TENANT, conn.id) is None


async def test_invalid_grant_marks_needs_reauth(
    oauth: OAuthService,
    clients: ConnectionClients,
    repo: StoreConnectionRepository,
    oauth_server: OAuthTestServer,
) -> None:
    conn = await connect(oauth, TENANT, oauth_server.redirect_uri)
    await repo.update_connection(TENANT, conn.id, lambda c: c.replace(expires_at=0.0))
    oauth_server.revoke_all_refresh_tokens()
    client = await clients.client(TENANT, conn.id)
    with pytest.raises(AuthError) as info:
        await client.request("GET", "/api/me")
    assert "invalid_grant" in str(info.value)
    assert not any(v in str(info.value) + repr(info.value) for v in oauth_server.issued)
    stored = await repo.get_connection(TENANT, conn.id)
    assert stored is not None and stored.status == "needs_reauth"
    kinds = [e.kind for e in await repo.list_audit(TENANT, connection_id=conn.id)]
    assert "needs_reauth" in kinds
    # reconnecting the same connection makes it active again
    url = await oauth.begin(TENANT, "gohighlevel", oauth_server.redirect_uri, connection_id=conn.id)
    state, code = await authorize(url)
    again = await oauth.complete(state, code)
    assert again.id == conn.id and again.status == "active"
    assert (await (await clients.client(TENANT, conn.id)).request("GET", "/api/me")).status_code == 200


async def test_delete_path_revocation_keeps_the_token_out_of_logs(
    repo: StoreConnectionRepository,
    vault: Vault,
    oauth_server: OAuthTestServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    catalog = catalog_for(oauth_server).override(
        "gohighlevel",
        oauth2={"revoke_url": f"{oauth_server.url}/refresh-tokens/{{token}}", "revoke_style": "delete_path"},
    )
    oauth = OAuthService(
        catalog=catalog,
        repository=repo,
        vault=vault,
        redirect_uris=[oauth_server.redirect_uri],
        default_apps={
            "gohighlevel": OAuthAppCredentials(oauth_server.client_id, Secret(oauth_server.client_secret))
        },
        default_tenant=TENANT,
    )
    conn = await connect(oauth, TENANT, oauth_server.redirect_uri)
    refresh = conn.secret(vault, "refresh_token")
    assert refresh is not None
    result = await oauth.disconnect(TENANT, conn.id)
    assert result.revoked and oauth_server.revoked == [refresh.reveal()]
    httpx_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("/refresh-tokens/***" in line for line in httpx_lines)
    assert not any(refresh.reveal() in line for line in httpx_lines)
