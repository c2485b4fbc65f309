"""Durable jobs, leased through store transactions so that any process may take any job.

A job is a document ``jobs/{kind}:{key}`` under its tenant. Keys make jobs coalesce: every inbound
message from one address enqueues the same ``inbound:{address}`` job, so one worker at a time
drains that address's inbox in order. Life of a job::

    pending(due_at) --lease--> leased(lease_until) --complete--> deleted
                                   |  re-enqueued meanwhile (generation moved) -> pending again
                                   |  handler failed -> pending(due_at = now + backoff) ... -> dead
                                   '  lease expired (process died) -> leased again by anyone

``dead`` jobs stay as the dead letter, with their last error, for an operator to see.
Times are floats, seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any, Literal

from pydantic import Field

from app.core.logs import get_logger
from app.core.records import Record
from app.store import Order, Store, Transaction, where
from app.store import collections as col
from app.store.ids import compound_id
from kernel.clock import Clock

__all__ = ["Job", "JobQueue", "RetryLater", "job_doc_id"]

log = get_logger("leadwarm.jobs")

JobKind = Literal[
    "inbound", "start", "timer", "dispatch", "status", "crm_sync", "handoff", "booking", "reminder", "ingest"
]
DueRule = Literal["earliest", "latest", "exact"]
COLLECTION = col.JOBS


class RetryLater(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a handler to run the job again after ``delay_s`` seconds. With ``count=False``
    (a deliberate deferral, e.g. quiet hours) the attempt does not count towards the dead letter."""

    def __init__(self, delay_s: float, reason: str = "", *, count: bool = True) -> None:
        super().__init__(reason or f"retry in {delay_s}s")
        self.delay_s = delay_s
        self.count = count


class Job(Record):
    """A unit of background work. ``generation`` moves on every enqueue; ``leased_generation`` is
    what the current lease started from."""

    id: str
    tenant_id: str
    kind: JobKind
    key: str
    status: Literal["pending", "leased", "dead"] = "pending"
    due_at: float
    generation: int = 0
    leased_generation: int = -1
    lease_owner: str | None = None
    lease_until: float | None = None
    attempts: int = 0
    payload: dict[str, Any] = Field(default_factory=dict)
    last_error: str | None = None
    created_at: float = 0.0


def job_doc_id(kind: str, key: str) -> str:
    """Document id of the job ``(kind, key)``; ``/`` is escaped (Firestore ids cannot hold it)."""
    return compound_id(kind, key)


