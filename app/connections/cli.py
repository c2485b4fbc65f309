"""``leadwarm vault``: the credential vault's operator commands.

``leadwarm vault rotate`` re-encrypts every stored secret (connections and OAuth app
registrations of every tenant) under ``ENCRYPTION_KEY``, reading older ones with
``ENCRYPTION_KEYS_OLD`` (and a generated ``LEADWARM_DATA_DIR/encryption.key`` left from a
zero-config run). The service keeps serving meanwhile: each record is rewritten in its own store
transaction (see :func:`crm_sync.vault.rotate`). Rotating a key::

    ENCRYPTION_KEY=<new> ENCRYPTION_KEYS_OLD=<old> leadwarm vault rotate
    # restart the services with the same two settings, run rotate again until "remaining: 0",
    # then drop ENCRYPTION_KEYS_OLD (wait 10 minutes: pending OAuth authorisations).

Exit status 1 when some record did not decrypt (they are listed, never their secrets).
"""

from __future__ import annotations

import asyncio
import sys

import click

from app.core.settings import Settings
from crm_sync.vault import RotationReport, generate_key

__all__ = ["vault_group"]


@click.group("vault")
def vault_group() -> None:
    """The credential vault (ENCRYPTION_KEY): rotate keys, make a new one."""


@vault_group.command("rotate")
@click.option("--batch-size", default=100, show_default=True, type=click.IntRange(1, 1000))
def rotate_command(batch_size: int) -> None:
    """Re-encrypt every secret with ENCRYPTION_KEY while the service keeps serving."""
    report, key_id = asyncio.run(_rotate(Settings(), batch_size))
    click.echo(f"key id:    {key_id}")
    click.echo(f"scanned:   {report.scanned}")
    click.echo(f"rotated:   {report.rotated}")
    click.echo(f"failed:    {report.failed}")
    click.echo(f"remaining: {report.remaining}")
    for name in report.failures:
        click.echo(f"  does not decrypt: {name}", err=True)
    if report.remaining == 0:
        click.echo("every secret is under the current key: older keys can be removed (after 10 minutes).")
    sys.exit(1 if report.failed else 0)


async def _rotate(settings: Settings, batch_size: int) -> tuple[RotationReport, str]:
    from app.composition import open_store
    from app.connections.config import build_services
    from app.core.logs import configure_logging, get_logger

    configure_logging(level="WARNING", fmt=settings.log_format)
    store = open_store(settings)
    try:
        services, _ = build_services(settings, store)
        try:
            report = await services.rotate(batch_size=batch_size)
        finally:
            await services.aclose()
    finally:
        await store.close()
    key_id = services.vault.keyring.current_id
    get_logger("leadwarm.vault").warning(
        "vault.rotated",
        key_id=key_id,
        scanned=report.scanned,
        rotated=report.rotated,
        failed=report.failed,
        remaining=report.remaining,
    )
    return report, key_id


@vault_group.command("generate-key")
def generate_key_command() -> None:
    """Print a new random key for ENCRYPTION_KEY (64 hex characters)."""
    click.echo(generate_key())
