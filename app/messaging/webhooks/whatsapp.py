"""WhatsApp Cloud API webhooks: ``GET/POST /api/webhooks/whatsapp``.

GET is Meta's subscription handshake (``hub.mode``, ``hub.verify_token`` checked against
WEBHOOK_VERIFY_TOKEN, ``hub.challenge`` echoed; 403 otherwise). POST carries messages and
statuses, signed with ``X-Hub-Signature-256`` (Meta, "Webhooks > Event notifications").
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_403_FORBIDDEN
from litestar.types import Scope

from app.composition import Runtime
from app.core.logs import get_logger
from app.messaging.webhooks.direct import direct_ingest
from app.messaging.webhooks.ingest import ingest_request
from channels.whatsapp import SubscriptionError, WhatsAppChannel

__all__ = ["ROUTES"]

log = get_logger("leadwarm.webhooks.whatsapp")


@get(
    "/api/webhooks/whatsapp",
    media_type="text/plain",
    sync_to_thread=False,
    summary="Meta subscription handshake",
)
def whatsapp_subscribe(request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]) -> Response[str]:
    """Echo ``hub.challenge`` when ``hub.verify_token`` matches WEBHOOK_VERIFY_TOKEN."""
    settings = runtime.settings
    expected = settings.webhook_verify_token.get_secret_value() if settings.webhook_verify_token else ""
    try:
        challenge = WhatsAppChannel.verify_subscription(dict(request.query_params), expected)
    except SubscriptionError as exc:
        log.warning("whatsapp.subscription_refused", reason=str(exc))
        return Response("forbidden", status_code=HTTP_403_FORBIDDEN, media_type="text/plain")
    return Response(challenge, media_type="text/plain")


def _unsigned_url(_: Runtime, __: Scope, ___: dict[str, str]) -> str:
    """Meta signs the body alone ("Webhooks > Event notifications"): no URL is built for it."""
    return ""


@post(
    "/api/webhooks/whatsapp",
    status_code=200,
    summary="WhatsApp messages and delivery statuses",
    middleware=[direct_ingest("whatsapp", prepare=_unsigned_url)],
)
async def whatsapp_receive(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
) -> Response[Any]:
    """Verify, parse and store; 200 once stored (see :mod:`app.messaging.webhooks.ingest`).

    Served by :mod:`app.messaging.webhooks.direct` (the hot path, same pipeline); this handler is
    the route's documentation and its fallback."""
    return await ingest_request(request, runtime, "whatsapp")


#: The routes this module serves (registered by its capability's feature plugin).
ROUTES = (
    whatsapp_subscribe,
    whatsapp_receive,
)
