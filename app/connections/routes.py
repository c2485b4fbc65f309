"""The integrations API (``/api/v1``): tenant-scoped, authenticated by the admin key (Bearer),
every call audited (``admin_api``). Secrets are write-only: a connection shows the names of its
secret fields (``secret_fields``), never their values.

- ``GET /api/v1/integrations``: the provider catalog, with ``connect_url`` for oauth2 providers and
  whether the tenant has an OAuth app for them (``oauth_app_configured``).
- ``GET /api/v1/integrations/configured``: the tenant's connections (``?after=<id>&limit=``,
  answer ``{"integrations": [...], "next": <id or null>}``).
- ``POST /api/v1/integrations``: connect an api_key / basic provider:
  ``{"provider", "auth_mode"?, "label"?, "credentials": {field: value}, "settings"?: {"base_url"},
  "id"?}`` -> 201 with the connection (409 when ``id`` exists; oauth2 providers connect through
  ``/auth/{provider}/init``).
- ``GET /api/v1/integrations/{id}``; ``PUT`` (``label``, ``credentials``, ``settings``: given fields
  replace, others stay; 409 for credentials of an oauth2 connection, and for a new ``base_url``
  without the secret fields entered again: a stored secret is never sent to a new host);
  ``DELETE`` (revokes where it can, deletes the tokens: ``{"deleted": true, "revoked",
  "tokens_deleted"}``).
- ``POST /api/v1/integrations/{id}/enable`` (409 when it needs re-authorisation), ``/disable``,
  ``/test`` (``{"ok", "account"}`` or ``{"ok": false, "error", "message"}``), ``/sync`` (202: the
  provider's registered sync handler, else ``{"status": "nothing_to_sync"}``).
- ``GET /api/v1/integrations/{id}/logs``: the connection's audit events, newest first.
- ``GET /api/v1/audit``: the tenant's audit trail (``?limit=1..1000&kind=``), newest first.
- ``GET /api/v1/oauth-apps``; ``PUT /api/v1/oauth-apps/{provider}`` (``{"client_id",
  "client_secret"}``, the tenant's own OAuth app); ``DELETE``.

Bad input: 400 with the reason (field names, never values); another tenant's id: 404.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, Final, TypeVar

from litestar import Request, delete, get, post, put
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_201_CREATED,
    HTTP_202_ACCEPTED,
    HTTP_400_BAD_REQUEST,
    HTTP_409_CONFLICT,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.connections.admin import AdminCaller
from app.connections.audit import record
from app.connections.services import ConnectionServices
from app.connections.sync import SyncRegistry
from app.core.coded_errors import refusal
from app.core.logs import get_logger
from app.messaging.tenant_channels import register_routes
from app.tenancy.directory import TenantDirectory
from crm_sync.base import AuthError, IntegrationError
from crm_sync.catalog import CatalogError
from crm_sync.credentials import CredentialError
from crm_sync.models import Connection, ConnectionStatus
from crm_sync.oauth import OAuthError
from crm_sync.repository import ConnectionRepository

__all__ = ["ROUTES", "IntegrationIn", "IntegrationUpdate", "OAuthAppIn"]

log = get_logger("leadwarm.integrations")

M = TypeVar("M", bound=BaseModel)

_ID: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
_ID_RE: Final = re.compile(_ID)
#: Non-secret settings a person may set on a connection.
SETTABLE: Final = frozenset({"base_url"})


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class IntegrationIn(_In):
    """A new api_key / basic connection. ``credentials`` are the catalog's fields for the mode."""

    provider: str = Field(min_length=1, max_length=64)
    auth_mode: str | None = Field(default=None, max_length=16)
    label: str = Field(default="", max_length=200)
    credentials: dict[str, str] = Field(default_factory=dict, max_length=32)
    settings: dict[str, str] = Field(default_factory=dict, max_length=8)
    id: str | None = Field(default=None, pattern=_ID)


class IntegrationUpdate(_In):
    """A change: only the given parts change."""

    label: str | None = Field(default=None, max_length=200)
    credentials: dict[str, str] | None = Field(default=None, max_length=32)
    settings: dict[str, str] | None = Field(default=None, max_length=8)


class OAuthAppIn(_In):
    """A tenant's own OAuth app for one provider."""

    client_id: str = Field(min_length=1, max_length=512)
    client_secret: str = Field(min_length=1, max_length=4096)


