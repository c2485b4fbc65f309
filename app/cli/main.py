"""``leadwarm``: serve the app, chat with the bot in the terminal, validate playbooks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from pathlib import Path

import click

__all__ = ["main"]


@click.group()
def main() -> None:
    """LeadWarm: warm up sales leads over WhatsApp, SMS, email and web chat."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="TCP port.")
@click.option(
    "--worker/--no-worker",
    default=True,
    show_default=True,
    help="Also run the background worker (turn it off to run web and worker processes apart).",
)
def serve(host: str, port: int, worker: bool) -> None:
    """Run the service (web chat at /chat, API docs at /schema) on the embedded defaults."""
    import uvicorn

    from app.main import create_app

    click.echo(
        f"LeadWarm on http://{host}:{port}  (chat: /chat, API docs: /schema, health: /health)", err=True
    )
    # log_config=None: uvicorn's loggers go through ours (one format, JSON with LOG_FORMAT=json);
    # no access log (its lines were below the warning level anyway, yet cost CPU per request)
    uvicorn.run(
        create_app(start_worker=worker),
        host=host,
        port=port,
        log_level="warning",
        log_config=None,
        access_log=False,
    )


@main.command("worker")
def worker_command() -> None:
    """Run only the background worker (several may run against one store), on the loop
    ``leadwarm serve`` uses (uvloop when installed: :mod:`app.core.runner`)."""
    from app.core.runner import run
    from app.core.settings import Settings

    with contextlib.suppress(KeyboardInterrupt):
        run(_worker(Settings()))


async def _worker(settings: object) -> None:
    import signal

    from app.composition import Runtime
    from app.core.logs import configure_logging
    from app.core.settings import Settings
    from app.tenancy.bootstrap import bootstrap

    assert isinstance(settings, Settings)
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    runtime = Runtime.build(settings)
    await bootstrap(runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    import gc

    from app.core.logs import get_logger
    from app.ops.heap import freeze_startup_heap

    # as `leadwarm serve` does once started: full collections never walk the startup objects
    frozen = freeze_startup_heap()
    get_logger("leadwarm.worker").info(
        "worker.ready", store=settings.store, frozen_objects=frozen, gc_threshold=list(gc.get_threshold())
    )
    await stop.wait()
    await runtime.stop()


@main.command()
@click.option("--session", default=None, help="Continue as this web-chat session id.")
@click.option("--reply-timeout", default=15.0, show_default=True, help="Seconds to wait for the bot.")
def chat(session: str | None, reply_timeout: float) -> None:
    """Talk to the bot as a lead, in this terminal, through the same engine and store."""
    from app.core.settings import Settings

    with contextlib.suppress(KeyboardInterrupt, EOFError):
        asyncio.run(_chat(Settings(), session or f"term_{uuid.uuid4().hex[:16]}", reply_timeout))


async def _chat(settings: object, session: str, reply_timeout: float) -> None:
    from app.composition import Runtime
    from app.core.logs import configure_logging
    from app.core.settings import Settings
    from app.tenancy.bootstrap import bootstrap

    assert isinstance(settings, Settings)
    configure_logging(level="WARNING", fmt=settings.log_format)
    runtime = Runtime.build(settings)
    await bootstrap(runtime)
    await runtime.start()
    tenant_id = settings.default_tenant_id
    channel = runtime.webchat()
    wake = channel.subscribe(session)
    click.echo(f"Chatting as session {session} (tenant {tenant_id}). Ctrl-D or /quit to leave.\n")
    last_seq = 0
    try:
        while True:
            text = await asyncio.to_thread(_prompt)
            if text is None or text.strip() == "/quit":
                break
            if not text.strip():
                continue
            frame = json.dumps({"type": "message", "id": uuid.uuid4().hex, "text": text}).encode()
            for message in channel.parse({"x-session-id": session, "x-widget-id": tenant_id}, frame).messages:
                await runtime.accept(tenant_id, message)
            last_seq = await _print_replies(runtime, tenant_id, session, last_seq, wake, reply_timeout)
    finally:
        channel.unsubscribe(session, wake)
        await runtime.stop()


def _prompt() -> str | None:
    try:
        return input("you> ")
    except EOFError:
        return None


async def _print_replies(
    runtime: object, tenant_id: str, session: str, last_seq: int, wake: asyncio.Queue[str], wait_s: float
) -> int:
    """Print the bot's messages until it has answered and stayed quiet for a moment."""
    from app.webchat.feed import new_messages

    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    answered = False
    while loop.time() < deadline:
        for frame in await new_messages(runtime, tenant_id, session, last_seq):  # type: ignore[arg-type]
            last_seq = max(last_seq, int(frame["seq"]))
            if frame["direction"] == "outbound":
                answered = True
                click.echo(f"bot> {frame['text']}")
                for i, choice in enumerate(frame.get("choices", []), start=1):
                    click.echo(f"     {i}. {choice['title']}")
        try:
            await asyncio.wait_for(wake.get(), timeout=0.4 if answered else 1.0)
        except TimeoutError:
            if answered:
                return last_seq
    if not answered:
        click.echo("(no reply yet: it will show after your next message)")
    return last_seq


@main.group()
def playbook() -> None:
    """Work with playbook files."""


@playbook.command("validate")
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def validate(paths: tuple[Path, ...]) -> None:
    """Check playbook files; print file:line: reason for every problem and exit 1 if any."""
    from playbooks import validate_file

    failed = False
    for path in paths:
        issues = validate_file(path)
        for issue in issues:
            click.echo(str(issue), err=True)
        if issues:
            failed = True
        else:
            click.echo(f"{path}: ok")
    sys.exit(1 if failed else 0)


from app.cli.store import store_group  # noqa: E402 - the `store` commands live in their own module

main.add_command(store_group, "store")

from app.cli.tenant import tenant_group  # noqa: E402 - the `tenant` commands live in their own module
from app.connections.cli import vault_group  # noqa: E402 - the `vault` commands live with the vault

main.add_command(tenant_group, "tenant")
main.add_command(vault_group, "vault")

import app.cli.eval  # noqa: E402, F401 - registers the `eval` command on `main`
from app.cli.users import user_group  # noqa: E402 - the `user` commands live in their own module

main.add_command(user_group, "user")
