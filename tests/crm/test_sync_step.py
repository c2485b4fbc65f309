"""The playbook's ``sync`` step: validated by the loader (file:line), an action of the engine
(no I/O), executed by the app as a CRM sync through a real conversation: to the integration it
names only, or to every integration."""

from __future__ import annotations

import pytest

from app.authoring.routing import PlaybookRoutes, RouteRule
from app.composition import Runtime
from app.store import collections as col
from app.store import where
from channels.base import InboundMessage
from playbooks import PlaybookError, load_playbook_text
from playbooks.schema import SyncStep
from tests.crm.conftest import TENANT, connect, crm_of, run_until_idle
from tests.crm.helpers import OPTIONS, counts
from tests.crm_sync.fakes import GoHighLevelFake, HubSpotFake

SOURCE = """\
id: sync-step-test
name: Sync step test
version: 1
language: en
steps:
  - id: email
    type: ask
    slot: email
    kind: email
    question: What is your e-mail address?
  - id: push
    type: sync
{integration}
  - id: done
    type: end
    outcome: nurture
    message: Thanks, an adviser will be in touch.
"""


def playbook_text(integration: str | None) -> str:
    return SOURCE.format(integration=f"    integration: {integration}" if integration else "")


def test_the_loader_validates_the_step_with_file_and_line() -> None:
    playbook = load_playbook_text(playbook_text("gohighlevel"))
    step = playbook.step("push")
    assert isinstance(step, SyncStep) and step.integration == "gohighlevel"
    assert load_playbook_text(playbook_text(None)).step("push").integration is None  # type: ignore[union-attr]
    text = playbook_text("not a name!")
    with pytest.raises(PlaybookError) as caught:
        load_playbook_text(text, source="broken.yaml")
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if "not a name!" in row)
    assert f"broken.yaml:{line}:" in str(caught.value)
    unknown = playbook_text("hubspot").replace(
        "    integration: hubspot", "    integration: hubspot\n    crm: x"
    )
    with pytest.raises(PlaybookError) as caught:
        load_playbook_text(unknown, source="broken.yaml")
    assert "broken.yaml:" in str(caught.value) and "crm" in str(caught.value)


async def converse(rt: Runtime, session: str, texts: list[str]) -> None:
    for n, text in enumerate(texts):
        message = InboundMessage(
            channel="webchat",
            provider_message_id=f"{session}:{n}",
            sender=session,
            recipient="demo",
            text=text,
        )
        assert await rt.accept(TENANT, message)
        await run_until_idle(rt)


@pytest.mark.parametrize("named", ["gohighlevel", None])
async def test_a_conversation_through_the_step_syncs_the_named_or_every_integration(
    rt: Runtime, named: str | None
) -> None:
    hubspot = await HubSpotFake().start()
    ghl = await GoHighLevelFake().start()
    try:
        sync = crm_of(rt)
        for provider, fake in (("hubspot", hubspot), ("gohighlevel", ghl)):
            connection = await connect(rt, provider, fake)
            # subscribed to no event but the step's: only the step can sync the lead
            await sync.save_integration(
                TENANT,
                sync.integration_defaults(
                    connection.id, events=["sync.requested"], options=OPTIONS[provider]
                ),
            )
        await rt.playbooks.save(TENANT, playbook_text(named))
        await rt.playbooks.save_routes(
            TENANT, PlaybookRoutes(rules=[RouteRule(playbook_id="sync-step-test")])
        )
        await converse(rt, "wc_sync_step", ["Hello", "camille.sync@example.com"])
        conv = (await rt.store.query(TENANT, col.CONVERSATIONS))[0].data
        assert conv["playbook_id"] == "sync-step-test" and conv["status"] == "closed"
        assert [e["detail"].get("integration") for e in conv["events"] if e["type"] == "sync.requested"] == [
            named
        ]
        assert counts("gohighlevel", ghl) == (1, 1, 1)
        assert counts("hubspot", hubspot) == ((0, 0, 0) if named else (1, 1, 1))
        contact = next(iter(ghl.contacts.values()))
        assert contact["email"] == "camille.sync@example.com"
        logs = await rt.store.query(TENANT, col.CRM_SYNC_LOGS, filters=[where("status", "==", "ok")])
        assert len(logs) == (1 if named else 2)
    finally:
        await hubspot.stop()
        await ghl.stop()
