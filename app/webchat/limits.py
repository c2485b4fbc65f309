"""Abuse limits of the web chat, which the HTTP rate limiter (``app/ops/limits.py``) cannot see:
its WebSocket is not an HTTP request, and one socket carries a whole session.

Three budgets:

- **sockets (sessions) per client address**: ``WEBCHAT_SESSIONS_PER_MINUTE`` (a leaky bucket per
  address, :mod:`aiolimiter`). Past it the socket is accepted, gets ``{"type": "error", "reason":
  "too many chat sessions", "retry_after": s}`` and is closed with :data:`CLOSE_RATE_LIMITED`
  (4429, the 4000-4999 private range of RFC 6455 section 7.4.2, read "HTTP 429");
- **messages per client address**: ``WEBCHAT_MESSAGES_PER_MINUTE``; past it the frame is answered
  ``{"type": "error", "reason": "too many messages", "retry_after": s}`` and not stored; the socket
  stays open;
- **new leads per embedding site, per tenant, per hour**: ``WEBCHAT_LEADS_PER_ORIGIN_PER_HOUR``,
  counted in the store (``webchat_lead_counts``) in the same transaction that creates the lead, so
  it holds across processes; past it the chat answers ``{"type": "error", "reason": "chat is busy,
  try again later"}`` and creates nothing (:class:`LeadCapReachedError`).

The first two are per process and keyed by the socket's peer address (behind a proxy, run uvicorn
with ``--proxy-headers`` so that it is the client's). Each keeps at most :data:`MAX_TRACKED`
addresses (the least recently seen are forgotten first), so a spray of addresses cannot grow memory
without bound.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict

from aiolimiter import AsyncLimiter

from kernel.errors import LeadWarmError

__all__ = [
    "CLOSE_RATE_LIMITED",
    "MAX_TRACKED",
    "AddressLimiter",
    "LeadCapReachedError",
    "WebChatLimits",
    "lead_count_id",
    "session_claim_id",
]

#: WebSocket close code for "rate limited" (private range, mirrors HTTP 429).
CLOSE_RATE_LIMITED = 4429
#: Addresses one :class:`AddressLimiter` remembers at most.
MAX_TRACKED = 10_000


class LeadCapReachedError(LeadWarmError):
    """The embedding site created its hourly share of new web-chat leads for this tenant."""


class AddressLimiter:
    """``rate`` events per ``period_s`` seconds per client address (a leaky bucket that allows a
    burst of ``rate``), for at most ``max_tracked`` addresses."""

    def __init__(self, *, rate: int, period_s: float, max_tracked: int = MAX_TRACKED) -> None:
        if rate < 1 or period_s <= 0:
            raise ValueError("rate must be >= 1 and period_s > 0")
        self.rate = rate
        self.period_s = period_s
        self.max_tracked = max_tracked
        self._buckets: OrderedDict[str, AsyncLimiter] = OrderedDict()

    async def try_acquire(self, address: str) -> float:
        """Take one event for ``address``: ``0.0`` when allowed, else the seconds to wait (> 0)
        before the next one would be. Never waits."""
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = self._buckets[address] = AsyncLimiter(self.rate, self.period_s)
            while len(self._buckets) > self.max_tracked:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(address)
        if not bucket.has_capacity():
            return max(0.001, self.period_s / self.rate)
        await bucket.acquire()  # has capacity: returns at once (aiolimiter's non-blocking form)
        return 0.0


class WebChatLimits:
    """The per-process budgets of one service: sockets and messages per client address."""

    def __init__(self, *, sessions_per_minute: int, messages_per_minute: int) -> None:
        self.sessions = AddressLimiter(rate=sessions_per_minute, period_s=60.0)
        self.messages = AddressLimiter(rate=messages_per_minute, period_s=60.0)


def lead_count_id(origin: str | None, now: float) -> str:
    """The ``webchat_lead_counts`` document for ``origin`` (``""`` for none, i.e. the service's
    own page) in the UTC hour holding ``now`` (epoch seconds)."""
    digest = hashlib.sha256((origin or "").lower().encode()).hexdigest()[:20]
    return f"{digest}:{math.floor(now / 3600)}"


def session_claim_id(session: str) -> str:
    """The ``webchat_lead_counts`` document marking that ``session`` was counted (idempotence)."""
    return "s:" + hashlib.sha256(session.encode()).hexdigest()[:32]
