"""Abuse limits on the public endpoints, per client address (Litestar's rate-limit middleware).

Two budgets: webhooks (``/api/webhooks``), checked before any signature so that a flood of
forged deliveries costs us little, at ``RATE_LIMIT_WEBHOOKS_PER_SECOND``; the public pages (web
chat, unsubscribe, OAuth callbacks, the widget) at ``RATE_LIMIT_PUBLIC_PER_MINUTE``. Past a budget
the answer is 429 with ``RateLimit-*`` headers and ``Retry-After`` (added by
:func:`app.ops.requests.internal_error`). The admin API is authenticated
and tenant-scoped, and is not limited here. Limits are per process (one in-memory store each).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig

from app.core.settings import Settings

__all__ = ["PUBLIC_PREFIXES", "rate_limits"]

#: Paths of the public pages sharing the per-minute budget.
PUBLIC_PREFIXES = ("/chat", "/widget", "/api/unsubscribe", "/auth/")


def _under(prefixes: tuple[str, ...]) -> Callable[[Request[Any, Any, Any]], bool]:
    def applies(request: Request[Any, Any, Any]) -> bool:
        return request.url.path.startswith(prefixes)

    return applies


def rate_limits(settings: Settings) -> list[DefineMiddleware]:
    """The two rate-limit middlewares, for ``AppConfig.middleware``."""
    webhooks = RateLimitConfig(
        rate_limit=("second", settings.rate_limit_webhooks_per_second),
        check_throttle_handler=_under(("/api/webhooks",)),
        store="rate_limit_webhooks",
    )
    public = RateLimitConfig(
        rate_limit=("minute", settings.rate_limit_public_per_minute),
        check_throttle_handler=_under(PUBLIC_PREFIXES),
        store="rate_limit_public",
    )
    return [webhooks.middleware, public.middleware]
