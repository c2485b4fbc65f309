"""The webhook front door: a provider's POST answered before Litestar's router (issue 15).

:mod:`app.messaging.webhooks.direct` answers a webhook POST from a route middleware, but the
request still went through Litestar's exception middleware, its router (a trie walk and the
route's handler map), then the app's middlewares one by one (request id, rate limit, admin
audit), each an ASGI layer with its own ``send`` wrapper: about a fifth of a webhook's CPU.

:func:`install_front_door` puts :class:`WebhookFrontDoor` in front of the app's ASGI handler
(``Litestar.asgi_handler``, inside ``Litestar.__call__``). For a POST to the exact path of a
route that declares :func:`app.messaging.webhooks.direct.direct_ingest`, it does in one frame what
those layers did, in the same order and with the same answers:

1. the request id (the caller's ``X-Request-ID`` when safe, else a new one), bound to every log
   line of the request (structlog contextvars) and returned with the security headers
   (:func:`app.ops.requests.with_request_headers`);
2. the per-client webhook budget (:func:`app.ops.limits.check_budgets`, the SAME budget objects
   the app's rate-limit middleware uses, so both paths count against one budget);
3. the route's :class:`app.messaging.webhooks.direct.DirectIngest` (413, 401, 404, 400-class
   quarantine, 503, 200 after the commit);
4. any exception, through the app's own exception handler (:func:`app.ops.requests.internal_error`:
   an ``HTTPException`` such as the 429 gets Litestar's answer and ``Retry-After``; anything else
   is logged with the request id and answered 500 without detail).

Everything else (other methods and paths, a path with a trailing slash, a mounted app with a
``root_path``) goes to Litestar as before. It is installed only when it can be equivalent: the
routes' middlewares are all ones it knows (the request id, the rate limits, and the ones the
caller names as doing nothing for webhook paths), the app has one exception handler (for
``Exception``), and no CORS, CSRF, compression, allowed hosts, response headers or
``before_send`` hooks; otherwise nothing is changed and the route middleware still serves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from litestar import Litestar, Request
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Receive, Scope, Send

from app.core.logs import get_logger
from app.messaging.webhooks.direct import DirectIngest, DirectIngestFactory, send_response
from app.ops.limits import Budget, RateLimitMiddleware, check_budgets
from app.ops.requests import RequestIdMiddleware, take_request_id

__all__ = ["WebhookFrontDoor", "front_door_routes", "install_front_door"]

log = get_logger("leadwarm.webhooks.front_door")

ExceptionHandler = Callable[[Request[Any, Any, Any], Exception], Any]
"""``(request, exc) -> Response``: the app's handler for ``Exception``."""


class WebhookFrontDoor:
    """ASGI app in front of Litestar's handler: serves POSTs to ``routes`` (exact path ->
    the route's :class:`DirectIngest`), passes everything else to ``app``; see the module
    docstring. ``budgets`` are the rate-limit budgets to apply (shared with the app's
    middleware), ``on_error`` the app's exception handler."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: dict[str, DirectIngest],
        budgets: tuple[Budget, ...],
        on_error: ExceptionHandler,
    ) -> None:
        self.app = app
        self.routes = routes
        self.budgets = budgets
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope.get("method") != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        runtime = route.runtime_of(scope)
        if runtime is None:  # an app without the runtime dependency: the route's own handler
            await self.app(scope, receive, send)
            return
        request_id = take_request_id(scope)
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        answered: list[bool] = []

        async def marking_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                answered.append(True)
            await send(message)

        try:
            check_budgets(self.budgets, scope)
            await route.serve(runtime, scope, receive, marking_send, request_id=request_id)
        except Exception as exc:
            if answered:  # the answer had started: nothing more can be said on this request
                raise
            response = self.on_error(Request(scope, receive), exc)
            await send_response(response, send, request_id=request_id)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)


def _budgets_of(middleware: Any) -> tuple[Budget, ...] | None:
    """The budgets of a rate-limit middleware factory (:func:`app.ops.limits.rate_limits`)."""
    if isinstance(middleware, functools.partial) and middleware.func is RateLimitMiddleware:
        budgets = middleware.keywords.get("budgets")
        return tuple(budgets) if isinstance(budgets, tuple) else None
    return None


def front_door_routes(
    app: Litestar, *, inert: Iterable[type[Any]] = ()
) -> tuple[dict[str, DirectIngest], tuple[Budget, ...]] | None:
    """``({path: DirectIngest}, budgets)`` for the routes the front door can serve, or ``None``
    when the app has something it could not reproduce (see the module docstring). ``inert``:
    middleware types that do nothing on webhook paths (the admin audit, which audits
    ``/api/v1/`` only)."""
    if (
        app.before_send
        or app.cors_config
        or app.csrf_config
        or app.compression_config
        or app.allowed_hosts
        or app.response_headers
        or set(app.exception_handlers) != {Exception}
    ):
        return None
    inert_types = tuple(inert)
    routes: dict[str, DirectIngest] = {}
    budgets: tuple[Budget, ...] = ()
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_parameters:
            continue
        for handler in route.route_handlers:
            factories = [m for m in handler.middleware or () if isinstance(m, DirectIngestFactory)]
            if "POST" not in handler.http_methods or len(factories) != 1:
                continue
            handler_budgets: tuple[Budget, ...] = ()
            for middleware in handler.resolve_middleware():
                found = _budgets_of(middleware)
                if found is not None:
                    handler_budgets += found
                elif middleware is RequestIdMiddleware or middleware is factories[0]:
                    continue
                elif not isinstance(middleware, inert_types):
                    log.info("webhook.front_door_skipped", path=route.path, middleware=repr(middleware))
                    return None
            if routes and handler_budgets != budgets:
                return None  # one front door, one set of budgets
            budgets = handler_budgets
            factory = factories[0]
            routes[route.path] = DirectIngest(
                app.asgi_handler,
                channel_name=factory.channel_name,
                prepare=factory.prepare,
                answer=factory.answer,
            )
    return routes, budgets


def install_front_door(app: Litestar, *, inert: Iterable[type[Any]] = ()) -> bool:
    """Put :class:`WebhookFrontDoor` in front of ``app``'s ASGI handler when it can be equivalent
    (:func:`front_door_routes`); returns whether it did."""
    found = front_door_routes(app, inert=inert)
    if not found or not found[0]:
        return False
    routes, budgets = found
    app.asgi_handler = WebhookFrontDoor(
        app.asgi_handler, routes=routes, budgets=budgets, on_error=app.exception_handlers[Exception]
    )
    return True
