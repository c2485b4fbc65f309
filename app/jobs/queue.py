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

Transactions are the cost of a job, so they are shared: :meth:`JobQueue.lease_due` leases every
due job of one tenant in ONE transaction, and a handler that ends in a transaction of its own (a
turn's commit, the dispatcher's last send) completes its job inside it (:meth:`JobQueue.read_job`,
:meth:`JobQueue.complete_in`), so the worker's separate completion is skipped. Crash safety is
unchanged: the completion commits with the work or not at all. The queue's own transactions run
``inline`` (one hand-off each to a SQLite store's writer thread; :meth:`app.store.Store.run_transaction`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, PrivateAttr

from app.core.logs import get_logger
from app.core.records import Record
from app.store import Document, Order, Store, Transaction, where
from app.store import collections as col
from app.store.ids import compound_id, shard_of
from kernel.clock import Clock

__all__ = ["JOB_SHARDS", "LEASE_BATCH", "SHARD_WINDOW", "Job", "JobQueue", "RetryLater", "job_doc_id"]

log = get_logger("leadwarm.jobs")

JobKind = Literal[
    "inbound",
    "start",
    "timer",
    "dispatch",
    "status",
    "crm_sync",
    "handoff",
    "booking",
    "reminder",
    "lead_import",
    "ingest",
]
DueRule = Literal["earliest", "latest", "exact"]
COLLECTION = col.JOBS
#: Most jobs leased in one transaction (Firestore allows 500 writes a transaction; a smaller batch
#: keeps a contended transaction cheap to retry).
LEASE_BATCH = 64
#: Jobs carry ``shard`` (a hash of their id) as the first field of the scheduler's indexes, so that
#: no index range takes every near-``now`` write (docs/capacity.md); the scheduler asks for every
#: shard, a window at a time.
JOB_SHARDS = 16
_ALL_SHARDS = list(range(JOB_SHARDS))
#: The scheduler looks for due jobs one window of shards at a time (4 windows of 4), starting at a
#: random window: a busy process finds its batch in one small query, and processes polling at the
#: same moment mostly look at different jobs, so their lease transactions rarely contend. (Google's
#: emulator runs an ``in`` filter as one scan per value: a 16-value query cost it 0.77 s of CPU at
#: 4,000 jobs, a 4-value one about a quarter; docs/capacity.md.)
SHARD_WINDOW = 4
_WINDOWS = [_ALL_SHARDS[i : i + SHARD_WINDOW] for i in range(0, JOB_SHARDS, SHARD_WINDOW)]
#: Longest time (seconds) between two looks for expired leases (at most a quarter of the lease).
EXPIRED_LOOK_S = 5.0


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
    enqueued_at: float = 0.0
    shard: int = 0
    _completed: bool = PrivateAttr(default=False)

    @classmethod
    def trusted(cls, data: dict[str, Any]) -> Job:
        """A job from a document this queue wrote itself (:meth:`to_doc`): missing fields take
        their defaults, unknown keys are dropped, ``payload`` is a copy (the job does not share it
        with ``data``). Validated after all: pydantic's compiled validator (4 us a job) is faster
        than ``model_construct`` (23 us, measured on pydantic 2.14), which was 8 % of a timer's
        CPU. Raises ``pydantic.ValidationError`` for a document that is not a job."""
        return cls.model_validate(data)

    def to_doc(self) -> dict[str, Any]:
        """The stored document, without ``lease_owner``/``lease_until`` while they are ``None``: a
        pending job then has no entry in the expired-lease index (``status, lease_until``), so
        enqueueing and completing it writes one index entry fewer. (When the job was first
        enqueued is ``enqueued_at``, not ``created_at``, so that no list index on ``created_at``
        holds jobs; documents written before carry ``created_at``.)"""
        doc = super().to_doc()
        for name in ("lease_owner", "lease_until"):
            if doc[name] is None:
                del doc[name]
        return doc

    @property
    def completed(self) -> bool:
        """``True`` once a handler completed the job inside its own committed transaction
        (:meth:`JobQueue.complete_in`); the worker then has nothing left to write. (Read from
        pydantic's documented ``__pydantic_private__`` store: ``self._completed`` goes through
        ``BaseModel.__getattr__``, 5 us a read, once a job.)"""
        private = self.__pydantic_private__
        return bool(private.get("_completed", False)) if private else False

    def mark_completed(self) -> None:
        """Record that the transaction holding :meth:`JobQueue.complete_in` committed. Call it
        after ``run_transaction`` returned, never inside the transaction function (which may be
        retried)."""
        self._completed = True


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
        self._expired_check_at = float("-inf")
        """When :meth:`lease_due` next looks for expired leases (UTC epoch seconds)."""
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop the workers sleep in (set by :meth:`wait`), for :meth:`notify` from a thread."""
        self._wake_at = float("inf")
        """When the sleeping worker plans to wake up (``inf`` while it is awake)."""
        self._handed: list[Job] = []
        """Jobs written leased by this process (:meth:`write` with ``lease``), for its worker."""
        self.takes_handovers = False
        """Set by a :class:`app.jobs.worker.Worker` of this queue once it runs: only then may a
        handler write jobs leased (:meth:`write`'s ``lease``) for it to run."""

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
        lease: bool = False,
    ) -> Job | None:
        """Enqueue ``(kind, key)`` in ``tx``, given what :meth:`read` returned.

        ``due`` says how a pending job's ``due_at`` combines with the new one: ``earliest`` (run
        as soon as either asks), ``latest`` (debounce), ``exact`` (a timer moved). A leased job
        gets a new generation so that it runs again once its holder finishes; a dead job is
        revived.

        With ``lease`` (for a job due now that this process's worker will run: a turn's dispatch),
        a job written afresh (none stored, or a dead one) is written already leased by this
        process and returned: once ``tx`` committed, hand it to the worker with :meth:`hand_over`
        (no lease transaction: the document is written once, not written then leased). A crash
        before it runs leaves it leased, and another process takes it once the lease expires, as
        any leased job. Otherwise (and without ``lease``) returns ``None``.
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
                enqueued_at=self.clock.now(),
                shard=shard_of(doc_id, JOB_SHARDS),
            )
            if lease:
                job.status = "leased"
                job.lease_owner = self.owner
                job.lease_until = self.clock.now() + self.lease_s
                job.leased_generation = job.generation
            tx.set(COLLECTION, doc_id, job.to_doc())
            return job if lease else None
        job = Job.from_doc(existing)
        job.generation += 1
        job.shard = shard_of(doc_id, JOB_SHARDS)
        if payload is not None:
            job.payload = payload
        if job.status == "pending":
            job.due_at = {"earliest": min(job.due_at, due_at), "latest": max(job.due_at, due_at)}.get(
                due, due_at
            )
        else:  # leased: remember when the follow-up run is due
            job.payload = {**job.payload, "_next_due_at": due_at}
        tx.set(COLLECTION, doc_id, job.to_doc())
        return None

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

        await self.store.run_transaction(tenant_id, fn, inline=True)
        self.notify(due_at=at)

    async def cancel(self, tenant_id: str, kind: JobKind, key: str) -> None:
        """Remove a job that has not started (a leased one finishes its run)."""

        async def fn(tx: Transaction) -> None:
            existing = await self.read(tx, kind, key)
            if existing and existing.get("status") == "pending":
                tx.delete(COLLECTION, job_doc_id(kind, key))

        await self.store.run_transaction(tenant_id, fn, inline=True)

    def hand_over(self, job: Job) -> None:
        """Give this process's worker ``job``, written leased by :meth:`write` (``lease``) in a
        transaction that has committed; it runs as soon as a slot is free (:meth:`take_handed`)."""
        self._handed.append(job)
        self.notify()

    def take_handed(self) -> list[Job]:
        """The jobs handed over since the last call (the worker's, :meth:`hand_over`)."""
        handed, self._handed = self._handed, []
        return handed

    # ----------------------------------------------------------------- wake-ups
    def notify(self, *, due_at: float | None = None) -> None:
        """Wake this process's workers: now, or (with ``due_at``, UTC epoch seconds) only if that
        job falls due before the time they planned to wake up. Other processes notice on their
        next look at the store (:meth:`wait_until`'s ``max_wait_s``).

        Safe from any thread (an inline transaction's function runs on the store's writer
        thread): from outside the event loop the wake-up is handed to the loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                loop.call_soon_threadsafe(self._notify_here, due_at)
                return
        self._notify_here(due_at)

    def _notify_here(self, due_at: float | None) -> None:
        if due_at is None or due_at < self._wake_at:
            self._wakeup.set()

    async def wait(self, timeout_s: float) -> None:
        """Sleep until :meth:`notify` or ``timeout_s`` seconds, whichever comes first."""
        self._loop = asyncio.get_running_loop()
        self._wake_at = self.clock.now() + max(0.0, timeout_s)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=max(0.0, timeout_s))
        finally:
            self._wake_at = float("inf")
        self._wakeup.clear()

    async def wait_until_due(self, *, max_wait_s: float) -> None:
        """Sleep until the earliest pending job falls due (:meth:`next_due_at`), an in-process
        enqueue of an earlier job (:meth:`notify`), or ``max_wait_s`` seconds: the bound on how
        late this process sees work that another process enqueued."""
        next_due = await self.next_due_at(within_s=max_wait_s)
        now = self.clock.now()
        delay = max_wait_s if next_due is None else min(max_wait_s, max(0.0, next_due - now))
        if delay > 0:
            await self.wait(delay)

    # ----------------------------------------------------------------- leasing
    async def lease_due(self, *, limit: int = 16) -> list[Job]:
        """Lease up to ``limit`` due jobs (and jobs whose lease expired), oldest first within a
        window of :data:`SHARD_WINDOW` shards, the windows tried from a random one until ``limit``
        are found.

        The candidates of one tenant are leased together, in one transaction per
        :data:`LEASE_BATCH` jobs (a job taken meanwhile by another process is skipped), and the
        transactions of every tenant run concurrently (one commit on SQLite), so a thousand timers
        falling due at once cost a few dozen transactions, not a thousand. Expired
        leases (their process died) are looked for at most every quarter of ``lease_s`` or
        :data:`EXPIRED_LOOK_S`, whichever is shorter.
        """
        if limit <= 0:
            return []
        now = self.clock.now()
        candidates: list[Document] = []
        first = random.randrange(len(_WINDOWS))
        for n in range(len(_WINDOWS)):
            candidates += await self.store.query_group(
                COLLECTION,
                filters=[
                    where("shard", "in", _WINDOWS[(first + n) % len(_WINDOWS)]),
                    where("status", "==", "pending"),
                    where("due_at", "<=", now),
                ],
                order_by=[Order("due_at")],
                limit=limit - len(candidates),
            )
            if len(candidates) >= limit:
                break
        if len(candidates) < limit and now >= self._expired_check_at:
            self._expired_check_at = now + min(self.lease_s / 4, EXPIRED_LOOK_S)
            candidates += await self.store.query_group(
                COLLECTION,
                filters=[
                    where("shard", "in", _ALL_SHARDS),
                    where("status", "==", "leased"),
                    where("lease_until", "<=", now),
                ],
                order_by=[Order("lease_until")],
                limit=limit - len(candidates),
            )
        by_tenant: dict[str, list[str]] = {}
        for doc in candidates:
            by_tenant.setdefault(doc.tenant_id, []).append(doc.id)
        # Several processes see the same candidates: try tenants in a random order so that they
        # rarely contend for the same jobs (each contention costs a transaction retry).
        tenants = list(by_tenant)
        random.shuffle(tenants)
        # The batches run concurrently: on SQLite they form one group (one hand-off, one commit
        # for every tenant), on Firestore their round trips overlap. A batch that fails is logged
        # and skipped (its jobs stay as they were), the others' leases are kept.
        batches = [
            (tenant_id, by_tenant[tenant_id][start : start + LEASE_BATCH])
            for tenant_id in tenants
            for start in range(0, len(by_tenant[tenant_id]), LEASE_BATCH)
        ]
        results = await asyncio.gather(
            *(self._try_lease(t, ids) for t, ids in batches), return_exceptions=True
        )
        leased: list[Job] = []
        for (tenant_id, ids), result in zip(batches, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                log.error("job.lease_failed", tenant=tenant_id, jobs=len(ids), error=repr(result))
                continue
            leased += result
        return leased

    async def _try_lease(self, tenant_id: str, doc_ids: list[str]) -> list[Job]:
        async def fn(tx: Transaction) -> list[Job]:
            docs = await tx.get_many([(COLLECTION, doc_id) for doc_id in doc_ids])  # one round trip
            now = self.clock.now()
            taken: list[Job] = []
            for doc_id, data in zip(doc_ids, docs, strict=True):
                # the stored dict is read and changed in place: a pydantic validation and dump
                # per job was a third of a lease's CPU (the document is our own, written by to_doc)
                if data is None:
                    continue
                status = data.get("status")
                free = status == "pending" and float(data.get("due_at") or 0.0) <= now
                expired = status == "leased" and float(data.get("lease_until") or 0.0) <= now
                if not (free or expired):
                    continue
                if expired:
                    log.warning(
                        "job.lease_expired",
                        job=doc_id,
                        tenant=tenant_id,
                        previous_owner=data.get("lease_owner"),
                    )
                payload = data.get("payload")
                if isinstance(payload, dict):
                    payload.pop("_next_due_at", None)
                data.update(
                    status="leased",
                    lease_owner=self.owner,
                    lease_until=now + self.lease_s,
                    leased_generation=data.get("generation", 0),
                )
                tx.set(COLLECTION, doc_id, data)
                taken.append(Job.trusted(data))
            return taken

        return await self.store.run_transaction(tenant_id, fn, inline=True)

    async def next_due_at(self, *, within_s: float) -> float | None:
        """When the earliest pending job (of any tenant) falls due, if it does within
        ``within_s`` seconds from now (else ``None``); UTC epoch seconds. One seek of the
        ``(status, due_at)`` group index, which sorts only the jobs due within the horizon (an
        unbounded "earliest pending" would sort every pending timer)."""
        horizon = self.clock.now() + within_s
        docs = await self.store.query_group(
            COLLECTION,
            filters=[
                where("shard", "in", _ALL_SHARDS),
                where("status", "==", "pending"),
                where("due_at", "<=", horizon),
            ],
            order_by=[Order("due_at")],
            limit=1,
        )
        return float(docs[0].data["due_at"]) if docs else None

    # ----------------------------------------------------------------- completion
    @staticmethod
    async def read_job(tx: Transaction, job: Job) -> dict[str, Any] | None:
        """Read ``job``'s document inside ``tx`` (before the first write), for :meth:`complete_in`."""
        return await tx.get(COLLECTION, job.id)

    def complete_in(
        self, tx: Transaction, job: Job, current: dict[str, Any] | None, *, write: bool = True
    ) -> dict[str, Any] | None:
        """Complete ``job`` inside the handler's own transaction ``tx``, given what
        :meth:`read_job` returned: delete it, or make it pending again if it was re-enqueued while
        it ran; nothing changes when this process no longer holds the lease.

        Returns the job's document as the transaction now leaves it (``None``: deleted), so a
        handler that enqueues the same ``(kind, key)`` again in ``tx`` passes it to :meth:`write`
        as ``existing`` with ``write=False`` (one write to the document, not two). After the
        transaction committed, call :meth:`Job.mark_completed` so the worker skips
        :meth:`complete`.
        """
        if current is None:
            return None
        if current.get("lease_owner") != self.owner or current.get("status") != "leased":
            return current  # the lease was lost to another process; it owns the job now
        if current.get("generation", 0) == current.get("leased_generation", -1):
            if write:
                tx.delete(COLLECTION, job.id)
            return None
        job_now = Job.from_doc(current)
        job_now.status = "pending"
        job_now.due_at = float(job_now.payload.pop("_next_due_at", self.clock.now()))
        job_now.attempts = 0
        job_now.lease_owner = job_now.lease_until = None
        doc = job_now.to_doc()
        if write:
            tx.set(COLLECTION, job.id, doc)
        return doc

    async def complete(self, job: Job) -> None:
        """Finish a leased job in a transaction of its own (see :meth:`complete_in`)."""

        async def fn(tx: Transaction) -> None:
            self.complete_in(tx, job, await self.read_job(tx, job))

        await self.store.run_transaction(job.tenant_id, fn, inline=True)
        job.mark_completed()

    async def release(self, jobs: Sequence[Job]) -> None:
        """Give back leased jobs that never started (a stopping worker's prefetched ones): each
        still leased by this process goes back to ``pending`` (attempts unchanged) with its
        ``due_at``, or the due time of an enqueue made while it was leased, so any process may
        take it. One transaction per tenant; raises what the store raises."""
        by_tenant: dict[str, list[Job]] = {}
        for job in jobs:
            by_tenant.setdefault(job.tenant_id, []).append(job)
        for tenant_id, mine in by_tenant.items():

            async def fn(tx: Transaction, mine: list[Job] = mine) -> None:
                docs = await tx.get_many([(COLLECTION, job.id) for job in mine])
                for job, data in zip(mine, docs, strict=True):
                    if data is None:
                        continue
                    current = Job.from_doc(data)
                    if current.status != "leased" or current.lease_owner != self.owner:
                        continue
                    current.status = "pending"
                    current.lease_owner = current.lease_until = None
                    # enqueued again meanwhile: that enqueue's due time wins, as in complete_in
                    current.due_at = float(current.payload.pop("_next_due_at", current.due_at))
                    tx.set(COLLECTION, job.id, current.to_doc())

            await self.store.run_transaction(tenant_id, fn, inline=True)
        self.notify()

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

        return await self.store.run_transaction(job.tenant_id, fn, inline=True)

    async def dead_letters(self, tenant_id: str) -> list[Job]:
        """The tenant's dead jobs, for operators, oldest ``due_at`` first (sorted here: ``due_at`` has
        no single-field index on Firestore, see ``firestore.indexes.json``)."""
        docs = await self.store.query(tenant_id, COLLECTION, filters=[where("status", "==", "dead")])
        return sorted((Job.from_doc(d.data) for d in docs), key=lambda job: (job.due_at, job.id))

    async def extend(self, job: Job, *, lease_s: float | None = None) -> bool:
        """Heartbeat: push the lease of ``job`` (held by this process) to ``now + lease_s`` seconds
        (default :attr:`lease_s`), so a handler that runs longer than a lease (a CRM flush waiting
        on the vendor's rate limit) is not leased again by another process meanwhile. One
        transaction; updates ``job.lease_until``. Returns ``False``, changing nothing, when this
        process no longer holds the lease (it expired and another process took the job, or the
        job is gone): the caller should stop its work soon, as the new holder runs it too."""
        until = self.clock.now() + (self.lease_s if lease_s is None else max(0.0, lease_s))

        async def fn(tx: Transaction) -> bool:
            data = await tx.get(COLLECTION, job.id)
            if data is None:
                return False
            current = Job.from_doc(data)
            if current.status != "leased" or current.lease_owner != self.owner:
                return False
            if current.lease_until is not None and current.lease_until >= until:
                return True
            current.lease_until = until
            tx.set(COLLECTION, job.id, current.to_doc())
            return True

        held: bool = await self.store.run_transaction(job.tenant_id, fn)
        if held:
            job.lease_until = max(job.lease_until or 0.0, until)
        return held
