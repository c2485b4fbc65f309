"""Backends the contract suite runs against. Each parameter yields a fresh, empty store.

``firestore`` runs against Google's emulator (the session fixture ``firestore_emulator`` of
``tests/conftest.py``, started on first use, so ``-k sqlite`` starts no Java), wiped before every test.

``open_store()`` opens another store over the same data, standing for a second service process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from app.store import Store
from app.store.firestore import FirestoreStore
from app.store.sqlite import SQLiteStore
from tests.conftest import EMULATOR_PROJECT
from tests.support.firestore_emulator import FirestoreEmulator


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
