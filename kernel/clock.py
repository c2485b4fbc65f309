"""Clocks: the port, the system clock, and a manual one for tests, the simulator and replays.

Times are floats, seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Port: the current time, seconds since the Unix epoch (UTC)."""

    def now(self) -> float:
        """Seconds since the epoch, UTC."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> float:
        """Seconds since the epoch, UTC."""
        return time.time()


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float) -> None:
        self._now = float(start)

    def now(self) -> float:
        """The current manual time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds``."""
        self._now += seconds

    def set(self, at: float) -> None:
        """Jump to ``at``."""
        self._now = float(at)
