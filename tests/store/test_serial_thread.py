"""The store's hand-off thread: one thread, calls in the order given (its own ``call`` and
``run_in_executor`` alike), exceptions to the caller, a call cancelled before it starts skipped."""

from __future__ import annotations

import asyncio
import functools
import threading

import pytest

from kernel.threads import SerialThread


async def test_calls_and_executor_submissions_run_in_order_on_one_thread() -> None:
    worker = SerialThread("test-serial")
    ran: list[tuple[int, str]] = []
    gate = threading.Event()

    def step(i: int) -> int:
        if i == 0:
            gate.wait(5)  # everything else queues behind the first
        ran.append((i, threading.current_thread().name))
        return i * 10

    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[int]] = [
        worker.call(functools.partial(step, i)) if i % 2 == 0 else loop.run_in_executor(worker, step, i)
        for i in range(6)
    ]
    gate.set()
    assert await asyncio.gather(*futures) == [0, 10, 20, 30, 40, 50]
    assert [i for i, _ in ran] == [0, 1, 2, 3, 4, 5]
    assert {name for _, name in ran} == {"test-serial"}
    worker.shutdown(wait=True)
    with pytest.raises(RuntimeError, match="after shutdown"):
        worker.call(lambda: 1)


async def test_an_exception_reaches_the_caller_and_a_cancelled_call_never_runs() -> None:
    worker = SerialThread("test-serial")
    gate = threading.Event()
    ran: list[str] = []

    def fail() -> None:
        raise ValueError("boom")

    blocker = worker.call(lambda: gate.wait(5))
    cancelled = worker.call(lambda: ran.append("cancelled one"))
    cancelled.cancel()
    after = worker.call(lambda: ran.append("after"))
    gate.set()
    await blocker
    await after
    assert ran == ["after"]
    with pytest.raises(ValueError, match="boom"):
        await worker.call(fail)
    worker.shutdown(wait=True)
