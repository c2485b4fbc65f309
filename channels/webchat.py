"""Web chat: the bot on a web page (``/chat``) or in a terminal (``leadwarm chat``).

The transport is a WebSocket the app serves. Inbound frames are JSON objects
``{"type": "message", "id": <client message id>, "text": ..., "choice_id": ...}``; the client
generates ``id`` (a UUID) so that a frame sent twice after a reconnect is stored once. The
session id (the contact's address) is chosen by the client and kept in its local storage.

Sending stores nothing and needs no network: the app writes the message to the conversation
before dispatching it, and every open socket of the session reads new messages from the store
(pushed at once in this process through :meth:`WebChatChannel.subscribe`, polled otherwise), so
the page works when several instances serve it.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Mapping
from typing import ClassVar

from channels.base import (
    Channel,
    ChannelTraits,
    InboundMessage,
    OutboundMessage,
    ParsedWebhook,
    PayloadError,
    guarded_parse,
)

__all__ = ["MAX_FRAME_BYTES", "MAX_TEXT", "WebChatChannel"]

#: Longest text kept from a frame (characters); a longer one is cut, ``metadata["truncated_from"]``.
MAX_TEXT = 4000
#: Largest frame read (bytes): a text of MAX_TEXT characters written as JSON escapes (up to 12
#: bytes a character: an escaped surrogate pair), plus room for the other fields.
MAX_FRAME_BYTES = 64 * 1024


class WebChatChannel(Channel):
    """Web chat sessions. ``recipient`` of inbound messages is the tenant's widget id."""

    name: ClassVar[str] = "webchat"
    traits: ClassVar[ChannelTraits] = ChannelTraits(
        address_field="webchat_id",
        keyword_optouts=True,
        reports_statuses=False,  # the widget reads the conversation; no status names a sent message
        max_text_chars=2000,
        rich_content=True,
        max_body_bytes=MAX_FRAME_BYTES,
        max_inbound_chars=MAX_TEXT,
    )

    def __init__(self) -> None:
        self._listeners: dict[str, set[asyncio.Queue[str]]] = defaultdict(set)

    def verify(self, headers: Mapping[str, str], raw_body: bytes, *, url: str = "") -> None:
        """Web chat frames arrive over the app's own WebSocket: nothing to verify."""

    def parse(self, headers: Mapping[str, str], raw_body: bytes) -> ParsedWebhook:
        """Parse one client frame. ``headers`` carries ``x-session-id`` and ``x-widget-id``.

        Total (:func:`channels.base.guarded_parse`): raises :class:`PayloadError` on a frame over
        :data:`MAX_FRAME_BYTES`, malformed JSON, a missing id or session, or a text that is not a
        string. A text over :data:`MAX_TEXT` characters is cut (``metadata["truncated_from"]``);
        lone surrogates (``"\\ud800"`` escapes) are replaced by U+FFFD.
        """
        return guarded_parse(self.name, self.traits, raw_body, lambda: self._parse(headers, raw_body))

    def _parse(self, headers: Mapping[str, str], raw_body: bytes) -> ParsedWebhook:
        session = headers.get("x-session-id", "")
        if not session or len(session) > 100:
            raise PayloadError("missing or invalid session id")
        try:
            frame = json.loads(raw_body)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise PayloadError(f"frame is not valid JSON: {type(exc).__name__}") from None
        if not isinstance(frame, dict) or frame.get("type", "message") != "message":
            raise PayloadError("frame must be an object of type 'message'")
        message_id, text = frame.get("id"), frame.get("text", "")
        if not isinstance(message_id, str) or not message_id or len(message_id) > 100:
            raise PayloadError("frame needs a string 'id' (the client's message id)")
        if not isinstance(text, str):
            raise PayloadError("'text' must be a string")
        choice_id = frame.get("choice_id")
        if choice_id is not None and (not isinstance(choice_id, str) or len(choice_id) > 200):
            raise PayloadError("'choice_id' must be a string of at most 200 characters")
        return ParsedWebhook(
            messages=[
                InboundMessage(
                    channel=self.name,
                    provider_message_id=f"{session}:{message_id}",
                    sender=session,
                    recipient=headers.get("x-widget-id", ""),
                    text=text.strip(),
                    kind="button_reply" if choice_id else "text",
                    choice_id=choice_id,
                    contact_name=frame["name"][:200] if isinstance(frame.get("name"), str) else None,
                )
            ]
        )

    async def send(self, message: OutboundMessage) -> str:
        """Wake this process's sockets of ``message.to``; the id is our outbox id."""
        for queue in list(self._listeners.get(message.to, ())):
            queue.put_nowait(message.idempotency_key)
        return f"wc:{message.idempotency_key}"

    def subscribe(self, session: str) -> asyncio.Queue[str]:
        """A queue that receives a token each time a message is sent to ``session`` here."""
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._listeners[session].add(queue)
        return queue

    def unsubscribe(self, session: str, queue: asyncio.Queue[str]) -> None:
        """Stop notifications for ``queue``."""
        listeners = self._listeners.get(session)
        if listeners is not None:
            listeners.discard(queue)
            if not listeners:
                self._listeners.pop(session, None)
