"""The web chat feature: the ``/chat`` page and its WebSocket."""

from __future__ import annotations

from app.core.features import Feature
from app.webchat.routes import ROUTES

__all__ = ["WebChatFeature"]


class WebChatFeature(Feature):
    """The chat page and socket."""

    route_handlers = ROUTES
