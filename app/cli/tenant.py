"""``leadwarm tenant``: create tenants and list them (operator commands, on the store the settings
choose).

``leadwarm tenant create acme --name "Acme Solar"`` saves the tenant's profile and prints its new
admin API key once (only its SHA-256 is stored: keep the key, it cannot be shown again).
"""

from __future__ import annotations

import asyncio
import re
import sys

import click

from app.core.settings import Settings

__all__ = ["tenant_group"]

_TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@click.group("tenant")
def tenant_group() -> None:
    """Tenants (one per client of an agency): create them, list them."""


@tenant_group.command("create")
@click.argument("tenant_id")
@click.option("--name", required=True, help="The tenant's display name.")
@click.option("--timezone", default=None, help="IANA time zone (default: DEFAULT_TIMEZONE).")
def create_command(tenant_id: str, name: str, timezone: str | None) -> None:
    """Create TENANT_ID and print its admin API key (shown once)."""
    if not _TENANT_ID.match(tenant_id) or tenant_id.startswith("_"):
        click.echo(
            "a tenant id is 1-63 characters: a-z, 0-9, '_' or '-', starting with a letter or digit", err=True
        )
        sys.exit(2)
    if not name.strip() or len(name) > 200:
        click.echo("--name must be 1-200 characters", err=True)
        sys.exit(2)
    key = asyncio.run(_create(Settings(), tenant_id, name.strip(), timezone))
    if key is None:
        click.echo(f"tenant {tenant_id!r} already exists", err=True)
        sys.exit(1)
    click.echo(f"tenant {tenant_id!r} created. Its admin API key (shown once, keep it):", err=True)
    click.echo(key)


async def _create(settings: Settings, tenant_id: str, name: str, timezone: str | None) -> str | None:
    from app.composition import open_store
    from app.connections.audit import record
    from app.connections.repository import StoreConnectionRepository
    from app.core.logs import configure_logging
    from app.tenancy.directory import TenantDirectory, new_api_key
    from app.tenancy.records import TenantProfile
    from kernel.clock import SystemClock

    configure_logging(level="WARNING", fmt=settings.log_format)
    store = open_store(settings)
    try:
        clock = SystemClock()
        tenants = TenantDirectory(store, clock)
        if await tenants.exists(tenant_id):
            return None
        await tenants.save_profile(
            TenantProfile(
                id=tenant_id,
                name=name,
                timezone=timezone or settings.default_timezone,
                default_region=settings.default_region,
                created_at=clock.now(),
            )
        )
        key = new_api_key()
        await tenants.add_api_key(tenant_id, key, label="cli")
        await record(
            StoreConnectionRepository(store),
            tenant_id,
            "tenant_created",
            actor="operator:cli",
            detail={"name": name},
        )
        return key
    finally:
        await store.close()


@tenant_group.command("list")
def list_command() -> None:
    """Every tenant of the store: id, name, whether it has an admin key."""
    for tenant_id, name, has_key in asyncio.run(_list(Settings())):
        click.echo(f"{tenant_id}\t{name}\t{'key' if has_key else 'no key'}")


async def _list(settings: Settings) -> list[tuple[str, str, bool]]:
    from app.composition import open_store
    from app.store import SYSTEM_TENANT
    from app.store import collections as col
    from app.tenancy.directory import TenantDirectory
    from kernel.clock import SystemClock

    store = open_store(settings)
    try:
        tenants = TenantDirectory(store, SystemClock())
        keyed = {str(d.data.get("tenant_id")) for d in await store.query(SYSTEM_TENANT, col.API_KEYS)}
        rows = []
        for tenant_id in sorted(await store.list_tenants()):
            if not await tenants.exists(tenant_id):
                continue  # documents without a profile (nothing created it as a tenant)
            profile = await tenants.profile(tenant_id)
            rows.append((tenant_id, profile.name, tenant_id in keyed))
        return rows
    finally:
        await store.close()
