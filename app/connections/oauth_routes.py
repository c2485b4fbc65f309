"""OAuth 2.0 connection routes (RFC 6749 section 4.1, through :class:`crm_sync.oauth.OAuthService`).

- ``POST /auth/{provider}/link`` (admin key): a signed link to ``/auth/{provider}/init`` valid
  :data:`LINK_TTL_S` seconds, for a browser that cannot send the admin key:
  ``{"url", "expires_at"}``.
- ``GET /auth/{provider}/init`` (admin key, or the signed link's ``tenant``, ``exp`` and ``sig``;
  optional ``connection_id`` reconnects that connection): 302 to the provider's authorize page,
  with a state bound to the tenant (single use, 10 minutes) and PKCE where the provider has it.
  The redirect URI is the allowlist's entry for the provider (``OAUTH_REDIRECT_URIS``).
- ``GET /auth/{provider}/callback``: consumes the state, exchanges the code, stores the tokens,
  then 302 to the result page (``OAUTH_RESULT_URL``) with ``status=connected&provider=..&
  connection_id=..`` or ``status=error&provider=..&error=cancelled|denied|bad_state|
  exchange_failed``. A failure whose tenant is known is audited (``connect_failed``).
- ``POST /auth/{provider}/disconnect`` (admin key; ``connection_id`` or every connection of the
  provider): revokes where the provider can and deletes the tokens; says so.
- ``GET /auth/result``: a minimal page showing the outcome (the default result page).

Codes, states and tokens never appear in a response or a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import time
from typing import Annotated, Any, Final
from urllib.parse import urlencode, urlsplit

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotAuthorizedException, NotFoundException
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Redirect
from litestar.status_codes import HTTP_302_FOUND, HTTP_400_BAD_REQUEST

from app.connections.admin import AdminCaller, actor_of_key
from app.connections.audit import record
from app.connections.config import ConnectionConfig
from app.connections.services import ConnectionServices
from app.core.logs import get_logger
from app.tenancy.auth import tenant_from_bearer
from app.tenancy.directory import TenantDirectory
from crm_sync.base import IntegrationError
from crm_sync.catalog import CatalogError, Provider
from crm_sync.oauth import (
    AppNotConfiguredError,
    AuthorizationDeniedError,
    ExpiredStateError,
    OAuthError,
    RedirectNotAllowedError,
    ReplayedStateError,
    StateError,
)

__all__ = ["LINK_TTL_S", "ROUTES", "sign_link", "verify_link"]

log = get_logger("leadwarm.oauth")

#: Lifetime of a signed init link (seconds).
LINK_TTL_S: Final = 600


def _state_key(state: str) -> str:
    """The stored key of a state value: its SHA-256, hex (as :mod:`crm_sync.oauth` stores it)."""
    return hashlib.sha256(state.encode("utf-8", "replace")).hexdigest()


def _link_message(tenant_id: str, provider: str, exp: int, connection_id: str) -> bytes:
    return "\n".join(["leadwarm-oauth-init", tenant_id, provider, str(exp), connection_id]).encode()


def sign_link(key: bytes, tenant_id: str, provider: str, exp: int, connection_id: str = "") -> str:
    """HMAC-SHA256 (hex) of the init link's fields under the link key."""
    return hmac.new(key, _link_message(tenant_id, provider, exp, connection_id), hashlib.sha256).hexdigest()


def verify_link(
    key: bytes, tenant_id: str, provider: str, exp: str, sig: str, connection_id: str, *, now: float
) -> bool:
    """Whether the link's signature is ours and it has not expired (nor lives beyond its TTL)."""
    try:
        expires = int(exp)
    except ValueError:
        return False
    if not (now <= expires <= now + LINK_TTL_S + 5) or len(sig) != 64:
        return False
    return hmac.compare_digest(sign_link(key, tenant_id, provider, expires, connection_id), sig)


def _oauth_provider(connections: ConnectionServices, provider: str) -> Provider:
    try:
        entry = connections.catalog.get(provider)
    except CatalogError:
        raise NotFoundException(f"unknown provider {provider!r}") from None
    if entry.oauth2 is None:
        raise HTTPException(
            status_code=HTTP_400_BAD_REQUEST,
            detail=f"{provider} connects with {'/'.join(entry.auth_modes)} credentials: "
            "POST /api/v1/integrations",
        )
    return entry