class JobQueue:
    """Enqueue, lease, complete and retry jobs. One instance per process.

    ``owner`` names this process in leases; ``lease_s`` is how long a lease lasts before another
    process may take the job over; ``max_attempts`` failures make a job dead.
    """

    def __init__(
        self, store: Store, clock: Clock, *, owner: str, lease_s: float = 60.0, max_attempts: int = 8
    ) -> None:
        self.store = store
        self.clock = clock
        self.owner = owner
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self._wakeup = asyncio.Event()

    # ----------------------------------------------------------------- enqueue
    @staticmethod
    async def read(tx: Transaction, kind: JobKind, key: str) -> dict[str, Any] | None:
        """Read the job inside ``tx`` (do this before the transaction's first write)."""
        return await tx.get(COLLECTION, job_doc_id(kind, key))

    def write(
        self,
        tx: Transaction,
        existing: dict[str, Any] | None,
        *,
        kind: JobKind,
        key: str,
        due_at: float,
        payload: dict[str, Any] | None = None,
        due: DueRule = "earliest",
    ) -> None:
        """Enqueue ``(kind, key)`` in ``tx``, given what :meth:`read` returned.

        ``due`` says how a pending job's ``due_at`` combines with the new one: ``earliest`` (run
        as soon as either asks), ``latest`` (debounce), ``exact`` (a timer moved). A leased job
        gets a new generation so that it runs again once its holder finishes; a dead job is
        revived.
        """
        doc_id = job_doc_id(kind, key)
        if existing is None or existing.get("status") == "dead":
            job = Job(
                id=doc_id,
                tenant_id=tx.tenant_id,
                kind=kind,
                key=key,
                due_at=due_at,
                generation=(existing or {}).get("generation", 0) + 1,
                payload=payload or {},
                created_at=self.clock.now(),
            )
            tx.set(COLLECTION, doc_id, job.to_doc())
            return
        job = Job.from_doc(existing)
        job.generation += 1
        if payload is not None:
            job.payload = payload
        if job.status == "pending":
            job.due_at = {"earliest": min(job.due_at, due_at), "latest": max(job.due_at, due_at)}.get(
                due, due_at
            )
        else:  # leased: remember when the follow-up run is due
            job.payload = {**job.payload, "_next_due_at": due_at}
        tx.set(COLLECTION, doc_id, job.to_doc())

    async def enqueue(
        self,
        tenant_id: str,
        kind: JobKind,
        key: str,
        *,
        due_at: float | None = None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        """Enqueue in a transaction of its own."""
        at = self.clock.now() if due_at is None else due_at

        async def fn(tx: Transaction) -> None:
            existing = await self.read(tx, kind, key)
            self.write(tx, existing, kind=kind, key=key, due_at=at, payload=payload)

        await self.store.run_transaction(tenant_id, fn)
        self.notify()

    async def cancel(self, tenant_id: str, kind: JobKind, key: str) -> None:
        """Remove a job that has not started (a leased one finishes its run)."""

        async def fn(tx: Transaction) -> None:
            existing = await self.read(tx, kind, key)
            if existing and existing.get("status") == "pending":
                tx.delete(COLLECTION, job_doc_id(kind, key))

        await self.store.run_transaction(tenant_id, fn)

    # ----------------------------------------------------------------- wake-ups
    def notify(self) -> None:
        """Wake this process's workers now (other processes notice on their next poll)."""
        self._wakeup.set()

    async def wait(self, timeout_s: float) -> None:
        """Sleep until :meth:`notify` or ``timeout_s`` seconds, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=timeout_s)
        self._wakeup.clear()

    # ----------------------------------------------------------------- leasing
    async def lease_due(self, *, limit: int = 16) -> list[Job]:
        """Lease up to ``limit`` due jobs (and jobs whose lease expired): the oldest are chosen, then
        tried in random order."""
        now = self.clock.now()
        candidates = await self.store.query_group(
            COLLECTION,
            filters=[where("status", "==", "pending"), where("due_at", "<=", now)],
            order_by=[Order("due_at")],
            limit=limit,
        )
        if len(candidates) < limit:
            candidates += await self.store.query_group(
                COLLECTION,
                filters=[where("status", "==", "leased"), where("lease_until", "<=", now)],
                order_by=[Order("lease_until")],
                limit=limit - len(candidates),
            )
        # Several processes see the same candidates: try them in a random order so that they
        # rarely contend for the same job (each contention costs a transaction retry).
        random.shuffle(candidates)
        leased: list[Job] = []
        for doc in candidates:
            job = await self._try_lease(doc.tenant_id, doc.id)
            if job is not None:
                leased.append(job)
        return leased

    async def _try_lease(self, tenant_id: str, doc_id: str) -> Job | None:
        async def fn(tx: Transaction) -> Job | None:
            data = await tx.get(COLLECTION, doc_id)
            if data is None:
                return None
            job = Job.from_doc(data)
            now = self.clock.now()
            free = job.status == "pending" and job.due_at <= now
            expired = job.status == "leased" and (job.lease_until or 0) <= now
            if not (free or expired):
                return None
            if expired:
                log.warning("job.lease_expired", job=job.id, tenant=tenant_id, previous_owner=job.lease_owner)
            job.status = "leased"
            job.lease_owner = self.owner
            job.lease_until = now + self.lease_s
            job.leased_generation = job.generation
            job.payload.pop("_next_due_at", None)
            tx.set(COLLECTION, doc_id, job.to_doc())
            return job

        return await self.store.run_transaction(tenant_id, fn)

    async def complete(self, job: Job) -> None:
        """Finish a leased job: delete it, or make it pending again if it was re-enqueued."""

        async def fn(tx: Transaction) -> None:
            data = await tx.get(COLLECTION, job.id)
            if data is None:
                return
            current = Job.from_doc(data)
            if current.lease_owner != self.owner or current.status != "leased":
                return  # the lease was lost to another process; it owns the job now
            if current.generation == current.leased_generation:
                tx.delete(COLLECTION, job.id)
                return
            current.status = "pending"
            current.due_at = float(current.payload.pop("_next_due_at", self.clock.now()))
            current.attempts = 0
            current.lease_owner = current.lease_until = None
            tx.set(COLLECTION, job.id, current.to_doc())

        await self.store.run_transaction(job.tenant_id, fn)

    async def retry(self, job: Job, *, error: str, delay_s: float | None = None, count: bool = True) -> bool:
        """Put a failed job back with backoff; returns ``False`` when it went to the dead letter.

        Backoff without ``delay_s``: 2^attempts seconds (capped at 10 minutes) with +-20 % jitter.
        """

        async def fn(tx: Transaction) -> bool:
            data = await tx.get(COLLECTION, job.id)
            if data is None:
                return True
            current = Job.from_doc(data)
            if current.lease_owner != self.owner:
                return True
            if count:
                current.attempts += 1
            current.last_error = error[:500]
            current.lease_owner = current.lease_until = None
            if current.attempts >= self.max_attempts:
                current.status = "dead"
                tx.set(COLLECTION, job.id, current.to_doc())
                return False
            backoff = delay_s if delay_s is not None else min(2.0**current.attempts, 600.0)
            jitter = 1.0 if delay_s is not None else random.uniform(0.8, 1.2)
            current.status = "pending"
            current.due_at = self.clock.now() + backoff * jitter
            tx.set(COLLECTION, job.id, current.to_doc())
            return True

        return await self.store.run_transaction(job.tenant_id, fn)

    async def dead_letters(self, tenant_id: str) -> list[Job]:
        """The tenant's dead jobs, for operators."""
        docs = await self.store.query(
            tenant_id, COLLECTION, filters=[where("status", "==", "dead")], order_by=[Order("due_at")]
        )
        return [Job.from_doc(d.data) for d in docs]
