"""The conversations feature: leads and conversations API, and the conversation worker's job kinds
(``inbound``, ``start``, ``timer``)."""

from __future__ import annotations

from collections.abc import Mapping

from litestar.di import Provide

from app.conversations.routes import ROUTES
from app.core.features import Feature, JobKind, feature_dependencies

__all__ = ["ConversationsFeature"]


class ConversationsFeature(Feature):
    """Provides ``conversations``; runs turns."""

    route_handlers = ROUTES

    def dependencies(self) -> Mapping[str, Provide]:
        return feature_dependencies(("conversations", self.runtime.conversations))

    def job_kinds(self) -> Mapping[str, JobKind]:
        service = self.runtime.conversations
        return {
            "inbound": JobKind(service.handle_inbound),
            "start": JobKind(service.handle_start),
            "timer": JobKind(service.handle_timer),
        }
