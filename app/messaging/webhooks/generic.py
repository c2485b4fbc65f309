"""``POST /api/webhooks/channels/{channel}``: the webhook of any registered channel.

A channel added to :data:`channels.registry.CHANNELS` receives its provider's webhooks here with no
other change (verify, route, parse and store as every channel: :mod:`app.messaging.webhooks.ingest`).
Providers whose callbacks need a dedicated answer keep their own routes (Meta's subscription
handshake, Twilio's TwiML, the email unsubscribe pages).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_404_NOT_FOUND

from app.composition import Runtime
from app.messaging.webhooks.ingest import ingest_request
from channels.registry import CHANNELS

__all__ = ["ROUTES"]


@post("/api/webhooks/channels/{channel:str}", status_code=200, summary="Any registered channel's webhook")
async def channel_webhook(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], channel: FromPath[str]
) -> Response[Any]:
    """Verify, route, parse and store; 200 once stored, 404 for a channel nobody registered."""
    if channel not in CHANNELS or channel not in runtime.channels.names():
        return Response({"error": f"unknown channel {channel!r}"}, status_code=HTTP_404_NOT_FOUND)
    return await ingest_request(request, runtime, channel)


ROUTES = (channel_webhook,)
