"""A tenant's knowledge base (the seed's ``qaTraining`` collection) and its cached search index."""

from __future__ import annotations

from app.ai.knowledge.retrieval import KnowledgeIndex, QAEntry
from app.ai.knowledge.stats import add_usage_counts, reset_usage_count
from app.store import Store
from app.store import collections as col
from kernel.clock import Clock

__all__ = ["KnowledgeRepository"]

COLLECTION = col.KNOWLEDGE


#: Characters of a lead's question the retrieval reads: a question is short; the cost stays bounded.
MAX_QUESTION_CHARS = 1000


class KnowledgeRepository:
    """CRUD on Q&A entries and the question -> answer lookup the offline interpreter uses.

    The index is rebuilt when this process writes, and at most every ``ttl_s`` seconds otherwise
    (another instance may have written).
    """

    def __init__(self, store: Store, clock: Clock, *, ttl_s: float = 30.0) -> None:
        self.store = store
        self.clock = clock
        self.ttl_s = ttl_s
        self._indexes: dict[str, tuple[float, KnowledgeIndex]] = {}

    async def entries(self, tenant_id: str) -> list[QAEntry]:
        """Every entry of the tenant, by id, ``usage_count`` with its counter shards added."""
        docs = await self.store.query(tenant_id, COLLECTION)
        data = [dict(d.data) for d in docs]
        await add_usage_counts(self.store, tenant_id, data)
        return sorted((QAEntry.model_validate(d) for d in data), key=lambda e: e.id)

    async def save(self, tenant_id: str, entries: list[QAEntry]) -> None:
        """Create or replace entries (bulk import is a list). An entry's ``usage_count`` is its whole
        count (as :meth:`entries` reads it): its counter shards are dropped."""
        for entry in entries:
            await self.store.set(tenant_id, COLLECTION, entry.id, entry.model_dump(mode="json"))
        await reset_usage_count(self.store, tenant_id, [entry.id for entry in entries])
        self._indexes.pop(tenant_id, None)

    async def delete(self, tenant_id: str, entry_id: str) -> None:
        """Remove one entry."""
        await self.store.delete(tenant_id, COLLECTION, entry_id)
        await reset_usage_count(self.store, tenant_id, [entry_id])
        self._indexes.pop(tenant_id, None)

    async def index(self, tenant_id: str) -> KnowledgeIndex:
        """The tenant's search index (cached)."""
        now = self.clock.now()
        cached = self._indexes.get(tenant_id)
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        index = KnowledgeIndex.build(await self.entries(tenant_id))
        self._indexes[tenant_id] = (now, index)
        return index

    async def answer(self, tenant_id: str, question: str, language: str | None) -> str | None:
        """The best stored answer to ``question``, or ``None`` when nothing is close enough."""
        entry = await self.best_entry(tenant_id, question, language)
        return entry.response if entry else None

    async def best_entry(self, tenant_id: str, question: str, language: str | None) -> QAEntry | None:
        """The entry that best answers ``question`` (its first :data:`MAX_QUESTION_CHARS` characters),
        or ``None`` when nothing is close enough."""
        return (await self.index(tenant_id)).best_answer(question[:MAX_QUESTION_CHARS], language=language)
