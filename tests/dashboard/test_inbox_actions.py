"""The conversation view's actions (take over, internal notes, hand back at a step) and the lead
page's API, over conversations the test runs through the worker, with a signed-in agent."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.crm.records import SyncLog
from app.store import collections as col
from tests.dashboard.conftest import AGENT, AUTH, lead_says, setup_tenant, sign_in, start_webchat_lead


async def _conversation(client: AsyncTestClient[Litestar], conversation_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/conversations/{conversation_id}", headers=AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_take_over_silences_the_bot_and_hand_back_resumes_at_the_chosen_step(
    runtime: Runtime, client: AsyncTestClient[Litestar]
) -> None:
    started = await start_webchat_lead(runtime, client, "Chloé Quiet")
    conv_id, webchat_id = started["conversation_id"], started["lead"]["webchat_id"]
    csrf = await sign_in(client, *AGENT)
    headers = {"X-CSRF-Token": csrf}

    taken = await client.post(f"/api/v1/conversations/{conv_id}/takeover", headers=headers)
    assert taken.status_code == 200, taken.text
    assert taken.json() == {"conversation_id": conv_id, "status": "handoff", "answered_by": AGENT[0]}
    handling = (await client.get(f"/api/v1/conversations/{conv_id}/handling")).json()
    assert handling["status"] == "handoff"
    assert handling["handoff"]["status"] == "answered" and handling["handoff"]["answered_by"] == AGENT[0]
    assert handling["resume_step"] == "budget"
    assert [s["id"] for s in handling["steps"]] == [
        "hello",
        "budget",
        "score-budget",
        "small",
        "human",
        "bye",
    ]
    # Taking over twice changes nothing.
    again = await client.post(f"/api/v1/conversations/{conv_id}/takeover", headers=headers)
    assert again.status_code == 200
    events = [e["type"] for e in (await _conversation(client, conv_id))["events"]]
    assert events.count("handoff.answered") == 1

    # The lead answers: the bot, which no longer has the conversation, says nothing.
    bot_before = [m for m in (await _conversation(client, conv_id))["messages"] if m["sender"] == "bot"]
    await lead_says(runtime, webchat_id, "5000")
    conv = await _conversation(client, conv_id)
    assert [m for m in conv["messages"] if m["sender"] == "bot"] == bot_before
    assert conv["messages"][-1]["text"] == "5000" and conv["status"] == "handoff"

    # Handed back at "budget": the bot asks the budget question again.
    back = await client.post(
        f"/api/v1/conversations/{conv_id}/handback",
        json={"step_id": "budget", "by": AGENT[0]},
        headers=headers,
    )
    assert back.status_code == 200, back.text
    await runtime.worker.drain()
    conv = await _conversation(client, conv_id)
    assert conv["status"] == "active" and conv["current_step"] == "budget"
    assert conv["messages"][-1]["sender"] == "bot"
    assert conv["messages"][-1]["text"] == "What is your budget?"


async def test_take_over_refuses_unknown_and_closed_conversations(
    runtime: Runtime, client: AsyncTestClient[Litestar]
) -> None:
    started = await start_webchat_lead(runtime, client, "Ben Small")
    await lead_says(runtime, started["lead"]["webchat_id"], "100")
    assert (await _conversation(client, started["conversation_id"]))["status"] == "closed"
    csrf = await sign_in(client, *AGENT)
    closed = await client.post(
        f"/api/v1/conversations/{started['conversation_id']}/takeover", headers={"X-CSRF-Token": csrf}
    )
    assert closed.status_code == 409
    unknown = await client.post("/api/v1/conversations/cv_nope/takeover", headers={"X-CSRF-Token": csrf})
    assert unknown.status_code == 404
    no_csrf = await client.post(f"/api/v1/conversations/{started['conversation_id']}/takeover")
    assert no_csrf.status_code == 403


async def test_notes_stay_with_the_team_and_are_never_sent(
    runtime: Runtime, client: AsyncTestClient[Litestar]
) -> None:
    started = await start_webchat_lead(runtime, client, "Ana Hot")
    conv_id = started["conversation_id"]
    await lead_says(runtime, started["lead"]["webchat_id"], "5000")
    before = await _conversation(client, conv_id)
    outbox_before = await runtime.store.query("demo", col.OUTBOX)
    csrf = await sign_in(client, *AGENT)

    added = await client.post(
        f"/api/v1/conversations/{conv_id}/notes",
        json={"text": "  Called her: wants a quote by Friday.  "},
        headers={"X-CSRF-Token": csrf},
    )
    assert added.status_code == 201, added.text
    note = added.json()
    assert note["author"] == AGENT[0] and note["text"] == "Called her: wants a quote by Friday."
    by_key = await client.post(
        f"/api/v1/conversations/{conv_id}/notes", json={"text": "From the CRM"}, headers=AUTH
    )
    assert by_key.json()["author"] == "admin-key"
    notes = (await client.get(f"/api/v1/conversations/{conv_id}/notes")).json()["notes"]
    assert [n["text"] for n in notes] == ["Called her: wants a quote by Friday.", "From the CRM"]
    await runtime.worker.drain()
    after = await _conversation(client, conv_id)
    assert after["messages"] == before["messages"]
    assert len(await runtime.store.query("demo", col.OUTBOX)) == len(outbox_before)

    for bad in ({"text": "   "}, {"text": ""}, {"text": "x" * 4001}, {}):
        response = await client.post(
            f"/api/v1/conversations/{conv_id}/notes", json=bad, headers={"X-CSRF-Token": csrf}
        )
        assert response.status_code == 400, bad
    assert (
        await client.post(f"/api/v1/conversations/{conv_id}/notes", json={"text": "x"})
    ).status_code == 403
    missing = await client.post("/api/v1/conversations/cv_nope/notes", json={"text": "x"}, headers=AUTH)
    assert missing.status_code == 404

    # Another tenant sees nothing of it.
    other_key = await setup_tenant(runtime, "other")
    other = await client.get(
        f"/api/v1/conversations/{conv_id}/notes", headers={"Authorization": f"Bearer {other_key}"}
    )
    assert other.status_code == 404


async def test_the_lead_overview_joins_timeline_score_history_bookings_and_crm(
    runtime: Runtime, client: AsyncTestClient[Litestar]
) -> None:
    started = await start_webchat_lead(runtime, client, "Ana Hot")
    conv_id, lead_id = started["conversation_id"], started["lead"]["id"]
    await lead_says(runtime, started["lead"]["webchat_id"], "5000")
    await client.post(f"/api/v1/conversations/{conv_id}/notes", json={"text": "VIP"}, headers=AUTH)
    now = runtime.clock.now()
    # A meeting and a CRM sync attempt, as app/booking and app/crm store them.
    await runtime.store.set(
        "demo",
        col.BOOKINGS,
        "bk1",
        {
            "id": "bk1",
            "conversation_id": conv_id,
            "lead_id": lead_id,
            "status": "confirmed",
            "title": "Solar visit",
            "start": now + 86400,
            "end": now + 88200,
            "provider": "builtin",
            "created_at": now + 1,
        },
    )
    log = SyncLog(
        id="sl1", connection_id="hubspot-1", lead_id=lead_id, provider="hubspot", status="ok", at=now + 2
    )
    await runtime.store.set("demo", col.CRM_SYNC_LOGS, log.id, log.to_doc())
    await runtime.store.set(
        "demo",
        col.CRM_LINKS,
        "hubspot-1:" + lead_id,
        {
            "id": "hubspot-1:" + lead_id,
            "connection_id": "hubspot-1",
            "lead_id": lead_id,
            "provider": "hubspot",
            "status": "synced",
            "synced_at": now + 2,
            "queued_at": now + 1,
        },
    )

    await sign_in(client, *AGENT)
    response = await client.get(f"/api/v1/leads/{lead_id}/overview")
    assert response.status_code == 200, response.text
    overview = response.json()
    assert overview["lead"]["name"] == "Ana Hot" and overview["slots"] == {"budget": 5000}
    assert overview["score"] >= 60
    history = overview["score_history"]
    budget = next(h for h in history if h["reason"] == "Big budget")
    assert budget["points"] == 60 and budget["step_id"] == "score-budget"
    assert history[-1]["score"] == overview["score"]
    assert sum(h["points"] for h in history) == overview["score"]
    kinds = [e["kind"] for e in overview["timeline"]]
    assert {"message", "handoff", "score", "note", "booking", "sync"} <= set(kinds)
    ats = [e["at"] for e in overview["timeline"]]
    assert ats == sorted(ats, reverse=True)
    texts = [e.get("text") for e in overview["timeline"] if e["kind"] == "message"]
    assert "5000" in texts and "What is your budget?" in texts
    assert any(e["kind"] == "handoff" and e["event"] == "handoff.requested" for e in overview["timeline"])
    assert [b["title"] for b in overview["bookings"]] == ["Solar visit"]
    [crm] = overview["crm"]
    assert crm["status"] == "synced" and crm["provider"] == "hubspot" and crm["logs"][0]["status"] == "ok"
    assert [c["id"] for c in overview["conversations"]] == [conv_id]

    assert (await client.get("/api/v1/leads/ld_nope/overview")).status_code == 404
    page = await client.get(f"/app/leads/{lead_id}")
    assert page.status_code == 200 and f'data-lead="{lead_id}"' in page.text


async def test_cached_analytics_follow_every_conversation_write(
    runtime: Runtime, client: AsyncTestClient[Litestar]
) -> None:
    """The analytics report is cached while nothing changed; any write shows at once (the manual
    clock does not move, so the writes all share one ``updated_at``)."""

    async def report() -> dict[str, Any]:
        data = (await client.get("/api/v1/analytics/playbooks", headers=AUTH)).json()
        found: dict[str, Any] = next(p for p in data["playbooks"] if p["playbook_id"] == "handoff-demo")
        return found

    first = await start_webchat_lead(runtime, client, "Ana Hot")
    assert (await report())["conversations"] == 1
    assert await report() == await report()
    await lead_says(runtime, first["lead"]["webchat_id"], "5000")
    after_answer = await report()
    assert after_answer["handoffs"] == 1 and after_answer["qualified"] == 1
    second = await start_webchat_lead(runtime, client, "Ben Small")
    assert (await report())["conversations"] == 2
    await lead_says(runtime, second["lead"]["webchat_id"], "100")
    funnel = {s["step_id"]: s["reached"] for s in (await report())["funnel"]}
    assert funnel == {"hello": 2, "budget": 2}
    taken = await client.post(f"/api/v1/conversations/{second['conversation_id']}/takeover", headers=AUTH)
    assert taken.status_code == 409  # closed: nothing changed
    third = await start_webchat_lead(runtime, client, "Chloé Quiet")
    await client.post(f"/api/v1/conversations/{third['conversation_id']}/takeover", headers=AUTH)
    final = await report()
    assert final["conversations"] == 3 and final["handoffs"] == 2


async def test_the_conversation_and_lead_pages_speak_french(
    runtime: Runtime, client: AsyncTestClient[Litestar]
) -> None:
    started = await start_webchat_lead(runtime, client, "Chloé Quiet")
    await sign_in(client, *AGENT)
    french = {"Accept-Language": "fr-FR,fr;q=0.9"}
    lead = await client.get(f"/app/leads/{started['lead']['id']}", headers=french)
    assert lead.status_code == 200
    assert '<html lang="fr">' in lead.text
    assert (
        "Chronologie" in lead.text
        and "Historique du score" in lead.text
        and "Synchronisation CRM" in lead.text
    )
    conv = await client.get(f"/app/conversations/{started['conversation_id']}", headers=french)
    assert "Prendre la main" in conv.text and "Notes internes" in conv.text
    assert "Reprendre le bot à l&#39;étape" in conv.text or "Reprendre le bot à l'étape" in conv.text
    english = await client.get(f"/app/conversations/{started['conversation_id']}")
    assert "Take over" in english.text and "Internal notes" in english.text
    # Signed out, the lead page sends to the sign-in form.
    client.cookies.clear()
    signed_out = await client.get(f"/app/leads/{started['lead']['id']}", follow_redirects=False)
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/app/signin")
