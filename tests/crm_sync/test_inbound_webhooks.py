"""Inbound CRM webhooks: each vendor's signature (valid, tampered, expired), the URL token, and the
parsers to normalized events with stable dedupe ids."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from crm_sync.webhooks import (
    CONTACT_CREATED,
    CONTACT_DELETED,
    CONTACT_DO_NOT_CONTACT,
    CONTACT_TAG_ADDED,
    CONTACT_UPDATED,
    GHL_RSA_PUBLIC_KEY,
    PARSERS,
    WebhookParseError,
    WebhookVerificationError,
    parse_generic,
    parse_gohighlevel,
    parse_hubspot,
    parse_pipedrive,
    verify_gohighlevel,
    verify_hubspot_v3,
    verify_url_token,
)

NOW = 1_764_504_000.0  # 2025-11-30T12:00:00Z
CLIENT_SECRET = "hubspot-app-client-secret"


# --------------------------------------------------------------------------- HubSpot v3


def hubspot_headers(
    method: str, uri: str, body: bytes, ts_ms: int, secret: str = CLIENT_SECRET
) -> dict[str, str]:
    """Sign as HubSpot documents it: base64(HMAC-SHA256(secret, method + uri + body + timestamp))."""
    message = method.encode() + uri.encode() + body + str(ts_ms).encode()
    signature = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": str(ts_ms)}


HUBSPOT_BODY = json.dumps(
    [
        {
            "eventId": 100,
            "subscriptionId": 7,
            "portalId": 62515,
            "occurredAt": 1764503990000,
            "subscriptionType": "contact.propertyChange",
            "attemptNumber": 0,
            "objectId": 1001,
            "changeSource": "CRM_UI",
            "propertyName": "hs_email_optout",
            "propertyValue": "true",
        },
        {
            "eventId": 101,
            "portalId": 62515,
            "occurredAt": 1764503991000,
            "subscriptionType": "contact.creation",
            "objectId": 1002,
        },
        {"eventId": 102, "portalId": 62515, "subscriptionType": "contact.deletion", "objectId": 1003},
        {
            "eventId": 103,
            "portalId": 62515,
            "subscriptionType": "contact.propertyChange",
            "objectId": 1004,
            "propertyName": "email",
            "propertyValue": "new@example.com",
        },
        {"eventId": 104, "portalId": 62515, "subscriptionType": "deal.creation", "objectId": 5},
    ]
).encode()


def test_hubspot_v3_valid_tampered_expired():
    uri = "https://hooks.leadwarm.test/webhooks/integrations/hubspot?tenant=a:b"
    ts = int(NOW * 1000) - 60_000
    headers = hubspot_headers("POST", uri, HUBSPOT_BODY, ts)
    verify_hubspot_v3(
        method="POST", uri=uri, body=HUBSPOT_BODY, headers=headers, client_secret=CLIENT_SECRET, now=NOW
    )
    # the receiver sees the URI encoded; HubSpot's listed characters are decoded before hashing
    encoded = uri.replace(":b", "%3Ab")
    verify_hubspot_v3(
        method="POST", uri=encoded, body=HUBSPOT_BODY, headers=headers, client_secret=CLIENT_SECRET, now=NOW
    )
    lower = {k.lower(): v for k, v in headers.items()}
    verify_hubspot_v3(
        method="post", uri=uri, body=HUBSPOT_BODY, headers=lower, client_secret=CLIENT_SECRET, now=NOW
    )
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_hubspot_v3(
            method="POST",
            uri=uri,
            body=HUBSPOT_BODY + b" ",
            headers=headers,
            client_secret=CLIENT_SECRET,
            now=NOW,
        )
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_hubspot_v3(
            method="POST", uri=uri, body=HUBSPOT_BODY, headers=headers, client_secret="other", now=NOW
        )
    with pytest.raises(WebhookVerificationError, match="window"):
        verify_hubspot_v3(
            method="POST",
            uri=uri,
            body=HUBSPOT_BODY,
            headers=headers,
            client_secret=CLIENT_SECRET,
            now=NOW + 300,
        )
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify_hubspot_v3(
            method="POST", uri=uri, body=HUBSPOT_BODY, headers={}, client_secret=CLIENT_SECRET, now=NOW
        )


def test_parse_hubspot_events():
    events = parse_hubspot(HUBSPOT_BODY)
    assert [(e.kind, e.remote_id) for e in events] == [
        (CONTACT_DO_NOT_CONTACT, "1001"),
        (CONTACT_CREATED, "1002"),
        (CONTACT_DELETED, "1003"),
        (CONTACT_UPDATED, "1004"),
    ]
    assert events[0].dedupe_id == "hubspot:62515:100" and events[0].occurred_at == 1764503990.0
    assert events[0].account_id == "62515" and events[3].email == "new@example.com"
    assert parse_hubspot(HUBSPOT_BODY) == events  # a redelivery gives the same dedupe ids
    with pytest.raises(WebhookParseError):
        parse_hubspot(b"{}")
    with pytest.raises(WebhookParseError):
        parse_hubspot(b"not json")


# --------------------------------------------------------------------------- GoHighLevel


def ghl_body(**extra: object) -> bytes:
    document = {
        "type": "ContactDndUpdate",
        "locationId": "ve9EPM428h8vShlRW1KT",
        "id": "nmFmQEsNgz6AVpgLVUJ0",
        "email": "jeanne.martin@example.fr",
        "phone": "+33612345678",
        "dnd": True,
        "tags": ["leadwarm"],
        "timestamp": "2025-11-30T11:59:00Z",
        "webhookId": "abc123xyz",
    }
    document.update(extra)
    return json.dumps(document).encode()


def pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_documented_ghl_key_is_rsa_4096():
    key = serialization.load_pem_public_key(GHL_RSA_PUBLIC_KEY.encode())
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 4096


def test_ghl_rsa_valid_tampered_expired():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = ghl_body()
    signature = base64.b64encode(private.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()
    headers = {"x-wh-signature": signature}
    keys = [pem(private)]
    assert verify_gohighlevel(body=body, headers=headers, now=NOW, rsa_public_keys=keys) == "rsa"
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_gohighlevel(
            body=body.replace(b"true", b"false"), headers=headers, now=NOW, rsa_public_keys=keys
        )
    # our test key is not GoHighLevel's: the documented key rejects the signature
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_gohighlevel(body=body, headers=headers, now=NOW)
    stale = ghl_body(timestamp="2025-11-30T11:50:00Z")
    stale_sig = base64.b64encode(private.sign(stale, padding.PKCS1v15(), hashes.SHA256())).decode()
    with pytest.raises(WebhookVerificationError, match="window"):
        verify_gohighlevel(body=stale, headers={"x-wh-signature": stale_sig}, now=NOW, rsa_public_keys=keys)
    with pytest.raises(WebhookVerificationError, match="base64"):
        verify_gohighlevel(body=body, headers={"x-wh-signature": "***"}, now=NOW, rsa_public_keys=keys)


def test_ghl_ed25519_valid_tampered_and_missing():
    private = ed25519.Ed25519PrivateKey.generate()
    body = ghl_body()
    headers = {"X-GHL-Signature": base64.b64encode(private.sign(body)).decode()}
    keys = [pem(ed25519.Ed25519PrivateKey.generate()), pem(private)]  # a rotation: two keys configured
    assert verify_gohighlevel(body=body, headers=headers, now=NOW, ed25519_public_keys=keys) == "ed25519"
    with pytest.raises(WebhookVerificationError, match="Ed25519 signature does not match"):
        verify_gohighlevel(body=body + b" ", headers=headers, now=NOW, ed25519_public_keys=keys)
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify_gohighlevel(body=body, headers={}, now=NOW, ed25519_public_keys=keys)
    with pytest.raises(WebhookVerificationError, match="not a PEM"):
        verify_gohighlevel(body=body, headers=headers, now=NOW, ed25519_public_keys=["nope"])


def test_parse_gohighlevel_events():
    (dnd,) = parse_gohighlevel(ghl_body())
    assert (dnd.kind, dnd.remote_id, dnd.dedupe_id) == (
        CONTACT_DO_NOT_CONTACT,
        "nmFmQEsNgz6AVpgLVUJ0",
        "gohighlevel:abc123xyz",
    )
    assert dnd.account_id == "ve9EPM428h8vShlRW1KT" and dnd.occurred_at == NOW - 60
    (tag,) = parse_gohighlevel(ghl_body(type="ContactTagUpdate", dnd=False, tags=["hot", "leadwarm"]))
    assert tag.kind == CONTACT_TAG_ADDED and tag.tags == ("hot", "leadwarm")
    (created,) = parse_gohighlevel(ghl_body(type="ContactCreate", dnd=False, webhookId=None))
    assert created.kind == CONTACT_CREATED and created.dedupe_id.startswith("gohighlevel:ContactCreate:")
    assert parse_gohighlevel(ghl_body(type="ContactDelete"))[0].kind == CONTACT_DELETED
    assert parse_gohighlevel(ghl_body(type="InboundMessage")) == []
    with pytest.raises(WebhookParseError):
        parse_gohighlevel(ghl_body(type="ContactUpdate", id=None))


# --------------------------------------------------------------------------- Pipedrive, token, generic


def test_url_token():
    verify_url_token("s3cr3t-token", expected="s3cr3t-token")
    for bad in (None, "", "s3cr3t-tokeN", "x" * 1000):
        with pytest.raises(WebhookVerificationError):
            verify_url_token(bad, expected="s3cr3t-token")
    with pytest.raises(WebhookVerificationError):
        verify_url_token("", expected="")


def test_parse_pipedrive_v2_and_v1():
    v2: dict[str, Any] = {
        "meta": {
            "action": "change",
            "entity": "person",
            "entity_id": "11",
            "id": "6a1b-uuid",
            "timestamp": "2025-11-30T11:59:30.000Z",
            "company_id": "77",
        },
        "data": {
            "id": 11,
            "name": "Jeanne",
            "emails": [{"value": "j@example.fr"}],
            "marketing_status": "unsubscribed",
            "label_ids": [1],
        },
        "previous": {"marketing_status": "subscribed"},
    }
    (event,) = parse_pipedrive(json.dumps(v2).encode())
    assert (event.kind, event.remote_id, event.dedupe_id, event.email) == (
        CONTACT_DO_NOT_CONTACT,
        "11",
        "pipedrive:6a1b-uuid",
        "j@example.fr",
    )
    assert event.account_id == "77" and event.occurred_at == NOW - 30
    v2["data"]["marketing_status"] = "subscribed"
    v2["data"]["label_ids"] = [1, 4]
    v2["previous"] = {"label_ids": [1]}
    (tag,) = parse_pipedrive(json.dumps(v2).encode())
    assert tag.kind == CONTACT_TAG_ADDED and tag.tags == ("4",)
    v1 = {
        "event": "added.person",
        "current": {"id": 12, "phone": [{"value": "+33612345678"}]},
        "previous": None,
        "meta": {"id": 99},
    }
    (created,) = parse_pipedrive(json.dumps(v1).encode())
    assert (created.kind, created.remote_id, created.phone, created.dedupe_id) == (
        CONTACT_CREATED,
        "12",
        "+33612345678",
        "pipedrive:99",
    )
    assert (
        parse_pipedrive(
            json.dumps({"meta": {"action": "change", "entity": "deal"}, "data": {"id": 1}}).encode()
        )
        == []
    )


def test_parse_generic_and_registry():
    body = json.dumps(
        [{"event": "contact.deleted", "id": "003xx", "event_id": "evt-1", "email": "a@b.c"}]
    ).encode()
    (event,) = PARSERS["salesforce"](body)
    assert (event.provider, event.kind, event.dedupe_id) == (
        "salesforce",
        CONTACT_DELETED,
        "salesforce:evt-1",
    )
    with pytest.raises(WebhookParseError, match="unknown event kind"):
        parse_generic(json.dumps({"event": "boom", "id": "1", "event_id": "2"}).encode())
    with pytest.raises(WebhookParseError, match="needs"):
        parse_generic(json.dumps({"event": "contact.updated"}).encode())
    with pytest.raises(WebhookParseError, match="too large"):
        parse_generic(b"[" + b" " * 1_000_001 + b"]")
    assert set(PARSERS) == {"hubspot", "gohighlevel", "pipedrive", "salesforce", "generic"}
