"""The one webhook pipeline every channel goes through: verify, parse, store, answer.

Answers: 401 on a bad signature (logged), 400 with the reason on a malformed body, 503 when the
store cannot take the message (the provider will deliver it again), else 200 once every message
and status is stored. Nothing slow happens before the answer: the worker does the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from app.composition import Runtime
from app.core.logs import get_logger
from app.messaging.inbox import accept_status
from app.store import StoreError
from app.tenancy.auth import lowercase_headers
from channels.base import PayloadError, SignatureError

__all__ = ["TenantResolver", "ingest_request", "ingest_webhook", "route_or_default"]

log = get_logger("leadwarm.webhooks")

TenantResolver = Callable[[str], Awaitable[str]]
"""Maps a message's ``recipient`` (our receiving address) to the tenant that owns it."""


def route_or_default(runtime: Runtime, channel: str) -> TenantResolver:
    """Resolve our receiving address on ``channel`` through the tenants' channel routes; an
    address nobody routed goes to the default tenant (logged), so no message is ever dropped."""
    default_tenant = runtime.settings.default_tenant_id

    async def resolve(address: str) -> str:
        tenant = await runtime.tenants.route(channel, address) if address else None
        if tenant is None:
            log.warning("webhook.unrouted", channel=channel, address=address, tenant=default_tenant)
            return default_tenant
        return tenant

    return resolve


async def ingest_webhook(
    runtime: Runtime,
    channel_name: str,
    headers: dict[str, str],
    raw_body: bytes,
    *,
    url: str,
    resolve_tenant: TenantResolver,
    ok_body: Any = None,
) -> Response[Any]:
    """Run the pipeline for one delivery; see the module docstring."""
    channel = runtime.channels.get("", channel_name)
    try:
        channel.verify(headers, raw_body, url=url)
    except SignatureError as exc:
        log.warning("webhook.bad_signature", channel=channel_name, reason=str(exc), bytes=len(raw_body))
        return Response({"error": "invalid signature"}, status_code=HTTP_401_UNAUTHORIZED)
    try:
        parsed = channel.parse(headers, raw_body)
    except PayloadError as exc:
        log.warning("webhook.bad_payload", channel=channel_name, reason=str(exc))
        return Response({"error": "malformed payload", "reason": str(exc)}, status_code=HTTP_400_BAD_REQUEST)
    stored = duplicates = 0
    try:
        for message in parsed.messages:
            tenant_id = await resolve_tenant(message.recipient)
            if await runtime.accept(tenant_id, message):
                stored += 1
            else:
                duplicates += 1
        for status in parsed.statuses:
            tenant_id = await resolve_tenant(status.sender)
            await accept_status(runtime.jobs, tenant_id, status)
    except StoreError as exc:
        log.error("webhook.store_unavailable", channel=channel_name, error=str(exc))
        return Response({"error": "temporarily unavailable"}, status_code=HTTP_503_SERVICE_UNAVAILABLE)
    log.info(
        "webhook.accepted",
        channel=channel_name,
        messages=stored,
        duplicates=duplicates,
        statuses=len(parsed.statuses),
    )
    body = (
        ok_body
        if ok_body is not None
        else {"messages": stored, "duplicates": duplicates, "statuses": len(parsed.statuses)}
    )
    return Response(body, status_code=HTTP_200_OK)


async def ingest_request(
    request: Request[Any, Any, Any],
    runtime: Runtime,
    channel_name: str,
    *,
    url: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    """:func:`ingest_webhook` for one Litestar request: its lower-cased headers (or ``headers``),
    raw body and URL (or ``url``, the public one a signature covers), tenants routed by
    :func:`route_or_default`."""
    return await ingest_webhook(
        runtime,
        channel_name,
        headers if headers is not None else lowercase_headers(request),
        await request.body(),
        url=url if url is not None else str(request.url),
        resolve_tenant=route_or_default(runtime, channel_name),
    )
