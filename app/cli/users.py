"""``leadwarm user``: the dashboard's people, from the operator's shell.

``leadwarm user create acme owner@acme.test --role owner`` asks for the password twice (or reads
``LEADWARM_USER_PASSWORD``, for scripts) and creates the user; it is how a tenant's first owner is
made. ``leadwarm user list acme`` prints each user's email and role (never a hash).
"""

from __future__ import annotations

import asyncio
import sys

import click

from app.core.settings import Settings

__all__ = ["user_group"]


@click.group("user")
def user_group() -> None:
    """Dashboard users (owners, marketers, agents) of a tenant."""


@user_group.command("create")
@click.argument("tenant_id")
@click.argument("email")
@click.option("--role", type=click.Choice(["owner", "marketer", "agent"]), default="agent", show_default=True)
@click.option("--name", default="", help="The person's display name.")
@click.password_option(
    "--password",
    envvar="LEADWARM_USER_PASSWORD",
    help="At least 10 characters (asked for when not given; env LEADWARM_USER_PASSWORD).",
)
def create_command(tenant_id: str, email: str, role: str, name: str, password: str) -> None:
    """Create the user EMAIL in TENANT_ID (the tenant must exist)."""
    error = asyncio.run(_create(Settings(), tenant_id, email, role, name, password))
    if error:
        click.echo(error, err=True)
        sys.exit(1)
    click.echo(f"user {email.strip().lower()} ({role}) created in tenant {tenant_id!r}", err=True)


async def _create(settings: Settings, tenant_id: str, email: str, role: str, name: str, password: str) -> str:
    from app.composition import open_store
    from app.core.logs import configure_logging
    from app.dashboard.people import ROLES, PeopleDirectory, PeopleError
    from app.tenancy.directory import TenantDirectory
    from kernel.clock import SystemClock

    configure_logging(level="WARNING", fmt=settings.log_format)
    store = open_store(settings)
    try:
        clock = SystemClock()
        if not await TenantDirectory(store, clock).exists(tenant_id):
            return f"tenant {tenant_id!r} does not exist (leadwarm tenant create {tenant_id} --name ...)"
        assert role in ROLES
        try:
            await PeopleDirectory(store, clock).create_user(
                tenant_id,
                email,
                password,
                role=role,
                name=name,
            )
        except PeopleError as exc:
            return str(exc)
        return ""
    finally:
        await store.close()


@user_group.command("list")
@click.argument("tenant_id")
def list_command(tenant_id: str) -> None:
    """Every user of TENANT_ID: email, role, name."""
    for user in asyncio.run(_list(Settings(), tenant_id)):
        click.echo(f"{user['email']}\t{user['role']}\t{user['name']}")


async def _list(settings: Settings, tenant_id: str) -> list[dict[str, object]]:
    from app.composition import open_store
    from app.dashboard.people import PeopleDirectory
    from kernel.clock import SystemClock

    store = open_store(settings)
    try:
        return [u.public() for u in await PeopleDirectory(store, SystemClock()).users(tenant_id)]
    finally:
        await store.close()
