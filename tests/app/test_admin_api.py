"""The tenant admin API: Bearer keys, creating leads that start a playbook, reading conversations,
uploading playbooks with line-numbered errors."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from playbooks import load_library
from tests.app.conftest import ADMIN_KEY, INTRO_TEMPLATE, sent_texts
from tests.support.recording import RecordingServer

Client = AsyncTestClient[Litestar]
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def test_api_needs_a_known_bearer_key(client: Client) -> None:
    assert (await client.get("/api/v1/conversations")).status_code == 401
    wrong = await client.get("/api/v1/conversations", headers={"Authorization": "Bearer lw_nope"})
    assert wrong.status_code == 401
    assert "lw_nope" not in wrong.text
    assert (await client.get("/api/v1/conversations", headers=AUTH)).status_code == 200


async def test_keys_are_scoped_to_their_tenant(client: Client, runtime: Runtime) -> None:
    await runtime.tenants.add_api_key("other", "lw_other_key")
    await runtime.store.set("other", "conversations", "cv_x", {"id": "cv_x", "created_at": 1.0})
    mine = await client.get("/api/v1/conversations", headers=AUTH)
    theirs = await client.get("/api/v1/conversations", headers={"Authorization": "Bearer lw_other_key"})
    assert [c["id"] for c in theirs.json()["conversations"]] == ["cv_x"]
    assert "cv_x" not in [c["id"] for c in mine.json()["conversations"]]
    assert (await client.get("/api/v1/conversations/cv_x", headers=AUTH)).status_code == 404


async def test_create_lead_starts_the_playbook_on_whatsapp(
    client: Client, runtime: Runtime, graph: RecordingServer
) -> None:
    """A business-initiated WhatsApp conversation opens with the tenant's approved template: the
    24-hour window is closed, so the playbook's free text must not go out (Meta rejects it)."""
    profile = await runtime.tenants.profile("demo")
    await runtime.tenants.save_profile(
        profile.model_copy(update={"whatsapp_templates": {"default": INTRO_TEMPLATE}})
    )
    response = await client.post(
        "/api/v1/leads",
        headers=AUTH,
        json={
            "name": "Alex Martin",
            "phone": "06 12 34 56 78",
            "channel": "whatsapp",
            "language": "en",
            "timezone": "Europe/Paris",
            "consent": {"whatsapp": True},
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["lead"]["phone"] == "+33612345678"
    assert created["playbook_id"] == "solar-qualification-en"
    await runtime.worker.drain()
    assert sent_texts(graph, "33612345678") == []  # no free text outside the window
    [sent] = graph.requests
    assert sent.body["type"] == "template"
    assert sent.body["template"]["name"] == "lead_intro"
    assert sent.body["template"]["components"][0]["parameters"] == [{"type": "text", "text": "Alex"}]
    detail = (await client.get(f"/api/v1/conversations/{created['conversation_id']}", headers=AUTH)).json()
    assert detail["current_step"] is None  # the playbook starts when the lead answers the template
    statuses = [(m["status"], (m.get("decision") or {}).get("reason")) for m in detail["messages"]]
    assert statuses == [("sent", "outside_customer_service_window")]
    again = await client.post(
        "/api/v1/leads", headers=AUTH, json={"phone": "+33612345678", "channel": "whatsapp"}
    )
    assert again.status_code == 409
    assert again.json()["conversation_id"] == created["conversation_id"]


async def test_whatsapp_first_touch_without_template_is_refused_with_reason(
    client: Client, runtime: Runtime, graph: RecordingServer
) -> None:
    """Outside the 24-hour window, without an approved template or a fallback channel, nothing can
    reach the lead: 422 says what is missing, rather than a 201 that sends nothing."""
    response = await client.post(
        "/api/v1/leads", headers=AUTH, json={"name": "Noa", "phone": "+33698765432", "channel": "whatsapp"}
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "outside_customer_service_window_no_template"
    assert any("whatsapp_templates" in m for m in body["missing"])
    await runtime.worker.drain()
    assert graph.requests == []
    assert await runtime.conversations.find_lead("demo", "whatsapp", "+33698765432") is None


async def test_create_lead_rejects_bad_input_with_reasons(client: Client) -> None:
    cases = [
        ({"phone": "12", "channel": "whatsapp"}, "phone"),
        ({"email": "not-an-email", "channel": "whatsapp", "phone": "+33612345678"}, "email"),
        ({"phone": "+33612345678", "timezone": "Mars/Olympus"}, "time zone"),
        ({"phone": "+33612345678", "channel": "pigeon"}, "unknown channel"),
        ({"email": "a@b.co", "channel": "whatsapp"}, "needs the lead's phone"),
        ({"phone": "+33612345678", "playbook_id": "nope"}, "not found"),
    ]
    for body, reason in cases:
        response = await client.post("/api/v1/leads", headers=AUTH, json=body)
        assert response.status_code == 400, body
        assert reason in response.text, (body, response.text)


async def test_conversation_detail_shows_slots_score_and_reasons(client: Client, runtime: Runtime) -> None:
    profile = await runtime.tenants.profile("demo")
    await runtime.tenants.save_profile(
        profile.model_copy(update={"whatsapp_templates": {"default": INTRO_TEMPLATE}})
    )
    created = (
        await client.post(
            "/api/v1/leads",
            headers=AUTH,
            json={"name": "Sam", "phone": "+447911123456", "channel": "whatsapp"},
        )
    ).json()
    await runtime.worker.drain()
    from tests.app.conftest import sign, text_webhook

    body = text_webhook("Hi, yes", wamid="wamid.API0", sender="447911123456")
    await client.post("/api/webhooks/whatsapp", content=body, headers=sign(body))
    await runtime.worker.drain()  # the answer to the template starts the playbook
    body = text_webhook("yes", wamid="wamid.API1", sender="447911123456")
    await client.post("/api/webhooks/whatsapp", content=body, headers=sign(body))
    await runtime.worker.drain()
    detail = (await client.get(f"/api/v1/conversations/{created['conversation_id']}", headers=AUTH)).json()
    assert detail["slots"]["homeowner"] is True
    assert detail["score"] > 0
    assert any(r["reason"] == "Owns the home" for r in detail["score_reasons"])
    assert detail["current_step"] == "bill"
    listed = (await client.get("/api/v1/conversations", headers=AUTH, params={"channel": "whatsapp"})).json()
    assert created["conversation_id"] in [c["id"] for c in listed["conversations"]]


async def test_upload_playbook_reports_line_numbers(client: Client) -> None:
    bad = "id: broken\nname: Broken\nversion: 1\nsteps:\n  - id: a\n    type: ask\n    slot: x\n    kind: colour\n"
    response = await client.post("/api/v1/playbooks", headers=AUTH, content=bad.encode())
    assert response.status_code == 400
    issues = response.json()["issues"]
    assert any(i["line"] == 8 and "kind" in i["message"] for i in issues), issues
    good = (load_library_source()).replace("id: solar-qualification-en", "id: my-copy", 1)
    response = await client.post("/api/v1/playbooks", headers=AUTH, content=good.encode())
    assert response.status_code == 201, response.text
    listed = (await client.get("/api/v1/playbooks", headers=AUTH)).json()["playbooks"]
    assert "my-copy" in {p["id"] for p in listed}


def load_library_source() -> str:
    from playbooks import LIBRARY_DIR

    assert "solar-qualification-en" in load_library()
    return (LIBRARY_DIR / "solar-qualification-en.yaml").read_text(encoding="utf-8")
