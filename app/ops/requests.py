"""Every request gets an id; every unexpected error is logged with it and answered with it.

:class:`RequestIdMiddleware` (pure ASGI) takes the caller's ``X-Request-ID`` when it is a short,
safe token, else makes one, binds it to every log line of the request (structlog contextvars) and
returns it in the ``X-Request-ID`` response header. :func:`internal_error` is the app's handler for
any exception no route handled: it logs the traceback once, with the request id, method and path,
and answers ``500 {"error": "internal error", "request_id": ...}`` without any detail of the
exception (which could hold data). Litestar logs exceptions only in debug mode; this makes sure a
500 never goes unseen.

Security headers (OWASP Secure Headers Project) are added to every HTTP response:
``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``, a restrictive
``Content-Security-Policy`` for pages that set none themselves (``frame-ancestors 'none'`` unless
a route sets its own, as an embeddable widget does), and ``X-Frame-Options: DENY`` alongside it
(left out when the route's own policy names its ``frame-ancestors``: a browser that reads both
would otherwise refuse the frame the policy allows).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable
from typing import Any

import structlog
from litestar import Request, Response
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.exceptions.responses import create_exception_response
from litestar.status_codes import HTTP_429_TOO_MANY_REQUESTS, HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logs import get_logger

__all__ = [
    "SECURITY_HEADERS",
    "RequestIdMiddleware",
    "internal_error",
    "new_request_id",
    "request_id_of",
    "take_request_id",
    "with_request_headers",
]

log = get_logger("leadwarm.requests")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
HEADER = b"x-request-id"

#: Ids this process makes: a random per-process prefix and a counter (unique, not secret: an id
#: names a request in the logs; one ``uuid4`` a request cost a ``getrandom`` system call).
_PREFIX = os.urandom(6).hex()
_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A fresh request id: 12 hex characters of this process, ``-``, a decimal counter."""
    return f"{_PREFIX}-{next(_COUNTER)}"


#: Headers every HTTP response carries unless the route set its own.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: https:; style-src 'self' 'unsafe-inline'; "
        b"script-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
        b"base-uri 'none'; form-action 'self'",
    ),
    (b"x-frame-options", b"DENY"),
)


def take_request_id(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is a short, safe token (8-64 of ``A-Za-z0-9._-``),
    else a fresh one (:func:`new_request_id`); stored in ``scope["state"]["request_id"]``."""
    request_id = ""
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            given = value.decode("latin-1")
            request_id = given if _SAFE_ID.match(given) else ""
            break
    request_id = request_id or new_request_id()
    scope.setdefault("state", {})["request_id"] = request_id
    return request_id


def with_request_headers(
    headers: Iterable[tuple[bytes, bytes]], request_id: str
) -> list[tuple[bytes, bytes]]:
    """A response's ASGI ``headers`` plus ``X-Request-ID`` and each of :data:`SECURITY_HEADERS`
    the response did not set itself (``X-Frame-Options`` left out when its own
    ``Content-Security-Policy`` names ``frame-ancestors``)."""
    out = list(headers)
    present = {name.lower() for name, _ in out}
    out.append((HEADER, request_id.encode()))
    own_csp = b"".join(v for k, v in out if k.lower() == b"content-security-policy")
    skip = present | ({b"x-frame-options"} if b"frame-ancestors" in own_csp else set())
    out.extend(h for h in SECURITY_HEADERS if h[0] not in skip)
    return out


def request_id_of(scope: Scope) -> str:
    """The id :class:`RequestIdMiddleware` gave this request ("-" outside one)."""
    return str(scope.get("state", {}).get("request_id", "-"))


class RequestIdMiddleware:
    """ASGI middleware: request id in, request id and security headers out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in (ScopeType.HTTP, ScopeType.WEBSOCKET):
            await self.app(scope, receive, send)
            return
        request_id = take_request_id(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_request_headers(message.get("headers", []), request_id)
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_headers)


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Exception handler for anything a route did not handle: see the module docstring."""
    if isinstance(exc, HTTPException):  # raised on purpose (401, 404, 400...): Litestar's own answer
        response = create_exception_response(request, exc)
        if exc.status_code == HTTP_429_TOO_MANY_REQUESTS and exc.headers:
            # RFC 9110 section 10.2.3: tell the client how long to wait (the rate limit's reset).
            reset = {k.lower(): v for k, v in exc.headers.items()}.get("ratelimit-reset", "1")
            response.headers["Retry-After"] = str(max(1, int(reset))) if str(reset).isdigit() else "1"
        return response
    request_id = request_id_of(request.scope)
    log.error(
        "request.failed",
        request_id=request_id,
        method=request.method,
        path=request.url.path,
        error=type(exc).__name__,
        exc_info=exc,
    )
    return Response(
        {"error": "internal error", "request_id": request_id}, status_code=HTTP_500_INTERNAL_SERVER_ERROR
    )
