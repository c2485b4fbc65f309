"""The serving process's startup heap is frozen out of the collector's reach (issue 15: a full
collection of the app's objects paused the event loop 100-300 ms)."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.ops.heap import YOUNG_THRESHOLD, freeze_startup_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()  # the rest of the test session collects as before
    gc.set_threshold(*threshold)


def test_objects_alive_at_startup_are_frozen_and_later_ones_are_not(unfrozen: None) -> None:
    startup = [[i] for i in range(1000)]  # containers the collector tracks
    frozen = freeze_startup_heap()
    assert frozen >= 1000 and gc.get_freeze_count() == frozen
    tracked = {id(o) for o in gc.get_objects()}
    assert not any(id(item) in tracked for item in startup)  # no collection traverses them
    later = [[i] for i in range(10)]
    tracked = {id(o) for o in gc.get_objects()}
    assert all(id(item) in tracked for item in later)


def test_the_youngest_generation_is_collected_less_often_once_frozen(unfrozen: None) -> None:
    older = gc.get_threshold()[1:]
    freeze_startup_heap()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, *older) and YOUNG_THRESHOLD > 700
    kept = [[i] for i in range(YOUNG_THRESHOLD // 2)]  # half the threshold: no young collection
    assert gc.get_count()[0] >= len(kept)  # (at 700 the count restarts at every young collection)


def test_leadwarm_worker_freezes_its_startup_heap_once_started(tmp_path: Path) -> None:
    """``leadwarm worker`` (turns, timers and sends with no web server) freezes as ``leadwarm
    serve`` does: its log says how many objects it froze, then it stops on SIGTERM."""
    from tests.support.service import LEADWARM

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LEADWARM", "STORE", "FIRESTORE"))},
        "LEADWARM_DATA_DIR": str(tmp_path),
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        "ADMIN_API_KEY": "lw_heap_test_key",
    }
    proc = subprocess.Popen([LEADWARM, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    started: dict[str, object] | None = None
    lines: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    threading.Thread(target=lambda: [lines.put(raw) for raw in proc.stdout or ()], daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while started is None and time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(queue.Empty):
                line = lines.get(timeout=1.0).decode(errors="replace").strip()
                if line.startswith("{") and json.loads(line).get("event") == "worker.ready":
                    started = json.loads(line)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert started is not None, "no worker.ready line in 120 s"
    assert isinstance(started["frozen_objects"], int) and started["frozen_objects"] > 10_000
    assert started["gc_threshold"] == [YOUNG_THRESHOLD, 10, 10]
    assert code == 0
