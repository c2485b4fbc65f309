"""What keeps the dashboard's pages fast with a large tenant (10,000 leads, 100,000 messages).

- :data:`RECENT`: a range filter (``created_at > 0``) that says the ordered field is present.
  SQLite's partial indexes are now conditioned on presence, the term its store adds to every
  ordered query, so they serve "newest first" without it; it stays harmless and keeps the shape
  Firestore serves from the same composite index.
- Lists page by cursor (``Store.count``, ``start_after``): the lead list counts its matches and
  reads one page; the score-filtered inbox reads further back from where it stopped and its leads
  in one ``get_many``.
- :class:`StepsReached`: the analytics funnel's "steps a conversation reached" (read from its
  outbound messages, one query per conversation) kept per conversation *version*: a conversation's
  every write bumps ``version`` (and ``message_count``/``updated_at``), so a cached answer for the
  same key is exact, never stale. Bounded (LRU, :data:`STEPS_CACHE_SIZE` conversations), per
  process; a cold process recomputes, a warm one reads only the conversations that changed.
- :class:`Reports`: a playbook's whole analytics report, served again while :func:`freshness` (the
  newest ``updated_at`` among its conversations and who was written at that instant) has not moved;
  two indexed one-document queries instead of 2,000 conversations. Rates and counts stay exact:
  any write of a conversation of the playbook moves the token. The dashboard fills both caches
  in the background at start (:func:`app.dashboard.api_routes.warm_analytics`), so that the first
  view after a restart is a warm one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from app.store import Filter, Order, Store, where
from app.store.collections import CONVERSATIONS

__all__ = [
    "RECENT",
    "REPORT_TTL_S",
    "STEPS_CACHE_SIZE",
    "TIE_LIMIT",
    "Reports",
    "StepsReached",
    "freshness",
    "reports",
    "steps_reached",
]

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


#: Most conversations sharing the newest ``updated_at`` that a freshness token lists (more: no caching).
TIE_LIMIT = 50
#: A cached report is recomputed after this many seconds even when nothing seems to have changed
#: (a backstop for deletions, which leave no newer ``updated_at``).
REPORT_TTL_S = 300.0


async def freshness(store: Store, tenant_id: str, playbook_id: str) -> tuple[Any, ...] | None:
    """What changes whenever any conversation of the playbook is written: the newest ``updated_at``
    and the ``(id, version, message_count, status)`` of every conversation updated at that instant
    (two indexed queries, at most :data:`TIE_LIMIT` + 2 documents). Every write of a conversation
    sets ``updated_at`` to the clock's now (never lower than before), so any write changes this.
    ``None`` when too many conversations share the instant (then nothing is cached)."""
    newest = await store.query(
        tenant_id,
        CONVERSATIONS,
        filters=[where("playbook_id", "==", playbook_id), where("updated_at", ">", 0)],
        order_by=[Order("updated_at", descending=True)],
        limit=1,
    )
    if not newest:
        return ("empty",)
    top = newest[0].data.get("updated_at")
    tied = await store.query(
        tenant_id,
        CONVERSATIONS,
        filters=[where("playbook_id", "==", playbook_id), where("updated_at", ">=", top)],
        order_by=[Order("updated_at", descending=True)],
        limit=TIE_LIMIT + 1,
    )
    if len(tied) > TIE_LIMIT:
        return None
    return (
        top,
        tuple(
            sorted(
                (d.id, d.data.get("version"), d.data.get("message_count"), d.data.get("status")) for d in tied
            )
        ),
    )


class Reports:
    """Per ``(tenant, playbook, version)``: the last analytics report and the freshness token it
    was computed at; served again only while the token is unchanged and younger than
    :data:`REPORT_TTL_S`. Per process, bounded to :data:`STEPS_CACHE_SIZE` entries."""

    def __init__(self) -> None:
        self._data: OrderedDict[tuple[str, str, int], tuple[tuple[Any, ...], float, dict[str, Any]]] = (
            OrderedDict()
        )

    def get(
        self, tenant_id: str, playbook_id: str, version: int, token: tuple[Any, ...] | None, now: float
    ) -> dict[str, Any] | None:
        """The cached report, or ``None`` (no token, another token, or too old)."""
        found = self._data.get((tenant_id, playbook_id, version))
        if token is None or found is None or found[0] != token or now - found[1] > REPORT_TTL_S:
            return None
        return found[2]

    def put(
        self,
        tenant_id: str,
        playbook_id: str,
        version: int,
        token: tuple[Any, ...] | None,
        now: float,
        report: dict[str, Any],
    ) -> None:
        """Keep ``report`` for ``token`` (nothing when ``token`` is ``None``)."""
        if token is None:
            return
        self._data[(tenant_id, playbook_id, version)] = (token, now, report)
        if len(self._data) > STEPS_CACHE_SIZE:
            self._data.popitem(last=False)


#: The process's analytics reports.
reports = Reports()
