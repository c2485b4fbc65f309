"""One thread that runs callables in order, handing results back to an event loop cheaply.

Shared by the SQLite store (its writer and reader connections each live on one) and the rule
interpreter (the lead's text is read off the event loop, on one thread)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

R = TypeVar("R")

_Done = Callable[[BaseException | None, Any], None]


def _settle(future: asyncio.Future[Any], error: BaseException | None, result: Any) -> None:
    if not future.done():
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class SerialThread(concurrent.futures.Executor):
    """One thread that runs the callables it is given one at a time, in the order given.

    :meth:`call` is the hand-off the store's coroutines use: it returns an asyncio future that the
    thread settles with ``loop.call_soon_threadsafe``. ``loop.run_in_executor`` on a
    ``ThreadPoolExecutor`` cost the event loop about twice as much CPU per hand-off (measured:
    108 against 41 us with uvloop, 164 against 70 us with asyncio's loop on this machine), in a
    ``concurrent.futures.Future`` with its condition variable, its wrapping into an asyncio future
    and the executor's idle-thread bookkeeping; a webhook costs one hand-off when alone. It is
    still an ``Executor`` (:meth:`submit`, :meth:`shutdown`), so ``run_in_executor`` works too and
    keeps its place in the same queue. A callable whose :meth:`call` future was cancelled before
    it started is skipped, as an executor skips a cancelled future. The thread is a daemon: a
    process that exits without closing its store drops what is still queued, as a kill would
    (SQLite rolls an unfinished transaction back when the file is next opened)."""

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], _Done, Callable[[], bool]] | None] = (
            queue.SimpleQueue()
        )
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, done, cancelled = item
            if cancelled():
                continue
            try:
                result = fn()
            except BaseException as exc:  # handed to the caller, whatever it is
                done(exc, None)
            else:
                done(None, result)

    def call(self, fn: Callable[[], R]) -> asyncio.Future[R]:
        """Run ``fn`` on the thread; the returned future (of the running loop) gets its result
        or exception. Raises ``RuntimeError`` after :meth:`shutdown`."""
        if self._closed:
            raise RuntimeError("cannot schedule new calls after shutdown")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()

        def done(error: BaseException | None, result: Any) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, future, error, result)

        self._queue.put((fn, done, future.cancelled))
        return future

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[R]:
        """``Executor.submit``: run ``fn(*args, **kwargs)`` on the thread after what is queued."""
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future: concurrent.futures.Future[R] = concurrent.futures.Future()

        def done(error: BaseException | None, result: Any) -> None:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        def run() -> R:
            return fn(*args, **kwargs)

        self._queue.put((run, done, lambda: not future.set_running_or_notify_cancel()))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Run what is queued, then stop the thread (joined when ``wait``)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        if wait and self._thread is not threading.current_thread():
            self._thread.join()
