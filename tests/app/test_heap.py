"""The serving process's startup heap is frozen out of the collector's reach (issue 15: a full
collection of the app's objects paused the event loop 100-300 ms)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from app.ops.heap import freeze_startup_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test session collects as before


def test_objects_alive_at_startup_are_frozen_and_later_ones_are_not(unfrozen: None) -> None:
    startup = [[i] for i in range(1000)]  # containers the collector tracks
    frozen = freeze_startup_heap()
    assert frozen >= 1000 and gc.get_freeze_count() == frozen
    tracked = {id(o) for o in gc.get_objects()}
    assert not any(id(item) in tracked for item in startup)  # no collection traverses them
    later = [[i] for i in range(10)]
    tracked = {id(o) for o in gc.get_objects()}
    assert all(id(item) in tracked for item in later)
