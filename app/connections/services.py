"""Wiring of the credential layer for the app: one call builds every service over the store.

The routes (``/auth/{provider}/init``, ``/callback``, ``/disconnect``, the integrations API) and
the CLI (``leadwarm vault rotate``) use what :func:`build_connection_services` returns:

* ``oauth.begin(tenant_id, provider, redirect_uri)`` -> authorize URL;
  ``oauth.complete(state, code, provider=..., error=...)`` -> Connection (raises the
  ``StateError`` family, ``AuthorizationDeniedError``, ``TokenExchangeError``);
  ``oauth.disconnect(tenant_id, connection_id, actor=...)``; ``oauth.register_app(...)``;
* ``credentials.create/update/set_status/delete`` for api_key and basic connections;
* ``clients.client(tenant_id, connection_id)`` -> the adapters' ``ApiClient``;
  ``clients.test(tenant_id, connection_id)`` -> the ``test`` action;
* ``repository.list_connections / get_connection / list_audit`` for the API (show
  ``Connection.public_view()``, never ``to_doc()``); ``repository.purge_states(before=now)``
  from a periodic job;
* ``startup_check()`` (raises ``VaultKeyError`` when ``ENCRYPTION_KEY`` cannot read the store)
  and ``rotate()`` (``leadwarm vault rotate``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from app.connections.repository import StoreConnectionRepository
from app.store import Store
from crm_sync.catalog import Catalog, load_catalog
from crm_sync.client import ConnectionClients
from crm_sync.credentials import CredentialService
from crm_sync.oauth import OAuthService, apps_from_env
from crm_sync.vault import Keyring, RotationReport, Vault, check_keys, rotate

__all__ = ["ConnectionServices", "build_connection_services"]


@dataclass(frozen=True, slots=True)
class ConnectionServices:
    """Every service of the credential layer, sharing one vault, catalog and repository."""

    catalog: Catalog
    vault: Vault
    repository: StoreConnectionRepository
    oauth: OAuthService
    credentials: CredentialService
    clients: ConnectionClients

    async def startup_check(self) -> int:
        """Decrypt what is stored with the configured keys; returns the records read.
        Raises :class:`crm_sync.vault.VaultKeyError`: the service must not start."""
        return await check_keys(self.repository, self.vault)

    async def rotate(self, *, batch_size: int = 100) -> RotationReport:
        """Re-encrypt every secret under ``ENCRYPTION_KEY`` (see :func:`crm_sync.vault.rotate`)."""
        return await rotate(self.repository, self.vault, batch_size=batch_size)

    async def aclose(self) -> None:
        """Close the HTTP client of the authorised clients."""
        await self.clients.aclose()


def build_connection_services(
    store: Store,
    env: Mapping[str, str],
    *,
    redirect_uris: Collection[str],
    default_tenant: str = "default",
    catalog: Catalog | None = None,
    allow_private: bool = False,
    processes: int = 1,
) -> ConnectionServices:
    """Build the services from the store and the environment (``ENCRYPTION_KEY``,
    ``ENCRYPTION_KEYS_OLD``, ``GHL_CLIENT_ID``/``GHL_CLIENT_SECRET`` and the other prefixes).
    ``redirect_uris`` is the OAuth callback allowlist; ``allow_private`` lets the connections'
    HTTP pool dial private and loopback addresses (``EGRESS_ALLOW_PRIVATE``); ``processes`` is
    how many worker processes share the vendors' rate limits (``WORKER_PROCESSES``). Raises
    :class:`crm_sync.vault.KeyConfigError` when ``ENCRYPTION_KEY`` is missing or malformed."""
    catalog = catalog or load_catalog()
    vault = Vault(Keyring.from_env(env))
    repository = StoreConnectionRepository(store)
    oauth = OAuthService(
        catalog=catalog,
        repository=repository,
        vault=vault,
        redirect_uris=redirect_uris,
        default_apps=apps_from_env(catalog, env),
        default_tenant=default_tenant,
    )
    return ConnectionServices(
        catalog=catalog,
        vault=vault,
        repository=repository,
        oauth=oauth,
        credentials=CredentialService(catalog=catalog, repository=repository, vault=vault),
        clients=ConnectionClients(
            catalog=catalog,
            repository=repository,
            vault=vault,
            oauth=oauth,
            allow_private=allow_private,
            processes=processes,
        ),
    )
