"""Who calls the integrations API: the tenant an admin key (Bearer) authenticates, and an actor
name for the audit trail (``admin_key:`` and 8 hex characters of the key's SHA-256, which tell
keys apart and reveal nothing of them). Every authenticated call is audited (``admin_api``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from app.connections.audit import record
from app.connections.services import ConnectionServices
from app.tenancy.auth import tenant_from_bearer
from app.tenancy.directory import TenantDirectory, hash_api_key

__all__ = ["AdminCaller", "actor_of_key", "admin_caller"]


@dataclass(frozen=True, slots=True)
class AdminCaller:
    """The authenticated tenant and the actor name its key appears under in the audit trail."""

    tenant_id: str
    actor: str


def actor_of_key(key: str) -> str:
    """``admin_key:<8 hex of SHA-256(key)>``."""
    return "admin_key:" + hash_api_key(key)[:8]


async def admin_caller(
    request: Request[Any, Any, Any],
    tenants: NamedDependency[TenantDirectory],
    connections: NamedDependency[ConnectionServices],
) -> AdminCaller:
    """Litestar dependency: authenticate the admin key (401 otherwise, see
    :func:`app.tenancy.auth.tenant_from_bearer`) and record the call in the tenant's audit trail."""
    tenant_id = await tenant_from_bearer(request, tenants)
    key = request.headers.get("authorization", "").partition(" ")[2].strip()
    caller = AdminCaller(tenant_id=tenant_id, actor=actor_of_key(key))
    await record(
        connections.repository,
        tenant_id,
        "admin_api",
        actor=caller.actor,
        detail={"method": request.method, "path": request.url.path[:300]},
    )
    return caller
