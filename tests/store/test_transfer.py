"""Moving a tenant between backends: a real conversation on one store, exported, imported into the
other, gives the same documents, and the service carries on there. Also ``leadwarm store``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from app.cli.main import main
from app.composition import Runtime, open_store
from app.core.settings import Settings
from app.messaging.inbox import accept_message
from app.store import SYSTEM_TENANT, Store
from app.store.transfer import TransferError, export_tenant, import_tenant
from app.tenancy.bootstrap import bootstrap
from tests.app.conftest import PHONE_ID, make_settings, sent_texts, sign, text_webhook
from tests.conftest import EMULATOR_PROJECT
from tests.support.firestore_emulator import FirestoreEmulator
from tests.support.recording import RecordingServer

TENANT = "demo"
Key = tuple[str, str, str]


@pytest.fixture
def emulator(firestore_emulator: FirestoreEmulator, monkeypatch: pytest.MonkeyPatch) -> FirestoreEmulator:
    """The session emulator, wiped, exported in the environment for this test only."""
    firestore_emulator.reset()
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.host_port)
    return firestore_emulator


def _settings(backend: str, data_dir: Path, graph: RecordingServer, emulator: FirestoreEmulator) -> Settings:
    fields: dict[str, Any] = {"store": backend}
    if backend == "firestore":
        fields |= {"firebase_project_id": EMULATOR_PROJECT, "firestore_emulator_host": emulator.host_port}
    return make_settings(data_dir, graph.base_url, **fields)


async def _say(runtime: Runtime, text: str, wamid: str) -> None:
    """Deliver a signed WhatsApp webhook to the inbox and let the worker run."""
    body = text_webhook(text, wamid=wamid)
    channel = runtime.channels.get(TENANT, "whatsapp")
    for message in channel.parse(sign(body), body).messages:
        await accept_message(runtime.jobs, TENANT, message)
    await runtime.worker.drain()


async def _converse(settings: Settings) -> None:
    """A bootstrapped tenant with one real WhatsApp conversation, plus another tenant's data."""
    runtime = Runtime.build(settings)
    try:
        await bootstrap(runtime)
        await _say(runtime, "Hi, I'd like solar panels", "wamid.T1")
        await _say(runtime, "yes I do", "wamid.T2")
        await runtime.store.set("other", "leads", "x", {"name": "not exported"})
        await runtime.store.set(SYSTEM_TENANT, "api_keys", "other-hash", {"tenant_id": "other"})
    finally:
        await runtime.channels.aclose()
        await runtime.store.close()


async def _by_key(store: Store) -> dict[Key, dict[str, Any]]:
    records = [r async for r in export_tenant(store, TENANT)]
    keyed = {(r["tenant"], r["collection"], r["id"]): r["data"] for r in records}
    assert len(keyed) == len(records)
    return keyed


@pytest.mark.parametrize(("source", "target"), [("sqlite", "firestore"), ("firestore", "sqlite")])
async def test_a_tenant_round_trips_and_the_conversation_goes_on(
    source: str, target: str, emulator: FirestoreEmulator, graph: RecordingServer, tmp_path: Path
) -> None:
    source_settings = _settings(source, tmp_path / "source", graph, emulator)
    target_settings = _settings(target, tmp_path / "target", graph, emulator)
    await _converse(source_settings)
    source_store, target_store = open_store(source_settings), open_store(target_settings)
    try:
        exported = await _by_key(source_store)
        collections = {collection for (namespace, collection, _) in exported if namespace == TENANT}
        assert {
            "config",
            "leads",
            "conversations",
            "inbox",
            "outbox",
            "playbooks",
            "provider_ids",
        } <= collections
        assert any(c.startswith("conversations/") and c.endswith("/messages") for c in collections)
        assert {(ns, c) for (ns, c, _) in exported if ns == SYSTEM_TENANT} == {
            (SYSTEM_TENANT, "api_keys"),
            (SYSTEM_TENANT, "channel_routes"),
        }
        assert all(
            data.get("tenant_id") == TENANT for (ns, _, _), data in exported.items() if ns == SYSTEM_TENANT
        )

        records = [
            {"tenant": ns, "collection": c, "id": i, "data": data} for (ns, c, i), data in exported.items()
        ]
        assert await import_tenant(target_store, TENANT, records) == len(records)
        assert await _by_key(target_store) == exported
        assert "other" not in await target_store.list_tenants()
    finally:
        await source_store.close()
        await target_store.close()

    # the service carries on from the imported data: same lead, same conversation, next step
    replies_before = len(sent_texts(graph))
    runtime = Runtime.build(target_settings)
    try:
        await bootstrap(runtime)
        await _say(runtime, "about 90 euros", "wamid.T3")
        [conversation] = [d.data for d in await runtime.store.query(TENANT, "conversations")]
        messages = await runtime.store.query(TENANT, f"conversations/{conversation['id']}/messages")
        assert [m.data["provider_message_id"] for m in messages if m.data["direction"] == "inbound"] == [
            "wamid.T1",
            "wamid.T2",
            "wamid.T3",
        ]
        assert len(await runtime.store.query(TENANT, "leads")) == 1
    finally:
        await runtime.channels.aclose()
        await runtime.store.close()
    assert len(sent_texts(graph)) > replies_before


