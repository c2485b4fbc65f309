"""Web chat: the page at ``/chat`` and its WebSocket at ``/chat/ws``.

Protocol (JSON text frames). Client -> server: ``{"type": "message", "id": "<uuid>", "text": "...",
"choice_id": null}``. Server -> client: ``{"type": "ack", "id": ...}`` once stored,
``{"type": "error", "reason": ...}`` for a bad frame, and ``{"type": "message", "seq": n,
"direction": "inbound"|"outbound", "text": ..., "choices": [...]}`` for every message of the
conversation, history first. The session id (``?session=``) is the contact's address.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any

from litestar import MediaType, Response, WebSocket, get, websocket
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect

from app.composition import Runtime
from app.core.logs import get_logger
from app.webchat.feed import new_messages
from channels.base import PayloadError

__all__ = ["ROUTES"]

log = get_logger("leadwarm.webchat")

_SESSION = re.compile(r"^[A-Za-z0-9_-]{8,100}$")
_PAGE = Path(__file__).resolve().parent / "static" / "chat.html"
POLL_S = 1.0


@get("/chat", media_type=MediaType.HTML, include_in_schema=False, sync_to_thread=False)
def chat_page() -> Response[bytes]:
    """The chat page (one static file, no build step)."""
    return Response(_PAGE.read_bytes(), media_type=MediaType.HTML)


@websocket("/chat/ws")
async def chat_socket(socket: WebSocket[Any, Any, Any], runtime: NamedDependency[Runtime]) -> None:
    """One browser tab talking to the bot as a lead; see the module docstring."""
    session = socket.query_params.get("session", "")
    tenant_id = runtime.settings.default_tenant_id
    await socket.accept()
    if not _SESSION.match(session):
        await socket.send_json({"type": "error", "reason": "session must be 8-100 characters [A-Za-z0-9_-]"})
        await socket.close(code=4400)
        return
    channel = runtime.webchat()
    wake = channel.subscribe(session)
    last_seq = 0

    async def push() -> None:
        nonlocal last_seq
        for frame in await new_messages(runtime, tenant_id, session, last_seq):
            last_seq = max(last_seq, int(frame["seq"]))
            await socket.send_json(frame)

    async def writer() -> None:
        while True:
            await push()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.get(), timeout=POLL_S)

    writer_task = asyncio.create_task(writer())
    headers = {"x-session-id": session, "x-widget-id": tenant_id}
    try:
        while True:
            raw = await socket.receive_text()
            try:
                parsed = channel.parse(headers, raw.encode())
            except PayloadError as exc:
                await socket.send_json({"type": "error", "reason": str(exc)})
                continue
            for message in parsed.messages:
                await runtime.accept(tenant_id, message)
                await socket.send_json({"type": "ack", "id": message.provider_message_id.split(":", 1)[1]})
    except WebSocketDisconnect:
        pass
    finally:
        writer_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer_task
        channel.unsubscribe(session, wake)


#: The routes this module serves (registered by its capability's feature plugin).
ROUTES = (
    chat_page,
    chat_socket,
)
