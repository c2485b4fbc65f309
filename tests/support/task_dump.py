"""Where every asyncio task waits: a dump taken shortly before pytest-timeout fails a test.

pytest-timeout's dump lists threads; a hung async test shows only the event loop's ``select``
there. :class:`TaskDumpWatchdog` fires ``margin_s`` before the test's timeout and writes, for each
running event loop of the process, every task with its chain of awaits (coroutines, async
generators, ``yield from``) down to the future it waits on, to ``stream`` (the test's captured
stderr by default, shown with the failure). The dump runs *inside* the loop
(``call_soon_threadsafe``), so it reads a consistent state; if the loop does not run it within
2 s (it is blocked in sync code: pytest-timeout's thread dump shows where), it is taken from the
watchdog thread instead. ``extra`` reports follow (the conftest adds the Firestore emulator's
Java threads when one runs).

Cost: one :class:`threading.Timer` per test; the loops are searched (``gc.get_objects``) only
when it fires.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import CodeType, FrameType
from typing import Any, TextIO

__all__ = ["TaskDumpWatchdog", "dump_tasks", "format_task"]

#: Longest await chain followed for one task (a safety net against a cycle).
_MAX_DEPTH = 64


def _frame_of(awaitable: Any) -> tuple[FrameType | None, Any]:
    """The suspended frame of a coroutine / generator / async generator and what it awaits next."""
    for frame_attr, next_attr in (
        ("cr_frame", "cr_await"),
        ("ag_frame", "ag_await"),
        ("gi_frame", "gi_yieldfrom"),
    ):
        if hasattr(awaitable, frame_attr):
            return getattr(awaitable, frame_attr), getattr(awaitable, next_attr, None)
    return None, None


def _where(frame: FrameType | None, awaitable: Any) -> str:
    if frame is None:
        code: CodeType | None = getattr(awaitable, "cr_code", None) or getattr(awaitable, "gi_code", None)
        name = getattr(awaitable, "__qualname__", type(awaitable).__name__)
        return f"{name} (finished or not started){'' if code is None else f' {code.co_filename}'}"
    code = frame.f_code
    return f"{code.co_filename}:{frame.f_lineno} in {code.co_qualname}"


def format_task(task: asyncio.Task[Any]) -> str:
    """One task: its name, state, then one line per await from the task's coroutine inwards, and
    the innermost object awaited (a future, a gRPC call...)."""
    lines = [f"Task {task.get_name()!r} {'done' if task.done() else 'pending'}"]
    awaitable: Any = task.get_coro()
    for _ in range(_MAX_DEPTH):
        frame, inner = _frame_of(awaitable)
        if frame is None and inner is None and not hasattr(awaitable, "cr_code"):
            lines.append(f"    awaits {awaitable!r:.300}")
            break
        lines.append(f"    {_where(frame, awaitable)}")
        if inner is None:
            break
        awaitable = inner
    waiter = getattr(task, "_fut_waiter", None)
    if waiter is not None:
        lines.append(f"    waits on {waiter!r:.300}")
    return "\n".join(lines)


def dump_tasks(loop: asyncio.AbstractEventLoop, stream: TextIO, *, title: str = "") -> None:
    """Write every task of ``loop`` (see :func:`format_task`) to ``stream``."""
    tasks = sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name())
    stream.write(f"\n{'+' * 20} asyncio tasks {title} ({len(tasks)}) {'+' * 20}\n")
    for task in tasks:
        stream.write(format_task(task) + "\n")
    stream.write(f"{'+' * 20} end of asyncio tasks {'+' * 20}\n")
    stream.flush()


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    return [
        obj for obj in gc.get_objects() if isinstance(obj, asyncio.AbstractEventLoop) and obj.is_running()
    ]


class TaskDumpWatchdog:
    """A timer that dumps every running loop's tasks after ``after_s`` seconds unless cancelled."""

    def __init__(
        self,
        after_s: float,
        *,
        title: str = "",
        stream: TextIO | None = None,
        extra: Sequence[Callable[[], str]] = (),
    ) -> None:
        """``extra``: more reports written after the tasks (e.g. a server's thread dump); each is
        called from the watchdog thread and must not raise."""
        self._title = title
        self._stream = stream
        self._extra = list(extra)
        self._timer = threading.Timer(max(0.0, after_s), self._fire)
        self._timer.name = f"task-dump {title}"
        self._timer.daemon = True
        self.fired = False

    def start(self) -> TaskDumpWatchdog:
        """Start the timer; returns ``self``."""
        self._timer.start()
        return self

    def cancel(self) -> None:
        """Stop the timer (a dump under way finishes)."""
        self._timer.cancel()

    def _fire(self) -> None:
        self.fired = True
        stream = self._stream or sys.stderr
        pending: list[tuple[asyncio.AbstractEventLoop, threading.Event]] = []
        for loop in _running_loops():  # every loop dumps itself, all at once
            done = threading.Event()

            def in_loop(loop: asyncio.AbstractEventLoop = loop, done: threading.Event = done) -> None:
                try:
                    dump_tasks(loop, stream, title=self._title)
                finally:
                    done.set()

            with contextlib.suppress(RuntimeError):  # closed meanwhile
                loop.call_soon_threadsafe(in_loop)
                pending.append((loop, done))
        deadline = time.monotonic() + 2.0
        for loop, done in pending:
            if not done.wait(max(0.0, deadline - time.monotonic())):
                dump_tasks(loop, stream, title=f"{self._title} (loop blocked; taken from the watchdog)")
        for report in self._extra:
            stream.write(f"\n{'+' * 20} {getattr(report, '__qualname__', report)} {'+' * 20}\n{report()}\n")
            stream.flush()