def _bad(detail: str, code: str | None = None, **params: str) -> HTTPException:
    """A 400 with ``detail``; with ``code`` and ``params`` when a page may say it in its reader's
    words (:mod:`app.core.coded_errors`, ``err_<code>`` in :mod:`app.dashboard.i18n_errors`)."""
    return refusal(HTTP_400_BAD_REQUEST, detail, code, dict(params) or None)


def _conflict(detail: str, code: str, **params: str) -> HTTPException:
    """A 409 with ``detail``, ``code`` and ``params`` (see :func:`_bad`)."""
    return refusal(HTTP_409_CONFLICT, detail, code, dict(params) or None)


def _credential_refusal(exc: IntegrationError) -> HTTPException:
    """The 400 of a refused credential: its code and parameters when it has them."""
    if isinstance(exc, CredentialError):
        return _bad(str(exc), exc.code, **exc.params)
    return _bad(str(exc))


async def _body(request: Request[Any, Any, Any], model: type[M]) -> M:
    """Parse the JSON body into ``model``; 400 naming the fields at fault (never their values)."""
    try:
        raw = await request.json()
    except Exception:
        raise _bad("the body must be JSON") from None
    if not isinstance(raw, dict):
        raise _bad("the body must be a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        reasons = [
            f"{'.'.join(str(p) for p in err['loc'][:2]) or 'body'}: {err['msg']}" for err in exc.errors()[:10]
        ]
        raise _bad("; ".join(reasons)) from None


def _check_settings(settings: Mapping[str, str]) -> dict[str, str]:
    unknown = sorted(set(settings) - SETTABLE)
    if unknown:
        raise _bad(f"settings: unknown key(s) {unknown} (allowed: {sorted(SETTABLE)})")
    base = settings.get("base_url")
    if base is not None and not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", base[:500]):
        raise _bad("settings.base_url: must be an http(s) URL", "not_http_url")
    return dict(settings)


async def _own(connections: ConnectionServices, tenant_id: str, connection_id: str) -> Connection:
    """The tenant's connection; 404 otherwise (another tenant's id looks like no id at all)."""
    if not _ID_RE.match(connection_id):
        raise NotFoundException(f"no integration {connection_id[:64]!r}")
    connection = await connections.repository.get_connection(tenant_id, connection_id)
    if connection is None:
        raise NotFoundException(f"no integration {connection_id!r}")
    return connection


def _view(connection: Connection) -> dict[str, Any]:
    return connection.public_view()


# ----------------------------------------------------------------------------------------- catalog


@get("/api/v1/integrations")
async def catalog(
    admin: NamedDependency[AdminCaller], connections: NamedDependency[ConnectionServices]
) -> dict[str, Any]:
    """Every provider LeadWarm can connect, and how."""
    out = []
    for name, entry in sorted(connections.catalog.providers.items()):
        item = entry.public_view()
        if entry.oauth2 is not None:
            item["connect_url"] = f"/auth/{name}/init"
            try:
                await connections.oauth.app_credentials(admin.tenant_id, name)
                item["oauth_app_configured"] = True
            except IntegrationError:
                item["oauth_app_configured"] = False
        out.append(item)
    return {"providers": out}


@get("/api/v1/integrations/configured")
async def configured(
    admin: NamedDependency[AdminCaller],
    connections: NamedDependency[ConnectionServices],
    after: FromQuery[str | None] = None,
    limit: FromQuery[int] = 100,
) -> dict[str, Any]:
    """The tenant's connections, by id, a page at a time."""
    if not 1 <= limit <= 500:
        raise _bad("limit: between 1 and 500")
    page = await connections.repository.list_connections(admin.tenant_id, after=after, limit=limit)
    return {
        "integrations": [_view(c) for c in page],
        "next": page[-1].id if len(page) == limit else None,
    }


# ------------------------------------------------------------------------------------ one connection