def _redirect_uri(config: ConnectionConfig, provider: str) -> str:
    suffix = f"/auth/{provider}/callback"
    for uri in config.redirect_uris:
        if urlsplit(uri).path.endswith(suffix):
            return uri
    raise HTTPException(
        status_code=HTTP_400_BAD_REQUEST,
        detail=f"no redirect URI ending in {suffix} on the allowlist (OAUTH_REDIRECT_URIS)",
    )


@post("/auth/{provider:str}/link", status_code=200)
async def init_link(
    provider: FromPath[str],
    admin: NamedDependency[AdminCaller],
    connections: NamedDependency[ConnectionServices],
    connections_config: NamedDependency[ConnectionConfig],
    connection_id: FromQuery[str] = "",
) -> dict[str, Any]:
    """A signed, short-lived link to start connecting ``provider`` in a browser."""
    _oauth_provider(connections, provider)
    if connection_id and await connections.repository.get_connection(admin.tenant_id, connection_id) is None:
        raise NotFoundException(f"no integration {connection_id!r}")
    exp = int(time.time()) + LINK_TTL_S
    sig = sign_link(connections_config.link_key, admin.tenant_id, provider, exp, connection_id)
    query = {"tenant": admin.tenant_id, "exp": str(exp), "sig": sig}
    if connection_id:
        query["connection_id"] = connection_id
    url = f"{connections_config.public_base_url}/auth/{provider}/init?{urlencode(query)}"
    return {"url": url, "expires_at": exp}


