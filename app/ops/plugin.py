"""The operations feature: ``/health``, and the process-wide objects every handler may receive
(``runtime``, ``settings``, ``store``, ``clock``)."""

from __future__ import annotations

from collections.abc import Mapping

from litestar.di import Provide

from app.core.features import Feature, feature_dependencies
from app.ops.health import ROUTES

__all__ = ["OpsFeature"]


class OpsFeature(Feature):
    """Health check and the core dependencies."""

    route_handlers = ROUTES

    def dependencies(self) -> Mapping[str, Provide]:
        rt = self.runtime
        return feature_dependencies(
            ("runtime", rt), ("settings", rt.settings), ("store", rt.store), ("clock", rt.clock)
        )
