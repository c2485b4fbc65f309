"""A circuit breaker per CRM connection, its state in the store (``crm_breakers/{connection_id}``)
so every process sees it.

``closed`` -> (``threshold`` consecutive failures) -> ``open`` until ``open_until`` -> the next
caller becomes the one probe (``half_open``, for at most ``probe_ttl_s``) -> a success closes it, a
failure opens it again for another ``cooldown_s``. Times are epoch seconds (UTC).
"""

from __future__ import annotations

from typing import Any

from app.store import Store, Transaction
from app.store import collections as col
from kernel.clock import Clock

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    """See the module docstring. ``threshold`` >= 1 failures, ``cooldown_s`` and ``probe_ttl_s`` seconds."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        threshold: int = 5,
        cooldown_s: float = 30.0,
        probe_ttl_s: float = 60.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.threshold = max(1, threshold)
        self.cooldown_s = cooldown_s
        self.probe_ttl_s = probe_ttl_s

    async def state(self, tenant_id: str, connection_id: str) -> dict[str, Any]:
        """The stored state: ``{"state", "failures", "open_until", "probe_until", "opened"}``."""
        return await self.store.get(tenant_id, col.CRM_BREAKERS, connection_id) or {
            "state": "closed",
            "failures": 0,
        }

    async def admit(self, tenant_id: str, connection_id: str) -> float | None:
        """``None`` when a call may go (closed, or this caller is the half-open probe), else the
        seconds to wait before asking again."""
        now = self.clock.now()
        current = await self.store.get(tenant_id, col.CRM_BREAKERS, connection_id)
        if current is None or current.get("state") == "closed":
            return None  # the common case needs no transaction

        async def fn(tx: Transaction) -> float | None:
            doc = await tx.get(col.CRM_BREAKERS, connection_id)
            if doc is None or doc.get("state") == "closed":
                return None
            if doc.get("state") == "open":
                until = float(doc.get("open_until") or 0)
                if now < until:
                    return until - now
            elif now < float(doc.get("probe_until") or 0):  # half_open: a probe is out
                return float(doc["probe_until"]) - now
            tx.set(
                col.CRM_BREAKERS,
                connection_id,
                {"state": "half_open", "probe_until": now + self.probe_ttl_s},
                merge=True,
            )
            return None

        return await self.store.run_transaction(tenant_id, fn)

    async def success(self, tenant_id: str, connection_id: str) -> None:
        """A call succeeded: closed, failures reset (no write when already so)."""
        current = await self.store.get(tenant_id, col.CRM_BREAKERS, connection_id)
        if current is None or (current.get("state") == "closed" and not current.get("failures")):
            return

        async def fn(tx: Transaction) -> None:
            tx.set(
                col.CRM_BREAKERS,
                connection_id,
                {"state": "closed", "failures": 0, "closed_at": self.clock.now()},
                merge=True,
            )

        await self.store.run_transaction(tenant_id, fn)

    async def failure(self, tenant_id: str, connection_id: str) -> bool:
        """A call failed in a way that says the CRM is unwell (5xx, 429, network); returns whether
        the breaker is now open."""
        now = self.clock.now()

        async def fn(tx: Transaction) -> bool:
            doc = await tx.get(col.CRM_BREAKERS, connection_id) or {"state": "closed", "failures": 0}
            failures = int(doc.get("failures") or 0) + 1
            opens = doc.get("state") == "half_open" or failures >= self.threshold
            update: dict[str, Any] = {"failures": failures, "last_failure_at": now}
            if opens:
                update.update(
                    state="open", open_until=now + self.cooldown_s, opened=int(doc.get("opened") or 0) + 1
                )
            tx.set(col.CRM_BREAKERS, connection_id, {**doc, **update})
            return opens

        return await self.store.run_transaction(tenant_id, fn)
