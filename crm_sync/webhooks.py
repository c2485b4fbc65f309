"""Inbound CRM webhooks: verify each vendor's signature, then parse to small normalized events.

Verification works on the raw body bytes (never on re-serialised JSON):

- HubSpot, signature v3 ("Validating requests", developers.hubspot.com): header
  ``X-HubSpot-Signature-v3`` is ``base64(HMAC-SHA256(app client secret, method + uri + body +
  timestamp))`` with ``X-HubSpot-Request-Timestamp`` in epoch milliseconds; requests older than
  5 minutes are rejected; the URI is the full URL with the characters HubSpot lists decoded.
  :func:`verify_hubspot_v3`.
- GoHighLevel: ``X-GHL-Signature`` (Ed25519 over the raw body, base64) and the older
  ``x-wh-signature`` (RSA PKCS#1 v1.5 with SHA-256 over the raw body, base64; public key in
  GoHighLevel's "Webhook Authentication Guide", kept here as :data:`GHL_RSA_PUBLIC_KEY`). The
  payload's ``timestamp`` must be within 5 minutes and ``webhookId`` is the dedupe id (same guide,
  "Handling Replay Attacks"). :func:`verify_gohighlevel`. GoHighLevel's Ed25519 public key is not
  in the docs we ship: pass it from configuration (``ed25519_public_keys``).
- Vendors that sign nothing we can check (Pipedrive webhooks, Salesforce outbound messages and
  flows, Zapier/n8n/Make): a secret token in the webhook URL, compared in constant time
  (:func:`verify_url_token`).

Parsers (:func:`parse_hubspot`, :func:`parse_gohighlevel`, :func:`parse_pipedrive`,
:func:`parse_generic`) return :class:`CrmEvent` lists; each event has a ``dedupe_id`` stable across
the vendor's retries, so the app stores it and drops a second delivery.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from crm_sync.base import IntegrationError

__all__ = [
    "CONTACT_CREATED",
    "CONTACT_DELETED",
    "CONTACT_DO_NOT_CONTACT",
    "CONTACT_TAG_ADDED",
    "CONTACT_UPDATED",
    "GHL_RSA_PUBLIC_KEY",
    "MAX_BODY_BYTES",
    "PARSERS",
    "CrmEvent",
    "WebhookParseError",
    "WebhookVerificationError",
    "parse_generic",
    "parse_gohighlevel",
    "parse_hubspot",
    "parse_pipedrive",
    "verify_gohighlevel",
    "verify_hubspot_v3",
    "verify_url_token",
]

CONTACT_UPDATED = "contact.updated"
CONTACT_DELETED = "contact.deleted"
CONTACT_DO_NOT_CONTACT = "contact.do_not_contact"
CONTACT_CREATED = "contact.created"
CONTACT_TAG_ADDED = "contact.tag_added"
_KINDS = frozenset(
    {CONTACT_UPDATED, CONTACT_DELETED, CONTACT_DO_NOT_CONTACT, CONTACT_CREATED, CONTACT_TAG_ADDED}
)

#: Largest body we verify or parse (bytes); HubSpot sends at most 100 events per request.
MAX_BODY_BYTES = 1_000_000
MAX_EVENTS = 1000
DEFAULT_TOLERANCE_S = 300.0

#: GoHighLevel's public key for ``x-wh-signature`` (RSA, from docs/WebhookAuthentication.md).
GHL_RSA_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAokvo/r9tVgcfZ5DysOSC
Frm602qYV0MaAiNnX9O8KxMbiyRKWeL9JpCpVpt4XHIcBOK4u3cLSqJGOLaPuXw6
dO0t6Q/ZVdAV5Phz+ZtzPL16iCGeK9po6D6JHBpbi989mmzMryUnQJezlYJ3DVfB
csedpinheNnyYeFXolrJvcsjDtfAeRx5ByHQmTnSdFUzuAnC9/GepgLT9SM4nCpv
uxmZMxrJt5Rw+VUaQ9B8JSvbMPpez4peKaJPZHBbU3OdeCVx5klVXXZQGNHOs8gF
3kvoV5rTnXV0IknLBXlcKKAQLZcY/Q9rG6Ifi9c+5vqlvHPCUJFT5XUGG5RKgOKU
J062fRtN+rLYZUV+BjafxQauvC8wSWeYja63VSUruvmNj8xkx2zE/Juc+yjLjTXp
IocmaiFeAO6fUtNjDeFVkhf5LNb59vECyrHD2SQIrhgXpO4Q3dVNA5rw576PwTzN
h/AMfHKIjE4xQA1SZuYJmNnmVZLIZBlQAF9Ntd03rfadZ+yDiOXCCs9FkHibELhC
HULgCsnuDJHcrGNd5/Ddm5hxGQ0ASitgHeMZ0kcIOwKDOzOU53lDza6/Y09T7sYJ
PQe7z0cvj7aE4B+Ax1ZoZGPzpJlZtGXCsu9aTEGEnKzmsFqwcSsnw3JB31IGKAyk
T1hhTiaCeIY/OwwwNUY2yvcCAwEAAQ==
-----END PUBLIC KEY-----
"""

