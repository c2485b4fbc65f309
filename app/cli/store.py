"""``leadwarm store``: export a tenant to JSON Lines, import it into another backend.

The store is the one the settings choose (``STORE``, ``LEADWARM_DATA_DIR`` for SQLite,
``FIREBASE_PROJECT_ID`` / ``GOOGLE_APPLICATION_CREDENTIALS`` / ``FIRESTORE_EMULATOR_HOST`` for
Firestore), or the one ``--store`` names. Moving a tenant from SQLite to Firestore::

    STORE=sqlite leadwarm store export --tenant acme --out acme.jsonl
    STORE=firestore FIREBASE_PROJECT_ID=my-project leadwarm store import --tenant acme acme.jsonl

Stop the services working on the tenant first: the export is not a snapshot, and an import is not
one transaction (see :mod:`app.store.transfer`).
"""

from __future__ import annotations

import asyncio
import json
from typing import IO, Any

import click

from app.core.settings import Settings

__all__ = ["store_group"]

_STORE_OPTION = click.option(
    "--store",
    "backend",
    type=click.Choice(["sqlite", "firestore"]),
    default=None,
    help="Backend to use instead of the STORE setting (its other settings still apply).",
)


def _settings(backend: str | None) -> Any:
    from app.core.settings import Settings

    settings = Settings()
    return settings.model_copy(update={"store": backend}) if backend else settings


@click.group("store")
def store_group() -> None:
    """Move a tenant's data between stores (SQLite and Firestore)."""


@store_group.command("export")
@click.option("--tenant", "tenant_id", required=True, help="Tenant id to export.")
@click.option(
    "--out",
    "out",
    type=click.File("w", encoding="utf-8", lazy=True),
    default="-",
    show_default="standard output",
    help="JSON Lines file to write.",
)
@_STORE_OPTION
def export_command(tenant_id: str, out: IO[str], backend: str | None) -> None:
    """Write every document of TENANT (and its API keys and channel routes) as JSON Lines."""
    count = asyncio.run(_export(_settings(backend), tenant_id, out))
    click.echo(f"exported {count} documents of tenant {tenant_id!r}", err=True)


async def _export(settings: Settings, tenant_id: str, out: IO[str]) -> int:
    from app.composition import open_store
    from app.store.transfer import export_tenant

    store = open_store(settings)
    count = 0
    try:
        async for record in export_tenant(store, tenant_id):
            out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1
    finally:
        await store.close()
    out.flush()
    return count


@store_group.command("import")
@click.option("--tenant", "tenant_id", required=True, help="Tenant id the file holds.")
@click.option("--force", is_flag=True, help="Import even if the tenant already holds documents.")
@_STORE_OPTION
@click.argument("file", type=click.File("r", encoding="utf-8"))
def import_command(tenant_id: str, file: IO[str], force: bool, backend: str | None) -> None:
    """Write the documents of FILE (from `leadwarm store export`, `-` for stdin) into TENANT.

    Refuses when the tenant already holds documents (a service bootstrapped it, say) unless
    --force: then documents with the same ids are replaced and others are kept.
    """
    from app.store.transfer import TransferError

    records = []
    for number, line in enumerate(file, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise click.ClickException(f"{file.name}:{number}: not JSON: {exc.msg}") from None
    try:
        count = asyncio.run(_import(_settings(backend), tenant_id, records, force=force))
    except TransferError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"imported {count} documents into tenant {tenant_id!r}", err=True)


async def _import(settings: Settings, tenant_id: str, records: list[dict[str, Any]], *, force: bool) -> int:
    from app.composition import open_store
    from app.store.transfer import import_tenant

    store = open_store(settings)
    try:
        if not force and await store.list_collections(tenant_id):
            raise click.ClickException(
                f"tenant {tenant_id!r} already holds documents in this store; use --force to import anyway"
            )
        return await import_tenant(store, tenant_id, records)
    finally:
        await store.close()
