"""The credential vault: secrets at rest under AES-256-GCM, bound to their row, with key rotation.

Format of ``ENCRYPTION_KEY`` (and of each entry of ``ENCRYPTION_KEYS_OLD``, comma-separated): 32
random bytes written as 64 hexadecimal characters (the seeds' format, ``openssl rand -hex 32``) or
as base64 / base64url (``openssl rand -base64 32``). :func:`generate_key` makes one. A key's id is
derived from the key itself (:func:`key_id`), so nothing else needs configuring.

A stored secret is the text ``v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>``: a fresh random
96-bit nonce per encryption (NIST SP 800-38D section 8.2.2), and associated data naming the tenant,
the record (connection id) and the field, so a ciphertext copied into another row, another tenant
or another field fails to decrypt (:class:`DecryptionError`).

Rotation (:func:`rotate`) re-encrypts every stored secret with the current key, one record at a
time inside the store's transactions, while the service keeps serving: records written meanwhile
already use the current key, a record is skipped when all its secrets are current (idempotent),
and a stopped run resumes by running again. Once a run reports ``remaining == 0`` the old key
can be removed from ``ENCRYPTION_KEYS_OLD`` (wait for the OAuth state lifetime, 10 minutes,
too: pending authorisations keep their PKCE verifier under the key of their time).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets as _secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crm_sync.base import IntegrationError

if TYPE_CHECKING:
    from crm_sync.repository import ConnectionRepository

__all__ = [
    "DecryptionError",
    "KeyConfigError",
    "Keyring",
    "RotationReport",
    "Secret",
    "Vault",
    "VaultError",
    "VaultKeyError",
    "check_keys",
    "generate_key",
    "key_id",
    "key_id_of",
    "parse_key",
    "record_key",
    "rotate",
]

_VERSION: Final = "v1"
_NONCE_BYTES: Final = 12
_KEY_BYTES: Final = 32
_MAX_CIPHERTEXT_CHARS: Final = 64_000


class VaultError(IntegrationError):
    """Base error of the vault. Messages name key ids and records, never key material or secrets."""


class KeyConfigError(VaultError):
    """``ENCRYPTION_KEY`` or ``ENCRYPTION_KEYS_OLD`` is missing or not 32 bytes in hex or base64."""


class DecryptionError(VaultError):
    """A stored secret does not decrypt: tampered, copied from another row or field, or malformed."""


class VaultKeyError(DecryptionError):
    """A stored secret was written under a key the keyring does not hold (a wrong or dropped
    ``ENCRYPTION_KEY``). Raised at start-up by :func:`check_keys`; the service must not start."""


class Secret:
    """A secret string whose ``repr`` and ``str`` never show it; :meth:`reveal` returns it.

    Equality compares in constant time; a ``Secret`` is not hashable (so it never lands in a set
    or a dict key that a log might print).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value

    def reveal(self) -> str:
        """The secret in clear: pass it straight to the place that needs it, never to a log."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return _secrets.compare_digest(self._value.encode(), other._value.encode())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not picklable")


def generate_key() -> str:
    """A new random key for ``ENCRYPTION_KEY``: 32 bytes as 64 hexadecimal characters."""
    return os.urandom(_KEY_BYTES).hex()


def parse_key(text: str) -> bytes:
    """Read one key: 64 hex characters, or base64 / base64url of 32 bytes (padding optional).

    Raises:
        KeyConfigError: anything else (the message never repeats the value).
    """
    raw = (text or "").strip()
    if len(raw) == 64:
        try:
            return bytes.fromhex(raw)
        except ValueError:
            pass
    if 40 <= len(raw) <= 48:
        padded = raw + "=" * (-len(raw) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                key = decode(padded.encode("ascii"))
            except (binascii.Error, ValueError, UnicodeEncodeError):
                continue
            if len(key) == _KEY_BYTES:
                return key
    raise KeyConfigError(
        f"an encryption key must be 32 bytes as 64 hex characters or base64 (got {len(raw)} characters)"
    )


def key_id(key: bytes) -> str:
    """The key's id: 8 hex characters of a SHA-256 over a label and the key (reveals nothing of it)."""
    return hashlib.sha256(b"leadwarm-vault-key-id\x00" + key).hexdigest()[:8]


