"""The web chat feature: the ``/chat`` page and its WebSocket."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from litestar.di import Provide

from app.core.features import Feature, provide
from app.webchat.limits import WebChatLimits
from app.webchat.routes import ROUTES

if TYPE_CHECKING:
    from app.composition import Runtime

__all__ = ["WebChatFeature"]


class WebChatFeature(Feature):
    """The chat page and socket, and their per-address budgets (``webchat_limits``)."""

    route_handlers = ROUTES

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        settings = runtime.settings
        self.limits = WebChatLimits(
            sessions_per_minute=settings.webchat_sessions_per_minute,
            messages_per_minute=settings.webchat_messages_per_minute,
        )

    def dependencies(self) -> Mapping[str, Provide]:
        return {"webchat_limits": provide(self.limits)}
