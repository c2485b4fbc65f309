"""Backends the contract suite runs against. Each parameter yields a fresh, empty store.

``firestore`` runs against Google's emulator (``tests/support/firestore_emulator.py``): one per
pytest session, started on first use (so ``-k sqlite`` starts no Java), wiped before every test.
A missing gcloud fails these tests rather than skipping them: CI installs it.

``open_store()`` opens another store over the same data, standing for a second service process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from app.store import Store
from app.store.firestore import FirestoreStore
from app.store.sqlite import SQLiteStore
from tests.support.firestore_emulator import EmulatorError, FirestoreEmulator, running_firestore_emulator

EMULATOR_PROJECT = "demo-leadwarm-test"
RULES = Path(__file__).resolve().parents[2] / "firestore.rules"


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
        yield emulator


@pytest.fixture(params=["sqlite", "firestore"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable[[], Store]]:
    """A function opening a store over this test's (initially empty) data; all are closed after."""
    opened: list[Store] = []
    if request.param == "firestore":
        emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
        emulator.reset()

    def open_one() -> Store:
        backend: Store
        if request.param == "sqlite":
            backend = SQLiteStore(tmp_path / "leadwarm.db")
        else:
            backend = FirestoreStore(project_id=EMULATOR_PROJECT, emulator_host=emulator.host_port)
        opened.append(backend)
        return backend

    yield open_one
    for backend in opened:
        await backend.close()


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Store:
    """A fresh, empty store of the backend under test."""
    return open_store()
