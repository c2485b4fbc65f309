"""The tenancy feature: tenant profiles and the admin-key authentication every ``/api/v1`` route
uses (``tenant_id``, a Bearer key resolved to its tenant)."""

from __future__ import annotations

from collections.abc import Mapping

from litestar.di import Provide

from app.core.features import Feature, feature_dependencies
from app.tenancy.auth import tenant_from_bearer

__all__ = ["TenancyFeature"]


class TenancyFeature(Feature):
    """Provides ``tenants`` and ``tenant_id``."""

    def dependencies(self) -> Mapping[str, Provide]:
        return {
            **feature_dependencies(("tenants", self.runtime.tenants)),
            "tenant_id": Provide(tenant_from_bearer),
        }
