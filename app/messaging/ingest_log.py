"""The webhook ingest log: append with group commit, consume into the inbox in a job.

A webhook appends what it parsed (each inbound message and delivery status) to its tenant's
append-only log (:meth:`app.store.Store.append_log`), idempotent by provider message id, and
answers 200 once the commit holding it is durable. Concurrent webhooks share ONE commit:
:class:`IngestLog` keeps the requests that arrive while a commit is in flight and writes them all
in the next one (group commit), so a busy process makes far fewer commits than requests and no
request waits for more than the commit in flight plus its own. When the store syncs its commits
apart (SQLite with ``DURABILITY=power``), a group's requests wait for the sync that follows its
commit while the next group already commits (:meth:`app.store.Store.sync_commits`): one sync
serves every group committed before it began, and the requests that gather during a sync are
answered by the next one, so the fsync's latency makes groups larger instead of requests slower.

Before it takes a group, the commit task lets the event loop turn :data:`GATHER_TURNS` times, so
the requests the loop is already handling join it. Without that wait a served process committed
about one request per group: the loop parses a request in about 0.1 ms and the writer thread
commits in less, so each commit was over before the next request reached the log, and every
webhook paid a commit and two thread wake-ups of its own (measured with ``perf stat`` on
``leadwarm serve --no-worker`` under 16 connections: 1.0 writer-thread context switch and 149 us
of CPU per webhook with no wait; 0.6 and 131 us after 1 turn, 0.36 and 126 us after 2, 0.08 and
106 us after 3, no better after 4 or 8). A turn of an idle loop costs microseconds, so a lone
webhook is not made slower in any way that shows.

The commit that appends a tenant's entries also enqueues the tenant's ``ingest:log`` job. That job
(:meth:`IngestLog.handle_job`) turns entries into inbox items, status events and their
``inbound``/``status`` jobs, and deletes them from the log, in one transaction per batch: an entry
is consumed exactly once, and a process killed at any point (before the append commits, between
append and consume, during consume) loses nothing: the webhook was not answered, or the log and
its job are durable, or the consume transaction rolls back and the job's lease runs out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import operator
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from app.core.logs import get_logger
from app.jobs.queue import Job, JobQueue, RetryLater, job_doc_id
from app.messaging.inbox import INBOX, STATUS_EVENTS, address_key, inbox_id
from app.messaging.records import InboxItem
from app.store import LogRecord, Store, StoreError, Transaction
from app.store import collections as col
from channels.base import DeliveryStatus, InboundMessage

__all__ = ["GATHER_TURNS", "INGEST_JOB_KEY", "DebounceLookup", "IngestLog", "message_record", "status_record"]

log = get_logger("leadwarm.ingest")

#: Event-loop turns the commit task waits before it takes a group (see the module docstring).
GATHER_TURNS = 3

#: Key of each tenant's one ingest job (``jobs/ingest:log``): appends coalesce into it.
INGEST_JOB_KEY = "log"

DebounceLookup = Callable[[str], Awaitable[dict[str, float]]]
"""``tenant_id -> {channel: burst window in seconds}`` (a channel absent uses the default)."""


#: Field names per dataclass and their getter (``dataclasses.fields`` walks the class on every
#: call; one ``attrgetter`` reads every field in C, a comprehension's ``getattr`` calls cost
#: about twice as much on a message's thirteen fields).
_FIELD_NAMES: dict[type, tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]] = {}


def _shallow(value: Any) -> dict[str, Any]:
    """A frozen dataclass's fields as a dict (no deep copy: its values are already JSON)."""
    found = _FIELD_NAMES.get(type(value))
    if found is None:
        names = tuple(f.name for f in dataclasses.fields(value))
        getter = operator.attrgetter(*names)
        found = _FIELD_NAMES[type(value)] = (names, getter if len(names) > 1 else lambda v: (getter(v),))
    names, values = found
    return dict(zip(names, values(value), strict=True))


def _target(record: LogRecord) -> tuple[str, str]:
    """The document a log record becomes: its inbox item or its status event."""
    if "m" in record.data:
        m = record.data["m"]
        return INBOX, inbox_id(m["channel"], m["provider_message_id"])
    s = record.data["s"]
    return STATUS_EVENTS, inbox_id(s["channel"], f"{s['provider_message_id']}:{s['status']}")