class Keyring:
    """The current key (encrypts) and older keys (still decrypt), by key id.

    ``current`` and ``old`` are raw 32-byte keys (see :func:`parse_key`).
    """

    def __init__(self, current: bytes, old: Sequence[bytes] = ()) -> None:
        if len(current) != _KEY_BYTES or any(len(k) != _KEY_BYTES for k in old):
            raise KeyConfigError("every encryption key must be 32 bytes")
        self.current_id = key_id(current)
        self._keys: dict[str, AESGCM] = {key_id(k): AESGCM(k) for k in old}
        self._keys[self.current_id] = AESGCM(current)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Keyring:
        """Build from ``ENCRYPTION_KEY`` and the optional comma-separated ``ENCRYPTION_KEYS_OLD``.

        Raises:
            KeyConfigError: ``ENCRYPTION_KEY`` is missing or a key is malformed.
        """
        current = env.get("ENCRYPTION_KEY", "")
        if not current.strip():
            raise KeyConfigError("ENCRYPTION_KEY is not set (generate one with `openssl rand -hex 32`)")
        old = [parse_key(part) for part in env.get("ENCRYPTION_KEYS_OLD", "").split(",") if part.strip()]
        return cls(parse_key(current), old)

    @property
    def key_ids(self) -> list[str]:
        """Every key id the ring can decrypt with, the current one first."""
        return [self.current_id, *(k for k in self._keys if k != self.current_id)]

    def cipher(self, kid: str) -> AESGCM:
        """The AEAD for ``kid``; raises :class:`VaultKeyError` when the ring lacks it."""
        try:
            return self._keys[kid]
        except KeyError:
            raise VaultKeyError(f"no key with id {kid!r} in the keyring (ENCRYPTION_KEY changed?)") from None

    def __repr__(self) -> str:
        return f"Keyring(current={self.current_id!r}, keys={self.key_ids!r})"


def _aad(tenant_id: str, record_id: str, field: str) -> bytes:
    return json.dumps(["leadwarm-vault", _VERSION, tenant_id, record_id, field]).encode()


class Vault:
    """Encrypts and decrypts secrets for one record field (tenant, record id, field name)."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def encrypt(self, value: Secret | str, *, tenant_id: str, record_id: str, field: str) -> str:
        """Seal ``value`` under the current key; returns ``v1.<kid>.<base64url>`` text."""
        plain = value.reveal() if isinstance(value, Secret) else value
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self.keyring.cipher(self.keyring.current_id).encrypt(
            nonce, plain.encode("utf-8"), _aad(tenant_id, record_id, field)
        )
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{_VERSION}.{self.keyring.current_id}.{body}"

    def decrypt(self, stored: str, *, tenant_id: str, record_id: str, field: str) -> Secret:
        """Open a sealed value written for exactly this tenant, record and field.

        Raises:
            VaultKeyError: written under a key the keyring lacks.
            DecryptionError: malformed, tampered, or sealed for another row or field.
        """
        kid, blob = _split(stored)
        cipher = self.keyring.cipher(kid)
        try:
            plain = cipher.decrypt(
                blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _aad(tenant_id, record_id, field)
            )
        except InvalidTag:
            raise DecryptionError(
                f"secret {field!r} of record {record_id!r} (tenant {tenant_id!r}) failed authentication: "
                "tampered or copied from another row"
            ) from None
        return Secret(plain.decode("utf-8"))

    def needs_rotation(self, stored: str) -> bool:
        """Whether ``stored`` was sealed under a key other than the current one."""
        return key_id_of(stored) != self.keyring.current_id

    def reseal(self, stored: str, *, tenant_id: str, record_id: str, field: str) -> str:
        """``stored`` under the current key (unchanged when it already is). Raises as :meth:`decrypt`."""
        if not self.needs_rotation(stored):
            return stored
        secret = self.decrypt(stored, tenant_id=tenant_id, record_id=record_id, field=field)
        return self.encrypt(secret, tenant_id=tenant_id, record_id=record_id, field=field)

    def __repr__(self) -> str:
        return f"Vault({self.keyring!r})"


def key_id_of(stored: str) -> str:
    """The key id a sealed value names. Raises :class:`DecryptionError` when it is malformed."""
    return _split(stored)[0]


def _split(stored: str) -> tuple[str, bytes]:
    if not isinstance(stored, str) or len(stored) > _MAX_CIPHERTEXT_CHARS:
        raise DecryptionError("a stored secret is not vault text")
    parts = stored.split(".")
    if len(parts) != 3 or parts[0] != _VERSION or len(parts[1]) != 8:
        raise DecryptionError("a stored secret is not vault text (expected v1.<key id>.<data>)")
    try:
        blob = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionError("a stored secret is not valid base64url") from None
    if len(blob) < _NONCE_BYTES + 16:
        raise DecryptionError("a stored secret is too short")
    return parts[1], blob


# --------------------------------------------------------------------------- rotation


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What one :func:`rotate` run did: records ``scanned``, ``rotated`` (rewritten) and
    ``failed`` (some secret did not decrypt: listed in ``failures`` as ``tenant/kind/id``), and
    ``remaining``: records still holding a secret under an old key when the run ended."""

    scanned: int
    rotated: int
    failed: int
    remaining: int
    failures: tuple[str, ...] = ()


