"""OAuth 2.0 authorization-code flow (RFC 6749 section 4.1) with PKCE (RFC 7636, S256) and
revocation (RFC 7009), built on Authlib's client primitives.

The service (:class:`OAuthService`) is what the app's routes call:

* ``begin(tenant_id, provider, redirect_uri)`` -> the provider's authorize URL. The ``state`` is
  32 random bytes, single-use, bound to the tenant and provider, expiring after 10 minutes; the
  store keeps only its SHA-256 (in the system tenant, so the callback finds the tenant) and the
  PKCE verifier sealed in the vault.
* ``complete(state, code)`` -> the stored :class:`~crm_sync.models.Connection`: checks the
  state (:class:`ForgedStateError`, :class:`ReplayedStateError`, :class:`ExpiredStateError`),
  exchanges the code, stores the tokens sealed with the granted scopes and account ids, then asks
  the provider who was connected (the catalog's identity call).
* ``disconnect(tenant_id, connection_id)`` revokes where the provider can and deletes the tokens.
* ``refresh(connection)`` runs one refresh-token grant (RFC 6749 section 6); the authorised
  client (:mod:`crm_sync.client`) calls it under the connection's lease.

The OAuth apps' client id and secret come from the tenant's own registration
(:meth:`OAuthService.register_app`, sealed) or, for the default tenant, from ``default_apps``
(the app reads them from env with :func:`apps_from_env`).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from crm_sync.audit import AuditEvent
from crm_sync.base import AuthError, IntegrationError, ProviderError
from crm_sync.catalog import Catalog, Provider
from crm_sync.models import Connection, OAuthApp, OAuthAppCredentials, OAuthState, new_connection_id
from crm_sync.redact import redacting
from crm_sync.repository import ConnectionRepository
from crm_sync.vault import Secret, Vault, record_key
from kernel.clock import Clock, SystemClock
from kernel.http import parse_retry_after

__all__ = [
    "STATE_TTL_S",
    "AppNotConfiguredError",
    "AuthorizationDeniedError",
    "DisconnectResult",
    "ExpiredStateError",
    "ForgedStateError",
    "OAuthError",
    "OAuthService",
    "RedirectNotAllowedError",
    "ReplayedStateError",
    "StateError",
    "TokenExchangeError",
    "TokenSet",
    "apps_from_env",
    "parse_token_response",
]

log = logging.getLogger(__name__)

#: Lifetime of an authorisation's ``state`` (seconds).
STATE_TTL_S = 600.0


class OAuthError(IntegrationError):
    """Base error of the OAuth flow (messages never carry tokens, codes or secrets)."""


class StateError(OAuthError):
    """The callback's ``state`` is not acceptable."""


class ForgedStateError(StateError):
    """The ``state`` was never issued by us (or for another provider)."""


class ReplayedStateError(StateError):
    """The ``state`` was already used once."""


class ExpiredStateError(StateError):
    """The ``state`` is older than its 10-minute lifetime."""


class RedirectNotAllowedError(OAuthError):
    """The redirect URI is not on the allowlist."""


class AppNotConfiguredError(OAuthError):
    """No OAuth app (client id and secret) for this tenant and provider."""


class AuthorizationDeniedError(OAuthError):
    """The person declined (``error=access_denied``) or the provider returned an error to the callback.
    ``error`` is the provider's code."""

    def __init__(self, message: str, *, error: str) -> None:
        super().__init__(message)
        self.error = error


