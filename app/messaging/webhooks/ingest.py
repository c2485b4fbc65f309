"""The one webhook pipeline every channel goes through: route, verify, parse, store, answer.

1. **Route.** The body is read (not trusted yet) for our receiving addresses (a WhatsApp
   phone-number id, a Twilio number, a mailbox); each must belong to a tenant through the channel
   routes. An address no tenant owns is refused with 404 and a log line, unless
   ``UNROUTED_WEBHOOKS=default_tenant`` (single-tenant installs) hands it to the default tenant:
   a message is never given to a tenant that does not own the address it was sent to.
2. **Verify** the signature over the raw bytes with EACH owning tenant's own credentials (its app
   secret, auth token or inbound key): one tenant's secret never vouches for another's message.
3. **Parse** with the owning tenant's channel and **append** each message and status to its
   tenant's ingest log (:mod:`app.messaging.ingest_log`: deduplicated by provider message id,
   concurrent webhooks share one commit), then answer; the ``ingest`` job moves them to the inbox.
   A correctly signed body the parser refuses is kept in quarantine
   (:mod:`app.messaging.quarantine`) and answered 200, so that the provider stops redelivering it.

Parsing a body over :data:`INLINE_PARSE_BYTES` runs in a worker thread (``anyio.to_thread``), so
a large body never holds the event loop every tenant shares (a small one is parsed in place: the
thread hop cost more CPU than its parse); a body over the channel's ``traits.max_body_bytes`` is
refused with 413 before it is read.

Answers: 401 on a bad signature (logged), 200 with ``quarantined`` on a signed body that cannot be
parsed, 404 for an
address no tenant owns, 413 for a body over the channel's limit, 503 when the store cannot take
the message (the provider will deliver it again), else 200 once every message and status is
stored. Nothing slow happens before the answer: the worker does the rest.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio.to_thread
from litestar import Request, Response
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_401_UNAUTHORIZED,
    HTTP_404_NOT_FOUND,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from app.composition import Runtime
from app.core.logs import get_logger
from app.messaging.ingest_log import message_record, status_record
from app.messaging.quarantine import quarantine
from app.store import LogRecord, StoreError
from app.tenancy.auth import lowercase_headers
from channels.base import Channel, ParsedWebhook, PayloadError, SignatureError
from channels.registry import channel_class

__all__ = ["ingest_delivery", "ingest_request", "ingest_webhook", "our_addresses", "too_large"]

log = get_logger("leadwarm.webhooks")

#: Seconds a tenant's channel instance (its secrets) is reused for webhook verification without
#: reading its connections again: a rotated app secret or auth token applies within this delay.
RESOLVE_MAX_AGE_S = 5.0

#: Bodies up to this many bytes are parsed on the event loop (a WhatsApp or Twilio message is
#: about 1 KB: tens of microseconds); larger ones (MIME mail, big batches) in a worker thread.
INLINE_PARSE_BYTES = 16_384


def our_addresses(parsed: ParsedWebhook) -> set[str]:
    """Our receiving addresses named by a delivery: each message's ``recipient``, each status's
    ``sender`` (empty ones left out)."""
    return {m.recipient for m in parsed.messages if m.recipient} | {
        s.sender for s in parsed.statuses if s.sender
    }


class _RefusedError(Exception):
    def __init__(self, response: Response[Any]) -> None:
        self.response = response


async def _owners(runtime: Runtime, channel_name: str, addresses: set[str]) -> dict[str, str]:
    """address -> owning tenant; raises :class:`_RefusedError` (404) for an address nobody owns."""
    owners: dict[str, str] = {}
    default_tenant = runtime.settings.default_tenant_id
    for address in sorted(addresses):
        tenant = await runtime.tenants.route(channel_name, address)
        if tenant is None and runtime.settings.unrouted_webhooks == "default_tenant":
            log.warning(
                "webhook.unrouted_to_default", channel=channel_name, address=address, tenant=default_tenant
            )
            tenant = default_tenant
        if tenant is None:
            log.warning("webhook.unrouted_refused", channel=channel_name, address=address)
            raise _RefusedError(
                Response(
                    {
                        "error": "no tenant owns this receiving address",
                        "channel": channel_name,
                        "address": address,
                    },
                    status_code=HTTP_404_NOT_FOUND,
                )
            )
        owners[address] = tenant
    return owners


async def ingest_webhook(
    runtime: Runtime,
    channel_name: str,
    headers: dict[str, str],
    raw_body: bytes,
    *,
    url: str,
) -> Response[Any]:
    """Run the pipeline for one delivery; see the module docstring. Returns the answer (200 with
    :func:`ingest_delivery`'s counts, or its refusal)."""
    answer = await ingest_delivery(runtime, channel_name, headers, raw_body, url=url)
    return answer if isinstance(answer, Response) else Response(answer, status_code=HTTP_200_OK)


async def ingest_delivery(
    runtime: Runtime,
    channel_name: str,
    headers: dict[str, str],
    raw_body: bytes,
    *,
    url: str,
) -> Response[Any] | dict[str, int]:
    """:func:`ingest_webhook` without building its 200 answer: the 200's JSON body
    ``{"messages": n, "duplicates": n, "statuses": n}`` once everything is stored, else the
    refusal or quarantine :class:`litestar.Response` (the webhook hot path sends the dict itself:
    a ``Response`` costs two ``typing.Mapping`` instance checks)."""
    default_channel = runtime.channels.get("", channel_name)
    default_tenant = runtime.settings.default_tenant_id
    try:
        peeked = await _parse(default_channel, headers, raw_body)
    except PayloadError as exc:
        # Unreadable: the sender must still prove who it is before it learns why.
        try:
            channel = await runtime.channels.resolve(
                default_tenant, channel_name, max_age_s=RESOLVE_MAX_AGE_S
            )
            channel.verify(headers, raw_body, url=url)
        except SignatureError as sig:
            log.warning("webhook.bad_signature", channel=channel_name, reason=str(sig), bytes=len(raw_body))
            return Response({"error": "invalid signature"}, status_code=HTTP_401_UNAUTHORIZED)
        return await _quarantine(runtime, default_tenant, channel_name, raw_body, str(exc))
    try:
        owners = await _owners(runtime, channel_name, our_addresses(peeked))
        tenants = sorted(set(owners.values())) or [default_tenant]
        parsed_by_tenant: dict[str, ParsedWebhook] = {}
        for tenant_id in tenants:
            channel = await runtime.channels.resolve(tenant_id, channel_name, max_age_s=RESOLVE_MAX_AGE_S)
            try:
                channel.verify(headers, raw_body, url=url)
            except SignatureError as exc:
                log.warning(
                    "webhook.bad_signature",
                    channel=channel_name,
                    tenant=tenant_id,
                    reason=str(exc),
                    bytes=len(raw_body),
                )
                return Response({"error": "invalid signature"}, status_code=HTTP_401_UNAUTHORIZED)
            try:
                parsed_by_tenant[tenant_id] = (
                    peeked if channel is default_channel else await _parse(channel, headers, raw_body)
                )
            except PayloadError as exc:
                return await _quarantine(runtime, tenant_id, channel_name, raw_body, str(exc))
    except _RefusedError as refused:
        return refused.response
    except StoreError as exc:
        log.error("webhook.store_unavailable", channel=channel_name, error=str(exc))
        return Response({"error": "temporarily unavailable"}, status_code=HTTP_503_SERVICE_UNAVAILABLE)
    now = runtime.clock.now()
    records: list[LogRecord] = []
    for tenant_id, parsed in parsed_by_tenant.items():
        for message in parsed.messages:
            if owners.get(message.recipient, default_tenant) == tenant_id:  # else stored under its owner
                records.append(message_record(tenant_id, message, at=now))
        for status in parsed.statuses:
            if owners.get(status.sender, default_tenant) == tenant_id:
                records.append(status_record(tenant_id, status, at=now))
    try:
        fresh = await runtime.ingest.append(records)
    except StoreError as exc:
        log.error("webhook.store_unavailable", channel=channel_name, error=str(exc))
        return Response({"error": "temporarily unavailable"}, status_code=HTTP_503_SERVICE_UNAVAILABLE)
    stored = duplicates = statuses = 0
    for record, new in zip(records, fresh, strict=True):
        if record.id.startswith("s:"):
            statuses += 1
        elif new:
            stored += 1
        else:
            duplicates += 1
    if logging.getLogger().isEnabledFor(logging.DEBUG):  # the busiest line of all: debug, built
        log.debug(  # only when written (a structlog call binds a logger even when it filters)
            "webhook.accepted",
            channel=channel_name,
            tenants=list(parsed_by_tenant),
            messages=stored,
            duplicates=duplicates,
            statuses=statuses,
        )
    return {"messages": stored, "duplicates": duplicates, "statuses": statuses}


async def _quarantine(
    runtime: Runtime, tenant_id: str, channel_name: str, raw_body: bytes, reason: str
) -> Response[Any]:
    """A verified body the parser refused: kept in quarantine, answered 200 (or 503 when the store
    cannot keep it, so that the provider delivers it again)."""
    try:
        doc_id = await quarantine(
            runtime.store,
            runtime.clock,
            tenant_id=tenant_id,
            channel=channel_name,
            raw_body=raw_body,
            reason=reason,
        )
    except StoreError as exc:
        log.error("webhook.store_unavailable", channel=channel_name, error=str(exc))
        return Response({"error": "temporarily unavailable"}, status_code=HTTP_503_SERVICE_UNAVAILABLE)
    log.warning("webhook.quarantined", channel=channel_name, tenant=tenant_id, reason=reason, id=doc_id)
    return Response({"quarantined": doc_id, "reason": reason}, status_code=HTTP_200_OK)


async def _parse(channel: Channel, headers: dict[str, str], raw_body: bytes) -> ParsedWebhook:
    """``channel.parse``: in place for a body of at most :data:`INLINE_PARSE_BYTES`, else in a
    worker thread (CPU-bound: MIME, large JSON), never holding the loop long."""
    if len(raw_body) <= INLINE_PARSE_BYTES:
        return channel.parse(headers, raw_body)
    return await anyio.to_thread.run_sync(channel.parse, headers, raw_body)


def too_large(channel_name: str, size: int) -> Response[Any] | None:
    """The 413 answer when ``size`` bytes exceed the channel's ``traits.max_body_bytes``, else
    ``None``."""
    limit = channel_class(channel_name).traits.max_body_bytes
    if size <= limit:
        return None
    log.warning("webhook.too_large", channel=channel_name, bytes=size, limit=limit)
    return Response(
        {"error": "payload too large", "reason": f"{channel_name} webhooks are at most {limit} bytes"},
        status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    )


async def ingest_request(
    request: Request[Any, Any, Any],
    runtime: Runtime,
    channel_name: str,
    *,
    url: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    """:func:`ingest_webhook` for one Litestar request: its lower-cased headers (or ``headers``),
    raw body and URL (or ``url``, the public one a signature covers). A declared or actual body
    over the channel's limit gets 413 before anything else."""
    declared = request.headers.get("content-length", "")
    refused = too_large(channel_name, int(declared)) if declared.isdigit() else None
    if refused is not None:
        return refused
    raw_body = await request.body()
    refused = too_large(channel_name, len(raw_body))
    if refused is not None:
        return refused
    return await ingest_webhook(
        runtime,
        channel_name,
        headers if headers is not None else lowercase_headers(request),
        raw_body,
        url=url if url is not None else str(request.url),
    )
