"""A real SMTP server on 127.0.0.1 (aiosmtpd) that records what it receives.

``refuse`` maps a recipient address to the reply its ``RCPT TO`` gets (``"550 5.1.1 ..."``,
``"451 4.3.0 ..."``), so tests can check how a client treats permanent and transient errors.
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.ports import free_port

__all__ = ["ReceivedMail", "SmtpRecorder", "running_smtp_server"]


@dataclass
class ReceivedMail:
    """One message as the server received it."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class SmtpRecorder:
    """aiosmtpd handler: records messages; ``refuse[address]`` is the RCPT reply for that address."""

    refuse: dict[str, str] = field(default_factory=dict)
    received: list[ReceivedMail] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self._lock:
            self.received.append(
                ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
            )
        return "250 Message accepted for delivery"

    def messages(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self.received)

    def wait_for(self, count: int, *, timeout_s: float = 10.0) -> list[ReceivedMail]:
        """Block until at least ``count`` messages arrived (a deadline, not a sleep)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = self.messages()
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"expected {count} messages, got {len(self.messages())}")


@contextmanager
def running_smtp_server() -> Iterator[tuple[Controller, SmtpRecorder]]:
    """Start an aiosmtpd server on a free 127.0.0.1 port; stop it on exit."""
    recorder = SmtpRecorder()
    last_error: Exception | None = None
    for _ in range(5):
        controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
        try:
            controller.start()
        except Exception as exc:  # port taken between free_port() and bind: try another
            last_error = exc
            continue
        try:
            yield controller, recorder
        finally:
            controller.stop()
        return
    raise RuntimeError(f"could not start the SMTP server: {last_error}")
