"""A qualified lead reaches each CRM (fakes written from the vendors' documentation, enforcing
their limits) through the real queue and the real authorised client: one contact, one deal, one
note; a change syncs again as an update; no change writes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.composition import Runtime
from app.crm.records import Integration, Link, link_id
from app.store import collections as col
from crm_sync.crm import WebhookSignatureError, verify_signature
from tests.crm.conftest import TENANT, connect, crm_of, qualified_lead, run_until_idle
from tests.crm.helpers import FAKES, OPTIONS, counts
from tests.support.recording import RecordingServer


@pytest.mark.parametrize("provider", sorted(FAKES))
async def test_a_qualified_lead_reaches_the_crm_once_and_a_change_updates_it(
    rt: Runtime, provider: str
) -> None:
    fake = await FAKES[provider]().start()
    try:
        connection = await connect(rt, provider, fake)
        sync = crm_of(rt)
        await sync.save_integration(
            TENANT, Integration(connection_id=connection.id, options=OPTIONS[provider])
        )
        lead = await qualified_lead(rt, 1)
        await run_until_idle(rt)
        assert counts(provider, fake) == (1, 1, 1)
        link = Link.from_doc(await rt.store.get(TENANT, col.CRM_LINKS, link_id(connection.id, lead.id)) or {})
        assert (
            link.status == "synced"
            and link.writes == 1
            and set(link.remote_ids) >= {"contact", "deal", "note"}
        )
        # the lead's e-mail came from its answers (a slot of kind email)
        stored = await rt.store.get(TENANT, col.LEADS, lead.id)
        assert stored is not None and stored["email"] == "camille1@example.com"

        # the same content again: nothing is written (idempotency key)
        requests_before = len(fake.requests)
        await rt.jobs.enqueue(
            TENANT,
            "crm_sync",
            f"t:{lead.id}",
            payload={"op": "trigger", "lead_id": lead.id, "events": ["handoff"]},
        )
        await run_until_idle(rt)
        assert len(fake.requests) == requests_before

        # a change (a higher score) is written as an update of the same records
        await rt.store.set(TENANT, col.LEADS, lead.id, {"score": 95, "stage": "booked"}, merge=True)
        await sync.enqueue_sync(TENANT, connection.id, lead.id, events=["meeting.booked"])
        await run_until_idle(rt)
        assert counts(provider, fake) == (1, 1, 1)
        again = Link.from_doc(await rt.store.get(TENANT, col.CRM_LINKS, link.id) or {})
        assert again.writes == 2 and again.remote_ids["contact"] == link.remote_ids["contact"]
        assert again.remote_ids["deal"] == link.remote_ids["deal"]

        logs = await rt.store.query(TENANT, col.CRM_SYNC_LOGS)
        statuses = sorted(d.data["status"] for d in logs)
        assert statuses == ["ok", "ok", "skipped"]
        ok = next(d.data for d in logs if d.data["status"] == "ok")
        assert ok["payload"]["email"] == "camille1@example.com" and ok["response"]["contact"]
        assert ok["payload"]["transcript_url"].startswith("https://app.leadwarm.test/api/v1/conversations/")
        assert "Owns the home" in ok["payload"]["summary"] and ok["duration_ms"] > 0
    finally:
        await fake.stop()


async def test_the_outgoing_webhook_is_signed_and_its_receiver_verifies_it(rt: Runtime) -> None:
    receiver = RecordingServer()
    try:
        assert rt.connections is not None
        connection = await rt.connections.credentials.create(
            TENANT,
            "webhook",
            {"url": f"{receiver.base_url}/hooks/leadwarm", "signing_secret": "whsec_test_123"},
        )
        lead = await qualified_lead(rt, 7)
        await run_until_idle(rt)
        assert len(receiver.requests) == 1
        request = receiver.requests[0]
        header = request.headers.get("leadwarm-signature") or request.headers.get("x-leadwarm-signature")
        verify_signature(request.raw, header, secret="whsec_test_123", now=rt.clock.now())
        with pytest.raises(WebhookSignatureError):
            verify_signature(request.raw, header, secret="another-secret", now=rt.clock.now())
        with pytest.raises(WebhookSignatureError):
            verify_signature(request.raw + b" ", header, secret="whsec_test_123", now=rt.clock.now())
        payload = json.loads(request.raw)
        assert lead.id in json.dumps(payload) and "whsec_test_123" not in json.dumps(payload)
        logs = await rt.store.query(TENANT, col.CRM_SYNC_LOGS)
        assert [d.data["status"] for d in logs] == ["ok"] and d_connection(logs) == connection.id
    finally:
        receiver.close()


def d_connection(logs: list[Any]) -> str:
    return str(logs[0].data["connection_id"])
