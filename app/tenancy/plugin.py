"""The tenancy feature: tenant profiles and the admin-key authentication every ``/api/v1`` route
uses (``tenant_id``, a Bearer key resolved to its tenant)."""

from __future__ import annotations

from collections.abc import Mapping

from litestar.config.app import AppConfig
from litestar.di import Provide

from app.core.features import Feature, feature_dependencies
from app.tenancy import settings_api
from app.tenancy.audit import AdminAuditMiddleware, AuditLog
from app.tenancy.auth import tenant_from_bearer

__all__ = ["TenancyFeature"]


class TenancyFeature(Feature):
    """Provides ``tenants``, ``tenant_id`` and ``audit``; the settings and audit API."""

    route_handlers = settings_api.ROUTES

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config = super().on_app_init(app_config)
        rt = self.runtime
        app_config.middleware.append(AdminAuditMiddleware(rt.tenants, AuditLog(rt.store, rt.clock)))
        return app_config

    def dependencies(self) -> Mapping[str, Provide]:
        return {
            **feature_dependencies(
                ("tenants", self.runtime.tenants), ("audit", AuditLog(self.runtime.store, self.runtime.clock))
            ),
            "tenant_id": Provide(tenant_from_bearer),
        }