@get("/auth/{provider:str}/init", status_code=HTTP_302_FOUND)
async def init(
    provider: FromPath[str],
    request: Request[Any, Any, Any],
    tenants: NamedDependency[TenantDirectory],
    connections: NamedDependency[ConnectionServices],
    connections_config: NamedDependency[ConnectionConfig],
    connection_id: FromQuery[str] = "",
    tenant: FromQuery[str] = "",
    exp: FromQuery[str] = "",
    sig: FromQuery[str] = "",
) -> Redirect:
    """302 to the provider's authorize page (see the module docstring)."""
    entry = _oauth_provider(connections, provider)
    if request.headers.get("authorization"):
        tenant_id = await tenant_from_bearer(request, tenants)
        actor = actor_of_key(request.headers["authorization"].partition(" ")[2].strip())
    elif sig:
        if not verify_link(
            connections_config.link_key, tenant, provider, exp, sig, connection_id, now=time.time()
        ):
            raise NotAuthorizedException("this connect link is invalid or has expired: ask for a new one")
        tenant_id, actor = tenant, "signed_link"
    else:
        raise NotAuthorizedException(
            "missing Authorization: Bearer <admin API key>"
            " (or use a signed link from POST /auth/{provider}/link)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if connection_id and await connections.repository.get_connection(tenant_id, connection_id) is None:
        raise NotFoundException(f"no integration {connection_id!r}")
    redirect_uri = _redirect_uri(connections_config, entry.name)
    try:
        url = await connections.oauth.begin(
            tenant_id, entry.name, redirect_uri, connection_id=connection_id or None, extra={"actor": actor}
        )
    except (AppNotConfiguredError, RedirectNotAllowedError) as exc:
        hint = f" (set {entry.env_prefix}_CLIENT_ID / _CLIENT_SECRET or PUT /api/v1/oauth-apps/{entry.name})"
        raise HTTPException(
            status_code=HTTP_400_BAD_REQUEST,
            detail=str(exc) + (hint if isinstance(exc, AppNotConfiguredError) else ""),
        ) from None
    log.info("oauth.init", tenant=tenant_id, provider=entry.name, actor=actor)
    return Redirect(path=url, status_code=HTTP_302_FOUND)


def _failure(exc: Exception) -> tuple[str, str]:
    """(the result page's ``error`` code, a detail for the audit trail) for a callback failure."""
    if isinstance(exc, AuthorizationDeniedError):
        return ("cancelled" if exc.error == "access_denied" else "denied"), exc.error
    if isinstance(exc, StateError):
        kind = (
            "expired"
            if isinstance(exc, ExpiredStateError)
            else "replayed"
            if isinstance(exc, ReplayedStateError)
            else "unknown"
        )
        return "bad_state", kind
    return "exchange_failed", type(exc).__name__


@get("/auth/{provider:str}/callback", status_code=HTTP_302_FOUND)
async def callback(
    provider: FromPath[str],
    connections: NamedDependency[ConnectionServices],
    connections_config: NamedDependency[ConnectionConfig],
    oauth_state: Annotated[str, QueryParameter(name="state")] = "",
    code: FromQuery[str] = "",
    error: FromQuery[str] = "",
) -> Redirect:
    """Finish the authorisation; 302 to the result page (see the module docstring)."""
    query: dict[str, str] = {"provider": provider[:64]}
    pending = (
        await connections.repository.peek_state(_state_key(oauth_state))
        if oauth_state and len(oauth_state) <= 512
        else None
    )
    # who started the authorisation (an admin key or a signed link) is who connected
    actor = str(pending.extra.get("actor") or "oauth_callback") if pending is not None else "oauth_callback"
    try:
        connection = await connections.oauth.complete(
            oauth_state, code or None, provider=provider, error=error or None, actor=actor
        )
    except (OAuthError, IntegrationError) as exc:
        reason, detail = _failure(exc)
        query.update(status="error", error=reason)
        log.warning("oauth.callback_failed", provider=provider[:64], reason=reason, detail=detail)
        if pending is not None and pending.provider == provider and pending.used_at is None:
            await record(
                connections.repository,
                pending.tenant_id,
                "connect_failed",
                actor=actor,
                provider=pending.provider,
                connection_id=pending.connection_id,
                detail={"reason": reason, "detail": detail[:64]},
            )
    else:
        query.update(status="connected", connection_id=connection.id)
        log.info(
            "oauth.connected", tenant=connection.tenant_id, provider=provider, connection_id=connection.id
        )
    sep = "&" if urlsplit(connections_config.result_url).query else "?"
    return Redirect(
        path=f"{connections_config.result_url}{sep}{urlencode(query)}", status_code=HTTP_302_FOUND
    )


@post("/auth/{provider:str}/disconnect", status_code=200)
async def disconnect(
    provider: FromPath[str],
    admin: NamedDependency[AdminCaller],
    connections: NamedDependency[ConnectionServices],
    connection_id: FromQuery[str] = "",
) -> dict[str, Any]:
    """Revoke and delete ``connection_id`` (or every connection of ``provider`` of the tenant).
    Answers ``{"disconnected": [{"id", "revoked", "tokens_deleted"}]}``; 404 when there is none."""
    if connection_id:
        found = await connections.repository.get_connection(admin.tenant_id, connection_id)
        targets = [found] if found is not None and found.provider == provider else []
    else:
        targets = [c for c in await _all_connections(connections, admin.tenant_id) if c.provider == provider]
    if not targets:
        raise NotFoundException(f"no {provider} connection to disconnect")
    done = []
    for conn in targets:
        if conn.auth_mode == "oauth2":
            result = await connections.oauth.disconnect(admin.tenant_id, conn.id, actor=admin.actor)
            done.append({"id": conn.id, "revoked": result.revoked, "tokens_deleted": result.deleted})
        else:
            deleted = await connections.credentials.delete(admin.tenant_id, conn.id, actor=admin.actor)
            done.append({"id": conn.id, "revoked": False, "tokens_deleted": deleted})
    log.info("oauth.disconnected", tenant=admin.tenant_id, provider=provider, count=len(done))
    return {"disconnected": done}


async def _all_connections(connections: ConnectionServices, tenant_id: str) -> list[Any]:
    out: list[Any] = []
    after: str | None = None
    while len(out) < 10_000:
        page = await connections.repository.list_connections(tenant_id, after=after, limit=500)
        out.extend(page)
        if len(page) < 500:
            break
        after = page[-1].id
    return out


@get("/auth/result", media_type="text/html")
async def result_page(
    status: FromQuery[str] = "",
    provider: FromQuery[str] = "",
    error: FromQuery[str] = "",
    connection_id: FromQuery[str] = "",
) -> Response[str]:
    """A minimal page telling the person how the connection went."""
    messages = {
        "cancelled": "The connection was cancelled.",
        "denied": "The provider did not grant access.",
        "bad_state": "This connection attempt is no longer valid (expired or already used): start again.",
        "exchange_failed": "The provider did not accept the authorisation: start again.",
    }
    if status == "connected":
        text = f"{provider} is connected."
    else:
        text = messages.get(error, "The connection did not complete.")
    body = f"<!doctype html><meta charset=utf-8><title>LeadWarm</title><p>{html.escape(text[:200])}</p>" + (
        f"<p><small>{html.escape(connection_id[:64])}</small></p>" if connection_id else ""
    )
    return Response(content=body, media_type="text/html")


ROUTES = [init_link, init, callback, disconnect, result_page]