def message_record(tenant_id: str, message: InboundMessage, *, at: float) -> LogRecord:
    """The log entry of an inbound message received at ``at`` (UTC epoch seconds): keyed by its
    inbox id, and a duplicate once that inbox item exists."""
    doc_id = inbox_id(message.channel, message.provider_message_id)
    return LogRecord(tenant_id, "m:" + doc_id, at, {"m": _shallow(message)}, seen=(INBOX, doc_id))


def status_record(tenant_id: str, status: DeliveryStatus, *, at: float) -> LogRecord:
    """The log entry of a delivery status received at ``at``."""
    doc_id = inbox_id(status.channel, f"{status.provider_message_id}:{status.status}")
    return LogRecord(tenant_id, "s:" + doc_id, at, {"s": _shallow(status)}, seen=(STATUS_EVENTS, doc_id))


class IngestLog:
    """Group-committed appends and the ``ingest`` job that consumes them.

    ``default_debounce_s`` is the burst window of a channel the tenant did not configure;
    ``debounce`` gives the tenant's own (its profile). ``batch`` bounds the entries one consume
    transaction takes, ``max_rounds`` the batches one job run takes before it yields;
    ``gather_turns`` the event-loop turns a group waits for more requests before its commit
    (:data:`GATHER_TURNS`; 0: none).
    """

    def __init__(
        self,
        store: Store,
        jobs: JobQueue,
        *,
        debounce: DebounceLookup,
        default_debounce_s: float = 0.0,
        batch: int = 256,
        max_rounds: int = 32,
        gather_turns: int = GATHER_TURNS,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.debounce = debounce
        self.default_debounce_s = default_debounce_s
        self.batch = batch
        self.max_rounds = max_rounds
        self.gather_turns = gather_turns
        self._pending: list[tuple[Sequence[LogRecord], asyncio.Future[list[bool]]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._syncing: set[asyncio.Task[None]] = set()
        self.groups = 0
        """Group commits made by this process (each holds one or more requests' entries)."""

    # ----------------------------------------------------------------- append
    async def append(self, records: Sequence[LogRecord]) -> list[bool]:
        """Append ``records`` durably; for each, ``True`` if new, ``False`` for a duplicate.

        Returns once the commit holding them is done. Raises :class:`app.store.StoreError` when
        the store refused that commit (nothing of it was written).
        """
        if not records:
            return []
        future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        self._pending.append((records, future))
        if self._flusher is None or self._flusher.done():  # done: its callback has not run yet
            self._flusher = asyncio.create_task(self._flush(), name="leadwarm-ingest-commit")
            self._flusher.add_done_callback(self._flusher_done)
        return await future

    def _flusher_done(self, task: asyncio.Task[None]) -> None:
        """The commit task ended: forget it, and if it was cancelled (even before it started,
        or while it gathered a group) or raised, fail the requests still waiting with
        :class:`StoreError` (503: the provider delivers again) rather than leave them waiting for
        ever. A newer task, started meanwhile, owns the waiting requests: they are left to it."""
        if self._flusher is not task:
            return
        self._flusher = None
        if task.cancelled() or task.exception() is not None:
            pending, self._pending = self._pending, []
            for _, future in pending:
                if not future.done():
                    future.set_exception(StoreError("ingest commit cancelled"))

    async def _flush(self) -> None:
        """Commit what is pending, then what arrived during that commit, until nothing is. A
        group's requests are answered once its commit is durable (:meth:`_answer`). Each group
        first waits ``gather_turns`` turns of the event loop for the requests it is handling."""
        while self._pending:
            for _ in range(self.gather_turns):
                await asyncio.sleep(0)
            group, self._pending = self._pending, []
            flat = [r for records, _ in group for r in records]
            try:
                if self.store.group_commit_log:
                    fresh = await self.store.append_log(flat, on_new=self._enqueue, defer_sync=True)
                else:
                    fresh = await self._stage_now(flat)
            except BaseException as exc:  # cancelled too: no request may wait for ever
                failed = exc if isinstance(exc, Exception) else StoreError("ingest commit cancelled")
                for _, future in group:
                    if not future.done():
                        future.set_exception(failed)
                if not isinstance(exc, Exception):
                    raise  # the task's end fails the requests still pending (_flusher_done)
                continue
            self.groups += 1
            if not self.store.syncs_commits_apart:
                await self._answer(group, fresh)  # durable already: answered at once
                continue
            # the sync runs while the next group commits
            task = asyncio.create_task(self._answer(group, fresh), name="leadwarm-ingest-sync")
            self._syncing.add(task)
            task.add_done_callback(self._syncing.discard)

    async def _answer(
        self, group: list[tuple[Sequence[LogRecord], asyncio.Future[list[bool]]]], fresh: list[bool]
    ) -> None:
        """Once the store says the group's commit is durable, give each request its part of
        ``fresh``; a failed or cancelled sync fails them with :class:`StoreError` (503: the
        provider delivers again, and the log's idempotency absorbs the repeat)."""
        try:
            await self.store.sync_commits()
        except BaseException as exc:
            failed = exc if isinstance(exc, StoreError) else StoreError("ingest commit not synced")
            for _, future in group:
                if not future.done():
                    future.set_exception(failed)
            if not isinstance(exc, Exception):
                raise
            return
        start = 0
        for records, future in group:
            if not future.done():
                future.set_result(fresh[start : start + len(records)])
            start += len(records)
        if any(fresh):
            self.jobs.notify()

    async def _stage_now(self, records: Sequence[LogRecord]) -> list[bool]:
        """Without a cheap log (:attr:`Store.group_commit_log` false: Firestore), the group goes
        straight into the inbox: one transaction per tenant holding its inbox items, status events
        and their per-address jobs, so no tenant-wide document is written by every webhook.
        Returns, per record, ``True`` when new (a duplicate is found by its inbox document)."""
        result = [False] * len(records)
        by_tenant: dict[str, list[int]] = {}
        for i, record in enumerate(records):
            by_tenant.setdefault(record.tenant_id, []).append(i)
        for tenant_id, indexes in by_tenant.items():
            windows = await self.debounce(tenant_id)

            async def fn(
                tx: Transaction, indexes: list[int] = indexes, windows: dict[str, float] = windows
            ) -> list[int]:
                fresh: list[int] = []
                ids: set[str] = set()
                targets = [_target(records[i]) for i in indexes]
                found = await tx.get_many(targets)  # one round trip on Firestore
                for i, (_, doc_id), existing in zip(indexes, targets, found, strict=True):
                    if doc_id in ids or existing is not None:
                        continue
                    ids.add(doc_id)
                    fresh.append(i)
                await self._stage(tx, [records[i] for i in fresh], windows, checked=True)
                return fresh

            for i in await self.store.run_transaction(tenant_id, fn):
                result[i] = True
        return result

    async def _enqueue(self, tx: Transaction) -> None:
        """Make the tenant's ``ingest`` job due now, in the append's commit. A job already pending
        and due is left as it is: writing it again would change nothing the worker reads (its
        due time stays the earliest) and cost a rewrite of the job document and its indexes in
        every group commit of a burst. A leased job is written (a new generation: it runs again
        once its holder finishes), as is a missing or dead one."""
        existing = await self.jobs.read(tx, "ingest", INGEST_JOB_KEY)
        now = self.jobs.clock.now()
        if existing is not None and existing.get("status") == "pending":
            due_at = existing.get("due_at")
            if isinstance(due_at, int | float) and due_at <= now:
                return
        self.jobs.write(tx, existing, kind="ingest", key=INGEST_JOB_KEY, due_at=now)

    # ----------------------------------------------------------------- consume
    async def handle_job(self, job: Job) -> None:
        """The ``ingest`` job: consume the tenant's log into the inbox, batch by batch.

        Raises :class:`RetryLater` (not counted as a failure) when entries remain after
        ``max_rounds`` batches, so other jobs get their turn.
        """
        consumed, more = await self._consume(job.tenant_id, self.max_rounds)
        if consumed:
            log.debug("ingest.consumed", tenant=job.tenant_id, entries=consumed)
            self.jobs.notify()
        if more:
            raise RetryLater(0.0, "ingest log still holds entries", count=False)

    async def flush(self, tenant_id: str) -> int:
        """Consume the tenant's log if it holds anything (one cheap read when it does not).

        The dispatcher's job runs this before the outbound gate, so a STOP acknowledged with 200
        is in the inbox, where the gate looks for newer inbound messages, before anything is sent.
        """
        if not await self.store.has_log(tenant_id):
            return 0
        return await self.consume(tenant_id)

    def before(self, handler: Callable[[Job], Awaitable[None]]) -> Callable[[Job], Awaitable[None]]:
        """``handler`` preceded by :meth:`flush` of the job's tenant."""

        async def flushed_first(job: Job) -> None:
            if await self.flush(job.tenant_id):
                self.jobs.notify()
            await handler(job)

        return flushed_first

    async def consume(self, tenant_id: str) -> int:
        """Consume the tenant's whole log now (tests, the CLI); returns the entries consumed. Its
        ``ingest`` job, if any, then finds nothing to do."""
        total = 0
        while True:
            consumed, more = await self._consume(tenant_id, self.max_rounds)
            total += consumed
            if not more:
                return total

    async def _consume(self, tenant_id: str, rounds: int) -> tuple[int, bool]:
        """At most ``rounds`` batches; returns (entries consumed, whether entries may remain)."""
        windows = await self.debounce(tenant_id)

        async def stage(tx: Transaction, records: list[LogRecord]) -> None:
            await self._stage(tx, records, windows)

        consumed = 0
        for _ in range(rounds):
            n = await self.store.consume_log(tenant_id, stage, limit=self.batch)
            consumed += n
            if n < self.batch:
                return consumed, False
        return consumed, True

    async def _stage(
        self, tx: Transaction, records: list[LogRecord], windows: dict[str, float], *, checked: bool = False
    ) -> None:
        """Inbox items, status events and their jobs for ``records``: every read, then every write.
        ``checked``: the caller already found none of the records' documents in ``tx``."""
        items: list[InboxItem] = []
        statuses: list[tuple[str, dict[str, Any]]] = []
        for record in records:
            if "m" in record.data:
                m = record.data["m"]
                doc_id = inbox_id(m["channel"], m["provider_message_id"])
                if not checked and await tx.get(INBOX, doc_id) is not None:
                    continue
                key = address_key(m["channel"], m["sender"])
                items.append(
                    InboxItem(
                        id=doc_id,
                        channel=m["channel"],
                        address_key=key,
                        sender=m["sender"],
                        recipient=m["recipient"],
                        provider_message_id=m["provider_message_id"],
                        text=m["text"],
                        kind=m.get("kind", "text"),
                        choice_id=m.get("choice_id"),
                        contact_name=m.get("contact_name"),
                        payload=m,
                        seq=record.at,
                        received_at=record.at,
                    )
                )
            elif "s" in record.data:
                s = record.data["s"]
                doc_id = inbox_id(s["channel"], f"{s['provider_message_id']}:{s['status']}")
                if not checked and await tx.get(STATUS_EVENTS, doc_id) is not None:
                    continue
                statuses.append((doc_id, {**s, "received_at": record.at, "applied": False}))
        inbound_due: dict[str, float] = {}
        for item in items:
            due = item.received_at + windows.get(item.channel, self.default_debounce_s)
            inbound_due[item.address_key] = max(due, inbound_due.get(item.address_key, due))
        status_jobs: dict[str, dict[str, Any]] = {}
        for _, data in statuses:
            key = inbox_id(data["channel"], data["provider_message_id"])
            status_jobs[key] = {
                "channel": data["channel"],
                "provider_message_id": data["provider_message_id"],
            }
        job_refs = [(col.JOBS, job_doc_id("inbound", key)) for key in inbound_due]
        job_refs += [(col.JOBS, job_doc_id("status", key)) for key in status_jobs]
        job_docs = await tx.get_many(job_refs)  # one round trip on Firestore
        existing_inbound = dict(zip(inbound_due, job_docs[: len(inbound_due)], strict=True))
        existing_status = dict(zip(status_jobs, job_docs[len(inbound_due) :], strict=True))
        now = self.jobs.clock.now()
        for item in items:
            tx.create(INBOX, item.id, item.to_doc())
        for doc_id, data in statuses:
            tx.create(STATUS_EVENTS, doc_id, data)
        for key, due_at in inbound_due.items():
            self.jobs.write(tx, existing_inbound[key], kind="inbound", key=key, due_at=due_at, due="latest")
        for key, payload in status_jobs.items():
            self.jobs.write(tx, existing_status[key], kind="status", key=key, due_at=now, payload=payload)
