"""ImapPoller against a real dovecot on 127.0.0.1: stored once, flagged only after storing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.composition import Runtime
from app.messaging.email_poller import ImapError, ImapPoller
from app.messaging.inbox import INBOX, STATUS_EVENTS, accept_message, accept_status
from channels.base import DeliveryStatus, InboundMessage
from channels.email import EmailChannel
from tests.support.imap_server import Dovecot, running_dovecot

# No skip: without dovecot the fixture fails with the install command (scripts/test.sh installs it).

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "email"


def mail(n: int, sender: str = "lead@example.com") -> bytes:
    return (
        f"From: Lead {n} <{sender}>\r\nTo: leads@sunnywatt.example\r\nSubject: hello {n}\r\n"
        f"Message-ID: <imap-{n}@example.com>\r\nDate: Mon, 3 Nov 2025 10:0{n}:00 +0000\r\n\r\n"
        f"Message number {n}\r\n\r\nOn Mon, 3 Nov 2025 at 10:00, Bot <bot@x> wrote:\r\n> old text\r\n"
    ).encode()


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


def poller_for(
    server: Dovecot, runtime: Runtime, accept: Callable[[InboundMessage], Awaitable[bool]] | None = None
) -> ImapPoller:
    tenant = runtime.settings.default_tenant_id

    async def store(message: InboundMessage) -> bool:
        return await accept_message(runtime.jobs, tenant, message)

    async def store_status(status: DeliveryStatus) -> bool:
        return await accept_status(runtime.jobs, tenant, status)

    return ImapPoller(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        accept=accept or store,
        accept_status=store_status,
        channel=EmailChannel(host="127.0.0.1", from_address="leads@sunnywatt.example"),
        poll_s=0.05,
        timeout_s=10.0,
    )


async def inbox_docs(runtime: Runtime) -> list[dict[str, Any]]:
    docs = await runtime.store.query(runtime.settings.default_tenant_id, INBOX)
    return [d.data for d in docs]


async def test_poll_stores_new_mail_once_and_flags_it(dovecot: Dovecot, runtime: Runtime) -> None:
    dovecot.deliver(mail(1))
    dovecot.deliver(mail(2))
    poller = poller_for(dovecot, runtime)
    try:
        assert await poller.poll_once() == 2
        flags = dovecot.flags()
        assert all("\\Seen" in flags[f"<imap-{n}@example.com>"] for n in (1, 2))
        docs = await inbox_docs(runtime)
        assert sorted(d["provider_message_id"] for d in docs) == ["imap-1@example.com", "imap-2@example.com"]
        assert sorted(d["text"] for d in docs) == [
            "Message number 1",
            "Message number 2",
        ]  # no quoted history
        assert await poller.poll_once() == 0
        assert len(await inbox_docs(runtime)) == 2
        dovecot.deliver(mail(3))  # arrives while the connection stays open
        assert await poller.poll_once() == 1
        assert len(await inbox_docs(runtime)) == 3
    finally:
        await poller.aclose()


async def test_a_crash_before_storing_leaves_the_message_unseen(dovecot: Dovecot, runtime: Runtime) -> None:
    dovecot.deliver(mail(1))

    async def crash(message: InboundMessage) -> bool:
        raise RuntimeError("process died before the store answered")

    broken = poller_for(dovecot, runtime, accept=crash)
    with pytest.raises(RuntimeError):
        await broken.poll_once()
    await broken.aclose()
    assert "\\Seen" not in dovecot.flags()["<imap-1@example.com>"]
    assert await inbox_docs(runtime) == []

    healthy = poller_for(dovecot, runtime)
    try:
        assert await healthy.poll_once() == 1
        assert "\\Seen" in dovecot.flags()["<imap-1@example.com>"]
        assert len(await inbox_docs(runtime)) == 1
    finally:
        await healthy.aclose()


async def test_a_crash_after_storing_is_not_a_duplicate(dovecot: Dovecot, runtime: Runtime) -> None:
    dovecot.deliver(mail(1))
    tenant = runtime.settings.default_tenant_id

    async def store_then_crash(message: InboundMessage) -> bool:
        await accept_message(runtime.jobs, tenant, message)
        raise RuntimeError("died between the store and the \\Seen flag")

    broken = poller_for(dovecot, runtime, accept=store_then_crash)
    with pytest.raises(RuntimeError):
        await broken.poll_once()
    await broken.aclose()
    assert "\\Seen" not in dovecot.flags()["<imap-1@example.com>"]

    healthy = poller_for(dovecot, runtime)
    try:
        assert await healthy.poll_once() == 0  # already stored: the retake is a no-op ...
        assert "\\Seen" in dovecot.flags()["<imap-1@example.com>"]  # ... that still flags it
        assert len(await inbox_docs(runtime)) == 1
    finally:
        await healthy.aclose()


async def test_bounces_go_to_statuses_and_garbage_is_flagged(dovecot: Dovecot, runtime: Runtime) -> None:
    dovecot.deliver((FIXTURES / "bounce_dsn.eml").read_bytes())
    dovecot.deliver(b"X-Nothing: here\r\n\r\n")  # no From: cannot be parsed
    poller = poller_for(dovecot, runtime)
    try:
        assert await poller.poll_once() == 0
    finally:
        await poller.aclose()
    assert all("\\Seen" in f for f in dovecot.flags().values())
    events = await runtime.store.query(runtime.settings.default_tenant_id, STATUS_EVENTS)
    assert [(e.data["provider_message_id"], e.data["status"]) for e in events] == [
        ("original-123@sunnywatt.example", "undeliverable")
    ]
    assert await inbox_docs(runtime) == []


async def test_wrong_password_is_an_error_without_the_password(dovecot: Dovecot, runtime: Runtime) -> None:
    poller = poller_for(dovecot, runtime)
    poller._password = "definitely-wrong-pass"
    with pytest.raises(ImapError) as info:
        await poller.poll_once()
    assert "definitely-wrong-pass" not in str(info.value)


async def test_run_polls_until_stopped(dovecot: Dovecot, runtime: Runtime) -> None:
    dovecot.deliver(mail(1))
    poller = poller_for(dovecot, runtime)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while not await inbox_docs(runtime):
            assert loop.time() < deadline, "poller never stored the message"
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)
    assert len(await inbox_docs(runtime)) == 1
