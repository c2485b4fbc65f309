"""Receive email by IMAP: poll a mailbox, store each new message durably, THEN flag it ``\\Seen``.

One poll: ``UID SEARCH UNSEEN`` in the folder, then for each UID in order: ``UID FETCH (BODY.PEEK[])``
(PEEK leaves the message unseen, RFC 3501 §6.4.5), parse it with the email channel, hand each
message to ``accept`` (the app passes :func:`app.messaging.inbox.accept_message`: durable and deduplicated by
Message-ID) and each bounce status to ``accept_status``, and only when they returned flag the UID
``\\Seen``. So a crash, a store outage or an exception anywhere before the flag leaves the message
unseen and the next poll takes it again; the inbox's dedupe makes the retake harmless. A message
that cannot be parsed at all is flagged (and logged with its UID) so that it cannot block the
mailbox forever. The connection is kept between polls and opened again after any error.

Trade-off: the "new" marker is ``\\Seen``, which a person reading the same folder in a mail
client also sets; use a mailbox (or a folder filled by a server-side rule) that people do not read.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl as ssl_module
from collections.abc import Awaitable, Callable

import aioimaplib

from app.core.logs import get_logger
from channels.base import DeliveryStatus, InboundMessage, PayloadError
from channels.email import EmailChannel
from kernel.errors import LeadWarmError

__all__ = ["ImapError", "ImapPoller"]

log = get_logger("leadwarm.email.imap")

AcceptMessage = Callable[[InboundMessage], Awaitable[bool]]
AcceptStatus = Callable[[DeliveryStatus], Awaitable[bool]]

_FETCH_UID = re.compile(rb"UID (\d+)")


class ImapError(LeadWarmError):
    """The IMAP server refused a command (the message never contains the password)."""


class ImapPoller:
    """Polls one IMAP folder and hands new mail to the app.

    ``ssl`` defaults to implicit TLS on port 993 (RFC 8314) and plain elsewhere (a local test
    server); ``ssl_context`` overrides the default verification. ``poll_s`` is the pause between
    polls, seconds; ``timeout_s`` bounds each IMAP command. ``batch`` caps the messages taken per
    poll (oldest UIDs first).
    """

    def __init__(
        self,
        *,
        host: str,
        port: int = 993,
        user: str,
        password: str,
        folder: str = "INBOX",
        ssl: bool | None = None,
        ssl_context: ssl_module.SSLContext | None = None,
        accept: AcceptMessage,
        accept_status: AcceptStatus | None = None,
        channel: EmailChannel,
        poll_s: float = 30.0,
        timeout_s: float = 30.0,
        batch: int = 100,
    ) -> None:
        self.host = host
        self.port = port
        self.user = user
        self._password = password
        self.folder = folder
        self.ssl = port == 993 if ssl is None else ssl
        self.ssl_context = ssl_context
        self.accept = accept
        self.accept_status = accept_status
        self.channel = channel
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.batch = batch
        self._client: aioimaplib.IMAP4 | None = None

    def __repr__(self) -> str:
        return (
            f"ImapPoller(host={self.host!r}, port={self.port!r}, user={self.user!r}, folder={self.folder!r})"
        )

    # ------------------------------------------------------------------ connection

    async def _connect(self) -> aioimaplib.IMAP4:
        if self._client is not None:
            return self._client
        client: aioimaplib.IMAP4
        if self.ssl:
            client = aioimaplib.IMAP4_SSL(
                self.host, self.port, timeout=self.timeout_s, ssl_context=self.ssl_context
            )
        else:
            client = aioimaplib.IMAP4(self.host, self.port, timeout=self.timeout_s)
        try:
            await client.wait_hello_from_server()
            response = await client.login(self.user, self._password)
            self._check(response, "LOGIN")
            response = await client.select(self.folder)
            self._check(response, f"SELECT {self.folder}")
        except BaseException:
            await self._drop(client)
            raise
        self._client = client
        return client

    async def _drop(self, client: aioimaplib.IMAP4 | None) -> None:
        if client is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.logout(), timeout=self.timeout_s)
        if client is self._client:
            self._client = None

    def _check(self, response: aioimaplib.Response, what: str) -> None:
        if response.result != "OK":
            detail = b" ".join(bytes(line) for line in response.lines[-1:]).decode("utf-8", "replace")
            message = f"IMAP {what} failed: {response.result} {detail}"
            raise ImapError(message.replace(self._password, "***") if self._password else message)

    async def aclose(self) -> None:
        """Log out and close the connection (if open)."""
        await self._drop(self._client)

    # ------------------------------------------------------------------ polling

    async def poll_once(self) -> int:
        """Take every unseen message once; returns how many were stored as new.

        Raises whatever ``accept`` raises and :class:`ImapError`/``OSError``/``TimeoutError`` for
        IMAP trouble; the message being handled then stays unseen and the connection is reset.
        """
        try:
            client = await self._connect()
            uids = await self._unseen(client)
            stored = 0
            for uid in uids[: self.batch]:
                stored += await self._take(client, uid)
            return stored
        except BaseException:
            await self._drop(self._client)
            raise

    async def _unseen(self, client: aioimaplib.IMAP4) -> list[int]:
        # A NOOP first lets the server report mail that arrived since the last command.
        await client.noop()
        response = await client.uid_search("UNSEEN", charset=None)
        self._check(response, "UID SEARCH UNSEEN")
        uids: list[int] = []
        for line in response.lines[:-1]:
            uids.extend(int(tok) for tok in bytes(line).split() if tok.isdigit())
        return sorted(set(uids))

    async def _fetch(self, client: aioimaplib.IMAP4, uid: int) -> bytes | None:
        response = await client.uid("fetch", str(uid), "(UID BODY.PEEK[])")
        self._check(response, f"UID FETCH {uid}")
        lines = response.lines
        for index, line in enumerate(lines):
            if isinstance(line, bytearray) and index > 0:
                header = bytes(lines[index - 1])
                found = _FETCH_UID.search(header)
                if found is None or int(found.group(1)) == uid:
                    return bytes(line)
        return None  # expunged meanwhile

    async def _take(self, client: aioimaplib.IMAP4, uid: int) -> int:
        raw = await self._fetch(client, uid)
        if raw is None:
            return 0
        stored = 0
        try:
            parsed = self.channel.parse_raw(raw)
        except PayloadError as exc:
            log.warning("imap.unparseable", uid=uid, folder=self.folder, reason=str(exc))
        else:
            for message in parsed.messages:
                if await self.accept(message):
                    stored += 1
            for status in parsed.statuses:
                if self.accept_status is not None:
                    await self.accept_status(status)
                else:
                    log.warning(
                        "imap.status_dropped", uid=uid, provider_message_id=status.provider_message_id
                    )
        response = await client.uid("store", str(uid), "+FLAGS.SILENT (\\Seen)")
        self._check(response, f"UID STORE {uid}")
        return stored

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every ``poll_s`` seconds until ``stop`` is set; errors are logged, never raised."""
        try:
            while not stop.is_set():
                try:
                    stored = await self.poll_once()
                    if stored:
                        log.info("imap.polled", stored=stored, folder=self.folder)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("imap.poll_failed", error=f"{type(exc).__name__}: {exc}"[:300])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.poll_s)
        finally:
            await self.aclose()
