"""The whole app over the credential layer, for the HTTP tests of the connections feature: the real
OAuth 2.0 server on 127.0.0.1 (GoHighLevel's catalog entry pointed at it through an
``INTEGRATIONS_CATALOG`` file), a second tenant, and a client that keeps every response body so a
test can scan them for secrets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.connections.plugin import ConnectionsFeature, connections_feature
from app.connections.services import ConnectionServices
from app.main import create_app
from app.tenancy.bootstrap import bootstrap
from app.tenancy.records import TenantProfile
from crm_sync.vault import generate_key
from tests.app.conftest import ADMIN_KEY, make_settings
from tests.conftest import EMULATOR_PROJECT
from tests.connections.conftest import catalog_for
from tests.crm_sync.oauth_server import OAuthTestServer, running_oauth_server
from tests.support.firestore_emulator import FirestoreEmulator

__all__ = ["ADMIN_KEY", "BASE", "KEY_B", "TENANT_A", "TENANT_B", "AppEnv", "app_env", "app_oauth_server"]

BASE = "http://testserver.local"
TENANT_A = "demo"  # the default tenant: its OAuth app comes from GHL_CLIENT_ID / GHL_CLIENT_SECRET
TENANT_B = "acme"
KEY_B = "lw_test_admin_key_acme"
UNUSED_GRAPH = "http://127.0.0.1:9"  # the WhatsApp channel is built but never called here


@dataclass
class AppEnv:
    """The running app: ``call`` sends one request with a tenant's admin key and keeps its body."""

    runtime: Runtime
    client: AsyncTestClient[Litestar]
    server: OAuthTestServer
    key_hex: str
    bodies: list[str] = field(default_factory=list)

    @property
    def services(self) -> ConnectionServices:
        return connections_feature(self.runtime).services

    @property
    def feature(self) -> ConnectionsFeature:
        return connections_feature(self.runtime)

    async def call(self, method: str, path: str, *, key: str | None = ADMIN_KEY, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}) or {})
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        resp = await self.client.request(method, path, headers=headers, follow_redirects=False, **kw)
        self.bodies.append(resp.text + "\n" + json.dumps(dict(resp.headers)))
        return resp


@pytest.fixture
def app_oauth_server() -> Iterator[OAuthTestServer]:
    with running_oauth_server(redirect_uri=f"{BASE}/auth/gohighlevel/callback") as server:
        yield server


def write_catalog(server: OAuthTestServer, path: Path) -> Path:
    """GoHighLevel pointed at ``server``, as a catalog file (JSON is YAML)."""
    path.write_text(json.dumps(catalog_for(server).model_dump(mode="json")), encoding="utf-8")
    return path


def app_settings(tmp_path: Path, server: OAuthTestServer, key_hex: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "store": "sqlite",
        "encryption_key": key_hex,
        "ghl_client_id": server.client_id,
        "ghl_client_secret": server.client_secret,
        "public_base_url": BASE,
        "integrations_catalog": write_catalog(server, tmp_path / "catalog.yaml"),
        "seed_demo": False,
        **overrides,
    }
    return make_settings(tmp_path / "data", UNUSED_GRAPH, **values)


@pytest.fixture
async def app_env(
    tmp_path: Path,
    app_oauth_server: OAuthTestServer,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[AppEnv]:
    """The app on SQLite; ``@pytest.mark.parametrize("app_env", ["firestore"], indirect=True)``
    runs it on the session's Firestore emulator instead (wiped first)."""
    backend: dict[str, Any] = {}
    if getattr(request, "param", "sqlite") == "firestore":
        emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
        emulator.reset()
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulator.host_port)
        backend = {
            "store": "firestore",
            "firebase_project_id": EMULATOR_PROJECT,
            "firestore_emulator_host": emulator.host_port,
        }
    key_hex = generate_key()
    rt = Runtime.build(app_settings(tmp_path, app_oauth_server, key_hex, **backend))
    await bootstrap(rt)
    await rt.tenants.save_profile(TenantProfile(id=TENANT_B, name="Acme"))
    await rt.tenants.add_api_key(TENANT_B, KEY_B)
    app = create_app(runtime=rt, start_worker=False)
    try:
        async with AsyncTestClient(app=app, base_url=BASE) as client:
            yield AppEnv(rt, client, app_oauth_server, key_hex)
    finally:
        await rt.channels.aclose()
        await rt.store.close()
