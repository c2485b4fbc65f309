"""Usage and success counters of knowledge-base entries, counted from outcomes.

Definitions (per entry):

- ``usage_count``: how many times the entry's answer was sent to a lead (+1 per send). It is the
  entry's stored ``usage_count`` (imported history, and counts from before sharding) plus the counter
  shards ``qaUsageShards/{entry_id}:{n}`` (``n`` < :data:`USAGE_COUNT_SHARDS`, field ``n``), each use
  adding 1 to one shard at random with ``FieldValue.increment`` after the use's transaction: a popular
  entry is used by many conversations at once, and Firestore sustains about one write per second on
  one document ("Best practices", https://firebase.google.com/docs/firestore/best-practices).
  :func:`add_usage_counts` sums them into entries; a crash between the transaction and the increment
  misses one count (a statistic, not a ledger).
- ``success_rate``: ``successes / outcomes``, where ``outcomes`` counts the conversations in which
  the entry was used and that reached an outcome, and ``successes`` those among them that ended
  qualified or booked. Each conversation counts at most once per entry (a failure may later turn
  into a success, never the reverse). Conversations still open count in neither.

Counters live in ``qaStats/{entry_id}`` (``{"outcomes": float, "successes": float}``) and, per
conversation, in ``qaUsage/{conversation_id}:{entry_id}`` (``{"conversation_id", "entry_id", "uses",
"outcome": null | true | false}``); ``usage_count`` and ``success_rate`` are mirrored into the
``qaTraining`` entry (merge write; ``usage_count`` through the shards) so the retrieval index ranks by
them. When an entry has imported
history (``usage_count`` > 0 and ``success_rate`` > 0, e.g. from the seed) and no ``qaStats`` yet, the
first event seeds the counters from it as ``outcomes = usage_count`` and ``successes = success_rate *
usage_count``, so the imported rate keeps its weight instead of being overwritten by the first outcome.

Every update is one store transaction (safe under concurrent workers).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

from app.store import Store, Transaction, where
from app.store import collections as col

__all__ = [
    "COUNT_SHARDS_COLLECTION",
    "STATS_COLLECTION",
    "USAGE_COLLECTION",
    "USAGE_COUNT_SHARDS",
    "add_usage_counts",
    "record_kb_outcome",
    "record_kb_usage",
    "reset_usage_count",
]

COLLECTION = col.KNOWLEDGE
STATS_COLLECTION = col.KNOWLEDGE_STATS
USAGE_COLLECTION = col.KNOWLEDGE_USAGE
COUNT_SHARDS_COLLECTION = col.KNOWLEDGE_USAGE_SHARDS
#: Counter shards per entry for ``usage_count``.
USAGE_COUNT_SHARDS = 8


async def add_usage_counts(store: Store, tenant_id: str, entries: Iterable[dict[str, Any]]) -> None:
    """Add every entry's counter shards to its ``usage_count``, in place (one query over the shards).

    ``entries`` are entry documents (``id``, ``usage_count``); shards of deleted entries are ignored.
    """
    counts: dict[str, int] = {}
    for doc in await store.query(tenant_id, COUNT_SHARDS_COLLECTION):
        entry_id = str(doc.data.get("entry_id", ""))
        counts[entry_id] = counts.get(entry_id, 0) + int(doc.data.get("n") or 0)
    for entry in entries:
        extra = counts.get(str(entry.get("id", "")), 0)
        if extra:
            entry["usage_count"] = int(entry.get("usage_count") or 0) + extra


async def reset_usage_count(store: Store, tenant_id: str, entry_ids: Iterable[str]) -> None:
    """Drop the counter shards of ``entry_ids`` (one query, then one delete per existing shard): call it
    when an entry is saved with its whole ``usage_count``, as read through :func:`add_usage_counts`."""
    wanted = set(entry_ids)
    for doc in await store.query(tenant_id, COUNT_SHARDS_COLLECTION):
        if doc.data.get("entry_id") in wanted:
            await store.delete(tenant_id, COUNT_SHARDS_COLLECTION, doc.id)


def _seed(entry: dict[str, object]) -> dict[str, float]:
    uses = entry.get("usage_count") or 0
    rate = entry.get("success_rate") or 0.0
    if isinstance(uses, int | float) and isinstance(rate, int | float) and uses > 0 and rate > 0:
        return {"outcomes": float(uses), "successes": float(rate) * float(uses)}
    return {"outcomes": 0.0, "successes": 0.0}


def _count_outcome(
    tx: Transaction, entry_id: str, stats: Mapping[str, Any], *, success: bool, flip: bool
) -> None:
    """Add one outcome (``flip``: turn an earlier failure of the same conversation into a success)."""
    outcomes = float(stats.get("outcomes") or 0.0)
    successes = float(stats.get("successes") or 0.0)
    if flip:
        successes += 1.0
    else:
        outcomes += 1.0
        successes += 1.0 if success else 0.0
    rate = round(min(1.0, successes / outcomes), 6) if outcomes else 0.0
    tx.set(STATS_COLLECTION, entry_id, {"outcomes": outcomes, "successes": successes})
    tx.set(COLLECTION, entry_id, {"success_rate": rate}, merge=True)


async def record_kb_usage(
    store: Store,
    tenant_id: str,
    entry_id: str,
    *,
    success: bool | None = None,
    conversation_id: str | None = None,
) -> bool:
    """Count one event of entry ``entry_id``.

    ``success=None``: its answer was sent (``usage_count`` + 1); with ``conversation_id`` the use is also
    remembered for :func:`record_kb_outcome`. ``success=True/False``: a conversation where it was used
    reached an outcome (qualified/booked = True); with ``conversation_id`` this counts once per
    conversation and only if the entry was used there. Returns False when the entry does not exist
    (deleted since) or the outcome was already counted, else True.
    """

    async def fn(tx: Transaction) -> bool:
        entry = await tx.get(COLLECTION, entry_id)
        usage_id = f"{conversation_id}:{entry_id}" if conversation_id else None
        usage = await tx.get(USAGE_COLLECTION, usage_id) if usage_id else None
        stats = await tx.get(STATS_COLLECTION, entry_id)
        if entry is None:
            return False
        if success is None:
            if stats is None:  # first use since import: the imported history seeds the counters
                tx.set(STATS_COLLECTION, entry_id, _seed(entry))
            if usage_id:
                uses = int((usage or {}).get("uses") or 0) + 1
                outcome = (usage or {}).get("outcome")
                tx.set(
                    USAGE_COLLECTION,
                    usage_id,
                    {
                        "conversation_id": conversation_id,
                        "entry_id": entry_id,
                        "uses": uses,
                        "outcome": outcome,
                    },
                )
            return True
        if usage_id is None:
            _count_outcome(tx, entry_id, stats or _seed(entry), success=success, flip=False)
            return True
        if usage is None:
            return False
        previous = usage.get("outcome")
        if previous is True or (previous is False and not success):
            return False
        _count_outcome(tx, entry_id, stats or _seed(entry), success=success, flip=previous is False)
        tx.set(USAGE_COLLECTION, usage_id, {**usage, "outcome": success})
        return True

    counted = await store.run_transaction(tenant_id, fn)
    if counted and success is None:
        shard = f"{entry_id}:{random.randrange(USAGE_COUNT_SHARDS)}"
        await store.increment(
            tenant_id, COUNT_SHARDS_COLLECTION, shard, {"n": 1}, fields={"entry_id": entry_id}
        )
    return counted


async def record_kb_outcome(store: Store, tenant_id: str, conversation_id: str, *, success: bool) -> int:
    """The conversation reached an outcome: count it for every entry used in it (see the module
    docstring). ``success``: the lead is qualified or booked. Idempotent; returns how many entries
    were counted now."""
    docs = await store.query(
        tenant_id, USAGE_COLLECTION, filters=[where("conversation_id", "==", conversation_id)]
    )
    counted = 0
    for doc in sorted(docs, key=lambda d: d.id):
        entry_id = str(doc.data.get("entry_id", ""))
        if entry_id and await record_kb_usage(
            store, tenant_id, entry_id, success=success, conversation_id=conversation_id
        ):
            counted += 1
    return counted