class TokenExchangeError(OAuthError):
    """The token endpoint refused the code (``error`` is the OAuth error code, e.g. ``invalid_grant``)."""

    def __init__(self, message: str, *, error: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.error = error
        self.status = status


@dataclass(frozen=True, slots=True)
class TokenSet:
    """A token endpoint's answer, normalised: ``expires_at`` epoch seconds (or ``None``),
    ``scopes`` as granted (``None``: the answer did not say), ``account`` the catalog's
    ``account_fields``, ``base_url`` the account's API host when the provider names one."""

    access_token: Secret
    refresh_token: Secret | None
    expires_at: float | None
    scopes: tuple[str, ...] | None
    account: dict[str, Any]
    base_url: str | None


@dataclass(frozen=True, slots=True)
class DisconnectResult:
    """``revoked``: the provider confirmed revocation; ``deleted``: the tokens are gone from the store."""

    revoked: bool
    deleted: bool


def apps_from_env(catalog: Catalog, env: Mapping[str, str]) -> dict[str, OAuthAppCredentials]:
    """The default tenant's OAuth apps from ``<PREFIX>_CLIENT_ID`` / ``<PREFIX>_CLIENT_SECRET``
    (``GHL_``, ``HUBSPOT_``, ``PIPEDRIVE_``, ``SALESFORCE_``, ``GOOGLE_``, ``CALENDLY_``: each
    entry's ``env_prefix``); providers with either value missing are left out."""
    apps: dict[str, OAuthAppCredentials] = {}
    for name, entry in catalog.providers.items():
        if entry.oauth2 is None or not entry.env_prefix:
            continue
        cid = (env.get(f"{entry.env_prefix}_CLIENT_ID") or "").strip()
        secret = (env.get(f"{entry.env_prefix}_CLIENT_SECRET") or "").strip()
        if cid and secret:
            apps[name] = OAuthAppCredentials(cid, Secret(secret))
    return apps


def parse_token_response(provider: Provider, body: Mapping[str, Any], *, now: float) -> TokenSet:
    """Normalise a token response with the provider's quirks (missing ``expires_in``, base URL
    and account fields). Raises :class:`TokenExchangeError` when it has no ``access_token``."""
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise TokenExchangeError(f"{provider.name}: the token response has no access_token")
    quirks = provider.token_response
    expires_in = body.get("expires_in", quirks.default_expires_in_s)
    try:
        expires_at = now + float(expires_in) if expires_in is not None else None
    except (TypeError, ValueError):
        expires_at = now + quirks.default_expires_in_s if quirks.default_expires_in_s else None
    refresh = body.get("refresh_token")
    scope = body.get("scope")
    scopes: tuple[str, ...] | None = None
    if isinstance(scope, str):
        scopes = tuple(s for s in scope.replace(",", " ").split() if s)
    elif isinstance(scope, list):
        scopes = tuple(str(s) for s in scope)
    account = {
        target: body[source]
        for source, target in quirks.account_fields.items()
        if source in body and isinstance(body[source], str | int | float | bool)
    }
    base_url = body.get(quirks.base_url_field) if quirks.base_url_field else None
    return TokenSet(
        access_token=Secret(access),
        refresh_token=Secret(refresh) if isinstance(refresh, str) and refresh else None,
        expires_at=expires_at,
        scopes=scopes,
        account=account,
        base_url=base_url
        if isinstance(base_url, str) and base_url.startswith(("https://", "http://"))
        else None,
    )


def _state_key(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8", "replace")).hexdigest()


class OAuthService:
    """The OAuth flow for every oauth2 provider of the catalog (see the module docstring).

    ``redirect_uris`` is the allowlist (exact matches); ``default_apps`` the default tenant's OAuth
    apps by provider (:func:`apps_from_env`); ``http`` an ``httpx.AsyncClient`` to reuse (one is
    made per call otherwise); ``timeout_s`` bounds each token, revoke or identity call.
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        repository: ConnectionRepository,
        vault: Vault,
        redirect_uris: Collection[str],
        default_apps: Mapping[str, OAuthAppCredentials] | None = None,
        default_tenant: str = "default",
        clock: Clock | None = None,
        http: httpx.AsyncClient | None = None,
        state_ttl_s: float = STATE_TTL_S,
        timeout_s: float = 15.0,
    ) -> None:
        self.catalog = catalog
        self.repository = repository
        self.vault = vault
        self.redirect_uris = frozenset(redirect_uris)
        self.default_apps = dict(default_apps or {})
        self.default_tenant = default_tenant
        self.clock = clock or SystemClock()
        self._http = http
        self.state_ttl_s = state_ttl_s
        self.timeout_s = timeout_s

    # app registrations ---------------------------------------------------------------------------
    async def register_app(
        self,
        tenant_id: str,
        provider: str,
        *,
        client_id: str,
        client_secret: Secret | str,
        actor: str = "system",
    ) -> None:
        """Store a tenant's own OAuth app for ``provider`` (the secret sealed); audited."""
        entry = self._oauth_provider(provider)
        if (
            not client_id.strip()
            or not (client_secret.reveal() if isinstance(client_secret, Secret) else client_secret).strip()
        ):
            raise OAuthError("client_id and client_secret are required")
        app = OAuthApp.seal(
            self.vault,
            tenant_id=tenant_id,
            provider=entry.name,
            client_id=client_id.strip(),
            client_secret=client_secret,
            at=self.clock.now(),
        )
        await self.repository.save_oauth_app(app)
        await self.repository.append_audit(
            AuditEvent.new(tenant_id, "app_registered", provider=entry.name, actor=actor, at=self.clock.now())
        )

    async def app_credentials(self, tenant_id: str, provider: str) -> OAuthAppCredentials:
        """The OAuth app for the tenant: its own registration, else (default tenant only) the env's.
        Raises :class:`AppNotConfiguredError`."""
        app = await self.repository.get_oauth_app(tenant_id, provider)
        if app is not None:
            return app.credentials(self.vault)
        if tenant_id == self.default_tenant and provider in self.default_apps:
            return self.default_apps[provider]
        raise AppNotConfiguredError(f"no OAuth app configured for {provider!r} in tenant {tenant_id!r}")

    # the flow ------------------------------------------------------------------------------------------
    async def begin(
        self,
        tenant_id: str,
        provider: str,
        redirect_uri: str,
        *,
        scopes: Sequence[str] | None = None,
        connection_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Start an authorisation; returns the URL to redirect the person to.

        ``scopes`` default to the catalog's; ``connection_id`` reconnects an existing connection
        (``needs_reauth``) instead of creating one; ``extra`` (small JSON, e.g. the page to return
        to) comes back on the completed state.

        Raises:
            RedirectNotAllowedError, AppNotConfiguredError, CatalogError (unknown provider),
            OAuthError (the provider is not oauth2).
        """
        entry = self._oauth_provider(provider)
        spec = entry.oauth2
        assert spec is not None
        if redirect_uri not in self.redirect_uris:
            raise RedirectNotAllowedError("the redirect URI is not on the allowlist")
        app = await self.app_credentials(tenant_id, entry.name)
        state = secrets.token_urlsafe(32)
        key = _state_key(state)
        now = self.clock.now()
        granted = tuple(scopes) if scopes is not None else spec.default_scopes
        params: dict[str, Any] = dict(spec.authorization_params)
        sealed: dict[str, str] = {}
        if spec.pkce:
            verifier = generate_token(64)
            params["code_challenge"] = create_s256_code_challenge(verifier)
            params["code_challenge_method"] = "S256"
            sealed["code_verifier"] = self.vault.encrypt(
                verifier, tenant_id=tenant_id, record_id=record_key("oauth_state", key), field="code_verifier"
            )
        await self.repository.create_state(
            OAuthState(
                key=key,
                tenant_id=tenant_id,
                provider=entry.name,
                redirect_uri=redirect_uri,
                scopes=granted,
                created_at=now,
                expires_at=now + self.state_ttl_s,
                connection_id=connection_id,
                extra=dict(extra or {}),
                secrets=sealed,
            )
        )
        if granted:
            params["scope"] = spec.scope_separator.join(granted)
        url: str = prepare_grant_uri(
            spec.authorization_url,
            client_id=app.client_id,
            response_type="code",
            redirect_uri=redirect_uri,
            state=state,
            **params,
        )
        return url

    async def complete(
        self,
        state: str,
        code: str | None,
        *,
        provider: str | None = None,
        error: str | None = None,
        actor: str = "system",
    ) -> Connection:
        """Finish an authorisation from the callback's ``state`` and ``code`` (or ``error``).

        ``provider`` (from the callback's path) must match the state's. The state is consumed
        whatever happens next. Returns the stored, active connection with its identity filled in
        (an identity call that fails is logged and leaves the account as the token response gave it).

        Raises:
            ForgedStateError, ReplayedStateError, ExpiredStateError: the state.
            AuthorizationDeniedError: the provider sent ``error`` (the person cancelled).
            TokenExchangeError: the token endpoint refused the code; ProviderError: it failed.
        """
        now = self.clock.now()
        if not state or len(state) > 512:
            raise ForgedStateError("unknown OAuth state")
        key = _state_key(state)
        pending = await self.repository.consume_state(key, now=now)
        if pending is None or (provider is not None and provider != pending.provider):
            raise ForgedStateError("unknown OAuth state")
        if pending.used_at is not None:
            raise ReplayedStateError("this OAuth state was already used")
        if now > pending.expires_at:
            raise ExpiredStateError("this OAuth state has expired; start again")
        if error:
            raise AuthorizationDeniedError(
                f"{pending.provider}: the authorisation was not granted ({error[:64]})", error=error[:64]
            )
        if not code:
            raise TokenExchangeError(
                f"{pending.provider}: the callback carried no code", error="invalid_request"
            )
        entry = self._oauth_provider(pending.provider)
        spec = entry.oauth2
        assert spec is not None
        app = await self.app_credentials(pending.tenant_id, entry.name)
        form: dict[str, str] = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            **spec.token_params,
        }
        if "code_verifier" in pending.secrets:
            form["code_verifier"] = self.vault.decrypt(
                pending.secrets["code_verifier"],
                tenant_id=pending.tenant_id,
                record_id=record_key("oauth_state", key),
                field="code_verifier",
            ).reveal()
        body = await self._token_request(entry, app, form)
        tokens = parse_token_response(entry, body, now=self.clock.now())
        connection = await self._store_tokens(pending, entry, tokens, actor=actor)
        try:
            from crm_sync.client import fetch_identity

            identity = await fetch_identity(
                connection, catalog=self.catalog, vault=self.vault, http=self._http
            )
        except IntegrationError as exc:
            log.warning("identity call failed for %s connection %s: %s", entry.name, connection.id, exc)
            identity = {}
        if identity:
            stored = await self.repository.update_connection(
                connection.tenant_id,
                connection.id,
                lambda c: c.replace(account={**c.account, **identity}, updated_at=self.clock.now()),
            )
            connection = stored or connection
        return connection

    async def _store_tokens(
        self, pending: OAuthState, entry: Provider, tokens: TokenSet, *, actor: str
    ) -> Connection:
        now = self.clock.now()
        existing = (
            await self.repository.get_connection(pending.tenant_id, pending.connection_id)
            if pending.connection_id
            else None
        )
        if existing is not None and existing.provider != entry.name:
            existing = None
        base = existing or Connection(
            id=pending.connection_id or new_connection_id(),
            tenant_id=pending.tenant_id,
            provider=entry.name,
            auth_mode="oauth2",
            created_at=now,
        )
        account = {**base.account, **tokens.account}
        if tokens.base_url:
            account["base_url"] = tokens.base_url
        connection = base.replace(
            status="active",
            auth_mode="oauth2",
            scopes=tokens.scopes if tokens.scopes is not None else pending.scopes,
            account=account,
            expires_at=tokens.expires_at,
            refreshed_at=now,
            updated_at=now,
        ).with_secrets(
            self.vault,
            {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token},
        )
        stored = await self.repository.save_connection(connection)
        await self.repository.append_audit(
            AuditEvent.new(
                pending.tenant_id,
                "reconnect" if existing else "connect",
                connection_id=stored.id,
                provider=entry.name,
                actor=actor,
                detail={"scopes": list(stored.scopes)},
                at=now,
            )
        )
        return stored

    async def refresh(self, connection: Connection) -> TokenSet:
        """Run one refresh-token grant for ``connection`` (no storage: the caller saves the result
        under its lease). A response without ``refresh_token`` keeps the old one (Salesforce).

        Raises:
            AuthError: ``invalid_grant`` (revoked or already-used refresh token), or no refresh token.
            ProviderError: the token endpoint failed (``retryable`` for 429/5xx/network).
        """
        entry = self._oauth_provider(connection.provider)
        refresh = connection.secret(self.vault, "refresh_token")
        if refresh is None:
            raise AuthError(f"{entry.name}: connection {connection.id} has no refresh token")
        app = await self.app_credentials(connection.tenant_id, entry.name)
        assert entry.oauth2 is not None
        form = {"grant_type": "refresh_token", "refresh_token": refresh.reveal(), **entry.oauth2.token_params}
        try:
            body = await self._token_request(entry, app, form)
        except TokenExchangeError as exc:
            if exc.error in ("invalid_grant", "unauthorized_client", "invalid_client") or exc.status == 401:
                raise AuthError(f"{entry.name}: refresh refused ({exc.error or exc.status})") from None
            raise ProviderError(str(exc), status=exc.status) from None
        tokens = parse_token_response(entry, body, now=self.clock.now())
        if tokens.refresh_token is None:
            tokens = TokenSet(
                tokens.access_token,
                refresh,
                tokens.expires_at,
                tokens.scopes,
                tokens.account,
                tokens.base_url,
            )
        return tokens

    async def disconnect(
        self, tenant_id: str, connection_id: str, *, actor: str = "system"
    ) -> DisconnectResult:
        """Revoke the connection's tokens where the provider can (RFC 7009, or HubSpot's DELETE),
        then delete the connection and its tokens whatever the revocation's outcome; audited
        (``disconnect``, with ``revoked`` and ``tokens_deleted``). Unknown connection: nothing
        revoked, nothing deleted."""
        connection = await self.repository.get_connection(tenant_id, connection_id)
        if connection is None:
            return DisconnectResult(revoked=False, deleted=False)
        entry = self.catalog.providers.get(connection.provider)
        revoked = False
        if entry is not None and entry.oauth2 is not None and entry.oauth2.revoke_url:
            try:
                revoked = await self._revoke(entry, connection)
            except IntegrationError as exc:
                log.warning("revocation failed for %s connection %s: %s", entry.name, connection_id, exc)
                await self.repository.append_audit(
                    AuditEvent.new(
                        tenant_id,
                        "revoke_failed",
                        connection_id=connection_id,
                        provider=connection.provider,
                        actor=actor,
                        detail={"error": type(exc).__name__},
                        at=self.clock.now(),
                    )
                )
        await self.repository.delete_connection(tenant_id, connection_id)
        await self.repository.append_audit(
            AuditEvent.new(
                tenant_id,
                "disconnect",
                connection_id=connection_id,
                provider=connection.provider,
                actor=actor,
                detail={"revoked": revoked, "tokens_deleted": True},
                at=self.clock.now(),
            )
        )
        return DisconnectResult(revoked=revoked, deleted=True)

    async def _revoke(self, entry: Provider, connection: Connection) -> bool:
        spec = entry.oauth2
        assert spec is not None and spec.revoke_url
        token = connection.secret(self.vault, "refresh_token") or connection.secret(
            self.vault, "access_token"
        )
        if token is None:
            return False
        hint = "refresh_token" if connection.secrets.get("refresh_token") else "access_token"
        async with self._client() as http:
            try:
                with redacting([token.reveal()]):
                    resp = await self._revoke_call(http, entry, connection, token, hint)
            except httpx.HTTPError as exc:
                raise ProviderError(
                    f"{entry.name}: revocation request failed ({type(exc).__name__})", retryable=True
                ) from None
        if resp.status_code >= 400:
            raise ProviderError(
                f"{entry.name}: revocation answered HTTP {resp.status_code}", status=resp.status_code
            )
        return True

    async def _revoke_call(
        self, http: httpx.AsyncClient, entry: Provider, connection: Connection, token: Secret, hint: str
    ) -> httpx.Response:
        spec = entry.oauth2
        assert spec is not None and spec.revoke_url
        if spec.revoke_style == "delete_path":
            return await http.delete(spec.revoke_url.replace("{token}", token.reveal()))
        app = await self.app_credentials(connection.tenant_id, entry.name)
        form = {"token": token.reveal(), "token_type_hint": hint}
        return await self._post_form(http, entry, app, spec.revoke_url, form)

    # plumbing --------------------------------------------------------------------------------------------
    def _oauth_provider(self, provider: str) -> Provider:
        entry = self.catalog.get(provider)
        if entry.oauth2 is None:
            raise OAuthError(f"{provider!r} does not connect through OAuth 2.0")
        return entry

    def _client(self) -> _ClientCtx:
        return _ClientCtx(self._http, self.timeout_s)

    async def _post_form(
        self,
        http: httpx.AsyncClient,
        entry: Provider,
        app: OAuthAppCredentials,
        url: str,
        form: dict[str, str],
    ) -> httpx.Response:
        assert entry.oauth2 is not None
        headers = {"Accept": "application/json"}
        if entry.oauth2.client_auth == "client_secret_basic":
            auth = httpx.BasicAuth(app.client_id, app.client_secret.reveal())
            return await http.post(url, data=form, auth=auth, headers=headers)
        form = {**form, "client_id": app.client_id, "client_secret": app.client_secret.reveal()}
        return await http.post(url, data=form, headers=headers)

    async def _token_request(
        self, entry: Provider, app: OAuthAppCredentials, form: dict[str, str]
    ) -> dict[str, Any]:
        assert entry.oauth2 is not None
        async with self._client() as http:
            try:
                resp = await self._post_form(http, entry, app, entry.oauth2.token_url, form)
            except httpx.HTTPError as exc:
                raise ProviderError(
                    f"{entry.name}: token endpoint unreachable ({type(exc).__name__})", retryable=True
                ) from None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise ProviderError(
                f"{entry.name}: token endpoint answered HTTP {resp.status_code}",
                status=resp.status_code,
                retryable=True,
                retry_after_s=parse_retry_after(resp.headers),
            )
        if not isinstance(body, dict):
            raise TokenExchangeError(
                f"{entry.name}: token endpoint answered HTTP {resp.status_code} without JSON",
                status=resp.status_code,
            )
        if resp.status_code >= 400 or "error" in body:
            code = str(body.get("error") or "")[:64]
            raise TokenExchangeError(
                f"{entry.name}: token endpoint refused ({code or resp.status_code})",
                error=code,
                status=resp.status_code,
            )
        return body


class _ClientCtx:
    """An ``async with`` giving the shared client, or a fresh one closed on exit."""

    def __init__(self, shared: httpx.AsyncClient | None, timeout_s: float) -> None:
        self._shared = shared
        self._timeout_s = timeout_s
        self._own: httpx.AsyncClient | None = None

    async def __aenter__(self) -> httpx.AsyncClient:
        if self._shared is not None:
            return self._shared
        self._own = httpx.AsyncClient(timeout=self._timeout_s, trust_env=False)
        return self._own

    async def __aexit__(self, *exc: object) -> None:
        if self._own is not None:
            await self._own.aclose()
