"""Knowledge-base entries count their uses and their outcomes from real conversations."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from tests.app.conftest import sent_texts, sign, text_webhook
from tests.support.recording import RecordingServer


async def _say(client: AsyncTestClient[Litestar], runtime: Runtime, text: str, wamid: str) -> None:
    body = text_webhook(text, wamid=wamid, sender="33655554444")
    assert (await client.post("/api/webhooks/whatsapp", content=body, headers=sign(body))).status_code == 200
    await runtime.worker.drain()


async def test_an_answer_counts_a_use_and_the_outcome_sets_the_success_rate(
    client: AsyncTestClient[Litestar], runtime: Runtime, graph: RecordingServer
) -> None:
    before = await runtime.store.get("demo", "qaTraining", "en-financing")
    assert before is not None
    await _say(client, runtime, "Hello, I'm interested in solar panels", "k1")
    await _say(client, runtime, "Do you offer financing or payment plans?", "k2")
    assert before["response"] in sent_texts(graph, "33655554444")
    [used] = [e for e in await runtime.knowledge.entries("demo") if e.id == "en-financing"]
    assert used.usage_count == before["usage_count"] + 1
    stored = await runtime.store.get("demo", "qaTraining", "en-financing")
    assert (
        stored is not None and stored["usage_count"] == before["usage_count"]
    )  # the hot entry is not rewritten
    await _say(client, runtime, "no, I rent my flat", "k3")  # the playbook ends: disqualified
    [conv] = [d.data for d in await runtime.store.query("demo", "conversations")]
    assert conv["outcome"] == "disqualified"
    stats = await runtime.store.get("demo", "qaStats", "en-financing")
    assert stats is not None
    assert (stats["outcomes"], stats["successes"]) == (1.0, 0.0)  # used once, in a conversation that failed
    after = await runtime.store.get("demo", "qaTraining", "en-financing")
    assert after is not None and after["success_rate"] == 0.0
