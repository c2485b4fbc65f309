"""API-key and basic connections connect and pass their ``test`` action against local servers:
Pipedrive's API token, Twilio's SID and token, a mailbox's SMTP login, a signed webhook ping.
Also: the token bucket fed by rate-limit headers and retries honouring Retry-After."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stamina
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from app.connections import StoreConnectionRepository
from crm_sync.base import AuthError, ProviderError
from crm_sync.catalog import Catalog
from crm_sync.client import ConnectionClients
from crm_sync.credentials import CredentialError, CredentialService
from crm_sync.oauth import OAuthService
from crm_sync.vault import Vault
from tests.connections.conftest import TENANT
from tests.connections.helpers import connect
from tests.crm_sync.oauth_server import OAuthTestServer
from tests.support.imap_server import running_dovecot
from tests.support.ports import free_port

PIPEDRIVE_TOKEN = "pd-token-" + "a1b2c3d4e5"
TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "tw-auth-token-9f8e7d"
WEBHOOK_SECRET = "whsec-0123456789"


@dataclass
class Provider:
    url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)
    limited_calls: int = 0


@pytest.fixture
def provider_api() -> Iterator[Provider]:
    """Pipedrive, Twilio and webhook stand-ins on one loopback server, checking credentials."""
    state = Provider()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            state.seen.append({"path": self.path, "headers": dict(self.headers)})
            if self.path.startswith("/api/v1/users/me"):
                if self.headers.get("x-api-token") != PIPEDRIVE_TOKEN:
                    return self._reply(401, {"success": False, "error": "unauthorized"})
                return self._reply(
                    200,
                    {
                        "data": {
                            "id": 7,
                            "name": "Marie",
                            "email": "marie@shop.test",
                            "company_id": 42,
                            "company_name": "Shop",
                        }
                    },
                )
            if self.path.startswith("/api/v1/echo"):  # a provider quoting the credential in its error
                return self._reply(400, {"error": f"bad request for token {self.headers.get('x-api-token')}"})
            if self.path == f"/2010-04-01/Accounts/{TWILIO_SID}.json":
                expected = "Basic " + base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self._reply(401, {"code": 20003, "message": "Authenticate"})
                return self._reply(200, {"friendly_name": "Agence SMS", "status": "active"})
            return self._reply(404, {})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            state.seen.append({"path": self.path, "headers": dict(self.headers), "body": raw})
            sig = self.headers.get("X-LeadWarm-Signature", "")
            parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
            mac = hmac.new(WEBHOOK_SECRET.encode(), parts.get("t", "").encode() + b"." + raw, hashlib.sha256)
            if not hmac.compare_digest(mac.hexdigest(), parts.get("v1", "")):
                return self._reply(401, {"error": "bad signature"})
            return self._reply(200, {"ok": True})

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def service(catalog: Catalog, repo: StoreConnectionRepository, vault: Vault) -> CredentialService:
    return CredentialService(catalog=catalog, repository=repo, vault=vault)


async def test_pipedrive_api_token(
    service: CredentialService,
    clients: ConnectionClients,
    repo: StoreConnectionRepository,
    provider_api: Provider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    conn = await service.create(
        TENANT,
        "pipedrive",
        {"api_token": PIPEDRIVE_TOKEN, "company_domain": "shop"},
        settings={"base_url": provider_api.url},
    )
    assert conn.auth_mode == "api_key" and set(conn.secrets) == {"api_token"}
    assert conn.settings["company_domain"] == "shop" and PIPEDRIVE_TOKEN not in json.dumps(conn.to_doc())
    account = await clients.test(TENANT, conn.id)
    assert account == {
        "user_id": 7,
        "name": "Marie",
        "email": "marie@shop.test",
        "company_id": 42,
        "company_name": "Shop",
    }
    stored = await repo.get_connection(TENANT, conn.id)
    assert stored is not None and stored.account["company_name"] == "Shop"
    assert [e.kind for e in await repo.list_audit(TENANT, connection_id=conn.id)] == ["test", "connect"]
    # a wrong token: the test fails with AuthError, audited, the token not in the message
    await service.update(TENANT, conn.id, {"api_token": "wrong-token-value"})
    with pytest.raises(AuthError) as info:
        await clients.test(TENANT, conn.id)
    assert "wrong-token-value" not in str(info.value)
    audit = await repo.list_audit(TENANT, connection_id=conn.id)
    assert audit[0].kind == "test" and audit[0].detail == {"ok": False, "error": "AuthError"}
    text = caplog.text + repr(conn) + repr(audit)
    assert PIPEDRIVE_TOKEN not in text and "wrong-token-value" not in text
    # an error body quoting the credential is scrubbed before it reaches ProviderError
    await service.update(TENANT, conn.id, {"api_token": PIPEDRIVE_TOKEN})
    client = await clients.client(TENANT, conn.id)
    with pytest.raises(ProviderError) as failed:
        await client.request("GET", "/api/v1/echo")
    assert failed.value.status == 400 and not failed.value.retryable
    assert "***" in failed.value.body and PIPEDRIVE_TOKEN not in failed.value.body + str(failed.value)
    with pytest.raises(CredentialError):
        await service.create(TENANT, "pipedrive", {"company_domain": "shop"})
    with pytest.raises(CredentialError):
        await service.create(TENANT, "pipedrive", {"api_token": "x", "company_domain": "s", "extra": "y"})


async def test_twilio_basic(
    service: CredentialService, clients: ConnectionClients, provider_api: Provider
) -> None:
    conn = await service.create(
        TENANT,
        "twilio",
        {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "numbers": "+33612345678"},
        settings={"base_url": provider_api.url},
    )
    assert conn.auth_mode == "basic" and set(conn.secrets) == {"auth_token"}
    assert await clients.test(TENANT, conn.id) == {"name": "Agence SMS", "status": "active"}


async def test_webhook_ping_is_signed(
    service: CredentialService, clients: ConnectionClients, provider_api: Provider
) -> None:
    conn = await service.create(
        TENANT, "webhook", {"url": provider_api.url + "/hook", "signing_secret": WEBHOOK_SECRET}
    )
    assert await clients.test(TENANT, conn.id) == {"status": 200}
    assert json.loads(provider_api.seen[-1]["body"]) == {"type": "ping", "connection_id": conn.id}
    await service.update(TENANT, conn.id, {"signing_secret": "another-secret"})
    with pytest.raises(ProviderError):
        await clients.test(TENANT, conn.id)


async def test_smtp_login(service: CredentialService, clients: ConnectionClients) -> None:
    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            b"agent",
            b"mail-pass-77",
        )
        return AuthResult(success=ok, handled=False)

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            return "250 OK"

    controller = Controller(
        Sink(), hostname="127.0.0.1", port=free_port(), authenticator=authenticator, auth_require_tls=False
    )
    controller.start()
    try:
        values = {
            "username": "agent",
            "password": "mail-pass-77",
            "smtp_host": "127.0.0.1",
            "smtp_port": str(controller.port),
            "smtp_security": "none",
        }
        conn = await service.create(TENANT, "smtp_imap", values)
        assert set(conn.secrets) == {"password"}
        assert await clients.test(TENANT, conn.id) == {"smtp": "ok", "imap": "skipped"}
        await service.update(TENANT, conn.id, {"password": "wrong"})
        with pytest.raises(AuthError):
            await clients.test(TENANT, conn.id)
    finally:
        controller.stop()


async def test_smtp_and_imap_login(service: CredentialService, clients: ConnectionClients) -> None:
    """The mailbox test logs in to a real IMAP server (dovecot) too; a refused IMAP login is an AuthError."""

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        return AuthResult(success=isinstance(auth_data, LoginPassword), handled=False)

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook name
            return "250 OK"

    controller = Controller(
        Sink(), hostname="127.0.0.1", port=free_port(), authenticator=authenticator, auth_require_tls=False
    )
    controller.start()
    try:
        with running_dovecot() as imap:
            values = {
                "username": imap.user,
                "password": imap.password,
                "smtp_host": "127.0.0.1",
                "smtp_port": str(controller.port),
                "smtp_security": "none",
                "imap_host": imap.host,
                "imap_port": str(imap.port),
                "imap_security": "none",
            }
            conn = await service.create(TENANT, "smtp_imap", values)
            assert await clients.test(TENANT, conn.id) == {"smtp": "ok", "imap": "ok"}
            await service.update(TENANT, conn.id, {"password": "not-the-imap-password"})
            with pytest.raises(AuthError):
                await clients.test(TENANT, conn.id)
    finally:
        controller.stop()


async def test_rate_limit_headers_pause_the_bucket(
    oauth: OAuthService, clients: ConnectionClients, oauth_server: OAuthTestServer
) -> None:
    conn = await connect(oauth, TENANT, oauth_server.redirect_uri)
    client = await clients.client(TENANT, conn.id)
    await client.request("GET", "/api/limited")  # answers Remaining: 0, Reset: 0.4 s
    started = time.monotonic()
    await client.request("GET", "/api/me")
    assert time.monotonic() - started >= 0.35


async def test_retry_honours_retry_after(
    oauth: OAuthService, clients: ConnectionClients, oauth_server: OAuthTestServer
) -> None:
    conn = await connect(oauth, TENANT, oauth_server.redirect_uri)
    client = await clients.client(TENANT, conn.id)
    oauth_server.flaky_failures = 1  # one 429 with retry-after-ms: 300
    stamina.set_testing(False)  # real waits: the wait must be the one the server asked for
    try:
        started = time.monotonic()
        assert (await client.request("GET", "/api/flaky")).json() == {"ok": True}
        assert 0.28 <= time.monotonic() - started < 3
        oauth_server.flaky_failures = 10
        clients.retry_attempts = 2
        with pytest.raises(ProviderError) as info:
            await client.request("GET", "/api/flaky")
        assert info.value.status == 429 and info.value.retryable
    finally:
        stamina.set_testing(True, attempts=3)


async def test_a_base_url_on_a_private_address_is_refused_unless_the_install_allows_it(
    service: CredentialService,
    catalog: Catalog,
    repo: StoreConnectionRepository,
    vault: Vault,
    oauth: OAuthService,
    provider_api: Provider,
) -> None:
    """A connection's ``base_url`` is the tenant's to set: by default the connections' pool does
    not dial loopback or private addresses (server-side request forgery), by IP or by name."""
    guarded = ConnectionClients(catalog=catalog, repository=repo, vault=vault, oauth=oauth)
    try:
        for base in (provider_api.url, provider_api.url.replace("127.0.0.1", "localhost")):
            conn = await service.create(
                TENANT,
                "pipedrive",
                {"api_token": PIPEDRIVE_TOKEN, "company_domain": "shop"},
                settings={"base_url": base},
            )
            with pytest.raises(ProviderError, match="private or loopback") as refused:
                await guarded.test(TENANT, conn.id)
            assert not refused.value.retryable
            assert PIPEDRIVE_TOKEN not in str(refused.value)
        assert provider_api.seen == []  # nothing reached the server
    finally:
        await guarded.aclose()
