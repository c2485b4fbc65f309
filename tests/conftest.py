"""Session-wide fixtures shared by every test package.

``firestore_emulator``: Google's Firestore emulator (``tests/support/firestore_emulator.py``), one
per pytest session, started on first use only, so a run that selects no Firestore test starts no
Java. A missing gcloud fails the tests that ask for it rather than skipping them: CI installs it.
Tests that use it wipe it first (:meth:`FirestoreEmulator.reset`).

A test about to hit pytest-timeout's limit first dumps every asyncio task's await chain
(``tests/support/task_dump.py``, 10 s before the limit), and the emulator's Java request threads
when it runs, so a hang says where it waits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stamina

from tests.support.firestore_emulator import EmulatorError, FirestoreEmulator, running_firestore_emulator
from tests.support.recording import RecordingServer
from tests.support.task_dump import TaskDumpWatchdog

__all__ = ["EMULATOR_PROJECT", "RULES"]

#: The project id every Firestore test uses (``demo-`` projects never reach Google).
EMULATOR_PROJECT = "demo-leadwarm-test"
#: The production security rules, loaded into the emulator.
RULES = Path(__file__).resolve().parents[1] / "firestore.rules"


#: How long before pytest-timeout's limit the asyncio tasks are dumped, seconds (at most a tenth of it).
TASK_DUMP_MARGIN_S = 10.0


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> None:
    """Arm a :class:`TaskDumpWatchdog` just before pytest-timeout's own timer (which still runs)."""
    timeout = float(getattr(settings, "timeout", 0) or 0)
    if timeout > 0:
        margin = min(TASK_DUMP_MARGIN_S, timeout / 10)
        watchdog = TaskDumpWatchdog(timeout - margin, title=item.nodeid, extra=[_emulator_threads])
        item.stash[_WATCHDOG] = watchdog.start()


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> None:
    """Disarm the test's :class:`TaskDumpWatchdog`, if any (pytest-timeout cancels its own)."""
    watchdog = item.stash.get(_WATCHDOG, None)
    if watchdog is not None:
        watchdog.cancel()


_WATCHDOG = pytest.StashKey[TaskDumpWatchdog]()
#: The session's emulator once started: a hang also dumps its Java request threads.
_RUNNING_EMULATORS: list[FirestoreEmulator] = []


def _emulator_threads() -> str:
    """The running emulator's request threads (``jstack``), or a line saying none runs."""
    dumps = [emulator.thread_dump() for emulator in list(_RUNNING_EMULATORS)]
    return "\n".join(dumps) or "(no Firestore emulator running)"


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[FirestoreEmulator]:
    """One emulator for the session, running the production security rules (the Admin SDK bypasses them)."""
    with contextlib.ExitStack() as stack:
        failure = ""
        try:
            emulator = stack.enter_context(running_firestore_emulator(project=EMULATOR_PROJECT, rules=RULES))
        except EmulatorError as exc:
            failure = str(exc)
        if failure:
            pytest.fail(failure, pytrace=False)
        _RUNNING_EMULATORS.append(emulator)
        try:
            yield emulator
        finally:
            _RUNNING_EMULATORS.remove(emulator)


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    """stamina retries at once in tests (3 attempts), so no test waits for a backoff."""
    stamina.set_testing(True, attempts=3)
    yield
    stamina.set_testing(False)


@pytest.fixture
def graph() -> Iterator[RecordingServer]:
    """A recording stand-in for a provider's API (WhatsApp's Graph API in most tests)."""
    server = RecordingServer()
    try:
        yield server
    finally:
        server.close()
