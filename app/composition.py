"""The composition root's object graph: one :class:`Runtime` per process.

It opens the store chosen by ``STORE``, builds the channels from the registry, builds the services,
then lets every feature (:mod:`app.features`) register its job kinds and background tasks. The
Litestar app, the CLI's ``worker`` and ``chat``, and the tests all build the same graph, so they
all go through the same engine, store and queue.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio.to_thread
import httpx

from app.ai.directory import InterpreterDirectory
from app.ai.knowledge.repository import KnowledgeRepository
from app.ai.language import preload as preload_language_model
from app.authoring.repository import PlaybookRepository
from app.connections.services import ConnectionServices
from app.conversations.service import ConversationService
from app.core.features import Feature
from app.core.logs import get_logger
from app.core.settings import Settings
from app.jobs.backfill import backfill_job_shards
from app.jobs.queue import JobQueue
from app.jobs.worker import Worker
from app.messaging.channel_config import build_channels
from app.messaging.directory import ChannelDirectory
from app.messaging.dispatcher import Dispatcher
from app.messaging.inbox import accept_message
from app.messaging.ingest_log import IngestLog
from app.messaging.pacing import SendPacer
from app.messaging.statuses import StatusService
from app.policy.gate import OutboundGate
from app.policy.optouts import OptOutLedger
from app.store import Store
from app.tenancy.directory import TenantDirectory
from channels.base import Channel, InboundMessage
from channels.webchat import WebChatChannel
from kernel.clock import Clock, SystemClock
from kernel.egress import guarded_transport

__all__ = ["Runtime", "build_channels", "open_store"]

log = get_logger("leadwarm.runtime")


def open_store(settings: Settings) -> Store:
    """The store ``STORE`` names: ``sqlite`` (default, ``LEADWARM_DATA_DIR``) or ``firestore``.

    Raises ``ValueError`` when ``STORE=firestore`` lacks ``FIREBASE_PROJECT_ID``.
    """
    if settings.store == "firestore":
        from app.store.firestore import open_firestore_store

        if not settings.firebase_project_id:
            raise ValueError("STORE=firestore needs FIREBASE_PROJECT_ID")
        if settings.firestore_emulator_host:
            os.environ.setdefault("FIRESTORE_EMULATOR_HOST", settings.firestore_emulator_host)
        return open_firestore_store(settings.firebase_project_id, settings.google_application_credentials)
    from app.store.sqlite import SQLiteStore

    return SQLiteStore(settings.sqlite_path, durability=settings.durability)


@dataclass
class Runtime:
    """Everything a LeadWarm process runs on. ``features`` are the plugins of :mod:`app.features`,
    built over this runtime; their job kinds are registered on ``worker``."""

    settings: Settings
    store: Store
    clock: Clock
    jobs: JobQueue
    tenants: TenantDirectory
    playbooks: PlaybookRepository
    knowledge: KnowledgeRepository
    channels: ChannelDirectory
    conversations: ConversationService
    dispatcher: Dispatcher
    statuses: StatusService
    worker: Worker
    optouts: OptOutLedger
    features: list[Feature] = field(default_factory=list)
    connections: ConnectionServices | None = None
    """The credential layer (vault, OAuth, authorised clients), set by the connections feature."""
    ingest: IngestLog = field(init=False)
    """The webhooks' append-only log (group commit) and its ``ingest`` job."""
    egress: httpx.AsyncClient = field(init=False)
    """The client for URLs a tenant supplies: connections pass ``kernel.egress``'s check."""
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
        channels: dict[str, Channel] | None = None,
        features: Sequence[type[Feature]] | None = None,
    ) -> Runtime:
        """Wire the graph. ``store``, ``clock`` and ``channels`` may be given (tests); ``features``
        defaults to :data:`app.features.FEATURES`."""
        clock = clock or SystemClock()
        store = store or open_store(settings)
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        jobs = JobQueue(
            store,
            clock,
            owner=owner,
            lease_s=settings.job_lease_seconds,
            max_attempts=settings.send_max_attempts,
        )
        tenants = TenantDirectory(store, clock)
        playbooks = PlaybookRepository(store, clock)
        knowledge = KnowledgeRepository(store, clock)
        directory = ChannelDirectory(
            channels if channels is not None else build_channels(settings),
            default_tenant=settings.default_tenant_id,
        )
        ledger = OptOutLedger(store, clock)

        async def tenant_budget(tenant_id: str) -> float | None:
            return (await tenants.profile(tenant_id)).llm_monthly_budget_usd

        conversations = ConversationService(
            store=store,
            jobs=jobs,
            clock=clock,
            tenants=tenants,
            playbooks=playbooks,
            interpreters=InterpreterDirectory(
                knowledge,
                clock=clock,
                settings=settings,
                store=store,
                playbooks=playbooks,
                budget_override=tenant_budget,
            ),
            ledger=ledger,
            channels=directory,
            burst_window_s=settings.burst_window_seconds,
        )
        gate = OutboundGate(store=store, clock=clock, tenants=tenants, ledger=ledger)
        dispatcher = Dispatcher(
            store=store,
            clock=clock,
            channels=directory,
            gate=gate,
            tenants=tenants,
            playbooks=playbooks,
            jobs=jobs,
            pacer=(
                SendPacer(clock=clock, processes=settings.worker_processes) if settings.send_pacing else None
            ),
        )
        statuses = StatusService(store=store, clock=clock, ledger=ledger)
        worker = Worker(
            jobs, concurrency=settings.worker_concurrency, poll_interval_s=settings.worker_poll_interval
        )
        runtime = cls(
            settings=settings,
            store=store,
            clock=clock,
            jobs=jobs,
            tenants=tenants,
            playbooks=playbooks,
            knowledge=knowledge,
            channels=directory,
            conversations=conversations,
            dispatcher=dispatcher,
            statuses=statuses,
            worker=worker,
            optouts=ledger,
        )

        async def burst_windows(tenant_id: str) -> dict[str, float]:
            return dict((await tenants.profile(tenant_id)).burst_window_seconds)

        runtime.egress = httpx.AsyncClient(
            transport=guarded_transport(allow_private=settings.egress_allow_private),
            timeout=httpx.Timeout(10.0),
            follow_redirects=False,
            trust_env=False,
        )
        runtime.ingest = IngestLog(
            store, jobs, debounce=burst_windows, default_debounce_s=settings.burst_window_seconds
        )
        if features is None:
            from app.features import FEATURES

            features = FEATURES
        for feature_cls in features:
            feature = feature_cls(runtime)
            runtime.features.append(feature)
            for kind, job_kind in feature.job_kinds().items():
                worker.register(kind, job_kind.handler, on_dead=job_kind.on_dead)
        return runtime

    def webchat(self) -> WebChatChannel:
        """The web-chat channel (for sockets to subscribe to)."""
        channel = self.channels.get("", "webchat")
        assert isinstance(channel, WebChatChannel)
        return channel

    async def accept(self, tenant_id: str, message: InboundMessage) -> bool:
        """Store an inbound message durably (see :func:`app.messaging.inbox.accept_message`), with
        the tenant's burst window for the channel (else the settings'); ``False`` for a duplicate."""
        windows = (await self.tenants.profile(tenant_id)).burst_window_seconds
        debounce_s = windows.get(message.channel, self.settings.burst_window_seconds)
        return await accept_message(self.jobs, tenant_id, message, debounce_s=debounce_s)

    async def start(self) -> None:
        """Load the language model (off the event loop), then run the worker, the jobs' shard
        backfill (once per deployment: :mod:`app.jobs.backfill`) and every feature's background
        tasks."""
        await anyio.to_thread.run_sync(preload_language_model)
        self._stop.clear()
        self._tasks = [
            asyncio.create_task(self.worker.run(self._stop), name="leadwarm-worker"),
            asyncio.create_task(self._backfill_job_shards(), name="leadwarm-job-shards"),
        ]
        for feature in self.features:
            for task in feature.background_tasks():
                self._tasks.append(asyncio.create_task(task(self._stop), name=f"leadwarm-{feature!r}"))

    async def _backfill_job_shards(self) -> None:
        """:func:`app.jobs.backfill.backfill_job_shards`, its failure logged (the next start
        tries again), and the worker woken when it gave jobs their shard."""
        try:
            if await backfill_job_shards(self.store, self.clock):
                self.jobs.notify()
        except Exception:
            log.exception("jobs.shard_backfill_failed")

    async def stop(self) -> None:
        """Stop the worker (jobs in flight finish) and the background tasks, close channels and the
        store."""
        self._stop.set()
        self.jobs.notify()
        for task in self._tasks:
            await task
        self._tasks = []
        await self.conversations.interpreters.aclose()
        await self.channels.aclose()
        await self.egress.aclose()
        await self.store.close()
