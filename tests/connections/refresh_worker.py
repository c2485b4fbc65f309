"""A second service process for the cross-process refresh test.

``python -m tests.connections.refresh_worker DB KEY_HEX SERVER_URL CLIENT_ID CLIENT_SECRET TENANT CONN_ID N``
opens the same SQLite file, prints ``ready``, waits for a line on stdin, then makes N concurrent
authorised calls and prints one JSON line ``{"ok": <successes>, "errors": [...]}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from app.connections import StoreConnectionRepository
from app.store.sqlite import SQLiteStore
from crm_sync.client import ConnectionClients
from crm_sync.models import OAuthAppCredentials
from crm_sync.oauth import OAuthService
from crm_sync.vault import Keyring, Secret, Vault, parse_key
from tests.connections.conftest import catalog_for
from tests.crm_sync.oauth_server import OAuthTestServer


async def main(argv: list[str]) -> None:
    db, key_hex, url, client_id, client_secret, tenant, conn_id, n = argv
    store = SQLiteStore(Path(db))
    repo = StoreConnectionRepository(store)
    vault = Vault(Keyring(parse_key(key_hex)))
    catalog = catalog_for(OAuthTestServer(url=url))
    oauth = OAuthService(
        catalog=catalog,
        repository=repo,
        vault=vault,
        redirect_uris=[],
        default_apps={"gohighlevel": OAuthAppCredentials(client_id, Secret(client_secret))},
        default_tenant=tenant,
    )
    clients = ConnectionClients(
        catalog=catalog, repository=repo, vault=vault, oauth=oauth, owner="worker", allow_private=True
    )
    client = await clients.client(tenant, conn_id)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

    async def one() -> str | None:
        try:
            resp = await client.request("GET", "/api/me")
            return None if resp.status_code == 200 else f"HTTP {resp.status_code}"
        except Exception as exc:  # report, do not crash: the parent asserts on it
            return f"{type(exc).__name__}: {exc}"

    results = await asyncio.gather(*(one() for _ in range(int(n))))
    print(json.dumps({"ok": results.count(None), "errors": [r for r in results if r]}), flush=True)
    await clients.aclose()
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
