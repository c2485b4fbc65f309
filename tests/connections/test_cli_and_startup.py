"""``leadwarm vault rotate`` and ``leadwarm tenant create/list`` through click's CliRunner, and the
app's start: the zero-config run generates its key once; a key that cannot read the store stops
the start with the records named."""

from __future__ import annotations

import asyncio
import logging
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from litestar.testing import AsyncTestClient

from app.cli.main import main
from app.composition import Runtime
from app.connections.config import KEY_FILE_NAME, build_services
from app.connections.plugin import StartupRefusedError
from app.connections.repository import StoreConnectionRepository
from app.core.settings import Settings
from app.main import create_app
from app.store.sqlite import SQLiteStore
from app.tenancy.bootstrap import bootstrap
from crm_sync.vault import Keyring, Vault, check_keys, generate_key, parse_key, record_key

#: Secrets written before the rotation: (tenant, provider, credentials).
SEEDED = [
    ("t1", "cal_com", {"api_key": "cal_live_rotate_me_1"}),
    ("t2", "pipedrive", {"api_token": "pd-rotate-me-2", "company_domain": "shop"}),
    ("t2", "webhook", {"url": "https://hooks.example.test/in", "signing_secret": "whsec-rotate-3"}),
]


def _settings(data_dir: Path, **values: Any) -> Settings:
    return Settings(_env_file=None, leadwarm_data_dir=data_dir, store="sqlite", seed_demo=False, **values)


async def _seed(settings: Settings) -> dict[str, str]:
    """Store SEEDED (and a tenant's OAuth app) under the settings' key; returns {connection id: value}."""
    store = SQLiteStore(settings.sqlite_path)
    services, _ = build_services(settings, store)
    plain: dict[str, str] = {}
    try:
        for tenant_id, provider, values in SEEDED:
            conn = await services.credentials.create(tenant_id, provider, values)
            secret_field = next(iter(conn.secrets))
            plain[conn.id] = values[secret_field]
        await services.oauth.register_app(
            "t2", "hubspot", client_id="hs-app", client_secret="hs-secret-rotate-4"
        )
    finally:
        await services.aclose()
        await store.close()
    return plain


async def _decrypt_all(db: Path, key_hex: str) -> tuple[int, dict[str, str]]:
    """With ``key_hex`` alone: the start-up check's count, and every connection's secret in clear."""
    store = SQLiteStore(db)
    repo = StoreConnectionRepository(store)
    vault = Vault(Keyring(parse_key(key_hex)))
    try:
        checked = await check_keys(repo, vault)
        seen: dict[str, str] = {}
        for tenant_id in ("t1", "t2"):
            for conn in await repo.list_connections(tenant_id):
                name = next(iter(conn.secrets))
                seen[conn.id] = vault.decrypt(
                    conn.secrets[name],
                    tenant_id=tenant_id,
                    record_id=record_key("connection", conn.id),
                    field=name,
                ).reveal()
        app = await repo.get_oauth_app("t2", "hubspot")
        assert app is not None and app.credentials(vault).client_secret.reveal() == "hs-secret-rotate-4"
        kinds = [e.kind for e in await repo.list_audit("t2")]
        assert "key_rotation" in kinds
    finally:
        await store.close()
    return checked, seen


def test_vault_rotate_then_the_new_key_alone_reads_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    data = tmp_path / "data"
    old, new = generate_key(), generate_key()
    plain = asyncio.run(_seed(_settings(data, encryption_key=old)))
    env = {
        "LEADWARM_DATA_DIR": str(data),
        "STORE": "sqlite",
        "ENCRYPTION_KEY": new,
        "ENCRYPTION_KEYS_OLD": old,
    }

    result = CliRunner().invoke(main, ["vault", "rotate"], env=env)
    assert result.exit_code == 0, result.output
    assert (
        "rotated:   4" in result.output
        and "remaining: 0" in result.output
        and "failed:    0" in result.output
    )
    assert old not in result.output and new not in result.output

    checked, seen = asyncio.run(_decrypt_all(data / "leadwarm.db", new))
    assert checked == 4 and seen == plain
    again = CliRunner().invoke(main, ["vault", "rotate"], env=env)  # idempotent
    assert again.exit_code == 0 and "rotated:   0" in again.output

    # without the old key, the store cannot be read: rotation reports it, exit status 1
    third = generate_key()
    failed = CliRunner().invoke(
        main, ["vault", "rotate"], env={**env, "ENCRYPTION_KEY": third, "ENCRYPTION_KEYS_OLD": ""}
    )
    assert (
        failed.exit_code == 1
        and "failed:    4" in failed.output
        and "does not decrypt: t1/connection/" in failed.output
    )