async def test_import_refuses_records_of_another_tenant_before_writing_anything(tmp_path: Path) -> None:
    from app.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "t.db")
    try:
        good = {"tenant": TENANT, "collection": "leads", "id": "l1", "data": {"name": "Ana"}}
        for bad in (
            {"tenant": "other", "collection": "leads", "id": "l2", "data": {}},
            {"tenant": SYSTEM_TENANT, "collection": "api_keys", "id": "h", "data": {"tenant_id": "other"}},
            {"tenant": SYSTEM_TENANT, "collection": "secrets", "id": "h", "data": {"tenant_id": TENANT}},
            {"tenant": TENANT, "collection": "leads", "id": "l3"},
            {"tenant": TENANT, "collection": "leads", "id": "l3", "data": []},
        ):
            with pytest.raises(TransferError):
                await import_tenant(store, TENANT, [good, bad])
        assert await store.list_collections(TENANT) == []
        with pytest.raises(TransferError):
            await import_tenant(store, SYSTEM_TENANT, [good])
    finally:
        await store.close()


def test_cli_moves_a_tenant_from_sqlite_to_firestore(
    emulator: FirestoreEmulator, graph: RecordingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    sqlite_settings = _settings("sqlite", tmp_path / "data", graph, emulator)
    asyncio.run(_converse(sqlite_settings))
    base_env = {"LEADWARM_DATA_DIR": str(tmp_path / "data"), "FIREBASE_PROJECT_ID": EMULATOR_PROJECT}
    runner = CliRunner()
    out = tmp_path / "demo.jsonl"

    exported = runner.invoke(
        main, ["store", "export", "--tenant", TENANT, "--out", str(out)], env={**base_env, "STORE": "sqlite"}
    )
    assert exported.exit_code == 0, exported.output
    lines = out.read_text("utf-8").splitlines()
    assert lines and all(json.loads(line)["tenant"] in (TENANT, SYSTEM_TENANT) for line in lines)

    firestore_env = {**base_env, "STORE": "firestore", "FIRESTORE_EMULATOR_HOST": emulator.host_port}
    imported = runner.invoke(main, ["store", "import", "--tenant", TENANT, str(out)], env=firestore_env)
    assert imported.exit_code == 0, imported.output
    assert f"imported {len(lines)} documents" in imported.output

    again = runner.invoke(main, ["store", "import", "--tenant", TENANT, str(out)], env=firestore_env)
    assert again.exit_code == 1 and "--force" in again.output
    forced = runner.invoke(
        main, ["store", "import", "--tenant", TENANT, "--force", str(out)], env=firestore_env
    )
    assert forced.exit_code == 0, forced.output

    back = runner.invoke(
        main,
        ["store", "export", "--tenant", TENANT, "--store", "firestore"],
        env={**firestore_env, "STORE": "sqlite"},
    )
    assert back.exit_code == 0, back.output
    from_firestore = [json.loads(line) for line in back.stdout.splitlines()]
    key = lambda r: (r["tenant"], r["collection"], r["id"])  # noqa: E731
    assert sorted(from_firestore, key=key) == sorted((json.loads(line) for line in lines), key=key)
    assert PHONE_ID in {
        r["id"].split(":", 1)[1] for r in from_firestore if r["collection"] == "channel_routes"
    }
