"""Twilio SMS webhooks: ``POST /api/webhooks/twilio/sms`` and ``POST /api/webhooks/twilio/status``.

Both are signed with ``X-Twilio-Signature`` over the public URL Twilio called (Twilio, "Webhooks
security"); behind a proxy the request's own URL differs, so the URL checked is PUBLIC_BASE_URL +
path + query. Inbound messages are answered with an empty TwiML ``<Response></Response>`` so that
Twilio sends nothing by itself (Twilio, "Messaging Webhooks"); the worker replies later through
the REST API. Status callbacks are answered 200 once stored.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK
from litestar.types import Scope

from app.composition import Runtime
from app.core.logs import get_logger
from app.messaging.webhooks.direct import DirectIngestFactory, FixedAnswer, direct_ingest
from app.messaging.webhooks.ingest import ingest_request
from app.tenancy.auth import lowercase_headers
from channels.sms import EVENT_HEADER, INBOUND_PATH, STATUS_PATH

__all__ = ["EMPTY_TWIML", "ROUTES", "public_url"]

log = get_logger("leadwarm.webhooks.twilio")

#: TwiML that tells Twilio to do nothing (no automatic reply).
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
#: The hot path's 200 to an inbound SMS: the same bytes and Content-Type as the handler's.
_EMPTY_TWIML_ANSWER = FixedAnswer(EMPTY_TWIML, "text/xml")


def public_url(public_base_url: str, request: Request[Any, Any, Any]) -> str:
    """``public_base_url`` (no trailing slash) + the request's path + ``?query`` when there is one."""
    url = public_base_url.rstrip("/") + request.url.path
    return f"{url}?{request.url.query}" if request.url.query else url


def _direct(event: str) -> DirectIngestFactory:
    """The hot path of a Twilio route (:mod:`app.messaging.webhooks.direct`): the event header set
    by the route, the signature checked over PUBLIC_BASE_URL + path + query, as below."""

    def prepare(runtime: Runtime, scope: Scope, headers: dict[str, str]) -> str:
        headers[EVENT_HEADER] = event
        url = runtime.settings.public_base_url.rstrip("/") + scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        return f"{url}?{query}" if query else url

    return direct_ingest("sms", prepare=prepare, answer=_EMPTY_TWIML_ANSWER if event == "inbound" else None)


async def _ingest(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], event: str
) -> Response[Any]:
    headers = lowercase_headers(request)
    headers[EVENT_HEADER] = event  # set by the route, whatever the caller sent
    return await ingest_request(
        request, runtime, "sms", url=public_url(runtime.settings.public_base_url, request), headers=headers
    )


@post(INBOUND_PATH, status_code=HTTP_200_OK, summary="Twilio inbound SMS", middleware=[_direct("inbound")])
async def twilio_sms_receive(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
) -> Response[Any]:
    """Verify, parse and store an inbound SMS; 200 with empty TwiML once stored."""
    response = await _ingest(request, runtime, "inbound")
    if response.status_code != HTTP_200_OK:
        return response
    return Response(EMPTY_TWIML, status_code=HTTP_200_OK, media_type="text/xml")


@post(
    STATUS_PATH,
    status_code=HTTP_200_OK,
    summary="Twilio message status callback",
    middleware=[_direct("status")],
)
async def twilio_status_receive(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
) -> Response[Any]:
    """Verify, parse and store a delivery status; 200 once stored."""
    return await _ingest(request, runtime, "status")


#: The routes this module serves (registered by its capability's feature plugin).
ROUTES = (
    twilio_sms_receive,
    twilio_status_receive,
)
