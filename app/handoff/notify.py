"""Telling the tenant about a handoff: an email to its notification addresses and a signed webhook.

Webhook signature (the scheme of Stripe's ``Stripe-Signature``): the POST carries
``LeadWarm-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>`` and
``LeadWarm-Event-Id`` (the same for every retry of one notification, so a receiver can drop a
duplicate). A receiver recomputes the HMAC over the raw bytes it received, compares in constant
time and refuses timestamps older than a few minutes (:func:`verify_signature` does all three).
The tenant's signing secret is kept in ``config/handoff_webhook`` and shown once, when rotated.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

import httpx

from app.store import Store
from app.store import collections as col
from channels.base import Channel, OutboundMessage, SendError
from kernel.clock import Clock
from kernel.egress import EgressRefusedError
from kernel.errors import LeadWarmError

__all__ = [
    "EVENT_ID_HEADER",
    "SIGNATURE_HEADER",
    "NotificationError",
    "WebhookSecrets",
    "post_webhook",
    "send_email",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "LeadWarm-Signature"
EVENT_ID_HEADER = "LeadWarm-Event-Id"
SECRET_DOC = (col.CONFIG, "handoff_webhook")
#: A webhook receiver has this long to answer (seconds).
WEBHOOK_TIMEOUT_S = 10.0


class NotificationError(LeadWarmError):
    """A notification could not be delivered; ``retryable`` says whether a later try may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``LeadWarm-Signature`` value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str, body: bytes, header: str, *, now: float, tolerance_s: float = 300.0
) -> bool:
    """Whether ``header`` (a ``LeadWarm-Signature`` value) signs ``body`` with ``secret`` and its
    timestamp is within ``tolerance_s`` seconds of ``now``. Never raises on a malformed header."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


class WebhookSecrets:
    """The tenants' webhook signing secrets (32 random bytes, URL-safe)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def get(self, tenant_id: str) -> str:
        """The tenant's secret, created on first use."""
        doc = await self.store.get(tenant_id, *SECRET_DOC)
        if doc and doc.get("secret"):
            return str(doc["secret"])
        return await self.rotate(tenant_id)

    async def rotate(self, tenant_id: str) -> str:
        """A new secret for the tenant (the old one stops working at once); returned once."""
        secret = "whsec_" + secrets.token_urlsafe(32)
        await self.store.set(tenant_id, *SECRET_DOC, {"secret": secret, "created_at": self.clock.now()})
        return secret

    def __repr__(self) -> str:
        return "WebhookSecrets()"


async def post_webhook(
    http: httpx.AsyncClient, url: str, payload: dict[str, Any], *, secret: str, event_id: str, now: float
) -> int:
    """POST ``payload`` as JSON to ``url`` over ``http`` (the runtime's egress client, whose
    connections pass ``kernel.egress``), signed; returns the receiver's status code (2xx).

    Raises :class:`NotificationError`: retryable for network errors, timeouts, 408, 429 and 5xx;
    permanent for any other status (a receiver that refuses the event) and for a URL whose host
    is a refused address (``EgressRefusedError``: private, loopback or metadata)."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "LeadWarm-Webhooks/1",
        SIGNATURE_HEADER: sign(secret, body, int(now)),
        EVENT_ID_HEADER: event_id,
    }
    try:
        response = await http.post(url, content=body, headers=headers, timeout=WEBHOOK_TIMEOUT_S)
    except EgressRefusedError as exc:
        raise NotificationError(f"webhook {exc}", retryable=False) from None
    except httpx.HTTPError as exc:
        raise NotificationError(f"webhook {type(exc).__name__}", retryable=True) from None
    if 200 <= response.status_code < 300:
        return response.status_code
    retryable = response.status_code in (408, 429) or response.status_code >= 500
    raise NotificationError(f"webhook answered {response.status_code}", retryable=retryable)


async def send_email(channel: Channel, *, to: str, subject: str, text: str, idempotency_key: str) -> str:
    """Send a notification email through the tenant's email channel; returns its Message-ID.

    Raises :class:`NotificationError` (retryable as the channel's :class:`SendError` says)."""
    try:
        return await channel.send(
            OutboundMessage(to=to, text=text, subject=subject, idempotency_key=idempotency_key)
        )
    except SendError as exc:
        raise NotificationError(f"email to {to}: {exc}", retryable=exc.retryable) from None
