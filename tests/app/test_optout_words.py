"""An opt-out in the lead's own words, on any channel, reaches the ledger with the turn: nothing
is sent after it, and the lead's consent and stage say so."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.store import where
from app.store.collections import CONVERSATIONS, LEADS
from tests.app.conftest import sign, text_webhook
from tests.support.recording import RecordingServer

LEAD = "33611112222"


@pytest.mark.parametrize(
    "words",
    ["Please stop messaging me, I don't want to be contacted", "Ne me contactez plus s'il vous plaît"],
)
async def test_an_opt_out_in_free_words_is_recorded_and_honoured(
    client: AsyncTestClient[Litestar], runtime: Runtime, graph: RecordingServer, words: str
) -> None:
    first = text_webhook("Hi, solar panels please", wamid="wamid.W1", sender=LEAD)
    assert (
        await client.post("/api/webhooks/whatsapp", content=first, headers=sign(first))
    ).status_code == 200
    await runtime.worker.drain()
    sent_before = len(graph.requests)
    stop = text_webhook(words, wamid="wamid.W2", sender=LEAD, timestamp=1_763_000_050)
    assert (await client.post("/api/webhooks/whatsapp", content=stop, headers=sign(stop))).status_code == 200
    await runtime.worker.drain()
    opted_out, _ = await runtime.optouts.blocks(
        "demo", channel="whatsapp", address="+" + LEAD, lead_addresses={}, all_channels=False
    )
    assert opted_out
    # A later follow-up or any other message is blocked by the policy.
    assert len(graph.requests) == sent_before, [r.body for r in graph.requests[sent_before:]]
    lead = (await runtime.store.query("demo", LEADS, filters=[where("phone", "==", "+" + LEAD)]))[0].data
    assert lead["consent"]["whatsapp"] is False and lead["stage"] == "closed"
    conv = (await runtime.store.query("demo", CONVERSATIONS))[0].data
    assert conv["status"] == "closed" and conv["outcome"] == "opted_out"
    assert any(e["type"] == "opt_out" for e in conv["events"])
