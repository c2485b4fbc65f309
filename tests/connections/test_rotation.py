"""Key rotation: after ``rotate`` every secret decrypts with the new key alone; the start-up check
catches a wrong key; a ciphertext moved to another row does not decrypt."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.connections import StoreConnectionRepository
from app.store.sqlite import SQLiteStore
from crm_sync.catalog import load_catalog
from crm_sync.credentials import CredentialService
from crm_sync.models import OAuthApp
from crm_sync.vault import (
    DecryptionError,
    Keyring,
    Vault,
    VaultKeyError,
    check_keys,
    generate_key,
    key_id_of,
    parse_key,
    rotate,
)


async def _seed(repo: StoreConnectionRepository, vault: Vault, n: int) -> list[tuple[str, str, str]]:
    service = CredentialService(catalog=load_catalog(), repository=repo, vault=vault)
    made = []
    for i in range(n):
        tenant = f"t{i % 3}"
        conn = await service.create(tenant, "cal_com", {"api_key": f"cal_live_secret_{i:04d}"})
        made.append((tenant, conn.id, f"cal_live_secret_{i:04d}"))
    await repo.save_oauth_app(
        OAuthApp.seal(
            vault, tenant_id="t1", provider="hubspot", client_id="cid", client_secret="app-secret-xyz", at=1.0
        )
    )
    return made


async def test_rotate_then_drop_the_old_key(tmp_path: Path) -> None:
    old, new = generate_key(), generate_key()
    store = SQLiteStore(tmp_path / "db.sqlite")
    repo = StoreConnectionRepository(store)
    try:
        made = await _seed(repo, Vault(Keyring(parse_key(old))), 7)
        # a key change without the old key listed: the start-up check refuses to go on
        with pytest.raises(VaultKeyError) as info:
            await check_keys(repo, Vault(Keyring(parse_key(new))))
        assert "8 stored record(s)" in str(info.value) and old not in str(info.value)

        both = Vault(Keyring.from_env({"ENCRYPTION_KEY": new, "ENCRYPTION_KEYS_OLD": old}))
        assert await check_keys(repo, both) == 8
        report = await rotate(repo, both, batch_size=2)  # several pages
        assert (report.scanned, report.rotated, report.failed, report.remaining) == (8, 8, 0, 0)
        again = await rotate(repo, both, batch_size=2)  # idempotent
        assert again.rotated == 0 and again.scanned == 8

        only_new = Vault(Keyring(parse_key(new)))
        assert await check_keys(repo, only_new) == 8
        for tenant, conn_id, value in made:
            conn = await repo.get_connection(tenant, conn_id)
            assert conn is not None
            assert key_id_of(conn.secrets["api_key"]) == only_new.keyring.current_id
            secret = conn.secret(only_new, "api_key")
            assert secret is not None and secret.reveal() == value
        app = await repo.get_oauth_app("t1", "hubspot")
        assert app is not None and app.credentials(only_new).client_secret.reveal() == "app-secret-xyz"
        audit = await repo.list_audit("t1")
        assert any(e.kind == "key_rotation" and e.detail["rotated"] >= 1 for e in audit)
    finally:
        await store.close()


async def test_rotation_reports_a_row_swapped_secret(tmp_path: Path) -> None:
    key = generate_key()
    store = SQLiteStore(tmp_path / "db.sqlite")
    repo = StoreConnectionRepository(store)
    vault = Vault(Keyring(parse_key(key)))
    try:
        made = await _seed(repo, vault, 2)
        (t_a, a, _), (t_b, b, _) = made
        conn_a = await repo.get_connection(t_a, a)
        assert conn_a is not None
        # copy A's ciphertext into B's row: B no longer decrypts
        await repo.update_connection(t_b, b, lambda c: c.replace(secrets=dict(conn_a.secrets)))
        conn_b = await repo.get_connection(t_b, b)
        assert conn_b is not None
        with pytest.raises(DecryptionError):
            conn_b.secret(vault, "api_key")
        with pytest.raises(VaultKeyError):
            await check_keys(repo, vault)
        report = await rotate(repo, Vault(Keyring(parse_key(generate_key()), [parse_key(key)])))
        assert report.failed == 1 and report.failures == (f"{t_b}/connection/{b}",)
    finally:
        await store.close()
