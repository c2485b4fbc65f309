"""Fixtures of the credential-layer tests: a vault, a SQLite store and its repository, the real
OAuth test server, and the services pointed at it (GoHighLevel's catalog entry, overridden)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from app.connections import StoreConnectionRepository
from app.store.sqlite import SQLiteStore
from crm_sync.catalog import Catalog, load_catalog
from crm_sync.client import ConnectionClients
from crm_sync.models import OAuthAppCredentials
from crm_sync.oauth import OAuthService
from crm_sync.vault import Keyring, Secret, Vault, generate_key, parse_key
from tests.crm_sync.oauth_server import OAuthTestServer, running_oauth_server

TENANT = "default"


@pytest.fixture
def key_hex() -> str:
    return generate_key()


@pytest.fixture
def vault(key_hex: str) -> Vault:
    return Vault(Keyring(parse_key(key_hex)))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "leadwarm.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(db_path)
    yield s
    await s.close()


@pytest.fixture
def repo(store: SQLiteStore) -> StoreConnectionRepository:
    return StoreConnectionRepository(store)


@pytest.fixture
def oauth_server() -> Iterator[OAuthTestServer]:
    with running_oauth_server() as server:
        yield server


def catalog_for(server: OAuthTestServer) -> Catalog:
    """GoHighLevel's entry pointed at the test server (PKCE on, RFC 7009 revocation)."""
    return load_catalog().override(
        "gohighlevel",
        oauth2={
            "authorization_url": f"{server.url}/authorize",
            "token_url": f"{server.url}/token",
            "revoke_url": f"{server.url}/revoke",
            "pkce": True,
        },
        api={"base_url": server.url},
    )


@pytest.fixture
def catalog(oauth_server: OAuthTestServer) -> Catalog:
    return catalog_for(oauth_server)


@pytest.fixture
def oauth(
    catalog: Catalog, repo: StoreConnectionRepository, vault: Vault, oauth_server: OAuthTestServer
) -> OAuthService:
    return OAuthService(
        catalog=catalog,
        repository=repo,
        vault=vault,
        redirect_uris=[oauth_server.redirect_uri],
        default_apps={
            "gohighlevel": OAuthAppCredentials(oauth_server.client_id, Secret(oauth_server.client_secret))
        },
        default_tenant=TENANT,
    )


@pytest.fixture
async def clients(
    catalog: Catalog, repo: StoreConnectionRepository, vault: Vault, oauth: OAuthService
) -> AsyncIterator[ConnectionClients]:
    c = ConnectionClients(catalog=catalog, repository=repo, vault=vault, oauth=oauth, allow_private=True)
    yield c
    await c.aclose()
