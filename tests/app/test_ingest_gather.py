"""The group commit's gathering (issue 15): before it takes a group, the commit task lets the
event loop turn a few times, so the requests the loop is already handling share the commit
instead of paying one each; a cancellation while it gathers fails the waiting requests (503 for
the provider, which delivers again) rather than leaving them waiting for ever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.composition import Runtime
from app.messaging.ingest_log import GATHER_TURNS, IngestLog, message_record
from app.store import LogRecord, StoreError
from app.tenancy.bootstrap import bootstrap
from channels.base import InboundMessage
from tests.app.conftest import make_settings


def _record(i: int) -> LogRecord:
    message = InboundMessage(
        channel="whatsapp",
        provider_message_id=f"wamid.GATHER{i}",
        sender=f"+3361200{i:04d}",
        recipient="106540352242922",
        text=f"hello {i}",
    )
    return message_record("demo", message, at=1_700_000_000.0 + i)


async def _requests_over_turns(log: IngestLog, turns: int) -> list[list[bool]]:
    """One request per loop turn for ``turns`` turns (request ``i`` appends after ``i`` turns,
    as requests the loop handles one after another do), all answered."""

    async def request(i: int) -> list[bool]:
        for _ in range(i):
            await asyncio.sleep(0)
        return await log.append([_record(i)])

    return await asyncio.gather(*(request(i) for i in range(turns)))


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = Runtime.build(make_settings(tmp_path / "data", "http://127.0.0.1:9"))
    await bootstrap(runtime)
    yield runtime
    await runtime.channels.aclose()
    await runtime.store.close()


async def test_requests_within_the_gathering_turns_share_one_commit(rt: Runtime) -> None:
    log = IngestLog(rt.store, rt.jobs, debounce=rt.ingest.debounce)
    answers = await _requests_over_turns(log, GATHER_TURNS + 1)
    assert answers == [[True]] * (GATHER_TURNS + 1)
    assert log.groups == 1
    assert await log.consume("demo") == GATHER_TURNS + 1


async def test_without_gathering_each_turn_commits_apart(rt: Runtime) -> None:
    log = IngestLog(rt.store, rt.jobs, debounce=rt.ingest.debounce, gather_turns=0)
    answers = await _requests_over_turns(log, GATHER_TURNS + 1)
    assert answers == [[True]] * (GATHER_TURNS + 1)
    assert log.groups > 1


@pytest.mark.parametrize("turns", [0, 2], ids=["before-it-started", "while-it-gathers"])
async def test_a_cancelled_commit_task_fails_the_waiting_requests(rt: Runtime, turns: int) -> None:
    log = IngestLog(rt.store, rt.jobs, debounce=rt.ingest.debounce)
    waiting = [asyncio.ensure_future(log.append([_record(i)])) for i in range(3)]
    await asyncio.sleep(0)  # the requests append; the commit task is created, not started
    for _ in range(turns):  # ... then it gathers
        await asyncio.sleep(0)
    assert log._flusher is not None and log.groups == 0
    log._flusher.cancel()
    done = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), timeout=5)
    assert all(isinstance(d, StoreError) for d in done), done
    assert log.groups == 0
    assert await log.consume("demo") == 0  # nothing was committed
    assert await log.append([_record(9)]) == [True]  # the next request starts a new commit task
