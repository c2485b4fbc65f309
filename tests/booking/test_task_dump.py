"""The hang diagnostic of ``tests/conftest.py``: the watchdog dumps where each asyncio task waits."""

from __future__ import annotations

import asyncio
import io

from tests.support.task_dump import TaskDumpWatchdog


async def _parked_in_helper(event: asyncio.Event) -> None:
    await event.wait()


async def test_the_watchdog_names_the_line_each_task_waits_on() -> None:
    event = asyncio.Event()
    task = asyncio.create_task(_parked_in_helper(event), name="parked-lead")
    stream = io.StringIO()
    watchdog = TaskDumpWatchdog(0.05, title="t", stream=stream).start()
    for _ in range(1000):  # the dump runs in this loop, while it idles (other loops may be dumped too)
        await asyncio.sleep(0.01)
        if "parked-lead" in stream.getvalue():
            break
    event.set()
    await task
    dump = stream.getvalue()
    assert watchdog.fired
    assert "Task 'parked-lead' pending" in dump
    assert "in _parked_in_helper" in dump
    assert "in Event.wait" in dump  # followed down into asyncio's own await


async def test_a_cancelled_watchdog_writes_nothing() -> None:
    stream = io.StringIO()
    watchdog = TaskDumpWatchdog(0.05, stream=stream).start()
    watchdog.cancel()
    await asyncio.sleep(0.15)
    assert not watchdog.fired
    assert stream.getvalue() == ""
