"""Inbound CRM webhooks: verified (URL token, HubSpot v3 signature), logged, deduplicated; a
do-not-contact opts the lead out and stops its cadence; a tag starts a playbook."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.jobs.queue import job_doc_id
from app.main import create_app
from app.store import collections as col
from tests.app.conftest import ADMIN_KEY
from tests.crm.conftest import LOCATION, TENANT, connect, qualified_lead, run_until_idle
from tests.crm_sync.fakes import GoHighLevelFake, HubSpotFake, SalesforceFake

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
HUBSPOT_SECRET = "hubspot-app-secret-for-tests"


async def add_timer(rt: Runtime, conversation_id: str) -> None:
    """A pending follow-up (the cadence a CRM event must stop)."""
    await rt.store.set(TENANT, col.CONVERSATIONS, conversation_id, {"timer": {"id": "t1"}}, merge=True)
    await rt.jobs.enqueue(
        TENANT, "timer", conversation_id, due_at=rt.clock.now() + 86400, payload={"timer_id": "t1"}
    )


async def test_url_token_webhook_is_verified_deduplicated_and_opts_the_lead_out(rt: Runtime) -> None:
    fake = await SalesforceFake().start()
    try:
        connection = await connect(rt, "salesforce", fake)
        lead = await qualified_lead(rt, 1)
        await run_until_idle(rt)
        link = await rt.store.get(TENANT, col.CRM_LINKS, f"{connection.id}:{lead.id}")
        assert link is not None and link["status"] == "synced"
        conversation_id = "cv_test_000001"
        await add_timer(rt, conversation_id)
        app = create_app(runtime=rt, start_worker=False)
        async with AsyncTestClient(app=app) as client:
            made = await client.post(f"/api/v1/crm/{connection.id}/webhook-token", headers=AUTH)
            assert made.status_code == 200
            path = urlsplit(made.json()["url"]).path
            assert path.startswith("/webhooks/integrations/salesforce/")
            event = {"event": "contact.do_not_contact", "id": link["remote_contact"], "event_id": "ev-1"}

            assert (await client.post(path + "x", json=event)).status_code == 401
            assert (await client.post("/webhooks/integrations/salesforce", json=event)).status_code == 401
            first = await client.post(path, json=event)
            assert first.status_code == 200, first.text
            assert first.json()["events"][0]["result"].startswith("do_not_contact, 1 conversation")
            again = await client.post(path, json=event)
            assert again.json()["events"][0]["result"] == "duplicate"

            assert await rt.optouts.is_opted_out(TENANT, "whatsapp", lead.phone or "")
            conv = await rt.store.get(TENANT, col.CONVERSATIONS, conversation_id)
            assert conv is not None and conv["status"] == "closed" and conv["outcome"] == "crm:do_not_contact"
            assert await rt.store.get(TENANT, col.JOBS, job_doc_id("timer", conversation_id)) is None
            stored = await rt.store.get(TENANT, col.LEADS, lead.id)
            assert stored is not None and stored["consent"]["whatsapp"] is False

            logs = (await client.get(f"/api/v1/crm/{connection.id}/webhook-logs", headers=AUTH)).json()[
                "logs"
            ]
            assert sorted(entry["status"] for entry in logs) == ["accepted", "duplicate"]

            # do-not-contact for someone we have never talked to: the ledger keeps them out
            stranger = {
                "event": "contact.do_not_contact",
                "id": "003X",
                "event_id": "ev-9",
                "phone": "+33699990000",
            }
            assert "opted out" in (await client.post(path, json=stranger)).json()["events"][0]["result"]
            assert await rt.optouts.is_opted_out(TENANT, "sms", "+33699990000")

            # a new token replaces the old one
            renewed = await client.post(f"/api/v1/crm/{connection.id}/webhook-token", headers=AUTH)
            assert (await client.post(path, json={**event, "event_id": "ev-2"})).status_code == 401
            new_path = urlsplit(renewed.json()["url"]).path

            # a tag added in the CRM starts a playbook for a new contact
            tag = {
                "event": "contact.tag_added",
                "id": "003NEW",
                "event_id": "ev-3",
                "phone": "+33611112222",
                "tags": ["warm-me"],
                "changes": {"first_name": "Lou", "last_name": "Bernard"},
            }
            started = await client.post(new_path, json=tag)
            assert started.json()["events"][0]["result"].startswith("started cv_")
            leads = await rt.store.query(TENANT, col.LEADS)
            new = next(d.data for d in leads if d.data.get("phone") == "+33611112222")
            assert new["name"] == "Lou Bernard" and new["source"] == "crm:salesforce"
            conv_id = started.json()["events"][0]["result"].split()[-1]
            assert await rt.store.get(TENANT, col.JOBS, job_doc_id("start", conv_id)) is not None
            new_link = await rt.store.get(TENANT, col.CRM_LINKS, f"{connection.id}:{new['id']}")
            assert new_link is not None and new_link["remote_contact"] == "003NEW"
            # the same tag again (another event id) does not start a second conversation
            again_tag = await client.post(new_path, json={**tag, "event_id": "ev-4"})
            assert again_tag.json()["events"][0]["result"] == "ignored: the lead has an open conversation"
    finally:
        await fake.stop()


def hubspot_headers(url: str, body: bytes, now_ms: int, secret: str = HUBSPOT_SECRET) -> dict[str, str]:
    message = b"POST" + url.encode() + body + str(now_ms).encode()
    signature = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
    return {
        "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": str(now_ms),
        "Content-Type": "application/json",
    }


async def test_hubspot_signed_webhook(rt: Runtime) -> None:
    fake = await HubSpotFake().start()
    try:
        connection = await connect(rt, "hubspot", fake)
        assert rt.connections is not None
        await rt.connections.oauth.register_app(
            TENANT, "hubspot", client_id="cid", client_secret=HUBSPOT_SECRET
        )
        lead = await qualified_lead(rt, 1)
        await run_until_idle(rt)
        link = await rt.store.get(TENANT, col.CRM_LINKS, f"{connection.id}:{lead.id}")
        assert link is not None
        app = create_app(runtime=rt, start_worker=False)
        async with AsyncTestClient(app=app) as client:
            assert (
                await client.put(f"/api/v1/crm/{connection.id}/settings", headers=AUTH, json={})
            ).status_code == 200
            now_ms = int(rt.clock.now() * 1000)

            def body_of(event_id: int, name: str, value: Any) -> bytes:
                item = {
                    "eventId": event_id,
                    "subscriptionType": "contact.propertyChange",
                    "objectId": int(link["remote_contact"]),
                    "portalId": 62515,
                    "occurredAt": now_ms + 3_600_000,
                    "propertyName": name,
                    "propertyValue": value,
                }
                return json.dumps([item]).encode()

            url = "https://app.leadwarm.test/webhooks/integrations/hubspot"
            body = body_of(1, "email", "new.address@example.com")
            bad = hubspot_headers(url, body, now_ms, secret="not-the-secret")
            assert (
                await client.post("/webhooks/integrations/hubspot", content=body, headers=bad)
            ).status_code == 401
            stale = hubspot_headers(url, body, now_ms - 600_000)
            assert (
                await client.post("/webhooks/integrations/hubspot", content=body, headers=stale)
            ).status_code == 401
            ok = await client.post(
                "/webhooks/integrations/hubspot", content=body, headers=hubspot_headers(url, body, now_ms)
            )
            assert ok.status_code == 200, ok.text
            assert ok.json()["events"][0]["result"].startswith("updated")
            stored = await rt.store.get(TENANT, col.LEADS, lead.id)
            assert stored is not None and stored["email"] == "new.address@example.com"
            dnc = body_of(2, "hs_email_optout", "true")
            resp = await client.post(
                "/webhooks/integrations/hubspot", content=dnc, headers=hubspot_headers(url, dnc, now_ms)
            )
            assert resp.json()["events"][0]["kind"] == "contact.do_not_contact"
            assert await rt.optouts.is_opted_out(TENANT, "email", "new.address@example.com")
    finally:
        await fake.stop()


async def test_gohighlevel_ed25519_webhook_starts_a_playbook_on_a_chosen_tag(rt: Runtime) -> None:
    fake = await GoHighLevelFake().start()
    key = Ed25519PrivateKey.generate()
    public_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    try:
        connection = await connect(rt, "gohighlevel", fake)
        app = create_app(runtime=rt, start_worker=False)
        async with AsyncTestClient(app=app) as client:
            settings = {"options": {"ghl_ed25519_public_keys": [public_pem]}, "start_tags": ["warm-me"]}
            resp = await client.put(f"/api/v1/crm/{connection.id}/settings", headers=AUTH, json=settings)
            assert resp.status_code == 200, resp.text
            stamp = datetime.fromtimestamp(rt.clock.now(), UTC).isoformat()

            def event(webhook_id: str, tags: list[str]) -> bytes:
                body = {
                    "type": "ContactTagUpdate",
                    "locationId": LOCATION,
                    "id": "ghl-contact-1",
                    "firstName": "Noa",
                    "phone": "+33633334444",
                    "tags": tags,
                    "webhookId": webhook_id,
                    "timestamp": stamp,
                }
                return json.dumps(body).encode()

            def signed(body: bytes, signer: Ed25519PrivateKey = key) -> dict[str, str]:
                signature = base64.b64encode(signer.sign(body)).decode()
                return {"X-GHL-Signature": signature, "Content-Type": "application/json"}

            url = "/webhooks/integrations/gohighlevel"
            cold = event("wh-1", ["cold"])
            forged = signed(cold, Ed25519PrivateKey.generate())
            assert (await client.post(url, content=cold, headers=forged)).status_code == 401
            assert (
                await client.post(url, content=cold, headers={"Content-Type": "application/json"})
            ).status_code == 401
            ignored = await client.post(url, content=cold, headers=signed(cold))
            assert ignored.json()["events"][0]["result"] == "ignored: tag not in start_tags"
            warm = event("wh-2", ["cold", "warm-me"])
            started = await client.post(url, content=warm, headers=signed(warm))
            assert started.json()["events"][0]["result"].startswith("started cv_")
            again = await client.post(url, content=warm, headers=signed(warm))
            assert again.json()["events"][0]["result"] == "duplicate"
            leads = [d.data for d in await rt.store.query(TENANT, col.LEADS)]
            assert [(lead["name"], lead["phone"]) for lead in leads] == [("Noa", "+33633334444")]
    finally:
        await fake.stop()