# HubSpot v3: "decode any URL-encoded characters listed in the following table" (Validating requests).
_HUBSPOT_DECODE = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


class WebhookVerificationError(IntegrationError):
    """The request is not provably from the vendor (missing, malformed or wrong signature or
    token, or a timestamp outside the window). Answer 401 and log nothing of the body."""


class WebhookParseError(IntegrationError):
    """A verified body we cannot read (not JSON, too large, not the vendor's shape)."""


@dataclass(frozen=True, slots=True)
class CrmEvent:
    """One change in a CRM, normalized. ``kind`` is one of ``contact.updated``,
    ``contact.deleted``, ``contact.do_not_contact``, ``contact.created``, ``contact.tag_added``;
    ``remote_id`` the CRM's contact (person, Lead) id; ``dedupe_id`` is stable across the vendor's
    retries (``provider:...``); ``occurred_at`` epoch seconds (UTC) when the vendor says;
    ``account_id`` the portal, location or company; ``tags`` the tags added (tag events) or the
    contact's tags; ``changes`` the properties the vendor sent (``{name: value}``)."""

    provider: str
    kind: str
    remote_id: str
    dedupe_id: str
    occurred_at: float | None = None
    account_id: str | None = None
    email: str | None = None
    phone: str | None = None
    tags: tuple[str, ...] = ()
    changes: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- verification


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _check_size(body: bytes) -> None:
    if len(body) > MAX_BODY_BYTES:
        raise WebhookVerificationError("webhook body too large")


