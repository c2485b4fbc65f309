"""The booking API: ``GET /api/v1/bookings`` (the tenant's meetings booked from conversations) and
``GET``/``PUT /api/v1/booking/settings`` (the tenant's calendar, see :mod:`app.booking.calendar`).
A conversation's own meeting is on ``GET /api/v1/conversations/{id}`` (``state.booking``)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get, put
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromQuery, JSONBody, QueryParameter

from app.booking.calendar import SETTINGS, build_provider, parse_settings
from app.composition import Runtime
from app.store import Order, where
from app.store import collections as col
from kernel.errors import LeadWarmError

__all__ = ["ROUTES"]

_STATUSES = {"confirmed", "cancelled", "rescheduled", "taken", "failed"}
_KEEP = (
    "id",
    "conversation_id",
    "lead_id",
    "status",
    "title",
    "start",
    "end",
    "provider",
    "booking",
    "reason",
    "created_at",
    "updated_at",
)


@get("/api/v1/bookings", summary="Meetings booked from conversations, newest first")
async def list_bookings(
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    status: FromQuery[str | None] = None,
    lead_id: FromQuery[str | None] = None,
    conversation_id: FromQuery[str | None] = None,
    start_after: FromQuery[float | None] = None,
    start_before: FromQuery[float | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """The tenant's booking records; ``status`` one of confirmed, cancelled, rescheduled, taken,
    failed; ``start_after``/``start_before`` epoch seconds bounds on the meeting's start."""
    if status is not None and status not in _STATUSES:
        raise HTTPException(status_code=400, detail=f"status must be one of {sorted(_STATUSES)}")
    filters = [
        where(k, "==", v)
        for k, v in (("status", status), ("lead_id", lead_id), ("conversation_id", conversation_id))
        if v
    ]
    docs = await runtime.store.query(
        tenant_id, col.BOOKINGS, filters=filters, order_by=[Order("created_at", descending=True)], limit=limit
    )
    out = []
    for doc in docs:
        start = float(doc.data.get("start") or 0)
        if start_after is not None and start < start_after:
            continue
        if start_before is not None and start >= start_before:
            continue
        out.append({k: doc.data.get(k) for k in _KEEP})
    return {"bookings": out}


@get("/api/v1/booking/settings", summary="The tenant's calendar settings")
async def get_settings(runtime: NamedDependency[Runtime], tenant_id: NamedDependency[str]) -> dict[str, Any]:
    """The stored settings document (empty: the built-in default)."""
    return {"settings": await runtime.store.get(tenant_id, SETTINGS, "calendar") or {}}


@put("/api/v1/booking/settings", summary="Set the tenant's calendar", status_code=200)
async def put_settings(
    runtime: NamedDependency[Runtime], tenant_id: NamedDependency[str], data: JSONBody[dict[str, Any]]
) -> dict[str, Any]:
    """Validate (provider, schedules, connection) and store the settings; 400 when invalid."""
    try:
        profile = await runtime.tenants.profile(tenant_id)
        settings = parse_settings(data, default_timezone=profile.timezone)
        await build_provider(
            runtime.store, tenant_id, settings, clock=runtime.clock, connections=runtime.connections
        )
    except (LeadWarmError, ValueError, TypeError) as exc:
        raise HTTPException(status_code=400, detail=str(exc)[:300]) from None
    await runtime.store.set(tenant_id, SETTINGS, "calendar", data)
    return {"settings": data}


ROUTES = (list_bookings, get_settings, put_settings)
