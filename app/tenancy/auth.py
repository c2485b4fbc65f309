"""Request-scoped helpers: lower-cased headers, and the tenant an admin key authenticates."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException

from app.store import SYSTEM_TENANT
from app.tenancy.audit import AuditLog, key_ref
from app.tenancy.directory import TenantDirectory

__all__ = ["lowercase_headers", "tenant_from_bearer"]


def lowercase_headers(connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, str]:
    """Request headers with lower-case names (the channel contract's convention)."""
    return {k.lower(): v for k, v in connection.headers.items()}


async def tenant_from_bearer(
    request: Request[Any, Any, Any], tenants: NamedDependency[TenantDirectory]
) -> str:
    """Litestar dependency: the tenant whose admin key is in ``Authorization: Bearer <key>``.

    Raises ``NotAuthorizedException`` (401) when the header is missing or the key is unknown; an
    unknown key is audited (``api_key.rejected`` under the system namespace, named by
    :func:`app.tenancy.audit.key_ref`, never in clear).
    """
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise NotAuthorizedException(
            "missing Authorization: Bearer <admin API key>", headers={"WWW-Authenticate": "Bearer"}
        )
    tenant_id = await tenants.tenant_for_key(key.strip())
    if tenant_id is None:
        await AuditLog(tenants.store, tenants.clock).record(
            SYSTEM_TENANT,
            "api_key.rejected",
            actor=key_ref(key.strip()),
            target=request.url.path,
            detail={"method": request.method, "client": request.client.host if request.client else None},
        )
        raise NotAuthorizedException("unknown admin API key", headers={"WWW-Authenticate": "Bearer"})
    return tenant_id
