"""Triggers: a real conversation that qualifies a lead syncs it (events emitted by the turn, in its
transaction); per-integration events, direction, hourly batches and the review queue."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.crm.records import Link, link_id
from app.main import create_app
from app.store import collections as col
from channels.base import InboundMessage
from kernel.clock import ManualClock
from tests.app.conftest import ADMIN_KEY
from tests.crm.conftest import TENANT, connect, crm_of, qualified_lead, run_until_idle
from tests.crm.helpers import OPTIONS, counts
from tests.crm_sync.fakes import GoHighLevelFake, HubSpotFake

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
SESSION = "wc_crm_session_1"


async def say(rt: Runtime, n: int, text: str) -> None:
    message = InboundMessage(
        channel="webchat", provider_message_id=f"{SESSION}:{n}", sender=SESSION, recipient="demo", text=text
    )
    assert await rt.accept(TENANT, message)
    await run_until_idle(rt)


async def test_a_conversation_that_qualifies_the_lead_syncs_it(rt: Runtime) -> None:
    fake = await HubSpotFake().start()
    try:
        connection = await connect(rt, "hubspot", fake)
        await crm_of(rt).save_integration(
            TENANT, crm_of(rt).integration_defaults(connection.id, options=OPTIONS["hubspot"])
        )
        for n, text in enumerate(
            ["Hi, I'm interested in solar panels", "yes", "200", "tiles", "as soon as possible"]
        ):
            await say(rt, n, text)
        # qualified, but a web-chat lead has given no way to reach them yet: nothing written
        assert counts("hubspot", fake) == (0, 0, 0)
        logs = await rt.store.query(TENANT, col.CRM_SYNC_LOGS)
        # the roof answer qualified the lead (60), the timeline answer updated it
        assert [d.data["error"] for d in logs] == ["no email or phone yet"] * 2
        await say(rt, 5, "75001")
        await say(rt, 6, "camille.durand@example.com")
        assert counts("hubspot", fake) == (1, 1, 1)
        contact = next(iter(fake.objects["contacts"].values()))["properties"]
        assert contact["email"] == "camille.durand@example.com"
        lead_docs = await rt.store.query(TENANT, col.LEADS)
        assert [d.data["email"] for d in lead_docs] == [
            "camille.durand@example.com"
        ]  # filled from the answer
        note = next(iter(fake.objects["notes"].values()))["properties"]["hs_note_body"]
        assert f"{lead_docs[0].data['score']}/100" in note and "Owns the home" in note
        # a later change (a meeting booked through the playbook's book step) updates the same records
        await say(rt, 7, "1")
        assert counts("hubspot", fake) == (1, 1, 1)
        link = Link.from_doc(
            await rt.store.get(TENANT, col.CRM_LINKS, link_id(connection.id, lead_docs[0].id)) or {}
        )
        assert link.writes == 2 and link.status == "synced"
    finally:
        await fake.stop()


async def test_events_direction_batches_and_review(rt: Runtime) -> None:
    hubspot = await HubSpotFake().start()
    ghl = await GoHighLevelFake().start()
    clock = rt.clock
    assert isinstance(clock, ManualClock)
    try:
        reviewed = await connect(rt, "hubspot", hubspot)
        hourly = await connect(rt, "gohighlevel", ghl)
        app = create_app(runtime=rt, start_worker=False)
        async with AsyncTestClient(app=app) as client:

            async def put(connection_id: str, body: dict[str, Any]) -> Any:
                return await client.put(f"/api/v1/crm/{connection_id}/settings", headers=AUTH, json=body)

            assert (await put(reviewed.id, {"events": ["lead.won"]})).status_code == 400
            assert (await put(reviewed.id, {"direction": "sideways"})).status_code == 400
            assert (
                await put(reviewed.id, {"mapping": [{"source": "email", "target": "x", "transform": "?"}]})
            ).status_code == 400
            assert (
                await put(reviewed.id, {"review": True, "options": OPTIONS["hubspot"]})
            ).status_code == 200
            assert (
                await put(hourly.id, {"frequency": "hourly", "options": OPTIONS["gohighlevel"]})
            ).status_code == 200
            listed = (await client.get("/api/v1/crm/integrations", headers=AUTH)).json()["integrations"]
            assert {i["connection"]["id"]: i["settings"]["frequency"] for i in listed} == {
                reviewed.id: "realtime",
                hourly.id: "hourly",
            }

            first, second = await qualified_lead(rt, 1), await qualified_lead(rt, 2)
            await run_until_idle(rt, horizon_s=60)
            assert counts("hubspot", hubspot) == (0, 0, 0)  # held for review
            assert counts("gohighlevel", ghl) == (0, 0, 0)  # waiting for the hourly batch
            reviews = (await client.get("/api/v1/crm/review", headers=AUTH)).json()["reviews"]
            assert sorted(r["lead_id"] for r in reviews) == [first.id, second.id]
            assert reviews[0]["lead"]["score"] == 80
            ids = {r["lead_id"]: r["id"] for r in reviews}
            assert (
                await client.post(f"/api/v1/crm/review/{ids[first.id]}/approve", headers=AUTH)
            ).status_code == 200
            assert (
                await client.post(f"/api/v1/crm/review/{ids[second.id]}/reject", headers=AUTH)
            ).status_code == 200
            assert (
                await client.post(f"/api/v1/crm/review/{ids[second.id]}/approve", headers=AUTH)
            ).status_code == 404
            await rt.worker.drain()
            assert counts("hubspot", hubspot) == (1, 1, 1)
            assert hubspot.contact_by_email("camille1@example.com") is not None

            # the hourly batch runs at the next full hour
            clock.set((int(clock.now() // 3600) + 1) * 3600 + 1)
            await run_until_idle(rt)
            assert counts("gohighlevel", ghl) == (2, 2, 2)

            # direction "from" and unsubscribed events write nothing
            assert (await put(hourly.id, {"direction": "from", "frequency": "realtime"})).status_code == 200
            assert (await put(reviewed.id, {"review": False, "events": ["handoff"]})).status_code == 200
            await qualified_lead(rt, 3)
            await run_until_idle(rt)
            assert counts("hubspot", hubspot) == (1, 1, 1) and counts("gohighlevel", ghl) == (2, 2, 2)
            assert crm_of(rt) is not None
    finally:
        await hubspot.stop()
        await ghl.stop()
