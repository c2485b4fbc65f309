"""Fixtures of the calendar tests: stores (SQLite and the Firestore emulator) for the built-in
calendar's ledger, and a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from app.store import Store
from app.store.firestore import FirestoreStore
from app.store.sqlite import SQLiteStore
from tests.conftest import EMULATOR_PROJECT
from tests.support.firestore_emulator import FirestoreEmulator


def _reset(emulator: FirestoreEmulator) -> None:
    """Wipe the emulator (its reset waits as long as a first, class-loading delete needs)."""
    emulator.reset()


@pytest.fixture(params=["sqlite", "firestore"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable[[], Store]]:
    """Opens stores over one fresh data set (each call: another connection, as another process)."""
    opened: list[Store] = []
    if request.param == "firestore":
        emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
        _reset(emulator)

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
