"""Webhook ingest as an append-only log: group commit, idempotency by provider message id, a
consume that is all-or-nothing, quarantine of signed bodies that do not parse, the route cache."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.main import create_app
from app.messaging.inbox import INBOX, inbox_id
from app.messaging.quarantine import MAX_QUARANTINED_BYTES
from app.store.base import LOG_COLLECTION
from app.store.sqlite import SQLiteStore
from tests.app.conftest import ADMIN_KEY, sent_texts, sign, text_webhook
from tests.support.recording import RecordingServer

Client = AsyncTestClient[Litestar]
WEBHOOK = "/api/webhooks/whatsapp"


async def _logged(runtime: Runtime, wamid: str) -> bool:
    """Whether the entry of ``wamid`` is committed, read by a connection of its own (SQLite) or
    through the store (Firestore commits are visible to every reader once done)."""
    entry_id = f"m:whatsapp:{wamid}"
    store = runtime.store
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path) as conn:
            row = conn.execute(
                "SELECT 1 FROM ingest_log WHERE tenant='demo' AND id=?", (entry_id,)
            ).fetchone()
        return row is not None
    if not store.group_commit_log:  # Firestore: the delivery went straight into the inbox
        return await store.get("demo", INBOX, inbox_id("whatsapp", wamid)) is not None
    return await store.get("demo", LOG_COLLECTION, entry_id) is not None


@pytest.fixture
async def served(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The app served by uvicorn on 127.0.0.1 (ephemeral port) in this event loop, so that requests
    really run concurrently (the in-process test client handles one at a time), and a client."""
    app = create_app(runtime=runtime, start_worker=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as http:
        yield http
    server.should_exit = True
    await task


async def test_concurrent_webhooks_share_commits_and_each_is_answered_after_its_commit(
    served: httpx.AsyncClient, runtime: Runtime
) -> None:
    client = served
    n = 24
    commits_before = getattr(runtime.store, "commits", 0)
    groups_before = runtime.ingest.groups
    committed_at_answer: list[bool] = []

    async def deliver(i: int) -> int:
        body = text_webhook(f"hello {i}", wamid=f"wamid.GROUP{i}", sender=f"3361200{i:04d}")
        response = await client.post(WEBHOOK, content=body, headers=sign(body))
        committed_at_answer.append(await _logged(runtime, f"wamid.GROUP{i}"))
        assert response.json() == {"messages": 1, "duplicates": 0, "statuses": 0}
        return response.status_code

    statuses = await asyncio.gather(*(deliver(i) for i in range(n)))
    assert statuses == [200] * n
    assert committed_at_answer == [True] * n
    groups = runtime.ingest.groups - groups_before
    assert 1 <= groups < n, groups
    if isinstance(runtime.store, SQLiteStore):
        assert runtime.store.commits - commits_before == groups  # one commit per group, for every tenant
    # consumed from the log (SQLite), or already in the inbox (Firestore keeps no log)
    assert await runtime.ingest.consume("demo") == (n if runtime.store.group_commit_log else 0)
    assert len(await runtime.store.query("demo", "inbox")) == n
    assert await runtime.store.query("demo", LOG_COLLECTION) == [] or isinstance(runtime.store, SQLiteStore)
    assert await runtime.ingest.consume("demo") == 0


async def test_a_message_is_logged_once_by_provider_id_and_answered_once(
    client: Client, runtime: Runtime, graph: RecordingServer
) -> None:
    body = text_webhook("Hi, I'd like solar panels", wamid="wamid.ONCE")
    together = await asyncio.gather(
        *(client.post(WEBHOOK, content=body, headers=sign(body)) for _ in range(3))
    )
    assert sorted(r.json()["messages"] for r in together) == [0, 0, 1]
    assert sum(r.json()["duplicates"] for r in together) == 2
    await runtime.worker.drain()  # the ingest job, then the turn
    replies = sent_texts(graph)
    assert replies and replies[0].startswith("Hi Camille!")
    # Redelivered after its log entry became an inbox item: still a duplicate, nothing new sent.
    again = await client.post(WEBHOOK, content=body, headers=sign(body))
    assert again.json() == {"messages": 0, "duplicates": 1, "statuses": 0}
    await runtime.worker.drain()
    assert sent_texts(graph) == replies
    assert len(await runtime.store.query("demo", "inbox")) == 1
    assert await runtime.store.query("demo", "jobs") == []


async def test_a_consume_that_fails_midway_leaves_every_entry_in_the_log(
    client: Client, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not runtime.store.group_commit_log:
        pytest.skip("this store keeps no ingest log: deliveries go straight into the inbox")
    for i in range(3):
        body = text_webhook(f"msg {i}", wamid=f"wamid.ATOM{i}", sender=f"3361300{i:04d}")
        assert (await client.post(WEBHOOK, content=body, headers=sign(body))).status_code == 200
    real_stage = runtime.ingest._stage

    async def crash_after_staging(tx: Any, records: Any, windows: Any) -> None:
        await real_stage(tx, records, windows)  # inbox items and jobs are written into tx...
        raise RuntimeError("process dies here")  # ...and the transaction never commits

    monkeypatch.setattr(runtime.ingest, "_stage", crash_after_staging)
    with pytest.raises(RuntimeError):
        await runtime.ingest.consume("demo")
    assert await runtime.store.query("demo", "inbox") == []
    assert all([await _logged(runtime, f"wamid.ATOM{i}") for i in range(3)])
    monkeypatch.setattr(runtime.ingest, "_stage", real_stage)
    assert await runtime.ingest.consume("demo") == 3
    assert len(await runtime.store.query("demo", "inbox")) == 3


async def test_a_signed_body_that_does_not_parse_is_quarantined_for_its_tenant_only(
    client: Client, runtime: Runtime
) -> None:
    junk = b'{"object": "whatsapp_business_account", "entry": "' + b"x" * (MAX_QUARANTINED_BYTES * 2) + b'"'
    response = await client.post(WEBHOOK, content=junk, headers=sign(junk))
    assert response.status_code == 200, response.text  # Meta stops redelivering
    listed = await client.get("/api/v1/quarantine", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert listed.status_code == 200
    (item,) = listed.json()["items"]
    assert item["id"] == response.json()["quarantined"]
    assert item["channel"] == "whatsapp" and item["reason"]
    assert item["size"] == len(junk) and item["truncated"] is True
    assert len(item["body"].encode()) == MAX_QUARANTINED_BYTES
    other_key = "lw_other_tenant_key"
    await runtime.tenants.add_api_key("other", other_key)
    theirs = await client.get("/api/v1/quarantine", headers={"Authorization": f"Bearer {other_key}"})
    assert theirs.json() == {"items": []}
    unsigned = await client.post(WEBHOOK, content=b"{nope", headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    assert len(await runtime.store.query("demo", "quarantine")) == 1
    anonymous = await client.get("/api/v1/quarantine")
    assert anonymous.status_code == 401


async def test_webhooks_route_without_reading_the_store_and_see_a_route_change_at_once(
    client: Client, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[tuple[str, str]] = []
    real_get = runtime.store.get

    async def counting_get(tenant_id: str, collection: str, doc_id: str) -> dict[str, Any] | None:
        reads.append((collection, doc_id))
        return await real_get(tenant_id, collection, doc_id)

    monkeypatch.setattr(runtime.store, "get", counting_get)
    for i in range(5):
        body = text_webhook("hi", wamid=f"wamid.ROUTE{i}")
        assert (await client.post(WEBHOOK, content=body, headers=sign(body))).json()["messages"] == 1
    assert len([r for r in reads if r[0] == "channel_routes"]) <= 1
    await runtime.tenants.set_route("whatsapp", "999000111", "other")
    assert await runtime.tenants.route("whatsapp", "999000111") == "other"
    await runtime.tenants.set_route("whatsapp", "999000111", "demo")
    assert await runtime.tenants.route("whatsapp", "999000111") == "demo"


def test_inbound_payload_round_trips_through_the_log() -> None:
    """The log stores a message's fields as JSON; what the inbox gets back is the same."""
    from app.messaging.ingest_log import message_record
    from channels.base import InboundMessage

    message = InboundMessage(
        channel="whatsapp",
        provider_message_id="wamid.X",
        sender="+33600000000",
        recipient="1065",
        text="hé",
        media={"id": "m1"},
        metadata={"k": [1, 2]},
    )
    record = message_record("demo", message, at=12.5)
    assert json.loads(json.dumps(record.data))["m"]["metadata"] == {"k": [1, 2]}
    assert record.seen == ("inbox", "whatsapp:wamid.X")
