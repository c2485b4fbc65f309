"""``GET /health``: liveness and store reachability."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol

from app.core.logs import get_logger
from app.store import collections as col
from app.tenancy.auth import runtime_of

__all__ = ["HealthPlugin"]

log = get_logger("leadwarm.health")


@get("/health", summary="Liveness and store reachability")
async def health(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """``{"status": "ok"}`` when the store answers; 503 otherwise."""
    runtime = runtime_of(request)
    try:
        await runtime.store.get(runtime.settings.default_tenant_id, col.CONFIG, "tenant")
    except Exception as exc:
        log.error("health.store_unavailable", error=str(exc))
        return Response({"status": "unavailable", "store": runtime.settings.store}, status_code=503)
    return Response({"status": "ok", "store": runtime.settings.store})


class HealthPlugin(InitPluginProtocol):
    """Registers ``/health``."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(health)
        return app_config