def test_zero_config_key_moves_to_encryption_key_by_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    plain = asyncio.run(_seed(_settings(data)))  # no ENCRYPTION_KEY: a key generated into the data folder
    key_file = data / KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    new = generate_key()
    result = CliRunner().invoke(
        main,
        ["vault", "rotate"],
        env={"LEADWARM_DATA_DIR": str(data), "STORE": "sqlite", "ENCRYPTION_KEY": new},
    )
    assert result.exit_code == 0, result.output
    assert "rotated:   4" in result.output and "remaining: 0" in result.output
    key_file.unlink()  # the generated key can go
    checked, seen = asyncio.run(_decrypt_all(data / "leadwarm.db", new))
    assert checked == 4 and seen == plain


def test_tenant_create_gives_a_working_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    env = {"LEADWARM_DATA_DIR": str(data), "STORE": "sqlite", "ENCRYPTION_KEY": generate_key()}
    runner = CliRunner()
    created = runner.invoke(main, ["tenant", "create", "acme", "--name", "Acme Solar"], env=env)
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("lw_") and len(key) > 40
    again = runner.invoke(main, ["tenant", "create", "acme", "--name", "Other"], env=env)
    assert again.exit_code == 1 and "already exists" in again.output and "lw_" not in again.output
    assert runner.invoke(main, ["tenant", "create", "Bad Id!", "--name", "x"], env=env).exit_code == 2
    listed = runner.invoke(main, ["tenant", "list"], env=env)
    assert listed.exit_code == 0 and "acme\tAcme Solar\tkey" in listed.output

    async def use_key() -> None:
        settings = _settings(data, encryption_key=env["ENCRYPTION_KEY"])
        rt = Runtime.build(settings)
        await bootstrap(rt)
        try:
            async with AsyncTestClient(app=create_app(runtime=rt, start_worker=False)) as client:
                auth = {"Authorization": f"Bearer {key}"}
                resp = await client.get("/api/v1/integrations/configured", headers=auth)
                assert resp.status_code == 200 and resp.json()["integrations"] == []
                trail = (await client.get("/api/v1/integrations/audit", headers=auth)).json()["events"]
                assert {"tenant_created", "admin_api"} <= {e["kind"] for e in trail}
                profile = await rt.tenants.profile("acme")
                assert profile.name == "Acme Solar"
        finally:
            await rt.channels.aclose()
            await rt.store.close()

    asyncio.run(use_key())


async def test_zero_config_start_generates_one_key_and_warns(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    for run in range(2):
        rt = Runtime.build(_settings(data))
        await bootstrap(rt)
        try:
            async with AsyncTestClient(app=create_app(runtime=rt, start_worker=False)) as client:
                assert (await client.get("/health")).status_code == 200
                if run == 0:
                    services = next(
                        f for f in rt.features if type(f).__name__ == "ConnectionsFeature"
                    ).services  # type: ignore[attr-defined]
                    await services.credentials.create("demo", "cal_com", {"api_key": "cal_live_zero_config"})
        finally:
            await rt.channels.aclose()
            await rt.store.close()
        if run == 0:
            first_key = (data / KEY_FILE_NAME).read_text()
    assert (data / KEY_FILE_NAME).read_text() == first_key  # the second start reused it (and read the secret)
    out = capfd.readouterr().out
    assert "vault.generated_key" in out and "Production must set ENCRYPTION_KEY" in out
    assert first_key.strip() not in out


def _find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """``exc`` or the first ``kind`` inside its (nested) exception groups."""
    if isinstance(exc, kind):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _find(inner, kind)
        if found is not None:
            return found
    return None


async def test_a_key_that_cannot_read_the_store_refuses_to_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    data = tmp_path / "data"
    right, wrong = generate_key(), generate_key()
    await _seed(_settings(data, encryption_key=right))
    rt = Runtime.build(_settings(data, encryption_key=wrong))
    await bootstrap(rt)
    try:
        with pytest.raises(BaseException) as info:  # Litestar's task group wraps it
            async with AsyncTestClient(app=create_app(runtime=rt, start_worker=False)):
                pass
    finally:
        await rt.channels.aclose()
        await rt.store.close()
    refused = _find(info.value, StartupRefusedError)
    assert refused is not None, info.value
    message = str(refused)
    assert "t1/connection/" in message and "ENCRYPTION_KEY" in message
    out = capfd.readouterr().out
    assert "vault.startup_refused" in out
    for key in (right, wrong):
        assert key not in message and key not in out and key not in caplog.text

    # a worker alone (``leadwarm worker``: no web app) stops by itself on that key
    worker_rt = Runtime.build(_settings(data, encryption_key=wrong))
    await worker_rt.start()
    try:
        await asyncio.wait_for(asyncio.gather(*worker_rt._tasks), timeout=10)
    finally:
        await worker_rt.stop()
    assert "vault.startup_refused" in capfd.readouterr().out
