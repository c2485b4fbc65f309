"""Abuse limits on the public endpoints, per client address.

Two budgets: webhooks (``/api/webhooks``), checked before any signature so that a flood of
forged deliveries costs us little, at ``RATE_LIMIT_WEBHOOKS_PER_SECOND``; the public pages (web
chat, unsubscribe, OAuth callbacks, the widget) at ``RATE_LIMIT_PUBLIC_PER_MINUTE``. Past a budget
the answer is 429 with ``RateLimit-*`` headers and ``Retry-After`` (added by
:func:`app.ops.requests.internal_error`). The admin API is authenticated
and tenant-scoped, and is not limited here. Limits are per process (one in-memory table each).

The check is a pure ASGI middleware and a GCRA ("generic cell rate algorithm", the token bucket
as one float per client: https://en.wikipedia.org/wiki/Generic_cell_rate_algorithm): ``limit``
requests may come at once, then one every ``period / limit`` seconds. It costs a dict lookup per
request, where Litestar's ``RateLimitMiddleware`` kept each client's request history as JSON in
a store, behind a lock and a worker-thread call per request (most of a webhook's CPU, measured
with ``benchmarks/ingest_cpu.py``).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.exceptions import TooManyRequestsException
from litestar.types import ASGIApp, Receive, Scope, Send

from app.core.settings import Settings
from app.ops.requests import internal_error

__all__ = [
    "PUBLIC_PREFIXES",
    "WEBHOOK_PREFIXES",
    "Budget",
    "RateLimitMiddleware",
    "check_budgets",
    "rate_limits",
]

#: Paths of the public pages sharing the per-minute budget.
PUBLIC_PREFIXES = ("/chat", "/widget", "/api/unsubscribe", "/auth/")
#: Paths of the provider webhooks sharing the per-second budget.
WEBHOOK_PREFIXES = ("/api/webhooks",)

#: Clients remembered per budget at most; past it, those whose bucket is full again are dropped
#: (and, if that is not enough, every one: a flood of addresses must not grow memory).
MAX_CLIENTS = 65_536


@dataclass
class Budget:
    """``limit`` requests per ``period_s`` seconds per client address, on paths under ``prefixes``.

    ``clock`` is monotonic seconds (tests may pass their own)."""

    name: str
    prefixes: tuple[str, ...]
    limit: int
    period_s: float
    clock: Callable[[], float] = time.monotonic
    _tat: dict[str, float] = field(default_factory=dict, repr=False)

    def take(self, client: str) -> float:
        """Count one request of ``client``; returns 0.0 when allowed, else the seconds to wait
        (> 0) before one would be."""
        now = self.clock()
        interval = self.period_s / self.limit
        tat = max(self._tat.get(client, now), now)
        wait = tat - now - (self.period_s - interval)
        if wait > 1e-9:  # a nanosecond of float error is not a wait
            return wait
        if len(self._tat) >= MAX_CLIENTS and client not in self._tat:
            self._tat = {k: v for k, v in self._tat.items() if v > now}
            if len(self._tat) >= MAX_CLIENTS:
                self._tat.clear()
        self._tat[client] = tat + interval
        return 0.0


class RateLimitMiddleware:
    """ASGI middleware applying every :class:`Budget` whose prefix the path starts with; refuses
    with :class:`litestar.exceptions.TooManyRequestsException` (429, ``RateLimit-Policy``,
    ``RateLimit-Remaining: 0``, ``RateLimit-Reset`` in whole seconds, IETF draft
    "RateLimit header fields for HTTP")."""

    def __init__(self, app: ASGIApp, *, budgets: tuple[Budget, ...]) -> None:
        self.app = app
        self.budgets = budgets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            try:
                check_budgets(self.budgets, scope)
            except TooManyRequestsException as exc:
                # answered here, on the ``send`` the request-id middleware wrapped (Litestar's
                # exception middleware sits outside it: its answer had no X-Request-ID)
                request: Request[Any, Any, Any] = Request(scope, receive)
                response = internal_error(request, exc)
                await response.to_asgi_response(None, request)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def rate_limits(settings: Settings) -> list[Callable[[ASGIApp], ASGIApp]]:
    """The rate-limit middleware over the two budgets, for ``AppConfig.middleware``."""
    budgets = (
        Budget("webhooks", WEBHOOK_PREFIXES, settings.rate_limit_webhooks_per_second, 1.0),
        Budget("public", PUBLIC_PREFIXES, settings.rate_limit_public_per_minute, 60.0),
    )

    # a partial rather than a closure: the webhook front door
    # (:mod:`app.messaging.webhooks.front_door`) finds the same budgets in its keywords
    return [functools.partial(RateLimitMiddleware, budgets=budgets)]


def check_budgets(budgets: tuple[Budget, ...], scope: Scope) -> None:
    """Apply every budget whose prefix ``scope["path"]`` starts with; raises
    :class:`litestar.exceptions.TooManyRequestsException` past one (see
    :class:`RateLimitMiddleware`)."""
    path = scope["path"]
    for budget in budgets:
        if path.startswith(budget.prefixes):
            client = scope.get("client")
            wait = budget.take(client[0] if client else "127.0.0.1")
            if wait > 0:
                raise TooManyRequestsException(
                    headers={
                        "RateLimit-Policy": f"{budget.limit}; w={budget.period_s:g}",
                        "RateLimit-Limit": str(budget.limit),
                        "RateLimit-Remaining": "0",
                        "RateLimit-Reset": str(max(1, math.ceil(wait))),
                    }
                )
