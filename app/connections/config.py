"""The connection services' configuration from :class:`app.core.settings.Settings`.

* The vault key: ``ENCRYPTION_KEY``; when it is not set (the zero-config embedded run), a key
  generated once into ``LEADWARM_DATA_DIR/encryption.key`` (mode 0600) with a warning that
  production must set ``ENCRYPTION_KEY``. Once ``ENCRYPTION_KEY`` is set, a generated key left in
  the data folder is still read as an old key, so ``leadwarm vault rotate`` moves its secrets over.
* The default tenant's OAuth apps: ``GHL_CLIENT_ID`` / ``GHL_CLIENT_SECRET`` and the other prefixes
  of the catalog's ``env_prefix`` (``HUBSPOT_``, ``PIPEDRIVE_``, ``SALESFORCE_``, ``GOOGLE_``,
  ``CALENDLY_``).
* The OAuth redirect allowlist (``OAUTH_REDIRECT_URIS``, default ``PUBLIC_BASE_URL/auth/<provider>/
  callback`` for every oauth2 provider) and the result page (``OAUTH_RESULT_URL``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import SecretStr

from app.connections.services import ConnectionServices, build_connection_services
from app.core.logs import get_logger
from app.core.settings import Settings
from app.store import Store
from crm_sync.catalog import Catalog, load_catalog
from crm_sync.vault import generate_key, parse_key

__all__ = [
    "KEY_FILE_NAME",
    "ConnectionConfig",
    "build_services",
    "connection_config",
    "load_settings_catalog",
]

log = get_logger("leadwarm.connections")

#: The generated vault key's file in ``LEADWARM_DATA_DIR`` (embedded runs without ENCRYPTION_KEY).
KEY_FILE_NAME: Final = "encryption.key"


def _plain(value: SecretStr | str | None) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value().strip()
    return (value or "").strip()


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """What the services are built from. ``env`` holds secrets in clear (never log it);
    ``generated_key_file`` is set when the vault key came from the data folder; ``link_key`` signs
    the short-lived OAuth init links (derived from the vault key, so it needs no setting);
    ``public_base_url`` is ``PUBLIC_BASE_URL`` without its trailing slash."""

    env: dict[str, str]
    redirect_uris: tuple[str, ...]
    result_url: str
    generated_key_file: Path | None
    link_key: bytes
    public_base_url: str = ""

    def __repr__(self) -> str:
        return (
            f"ConnectionConfig(redirect_uris={self.redirect_uris!r}, result_url={self.result_url!r}, "
            f"generated_key_file={self.generated_key_file!r})"
        )


def _generated_key(data_dir: Path, *, create: bool) -> tuple[str | None, Path]:
    path = data_dir / KEY_FILE_NAME
    if not path.exists():
        if not create:
            return None, path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(generate_key() + "\n")
        path.chmod(0o600)
    return path.read_text().strip(), path


def load_settings_catalog(settings: Settings) -> Catalog:
    """``INTEGRATIONS_CATALOG`` when set, else the shipped catalog. Raises ``CatalogError``."""
    return load_catalog(settings.integrations_catalog) if settings.integrations_catalog else load_catalog()


def connection_config(settings: Settings, catalog: Catalog) -> ConnectionConfig:
    """Read the settings (see the module docstring); may create ``encryption.key``.

    Raises:
        crm_sync.vault.KeyConfigError: a key is malformed (the message never shows it).
    """
    env: dict[str, str] = {}
    current = _plain(settings.encryption_key)
    old = [part.strip() for part in _plain(settings.encryption_keys_old).split(",") if part.strip()]
    generated_file: Path | None = None
    if current:
        file_key, _ = _generated_key(settings.leadwarm_data_dir, create=False)
        if file_key and parse_key(file_key) != parse_key(current) and file_key not in old:
            old.append(file_key)  # secrets written before ENCRYPTION_KEY was set stay readable
    else:
        file_key, generated_file = _generated_key(settings.leadwarm_data_dir, create=True)
        assert file_key is not None
        current = file_key
        log.warning(
            "vault.generated_key",
            file=str(generated_file),
            message="ENCRYPTION_KEY is not set: using a key generated into the data folder. "
            "Production must set ENCRYPTION_KEY (openssl rand -hex 32)."
            + (
                " With STORE=firestore every instance needs the same key: set ENCRYPTION_KEY now."
                if settings.store == "firestore"
                else ""
            ),
        )
    env["ENCRYPTION_KEY"] = current
    if old:
        env["ENCRYPTION_KEYS_OLD"] = ",".join(old)
    for entry in catalog.providers.values():
        prefix = (entry.env_prefix or "").lower()
        if entry.oauth2 is None or not prefix:
            continue
        cid = _plain(getattr(settings, f"{prefix}_client_id", None))
        secret = _plain(getattr(settings, f"{prefix}_client_secret", None))
        if cid and secret:
            env[f"{entry.env_prefix}_CLIENT_ID"] = cid
            env[f"{entry.env_prefix}_CLIENT_SECRET"] = secret
    base = settings.public_base_url.rstrip("/")
    if settings.oauth_redirect_uris:
        redirects = tuple(u.strip() for u in settings.oauth_redirect_uris.split(",") if u.strip())
    else:
        redirects = tuple(
            f"{base}/auth/{name}/callback" for name, entry in catalog.providers.items() if entry.oauth2
        )
    link_key = hashlib.sha256(b"leadwarm-oauth-link\x00" + parse_key(current)).digest()
    return ConnectionConfig(
        env=env,
        redirect_uris=redirects,
        result_url=(settings.oauth_result_url or f"{base}/auth/result"),
        generated_key_file=generated_file,
        link_key=link_key,
        public_base_url=base,
    )


def build_services(
    settings: Settings, store: Store, *, catalog: Catalog | None = None
) -> tuple[ConnectionServices, ConnectionConfig]:
    """The connection services over ``store`` with the settings' keys, OAuth apps and redirects.
    Raises ``KeyConfigError`` (a malformed key) or ``CatalogError`` (a bad catalog file)."""
    catalog = catalog or load_settings_catalog(settings)
    config = connection_config(settings, catalog)
    services = build_connection_services(
        store,
        config.env,
        redirect_uris=config.redirect_uris,
        default_tenant=settings.default_tenant_id,
        catalog=catalog,
        allow_private=settings.egress_allow_private,
        processes=settings.worker_processes,
    )
    return services, config
