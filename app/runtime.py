"""The composition root's object graph: one :class:`Runtime` per process.

It opens the store chosen by ``STORE``, builds the channels from the settings, wires the
services to the job kinds, and runs the worker in the background. The Litestar app, the CLI's
``chat`` and the tests all build the same graph, so they all go through the same engine, store
and queue.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

from app.channel_directory import ChannelDirectory, UnconfiguredChannel
from app.clock import SystemClock
from app.conversation import ConversationService
from app.dispatcher import Dispatcher
from app.interpreters import InterpreterDirectory
from app.jobs import JobQueue
from app.knowledge.repository import KnowledgeRepository
from app.logs import get_logger
from app.playbook_repo import PlaybookRepository
from app.settings import Settings
from app.statuses import StatusService
from app.store import Store
from app.tenants import TenantDirectory
from app.worker import Worker
from channels.base import Channel
from channels.webchat import WebChatChannel
from channels.whatsapp import WhatsAppChannel

__all__ = ["Runtime", "build_channels", "open_store"]

log = get_logger("leadwarm.runtime")


def open_store(settings: Settings) -> Store:
    """The store ``STORE`` names: ``sqlite`` (default, ``LEADWARM_DATA_DIR``) or ``firestore``."""
    if settings.store == "firestore":
        from app.store.firestore import open_firestore_store

        if not settings.firebase_project_id:
            raise ValueError("STORE=firestore needs FIREBASE_PROJECT_ID")
        if settings.firestore_emulator_host:
            os.environ.setdefault("FIRESTORE_EMULATOR_HOST", settings.firestore_emulator_host)
        return open_firestore_store(settings.firebase_project_id, settings.google_application_credentials)
    from app.store.sqlite import SQLiteStore

    return SQLiteStore(settings.sqlite_path)


def build_channels(settings: Settings) -> dict[str, Channel]:
    """Channel instances from the settings; unconfigured ones refuse with a clear reason."""
    channels: dict[str, Channel] = {"webchat": WebChatChannel()}
    if settings.whatsapp_token and settings.whatsapp_phone_id:
        channels["whatsapp"] = WhatsAppChannel(
            access_token=settings.whatsapp_token.get_secret_value(),
            phone_number_id=settings.whatsapp_phone_id,
            app_secret=settings.whatsapp_app_secret.get_secret_value()
            if settings.whatsapp_app_secret
            else "",
            api_base_url=settings.whatsapp_api_base_url,
            api_version=settings.whatsapp_api_version,
        )
    else:
        channels["whatsapp"] = UnconfiguredChannel("whatsapp", "WHATSAPP_TOKEN and WHATSAPP_PHONE_ID")
    return channels


@dataclass
class Runtime:
    """Everything a LeadWarm process runs on."""

    settings: Settings
    store: Store
    clock: Any
    jobs: JobQueue
    tenants: TenantDirectory
    playbooks: PlaybookRepository
    knowledge: KnowledgeRepository
    channels: ChannelDirectory
    conversations: ConversationService
    dispatcher: Dispatcher
    statuses: StatusService
    worker: Worker
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        store: Store | None = None,
        clock: Any = None,
        channels: dict[str, Channel] | None = None,
    ) -> Runtime:
        """Wire the graph. ``store``, ``clock`` and ``channels`` may be given (tests)."""
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
        directory = ChannelDirectory(channels if channels is not None else build_channels(settings))
        conversations = ConversationService(
            store=store,
            jobs=jobs,
            clock=clock,
            tenants=tenants,
            playbooks=playbooks,
            interpreters=InterpreterDirectory(knowledge, clock=clock),
        )
        dispatcher = Dispatcher(store=store, clock=clock, channels=directory)
        statuses = StatusService(store=store, clock=clock)
        worker = Worker(
            jobs,
            {
                "inbound": conversations.handle_inbound,
                "start": conversations.handle_start,
                "timer": conversations.handle_timer,
                "dispatch": dispatcher.handle_dispatch,
                "status": statuses.handle_status,
            },
            on_dead={"dispatch": dispatcher.on_dead},
            concurrency=settings.worker_concurrency,
            poll_interval_s=settings.worker_poll_interval,
        )
        return cls(
            settings,
            store,
            clock,
            jobs,
            tenants,
            playbooks,
            knowledge,
            directory,
            conversations,
            dispatcher,
            statuses,
            worker,
        )

    def webchat(self) -> WebChatChannel:
        """The web-chat channel (for sockets to subscribe to)."""
        channel = self.channels.get("", "webchat")
        assert isinstance(channel, WebChatChannel)
        return channel

    async def start(self) -> None:
        """Run the worker in the background."""
        self._stop.clear()
        self._task = asyncio.create_task(self.worker.run(self._stop), name="leadwarm-worker")

    async def stop(self) -> None:
        """Stop the worker (jobs in flight finish), close channels and the store."""
        self._stop.set()
        self.jobs.notify()
        if self._task is not None:
            await self._task
            self._task = None
        await self.channels.aclose()
        await self.store.close()
