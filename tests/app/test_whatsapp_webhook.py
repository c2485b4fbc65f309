"""Meta's WhatsApp webhooks, end to end: signed deliveries drive a conversation through the shipped
playbook; bad signatures, bad tokens and malformed bodies are refused; redeliveries reply once."""

from __future__ import annotations

import json
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.conversations.typography import french_spacing
from app.store import where
from playbooks import load_library
from tests.app.conftest import PHONE_ID, VERIFY_TOKEN, sent_texts, sign, text_webhook
from tests.channels.conftest import fixture_bytes
from tests.support.recording import RecordingServer

Client = AsyncTestClient[Litestar]
EN = load_library()["solar-qualification-en"]


def _step_text(playbook: Any, step_id: str, field: str, language: str = "en") -> str:
    step = next(s for s in playbook.steps if s.id == step_id)
    value = getattr(step, field)
    return value if isinstance(value, str) else value[language]


async def _conversations(runtime: Runtime) -> list[dict[str, Any]]:
    return [d.data for d in await runtime.store.query("demo", "conversations")]


async def test_subscription_handshake(client: Client) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    ok = await client.get("/api/webhooks/whatsapp", params=params)
    assert (ok.status_code, ok.text) == (200, "1158201444")
    bad = await client.get("/api/webhooks/whatsapp", params={**params, "hub.verify_token": "nope"})
    assert bad.status_code == 403
    assert "1158201444" not in bad.text


async def test_text_from_unknown_lead_starts_the_playbook(
    client: Client, runtime: Runtime, graph: RecordingServer
) -> None:
    body = text_webhook("Hi, I'd like a quote for solar panels", wamid="wamid.A1")
    response = await client.post("/api/webhooks/whatsapp", content=body, headers=sign(body))
    assert response.status_code == 200
    assert graph.requests == []  # nothing is sent before the worker runs: the webhook only stores
    await runtime.worker.drain()
    texts = sent_texts(graph)
    assert texts[0].startswith("Hi Camille!")
    assert texts[-1] == _step_text(EN, "homeowner", "question")
    assert all(r.path == f"/v23.0/{PHONE_ID}/messages" for r in graph.requests)
    assert graph.requests[0].headers["authorization"] == "Bearer test-token"
    [conv] = await _conversations(runtime)
    assert (conv["channel"], conv["status"], conv["current_step"]) == ("whatsapp", "active", "homeowner")
    lead = await runtime.store.get("demo", "leads", conv["lead_id"])
    assert lead is not None and (lead["phone"], lead["name"], lead["language"]) == (
        "+33612345678",
        "Camille",
        "en",
    )


async def test_same_delivery_three_times_yields_one_reply(
    client: Client, runtime: Runtime, graph: RecordingServer
) -> None:
    body = text_webhook("Hello, I want solar panels", wamid="wamid.DUP")
    for _ in range(3):
        assert (
            await client.post("/api/webhooks/whatsapp", content=body, headers=sign(body))
        ).status_code == 200
        await runtime.worker.drain()
    once = len(sent_texts(graph))
    assert once == 2  # greeting + first question, exactly once
    inbox = await runtime.store.query("demo", "inbox")
    assert len(inbox) == 1
    [conv] = await _conversations(runtime)
    assert conv["message_count"] == 3  # the lead's message and two replies


async def test_bad_signatures_are_refused_and_nothing_is_stored(client: Client, runtime: Runtime) -> None:
    body = text_webhook("hi", wamid="wamid.SIG")
    wrong = await client.post("/api/webhooks/whatsapp", content=body, headers=sign(body, secret="other"))
    missing = await client.post(
        "/api/webhooks/whatsapp", content=body, headers={"Content-Type": "application/json"}
    )
    tampered = await client.post(
        "/api/webhooks/whatsapp", content=body.replace(b"hi", b"yo"), headers=sign(body)
    )
    assert [r.status_code for r in (wrong, missing, tampered)] == [401, 401, 401]
    assert await runtime.store.query("demo", "inbox") == []


async def test_malformed_json_with_valid_signature_is_quarantined_with_reason(
    client: Client, runtime: Runtime
) -> None:
    body = b'{"object": "whatsapp_business_account", "entry": [ '
    first = await client.post("/api/webhooks/whatsapp", content=body, headers=sign(body))
    assert first.status_code == 200  # Meta redelivers anything else for days
    assert first.json()["reason"]
    wrong_shape = json.dumps({"object": "page", "entry": []}).encode()
    response = await client.post("/api/webhooks/whatsapp", content=wrong_shape, headers=sign(wrong_shape))
    assert response.status_code == 200
    again = await client.post("/api/webhooks/whatsapp", content=body, headers=sign(body))
    assert again.json()["quarantined"] == first.json()["quarantined"]  # a redelivery: one document
    kept = await runtime.store.query("demo", "quarantine")
    assert sorted(d.data["body"].encode() for d in kept) == sorted([body, wrong_shape])
    assert all(d.data["reason"] and d.data["size"] for d in kept)
    await runtime.ingest.consume("demo")
    assert await runtime.store.query("demo", "inbox") == []


