"""The CRM sync API (``/api/v1/crm``, admin key) and the inbound CRM webhooks (``/webhooks``).

- ``GET /api/v1/crm/integrations``: the tenant's CRM connections with their sync settings.
- ``GET|PUT /api/v1/crm/{connection_id}/settings``: one integration's settings
  (:class:`app.crm.records.Integration`: events, direction, frequency, review, options, mapping...).
- ``POST /api/v1/crm/{connection_id}/webhook-token``: a new URL token for inbound webhooks; the URL
  is shown once (only its hash is kept).
- ``POST /api/v1/crm/{connection_id}/sync/{lead_id}``: sync one lead now.
- ``POST /api/v1/crm/{connection_id}/replay``: queue the dead letter again (``{"replayed": n}``).
- ``GET /api/v1/crm/{connection_id}/logs``: sync logs, newest first (``status``, ``lead_id``, ``limit``).
- ``GET /api/v1/crm/{connection_id}/webhook-logs``: inbound webhook logs, newest first.
- ``GET /api/v1/crm/review``: leads waiting for approval; ``POST /api/v1/crm/review/{id}/approve``
  and ``/reject``.
- ``POST /webhooks/integrations/{platform}`` (HubSpot v3, GoHighLevel signatures) and
  ``POST /webhooks/integrations/{platform}/{token}`` (vendors that sign nothing): 200, or 401.

Times are epoch seconds (UTC).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from litestar import Request, Response, get, post, put
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_400_BAD_REQUEST, HTTP_401_UNAUTHORIZED
from pydantic import BaseModel, ValidationError

from app.composition import Runtime
from app.crm.inbound import handle_webhook, route_id, token_hash
from app.crm.records import Integration, link_id
from app.crm.sync import CrmSync, replay_dead_letters
from app.store import SYSTEM_TENANT, Order, where
from app.store import collections as col
from crm_sync.mapping import FieldMapping, MappingError
from crm_sync.models import Connection

__all__ = ["ROUTES", "IntegrationSettings"]


class IntegrationSettings(BaseModel):
    """Body of ``PUT /api/v1/crm/{connection_id}/settings``: the fields to change."""

    enabled: bool | None = None
    events: list[str] | None = None
    direction: str | None = None
    frequency: str | None = None
    review: bool | None = None
    options: dict[str, Any] | None = None
    mapping: list[dict[str, Any]] | None = None
    start_tags: list[str] | None = None
    start_on_create: bool | None = None
    start_channel: str | None = None
    start_playbook_id: str | None = None
    webhook_account_id: str | None = None


async def _connection(runtime: Runtime, tenant_id: str, connection_id: str) -> Connection:
    services = runtime.connections
    connection = await services.repository.get_connection(tenant_id, connection_id) if services else None
    if connection is None:
        raise NotFoundException(f"connection {connection_id} not found")
    return connection


def _default_account(connection: Connection) -> str | None:
    for key in ("location_id", "locationId", "portal_id", "portalId"):
        value = connection.account.get(key)
        if value:
            return str(value)
    return None


@get("/api/v1/crm/integrations", summary="CRM connections and their sync settings")
async def list_integrations(
    runtime: NamedDependency[Runtime], tenant_id: NamedDependency[str], crm: NamedDependency[CrmSync]
) -> dict[str, Any]:
    """Each CRM connection (public view) with its settings."""
    out = []
    for connection in await crm.connections(tenant_id):
        integration = await crm.integration(tenant_id, connection.id)
        out.append({"connection": connection.public_view(), "settings": integration.to_doc()})
    return {"integrations": out}


@get("/api/v1/crm/{connection_id:str}/settings", summary="One integration's sync settings")
async def get_settings(
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    crm: NamedDependency[CrmSync],
    connection_id: FromPath[str],
) -> dict[str, Any]:
    """The settings (the defaults when never saved); 404 for an unknown connection."""
    await _connection(runtime, tenant_id, connection_id)
    return (await crm.integration(tenant_id, connection_id)).to_doc()


@put("/api/v1/crm/{connection_id:str}/settings", summary="Change an integration's sync settings")
async def put_settings(
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    crm: NamedDependency[CrmSync],
    connection_id: FromPath[str],
    data: JSONBody[IntegrationSettings],
) -> dict[str, Any]:
    """Merge the given fields into the settings; 400 for an unknown event, direction, frequency or a
    bad mapping row. Routes signed inbound webhooks of the account (``webhook_account_id``, else the
    connection's location or portal id) to this integration."""
    connection = await _connection(runtime, tenant_id, connection_id)
    current = await crm.integration(tenant_id, connection_id)
    changes = data.model_dump(exclude_unset=True)
    try:
        integration = Integration.model_validate({**current.to_doc(), **changes})
        for row in integration.mapping:
            FieldMapping(**row)
    except (ValidationError, MappingError, TypeError) as exc:
        raise HTTPException(status_code=HTTP_400_BAD_REQUEST, detail=str(exc)[:1000]) from None
    integration = await crm.save_integration(tenant_id, integration)
    account = integration.webhook_account_id or _default_account(connection)
    if account and connection.provider in ("hubspot", "gohighlevel"):
        await runtime.store.set(
            SYSTEM_TENANT,
            col.CRM_WEBHOOK_ROUTES,
            route_id(connection.provider, account),
            {"tenant_id": tenant_id, "connection_id": connection_id},
        )
    return integration.to_doc()


@post(
    "/api/v1/crm/{connection_id:str}/webhook-token",
    status_code=HTTP_200_OK,
    summary="New inbound webhook URL",
)
async def new_webhook_token(
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    crm: NamedDependency[CrmSync],
    connection_id: FromPath[str],
    platform: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """A fresh URL token (the old one stops working); ``platform`` (default: the connection's
    provider, ``generic`` for the webhook connection) picks the parser. The URL is shown once."""
    connection = await _connection(runtime, tenant_id, connection_id)
    platform = platform or ("generic" if connection.provider == "webhook" else connection.provider)
    token = secrets.token_urlsafe(32)
    integration = await crm.integration(tenant_id, connection_id)
    if integration.webhook_token_hash:
        await runtime.store.delete(
            SYSTEM_TENANT, col.CRM_WEBHOOK_ROUTES, f"token:{integration.webhook_token_hash}"
        )
    digest = token_hash(token)
    await runtime.store.set(
        SYSTEM_TENANT,
        col.CRM_WEBHOOK_ROUTES,
        f"token:{digest}",
        {"tenant_id": tenant_id, "connection_id": connection_id},
    )
    await crm.save_integration(tenant_id, integration.model_copy(update={"webhook_token_hash": digest}))
    base = runtime.settings.public_base_url.rstrip("/")
    return {"url": f"{base}/webhooks/integrations/{platform}/{token}", "platform": platform}


@post(
    "/api/v1/crm/{connection_id:str}/sync/{lead_id:str}", status_code=HTTP_200_OK, summary="Sync one lead now"
)
async def sync_lead(
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    crm: NamedDependency[CrmSync],
    connection_id: FromPath[str],
    lead_id: FromPath[str],
) -> dict[str, Any]:
    """Queue the (connection, lead) sync job; 404 for an unknown connection or lead."""
    await _connection(runtime, tenant_id, connection_id)
    if await runtime.store.get(tenant_id, col.LEADS, lead_id) is None:
        raise NotFoundException(f"lead {lead_id} not found")
    await crm.enqueue_sync(tenant_id, connection_id, lead_id, events=["manual"])
    return {"queued": link_id(connection_id, lead_id)}


@post("/api/v1/crm/{connection_id:str}/replay", status_code=HTTP_200_OK, summary="Replay the dead letter")
async def replay(
    runtime: NamedDependency[Runtime], tenant_id: NamedDependency[str], connection_id: FromPath[str]
) -> dict[str, Any]:
    """Queue every dead-lettered lead of the connection again."""
    await _connection(runtime, tenant_id, connection_id)
    return {"replayed": await replay_dead_letters(runtime, tenant_id, connection_id)}


@get("/api/v1/crm/{connection_id:str}/logs", summary="Sync logs, newest first")
async def sync_logs(
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    connection_id: FromPath[str],
    status: FromQuery[str | None] = None,
    lead_id: FromQuery[str | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Sync log entries of one connection (type, status, error, payload with secrets redacted,
    response, duration_ms)."""
    filters = [where("connection_id", "==", connection_id)]
    filters += [where(k, "==", v) for k, v in (("status", status), ("lead_id", lead_id)) if v]
    docs = await runtime.store.query(
        tenant_id, col.CRM_SYNC_LOGS, filters=filters, order_by=[Order("at", descending=True)], limit=limit
    )
    return {"logs": [d.data for d in docs]}


@get("/api/v1/crm/{connection_id:str}/webhook-logs", summary="Inbound webhook logs, newest first")
async def webhook_logs(
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    connection_id: FromPath[str],
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """What each inbound webhook of the connection did."""
    docs = await runtime.store.query(
        tenant_id,
        col.CRM_WEBHOOK_LOGS,
        filters=[where("connection_id", "==", connection_id)],
        order_by=[Order("at", descending=True)],
        limit=limit,
    )
    return {"logs": [d.data for d in docs]}


@get("/api/v1/crm/review", summary="Leads waiting for approval")
async def review_queue(
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    status: FromQuery[str] = "pending",
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Review items with their lead (name, email, phone, score, stage, slots)."""
    docs = await runtime.store.query(
        tenant_id,
        col.CRM_REVIEWS,
        filters=[where("status", "==", status)],
        order_by=[Order("created_at")],
        limit=limit,
    )
    items = []
    for doc in docs:
        lead = await runtime.store.get(tenant_id, col.LEADS, str(doc.data["lead_id"])) or {}
        keep = ("name", "email", "phone", "score", "stage", "slots")
        items.append({**doc.data, "lead": {k: lead.get(k) for k in keep}})
    return {"reviews": items}


async def _decide(crm: CrmSync, tenant_id: str, review_id: str, approve: bool) -> dict[str, Any]:
    item = await crm.decide(tenant_id, review_id, approve=approve)
    if item is None:
        raise NotFoundException(f"no pending review {review_id}")
    return item.to_doc()


@post(
    "/api/v1/crm/review/{review_id:str}/approve", status_code=HTTP_200_OK, summary="Approve: write the lead"
)
async def approve_review(
    tenant_id: NamedDependency[str], crm: NamedDependency[CrmSync], review_id: FromPath[str]
) -> dict[str, Any]:
    """The lead is queued for sync now; 404 when no pending review has that id."""
    return await _decide(crm, tenant_id, review_id, True)


@post(
    "/api/v1/crm/review/{review_id:str}/reject",
    status_code=HTTP_200_OK,
    summary="Reject: do not write the lead",
)
async def reject_review(
    tenant_id: NamedDependency[str], crm: NamedDependency[CrmSync], review_id: FromPath[str]
) -> dict[str, Any]:
    """The lead is not written (a later trigger asks again); 404 when no pending review has that id."""
    return await _decide(crm, tenant_id, review_id, False)


async def _webhook(
    request: Request[Any, Any, Any], runtime: Runtime, crm: CrmSync, platform: str, token: str | None
) -> Response[Any]:
    body = await request.body()
    query = request.url.query
    url = runtime.settings.public_base_url.rstrip("/") + request.url.path + (f"?{query}" if query else "")
    result = await handle_webhook(
        runtime,
        crm,
        platform=platform,
        token=token,
        method=request.method,
        url=url,
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
    )
    if result.status == "unauthorized":
        return Response({"error": "unauthorized"}, status_code=HTTP_401_UNAUTHORIZED)
    return Response(
        {"ok": True, "events": result.events, "detail": result.detail or None}, status_code=HTTP_200_OK
    )


@post("/webhooks/integrations/{platform:str}", status_code=HTTP_200_OK, summary="Signed CRM webhook")
async def crm_webhook(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    crm: NamedDependency[CrmSync],
    platform: FromPath[str],
) -> Response[Any]:
    """A HubSpot (v3 signature) or GoHighLevel (Ed25519 / RSA) webhook; 401 when unverified."""
    return await _webhook(request, runtime, crm, platform, None)


@post(
    "/webhooks/integrations/{platform:str}/{token:str}",
    status_code=HTTP_200_OK,
    summary="CRM webhook with a URL token",
)
async def crm_webhook_token(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    crm: NamedDependency[CrmSync],
    platform: FromPath[str],
    token: FromPath[str],
) -> Response[Any]:
    """A webhook from a vendor that signs nothing (Pipedrive, Salesforce flows, Zapier, n8n, Make);
    401 when the token is unknown."""
    return await _webhook(request, runtime, crm, platform, token)


#: The routes this module serves.
ROUTES = (
    list_integrations,
    get_settings,
    put_settings,
    new_webhook_token,
    sync_lead,
    replay,
    sync_logs,
    webhook_logs,
    review_queue,
    approve_review,
    reject_review,
    crm_webhook,
    crm_webhook_token,
)
