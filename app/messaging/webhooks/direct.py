"""The webhook hot path: a route middleware that answers a provider's POST itself.

A signed webhook is the busiest request the service takes (issue 15: a WhatsApp campaign's
replies). Litestar's handler layer (signature model, dependency resolution, the response's
conversion) cost about a third of a webhook's CPU, for a route that needs none of it: the body
is read as bytes, the answer is a small JSON (or TwiML) document. :func:`direct_ingest` returns the
middleware a webhook POST route declares; it reads the body (413 past the channel's limit, from
``Content-Length`` or while reading), runs :func:`app.messaging.webhooks.ingest.ingest_delivery`
(route, verify, parse, append with group commit: the same guarantees) and sends its answer. The
app's own middlewares (request id, security headers, rate limits, the 500 handler) still wrap
it, and the decorated handler stays the route's documentation (OpenAPI) and its fallback when
the app has no ``runtime`` dependency.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Response
from litestar.datastructures import URL
from litestar.exceptions import InternalServerException
from litestar.types import ASGIApp, Receive, Scope, Send

from app.composition import Runtime
from app.messaging.webhooks.ingest import ingest_delivery, too_large
from app.ops.requests import HEADER as REQUEST_ID_HEADER
from app.ops.requests import SECURITY_HEADERS, with_request_headers
from channels.registry import channel_class

__all__ = ["DirectIngest", "DirectIngestFactory", "FixedAnswer", "direct_ingest", "send_response"]

Prepare = Callable[[Runtime, Scope, dict[str, str]], str]
"""``(runtime, scope, headers) -> url``: the URL the signature covers; may add headers."""


@dataclasses.dataclass(frozen=True)
class FixedAnswer:
    """A route's 200 answer whatever was stored (Twilio's empty TwiML): ``content`` in
    ``media_type`` (a ``text/`` type without a charset gets ``; charset=utf-8``, as a Litestar
    ``Response`` of a ``str`` does). Sent as it is, no ``Response`` built."""

    content: str
    media_type: str

    @functools.cached_property
    def encoded(self) -> tuple[bytes, bytes]:
        """``(body, Content-Type)`` as sent."""
        return self.content.encode("utf-8"), _content_type(self.media_type, "utf-8")


def _request_url(_: Runtime, scope: Scope, __: dict[str, str]) -> str:
    return str(URL.from_scope(scope))


class DirectIngest:
    """ASGI middleware of one webhook POST route (see the module docstring). Other methods and
    apps without a ``runtime`` dependency go on to the route's own handler."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        channel_name: str,
        prepare: Prepare = _request_url,
        answer: FixedAnswer | None = None,
    ) -> None:
        self.app = app
        self.channel_name = channel_name
        self.prepare = prepare
        self.answer = answer
        self._runtime: tuple[Any, Runtime | None] | None = None

    def runtime_of(self, scope: Scope) -> Runtime | None:
        """The runtime the app's ``runtime`` dependency gives (resolved once per app)."""
        app = scope.get("litestar_app")
        if self._runtime is None or self._runtime[0] is not app:
            provider = getattr(app, "dependencies", {}).get("runtime")
            value = provider.dependency() if provider is not None else None
            self._runtime = (app, value if isinstance(value, Runtime) else None)
        return self._runtime[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime_of(scope) if scope.get("method") == "POST" else None
        if runtime is None:
            await self.app(scope, receive, send)
            return
        await self.serve(runtime, scope, receive, send)

    async def serve(
        self, runtime: Runtime, scope: Scope, receive: Receive, send: Send, *, request_id: str = ""
    ) -> None:
        """Answer one POST: read the body (413 past the channel's limit), run the pipeline, send
        the answer (with ``request_id`` and the security headers when ``request_id`` is given:
        the front door's case, where no middleware adds them). Raises what reading the body
        raises (:class:`litestar.exceptions.InternalServerException` on a disconnect)."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length", "")
        refused = None
        if declared.isdigit():  # ASCII digits, at most 19 read: int() of thousands would raise
            refused = too_large(self.channel_name, int(declared) if len(declared) < 19 else 10**18)
        raw_body = None
        if refused is None:
            raw_body = await _read_body(receive, too_large_at=_limit(self.channel_name))
            if raw_body is None:
                refused = too_large(self.channel_name, _limit(self.channel_name) + 1)
        if refused is not None or raw_body is None:
            await send_response(refused or Response({}, status_code=413), send, request_id=request_id)
            return
        url = self.prepare(runtime, scope, headers)
        answer = await ingest_delivery(runtime, self.channel_name, headers, raw_body, url=url)
        if isinstance(answer, Response) and (self.answer is None or answer.status_code != 200):
            await send_response(answer, send, request_id=request_id)  # a refusal, or quarantined
        elif self.answer is None:  # stored: the counts as JSON, no Response built
            await _send(200, msgspec.json.encode(answer), _JSON, (), send, request_id)
        else:  # every 200 of the route (stored or quarantined) is its fixed answer
            body, content_type = self.answer.encoded
            await _send(200, body, content_type, (), send, request_id)


@functools.cache
def _limit(channel_name: str) -> int:
    return channel_class(channel_name).traits.max_body_bytes


async def _read_body(receive: Receive, *, too_large_at: int) -> bytes | None:
    """The request body, or ``None`` once it grows past ``too_large_at`` bytes. Raises
    :class:`litestar.exceptions.InternalServerException` when the client goes away first (as
    Litestar's own ``Request.body`` does)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InternalServerException("client disconnected prematurely")
        chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
        size += len(chunk)
        if size > too_large_at:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


@functools.lru_cache(maxsize=64)
def _content_type(media_type: str, encoding: str) -> bytes:
    """The ``Content-Type`` header value of a media type (``; charset=`` added to a ``text/`` one
    that has none)."""
    if media_type.startswith("text/") and "charset" not in media_type:
        media_type += f"; charset={encoding}"
    return media_type.encode("latin-1")


async def send_response(response: Response[Any], send: Send, *, request_id: str = "") -> None:
    """Send ``response`` (bytes, text, or a JSON-encodable value, its status, media type and
    headers; no cookies or background tasks) on ``send``; with ``request_id``, plus
    ``X-Request-ID`` and the security headers (:func:`app.ops.requests.with_request_headers`)."""
    content = response.content
    if isinstance(content, bytes):
        body = content
    elif isinstance(content, str):
        body = content.encode(response.encoding)
    else:
        body = msgspec.json.encode(content)
    own = [(str(k).lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in response.headers.items()]
    content_type = _content_type(str(response.media_type or "application/json"), response.encoding)
    await _send(response.status_code or 200, body, content_type, own, send, request_id)


_JSON = b"application/json"


async def _send(
    status: int,
    body: bytes,
    content_type: bytes,
    own: list[tuple[bytes, bytes]] | tuple[()],
    send: Send,
    request_id: str,
) -> None:
    """Send one complete answer: ``status``, ``Content-Type``, ``Content-Length``, the response's
    ``own`` headers, then (with ``request_id``) ``X-Request-ID`` and the security headers."""
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode("latin-1"))]
    if own:
        headers += own
        if request_id:
            headers = with_request_headers(headers, request_id)
    elif request_id:  # what with_request_headers gives for a response without headers of its own
        headers += [(REQUEST_ID_HEADER, request_id.encode("latin-1")), *SECURITY_HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class DirectIngestFactory:
    """The middleware factory a webhook POST route declares (see :func:`direct_ingest`); the
    front door (:mod:`app.messaging.webhooks.front_door`) finds the routes by it and builds the
    same :class:`DirectIngest` for their paths."""

    def __init__(self, channel_name: str, *, prepare: Prepare, answer: FixedAnswer | None) -> None:
        self.channel_name = channel_name
        self.prepare = prepare
        self.answer = answer

    def __call__(self, app: ASGIApp) -> DirectIngest:
        """The route middleware around ``app`` (the route's own handler)."""
        return DirectIngest(app, channel_name=self.channel_name, prepare=self.prepare, answer=self.answer)

    def __repr__(self) -> str:
        return f"DirectIngestFactory(channel_name={self.channel_name!r})"


def direct_ingest(
    channel_name: str, *, prepare: Prepare = _request_url, answer: FixedAnswer | None = None
) -> DirectIngestFactory:
    """The middleware factory for a webhook POST route of ``channel_name`` (``@post(...,
    middleware=[direct_ingest("whatsapp")])``); ``prepare`` gives the URL a signature covers (the
    request's own by default), ``answer`` the route's fixed 200 answer (else the stored counts as
    JSON)."""
    return DirectIngestFactory(channel_name, prepare=prepare, answer=answer)
