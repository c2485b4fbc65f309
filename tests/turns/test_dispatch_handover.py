"""A turn run by this process's worker writes its dispatch job already leased by this process and
hands it to the worker: the job's document is written once (not written, then leased in a
transaction of its own), and a crash before it runs loses nothing (the lease expires and any
process takes the job, as any leased job)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from app.composition import Runtime
from app.jobs.queue import Job
from app.store import where


async def _say(rt: Runtime, session: str, text: str) -> None:
    frame = json.dumps({"type": "message", "id": f"{session}-1", "text": text}).encode()
    for message in rt.webchat().parse({"x-session-id": session}, frame).messages:
        assert await rt.accept("demo", message)


async def test_the_worker_runs_a_turns_dispatch_without_leasing_it(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    leased: Counter[str] = Counter()
    lease_due = runtime.jobs.lease_due

    async def counted(*, limit: int = 16) -> list[Job]:
        taken = await lease_due(limit=limit)
        leased.update(job.kind for job in taken)
        return taken

    monkeypatch.setattr(runtime.jobs, "lease_due", counted)
    for i in range(3):
        await _say(runtime, f"handover_{i}", "Hi, I'd like a quote for solar panels")
    await runtime.worker.drain()
    assert leased == Counter({"inbound": 3}), leased  # the dispatch jobs were handed over
    sent = await runtime.store.query("demo", "outbox", filters=[where("status", "==", "sent")])
    assert len({d.data["conversation_id"] for d in sent}) == 3
    assert await runtime.store.query("demo", "jobs") == []


async def test_a_dispatch_handed_over_to_a_process_that_died_is_run_by_another(runtime: Runtime) -> None:
    await _say(runtime, "handover_crash", "Hi, I'd like a quote for solar panels")
    runtime.jobs.takes_handovers = True  # as once this process's worker runs
    runtime.jobs.lease_s = 0.0  # so that the other process finds the lease expired
    [job] = await runtime.jobs.lease_due()
    await runtime.worker.handlers["inbound"](job)
    [dispatch] = runtime.jobs.take_handed()  # ...and the process dies before running it
    [doc] = [d.data for d in await runtime.store.query("demo", "jobs")]
    assert doc["id"] == dispatch.id and doc["status"] == "leased"
    assert doc["lease_owner"] == runtime.jobs.owner and doc["leased_generation"] == doc["generation"]
    assert await runtime.store.query("demo", "outbox", filters=[where("status", "==", "sent")]) == []
    other = Runtime.build(runtime.settings, store=runtime.store, channels={"webchat": runtime.webchat()})
    assert other.jobs.owner != runtime.jobs.owner
    await other.worker.drain()
    outbox = await runtime.store.query("demo", "outbox")
    assert outbox and {d.data["status"] for d in outbox} == {"sent"}
    assert await runtime.store.query("demo", "jobs") == []


async def test_without_a_worker_here_the_dispatch_job_is_written_pending(runtime: Runtime) -> None:
    await _say(runtime, "handover_none", "Hi, I'd like a quote for solar panels")
    assert not runtime.jobs.takes_handovers  # no worker of this queue has run
    [job] = await runtime.jobs.lease_due()
    await runtime.worker.handlers["inbound"](job)
    assert runtime.jobs.take_handed() == []
    [doc] = [d.data for d in await runtime.store.query("demo", "jobs")]
    assert doc["kind"] == "dispatch" and doc["status"] == "pending" and "lease_owner" not in doc


async def test_a_dispatch_handed_over_when_the_worker_stops_is_released_not_left_leased(
    runtime: Runtime,
) -> None:
    import asyncio

    await _say(runtime, "handover_stop", "Hi, I'd like a quote for solar panels")
    runtime.jobs.takes_handovers = True  # as once this process's worker runs
    [job] = await runtime.jobs.lease_due()
    await runtime.worker.handlers["inbound"](job)  # the turn hands its dispatch over...
    stop = asyncio.Event()
    stop.set()  # ...and the worker is stopping before it runs it
    await runtime.worker.run(stop)
    [doc] = [d.data for d in await runtime.store.query("demo", "jobs")]
    assert doc["kind"] == "dispatch" and doc["status"] == "pending"  # any process runs it now
    assert runtime.jobs.takes_handovers is False and runtime.jobs.take_handed() == []
