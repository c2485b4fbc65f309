"""50 concurrent calls on an expired token with a rotating refresh token, spread over two processes
sharing one SQLite file: exactly one refresh, 50 successes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from app.connections import StoreConnectionRepository
from crm_sync.client import ConnectionClients
from crm_sync.oauth import OAuthService
from crm_sync.vault import Vault
from tests.connections.conftest import TENANT
from tests.connections.helpers import connect
from tests.crm_sync.oauth_server import OAuthTestServer

ROOT = Path(__file__).resolve().parents[2]


async def test_fifty_calls_two_processes_one_refresh(
    oauth: OAuthService,
    clients: ConnectionClients,
    repo: StoreConnectionRepository,
    vault: Vault,
    key_hex: str,
    db_path: Path,
    oauth_server: OAuthTestServer,
) -> None:
    conn = await connect(oauth, TENANT, oauth_server.redirect_uri)
    await repo.update_connection(TENANT, conn.id, lambda c: c.replace(expires_at=0.0))
    oauth_server.refresh_delay_s = 0.3  # both processes arrive while the refresh is under way
    old_refresh = conn.secret(vault, "refresh_token")

    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.connections.refresh_worker",
        str(db_path),
        key_hex,
        oauth_server.url,
        oauth_server.client_id,
        oauth_server.client_secret,
        TENANT,
        conn.id,
        "25",
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert worker.stdout is not None and worker.stdin is not None
        ready = await asyncio.wait_for(worker.stdout.readline(), timeout=30)
        assert ready.strip() == b"ready"
        client = await clients.client(TENANT, conn.id)
        worker.stdin.write(b"go\n")
        await worker.stdin.drain()

        async def one() -> int:
            return (await client.request("GET", "/api/me")).status_code

        local = await asyncio.gather(*(one() for _ in range(25)))
        out, err = await asyncio.wait_for(worker.communicate(), timeout=60)
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    report = json.loads(out.decode().strip().splitlines()[-1])
    assert report == {"ok": 25, "errors": []}, err.decode()[-2000:]
    assert local == [200] * 25
    assert oauth_server.refresh_grants == 1
    assert oauth_server.api_calls == 50
    stored = await repo.get_connection(TENANT, conn.id)
    assert stored is not None and stored.status == "active"
    new_refresh = stored.secret(vault, "refresh_token")
    # the rotated refresh token was kept: it is the one the server holds as valid
    assert new_refresh is not None and new_refresh != old_refresh
    assert not oauth_server.by_refresh[new_refresh.reveal()].refresh_revoked
    assert [e.kind for e in await repo.list_audit(TENANT, connection_id=conn.id)].count("refresh") == 1