@post("/api/v1/integrations", status_code=HTTP_201_CREATED)
async def create(
    request: Request[Any, Any, Any],
    admin: NamedDependency[AdminCaller],
    connections: NamedDependency[ConnectionServices],
    tenants: NamedDependency[TenantDirectory],
) -> dict[str, Any]:
    """Connect an api_key or basic provider with the person's credentials. A channel connection
    (WhatsApp, Twilio, mailbox) also routes its receiving addresses to the tenant."""
    body = await _body(request, IntegrationIn)
    try:
        entry = connections.catalog.get(body.provider)
    except CatalogError:
        raise _bad(
            f"provider: unknown provider {body.provider!r} (see GET /api/v1/integrations)",
            "provider_unknown",
            provider=body.provider[:64],
        ) from None
    if body.auth_mode == "oauth2" or (body.auth_mode is None and entry.auth_modes == ("oauth2",)):
        raise _bad(
            f"provider: {entry.name} connects through OAuth: GET /auth/{entry.name}/init",
            "provider_oauth_only",
            provider=entry.name,
        )
    if body.auth_mode is not None and body.auth_mode not in entry.auth_modes:
        raise _bad(
            f"auth_mode: {entry.name} takes {list(entry.auth_modes)}",
            "auth_mode_not_offered",
            provider=entry.name,
        )
    settings = _check_settings(body.settings)
    if body.id and await connections.repository.get_connection(admin.tenant_id, body.id) is not None:
        raise _conflict(f"integration {body.id!r} exists", "integration_exists", id=body.id)
    try:
        connection = await connections.credentials.create(
            admin.tenant_id,
            entry.name,
            body.credentials,
            auth_mode=body.auth_mode,
            label=body.label,
            settings=settings,
            actor=admin.actor,
            connection_id=body.id,
        )
    except IntegrationError as exc:
        raise _credential_refusal(exc) from None
    log.info("integration.created", tenant=admin.tenant_id, provider=entry.name, connection_id=connection.id)
    await register_routes(tenants, connection)
    return _view(connection)


@get("/api/v1/integrations/{connection_id:str}")
async def read(
    connection_id: FromPath[str],
    admin: NamedDependency[AdminCaller],
    connections: NamedDependency[ConnectionServices],
) -> dict[str, Any]:
    """One connection of the tenant."""
    return _view(await _own(connections, admin.tenant_id, connection_id))


@put("/api/v1/integrations/{connection_id:str}")
async def update(
    connection_id: FromPath[str],
    request: Request[Any, Any, Any],
    admin: NamedDependency[AdminCaller],
    connections: NamedDependency[ConnectionServices],
    tenants: NamedDependency[TenantDirectory],
) -> dict[str, Any]:
    """Change the label, credentials (api_key / basic only) or settings."""
    current = await _own(connections, admin.tenant_id, connection_id)
    body = await _body(request, IntegrationUpdate)
    settings = _check_settings(body.settings or {})
    if body.credentials and current.auth_mode == "oauth2":
        raise _conflict(
            f"an OAuth connection is renewed by connecting again: GET /auth/{current.provider}/init"
            f"?connection_id={current.id}",
            "oauth_renewed_by_connecting",
        )
    if "base_url" in settings and settings["base_url"] != current.settings.get("base_url"):
        # secrets are write-only: they never go to a new host unless they are entered again
        if current.auth_mode == "oauth2":
            raise _conflict("an OAuth connection's API host comes from the provider", "oauth_host_fixed")
        missing = sorted(set(current.secrets) - set(body.credentials or {}))
        if missing:
            raise _conflict(
                f"a new base_url needs the secret field(s) {missing} entered again",
                "secrets_needed_again",
                fields=", ".join(missing),
            )
    stored = current
    if body.credentials or (settings and current.auth_mode != "oauth2"):
        try:
            stored = await connections.credentials.update(
                admin.tenant_id, connection_id, body.credentials or {}, settings=settings, actor=admin.actor
            )
        except IntegrationError as exc:
            raise _credential_refusal(exc) from None
    elif settings:
        stored = await _patch(connections.repository, current, settings=settings) or stored
    if body.label is not None:
        stored = await _patch(connections.repository, current, label=body.label) or stored
    await register_routes(tenants, stored)
    return _view(stored)


async def _patch(repository: ConnectionRepository, current: Connection, **changes: Any) -> Connection | None:
    def change(c: Connection) -> Connection:
        values = dict(changes)
        if "settings" in values:
            values["settings"] = {**c.settings, **values["settings"]}
        return c.replace(**values, updated_at=time.time())

    return await repository.update_connection(current.tenant_id, current.id, change)


