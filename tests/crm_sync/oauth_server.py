"""A real OAuth 2.0 authorization server and resource API on 127.0.0.1, for the credential tests.

Built on Authlib's server side (Flask integration), served by werkzeug in a thread on an ephemeral
port. It speaks the authorization-code grant with PKCE (S256, required), the refresh-token grant
with rotation (each refresh token works once; refreshing revokes the old access token), RFC 7009
revocation, and a GoHighLevel-shaped token response (``locationId``, ``userType``). Its API checks
the bearer token and the ``Version`` header:

* ``GET /locations/<id>``: the identity call, ``{"location": {"name", "email"}}``;
* ``GET /api/me``: ``{"ok": true}`` for a valid token (counts calls);
* ``GET /api/limited``: answers with ``X-RateLimit-Remaining: 0`` and ``X-RateLimit-Reset``;
* ``GET /api/flaky``: 429 with ``retry-after-ms`` for the first ``flaky_failures`` calls.

Everything it issued is in ``issued`` (to scan logs for leaks); ``refresh_grants`` counts refreshes.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

__all__ = ["OAuthTestServer", "running_oauth_server"]

LOCATION_ID = "loc-123"
VERSION = "2021-07-28"


@dataclass
class _Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_post", "client_secret_basic")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class _Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    user_id: str = "user-1"

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class _Token:
    client_id: str
    access_token: str
    refresh_token: str | None
    scope: str
    issued_at: float
    expires_in: int
    access_revoked: bool = False
    refresh_revoked: bool = False
    user_id: str = "user-1"

    def check_client(self, client: _Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() > self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.refresh_revoked

    def get_user(self) -> str:
        return self.user_id

    def get_client(self) -> Any:
        raise NotImplementedError


@dataclass
class OAuthTestServer:
    """State and knobs of the running server (see the module docstring)."""

    url: str = ""
    client_id: str = "client-abc"
    client_secret: str = field(default_factory=lambda: "cs-" + secrets.token_urlsafe(16))
    redirect_uri: str = "https://app.example.test/auth/gohighlevel/callback"
    expires_in: int = 3600
    flaky_failures: int = 0
    refresh_delay_s: float = 0.0
    issued: list[str] = field(default_factory=list)
    refresh_grants: int = 0
    code_grants: int = 0
    revoked: list[str] = field(default_factory=list)
    api_calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    codes: dict[str, _Code] = field(default_factory=dict)
    by_access: dict[str, _Token] = field(default_factory=dict)
    by_refresh: dict[str, _Token] = field(default_factory=dict)

    def revoke_all_refresh_tokens(self) -> None:
        """Make every refresh token invalid (the next refresh gets ``invalid_grant``)."""
        with self.lock:
            for token in self.by_refresh.values():
                token.refresh_revoked = True

    def expire_access_tokens(self) -> None:
        """Make every access token expired (the API answers 401)."""
        with self.lock:
            for token in self.by_access.values():
                token.issued_at = 0


def _build(state: OAuthTestServer) -> Flask:
    app = Flask("oauth-test-server")
    app.config["OAUTH2_REFRESH_TOKEN_GENERATOR"] = True

    def query_client(client_id: str) -> _Client | None:
        if client_id == state.client_id:
            return _Client(state.client_id, state.client_secret, [state.redirect_uri])
        return None

    def save_token(token: dict[str, Any], req: Any) -> None:
        with state.lock:
            record = _Token(
                client_id=req.client.client_id,
                access_token=token["access_token"],
                refresh_token=token.get("refresh_token"),
                scope=token.get("scope", ""),
                issued_at=time.time(),
                expires_in=int(token["expires_in"]),
            )
            state.by_access[record.access_token] = record
            state.issued.append(record.access_token)
            if record.refresh_token:
                state.by_refresh[record.refresh_token] = record
                state.issued.append(record.refresh_token)

    server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
    server.register_token_generator(
        "default",
        BearerTokenGenerator(
            access_token_generator=lambda *a, **k: "at-" + secrets.token_urlsafe(24),
            refresh_token_generator=lambda *a, **k: "rt-" + secrets.token_urlsafe(24),
            expires_generator=lambda client, grant_type: state.expires_in,
        ),
    )

    class CodeGrant(grants.AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")

        def save_authorization_code(self, code: str, req: Any) -> None:
            with state.lock:
                state.codes[code] = _Code(
                    code=code,
                    client_id=req.client.client_id,
                    redirect_uri=req.payload.redirect_uri,
                    scope=req.payload.scope or "",
                    code_challenge=req.payload.data.get("code_challenge"),
                    code_challenge_method=req.payload.data.get("code_challenge_method"),
                )
                state.issued.append(code)

        def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
            item = state.codes.get(code)
            return item if item and item.client_id == client.client_id else None

        def delete_authorization_code(self, authorization_code: _Code) -> None:
            with state.lock:
                state.codes.pop(authorization_code.code, None)
                state.code_grants += 1

        def authenticate_user(self, authorization_code: _Code) -> str:
            return authorization_code.user_id

    class RefreshGrant(grants.RefreshTokenGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
        INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every refresh returns a new refresh token

        def authenticate_refresh_token(self, refresh_token: str) -> _Token | None:
            if state.refresh_delay_s:
                time.sleep(state.refresh_delay_s)  # widen the race window of concurrent refreshes
            token = state.by_refresh.get(refresh_token)
            return token if token and not token.refresh_revoked else None

        def authenticate_user(self, refresh_token: _Token) -> str:
            return refresh_token.user_id

        def revoke_old_credential(self, refresh_token: _Token) -> None:
            with state.lock:
                refresh_token.refresh_revoked = True
                refresh_token.access_revoked = True
                state.refresh_grants += 1

    class Revocation(RevocationEndpoint):
        CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")

        def query_token(self, token_string: str, token_type_hint: str | None) -> _Token | None:
            return state.by_refresh.get(token_string) or state.by_access.get(token_string)

        def revoke_token(self, token: _Token, req: Any) -> None:
            with state.lock:
                token.refresh_revoked = True
                token.access_revoked = True
                state.revoked.append(token.refresh_token or token.access_token)

    server.register_grant(CodeGrant, [CodeChallenge(required=True)])
    server.register_grant(RefreshGrant)
    server.register_endpoint(Revocation)

    @app.get("/authorize")
    def authorize() -> Any:
        if not request.args.get("code_challenge"):
            # this provider requires PKCE even from confidential clients
            return jsonify(error="invalid_request", error_description="PKCE required"), 400
        try:
            grant = server.get_consent_grant(end_user="user-1")
        except OAuth2Error as exc:
            return jsonify(error=exc.error), 400
        return server.create_authorization_response(grant_user="user-1", grant=grant)

    @app.post("/token")
    def token() -> Any:
        resp = server.create_token_response()
        body = resp.get_json(silent=True)
        if resp.status_code == 200 and isinstance(body, dict):
            body.update({"locationId": LOCATION_ID, "userType": "Location", "companyId": "co-9"})
            resp.set_data(jsonify(body).get_data())
        return resp

    @app.post("/revoke")
    def revoke() -> Any:
        return server.create_endpoint_response(Revocation.ENDPOINT_NAME)

    @app.delete("/refresh-tokens/<token>")
    def delete_refresh_token(token: str) -> Any:  # HubSpot's style of revocation
        record = state.by_refresh.get(token)
        if record is None:
            return jsonify(error="not found"), 404
        with state.lock:
            record.refresh_revoked = record.access_revoked = True
            state.revoked.append(token)
        return "", 204

    def _bearer() -> tuple[Any, int] | None:
        header = request.headers.get("Authorization", "")
        token = state.by_access.get(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None
        if token is None or token.access_revoked or token.is_expired():
            return jsonify(error="invalid_token"), 401
        if request.headers.get("Version") != VERSION:
            return jsonify(error="missing Version header"), 400
        return None

    @app.get("/locations/<location_id>")
    def location(location_id: str) -> Any:
        denied = _bearer()
        if denied:
            return denied
        if location_id != LOCATION_ID:
            return jsonify(error="not found"), 404
        return jsonify(location={"id": location_id, "name": "Agence Test", "email": "owner@agence.test"})

    @app.get("/api/me")
    def me() -> Any:
        denied = _bearer()
        if denied:
            return denied
        with state.lock:
            state.api_calls += 1
        return jsonify(ok=True)

    @app.get("/api/limited")
    def limited() -> Any:
        denied = _bearer()
        if denied:
            return denied
        resp = jsonify(ok=True)
        resp.headers["X-RateLimit-Remaining"] = "0"
        resp.headers["X-RateLimit-Reset"] = "0.4"
        return resp

    @app.get("/api/flaky")
    def flaky() -> Any:
        denied = _bearer()
        if denied:
            return denied
        with state.lock:
            failing = state.flaky_failures > 0
            state.flaky_failures -= 1 if failing else 0
        if failing:
            resp = jsonify(error="rate limited")
            resp.status_code = 429
            resp.headers["retry-after-ms"] = "300"
            return resp
        return jsonify(ok=True)

    return app


@contextmanager
def running_oauth_server(**knobs: Any) -> Iterator[OAuthTestServer]:
    """Start the server on 127.0.0.1 (an ephemeral port) in a thread; stop it on exit."""
    # Authlib refuses plain http unless told the transport is trusted (loopback here)
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    state = OAuthTestServer(**knobs)
    httpd = make_server("127.0.0.1", 0, _build(state), threaded=True)
    state.url = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), name="oauth-test-server", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
