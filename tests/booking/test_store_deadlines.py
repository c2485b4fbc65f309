"""The Firestore store never waits forever for Firestore: every call of a transaction has a deadline
(the booking race once hung on calls the emulator did not answer)."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.store import firestore
from app.store.base import SYSTEM_TENANT, StoreError, Transaction
from app.store.firestore import FirestoreStore


async def test_a_transaction_against_a_server_that_never_answers_fails_within_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(firestore, "_RPC_TIMEOUT_S", 0.5)
    accepted: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await reader.read()  # takes the bytes, never answers

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = FirestoreStore(project_id="demo-deadlines", emulator_host=f"127.0.0.1:{port}")
    calls = 0

    async def fn(tx: Transaction) -> None:
        nonlocal calls
        calls += 1

    started = time.monotonic()
    try:
        with pytest.raises(StoreError, match="did not begin a transaction"):
            await store.run_transaction(SYSTEM_TENANT, fn)  # the system tenant writes no marker first
        elapsed = time.monotonic() - started
    finally:
        await store.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    assert accepted, "the client never reached the silent server"
    assert calls == 0
    assert elapsed < 5.0  # 0.5 s a call, retried within about as long again; the default was 60 s


@pytest.mark.parametrize("call", ["get", "set", "query", "count", "get_many", "delete"])
async def test_a_call_outside_a_transaction_fails_within_its_deadline(
    monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    """A dashboard read or a plain write against a Firestore that does not answer: StoreError
    saying so after about the deadline, not the client's 60 s (writes) or 300 s (reads)."""
    monkeypatch.setattr(firestore, "_RPC_TIMEOUT_S", 0.5)
    accepted: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await reader.read()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = FirestoreStore(project_id="demo-deadlines", emulator_host=f"127.0.0.1:{port}")
    store._known_tenants.add("t1")  # the tenant marker's write is the set's own case
    calls = {
        "get": lambda: store.get("t1", "leads", "l1"),
        "set": lambda: store.set("t1", "leads", "l1", {"name": "Ada"}),
        "query": lambda: store.query("t1", "leads"),
        "count": lambda: store.count("t1", "leads"),
        "get_many": lambda: store.get_many("t1", [("leads", "l1"), ("leads", "l2")]),
        "delete": lambda: store.delete("t1", "leads", "l1"),
    }
    started = time.monotonic()
    try:
        with pytest.raises(StoreError, match="Firestore did not answer"):
            await calls[call]()
        elapsed = time.monotonic() - started
    finally:
        await store.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    assert accepted, "the client never reached the silent server"
    assert elapsed < 5.0