def verify_hubspot_v3(
    *,
    method: str,
    uri: str,
    body: bytes,
    headers: Mapping[str, str],
    client_secret: str,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Check HubSpot's v3 signature. ``uri`` is the full URL HubSpot called (scheme, host, path,
    query); ``now`` epoch seconds. Raises :class:`WebhookVerificationError` when a header is
    missing, the timestamp is more than ``tolerance_s`` (default 300 s) old, or the HMAC differs."""
    _check_size(body)
    signature = _header(headers, "X-HubSpot-Signature-v3")
    stamp = _header(headers, "X-HubSpot-Request-Timestamp")
    if not signature or not stamp or not stamp.isdigit() or len(stamp) > 16:
        raise WebhookVerificationError("missing HubSpot v3 signature headers")
    if not math.isfinite(now) or abs(now * 1000 - int(stamp)) > tolerance_s * 1000:
        raise WebhookVerificationError("HubSpot request timestamp outside the window")
    decoded = uri
    for encoded, char in _HUBSPOT_DECODE.items():
        decoded = decoded.replace(encoded, char).replace(encoded.lower(), char)
    message = method.upper().encode() + decoded.encode() + body + stamp.encode()
    expected = base64.b64encode(hmac.new(client_secret.encode(), message, hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(expected, signature.strip()):
        raise WebhookVerificationError("HubSpot signature does not match")


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError("signature is not base64") from None


def _load_keys(pems: Sequence[str | bytes]) -> list[Any]:
    keys = []
    for pem in pems:
        raw = pem.encode() if isinstance(pem, str) else pem
        try:
            keys.append(serialization.load_pem_public_key(raw))
        except ValueError:
            raise WebhookVerificationError(
                "a configured GoHighLevel public key is not a PEM public key"
            ) from None
    return keys


def _ghl_timestamp(body: bytes, now: float, tolerance_s: float) -> None:
    try:
        document = json.loads(body)
    except ValueError:
        raise WebhookVerificationError("GoHighLevel body is not JSON") from None
    stamp = document.get("timestamp") if isinstance(document, Mapping) else None
    if stamp is None:
        return  # older events carry none; the webhookId dedupe still stops replays
    moment = _epoch(stamp)
    if moment is None or abs(now - moment) > tolerance_s:
        raise WebhookVerificationError("GoHighLevel timestamp outside the window")


def verify_gohighlevel(
    *,
    body: bytes,
    headers: Mapping[str, str],
    now: float,
    ed25519_public_keys: Sequence[str | bytes] = (),
    rsa_public_keys: Sequence[str | bytes] = (GHL_RSA_PUBLIC_KEY,),
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> str:
    """Check a GoHighLevel webhook: ``X-GHL-Signature`` against ``ed25519_public_keys`` when the
    header is present (and keys are configured), else ``x-wh-signature`` against
    ``rsa_public_keys`` (default: the documented key). Then the body's ``timestamp`` must be within
    ``tolerance_s`` seconds of ``now``. Returns the scheme used (``ed25519`` or ``rsa``). Raises
    :class:`WebhookVerificationError`."""
    _check_size(body)
    ed_signature = _header(headers, "X-GHL-Signature")
    rsa_signature = _header(headers, "x-wh-signature")
    scheme = ""
    if ed_signature and ed25519_public_keys:
        raw = _b64(ed_signature)
        for key in _load_keys(ed25519_public_keys):
            if not isinstance(key, Ed25519PublicKey):
                raise WebhookVerificationError("a configured GoHighLevel Ed25519 key is not Ed25519")
            try:
                key.verify(raw, body)
                scheme = "ed25519"
                break
            except InvalidSignature:
                continue
        if not scheme:
            raise WebhookVerificationError("GoHighLevel Ed25519 signature does not match")
    elif rsa_signature:
        raw = _b64(rsa_signature)
        for key in _load_keys(rsa_public_keys):
            if not isinstance(key, RSAPublicKey):
                raise WebhookVerificationError("a configured GoHighLevel RSA key is not RSA")
            try:
                key.verify(raw, body, padding.PKCS1v15(), hashes.SHA256())
                scheme = "rsa"
                break
            except InvalidSignature:
                continue
        if not scheme:
            raise WebhookVerificationError("GoHighLevel RSA signature does not match")
    else:
        raise WebhookVerificationError("missing GoHighLevel signature header")
    _ghl_timestamp(body, now, tolerance_s)
    return scheme


def verify_url_token(provided: str | None, *, expected: str) -> None:
    """Check the secret token of a webhook URL (``/webhooks/integrations/{platform}?token=...``),
    for vendors that sign nothing. Constant-time. Raises :class:`WebhookVerificationError`."""
    if not expected:
        raise WebhookVerificationError("no webhook token configured")
    if not provided or len(provided) > 512 or not hmac.compare_digest(provided.encode(), expected.encode()):
        raise WebhookVerificationError("webhook token does not match")


# --------------------------------------------------------------------------- parsing


def _epoch(value: Any) -> float | None:
    """Epoch seconds from ms/seconds numbers or ISO 8601 strings; ``None`` when unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number):
            return None
        return number / 1000 if number > 1e11 else number
    if isinstance(value, str) and 0 < len(value) <= 40:
        if value.isdigit():
            return _epoch(int(value))
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            return None
        return moment.timestamp()
    return None


def _load(body: bytes) -> Any:
    if len(body) > MAX_BODY_BYTES:
        raise WebhookParseError("webhook body too large")
    try:
        return json.loads(body)
    except ValueError:
        raise WebhookParseError("webhook body is not JSON") from None


def _text(value: Any) -> str | None:
    return str(value)[:320] if value not in (None, "") else None


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v)[:100] for v in value[:200])
    return ()


_HUBSPOT_OPTOUT = frozenset({"hs_email_optout", "hs_whatsapp_optout", "hs_sms_optout"})


