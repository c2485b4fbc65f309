"""Key rotation while the service keeps serving: the rotation (in its own thread, event loop and
store connection, as ``leadwarm vault rotate`` in another process would be) stops after its first
record; meanwhile the app refreshes a rotating OAuth token, takes new credentials and connects a
provider; then the rotation finishes. Nothing written meanwhile is lost, and the new key alone
reads everything."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.connections.repository import StoreConnectionRepository
from app.main import create_app
from app.store.sqlite import SQLiteStore
from app.tenancy.bootstrap import bootstrap
from crm_sync.repository import SealedKind
from crm_sync.vault import (
    Keyring,
    RotationReport,
    Vault,
    check_keys,
    generate_key,
    parse_key,
    record_key,
    rotate,
)
from tests.connections.app_support import BASE, TENANT_A, AppEnv, app_oauth_server, app_settings
from tests.connections.helpers import authorize
from tests.connections.test_cli_and_startup import _seed, _settings
from tests.crm_sync.oauth_server import OAuthTestServer

__all__ = ["app_oauth_server"]

KEY_T2 = "lw_test_admin_key_t2"


class _PausingRepository(StoreConnectionRepository):
    """Signals ``paused`` after rewriting its first record, then waits for ``resume``."""

    def __init__(self, store: SQLiteStore, paused: threading.Event, resume: threading.Event) -> None:
        super().__init__(store)
        self.paused, self.resume = paused, resume

    async def update_secrets(
        self,
        tenant_id: str,
        kind: SealedKind,
        record_id: str,
        fn: Callable[[dict[str, str]], dict[str, str] | None],
    ) -> bool:
        changed = await super().update_secrets(tenant_id, kind, record_id, fn)
        if not self.paused.is_set():
            self.paused.set()
            await asyncio.to_thread(self.resume.wait, 20)
        return changed


def _rotate_elsewhere(db: Path, env: dict[str, str], paused: threading.Event, resume: threading.Event) -> Any:
    async def run() -> RotationReport:
        store = SQLiteStore(db)
        try:
            return await rotate(
                _PausingRepository(store, paused, resume), Vault(Keyring.from_env(env)), batch_size=1
            )
        finally:
            await store.close()

    return asyncio.run(run())


async def test_rotation_while_the_service_serves(tmp_path: Path, app_oauth_server: OAuthTestServer) -> None:
    server = app_oauth_server
    old, new = generate_key(), generate_key()
    data = tmp_path / "data"
    plain = await _seed(_settings(data, encryption_key=old))  # 3 connections and an OAuth app, old key
    rt = Runtime.build(app_settings(tmp_path, server, new, encryption_keys_old=old))  # restarted: new + old
    await bootstrap(rt)
    await rt.tenants.add_api_key("t2", KEY_T2)
    try:
        async with AsyncTestClient(app=create_app(runtime=rt, start_worker=False), base_url=BASE) as client:
            env = AppEnv(rt, client, server, new)
            resp = await env.call("GET", "/auth/gohighlevel/init")
            state, code = await authorize(resp.headers["location"])
            done = await env.call(
                "GET", "/auth/gohighlevel/callback", key=None, params={"state": state, "code": code}
            )
            ghl = parse_qs(urlsplit(done.headers["location"]).query)["connection_id"][0]

            paused, resume = threading.Event(), threading.Event()
            rotation = asyncio.create_task(
                asyncio.to_thread(
                    _rotate_elsewhere,
                    data / "leadwarm.db",
                    {"ENCRYPTION_KEY": new, "ENCRYPTION_KEYS_OLD": old},
                    paused,
                    resume,
                )
            )
            assert await asyncio.to_thread(paused.wait, 20)
            try:
                # mid-rotation: a refresh with a rotating refresh token, new credentials, a new connection
                repo = env.services.repository
                await repo.update_connection(TENANT_A, ghl, lambda c: c.replace(expires_at=0.0))
                assert (await env.call("POST", f"/api/v1/integrations/{ghl}/test")).json()["ok"] is True
                assert server.refresh_grants == 1
                t2_pd = next(c for c in await repo.list_connections("t2") if c.provider == "pipedrive")
                body = {"credentials": {"api_token": "pd-written-mid-rotation"}}
                resp = await env.call("PUT", f"/api/v1/integrations/{t2_pd.id}", key=KEY_T2, json=body)
                assert resp.status_code == 200
                new_conn = {"provider": "cal_com", "credentials": {"api_key": "cal_live_mid_rotation"}}
                created = (await env.call("POST", "/api/v1/integrations", json=new_conn)).json()
                assert (await env.call("GET", "/api/v1/integrations/configured")).status_code == 200
            finally:
                resume.set()
            report = await rotation
            assert report.failed == 0 and report.remaining == 0 and report.rotated >= 3

            # the OAuth connection's refresh token chain survived: another refresh works
            await repo.update_connection(TENANT_A, ghl, lambda c: c.replace(expires_at=0.0))
            assert (await env.call("POST", f"/api/v1/integrations/{ghl}/test")).json()["ok"] is True
            assert server.refresh_grants == 2
    finally:
        await rt.channels.aclose()
        await rt.store.close()

    # the new key alone reads every record, with what was written mid-rotation
    store = SQLiteStore(data / "leadwarm.db")
    try:
        repo = StoreConnectionRepository(store)
        only_new = Vault(Keyring(parse_key(new)))
        assert await check_keys(repo, only_new) == 6  # 3 seeded + app + GoHighLevel + the new one

        def clear(tenant_id: str, conn_id: str, name: str, sealed: dict[str, str]) -> str:
            return only_new.decrypt(
                sealed[name], tenant_id=tenant_id, record_id=record_key("connection", conn_id), field=name
            ).reveal()

        pd = next(c for c in await repo.list_connections("t2") if c.provider == "pipedrive")
        assert clear("t2", pd.id, "api_token", pd.secrets) == "pd-written-mid-rotation"
        for tenant_id in ("t1", "t2"):
            for conn in await repo.list_connections(tenant_id):
                if conn.id != pd.id:
                    name = next(iter(conn.secrets))
                    assert clear(tenant_id, conn.id, name, conn.secrets) == plain[conn.id]
        mine = await repo.get_connection(TENANT_A, created["id"])
        assert (
            mine is not None and clear(TENANT_A, mine.id, "api_key", mine.secrets) == "cal_live_mid_rotation"
        )
    finally:
        await store.close()
