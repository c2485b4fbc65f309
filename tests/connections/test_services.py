"""The app's wiring: services built from env, the start-up key check, rotation through them."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.connections import build_connection_services
from app.store.sqlite import SQLiteStore
from crm_sync.vault import KeyConfigError, VaultKeyError, generate_key


async def test_build_from_env_check_and_rotate(tmp_path: Path) -> None:
    old, new = generate_key(), generate_key()
    store = SQLiteStore(tmp_path / "db.sqlite")
    try:
        with pytest.raises(KeyConfigError):
            build_connection_services(store, {}, redirect_uris=[])
        first = build_connection_services(
            store,
            {"ENCRYPTION_KEY": old, "GHL_CLIENT_ID": "cid", "GHL_CLIENT_SECRET": "csec"},
            redirect_uris=["https://app.test/cb"],
        )
        assert (await first.oauth.app_credentials("default", "gohighlevel")).client_id == "cid"
        conn = await first.credentials.create("t1", "cal_com", {"api_key": "cal_live_abc123"})
        assert await first.startup_check() == 1
        await first.aclose()

        wrong = build_connection_services(store, {"ENCRYPTION_KEY": new}, redirect_uris=[])
        with pytest.raises(VaultKeyError):
            await wrong.startup_check()
        await wrong.aclose()

        rotating = build_connection_services(
            store, {"ENCRYPTION_KEY": new, "ENCRYPTION_KEYS_OLD": old}, redirect_uris=[]
        )
        assert (await rotating.rotate()).rotated == 1
        await rotating.aclose()
        assert await wrong.startup_check() == 1
        stored = await wrong.repository.get_connection("t1", conn.id)
        assert stored is not None and stored.secret(wrong.vault, "api_key").reveal() == "cal_live_abc123"  # type: ignore[union-attr]
    finally:
        await store.close()