def parse_hubspot(body: bytes) -> list[CrmEvent]:
    """HubSpot webhook events (a JSON array of ``{eventId, subscriptionType, objectId, portalId,
    occurredAt, propertyName, propertyValue}``): ``contact.creation`` -> created,
    ``contact.deletion``/``contact.privacyDeletion`` -> deleted, ``contact.propertyChange`` ->
    do_not_contact when an opt-out property (``hs_email_optout``...) turns ``true``, else updated;
    other subscriptions are skipped. ``dedupe_id``: ``hubspot:<portalId>:<eventId>``. Raises
    :class:`WebhookParseError`."""
    document = _load(body)
    if not isinstance(document, list):
        raise WebhookParseError("HubSpot webhooks send a JSON array")
    events = []
    for item in document[:MAX_EVENTS]:
        if not isinstance(item, Mapping):
            continue
        kind_raw = str(item.get("subscriptionType", ""))
        if kind_raw == "contact.creation":
            kind = CONTACT_CREATED
        elif kind_raw in {"contact.deletion", "contact.privacyDeletion"}:
            kind = CONTACT_DELETED
        elif kind_raw == "contact.propertyChange":
            name = str(item.get("propertyName", ""))
            optout = name in _HUBSPOT_OPTOUT and str(item.get("propertyValue")).lower() == "true"
            kind = CONTACT_DO_NOT_CONTACT if optout else CONTACT_UPDATED
        else:
            continue
        if item.get("objectId") is None or item.get("eventId") is None:
            continue
        changes = {}
        if item.get("propertyName"):
            changes[str(item["propertyName"])] = item.get("propertyValue")
        events.append(
            CrmEvent(
                provider="hubspot",
                kind=kind,
                remote_id=str(item["objectId"]),
                dedupe_id=f"hubspot:{item.get('portalId')}:{item['eventId']}",
                occurred_at=_epoch(item.get("occurredAt")),
                account_id=_text(item.get("portalId")),
                email=_text(changes.get("email")),
                phone=_text(changes.get("phone")),
                changes=changes,
            )
        )
    return events


_GHL_KINDS = {
    "ContactCreate": CONTACT_CREATED,
    "ContactUpdate": CONTACT_UPDATED,
    "ContactDelete": CONTACT_DELETED,
    "ContactTagUpdate": CONTACT_TAG_ADDED,
}


def parse_gohighlevel(body: bytes) -> list[CrmEvent]:
    """One GoHighLevel event (``{type, locationId, id, email, phone, tags, dnd, webhookId,
    timestamp}``): ``ContactCreate`` -> created, ``ContactUpdate`` -> updated, ``ContactDelete`` ->
    deleted, ``ContactTagUpdate`` -> tag_added (``tags`` the contact's tags), ``ContactDndUpdate``
    -> do_not_contact when ``dnd`` is true, else updated; other types give no event.
    ``dedupe_id``: ``gohighlevel:<webhookId>`` (else type, id and ``dateUpdated``)."""
    document = _load(body)
    if not isinstance(document, Mapping):
        raise WebhookParseError("GoHighLevel webhooks send a JSON object")
    kind_raw = str(document.get("type", ""))
    if kind_raw == "ContactDndUpdate":
        kind = CONTACT_DO_NOT_CONTACT if document.get("dnd") is True else CONTACT_UPDATED
    elif kind_raw in _GHL_KINDS:
        kind = _GHL_KINDS[kind_raw]
        if kind == CONTACT_UPDATED and document.get("dnd") is True:
            kind = CONTACT_DO_NOT_CONTACT
    else:
        return []
    remote = document.get("id") or document.get("contactId")
    if not remote:
        raise WebhookParseError("GoHighLevel contact event without an id")
    stamp = document.get("timestamp") or document.get("dateUpdated") or document.get("dateAdded")
    dedupe = document.get("webhookId") or f"{kind_raw}:{remote}:{stamp}"
    changes = {
        k: document[k]
        for k in ("firstName", "lastName", "name", "email", "phone", "dnd", "tags", "source", "companyName")
        if k in document
    }
    return [
        CrmEvent(
            provider="gohighlevel",
            kind=kind,
            remote_id=str(remote),
            dedupe_id=f"gohighlevel:{dedupe}",
            occurred_at=_epoch(stamp),
            account_id=_text(document.get("locationId")),
            email=_text(document.get("email")),
            phone=_text(document.get("phone")),
            tags=_tags(document.get("tags")),
            changes=changes,
        )
    ]


def _pipedrive_values(person: Any) -> tuple[str | None, str | None]:
    if not isinstance(person, Mapping):
        return None, None

    def first(items: Any) -> str | None:
        if isinstance(items, list) and items:
            head = items[0]
            return _text(head.get("value") if isinstance(head, Mapping) else head)
        return _text(items) if isinstance(items, str) else None

    return first(person.get("emails") or person.get("email")), first(
        person.get("phones") or person.get("phone")
    )


