"""Quarantine: signed webhook bodies we could not parse, kept for a person instead of refused.

A provider redelivers a webhook it did not get a 2xx for (Meta retries for up to 7 days, "Webhooks >
Event notifications"; Twilio retries on timeouts and 5xx/4xx per its webhook connection overrides),
so a correctly signed body our parser refuses would come back for ever and its content would be lost
anyway. Instead it is stored in the tenant's ``quarantine`` collection (the tenant whose secret
verified it), deduplicated by the SHA-256 of the raw body, with the parser's reason and at most
:data:`MAX_QUARANTINED_BYTES` of the body, and the webhook answers 200.

``GET /api/v1/quarantine`` lists the tenant's quarantined deliveries, newest first.
"""

from __future__ import annotations

import hashlib
from typing import Any

from litestar import get
from litestar.di import NamedDependency
from litestar.params import Parameter

from app.store import Order, Store
from app.store import collections as col
from kernel.clock import Clock

__all__ = ["MAX_QUARANTINED_BYTES", "MAX_REASON_CHARS", "ROUTES", "quarantine", "quarantined"]

QUARANTINE = col.QUARANTINE
#: Bytes of a quarantined body kept (the rest is counted, not stored).
MAX_QUARANTINED_BYTES = 16 * 1024
#: Characters of the parser's reason kept.
MAX_REASON_CHARS = 500


async def quarantine(
    store: Store, clock: Clock, *, tenant_id: str, channel: str, raw_body: bytes, reason: str
) -> str:
    """Keep ``raw_body`` (verified for ``tenant_id``, unparseable for ``reason``); returns its id.

    The document: ``channel``, ``reason`` (at most :data:`MAX_REASON_CHARS`), ``received_at`` (UTC
    epoch seconds), ``size`` (bytes), ``sha256``, ``body`` (the first :data:`MAX_QUARANTINED_BYTES`
    bytes as UTF-8, invalid bytes replaced) and ``truncated``. A redelivery of the same body
    rewrites the same document. Raises :class:`app.store.StoreError` when the store is unavailable.
    """
    digest = hashlib.sha256(raw_body).hexdigest()
    doc_id = f"{channel}:{digest[:40]}"
    await store.set(
        tenant_id,
        QUARANTINE,
        doc_id,
        {
            "channel": channel,
            "reason": reason[:MAX_REASON_CHARS],
            "received_at": clock.now(),
            "size": len(raw_body),
            "sha256": digest,
            "body": raw_body[:MAX_QUARANTINED_BYTES].decode("utf-8", errors="replace"),
            "truncated": len(raw_body) > MAX_QUARANTINED_BYTES,
        },
    )
    return doc_id


async def quarantined(store: Store, tenant_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
    """The tenant's quarantined deliveries, newest first, at most ``limit``; each with its ``id``."""
    docs = await store.query(
        tenant_id, QUARANTINE, order_by=[Order("received_at", descending=True)], limit=limit
    )
    return [{"id": d.id, **d.data} for d in docs]


@get("/api/v1/quarantine", summary="Signed webhooks that could not be parsed")
async def list_quarantine(
    store: NamedDependency[Store],
    tenant_id: NamedDependency[str],
    limit: int = Parameter(default=50, ge=1, le=200),
) -> dict[str, Any]:
    """The caller's tenant's quarantined webhook deliveries, newest first (``limit`` 1-200)."""
    return {"items": await quarantined(store, tenant_id, limit=limit)}


#: The routes this module serves (registered by the messaging feature).
ROUTES = (list_quarantine,)
