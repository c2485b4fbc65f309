"""The worker loop: lease due jobs, run their handler, complete or retry them.

Any number of processes may run a worker against one store: jobs are leased through store
transactions (:mod:`app.jobs.queue`), a tenant's due jobs in one transaction. When nothing is due
the worker sleeps until the next job's ``due_at`` (woken early by an in-process enqueue), at most
``poll_interval_s`` so that it sees what other processes enqueue. Handlers are coroutines
``handler(job) -> None`` that raise :class:`app.jobs.queue.RetryLater` to run again later, or any
exception to fail (retried with backoff, then the dead letter, where ``on_dead[kind]`` is called).
A handler that completed its job in its own transaction (``job.completed``) is not completed again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from app.core.logs import get_logger
from app.jobs.queue import Job, JobQueue, RetryLater

__all__ = ["HOLD_FRACTION", "MAX_PREFETCH", "Handler", "Worker"]

log = get_logger("leadwarm.worker")

Handler = Callable[[Job], Awaitable[None]]

#: Most jobs one adaptive lease takes (four of the queue's lease transactions of 64).
MAX_PREFETCH = 256
#: Share of a lease (``JobQueue.lease_s``) that a prefetched job may spend waiting for a slot.
HOLD_FRACTION = 0.25
#: Weight of the newest handler run in the running mean of handler durations.
_EWMA_WEIGHT = 0.1


class Worker:
    """Runs jobs with at most ``concurrency`` at a time; ``poll_interval_s`` is the longest idle
    sleep (seconds) between looks at the store.

    ``prefetch`` is how many due jobs one lease may take: those that find no free slot wait in
    this process, in ``due_at`` order, and start as slots free, so a thousand timers falling due
    at once cost a few lease queries and transactions, not one per slot freed. The ones still
    waiting when the worker stops are released (:meth:`JobQueue.release`).

    Without ``prefetch`` the batch adapts to how long handlers run (:attr:`lease_limit`): as many
    jobs as ``concurrency`` slots finish in :data:`HOLD_FRACTION` of a lease at the running mean
    of handler durations, between ``4 * concurrency`` and ``max_prefetch`` (default
    :data:`MAX_PREFETCH`). Fast handlers (a timer's commit, well under a millisecond) take big
    batches: on SQLite every lease query sorts the whole due range (the due jobs tie on
    ``due_at``), so batches of 256 rather than 32 cut the lease queries for 1,000 timers falling
    due at once from 103 to 36 and their CPU from 100 to 38 us a timer; slow handlers (an
    LLM turn, seconds) take small ones, so a prefetched job never waits long enough for its lease
    to expire and another process to run it too. Should a batch still meet slower handlers than it
    was sized for, a job that finds less than half its lease left extends it before it starts,
    and one whose lease another process took over is not run here.
    """

    def __init__(
        self,
        jobs: JobQueue,
        handlers: dict[str, Handler] | None = None,
        *,
        on_dead: dict[str, Handler] | None = None,
        concurrency: int = 8,
        poll_interval_s: float = 0.5,
        prefetch: int | None = None,
        max_prefetch: int = MAX_PREFETCH,
    ) -> None:
        self.jobs = jobs
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.on_dead: dict[str, Handler] = dict(on_dead or {})
        self.concurrency = concurrency
        self.poll_interval_s = poll_interval_s
        self.prefetch: int | None = None if prefetch is None else max(concurrency, prefetch)
        """A fixed batch size, or ``None`` to adapt it (:attr:`lease_limit`)."""
        self.max_prefetch = max(4 * concurrency, max_prefetch)
        self.mean_run_s: float | None = None
        """Running mean (exponentially weighted) of handler durations on the queue's clock,
        seconds; ``None`` before the first run."""
        self._slots = asyncio.Semaphore(concurrency)
        self._running: set[asyncio.Task[None]] = set()
        self._ready: deque[Job] = deque()
        """Jobs this process leased that wait for a free slot, oldest ``due_at`` first."""
        self._freed = asyncio.Event()
        """Set when a running job ends (a slot is free)."""

    @property
    def lease_limit(self) -> int:
        """How many due jobs the next lease may take: ``prefetch`` when fixed, else as many as the
        slots run in :data:`HOLD_FRACTION` of a lease at :attr:`mean_run_s`, bounded by
        ``4 * concurrency`` and ``max_prefetch`` (``4 * concurrency`` before any job ran)."""
        if self.prefetch is not None:
            return self.prefetch
        floor = 4 * self.concurrency
        if self.mean_run_s is None:
            return floor
        fits = self.concurrency * self.jobs.lease_s * HOLD_FRACTION / max(self.mean_run_s, 1e-6)
        return int(min(self.max_prefetch, max(floor, fits)))

    def _record_run(self, seconds: float) -> None:
        """Fold one handler's duration (seconds) into :attr:`mean_run_s`."""
        mean = self.mean_run_s
        self.mean_run_s = seconds if mean is None else mean + _EWMA_WEIGHT * (seconds - mean)

    def register(self, kind: str, handler: Handler, *, on_dead: Handler | None = None) -> None:
        """Run ``handler`` for jobs of ``kind`` (and ``on_dead`` when one goes to the dead letter).

        Raises ``ValueError`` when ``kind`` already has a handler: two features cannot own one kind.
        """
        if kind in self.handlers:
            raise ValueError(f"job kind {kind!r} already has a handler")
        self.handlers[kind] = handler
        if on_dead is not None:
            self.on_dead[kind] = on_dead

    async def run(self, stop: asyncio.Event) -> None:
        """Loop until ``stop`` is set, then wait for the jobs in flight."""
        log.info("worker.started", owner=self.jobs.owner, concurrency=self.concurrency)
        while not stop.is_set():
            try:
                started = await self.run_once()
            except Exception:
                log.exception("worker.poll_failed")
                started = 0
            if not started:
                try:
                    await self.jobs.wait_until_due(max_wait_s=self.poll_interval_s)
                except Exception:
                    log.exception("worker.poll_failed")
                    await self.jobs.wait(self.poll_interval_s)
        # jobs handed over but not started go back to the queue with the others waiting (a
        # restart runs them at once, not after their lease expires)
        self.jobs.takes_handovers = False
        self._ready.extend(self.jobs.take_handed())
        if self._ready:
            waiting, self._ready = list(self._ready), deque()
            try:
                await self.jobs.release(waiting)
            except Exception:
                log.exception("worker.release_failed", jobs=len(waiting))
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        log.info("worker.stopped", owner=self.jobs.owner)

    async def run_once(self) -> int:
        """Start leased jobs in free slots, leasing more (up to :attr:`lease_limit`) when none wait;
        returns how many jobs were started."""
        self.jobs.takes_handovers = True
        handed = self.jobs.take_handed()  # written leased for this process by committed handlers
        if handed:
            self._ready.extend(handed)
        free = self.concurrency - len(self._running)
        if free <= 0:
            self._freed.clear()  # no callback runs between this and the wait: none is missed
            await self._freed.wait()
            return 1
        if not self._ready:
            self._ready.extend(await self.jobs.lease_due(limit=self.lease_limit))
        started = 0
        while self._ready and started < free:
            task = asyncio.create_task(self._run_job(self._ready.popleft()))
            self._running.add(task)
            task.add_done_callback(self._ended)
            started += 1
        return started

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._freed.set()

    async def drain(self, *, max_rounds: int = 1000) -> int:
        """Run until nothing is due (for tests, the simulator and the CLI); returns jobs run."""
        total = 0
        for _ in range(max_rounds):
            started = await self.run_once()
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)
            if not started and not self._running and not self._ready:
                return total
            total += started
        return total

    async def _still_held(self, job: Job) -> bool:
        """Before ``job`` starts: when less than half of its lease is left (it waited for a slot
        behind slower handlers than the batch was sized for), extend the lease (one transaction,
        :meth:`JobQueue.extend`). ``False`` when this process no longer holds it (it expired and
        another process took the job over, which runs it) or the extension failed (the lease then
        expires and any process takes the job): the job is not run here."""
        until = job.lease_until
        if until is None or until - self.jobs.clock.now() >= self.jobs.lease_s / 2:
            return True
        try:
            held = await self.jobs.extend(job)
        except Exception:
            log.exception("job.extend_failed", job=job.id, tenant=job.tenant_id)
            return False
        if not held:
            log.warning("job.lease_lost", job=job.id, tenant=job.tenant_id)
        return held

    async def _run_job(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        async with self._slots:
            if not await self._still_held(job):
                return
            try:
                if handler is None:
                    raise LookupError(f"no handler for job kind {job.kind!r}")
                started = self.jobs.clock.now()
                try:
                    await handler(job)
                finally:
                    self._record_run(max(0.0, self.jobs.clock.now() - started))
            except RetryLater as later:
                await self.jobs.retry(job, error=str(later), delay_s=later.delay_s, count=later.count)
                return
            except Exception as exc:
                log.exception("job.failed", job=job.id, tenant=job.tenant_id, attempt=job.attempts + 1)
                alive = await self.jobs.retry(job, error=f"{type(exc).__name__}: {exc}")
                if not alive:
                    log.error("job.dead", job=job.id, tenant=job.tenant_id, error=str(exc))
                    dead_handler = self.on_dead.get(job.kind)
                    if dead_handler is not None:
                        await dead_handler(job)
                return
            if not job.completed:  # the handler did not complete it in its own transaction
                await self.jobs.complete(job)