@delete("/api/v1/integrations/{connection_id:str}", status_code=HTTP_200_OK)
async def remove(
    connection_id: FromPath[str],
    admin: NamedDependency[AdminCaller],
    connections: NamedDependency[ConnectionServices],
) -> dict[str, Any]:
    """Disconnect: revoke where the provider can, delete the tokens, and say so."""
    current = await _own(connections, admin.tenant_id, connection_id)
    if current.auth_mode == "oauth2":
        result = await connections.oauth.disconnect(admin.tenant_id, connection_id, actor=admin.actor)
        revoked, deleted = result.revoked, result.deleted
    else:
        revoked = False
        deleted = await connections.credentials.delete(admin.tenant_id, connection_id, actor=admin.actor)
    log.info("integration.deleted", tenant=admin.tenant_id, connection_id=connection_id, revoked=revoked)
    return {"id": connection_id, "deleted": deleted, "revoked": revoked, "tokens_deleted": deleted}


# ---------------------------------------------------------------------------------------- actions


@post("/api/v1/integrations/{connection_id:str}/enable", status_code=HTTP_200_OK)
async def enable(
    connection_id: FromPath[str],
    admin: NamedDependency[AdminCaller],
    connections: NamedDependency[ConnectionServices],
) -> dict[str, Any]:
    """Turn a disabled connection back on (409 when it needs re-authorisation)."""
    current = await _own(connections, admin.tenant_id, connection_id)
    if current.status == "needs_reauth":
        how = (
            f"connect again: GET /auth/{current.provider}/init?connection_id={current.id}"
            if current.auth_mode == "oauth2"
            else "update its credentials: PUT /api/v1/integrations/" + current.id
        )
        raise _conflict(f"the connection needs re-authorisation: {how}", "needs_reauthorisation")
    return await _set_status(connections, admin, current, "active", "enable")


async def _set_status(
    connections: ConnectionServices,
    admin: AdminCaller,
    current: Connection,
    status: ConnectionStatus,
    kind: str,
) -> dict[str, Any]:
    """Set a connection's status and audit it as ``kind``; returns the API view."""
    stored = await connections.credentials.set_status(
        admin.tenant_id,
        current.id,
        status,
        actor=admin.actor,
    )
    await record(
        connections.repository,
        admin.tenant_id,
        kind,
        actor=admin.actor,
        connection_id=current.id,
        provider=current.provider,
    )
    return _view(stored)


@post("/api/v1/integrations/{connection_id:str}/disable", status_code=HTTP_200_OK)
async def disable(
    connection_id: FromPath[str],
    admin: NamedDependency[AdminCaller],
    connections: NamedDependency[ConnectionServices],
) -> dict[str, Any]:
    """Stop using a connection (its credentials stay)."""
    current = await _own(connections, admin.tenant_id, connection_id)
    return await _set_status(connections, admin, current, "disabled", "disable")


@post("/api/v1/integrations/{connection_id:str}/test", status_code=HTTP_200_OK)
async def test_connection(
    connection_id: FromPath[str],
    admin: NamedDependency[AdminCaller],
    connections: NamedDependency[ConnectionServices],
) -> dict[str, Any]:
    """Run the provider's test action; the outcome is audited (``test``)."""
    await _own(connections, admin.tenant_id, connection_id)
    try:
        account = await connections.clients.test(admin.tenant_id, connection_id, actor=admin.actor)
    except IntegrationError as exc:
        kind = "auth_failed" if isinstance(exc, AuthError) else "provider_error"
        after = await connections.repository.get_connection(admin.tenant_id, connection_id)
        return {
            "ok": False,
            "error": kind,
            "message": str(exc)[:300],
            "status": after.status if after else None,
        }
    return {"ok": True, "account": account}


@post("/api/v1/integrations/{connection_id:str}/sync", status_code=HTTP_202_ACCEPTED)
async def sync(
    connection_id: FromPath[str],
    admin: NamedDependency[AdminCaller],
    connections: NamedDependency[ConnectionServices],
    sync_handlers: NamedDependency[SyncRegistry],
) -> dict[str, Any]:
    """Start a sync through the provider's registered handler (the seam for CRM sync)."""
    current = await _own(connections, admin.tenant_id, connection_id)
    handler = sync_handlers.get(current.provider)
    if handler is None:
        return {"status": "nothing_to_sync", "message": "nothing to sync yet", "id": current.id}
    if current.status != "active":
        raise _conflict(f"the connection is {current.status}", "connection_not_active", status=current.status)
    try:
        facts = await handler(current, actor=admin.actor)
    except IntegrationError as exc:
        raise HTTPException(status_code=HTTP_409_CONFLICT, detail=str(exc)[:300]) from None
    return {"status": "accepted", "id": current.id, **dict(facts)}


