"""An answer turn costs few store transactions: the job's lease is shared by the tenant's due jobs
(one transaction for the batch), and the job's completion joins the transaction that commits the
turn (and the dispatcher's record of the last send). Counted on SQLite's own statement trace, so a
change that adds a transaction or a handful of statements to the hot path fails here."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.composition import Runtime
from app.store import where
from app.store.sqlite import SQLiteStore
from tests.turns.conftest import webchat_runtime

LEADS = 16


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = await webchat_runtime(tmp_path, worker_concurrency=LEADS)
    yield rt
    await rt.store.close()


async def _round(rt: Runtime, tag: str, text: str) -> list[str]:
    """Every lead writes ``text``; the worker drains; returns the SQL statements it ran."""
    channel = rt.webchat()
    for i in range(LEADS):
        frame = json.dumps({"type": "message", "id": f"{tag}-{i}", "text": text}).encode()
        for message in channel.parse({"x-session-id": f"turns_session_{i:03d}"}, frame).messages:
            assert await rt.accept("demo", message)
    store = rt.store
    assert isinstance(store, SQLiteStore)
    statements: list[str] = []
    store._writer.set_trace_callback(statements.append)
    store._reader.set_trace_callback(statements.append)
    try:
        await rt.worker.drain()
    finally:
        store._writer.set_trace_callback(None)
        store._reader.set_trace_callback(None)
    return statements


_CONTROL = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK")


def _transactions(statements: list[str]) -> int:
    """Logical transactions in a trace. Inline transactions queued together share one
    ``BEGIN``/``COMMIT`` (group commit), each in its own savepoint, so how many ``BEGIN`` run
    depends on timing; a group counts as its savepoints, any other ``BEGIN`` as one."""
    count, savepoints, in_group = 0, 0, False
    for s in statements:
        if s.startswith("BEGIN"):
            in_group, savepoints = True, 0
        elif s.startswith("SAVEPOINT") and in_group:
            savepoints += 1
        elif s in ("COMMIT", "ROLLBACK") and in_group:
            count += max(savepoints, 1)
            in_group = False
    return count


def _work(statements: list[str]) -> int:
    """Statements that read or write data: transaction control is left out, since group commit
    shares it between transactions as timing allows."""
    return sum(not s.startswith(_CONTROL) for s in statements)


async def test_an_answer_turn_takes_two_transactions_and_few_statements(runtime: Runtime) -> None:
    first = await _round(runtime, "a", "Hi, I'd like a quote for solar panels")
    answer = await _round(runtime, "b", "yes I own it")
    for statements in (first, answer):
        assert sum(s.startswith("BEGIN") for s in statements) == sum(s == "COMMIT" for s in statements)
    answer_tx = _transactions(answer) / LEADS
    first_tx = _transactions(first) / LEADS
    # per answer turn: its commit (completing the inbound job) and the send's record (completing
    # the dispatch job); the two leases are shared by all the leads due together
    assert answer_tx <= 2.2, answer_tx
    assert first_tx <= 3.2, first_tx  # plus the first message's knowledge/usage bookkeeping
    # was 53 statements in 6 transactions; 41.75 of work at 7ec07e5, whatever the grouping; 36.5
    # once a merge reuses the transaction's read (no second SELECT of the lead, the inbox item,
    # the message) and the dispatch job is written leased by the turn (no lease of its own); 27.6
    # once a batch of point reads is one statement (the commit's five, the send record's three);
    # 26.6 with the send record reading the outbox item it merges into in that batch
    assert _work(answer) / LEADS <= 27, _work(answer) / LEADS
    # and the work was done: every lead got its answer, no job is left behind
    sent = await runtime.store.query("demo", "outbox", filters=[where("status", "==", "sent")])
    assert len({d.data["conversation_id"] for d in sent}) == LEADS
    assert await runtime.store.query("demo", "jobs") == []


async def test_a_crash_between_lease_and_commit_replays_the_turn(runtime: Runtime, tmp_path: Path) -> None:
    """The completion commits with the turn or not at all: a turn that dies after its lease leaves
    the job leased; once the lease expires another worker replays it and the lead is answered once."""
    channel = runtime.webchat()
    frame = json.dumps({"type": "message", "id": "c-1", "text": "Hi, I'd like a quote"}).encode()
    for message in channel.parse({"x-session-id": "turns_crash"}, frame).messages:
        await runtime.accept("demo", message)
    runtime.jobs.lease_s = 0.0  # so that a later worker finds the lease expired
    [job] = await runtime.jobs.lease_due()
    assert job.kind == "inbound" and not job.completed  # ...and the process dies here
    jobs = await runtime.store.query("demo", "jobs")
    assert [d.data["status"] for d in jobs] == ["leased"]
    other = Runtime.build(runtime.settings, store=runtime.store, channels={"webchat": channel})
    await other.worker.drain()
    outbox = await runtime.store.query("demo", "outbox")
    assert outbox and {d.data["status"] for d in outbox} == {"sent"}
    inbox = await runtime.store.query("demo", "inbox")
    assert [d.data["status"] for d in inbox] == ["processed"]
    assert await runtime.store.query("demo", "jobs") == []
