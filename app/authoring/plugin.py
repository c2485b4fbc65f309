"""The authoring feature: a tenant's playbooks (upload, list), and the editor's workbench
(validate, simulate: :mod:`app.authoring.workbench`)."""

from __future__ import annotations

from collections.abc import Mapping

from litestar.di import Provide

from app.authoring import workbench
from app.authoring.routes import ROUTES
from app.core.features import Feature, feature_dependencies

__all__ = ["AuthoringFeature"]


class AuthoringFeature(Feature):
    """Provides ``playbooks``."""

    route_handlers = (*workbench.ROUTES, *ROUTES)

    def dependencies(self) -> Mapping[str, Provide]:
        return feature_dependencies(("playbooks", self.runtime.playbooks))
