"""One-off upgrade: give ``shard`` to jobs stored before jobs had one.

The scheduler finds due work with ``shard IN (...)`` (:meth:`app.jobs.queue.JobQueue.lease_due`),
so a job written by an older LeadWarm without the field would never be leased: its timer would
never fire. :func:`backfill_job_shards` reads every tenant's live jobs (``pending`` and
``leased``; finished jobs are deleted, dead ones are revived by a new enqueue, which sets the
field) and writes the missing ``shard`` (a merge of that one field, so a lease or completion
racing it loses nothing). A finished pass is recorded in the routing namespace
(``SYSTEM_TENANT``, ``migrations/job_shards``) and later starts skip it: a pass reads every live
job once (on Firestore, one read per job: 100,000 pending timers cost 100,000 reads, once), a page
of :data:`PAGE_SIZE` at a time, so memory stays one page however many timers are pending. Pages
are ordered by ``status`` (the equality field) then document id: on Firestore the automatic
single-field index on ``status`` serves that order (``due_at`` is exempted from single-field
indexing on jobs, and no composite index is worth its write cost for a one-off pass). Run
it once every process runs this version (a process of the older one still writes jobs without
the field).
"""

from __future__ import annotations

from app.core.logs import get_logger
from app.jobs.queue import COLLECTION, JOB_SHARDS
from app.store import SYSTEM_TENANT, Order, Store, cursor_of, where
from app.store.ids import shard_of
from kernel.clock import Clock

__all__ = ["MIGRATION_ID", "PAGE_SIZE", "backfill_job_shards"]

log = get_logger("leadwarm.jobs")

#: The marker document (``SYSTEM_TENANT``, collection ``migrations``) of a finished backfill.
MIGRATION_ID = "job_shards"
#: Jobs read per query: the pass holds one page in memory at a time.
PAGE_SIZE = 500
_BY_STATUS = [Order("status")]


async def backfill_job_shards(store: Store, clock: Clock) -> int:
    """Write ``shard`` on every live job lacking it, in every tenant; returns how many were
    written (0 at once when an earlier pass recorded that none was missing). Store errors
    propagate (the next start tries again)."""
    if await store.get(SYSTEM_TENANT, "migrations", MIGRATION_ID) is not None:
        return 0
    written = 0
    for tenant_id in await store.list_tenants():
        for status in ("pending", "leased"):
            cursor = None
            while True:
                page = await store.query(
                    tenant_id,
                    COLLECTION,
                    filters=[where("status", "==", status)],
                    order_by=_BY_STATUS,
                    limit=PAGE_SIZE,
                    start_after=cursor,
                )
                for doc in page:
                    if "shard" in doc.data:
                        continue
                    shard = shard_of(doc.id, JOB_SHARDS)
                    await store.set(tenant_id, COLLECTION, doc.id, {"shard": shard}, merge=True)
                    written += 1
                    log.info("jobs.shard_backfilled", tenant=tenant_id, job=doc.id)
                if len(page) < PAGE_SIZE:
                    break
                cursor = cursor_of(page[-1], _BY_STATUS)
    marker = {"done_at": clock.now(), "written": written}
    await store.set(SYSTEM_TENANT, "migrations", MIGRATION_ID, marker)
    return written