def parse_pipedrive(body: bytes) -> list[CrmEvent]:
    """A Pipedrive webhook about a person. v2 (``{meta: {action, entity, entity_id, id,
    timestamp, company_id}, data, previous}``) and v1 (``{event: "updated.person", current,
    previous, meta}``) are read: create -> created, delete -> deleted, change -> do_not_contact when
    ``marketing_status`` becomes ``unsubscribed``, tag_added when ``label_ids`` gains labels (the
    new label ids as tags), else updated. Other entities give no event. ``dedupe_id``:
    ``pipedrive:<meta.id>`` (else entity id and timestamp)."""
    document = _load(body)
    if not isinstance(document, Mapping):
        raise WebhookParseError("Pipedrive webhooks send a JSON object")
    raw_meta = document.get("meta")
    meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
    if "event" in document and "." in str(document.get("event")):
        action, _, entity = str(document["event"]).partition(".")
        current, previous = document.get("current"), document.get("previous")
        action = {"added": "create", "updated": "change", "deleted": "delete", "merged": "change"}.get(
            action, action
        )
    else:
        action, entity = str(meta.get("action", "")), str(meta.get("entity", meta.get("object", "")))
        current, previous = document.get("data"), document.get("previous")
    if entity != "person":
        return []
    current = current if isinstance(current, Mapping) else {}
    previous = previous if isinstance(previous, Mapping) else {}
    remote = current.get("id") or previous.get("id") or meta.get("entity_id")
    if remote is None:
        raise WebhookParseError("Pipedrive person event without an id")
    new_labels = [
        str(x) for x in current.get("label_ids") or () if x not in (previous.get("label_ids") or ())
    ]
    if action == "create":
        kind = CONTACT_CREATED
    elif action == "delete":
        kind = CONTACT_DELETED
    elif action == "change":
        if (
            current.get("marketing_status") == "unsubscribed"
            and previous.get("marketing_status") != "unsubscribed"
        ):
            kind = CONTACT_DO_NOT_CONTACT
        elif new_labels and "label_ids" in previous:
            kind = CONTACT_TAG_ADDED
        else:
            kind = CONTACT_UPDATED
    else:
        return []
    stamp = meta.get("timestamp") or current.get("update_time")
    dedupe = meta.get("id") or f"{action}:{remote}:{stamp}"
    email, phone = _pipedrive_values(current or previous)
    return [
        CrmEvent(
            provider="pipedrive",
            kind=kind,
            remote_id=str(remote),
            dedupe_id=f"pipedrive:{dedupe}",
            occurred_at=_epoch(stamp),
            account_id=_text(meta.get("company_id")),
            email=email,
            phone=phone,
            tags=tuple(new_labels) if kind == CONTACT_TAG_ADDED else (),
            changes={
                k: v for k, v in current.items() if k in {"name", "marketing_status", "label_ids", "owner_id"}
            },
        )
    ]


def parse_generic(body: bytes, *, provider: str = "generic") -> list[CrmEvent]:
    """Our own JSON shape, for senders with a URL token (a Salesforce flow, Zapier, n8n, Make):
    one object or an array of ``{"event": <kind>, "id", "event_id", "email", "phone", "tags",
    "occurred_at", "account_id", "changes"}``; ``event`` must be one of the five kinds and
    ``event_id`` is the dedupe id (``<provider>:<event_id>``). Raises :class:`WebhookParseError`."""
    document = _load(body)
    items = document if isinstance(document, list) else [document]
    events = []
    for item in items[:MAX_EVENTS]:
        if not isinstance(item, Mapping):
            raise WebhookParseError("each event must be a JSON object")
        kind = str(item.get("event", ""))
        if kind not in _KINDS:
            raise WebhookParseError(f"unknown event kind (expected one of {', '.join(sorted(_KINDS))})")
        if not item.get("id") or not item.get("event_id"):
            raise WebhookParseError("an event needs 'id' and 'event_id'")
        changes = item.get("changes")
        events.append(
            CrmEvent(
                provider=provider,
                kind=kind,
                remote_id=str(item["id"])[:200],
                dedupe_id=f"{provider}:{str(item['event_id'])[:200]}",
                occurred_at=_epoch(item.get("occurred_at")),
                account_id=_text(item.get("account_id")),
                email=_text(item.get("email")),
                phone=_text(item.get("phone")),
                tags=_tags(item.get("tags")),
                changes=dict(changes) if isinstance(changes, Mapping) else {},
            )
        )
    return events


#: ``{platform: parser}`` for ``POST /webhooks/integrations/{platform}``.
PARSERS: dict[str, Callable[[bytes], list[CrmEvent]]] = {
    "hubspot": parse_hubspot,
    "gohighlevel": parse_gohighlevel,
    "pipedrive": parse_pipedrive,
    "salesforce": lambda body: parse_generic(body, provider="salesforce"),
    "generic": parse_generic,
}
