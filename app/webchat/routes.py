"""Web chat: the page at ``/chat``, its WebSocket at ``/chat/ws``, its branding at ``/chat/config``
and the embeddable widget at ``/widget.js``.

``<script src="https://leads.example.com/widget.js" data-tenant="acme" async></script>`` on any page
of a site the tenant allows (``webchat_allowed_origins`` in its settings) adds a chat button that
opens ``/chat?tenant=acme&embed=1`` in a frame. The page may be framed only by those sites
(``Content-Security-Policy: frame-ancestors``), ``/chat/config`` answers them with CORS headers,
and the socket refuses other origins. ``/chat?session=<id>`` opens a session created through the
API (``POST /api/v1/leads`` with ``channel: webchat``).

Protocol (JSON text frames). Client -> server: ``{"type": "start"}`` when the chat opens (the
playbook's first messages come without waiting for the visitor), ``{"type": "typing"}`` while the
visitor types (a burst is answered once they stop, without a fixed wait), ``{"type": "message", "id":
"<uuid>", "text": "...", "choice_id": null}``. Server -> client: ``{"type": "ack", "id": ...}``
once stored, ``{"type": "typing"}`` while a reply is being prepared, ``{"type": "error", "reason":
...}`` for a bad frame, and ``{"type": "message", "seq": n, "direction": "inbound"|"outbound",
"text": ..., "choices": [...]}`` for every message of the conversation, history first (so a
reconnect shows the whole conversation). The session id (``?session=``) is the contact's address.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
from pathlib import Path
from typing import Any

from litestar import MediaType, Request, Response, WebSocket, get, websocket
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, WebSocketDisconnect
from litestar.status_codes import HTTP_403_FORBIDDEN

from app.composition import Runtime
from app.core.logs import get_logger
from app.webchat.feed import new_messages
from app.webchat.limits import CLOSE_RATE_LIMITED, LeadCapReachedError, WebChatLimits
from app.webchat.sessions import (
    admit_new_lead,
    allowed_origin,
    branding,
    ensure_started,
    own_origin,
    still_typing,
)
from channels.base import PayloadError

__all__ = ["ROUTES"]

log = get_logger("leadwarm.webchat")

_SESSION = re.compile(r"^[A-Za-z0-9_-]{8,100}$")
_STATIC = Path(__file__).resolve().parent / "static"
_PAGE = _STATIC / "chat.html"
_WIDGET = _STATIC / "widget.js"
_GLYPHS = _STATIC / "glyphs.js"
_TENANT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: An origin as it may appear in a CSP source list (no space, quote or ``;`` can slip in).
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")
POLL_S = 1.0
#: How long a closing socket waits for its writer task to end after cancelling it (seconds).
WRITER_STOP_S = 5.0
#: A ``typing`` frame touches the store at most this often per socket (seconds).
TYPING_MIN_INTERVAL_S = 1.0


@get("/chat", media_type=MediaType.HTML, include_in_schema=False)
async def chat_page(request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]) -> Response[bytes]:
    """The chat page (one static file, no build step); framable only by the tenant's sites."""
    tenant_id = request.query_params.get("tenant") or runtime.settings.default_tenant_id
    if not _TENANT.match(tenant_id) or not await runtime.tenants.exists(tenant_id):
        raise NotFoundException("no such chat")
    profile = await runtime.tenants.profile(tenant_id)
    ancestors = " ".join(["'self'", *(o for o in profile.webchat_allowed_origins if _ORIGIN.match(o))])
    headers = {
        "Content-Security-Policy": f"frame-ancestors {ancestors}",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    return Response(_PAGE.read_bytes(), media_type=MediaType.HTML, headers=headers)


def _script(path: Path) -> Response[bytes]:
    return Response(
        path.read_bytes(),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


@get("/widget.js", include_in_schema=False, sync_to_thread=False)
def widget_script() -> Response[bytes]:
    """The embeddable widget: ``<script src=".../widget.js" data-tenant="...">``."""
    return _script(_WIDGET)


@get("/chat/glyphs.js", include_in_schema=False, sync_to_thread=False)
def glyphs_script() -> Response[bytes]:
    """``LeadWarmGlyphs.visible(text, font)``: text without the emoji the browser has no font for
    (the chat page and the dashboard's widget preview both load it)."""
    return _script(_GLYPHS)


@get("/chat/config", include_in_schema=False)
async def chat_config(request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]) -> Response[Any]:
    """The tenant's chat branding (name, colours, logo, greeting in ``lang``); CORS for the
    tenant's allowed origins, 403 for any other site, 404 for an unknown tenant."""
    tenant_id = request.query_params.get("tenant") or runtime.settings.default_tenant_id
    if not _TENANT.match(tenant_id) or not await runtime.tenants.exists(tenant_id):
        raise NotFoundException("no such chat")
    profile = await runtime.tenants.profile(tenant_id)
    origin = request.headers.get("origin")
    own = own_origin(runtime, request.headers.get("host"), request.url.scheme)
    if not allowed_origin(profile, origin, own):
        log.warning("webchat.origin_refused", tenant=tenant_id, origin=origin)
        return Response({"error": "origin not allowed"}, status_code=HTTP_403_FORBIDDEN)
    headers = {"Vary": "Origin"}
    if origin:
        headers["Access-Control-Allow-Origin"] = origin
    return Response(branding(profile, request.query_params.get("lang")), headers=headers)


@websocket("/chat/ws")
async def chat_socket(
    socket: WebSocket[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    webchat_limits: NamedDependency[WebChatLimits],
) -> None:
    """One browser tab talking to the bot as a lead; see the module docstring and
    :mod:`app.webchat.limits` (error frames with ``retry_after`` seconds, close code 4429)."""
    session = socket.query_params.get("session", "")
    tenant_id = socket.query_params.get("tenant") or runtime.settings.default_tenant_id
    language = (socket.query_params.get("lang") or "")[:2].lower() or None
    client = socket.client.host if socket.client else "-"
    await socket.accept()
    wait = await webchat_limits.sessions.try_acquire(client)
    if wait:
        log.warning("webchat.rate_limited", what="sessions", client=client)
        await socket.send_json(
            {"type": "error", "reason": "too many chat sessions", "retry_after": math.ceil(wait)}
        )
        await socket.close(code=CLOSE_RATE_LIMITED)
        return
    if not _SESSION.match(session):
        await socket.send_json({"type": "error", "reason": "session must be 8-100 characters [A-Za-z0-9_-]"})
        await socket.close(code=4400)
        return
    if not _TENANT.match(tenant_id) or not await runtime.tenants.exists(tenant_id):
        await socket.send_json({"type": "error", "reason": "no such chat"})
        await socket.close(code=4404)
        return
    profile = await runtime.tenants.profile(tenant_id)
    own = own_origin(runtime, socket.headers.get("host"), "https" if socket.url.scheme == "wss" else "http")
    origin = socket.headers.get("origin")
    if not allowed_origin(profile, origin, own):
        log.warning("webchat.origin_refused", tenant=tenant_id, origin=socket.headers.get("origin"))
        await socket.send_json({"type": "error", "reason": "origin not allowed"})
        await socket.close(code=4403)
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
            # in this task (no inner task as wait_for makes): cancelling the writer ends the get
            # at once; a wait_for being cancelled waits for its inner task, and one such wait
            # hung a socket's teardown on Python 3.11
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    await wake.get()

    writer_task = asyncio.create_task(writer())
    headers = {"x-session-id": session, "x-widget-id": tenant_id}
    cap = runtime.settings.webchat_leads_per_origin_per_hour
    admitted = False
    last_typing = 0.0
    try:
        while True:
            raw = await socket.receive_text()
            kind = _control(raw)
            if kind == "typing":
                if runtime.clock.now() - last_typing >= TYPING_MIN_INTERVAL_S:
                    last_typing = runtime.clock.now()
                    await still_typing(runtime, tenant_id, session)
                continue
            if kind is None:
                wait = await webchat_limits.messages.try_acquire(client)
                if wait:
                    log.warning("webchat.rate_limited", what="messages", client=client, tenant=tenant_id)
                    await socket.send_json(
                        {"type": "error", "reason": "too many messages", "retry_after": math.ceil(wait)}
                    )
                    continue
            if not admitted:
                try:
                    await admit_new_lead(runtime, tenant_id, session, origin, cap_per_hour=cap)
                except LeadCapReachedError:
                    log.warning("webchat.lead_cap", tenant=tenant_id, origin=origin, cap=cap)
                    await socket.send_json({"type": "error", "reason": "chat is busy, try again later"})
                    await socket.close(code=CLOSE_RATE_LIMITED)
                    return
                admitted = True
            if kind == "start":
                if await ensure_started(runtime, tenant_id, session, language):
                    await socket.send_json({"type": "typing"})
                continue
            try:
                parsed = channel.parse(headers, raw.encode())
            except PayloadError as exc:
                await socket.send_json({"type": "error", "reason": str(exc)})
                continue
            for message in parsed.messages:
                await runtime.accept(tenant_id, message)
                await socket.send_json({"type": "ack", "id": message.provider_message_id.split(":", 1)[1]})
                await socket.send_json({"type": "typing"})
    except WebSocketDisconnect:
        pass
    finally:
        writer_task.cancel()
        # bounded: a socket's end never waits on a store call that ignores its cancellation
        done, _ = await asyncio.wait({writer_task}, timeout=WRITER_STOP_S)
        if not done:
            log.warning("webchat.writer_not_stopped", tenant=tenant_id, timeout_s=WRITER_STOP_S)
        elif not writer_task.cancelled():
            writer_task.exception()  # retrieved: a send to a closed socket is the usual end
        channel.unsubscribe(session, wake)


def _control(raw: str) -> str | None:
    """``start`` or ``typing`` for those small control frames, else ``None``."""
    if len(raw) > 100 or ('"start"' not in raw and '"typing"' not in raw):
        return None
    with contextlib.suppress(ValueError):
        frame = json.loads(raw)
        if isinstance(frame, dict) and frame.get("type") in ("start", "typing"):
            return str(frame["type"])
    return None


#: The routes this module serves (registered by its capability's feature plugin).
ROUTES = (
    chat_page,
    chat_config,
    widget_script,
    glyphs_script,
    chat_socket,
)
