"""POST /api/v1/leads on WhatsApp for a lead outside the 24-hour window: the opening template goes
out (accepted by Prism running Meta's OpenAPI description), and the lead's answer starts the playbook
from its first question; without a template the API answers 422 with what is missing, or falls back
to another channel the lead has."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.conversations.records import Message
from app.main import create_app
from app.store import Order
from app.store import collections as col
from app.tenancy.bootstrap import bootstrap
from channels.base import InboundMessage
from playbooks import LIBRARY_DIR, load_library
from tests.app.conftest import INTRO_TEMPLATE, PHONE_ID, make_settings, no_quiet_hours
from tests.app.handoff.conftest import AUTH, World
from tests.support.prism import PrismServer, start_prism
from tests.support.recording import Reply
from tests.support.specs import SPECS_DIR

Client = AsyncTestClient[Litestar]
WHATSAPP_SPEC = SPECS_DIR / "whatsapp" / "business-messaging-api_v23.0.yaml"
EN = load_library()["solar-qualification-en"]
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def meta() -> Iterator[PrismServer]:
    server = start_prism(WHATSAPP_SPEC)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def prism_client(tmp_path: Path, meta: PrismServer) -> AsyncIterator[tuple[Client, Runtime]]:
    rt = Runtime.build(make_settings(tmp_path / "data", meta.base_url))
    await bootstrap(rt)
    await no_quiet_hours(rt)
    app = create_app(runtime=rt, start_worker=False)
    async with AsyncTestClient(app=app) as client:
        yield client, rt
    await rt.channels.aclose()
    await rt.store.close()


async def messages(rt: Runtime, conversation_id: str) -> list[Message]:
    docs = await rt.store.query("demo", col.messages_collection(conversation_id), order_by=[Order("seq")])
    return [Message.from_doc(d.data) for d in docs]


async def lead_answers(rt: Runtime, text: str, sender: str = "+33612345678") -> None:
    message = InboundMessage(
        channel="whatsapp",
        provider_message_id=f"wamid.OPEN{next(_ids)}",
        sender=sender,
        recipient=PHONE_ID,
        text=text,
        timestamp=rt.clock.now(),
    )
    assert await rt.accept("demo", message)
    await rt.worker.drain()


@pytest.mark.parametrize("answer", ["Oui, bonjour", "yes", "Hi! What is this about?"])
async def test_template_accepted_by_meta_spec_then_the_playbook_starts_on_the_answer(
    prism_client: tuple[Client, Runtime], answer: str
) -> None:
    client, rt = prism_client
    r = await client.put(
        "/api/v1/settings", json={"whatsapp_templates": {"default": INTRO_TEMPLATE}}, headers=AUTH
    )
    assert r.status_code == 200
    r = await client.post(
        "/api/v1/leads",
        json={"name": "Alex Martin", "phone": "06 12 34 56 78", "channel": "whatsapp", "language": "en"},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["opening"], created["template"]) == ("template", "lead_intro")
    await rt.worker.drain()
    [opening] = await messages(rt, created["conversation_id"])
    assert opening.status == "sent", opening  # Prism answered 200: the request fits Meta's spec
    assert (opening.decision or {}).get("reason") == "outside_customer_service_window"
    assert opening.provider_message_id

    await lead_answers(rt, answer)
    after = await messages(rt, created["conversation_id"])
    bot = [m for m in after[2:] if m.direction == "outbound"]
    first_ask = next(s for s in EN.steps if s.type == "ask")
    assert [m.purpose for m in bot][-1] == "step" and bot[-1].step_id == first_ask.id
    assert all(m.purpose != "reask" for m in after)
    assert all(m.status == "sent" for m in bot), [
        (m.status, m.decision) for m in bot
    ]  # free text, window open
    assert "Alex" in bot[0].text and bot[0].step_id == EN.steps[0].id  # the greeting, in their language


async def test_the_playbook_step_template_wins_over_the_tenant_default(world: World) -> None:
    w = world
    source = (LIBRARY_DIR / "solar-qualification-en.yaml").read_text(encoding="utf-8")
    source = source.replace("id: solar-qualification-en", "id: solar-tpl", 1).replace(
        "  - id: greeting\n    type: message\n",
        "  - id: greeting\n    type: message\n    whatsapp_template: {name: solar_hello, language: en, parameters: ['{{ lead.first_name }}']}\n",
        1,
    )
    assert (
        await w.client.post("/api/v1/playbooks", content=source.encode(), headers=AUTH)
    ).status_code == 201
    await w.client.put(
        "/api/v1/settings", json={"whatsapp_templates": {"default": INTRO_TEMPLATE}}, headers=AUTH
    )
    r = await w.client.post(
        "/api/v1/leads",
        json={
            "name": "Jo Smith",
            "phone": "+447911123456",
            "channel": "whatsapp",
            "playbook_id": "solar-tpl",
        },
        headers=AUTH,
    )
    assert r.status_code == 201 and r.json()["template"] == "solar_hello"
    await w.runtime.worker.drain()
    [sent] = [q.body for q in w.graph.requests]
    assert sent["type"] == "template" and sent["template"]["name"] == "solar_hello"
    assert sent["template"]["components"][0]["parameters"] == [{"type": "text", "text": "Jo"}]


async def test_without_template_422_or_a_fallback_channel_the_lead_has(world: World) -> None:
    w = world
    r = await w.client.post(
        "/api/v1/leads", json={"phone": "+447911123456", "channel": "whatsapp"}, headers=AUTH
    )
    assert r.status_code == 422
    assert r.json()["error"] == "outside_customer_service_window_no_template"
    assert w.graph.requests == [] and w.twilio.requests == []

    await w.client.put("/api/v1/settings", json={"fallback_channels": ["sms"]}, headers=AUTH)
    r = await w.client.post(
        "/api/v1/leads", json={"phone": "+447911123456", "channel": "whatsapp", "name": "Jo"}, headers=AUTH
    )
    assert r.status_code == 201, r.text
    assert (r.json()["channel"], r.json()["opening"], r.json()["rerouted_from"]) == (
        "sms",
        "playbook",
        "whatsapp",
    )
    await w.runtime.worker.drain()
    assert w.graph.requests == []
    assert w.twilio.requests[0].form["To"] == "+447911123456"
    assert w.twilio.requests[0].form["Body"].startswith("Hi Jo!")


async def test_opted_out_lead_is_refused(world: World) -> None:
    w = world
    await w.runtime.optouts.record("demo", channel="whatsapp", address="+447911123456", source="test")
    await w.client.put(
        "/api/v1/settings", json={"whatsapp_templates": {"default": INTRO_TEMPLATE}}, headers=AUTH
    )
    r = await w.client.post(
        "/api/v1/leads", json={"phone": "+447911123456", "channel": "whatsapp"}, headers=AUTH
    )
    assert r.status_code == 422 and r.json()["error"] == "opted_out"


async def test_templates_are_listed_from_meta_under_prism(prism_client: tuple[Client, Runtime]) -> None:
    client, _ = prism_client
    r = await client.get(
        "/api/v1/settings/whatsapp-templates?business_account_id=102290129340398", headers=AUTH
    )
    assert r.status_code == 200, r.text  # Prism accepted the request and answered the spec's example
    body = r.json()
    assert body["templates"] and all({"name", "language", "status"} <= set(t) for t in body["templates"])
    assert isinstance(body["approved"], list)
    r = await client.get("/api/v1/settings/whatsapp-templates", headers=AUTH)
    assert r.status_code == 422 and "WHATSAPP_BUSINESS_ID" in r.json()["error"]


async def test_templates_listing_reads_every_page(world: World) -> None:
    w = world
    page2 = f"{w.graph.base_url}/v23.0/102290129340398/message_templates?after=CURSOR"
    w.graph.replies.extend(
        [
            Reply(
                200,
                {
                    "data": [
                        {
                            "name": "lead_intro",
                            "language": "fr",
                            "status": "APPROVED",
                            "category": "MARKETING",
                            "components": [{"type": "BODY", "text": "Bonjour {{1}}, votre projet {{2}} ?"}],
                        }
                    ],
                    "paging": {"cursors": {"after": "CURSOR"}, "next": page2},
                },
            ),
            Reply(
                200, {"data": [{"name": "old_promo", "language": "en", "status": "REJECTED"}], "paging": {}}
            ),
        ]
    )
    r = await w.client.get(
        "/api/v1/settings/whatsapp-templates?business_account_id=102290129340398", headers=AUTH
    )
    assert r.status_code == 200, r.text
    assert r.json()["approved"] == ["lead_intro"]
    assert r.json()["templates"][0]["body_parameters"] == 2
    first, second = w.graph.requests
    assert first.path.startswith("/v23.0/102290129340398/message_templates?")
    assert first.headers["authorization"] == "Bearer test-token"
    assert second.path == "/v23.0/102290129340398/message_templates?after=CURSOR"
