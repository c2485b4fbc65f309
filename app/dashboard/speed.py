"""What keeps the dashboard's pages fast with a large tenant (10,000 leads, 100,000 messages).

- :data:`RECENT`: a range filter (``created_at > 0``) that says the ordered field is present, so
  SQLite's partial composite indexes (``WHERE json_extract(...) IS NOT NULL``) serve "newest first"
  queries instead of sorting the whole collection (300 ms -> under 1 ms on 10,000 conversations).
  Firestore serves the same shape from the same single-field or composite index.
- :class:`StepsReached`: the analytics funnel's "steps a conversation reached" (read from its
  outbound messages, one query per conversation) kept per conversation *version*: a conversation's
  every write bumps ``version`` (and ``message_count``/``updated_at``), so a cached answer for the
  same key is exact, never stale. Bounded (LRU, :data:`STEPS_CACHE_SIZE` conversations), per
  process; a cold process recomputes, a warm one reads only the conversations that changed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from app.store import Filter, where

__all__ = ["RECENT", "STEPS_CACHE_SIZE", "StepsReached", "steps_reached"]

#: ``created_at > 0``: see the module docstring. Every stored record's ``created_at`` is an epoch float.
RECENT: Filter = where("created_at", ">", 0)
#: Most conversations whose reached steps one process keeps.
STEPS_CACHE_SIZE = 50_000


class StepsReached:
    """A bounded map ``(tenant, conversation id, version, message_count, updated_at) -> steps``."""

    def __init__(self, *, size: int = STEPS_CACHE_SIZE) -> None:
        self.size = size
        self._data: OrderedDict[tuple[Any, ...], frozenset[str]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(tenant_id: str, conv: dict[str, Any]) -> tuple[Any, ...]:
        """The cache key of a conversation document (changes with every write of it)."""
        return (
            tenant_id,
            conv.get("id"),
            conv.get("version"),
            conv.get("message_count"),
            conv.get("updated_at"),
            conv.get("current_step"),
        )

    async def get(
        self,
        tenant_id: str,
        conv: dict[str, Any],
        compute: Callable[[], Awaitable[set[str]]],
    ) -> set[str]:
        """The cached steps of ``conv``, else ``compute()`` (then cached)."""
        key = self.key(tenant_id, conv)
        found = self._data.get(key)
        if found is not None:
            self._data.move_to_end(key)
            self.hits += 1
            return set(found)
        self.misses += 1
        steps = await compute()
        self._data[key] = frozenset(steps)
        if len(self._data) > self.size:
            self._data.popitem(last=False)
        return steps


#: The process's cache (the dashboard's analytics reads through it).
steps_reached = StepsReached()
