"""Calendar changes made outside the conversation, by webhook: verified on the raw bytes, stored
as a ``booking`` job, then applied by :meth:`app.booking.service.BookingService.apply_change` (the
booking record, the conversation, the lead's stage).

- ``POST /api/webhooks/calendly/{tenant}``: ``Calendly-Webhook-Signature`` under the tenant's
  ``webhook_signing_key`` (calendar settings); Calendly docs "Webhook signatures".
- ``POST /api/webhooks/cal-com/{tenant}``: ``X-Cal-Signature-256`` under ``webhook_secret``;
  Cal.com docs "Webhooks".
- ``POST /api/webhooks/gohighlevel/appointments/{tenant}``: ``x-wh-signature`` (RSA, the
  documented public key) or ``X-GHL-Signature`` (Ed25519) via :func:`crm_sync.webhooks.verify_gohighlevel`.

A bad signature is 401; a body that is not the provider's event is 400; an event that names no
meeting LeadWarm booked is accepted and ignored (200).
"""

from __future__ import annotations

import hashlib
from typing import Any

from litestar import Request, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromPath

from app.booking.calendar import SETTINGS
from app.composition import Runtime
from crm_sync.base import IntegrationError
from crm_sync.calendars import cal_com, calendly, gohighlevel
from crm_sync.calendars.common import CalendarChange, WebhookSignatureError
from crm_sync.webhooks import WebhookVerificationError, verify_gohighlevel

__all__ = ["ROUTES"]

#: Largest webhook body read (bytes); calendar events are a few kilobytes.
MAX_BODY = 256 * 1024


async def _body(request: Request[Any, Any, Any]) -> bytes:
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise HTTPException(status_code=413, detail="body too large")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise HTTPException(status_code=413, detail="body too large")
    return raw


async def _secret(runtime: Runtime, tenant_id: str, key: str) -> str:
    settings = await runtime.store.get(tenant_id, SETTINGS, "calendar") or {}
    secret = settings.get(key)
    if not secret:
        raise HTTPException(status_code=401, detail="no webhook secret is configured for this tenant")
    return str(secret)


async def _accept(
    runtime: Runtime, tenant_id: str, change: CalendarChange | None, raw: bytes
) -> dict[str, Any]:
    if change is None:
        return {"accepted": False}
    key = f"change:{change.provider}:{hashlib.sha256(raw).hexdigest()[:24]}"
    await runtime.jobs.enqueue(
        tenant_id,
        "booking",
        key,
        payload={
            "action": {
                "type": "change",
                "provider": change.provider,
                "kind": change.kind,
                "booking_id": change.booking_id,
                "start": change.start,
                "end": change.end,
                "reason": change.reason[:500],
            }
        },
    )
    return {"accepted": True}


def _known(runtime: Runtime, tenant: str) -> str:
    if not tenant or len(tenant) > 100:
        raise HTTPException(status_code=404, detail="unknown tenant")
    return tenant


@post("/api/webhooks/calendly/{tenant:str}", status_code=200, summary="Calendly invitee events")
async def calendly_webhook(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], tenant: FromPath[str]
) -> dict[str, Any]:
    """Verify, parse and queue a Calendly event."""
    tenant_id = _known(runtime, tenant)
    raw = await _body(request)
    secret = await _secret(runtime, tenant_id, "webhook_signing_key")
    try:
        calendly.verify_webhook(dict(request.headers), raw, signing_key=secret, now=runtime.clock.now())
    except WebhookSignatureError as exc:
        raise HTTPException(status_code=401, detail=str(exc)) from None
    try:
        change = calendly.parse_webhook(raw)
    except IntegrationError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    return await _accept(runtime, tenant_id, change, raw)


@post("/api/webhooks/cal-com/{tenant:str}", status_code=200, summary="Cal.com booking events")
async def cal_com_webhook(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], tenant: FromPath[str]
) -> dict[str, Any]:
    """Verify, parse and queue a Cal.com event."""
    tenant_id = _known(runtime, tenant)
    raw = await _body(request)
    secret = await _secret(runtime, tenant_id, "webhook_secret")
    try:
        cal_com.verify_webhook(dict(request.headers), raw, secret=secret)
    except WebhookSignatureError as exc:
        raise HTTPException(status_code=401, detail=str(exc)) from None
    try:
        change = cal_com.parse_webhook(raw)
    except IntegrationError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    return await _accept(runtime, tenant_id, change, raw)


@post(
    "/api/webhooks/gohighlevel/appointments/{tenant:str}",
    status_code=200,
    summary="GoHighLevel appointment events",
)
async def gohighlevel_webhook(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], tenant: FromPath[str]
) -> dict[str, Any]:
    """Verify, parse and queue a GoHighLevel appointment event."""
    tenant_id = _known(runtime, tenant)
    raw = await _body(request)
    try:
        verify_gohighlevel(body=raw, headers=dict(request.headers), now=runtime.clock.now())
    except WebhookVerificationError as exc:
        raise HTTPException(status_code=401, detail=str(exc)) from None
    try:
        change = gohighlevel.parse_appointment_event(raw)
    except IntegrationError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    return await _accept(runtime, tenant_id, change, raw)


ROUTES = (calendly_webhook, cal_com_webhook, gohighlevel_webhook)
