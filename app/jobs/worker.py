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

__all__ = ["Handler", "Worker"]

log = get_logger("leadwarm.worker")

Handler = Callable[[Job], Awaitable[None]]


class Worker:
    """Runs jobs with at most ``concurrency`` at a time; ``poll_interval_s`` is the longest idle
    sleep (seconds) between looks at the store.

    ``prefetch`` (default ``4 * concurrency``) is how many due jobs one lease may take: those
    that find no free slot wait in this process, in ``due_at`` order, and start as slots free,
    so a thousand timers falling due at once cost a few dozen lease queries and transactions,
    not one per slot freed. They are held for far less than the lease (``JobQueue.lease_s``);
    the ones still waiting when the worker stops are released (:meth:`JobQueue.release`).
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
    ) -> None:
        self.jobs = jobs
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.on_dead: dict[str, Handler] = dict(on_dead or {})
        self.concurrency = concurrency
        self.poll_interval_s = poll_interval_s
        self.prefetch = max(concurrency, prefetch if prefetch is not None else 4 * concurrency)
        self._slots = asyncio.Semaphore(concurrency)
        self._running: set[asyncio.Task[None]] = set()
        self._ready: deque[Job] = deque()
        self._freed = asyncio.Event()
        """Set when a running job ends (a slot is free)."""
        """Jobs this process leased that wait for a free slot, oldest ``due_at`` first."""

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
        """Start leased jobs in free slots, leasing more (up to ``prefetch``) when none wait;
        returns how many jobs were started."""
        free = self.concurrency - len(self._running)
        if free <= 0:
            self._freed.clear()  # no callback runs between this and the wait: none is missed
            await self._freed.wait()
            return 1
        if not self._ready:
            self._ready.extend(await self.jobs.lease_due(limit=self.prefetch))
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

    async def _run_job(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        async with self._slots:
            try:
                if handler is None:
                    raise LookupError(f"no handler for job kind {job.kind!r}")
                await handler(job)
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