def record_key(kind: str, record_id: str) -> str:
    """The record name sealed into a secret's associated data: ``"<kind>/<id>"``
    (``connection/conn_x``, ``oauth_app/hubspot``, ``oauth_state/<key>``)."""
    return f"{kind}/{record_id}"


SEALED_KINDS: Final = ("connection", "oauth_app")


async def rotate(repository: ConnectionRepository, vault: Vault, *, batch_size: int = 100) -> RotationReport:
    """Re-encrypt every stored secret (connections and OAuth app registrations of every tenant)
    under the vault's current key, while the service keeps serving.

    Works batch by batch (``batch_size`` records a page, paged by id), each record rewritten in its
    own store transaction that re-reads it first (:meth:`ConnectionRepository.update_secrets`), so
    a token refresh racing the rotation is never lost. Idempotent and resumable: records already
    under the current key are not rewritten. Records a ``key_rotation`` audit event per tenant
    that had something rewritten or failing. Never raises for one bad record: it is counted in
    ``failed`` (and ``remaining``) and the run goes on.
    """
    from crm_sync.audit import AuditEvent

    scanned = rotated = failed = 0
    failures: list[str] = []
    batch_size = max(1, min(int(batch_size), 1000))
    for tenant_id in await repository.list_tenants():
        t_rotated = t_failed = 0
        for kind in SEALED_KINDS:
            after: str | None = None
            while True:
                ids = await repository.list_sealed_ids(tenant_id, kind, after=after, limit=batch_size)
                for record_id in ids:
                    scanned += 1
                    aad_id = record_key(kind, record_id)

                    def reseal(
                        sealed: dict[str, str], aad_id: str = aad_id, tenant_id: str = tenant_id
                    ) -> dict[str, str] | None:
                        if not any(vault.needs_rotation(v) for v in sealed.values()):
                            return None
                        return {
                            f: vault.reseal(v, tenant_id=tenant_id, record_id=aad_id, field=f)
                            for f, v in sealed.items()
                        }

                    try:
                        changed = await repository.update_secrets(tenant_id, kind, record_id, reseal)
                    except DecryptionError:
                        failed += 1
                        t_failed += 1
                        failures.append(f"{tenant_id}/{kind}/{record_id}")
                        continue
                    if changed:
                        rotated += 1
                        t_rotated += 1
                if len(ids) < batch_size:
                    break
                after = ids[-1]
        if t_rotated or t_failed:
            await repository.append_audit(
                AuditEvent.new(
                    tenant_id,
                    "key_rotation",
                    detail={"rotated": t_rotated, "failed": t_failed, "key_id": vault.keyring.current_id},
                )
            )
    return RotationReport(scanned, rotated, failed, failed, tuple(failures))


async def check_keys(repository: ConnectionRepository, vault: Vault, *, limit: int = 10_000) -> int:
    """Start-up check: decrypt the secrets of up to ``limit`` stored records; returns how many
    records were read.

    Raises:
        VaultKeyError: a secret was written under a key the keyring lacks (wrong ``ENCRYPTION_KEY``,
            or an old key dropped before :func:`rotate` finished), or does not authenticate. The
            message counts and names records (``tenant/kind/id``), never secrets.
    """
    checked = 0
    bad: list[str] = []
    for tenant_id in await repository.list_tenants():
        for kind in SEALED_KINDS:
            after: str | None = None
            while checked < limit:
                ids = await repository.list_sealed_ids(tenant_id, kind, after=after, limit=200)
                for record_id in ids:
                    checked += 1
                    sealed = await repository.get_secrets(tenant_id, kind, record_id) or {}
                    try:
                        for f, v in sealed.items():
                            vault.decrypt(
                                v, tenant_id=tenant_id, record_id=record_key(kind, record_id), field=f
                            )
                    except DecryptionError:
                        bad.append(f"{tenant_id}/{kind}/{record_id}")
                if len(ids) < 200:
                    break
                after = ids[-1]
    if bad:
        shown = ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise VaultKeyError(
            f"{len(bad)} stored record(s) do not decrypt with the keyring {vault.keyring.key_ids}: {shown}. "
            "Set ENCRYPTION_KEY to the key they were written with (or list it in ENCRYPTION_KEYS_OLD)."
        )
    return checked
