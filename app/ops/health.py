"""``GET /health``: liveness and store reachability."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency

from app.composition import Runtime
from app.core.logs import get_logger
from app.store import collections as col

__all__ = ["ROUTES"]

log = get_logger("leadwarm.health")


@get("/health", summary="Liveness and store reachability")
async def health(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
) -> Response[dict[str, Any]]:
    """``{"status": "ok"}`` when the store answers; 503 otherwise."""
    try:
        await runtime.store.get(runtime.settings.default_tenant_id, col.CONFIG, "tenant")
    except Exception as exc:
        log.error("health.store_unavailable", error=str(exc))
        return Response({"status": "unavailable", "store": runtime.settings.store}, status_code=503)
    return Response({"status": "ok", "store": runtime.settings.store})


#: The routes this module serves (registered by its capability's feature plugin).
ROUTES = (health,)
