"""The vault: AES-256-GCM sealed secrets bound to their row, key parsing, the keyring and Secret."""

from __future__ import annotations

import base64
import pickle

import pytest

from crm_sync.vault import (
    DecryptionError,
    KeyConfigError,
    Keyring,
    Secret,
    Vault,
    VaultKeyError,
    generate_key,
    key_id,
    key_id_of,
    parse_key,
)

ROW = {"tenant_id": "t1", "record_id": "connection/conn_1", "field": "access_token"}


def make_vault() -> Vault:
    return Vault(Keyring(parse_key(generate_key())))


def test_round_trip_with_fresh_nonce() -> None:
    vault = make_vault()
    a = vault.encrypt("tok-secret-1", **ROW)
    b = vault.encrypt(Secret("tok-secret-1"), **ROW)
    assert a != b  # a random nonce each time
    assert "tok-secret-1" not in a
    assert vault.decrypt(a, **ROW).reveal() == "tok-secret-1"
    assert vault.decrypt(b, **ROW) == Secret("tok-secret-1")
    version, kid, body = a.split(".")
    assert version == "v1" and kid == vault.keyring.current_id == key_id_of(a)
    assert len(base64.urlsafe_b64decode(body + "==")) == 12 + len("tok-secret-1") + 16


@pytest.mark.parametrize(
    "other",
    [
        {**ROW, "tenant_id": "t2"},
        {**ROW, "record_id": "connection/conn_2"},
        {**ROW, "field": "refresh_token"},
    ],
)
def test_row_swapped_ciphertext_fails(other: dict[str, str]) -> None:
    vault = make_vault()
    sealed = vault.encrypt("tok-secret-1", **ROW)
    with pytest.raises(DecryptionError) as info:
        vault.decrypt(sealed, **other)
    assert "tok-secret-1" not in str(info.value)


def test_tampered_ciphertext_fails() -> None:
    vault = make_vault()
    sealed = vault.encrypt("tok-secret-1", **ROW)
    version, kid, body = sealed.split(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[15] ^= 0x01
    forged = f"{version}.{kid}." + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(DecryptionError):
        vault.decrypt(forged, **ROW)
    for junk in ("", "v1.abc", "v2.00000000.AAAA", f"v1.{kid}.!!!", f"v1.{kid}.AAAA", "x" * 70_000):
        with pytest.raises(DecryptionError):
            vault.decrypt(junk, **ROW)


def test_unknown_key_is_a_key_error_and_old_keys_still_read() -> None:
    old, new = generate_key(), generate_key()
    sealed = Vault(Keyring(parse_key(old))).encrypt("s3cret-value", **ROW)
    with pytest.raises(VaultKeyError):
        Vault(Keyring(parse_key(new))).decrypt(sealed, **ROW)
    both = Vault(Keyring.from_env({"ENCRYPTION_KEY": new, "ENCRYPTION_KEYS_OLD": f" {old} ,"}))
    assert both.decrypt(sealed, **ROW).reveal() == "s3cret-value"
    assert both.needs_rotation(sealed)
    resealed = both.reseal(sealed, **ROW)
    assert not both.needs_rotation(resealed) and key_id_of(resealed) == key_id(parse_key(new))
    assert both.reseal(resealed, **ROW) == resealed


def test_key_formats() -> None:
    raw = bytes(range(32))
    assert parse_key(raw.hex()) == raw
    assert parse_key(base64.b64encode(raw).decode()) == raw
    assert parse_key(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw
    for bad in ("", "abc", "zz" * 32, base64.b64encode(bytes(16)).decode(), "0" * 63):
        with pytest.raises(KeyConfigError) as info:
            parse_key(bad)
        assert bad not in str(info.value) or not bad
    with pytest.raises(KeyConfigError):
        Keyring.from_env({})
    assert len(generate_key()) == 64


def test_secret_never_shows_itself() -> None:
    s = Secret("hunter2-password")
    assert "hunter2" not in repr(s) + str(s) + f"{s}" + f"{s!r}" + repr([s]) + repr({"k": s})
    assert s.reveal() == "hunter2-password" and s == Secret("hunter2-password") and s != Secret("other")
    with pytest.raises(TypeError):
        hash(s)
    with pytest.raises(TypeError):
        pickle.dumps(s)
    vault = make_vault()
    assert parse_key.__name__ and vault.keyring.current_id in repr(vault)
