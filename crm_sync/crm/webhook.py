"""A generic outgoing webhook (for n8n, Zapier, Make): the lead as JSON, signed.

Signature scheme (the same shape as Stripe's ``Stripe-Signature``):

- header ``LeadWarm-Signature: t=<unix seconds>,v1=<hex>``, where ``<hex>`` is
  ``HMAC-SHA256(secret, "<t>." + raw body)`` in lower-case hexadecimal; during a secret rotation
  the header carries one ``v1=`` per secret;
- a receiver recomputes the HMAC over the exact bytes it received (never re-serialised JSON),
  compares in constant time with any ``v1`` value, and rejects a ``t`` more than 5 minutes away
  from its clock (replays); :func:`verify_signature` does all of it.

Other headers: ``LeadWarm-Event: lead.synced`` or ``lead.activity``, ``Idempotency-Key`` (the lead
id and a digest of the body: a receiver that sees it twice may drop the second), and
``Content-Type: application/json``. The body is
``{"event", "id", "sent_at", "lead": {...}}`` with ``lead`` holding ``lead_id``, ``tenant_id``,
names, email, phone, language, stage, score, score_reasons, slots, summary, source,
transcript_url, tags, fields and remote_ids.

One request per lead. The receiver may answer ``{"id": "..."}``; that id becomes the contact id
(else the lead id does).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from crm_sync.base import ApiClient, IntegrationError, LeadSnapshot, RemoteIds
from crm_sync.crm._common import AdapterConfigError, option
from kernel.clock import Clock, SystemClock

__all__ = [
    "SIGNATURE_HEADER",
    "WebhookAdapter",
    "WebhookSignatureError",
    "encode_body",
    "lead_payload",
    "sign_payload",
    "verify_signature",
]

SIGNATURE_HEADER = "LeadWarm-Signature"
DEFAULT_TOLERANCE_S = 300.0
_MAX_HEADER = 4096


class WebhookSignatureError(IntegrationError):
    """A webhook's signature is missing, malformed, wrong, or its timestamp is outside the window."""


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign_payload(body: bytes, *, secrets: Sequence[str], timestamp: int) -> str:
    """The ``LeadWarm-Signature`` value for ``body`` at ``timestamp`` (unix seconds): ``t=..``
    then one ``v1=..`` per secret. Raises :class:`AdapterConfigError` without a secret."""
    if not secrets or not all(secrets):
        raise AdapterConfigError("the webhook has no signing secret")
    return ",".join([f"t={timestamp}", *(f"v1={_digest(s, timestamp, body)}" for s in secrets)])


def verify_signature(
    body: bytes,
    header: str | None,
    *,
    secret: str,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> int:
    """Check a ``LeadWarm-Signature`` header against the raw ``body`` and ``secret``; ``now`` is the
    receiver's clock (epoch seconds). Returns the signed timestamp. Raises
    :class:`WebhookSignatureError` when the header is missing or malformed, no ``v1`` matches, or
    the timestamp is more than ``tolerance_s`` seconds from ``now``."""
    if not header or len(header) > _MAX_HEADER:
        raise WebhookSignatureError("missing or oversized signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value.strip())
    if timestamp is None or not candidates:
        raise WebhookSignatureError("malformed signature header")
    if not math.isfinite(now) or abs(now - timestamp) > tolerance_s:
        raise WebhookSignatureError("signature timestamp outside the tolerance window")
    expected = _digest(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise WebhookSignatureError("signature does not match")
    return timestamp


def encode_body(document: Any) -> bytes:
    """The exact bytes an :class:`ApiClient` sends for ``json=document``: httpx's encoding (UTF-8,
    ``ensure_ascii=False``, compact separators, no NaN). The signature is computed over these
    bytes, so a client that encodes ``json=`` differently would break it (the client contract says
    it sends ``json=`` as httpx does)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def lead_payload(lead: LeadSnapshot) -> dict[str, Any]:
    """The ``lead`` object of the body (every field of the snapshot except ``options``)."""
    return {
        "lead_id": lead.lead_id,
        "tenant_id": lead.tenant_id,
        "name": lead.name,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "email": lead.email,
        "phone": lead.phone,
        "language": lead.language,
        "stage": lead.stage,
        "score": lead.score,
        "score_reasons": [dict(r) for r in lead.score_reasons],
        "slots": dict(lead.slots),
        "summary": lead.summary,
        "source": dict(lead.source),
        "transcript_url": lead.transcript_url,
        "tags": list(lead.tags),
        "fields": dict(lead.fields),
        "remote_ids": dict(lead.remote_ids),
    }


class WebhookAdapter:
    """POSTs the lead as signed JSON to the connection's URL (``client.account["url"]``, else
    ``options["url"]``). ``secrets`` are the signing secrets (the current one first; two during a
    rotation); ``clock`` gives the timestamp. See the module docstring for the scheme."""

    provider = "webhook"

    def __init__(self, client: ApiClient, *, secret: str | Sequence[str], clock: Clock | None = None) -> None:
        self._client = client
        self._secrets = [secret] if isinstance(secret, str) else list(secret)
        if not self._secrets or not all(self._secrets):
            raise AdapterConfigError("the webhook has no signing secret")
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"WebhookAdapter(provider={self.provider!r}, secrets=<{len(self._secrets)} redacted>)"

    def _url(self, lead: LeadSnapshot | None) -> str:
        url = self._client.account.get("url") or (option(lead, "url") if lead else None)
        if not url or not str(url).startswith(("https://", "http://")):
            raise AdapterConfigError("the webhook connection has no http(s) URL")
        return str(url)

    async def _post(self, lead: LeadSnapshot | None, event: str, payload: Mapping[str, Any]) -> Any:
        now = self._clock.now()
        document = json.loads(
            json.dumps({"event": event, "sent_at": int(now), **payload}, sort_keys=True, default=str)
        )
        body = encode_body(document)
        headers = {
            SIGNATURE_HEADER: sign_payload(body, secrets=self._secrets, timestamp=int(now)),
            "LeadWarm-Event": event,
            "Idempotency-Key": f"{payload.get('id')}:{hashlib.sha256(body).hexdigest()[:16]}",
        }
        response = await self._client.request("POST", self._url(lead), json=document, headers=headers)
        try:
            return response.json()
        except ValueError:
            return None

    async def upsert_lead(self, lead: LeadSnapshot) -> RemoteIds:
        """POST the lead (event ``lead.synced``), 1 request. Returns the receiver's ``id`` or the
        lead id as the contact id."""
        answer = await self._post(lead, "lead.synced", {"id": lead.lead_id, "lead": lead_payload(lead)})
        remote = answer.get("id") if isinstance(answer, Mapping) else None
        return RemoteIds(contact=str(remote or lead.lead_id), created="contact" not in lead.remote_ids)

    async def record_activity(self, lead: LeadSnapshot, *, kind: str, text: str) -> str | None:
        """POST ``{"event": "lead.activity", "kind", "text", "lead_id"}``, 1 request."""
        answer = await self._post(
            lead, "lead.activity", {"id": lead.lead_id, "lead_id": lead.lead_id, "kind": kind, "text": text}
        )
        remote = answer.get("id") if isinstance(answer, Mapping) else None
        return str(remote) if remote else None

    async def test_connection(self) -> Mapping[str, Any]:
        """POST a signed ``{"event": "ping"}`` (1 request); returns ``{"url": ...}``."""
        await self._post(None, "ping", {"id": "ping"})
        return {"url": self._url(None)}
