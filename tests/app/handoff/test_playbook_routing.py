"""Playbook routing rules and immutable versions, through the API: an uploaded playbook, routed by
a rule, receives the next matching inbound lead; a re-upload of the same version gets 409; a new
version is a draft until activated, and conversations under way keep their version."""

from __future__ import annotations

import itertools
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.conversations.records import Conversation
from app.store import collections as col
from app.store import where
from channels.base import InboundMessage
from tests.app.conftest import ADMIN_KEY, PHONE_ID, sent_texts

Client = AsyncTestClient[Litestar]
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def promo(version: int, greeting: str) -> str:
    return f"""\
id: spring-promo
name: Spring promotion
version: {version}
language: fr
triggers: [inbound_unknown_lead, lead_created]
steps:
  - id: hello
    type: message
    text: "{greeting}"
  - id: owner
    type: ask
    slot: owner
    kind: yes_no
    question: "Êtes-vous propriétaire ?"
  - id: done
    type: end
    outcome: qualified
    message: "Merci !"
"""


_ids = itertools.count(1)


async def lead_writes(runtime: Runtime, sender: str, text: str, **metadata: Any) -> Conversation:
    message = InboundMessage(
        channel="whatsapp",
        provider_message_id=f"wamid.{next(_ids)}",
        sender=sender,
        recipient=PHONE_ID,
        text=text,
        timestamp=runtime.clock.now(),
        metadata=metadata,
    )
    assert await runtime.accept("demo", message)
    await runtime.worker.drain()
    docs = await runtime.store.query("demo", col.CONVERSATIONS, filters=[where("address", "==", sender)])
    return Conversation.from_doc(docs[0].data)


async def test_routed_upload_gets_the_next_matching_lead_and_versions_are_immutable(
    client: Client, runtime: Runtime, graph: Any
) -> None:
    r = await client.post(
        "/api/v1/playbooks", headers=AUTH, content=promo(1, "Bienvenue, offre de printemps !").encode()
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "active"
    again = await client.post("/api/v1/playbooks", headers=AUTH, content=promo(1, "Autre texte").encode())
    assert again.status_code == 409 and "immutable" in again.json()["error"]

    routes = {
        "rules": [
            {
                "name": "promo keyword on WhatsApp",
                "playbook_id": "spring-promo",
                "channels": ["whatsapp"],
                "keywords": ["printemps", "promo"],
            },
            {
                "name": "spring ads",
                "playbook_id": "spring-promo",
                "referral": True,
                "utm": {"utm_campaign": "spring"},
            },
        ]
    }
    r = await client.put("/api/v1/playbook-routes", json=routes, headers=AUTH)
    assert r.status_code == 200, r.text
    assert (await client.get("/api/v1/playbook-routes", headers=AUTH)).json()["rules"][0]["keywords"] == [
        "printemps",
        "promo",
    ]

    # keyword (case and accents ignored) -> the uploaded playbook
    conv = await lead_writes(runtime, "+33611111111", "Bonjour, je viens pour la PROMO de Printemps")
    assert (conv.playbook_id, conv.playbook_version) == ("spring-promo", 1)
    assert sent_texts(graph, "33611111111")[:2] == [  # French spacing: narrow no-break spaces
        "Bienvenue, offre de printemps\u202f!",
        "Êtes-vous propriétaire\u202f?",
    ]
    # no rule matches -> the language fallback (playbooks_by_language)
    other = await lead_writes(runtime, "+33622222222", "Bonjour, des panneaux solaires ?")
    assert other.playbook_id == (await runtime.tenants.profile("demo")).playbooks_by_language["fr"]
    # a click-to-WhatsApp ad whose URL carries the campaign
    referral = {
        "source_url": "https://fb.me/x?utm_source=fb&utm_campaign=spring",
        "source_id": "120",
        "source_type": "ad",
    }
    ad = await lead_writes(runtime, "+33633333333", "Hello", referral=referral)
    assert ad.playbook_id == "spring-promo"

    # v2 is a draft: new leads still get v1
    r = await client.post("/api/v1/playbooks", headers=AUTH, content=promo(2, "Version deux !").encode())
    assert r.status_code == 201 and r.json()["status"] == "draft"
    v1_lead = await lead_writes(runtime, "+33644444444", "promo ?")
    assert v1_lead.playbook_version == 1
    r = await client.post("/api/v1/playbooks/spring-promo/versions/2/activate", headers=AUTH)
    assert r.status_code == 200 and r.json()["status"] == "active"
    listed = {
        (p["id"], p["version"]): p["status"]
        for p in (await client.get("/api/v1/playbooks", headers=AUTH)).json()["playbooks"]
    }
    assert listed[("spring-promo", 1)] == "retired" and listed[("spring-promo", 2)] == "active"
    v2_lead = await lead_writes(runtime, "+33655555555", "promo !")
    assert v2_lead.playbook_version == 2
    assert sent_texts(graph, "33655555555")[0] == "Version deux\u202f!"
    # the conversation under way stays on v1 and finishes there
    done = await lead_writes(runtime, "+33644444444", "oui")
    assert (done.playbook_version, done.status) == (1, "closed")
    assert sent_texts(graph, "33644444444")[-1] == "Merci\u202f!"

    assert (
        await client.post("/api/v1/playbooks/spring-promo/versions/9/activate", headers=AUTH)
    ).status_code == 404
    trail = [r["action"] for r in (await client.get("/api/v1/audit", headers=AUTH)).json()]
    assert (
        trail.count("playbook.uploaded") == 2
        and "playbook.activated" in trail
        and "playbook_routes.updated" in trail
    )


async def test_routes_are_validated(client: Client) -> None:
    r = await client.put("/api/v1/playbook-routes", json={"rules": [{"playbook_id": "ghost"}]}, headers=AUTH)
    assert r.status_code == 400
    assert r.json()["errors"] == [{"field": "rules.0.playbook_id", "reason": "no playbook 'ghost'"}]
    r = await client.put(
        "/api/v1/playbook-routes",
        json={"rules": [{"playbook_id": "x", "utm": {"campaign": "a"}}]},
        headers=AUTH,
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "rules.0.utm"
    r = await client.put("/api/v1/playbook-routes", json={"rules": [], "extra": 1}, headers=AUTH)
    assert r.status_code == 400


async def test_api_lead_routed_by_source(client: Client, runtime: Runtime) -> None:
    await client.post("/api/v1/playbooks", headers=AUTH, content=promo(1, "Bienvenue !").encode())
    rules = {"rules": [{"playbook_id": "spring-promo", "trigger": "lead_created", "source": "salon-2026"}]}
    assert (await client.put("/api/v1/playbook-routes", json=rules, headers=AUTH)).status_code == 200
    body = {"name": "Léa", "phone": "+33 6 77 77 77 77", "channel": "sms", "source": "salon-2026"}
    r = await client.post("/api/v1/leads", json=body, headers=AUTH)
    assert r.status_code == 201, r.text
    data = await runtime.store.get("demo", col.CONVERSATIONS, r.json()["conversation_id"])
    assert data is not None and data["playbook_id"] == "spring-promo"
    body = {"name": "Paul", "phone": "+33 6 88 88 88 88", "channel": "sms", "source": "api"}
    r = await client.post("/api/v1/leads", json=body, headers=AUTH)
    data = await runtime.store.get("demo", col.CONVERSATIONS, r.json()["conversation_id"])
    assert data is not None and data["playbook_id"] != "spring-promo"
