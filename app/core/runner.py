"""Running a process's main coroutine on the event loop ``leadwarm serve`` uses.

uvicorn runs the service on uvloop when it is installed (``uvicorn[standard]`` brings it), and
the store's thread hand-offs, timers and sockets cost about half the loop CPU there (measured in
``kernel/threads.py``'s ``SerialThread``: 41 against 70 us per hand-off). ``leadwarm worker``
and the benchmarks run the same code, so they use the same loop: :func:`run`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new uvloop loop when uvloop is installed, else on
    asyncio's (``asyncio.run`` semantics either way: the loop is closed after, pending tasks
    cancelled); returns what ``main`` returns and raises what it raises."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - installed with uvicorn[standard]
        return asyncio.run(main)
    return uvloop.run(main)
