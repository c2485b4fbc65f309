"""The operations feature: ``/health``, and the process-wide objects every handler may receive
(``runtime``, ``settings``, ``store``, ``clock``)."""

from __future__ import annotations

from collections.abc import Mapping

from litestar.config.app import AppConfig
from litestar.di import Provide

from app.core.features import Feature, feature_dependencies
from app.ops.health import ROUTES
from app.ops.limits import rate_limits
from app.ops.requests import RequestIdMiddleware, internal_error

__all__ = ["OpsFeature"]


class OpsFeature(Feature):
    """Health check, the core dependencies, request ids, security headers and the 500 handler."""

    route_handlers = ROUTES

    def dependencies(self) -> Mapping[str, Provide]:
        rt = self.runtime
        return feature_dependencies(
            ("runtime", rt), ("settings", rt.settings), ("store", rt.store), ("clock", rt.clock)
        )

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config = super().on_app_init(app_config)
        app_config.middleware.insert(0, RequestIdMiddleware)
        app_config.middleware.extend(rate_limits(self.runtime.settings))
        app_config.exception_handlers[Exception] = internal_error
        return app_config