async def test_every_documented_message_type_is_accepted(
    client: Client, runtime: Runtime, graph: RecordingServer
) -> None:
    names = [
        "text",
        "text_with_context",
        "interactive_button_reply",
        "interactive_list_reply",
        "button",
        "image",
        "location",
        "contacts",
        "reaction",
        "unsupported",
        "order",
        "system",
    ]
    for name in names:
        payload = json.loads(fixture_bytes(name))
        for message in payload["entry"][0]["changes"][0]["value"]["messages"]:
            message["id"] = f"wamid.fixture.{name}"  # Meta's examples reuse one id across types
        body = json.dumps(payload).encode()
        response = await client.post("/api/webhooks/whatsapp", content=body, headers=sign(body))
        assert response.status_code == 200, name
    await runtime.worker.drain()
    processed = await runtime.store.query("demo", "inbox", filters=[where("status", "==", "processed")])
    assert sorted(d.id.removeprefix("whatsapp:wamid.fixture.") for d in processed) == sorted(names)
    assert await runtime.jobs.dead_letters("demo") == []
    recorded = 0
    for conv in await _conversations(runtime):
        recorded += len(
            await runtime.store.query(
                "demo", f"conversations/{conv['id']}/messages", filters=[where("direction", "==", "inbound")]
            )
        )
    assert recorded == len(names)


async def test_media_without_text_gets_a_polite_answer_and_reaction_gets_none(
    client: Client, runtime: Runtime, graph: RecordingServer
) -> None:
    first = text_webhook("Hello, solar panels please", wamid="wamid.M1", sender="33600000001")
    await client.post("/api/webhooks/whatsapp", content=first, headers=sign(first))
    await runtime.worker.drain()
    before = len(sent_texts(graph, "33600000001"))
    image = json.loads(first)
    image["entry"][0]["changes"][0]["value"]["messages"][0] = {
        "from": "33600000001",
        "id": "wamid.M2",
        "timestamp": "1763000001",
        "type": "image",
        "image": {"mime_type": "image/jpeg", "sha256": "abc", "id": "media-1"},
    }
    raw = json.dumps(image).encode()
    await client.post("/api/webhooks/whatsapp", content=raw, headers=sign(raw))
    await runtime.worker.drain()
    after_image = sent_texts(graph, "33600000001")
    assert len(after_image) == before + 1
    assert "text" in after_image[-1].lower() or "écri" in after_image[-1].lower()
    reaction = json.loads(first)
    reaction["entry"][0]["changes"][0]["value"]["messages"][0] = {
        "from": "33600000001",
        "id": "wamid.M3",
        "timestamp": "1763000002",
        "type": "reaction",
        "reaction": {"message_id": "wamid.X", "emoji": "👍"},
    }
    raw = json.dumps(reaction).encode()
    await client.post("/api/webhooks/whatsapp", content=raw, headers=sign(raw))
    await runtime.worker.drain()
    assert len(sent_texts(graph, "33600000001")) == len(after_image)
    [conv] = await _conversations(runtime)
    assert conv["current_step"] == "homeowner"  # neither advanced the playbook


async def test_french_lead_gets_french_answers(
    client: Client, runtime: Runtime, graph: RecordingServer
) -> None:
    body = text_webhook(
        "Bonjour, je voudrais un devis pour isoler ma maison",
        wamid="wamid.FR1",
        sender="33700000002",
        name="Jeanne",
    )
    await client.post("/api/webhooks/whatsapp", content=body, headers=sign(body))
    await runtime.worker.drain()
    [conv] = await _conversations(runtime)
    assert conv["playbook_id"] == "renovation-qualification-fr"
    fr = load_library()["renovation-qualification-fr"]
    texts = sent_texts(graph, "33700000002")
    first_ask = next(s for s in fr.steps if s.type == "ask")
    question = first_ask.question if isinstance(first_ask.question, str) else first_ask.question["fr"]
    assert texts[-1] == french_spacing(question)  # "… travaux\u202f?"
    lead = await runtime.store.get("demo", "leads", conv["lead_id"])
    assert lead is not None and lead["language"] == "fr"


async def test_delivery_statuses_update_the_message(
    client: Client, runtime: Runtime, graph: RecordingServer
) -> None:
    body = text_webhook("Hi, solar please", wamid="wamid.S1")
    await client.post("/api/webhooks/whatsapp", content=body, headers=sign(body))
    await runtime.worker.drain()
    status_body = json.loads(fixture_bytes("status_read"))
    value = status_body["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = PHONE_ID
    value["statuses"][0]["id"] = "wamid.REC"  # the id the recording Graph API returned
    raw = json.dumps(status_body).encode()
    assert (await client.post("/api/webhooks/whatsapp", content=raw, headers=sign(raw))).status_code == 200
    await runtime.worker.drain()
    [conv] = await _conversations(runtime)
    messages = await runtime.store.query(
        "demo", f"conversations/{conv['id']}/messages", filters=[where("direction", "==", "outbound")]
    )
    statuses = {m.data["status"] for m in messages}
    assert "read" in statuses
    assert all("sent" in m.data["status_at"] for m in messages)
