"""The AI feature: the knowledge base and brand memory API, and the model usage API."""

from __future__ import annotations

from collections.abc import Mapping

from litestar.di import Provide

from app.ai import usage_routes
from app.ai.knowledge import routes as knowledge_routes
from app.core.features import Feature, feature_dependencies

__all__ = ["AiFeature"]


class AiFeature(Feature):
    """Provides ``knowledge``."""

    route_handlers = (*knowledge_routes.ROUTES, *usage_routes.ROUTES)

    def dependencies(self) -> Mapping[str, Provide]:
        return feature_dependencies(("knowledge", self.runtime.knowledge))