@get("/api/v1/integrations/{connection_id:str}/logs")
async def logs(
    connection_id: FromPath[str],
    admin: NamedDependency[AdminCaller],
    connections: NamedDependency[ConnectionServices],
    limit: FromQuery[int] = 100,
) -> dict[str, Any]:
    """The connection's audit events, newest first (also after it was deleted)."""
    if not 1 <= limit <= 1000:
        raise _bad("limit: between 1 and 1000")
    if not _ID_RE.match(connection_id):
        raise NotFoundException(f"no integration {connection_id[:64]!r}")
    events = await connections.repository.list_audit(
        admin.tenant_id, connection_id=connection_id, limit=limit
    )
    if not events and await connections.repository.get_connection(admin.tenant_id, connection_id) is None:
        raise NotFoundException(f"no integration {connection_id!r}")
    return {"events": [e.to_doc() for e in events]}


@get("/api/v1/integrations/audit")
async def audit_trail(
    admin: NamedDependency[AdminCaller],
    connections: NamedDependency[ConnectionServices],
    limit: FromQuery[int] = 100,
    kind: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """The tenant's audit trail, newest first (``kind`` filters the page read)."""
    if not 1 <= limit <= 1000:
        raise _bad("limit: between 1 and 1000")
    events = await connections.repository.list_audit(admin.tenant_id, limit=limit)
    return {"events": [e.to_doc() for e in events if kind is None or e.kind == kind]}


# ------------------------------------------------------------------------------------- OAuth apps


@get("/api/v1/oauth-apps")
async def oauth_apps(
    admin: NamedDependency[AdminCaller], connections: NamedDependency[ConnectionServices]
) -> dict[str, Any]:
    """The tenant's own OAuth app registrations (client ids; secrets never)."""
    out = []
    for name, entry in sorted(connections.catalog.providers.items()):
        if entry.oauth2 is None:
            continue
        app = await connections.repository.get_oauth_app(admin.tenant_id, name)
        if app is not None:
            out.append({"provider": name, "client_id": app.client_id, "created_at": app.created_at})
    return {"apps": out}


@put("/api/v1/oauth-apps/{provider:str}")
async def put_oauth_app(
    provider: FromPath[str],
    request: Request[Any, Any, Any],
    admin: NamedDependency[AdminCaller],
    connections: NamedDependency[ConnectionServices],
) -> dict[str, Any]:
    """Register the tenant's own OAuth app for ``provider`` (the secret sealed in the vault)."""
    body = await _body(request, OAuthAppIn)
    try:
        await connections.oauth.register_app(
            admin.tenant_id,
            provider,
            client_id=body.client_id,
            client_secret=body.client_secret,
            actor=admin.actor,
        )
    except CatalogError:
        raise NotFoundException(f"unknown provider {provider!r}") from None
    except OAuthError as exc:
        raise _bad(str(exc)) from None
    return {"provider": provider, "client_id": body.client_id}


@delete("/api/v1/oauth-apps/{provider:str}", status_code=HTTP_200_OK)
async def delete_oauth_app(
    provider: FromPath[str],
    admin: NamedDependency[AdminCaller],
    connections: NamedDependency[ConnectionServices],
) -> dict[str, Any]:
    """Remove the tenant's own OAuth app for ``provider`` (404 when it has none)."""
    if await connections.repository.get_oauth_app(admin.tenant_id, provider) is None:
        raise NotFoundException(f"no OAuth app for {provider!r}")
    await connections.repository.delete_oauth_app(admin.tenant_id, provider)
    await record(
        connections.repository, admin.tenant_id, "oauth_app_removed", actor=admin.actor, provider=provider
    )
    return {"provider": provider, "deleted": True}


ROUTES = [
    catalog,
    configured,
    create,
    read,
    update,
    remove,
    enable,
    disable,
    test_connection,
    sync,
    logs,
    audit_trail,
    oauth_apps,
    put_oauth_app,
    delete_oauth_app,
]
