"""The composition root's object graph: one :class:`Runtime` per process.

It opens the store chosen by ``STORE``, builds the channels from the settings, wires the
services to the job kinds, and runs the worker in the background. The Litestar app, the CLI's
``chat`` and the tests all build the same graph, so they all go through the same engine, store
and queue.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

from app.ai.directory import InterpreterDirectory
from app.ai.knowledge.repository import KnowledgeRepository
from app.authoring.repository import PlaybookRepository
from app.conversations.service import ConversationService
from app.core.logs import get_logger
from app.core.settings import Settings
from app.jobs.queue import JobQueue
from app.jobs.worker import Worker
from app.messaging.directory import ChannelDirectory, UnconfiguredChannel
from app.messaging.dispatcher import Dispatcher
from app.messaging.inbox import accept_message, accept_status
from app.messaging.statuses import StatusService
from app.policy.gate import OutboundGate
from app.policy.optouts import OptOutLedger
from app.store import Store
from app.tenancy.directory import TenantDirectory
from channels.base import Channel, InboundMessage
from channels.email import EmailChannel
from channels.sms import TwilioSmsChannel
from channels.webchat import WebChatChannel
from channels.whatsapp import WhatsAppChannel
from kernel.clock import SystemClock

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
    if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_phone_number:
        channels["sms"] = TwilioSmsChannel(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            from_number=settings.twilio_phone_number,
            api_base_url=settings.twilio_api_base_url,
            public_base_url=settings.public_base_url,
            default_region=settings.default_region,
        )
    else:
        channels["sms"] = UnconfiguredChannel(
            "sms", "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_PHONE_NUMBER"
        )
    if settings.email_host and settings.email_from:
        channels["email"] = EmailChannel(
            host=settings.email_host,
            port=settings.email_port,
            user=settings.email_user or "",
            password=_secret(settings.email_password),
            from_address=settings.email_from,
            starttls=settings.email_starttls,
            unsubscribe_base_url=settings.public_base_url,
            unsubscribe_secret=_secret(settings.email_unsubscribe_secret)
            or _secret(settings.encryption_key)
            or _install_secret(settings),
            unsubscribe_mailto=settings.email_unsubscribe_mailto or "",
            tenant_id=settings.default_tenant_id,
            inbound_secret=_secret(settings.email_inbound_secret),
        )
    else:
        channels["email"] = UnconfiguredChannel("email", "EMAIL_HOST and EMAIL_FROM")
    return channels


async def _tenant_budget(tenants: TenantDirectory, tenant_id: str) -> float | None:
    return (await tenants.profile(tenant_id)).llm_monthly_budget_usd


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


def _install_secret(settings: Settings) -> str:
    """A random secret kept in the data folder, so unsubscribe links survive restarts."""
    path = settings.leadwarm_data_dir / "unsubscribe.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


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
    optouts: OptOutLedger
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _imap_task: asyncio.Task[None] | None = None

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
        ledger = OptOutLedger(store, clock)
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
                budget_override=lambda tenant_id: _tenant_budget(tenants, tenant_id),
            ),
            ledger=ledger,
            burst_window_s=settings.burst_window_seconds,
        )
        gate = OutboundGate(store=store, clock=clock, tenants=tenants, ledger=ledger)
        dispatcher = Dispatcher(
            store=store, clock=clock, channels=directory, gate=gate, tenants=tenants, playbooks=playbooks
        )
        statuses = StatusService(store=store, clock=clock, ledger=ledger)
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

    def webchat(self) -> WebChatChannel:
        """The web-chat channel (for sockets to subscribe to)."""
        channel = self.channels.get("", "webchat")
        assert isinstance(channel, WebChatChannel)
        return channel

    async def accept(self, tenant_id: str, message: InboundMessage) -> bool:
        """Store an inbound message durably (see :func:`app.messaging.inbox.accept_message`), with the
        burst window from the settings; ``False`` for a duplicate."""
        return await accept_message(
            self.jobs, tenant_id, message, debounce_s=self.settings.burst_window_seconds
        )

    async def start(self) -> None:
        """Run the worker (and the IMAP poller when IMAP_HOST is set) in the background."""
        self._stop.clear()
        self._task = asyncio.create_task(self.worker.run(self._stop), name="leadwarm-worker")
        poller = self._imap_poller()
        if poller is not None:
            self._imap_task = asyncio.create_task(poller.run(self._stop), name="leadwarm-imap")

    def _imap_poller(self) -> Any:
        settings = self.settings
        channel = self.channels.get("", "email") if "email" in self.channels.names() else None
        if not settings.imap_host or not isinstance(channel, EmailChannel):
            return None
        from app.messaging.email_poller import ImapPoller

        tenant_id = settings.default_tenant_id
        return ImapPoller(
            host=settings.imap_host,
            port=settings.imap_port,
            user=settings.imap_user or settings.email_user or "",
            password=_secret(settings.imap_password) or _secret(settings.email_password),
            folder=settings.imap_folder,
            poll_s=settings.imap_poll_seconds,
            channel=channel,
            accept=lambda m: self.accept(tenant_id, m),
            accept_status=lambda s: accept_status(self.jobs, tenant_id, s),
        )

    async def stop(self) -> None:
        """Stop the worker (jobs in flight finish), close channels and the store."""
        self._stop.set()
        self.jobs.notify()
        if self._task is not None:
            await self._task
            self._task = None
        if self._imap_task is not None:
            await self._imap_task
            self._imap_task = None
        await self.conversations.interpreters.aclose()
        await self.channels.aclose()
        await self.store.close()
