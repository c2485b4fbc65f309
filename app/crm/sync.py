"""The durable CRM sync queue, on the job queue (:mod:`app.jobs`), job kind ``crm_sync``.

One kind, three keys (the payload's ``op`` says which):

* ``t:{lead}`` (``trigger``): written by :meth:`CrmSync.on_commit` in the transaction of the turn
  that emitted a trigger event (:data:`app.crm.records.TRIGGER_EVENTS`), so a committed turn cannot
  lose its sync. Its run fills the lead's email and phone from the answers, then routes the lead to
  each CRM integration subscribed to one of the events: the review queue, the hourly/daily batch, or
  at once a ``sync`` job.
* ``s:{connection}:{lead}`` (``sync``): one per (integration, lead), so changes made while it waits
  coalesce. Its run builds the snapshot, computes its idempotency key (a hash of what the CRM would
  receive) and writes nothing when the link already holds that key; otherwise it asks the
  connection's circuit breaker, upserts through the adapter over the authorised client, and stores
  the remote ids with the key. Failures: 429/5xx/network are retried with exponential backoff and
  jitter (at least the provider's ``retry_after_s``) and count against the breaker; after
  ``max_attempts`` attempts, or at once for a failure that retrying cannot cure (401, 4xx, a bad
  configuration), the link goes to the dead letter (``status: dead``), replayed by
  :func:`replay_dead_letters`.
* ``b:{connection}`` (``batch``): the hourly or daily batch of an integration, enqueueing a ``sync``
  job for each lead waiting in ``crm_batch`` (or, for a CRM with batch endpoints, writing them in
  batches as ``flush`` does).
* ``f:{connection}:{shard}`` (``flush``): for a CRM whose adapter writes many leads per call
  (:func:`batch_size`: HubSpot 100, Salesforce 200), the trigger queues the lead as a ``crm_batch``
  entry and this job writes the shard's entries in vendor batches (:meth:`CrmSync._flush`), so a
  lead costs a fraction of a request (5 requests per 100 new HubSpot leads).

Every attempt is written to ``crm_sync_logs``. Times are epoch seconds (UTC).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.conversations.planning import TurnPlan
from app.conversations.records import Conversation, ConversationEvent, Lead
from app.core.logs import get_logger
from app.crm.breaker import CircuitBreaker
from app.crm.records import (
    LEAD_UPDATED,
    STAGE_CHANGED,
    TRIGGER_EVENTS,
    Integration,
    Link,
    ReviewItem,
    SyncLog,
    link_id,
)
from app.crm.snapshot import build_snapshot, fill_contact_fields, idempotency_key, snapshot_payload
from app.crm.webhook_client import WebhookClient
from app.jobs.queue import Job, RetryLater
from app.store import Transaction, where
from app.store import collections as col
from crm_sync.base import AuthError, CrmAdapter, IntegrationError, LeadSnapshot, ProviderError, RemoteIds
from crm_sync.client import AuthorizedClient, ConnectionClients
from crm_sync.crm import ADAPTERS
from crm_sync.models import Connection

if TYPE_CHECKING:
    from app.composition import Runtime
    from app.conversations.lookup import Located

__all__ = ["KIND", "CrmSync", "batch_requests", "batch_size", "redact", "replay_dead_letters"]

log = get_logger("leadwarm.crm")

KIND = "crm_sync"
_SECRET_WORDS = ("token", "secret", "password", "api_key", "apikey", "authorization", "signature")
_LOG_TEXT_MAX = 2000
_SYNCED_STAGES = ("qualified", "handoff", "booked")
#: Connections whose pause is remembered before the expired ones are dropped.
_PAUSES_KEPT = 1000
#: A flush whose queued leads are all claimed by another run looks again after at most this long.
_CLAIM_POLL_S = 5.0
#: A flush sleeps through a rate window's refill up to this long; beyond, its job is deferred.
_WINDOW_INLINE_S = 5.0
#: A vendor batch may start when its last request will find a place within this many seconds
#: (:meth:`CrmSync._window`); well inside a flush's claim (``claim_s`` less ``_CLAIM_MARGIN_S``).
_BATCH_SPREAD_S = 30.0
#: A flush abandons its vendor call this long before its claim on the entries ends.
_CLAIM_MARGIN_S = 10.0


def redact(value: Any) -> Any:
    """``value`` with the values of secret-looking keys (token, secret, password, api key,
    authorization, signature) replaced by ``"<redacted>"``, recursively."""
    if isinstance(value, dict):
        return {
            k: "<redacted>" if any(w in str(k).lower() for w in _SECRET_WORDS) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _new_events(before: list[ConversationEvent], after: list[ConversationEvent]) -> list[ConversationEvent]:
    if len(before) < Conversation.EVENTS_KEPT:
        return after[len(before) :]
    seen = {(e.at, e.type) for e in before}
    return [e for e in after if (e.at, e.type) not in seen]


def triggers_of(before: Located, plan: TurnPlan) -> set[str]:
    """The trigger names (:data:`TRIGGER_EVENTS`) a turn emits."""
    types = {e.type for e in _new_events(before.conversation.events, plan.conversation.events)}
    names = {name for name, kinds in TRIGGER_EVENTS.items() if types & set(kinds)}
    if "slot_filled" in types and plan.lead.stage in _SYNCED_STAGES:
        names.add(LEAD_UPDATED)
    if plan.lead.stage != before.lead.stage and not (
        before.lead.stage == "new" and plan.lead.stage == "engaged"
    ):
        names.add(STAGE_CHANGED)
    return names


def batch_requests(provider: str) -> int:
    """Requests one ``upsert_leads`` call of the provider's adapter usually makes (its module's
    ``BATCH_REQUESTS``: HubSpot 5, Salesforce 3), else 1: what the flush waits to have room for."""
    cls: Any = ADAPTERS.get(provider)
    if cls is None:
        return 1
    module = __import__(cls.__module__, fromlist=["BATCH_REQUESTS"])
    return int(getattr(module, "BATCH_REQUESTS", 1) or 1)


def batch_size(provider: str) -> int:
    """How many leads one call of the provider's adapter writes (``upsert_leads``: HubSpot's batch
    endpoints take 100 inputs, Salesforce's sObject Collections 200); 1 for an adapter that writes
    lead by lead (GoHighLevel and Pipedrive have no batch endpoints for contacts)."""
    cls: Any = ADAPTERS.get(provider)
    if cls is None or not hasattr(cls, "upsert_leads"):
        return 1
    module = __import__(cls.__module__, fromlist=["BATCH_SIZE", "COLLECTION_SIZE"])
    return int(getattr(module, "BATCH_SIZE", 0) or getattr(module, "COLLECTION_SIZE", 0) or 1)


@dataclass
class _Item:
    """One queued lead of a flush: its ``crm_batch`` entry, link and (once built) snapshot."""

    entry_id: str
    rev: str | None
    lead_id: str
    queued_at: float
    link: Link
    snapshot: LeadSnapshot | None = None
    key: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0  # failed whole-batch attempts of this entry so far

    @property
    def attempt(self) -> int:
        """The number of the attempt being made (1 for the first)."""
        return self.attempts + 1


SYNC_REQUESTED = "sync.requested"
ALL_INTEGRATIONS = "*"


def sync_targets(before: Located, plan: TurnPlan) -> set[str]:
    """The integrations the turn's ``sync`` steps named (``sync.requested`` events' ``integration``:
    a connection id or a provider), ``"*"`` for a step that named none; empty without such a step."""
    out: set[str] = set()
    for event in _new_events(before.conversation.events, plan.conversation.events):
        if event.type == SYNC_REQUESTED:
            out.add(str(event.detail.get("integration") or ALL_INTEGRATIONS))
    return out


def _next_batch_at(now: float, frequency: str) -> float:
    period = 3600.0 if frequency == "hourly" else 86400.0
    return (math.floor(now / period) + 1) * period


def _connection_options(connection: Connection) -> dict[str, Any]:
    """Adapter options the connection itself knows: the outgoing webhook's ``url`` (a setting of an
    api_key connection). GoHighLevel's location is read from the connection's account by the
    adapter itself (:func:`crm_sync.base.gohighlevel_location`)."""
    out: dict[str, Any] = {}
    if connection.provider == "webhook" and connection.settings.get("url"):
        out["url"] = connection.settings["url"]
    return out


class CrmSync:
    """The CRM sync of one process (see the module docstring).

    ``max_attempts`` attempts before the dead letter (capped by the job queue's own);
    ``backoff_base_s`` * 2^(attempt-1), at most ``backoff_max_s``, with +-20 % jitter.
    Connections whose adapter writes in batches (:func:`batch_size`) are written by
    ``flush_shards`` flush jobs per connection (one batch being prepared while another is sent),
    each running batches for at most ``flush_budget_s`` seconds before yielding its worker.
    A flush run claims the ``crm_batch`` entries it writes for ``claim_s`` seconds (a vendor call
    that takes longer is abandoned as a retryable failure), so two runs (a flush job leased again
    after its lease expired mid-batch, an hourly batch job beside a flush job) never write the same
    lead at once.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        max_attempts: int = 6,
        backoff_base_s: float = 2.0,
        backoff_max_s: float = 600.0,
        breaker: CircuitBreaker | None = None,
        flush_shards: int = 2,
        flush_budget_s: float = 20.0,
        claim_s: float = 120.0,
    ) -> None:
        self.runtime = runtime
        self.claim_s = claim_s
        self.flush_shards = max(1, flush_shards)
        self.flush_budget_s = flush_budget_s
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.breaker = breaker or CircuitBreaker(runtime.store, runtime.clock)
        self._paused_until: dict[tuple[str, str], float] = {}  # (tenant, connection) -> epoch s

    def _pause_starts(
        self, tenant_id: str, connection_id: str, wait_s: float, *, reason: str, leads: int
    ) -> bool:
        """Record that the connection's writes wait ``wait_s`` seconds (circuit open, allowance
        spent); ``True`` for the first deferral of a pause, which alone is logged (one
        ``crm.deferred`` line and one ``deferred`` sync log per connection per pause, not one per
        lead per retry). Per process."""
        now = self.runtime.clock.now()
        key = (tenant_id, connection_id)
        first = self._paused_until.get(key, 0.0) <= now
        self._paused_until[key] = max(self._paused_until.get(key, 0.0), now + wait_s)
        if len(self._paused_until) > _PAUSES_KEPT:
            self._paused_until = {k: v for k, v in self._paused_until.items() if v > now}
        if first:
            log.info(
                "crm.deferred",
                tenant=tenant_id,
                connection=connection_id,
                reason=reason[:200],
                wait_s=round(wait_s, 1),
                leads=leads,
            )
        return first

    @property
    def store(self) -> Any:
        return self.runtime.store

    # ------------------------------------------------------------------ integrations
    async def connections(self, tenant_id: str) -> list[Connection]:
        """The tenant's connections that have a CRM adapter (webhook included)."""
        services = self.runtime.connections
        if services is None:
            return []
        out: list[Connection] = []
        after: str | None = None
        while True:
            page = await services.repository.list_connections(tenant_id, after=after, limit=100)
            out += [c for c in page if c.provider in ADAPTERS]
            if len(page) < 100:
                return out
            after = page[-1].id

    async def integration(self, tenant_id: str, connection_id: str) -> Integration:
        """The stored settings, or the defaults."""
        doc = await self.store.get(tenant_id, col.CRM_INTEGRATIONS, connection_id)
        return Integration.from_doc(doc) if doc else Integration(connection_id=connection_id)

    @staticmethod
    def integration_defaults(connection_id: str, **settings: Any) -> Integration:
        """The default settings of a connection, with ``settings`` applied (validated)."""
        return Integration.model_validate({"connection_id": connection_id, **settings})

    async def save_integration(self, tenant_id: str, integration: Integration) -> Integration:
        """Store the settings (and the inbound-webhook route of its account id, when it has one)."""
        integration = integration.model_copy(update={"updated_at": self.runtime.clock.now()})
        await self.store.set(tenant_id, col.CRM_INTEGRATIONS, integration.connection_id, integration.to_doc())
        return integration

    # ------------------------------------------------------------------ trigger (in the turn's transaction)
    async def on_commit(self, tx: Transaction, before: Located, plan: TurnPlan) -> Callable[[], None] | None:
        """:class:`app.conversations.service.CommitHook`: enqueue the lead's trigger job with the
        turn when it emitted a trigger event (events of a job still waiting are kept)."""
        names = triggers_of(before, plan)
        if not names:
            return None
        jobs = self.runtime.jobs
        key = f"t:{plan.lead.id}"
        existing = await jobs.read(tx, KIND, key)  # type: ignore[arg-type]
        prior: dict[str, Any] = (
            (existing or {}).get("payload") or {} if existing and existing.get("status") != "dead" else {}
        )
        now = self.runtime.clock.now()
        payload = {
            "op": "trigger",
            "lead_id": plan.lead.id,
            "conversation_id": plan.conversation.id,
            "events": sorted(set(prior.get("events") or []) | names),
            "at": min(float(prior.get("at") or now), now),
        }
        targets = sync_targets(before, plan)
        if targets or prior.get("targets"):
            payload["targets"] = sorted(set(prior.get("targets") or []) | targets)

        def write() -> None:
            jobs.write(tx, existing, kind=KIND, key=key, due_at=now, payload=payload)  # type: ignore[arg-type]
            jobs.notify()

        return write

    # ------------------------------------------------------------------ job handler
    async def handle(self, job: Job) -> None:
        """The ``crm_sync`` job handler (dispatches on ``payload["op"]``)."""
        op = job.payload.get("op")
        if op == "trigger":
            await self._trigger(job)
        elif op == "sync":
            await self._sync(job)
        elif op == "batch":
            await self._batch(job)
        elif op == "flush":
            await self._flush(job)
        else:
            log.warning("crm.unknown_op", job=job.id, tenant=job.tenant_id, op=str(op)[:40])

    async def _load_lead(self, tenant_id: str, lead_id: str) -> Lead | None:
        doc = await self.store.get(tenant_id, col.LEADS, lead_id)
        return Lead.from_doc(doc) if doc else None

    async def _trigger(self, job: Job) -> None:
        tenant_id = job.tenant_id
        lead = await self._load_lead(tenant_id, str(job.payload.get("lead_id")))
        if lead is None:
            return
        conv = await self.runtime.conversations.latest_conversation(tenant_id, lead.id)
        await fill_contact_fields(self.store, self.runtime.playbooks, lead, conv)
        events = [str(e) for e in job.payload.get("events") or []]
        targets = {str(t) for t in job.payload.get("targets") or []}
        at = float(job.payload.get("at") or self.runtime.clock.now())
        for connection in await self.connections(tenant_id):
            integration = await self.integration(tenant_id, connection.id)
            if not integration.outbound():
                continue
            named = bool(targets & {connection.id, connection.provider})
            subscribed = set(events) & set(integration.events)
            if SYNC_REQUESTED in subscribed and targets and ALL_INTEGRATIONS not in targets and not named:
                subscribed.discard(SYNC_REQUESTED)  # the step named another integration
            if not (subscribed or named):
                continue
            await self.route(
                tenant_id,
                connection,
                integration,
                lead.id,
                events=events,
                queued_at=at,
                now=SYNC_REQUESTED in events and (named or SYNC_REQUESTED in subscribed),
            )

    async def route(
        self,
        tenant_id: str,
        connection: Connection,
        integration: Integration,
        lead_id: str,
        *,
        events: Iterable[str],
        queued_at: float,
        now: bool = False,
    ) -> str:
        """Send one lead towards one CRM as its settings say; returns ``review``, ``batch`` or
        ``queued``. ``now`` (a playbook's ``sync`` step) skips the hourly/daily batch (not the
        review queue)."""
        at = self.runtime.clock.now()
        doc_id = link_id(connection.id, lead_id)
        if integration.review:
            current = await self.store.get(tenant_id, col.CRM_REVIEWS, doc_id)
            if current is None or current.get("status") != "pending":
                item = ReviewItem(
                    id=doc_id,
                    connection_id=connection.id,
                    lead_id=lead_id,
                    provider=connection.provider,
                    events=sorted(set(events)),
                    created_at=at,
                )
                await self.store.set(tenant_id, col.CRM_REVIEWS, doc_id, item.to_doc())
            return "review"
        if integration.frequency != "realtime" and not now:
            await self.store.set(
                tenant_id,
                col.CRM_BATCH,
                doc_id,
                {
                    "connection_id": connection.id,
                    "lead_id": lead_id,
                    "events": sorted(set(events)),
                    "queued_at": queued_at,
                },
            )
            await self.runtime.jobs.enqueue(
                tenant_id,
                KIND,  # type: ignore[arg-type]
                f"b:{connection.id}",
                due_at=_next_batch_at(at, integration.frequency),
                payload={"op": "batch", "connection_id": connection.id},
            )
            return "batch"
        if batch_size(connection.provider) > 1:
            await self.enqueue_flush(tenant_id, connection.id, lead_id, events=events, queued_at=queued_at)
        else:
            await self.enqueue_sync(tenant_id, connection.id, lead_id, events=events, queued_at=queued_at)
        return "queued"

    def shard_of(self, lead_id: str) -> int:
        """The flush shard of a lead (a stable hash of its id, ``0 .. flush_shards - 1``)."""
        return zlib.crc32(lead_id.encode()) % self.flush_shards

    async def enqueue_flush(
        self,
        tenant_id: str,
        connection_id: str,
        lead_id: str,
        *,
        events: Iterable[str] = (),
        queued_at: float | None = None,
    ) -> None:
        """Queue the lead for the connection's batched writer: its entry in ``crm_batch`` and the
        shard's ``f:{connection}:{shard}`` job, in one transaction (a lead queued again before
        the flush coalesces into the same entry, with a new ``rev``)."""
        now = self.runtime.clock.now()
        shard = self.shard_of(lead_id)
        doc_id = link_id(connection_id, lead_id)
        jobs = self.runtime.jobs
        key = f"f:{connection_id}:{shard}"

        async def fn(tx: Transaction) -> None:
            existing = await jobs.read(tx, KIND, key)  # type: ignore[arg-type]
            prior = await tx.get(col.CRM_BATCH, doc_id)
            entry = {
                "connection_id": connection_id,
                "lead_id": lead_id,
                "events": sorted(set(events) | set((prior or {}).get("events") or [])),
                "queued_at": min(
                    float((prior or {}).get("queued_at") or now), now if queued_at is None else queued_at
                ),
                "shard": shard,
                "rev": uuid.uuid4().hex[:12],
            }
            for kept in ("claimed_by", "claimed_until", "attempts"):  # a run may be writing it now
                if prior and prior.get(kept) is not None:
                    entry[kept] = prior[kept]
            tx.set(col.CRM_BATCH, doc_id, entry)
            jobs.write(
                tx,
                existing,
                kind=KIND,  # type: ignore[arg-type]
                key=key,
                due_at=now,
                payload={"op": "flush", "connection_id": connection_id, "shard": shard},
            )

        await self.store.run_transaction(tenant_id, fn)
        jobs.notify()

    async def enqueue_sync(
        self,
        tenant_id: str,
        connection_id: str,
        lead_id: str,
        *,
        events: Iterable[str] = (),
        queued_at: float | None = None,
    ) -> None:
        """Enqueue the (connection, lead) sync job now (coalescing with one that waits)."""
        now = self.runtime.clock.now()
        await self.runtime.jobs.enqueue(
            tenant_id,
            KIND,  # type: ignore[arg-type]
            f"s:{connection_id}:{lead_id}",
            payload={
                "op": "sync",
                "connection_id": connection_id,
                "lead_id": lead_id,
                "events": sorted(set(events)),
                "queued_at": now if queued_at is None else queued_at,
            },
        )

    async def _batch(self, job: Job) -> None:
        connection_id = str(job.payload.get("connection_id"))
        services = self.runtime.connections
        connection = (
            await services.repository.get_connection(job.tenant_id, connection_id) if services else None
        )
        if connection is not None and batch_size(connection.provider) > 1:
            await self._flush(job)
            return
        docs = await self.store.query(
            job.tenant_id, col.CRM_BATCH, filters=[where("connection_id", "==", connection_id)], limit=1000
        )
        for doc in docs:
            await self.enqueue_sync(
                job.tenant_id,
                connection_id,
                str(doc.data["lead_id"]),
                events=doc.data.get("events") or [],
                queued_at=doc.data.get("queued_at"),
            )
            await self.store.delete(job.tenant_id, col.CRM_BATCH, doc.id)
        if len(docs) == 1000:
            raise RetryLater(0.0, "more leads in the batch", count=False)

    # ------------------------------------------------------------------ one sync
    def _delay(self, attempt: int, retry_after_s: float | None) -> float:
        backoff = min(self.backoff_base_s * 2.0 ** (attempt - 1), self.backoff_max_s) * random.uniform(
            0.8, 1.2
        )
        return max(backoff, retry_after_s or 0.0)

    async def _adapter(self, tenant_id: str, connection_id: str) -> tuple[Connection, CrmAdapter]:
        services = self.runtime.connections
        if services is None:
            raise IntegrationError("the credential layer is not configured (ENCRYPTION_KEY)")
        connection = await services.repository.get_connection(tenant_id, connection_id)
        if connection is None:
            raise IntegrationError(f"no connection {connection_id!r} in tenant {tenant_id!r}")
        if connection.status != "active":
            raise AuthError(f"{connection.provider}: connection {connection.id} is {connection.status}")
        cls: Any = ADAPTERS[connection.provider]
        if connection.provider == "webhook":
            secret = connection.secret(services.vault, "signing_secret")
            hook = WebhookClient(self.runtime.egress, url=str(connection.settings.get("url") or ""))
            return connection, cls(hook, secret=secret.reveal() if secret else "", clock=self.runtime.clock)
        # what ConnectionClients.client() does, without reading the connection a second time
        return connection, cls(AuthorizedClient(services.clients, connection))

    async def _log(self, tenant_id: str, entry: SyncLog) -> None:
        await self.store.set(tenant_id, col.CRM_SYNC_LOGS, entry.id, entry.to_doc())

    def _entry(self, job: Job, provider: str, status: str, **fields: Any) -> SyncLog:
        now = self.runtime.clock.now()
        return SyncLog(
            id=f"{int(now * 1000):015d}-{uuid.uuid4().hex[:8]}",
            connection_id=str(job.payload.get("connection_id")),
            lead_id=str(job.payload.get("lead_id")),
            provider=provider,
            status=status,
            attempt=job.attempts + 1,
            at=now,
            **fields,
        )

    async def _save_link(self, tenant_id: str, link: Link) -> None:
        await self.store.set(tenant_id, col.CRM_LINKS, link.id, link.to_doc())

    async def _sync(self, job: Job) -> None:
        tenant_id = job.tenant_id
        connection_id = str(job.payload.get("connection_id"))
        lead_id = str(job.payload.get("lead_id"))
        doc_id = link_id(connection_id, lead_id)
        link_doc = await self.store.get(tenant_id, col.CRM_LINKS, doc_id)
        link = (
            Link.from_doc(link_doc)
            if link_doc
            else Link(id=doc_id, connection_id=connection_id, lead_id=lead_id)
        )
        lead = await self._load_lead(tenant_id, lead_id)
        integration = await self.integration(tenant_id, connection_id)
        if lead is None or not integration.outbound():
            await self._log(
                tenant_id, self._entry(job, link.provider, "skipped", error="lead gone or sync disabled")
            )
            return
        attempt = job.attempts + 1
        last_attempt = attempt >= min(self.max_attempts, self.runtime.jobs.max_attempts)
        wait = await self.breaker.admit(tenant_id, connection_id)
        if wait is not None:
            if self._pause_starts(tenant_id, connection_id, wait, reason="circuit open", leads=1):
                await self._log(tenant_id, self._entry(job, link.provider, "deferred", error="circuit open"))
            raise RetryLater(wait + random.uniform(0.0, min(1.0, wait / 10)), "circuit open", count=False)
        started = time.perf_counter()
        payload: dict[str, Any] = {}
        key: str | None = None
        try:
            connection, adapter = await self._adapter(tenant_id, connection_id)
            link.provider = connection.provider
            conv = await self.runtime.conversations.latest_conversation(tenant_id, lead_id)
            options = {**_connection_options(connection), **integration.options}
            snapshot = await build_snapshot(
                store=self.store,
                playbooks=self.runtime.playbooks,
                lead=lead,
                conv=conv,
                integration=integration.model_copy(update={"options": options}),
                provider=connection.provider,
                public_base_url=self.runtime.settings.public_base_url,
                remote_ids=link.remote_ids,
            )
            key = idempotency_key(connection_id, snapshot)
            if not snapshot.email and not snapshot.phone and connection.provider != "webhook":
                # a web-chat lead qualified before giving a way to reach them: the answer that
                # brings one (``lead.updated``) syncs it
                await self._log(
                    tenant_id, self._entry(job, link.provider, "skipped", error="no email or phone yet")
                )
                return
            if link.synced_key == key and link.status == "synced":
                await self.breaker.success(tenant_id, connection_id)
                await self._log(tenant_id, self._entry(job, link.provider, "skipped", idempotency_key=key))
                return
            payload = redact(snapshot_payload(snapshot))
            ids = await adapter.upsert_lead(snapshot)
        except Exception as exc:
            duration_ms = (time.perf_counter() - started) * 1000
            retryable = isinstance(exc, ProviderError) and exc.retryable
            if isinstance(exc, ProviderError) and exc.quota:
                # the account's allowance is spent (Salesforce's daily API limit): wait for it,
                # without counting an attempt or blaming the provider's health
                wait = max(exc.retry_after_s or 0.0, self.backoff_base_s)
                error = f"{type(exc).__name__}: {exc}"[:_LOG_TEXT_MAX]
                if not self._pause_starts(tenant_id, connection_id, wait, reason=error, leads=1):
                    raise RetryLater(
                        wait * random.uniform(1.0, 1.1), "allowance spent", count=False
                    ) from None
                await self._log(
                    tenant_id,
                    self._entry(
                        job,
                        link.provider,
                        "deferred",
                        idempotency_key=key,
                        error=f"{type(exc).__name__}: {exc}"[:_LOG_TEXT_MAX],
                        response={"status": exc.status, "body": exc.body[:_LOG_TEXT_MAX]},
                        duration_ms=(time.perf_counter() - started) * 1000,
                    ),
                )
                raise RetryLater(wait * random.uniform(1.0, 1.1), "allowance spent", count=False) from None
            unwell = retryable
            if not isinstance(exc, IntegrationError):
                retryable = True  # a store conflict, a bug fixed by a deploy: try again later
            error = f"{type(exc).__name__}: {exc}"[:_LOG_TEXT_MAX]
            response = (
                {"status": exc.status, "body": exc.body[:_LOG_TEXT_MAX]}
                if isinstance(exc, ProviderError)
                else {}
            )
            if unwell:
                await self.breaker.failure(tenant_id, connection_id)
            dead = not retryable or last_attempt or isinstance(exc, AuthError)
            await self._log(
                tenant_id,
                self._entry(
                    job,
                    link.provider,
                    "dead" if dead else "retry",
                    idempotency_key=key,
                    error=error,
                    payload=payload,
                    response=response,
                    duration_ms=duration_ms,
                ),
            )
            if dead:
                link.status, link.last_error, link.attempts = "dead", error, attempt
                await self._save_link(tenant_id, link)
                log.warning(
                    "crm.dead_letter", tenant=tenant_id, connection=connection_id, lead=lead_id, error=error
                )
                return
            retry_after = exc.retry_after_s if isinstance(exc, ProviderError) else None
            raise RetryLater(self._delay(attempt, retry_after), error) from None
        duration_ms = (time.perf_counter() - started) * 1000
        now = self.runtime.clock.now()
        link.remote_ids = ids.as_dict()
        link.remote_contact = ids.contact
        link.synced_key = key
        link.status = "synced"
        link.last_error = None
        link.attempts = attempt
        link.queued_at = float(job.payload.get("queued_at") or now)
        link.synced_at = now
        link.writes += 1
        await self._save_link(tenant_id, link)
        await self.breaker.success(tenant_id, connection_id)
        await self._log(
            tenant_id,
            self._entry(
                job,
                link.provider,
                "ok",
                idempotency_key=key,
                payload=payload,
                response={**ids.as_dict(), "created": ids.created},
                duration_ms=duration_ms,
            ),
        )

    # ------------------------------------------------------------------ batched writes
    def _log_for(
        self, connection_id: str, lead_id: str, provider: str, status: str, attempt: int, **fields: Any
    ) -> SyncLog:
        now = self.runtime.clock.now()
        return SyncLog(
            id=f"{int(now * 1000):015d}-{uuid.uuid4().hex[:8]}",
            connection_id=connection_id,
            lead_id=lead_id,
            provider=provider,
            status=status,
            attempt=attempt,
            at=now,
            **fields,
        )

    async def _flush(self, job: Job) -> None:
        """Write the connection's queued leads (``crm_batch`` entries of the job's shard; every
        entry for an hourly/daily ``batch`` job) in vendor batches through ``upsert_leads``, until
        none is left or ``flush_budget_s`` has passed (then the job runs again at once).

        Per batch: the snapshots are built and a lead whose content the CRM already holds (same
        idempotency key) is skipped; one ``upsert_leads`` call; then ONE transaction stores the
        links, the sync logs and deletes the entries (an entry queued again meanwhile, a new
        ``rev``, is kept for the next batch). A lead the CRM refused alone goes to the dead letter,
        or, when retrying may cure it, to its own ``sync`` job (backoff, dead letter). A failure of
        the whole call: a spent allowance defers the job, a retryable one (429, 5xx, network)
        retries it with backoff and counts against the breaker, anything else (or the last
        attempt) dead-letters the batch's leads."""
        connection_id = str(job.payload.get("connection_id"))
        shard = job.payload.get("shard")
        filters = [where("connection_id", "==", connection_id)]
        if shard is not None:
            filters.append(where("shard", "==", int(shard)))
        deadline = time.monotonic() + self.flush_budget_s
        run_id = uuid.uuid4().hex
        async with self._heartbeat(job):
            while True:
                more = await self._flush_once(job, connection_id, filters, run_id=run_id)
                if not more:
                    return
                if time.monotonic() > deadline:
                    raise RetryLater(0.0, "more leads queued", count=False)

    @contextlib.asynccontextmanager
    async def _heartbeat(self, job: Job) -> AsyncIterator[None]:
        """While the block runs, extend ``job``'s lease every third of a lease
        (:meth:`app.jobs.queue.JobQueue.extend`), so a flush that outlives its lease (a batch held
        by the vendor's rate limit or a slow answer) is not leased again by another worker. The
        claims on the entries keep each lead written once even then; the heartbeat spares the
        second run and its ``job.lease_expired`` line. A lost lease is logged and ends the beats."""
        jobs = self.runtime.jobs
        interval = max(0.05, jobs.lease_s / 3)

        async def beat() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    held = await jobs.extend(job)
                except Exception:  # a store hiccup: try again at the next beat
                    log.warning("crm.heartbeat_failed", job=job.id, tenant=job.tenant_id)
                    continue
                if not held:
                    log.warning("crm.lease_lost", job=job.id, tenant=job.tenant_id)
                    return

        task = asyncio.create_task(beat(), name=f"crm-heartbeat-{job.id}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _window(self, clients: ConnectionClients, tenant_id: str, provider: str) -> None:
        """Wait until the connection's rate limit lets a vendor batch (:func:`batch_requests`)
        start BEFORE the batch is claimed, so the leads queued meanwhile join it: when one
        request fits now and the whole batch within ``_BATCH_SPREAD_S`` (its later requests
        take the places that free meanwhile), or else until that is so. Waiting for room for the
        whole batch at once would cap each window at ``floor(window / batch) * batch`` requests
        (9 of 10); waiting for one place only could hold a batch half-sent for as long as a long
        window (Salesforce's 24 h allowance) takes to refill. Waits of at most
        ``_WINDOW_INLINE_S`` are slept here; a longer one raises :class:`RetryLater` (not
        counted) so the worker is free meanwhile."""
        gate = clients.gate(tenant_id, clients.catalog.get(provider))
        wait = max(gate.wait_s(1), gate.wait_s(batch_requests(provider)) - _BATCH_SPREAD_S)
        if wait > _WINDOW_INLINE_S:
            raise RetryLater(wait, "rate window spent", count=False)
        if wait > 0:
            await asyncio.sleep(wait)

    async def _claim(
        self, tenant_id: str, filters: list[Any], *, size: int, run_id: str
    ) -> tuple[list[tuple[str, dict[str, Any]]], float | None]:
        """Claim up to ``size`` queued entries nobody else holds, in one transaction: ``(entries,
        None)``, or ``([], seconds until the first claim held by another run ends)`` when every
        queued entry is held, or ``([], None)`` when none is queued."""
        docs = await self.store.query(tenant_id, col.CRM_BATCH, filters=filters, limit=2 * size)
        if not docs:
            return [], None
        now = self.runtime.clock.now()

        def held(data: dict[str, Any]) -> bool:
            other = data.get("claimed_by") not in (None, run_id)
            return other and float(data.get("claimed_until") or 0) > now

        async def fn(tx: Transaction) -> list[tuple[str, dict[str, Any]]]:
            taken: list[tuple[str, dict[str, Any]]] = []
            currents = await tx.get_many([(col.CRM_BATCH, doc.id) for doc in docs])  # one round trip
            for doc, current in zip(docs, currents, strict=True):
                if len(taken) >= size:
                    break
                if current is None or held(current):
                    continue
                claimed = {**current, "claimed_by": run_id, "claimed_until": now + self.claim_s}
                tx.set(col.CRM_BATCH, doc.id, claimed)
                taken.append((doc.id, claimed))
            return taken

        taken: list[tuple[str, dict[str, Any]]] = await self.store.run_transaction(tenant_id, fn)
        if taken:
            return taken, None
        ends = [float(d.data.get("claimed_until") or 0) - now for d in docs if held(d.data)]
        return [], (max(0.0, min(ends)) if ends else None)

    async def _flush_once(self, job: Job, connection_id: str, filters: list[Any], *, run_id: str) -> bool:
        """One batch of :meth:`_flush`; returns whether a full batch was taken (more may wait).
        Raises :class:`RetryLater` (not counted) when every queued entry is claimed by another
        run."""
        tenant_id = job.tenant_id
        services = self.runtime.connections
        stored = await services.repository.get_connection(tenant_id, connection_id) if services else None
        provider = stored.provider if stored else ""
        size = batch_size(provider) if provider else 1
        if services is not None and stored is not None:
            await self._window(services.clients, tenant_id, provider)
        docs, held_s = await self._claim(tenant_id, filters, size=size, run_id=run_id)
        if not docs:
            if held_s is not None:
                # look again soon: the claim usually ends (its run commits) long before it expires
                poll_s = min(held_s + 1.0, _CLAIM_POLL_S) * random.uniform(1.0, 1.2)
                raise RetryLater(poll_s, "queued leads claimed by another run", count=False)
            return False
        max_attempts = min(self.max_attempts, self.runtime.jobs.max_attempts)
        attempt = 1 + max(int(data.get("attempts") or 0) for _, data in docs)
        items: list[_Item] = []
        # the links and the leads of the batch in one read (a hand-off per batch, not per lead)
        found = await self.store.get_many(
            tenant_id,
            [(col.CRM_LINKS, doc_id) for doc_id, _ in docs]
            + [(col.LEADS, str(data["lead_id"])) for _, data in docs],
        )
        link_docs, lead_docs = found[: len(docs)], found[len(docs) :]
        leads = {str(data["lead_id"]): lead_doc for (_, data), lead_doc in zip(docs, lead_docs, strict=True)}
        for (doc_id, data), link_doc in zip(docs, link_docs, strict=True):
            lead_id = str(data["lead_id"])
            link = (
                Link.from_doc(link_doc)
                if link_doc
                else Link(id=doc_id, connection_id=connection_id, lead_id=lead_id, provider=provider)
            )
            link.provider = link.provider or provider
            items.append(
                _Item(
                    entry_id=doc_id,
                    rev=data.get("rev"),
                    lead_id=lead_id,
                    queued_at=float(data.get("queued_at") or self.runtime.clock.now()),
                    link=link,
                    attempts=int(data.get("attempts") or 0),
                )
            )
        logs: list[SyncLog] = []
        links: list[Link] = []
        done: list[_Item] = []  # entries to delete
        integration = await self.integration(tenant_id, connection_id)
        if stored is None or not integration.outbound():
            for item in items:
                logs.append(
                    self._log_for(
                        connection_id, item.lead_id, provider, "skipped", attempt, error="sync disabled"
                    )
                )
            await self._commit_flush(tenant_id, items, links, logs, run_id=run_id)
            return len(docs) == size
        wait = await self.breaker.admit(tenant_id, connection_id)
        if wait is not None:
            first = self._pause_starts(
                tenant_id, connection_id, wait, reason="circuit open", leads=len(items)
            )
            logs = [
                self._log_for(
                    connection_id,
                    items[0].lead_id,
                    provider,
                    "deferred",
                    attempt,
                    error=f"circuit open ({len(items)} leads wait)",
                )
            ][: 1 if first else 0]
            await self._commit_flush(tenant_id, [], [], logs, run_id=run_id, release=items)
            raise RetryLater(wait + random.uniform(0.0, min(1.0, wait / 10)), "circuit open", count=False)
        started = time.perf_counter()
        try:
            connection, adapter = await self._adapter(tenant_id, connection_id)
            options = {**_connection_options(connection), **integration.options}
            with_options = integration.model_copy(update={"options": options})
            for item in items:
                lead_doc = leads.get(item.lead_id)
                lead = Lead.from_doc(lead_doc) if lead_doc else None
                if lead is None:
                    logs.append(
                        self._log_for(
                            connection_id, item.lead_id, provider, "skipped", attempt, error="lead gone"
                        )
                    )
                    done.append(item)
                    continue
                conv = await self.runtime.conversations.latest_conversation(tenant_id, lead.id)
                snapshot = await build_snapshot(
                    store=self.store,
                    playbooks=self.runtime.playbooks,
                    lead=lead,
                    conv=conv,
                    integration=with_options,
                    provider=connection.provider,
                    public_base_url=self.runtime.settings.public_base_url,
                    remote_ids=item.link.remote_ids,
                )
                key = idempotency_key(connection_id, snapshot)
                if not snapshot.email and not snapshot.phone:
                    logs.append(
                        self._log_for(
                            connection_id,
                            item.lead_id,
                            provider,
                            "skipped",
                            attempt,
                            error="no email or phone yet",
                        )
                    )
                    done.append(item)
                elif item.link.synced_key == key and item.link.status == "synced":
                    logs.append(
                        self._log_for(
                            connection_id, item.lead_id, provider, "skipped", attempt, idempotency_key=key
                        )
                    )
                    done.append(item)
                else:
                    item.snapshot, item.key = snapshot, key
                    item.payload = redact(snapshot_payload(snapshot))
            sending = [item for item in items if item.snapshot is not None]
            results: list[RemoteIds | IntegrationError] = []
            if sending:
                try:
                    # the claim must outlive the call, or another run could write these leads too
                    async with asyncio.timeout(max(1.0, self.claim_s - _CLAIM_MARGIN_S)):
                        snapshots = [item.snapshot for item in sending if item.snapshot]
                        results = await adapter.upsert_leads(snapshots)  # type: ignore[attr-defined]
                except TimeoutError:
                    raise ProviderError(
                        f"{provider}: the batch outlasted its {self.claim_s:.0f} s claim", retryable=True
                    ) from None
        except Exception as exc:
            await self._flush_failed(
                job, items, done, logs, exc, started=started, max_attempts=max_attempts, run_id=run_id
            )
            raise AssertionError("unreachable") from None  # pragma: no cover
        duration_ms = (time.perf_counter() - started) * 1000
        now = self.runtime.clock.now()
        retry_alone: list[_Item] = []
        for item, result in zip(sending, results, strict=True):
            link = item.link
            if isinstance(result, RemoteIds):
                link.remote_ids = result.as_dict()
                link.remote_contact = result.contact
                link.synced_key = item.key
                link.status = "synced"
                link.last_error = None
                link.attempts = item.attempt
                link.queued_at = item.queued_at
                link.synced_at = now
                link.writes += 1
                logs.append(
                    self._log_for(
                        connection_id,
                        item.lead_id,
                        link.provider,
                        "ok",
                        item.attempt,
                        idempotency_key=item.key,
                        payload=item.payload,
                        response={**result.as_dict(), "created": result.created},
                        duration_ms=duration_ms,
                    )
                )
                links.append(link)
                done.append(item)
                continue
            error = f"{type(result).__name__}: {result}"[:_LOG_TEXT_MAX]
            response = (
                {"status": result.status, "body": result.body[:_LOG_TEXT_MAX]}
                if isinstance(result, ProviderError)
                else {}
            )
            alone = isinstance(result, ProviderError) and result.retryable
            logs.append(
                self._log_for(
                    connection_id,
                    item.lead_id,
                    link.provider,
                    "retry" if alone else "dead",
                    item.attempt,
                    idempotency_key=item.key,
                    error=error,
                    payload=item.payload,
                    response=response,
                    duration_ms=duration_ms,
                )
            )
            if alone:
                retry_alone.append(item)
            else:
                link.status, link.last_error, link.attempts = "dead", error, item.attempt
                links.append(link)
            done.append(item)
        await self._commit_flush(tenant_id, done, links, logs, run_id=run_id, release=items)
        for item in retry_alone:
            await self.enqueue_sync(tenant_id, connection_id, item.lead_id, queued_at=item.queued_at)
        if sending:
            await self.breaker.success(tenant_id, connection_id)
        return len(docs) == size

    async def _flush_failed(
        self,
        job: Job,
        items: list[_Item],
        done: list[_Item],
        logs: list[SyncLog],
        exc: Exception,
        *,
        started: float,
        max_attempts: int,
        run_id: str,
    ) -> None:
        """A whole batch failed (see :meth:`_flush`): logs it per lead, dead-letters the leads when
        retrying cannot cure it, and always raises :class:`RetryLater` (after the backoff, or at
        once when the batch went to the dead letter and more leads may wait)."""
        tenant_id = job.tenant_id
        connection_id = str(job.payload.get("connection_id"))
        duration_ms = (time.perf_counter() - started) * 1000
        error = f"{type(exc).__name__}: {exc}"[:_LOG_TEXT_MAX]
        response = (
            {"status": exc.status, "body": exc.body[:_LOG_TEXT_MAX]} if isinstance(exc, ProviderError) else {}
        )
        pending = [item for item in items if item not in done]
        if isinstance(exc, ProviderError) and exc.quota:
            wait = max(exc.retry_after_s or 0.0, self.backoff_base_s)
            if pending and self._pause_starts(
                tenant_id, connection_id, wait, reason=error, leads=len(pending)
            ):
                logs.append(
                    self._log_for(
                        connection_id,
                        pending[0].lead_id,
                        pending[0].link.provider,
                        "deferred",
                        pending[0].attempt,
                        error=f"{error} ({len(pending)} leads wait)"[:_LOG_TEXT_MAX],
                        response=response,
                        duration_ms=duration_ms,
                    )
                )
            await self._commit_flush(tenant_id, done, [], logs, run_id=run_id, release=items)
            raise RetryLater(wait * random.uniform(1.0, 1.1), "allowance spent", count=False)
        retryable = isinstance(exc, ProviderError) and exc.retryable
        if retryable:
            await self.breaker.failure(tenant_id, connection_id)
        if not isinstance(exc, IntegrationError):
            retryable = True  # a store conflict, a bug fixed by a deploy: try again later
        links: list[Link] = []
        dead_items: list[_Item] = []
        for item in pending:
            # attempts are counted per queued entry (not per job), so a lead that joins a flush
            # after earlier batches failed starts at its first attempt
            dead = not retryable or item.attempt >= max_attempts or isinstance(exc, AuthError)
            logs.append(
                self._log_for(
                    connection_id,
                    item.lead_id,
                    item.link.provider,
                    "dead" if dead else "retry",
                    item.attempt,
                    idempotency_key=item.key,
                    error=error,
                    payload=item.payload,
                    response=response,
                    duration_ms=duration_ms,
                )
            )
            if dead:
                item.link.status, item.link.last_error, item.link.attempts = "dead", error, item.attempt
                links.append(item.link)
                dead_items.append(item)
        retrying = [item for item in pending if item not in dead_items]
        await self._commit_flush(
            tenant_id, [*done, *dead_items], links, logs, run_id=run_id, release=items, failed=retrying
        )
        if dead_items:
            log.warning(
                "crm.dead_letter",
                tenant=tenant_id,
                connection=connection_id,
                leads=len(dead_items),
                error=error,
            )
        if not retrying:
            raise RetryLater(0.0, "batch dead-lettered; more may wait", count=False)
        retry_after = exc.retry_after_s if isinstance(exc, ProviderError) else None
        attempt = max(item.attempt for item in retrying)
        raise RetryLater(self._delay(attempt, retry_after), error, count=False)

    async def _commit_flush(
        self,
        tenant_id: str,
        done: list[_Item],
        links: list[Link],
        logs: list[SyncLog],
        *,
        run_id: str,
        release: list[_Item] | None = None,
        failed: list[_Item] | None = None,
    ) -> None:
        """One transaction: the links, the logs, and the entries of ``done`` deleted unless queued
        again meanwhile (their ``rev`` moved). The entries of ``release`` that remain lose this
        run's claim; those of ``failed`` count one more failed attempt."""
        failed_ids = {item.entry_id for item in failed or ()}

        async def fn(tx: Transaction) -> None:
            touched = list({item.entry_id: item for item in [*done, *(release or ())]})
            found = await tx.get_many([(col.CRM_BATCH, entry_id) for entry_id in touched])
            current = dict(zip(touched, found, strict=True))
            deleted: set[str] = set()
            for item in done:
                doc = current[item.entry_id]
                if doc is not None and doc.get("rev") == item.rev:
                    tx.delete(col.CRM_BATCH, item.entry_id)
                    deleted.add(item.entry_id)
            for entry_id, doc in current.items():
                if doc is None or entry_id in deleted or doc.get("claimed_by") != run_id:
                    continue
                kept = {k: v for k, v in doc.items() if k not in ("claimed_by", "claimed_until")}
                if entry_id in failed_ids:
                    kept["attempts"] = int(doc.get("attempts") or 0) + 1
                tx.set(col.CRM_BATCH, entry_id, kept)
            for link in links:
                tx.set(col.CRM_LINKS, link.id, link.to_doc())
            for entry in logs:
                tx.set(col.CRM_SYNC_LOGS, entry.id, entry.to_doc())

        await self.store.run_transaction(tenant_id, fn)

    # ------------------------------------------------------------------ review queue
    async def decide(
        self, tenant_id: str, review_id: str, *, approve: bool, actor: str = "admin"
    ) -> ReviewItem | None:
        """Approve (the lead is queued for sync at once) or reject a pending review; ``None`` when
        no such pending item."""
        doc = await self.store.get(tenant_id, col.CRM_REVIEWS, review_id)
        if doc is None:
            return None
        item = ReviewItem.from_doc(doc)
        if item.status != "pending":
            return None
        item.status = "approved" if approve else "rejected"
        item.decided_at = self.runtime.clock.now()
        item.decided_by = actor
        await self.store.set(tenant_id, col.CRM_REVIEWS, item.id, item.to_doc())
        if approve:
            await self.enqueue_sync(
                tenant_id, item.connection_id, item.lead_id, events=item.events, queued_at=item.created_at
            )
        return item


async def replay_dead_letters(runtime: Runtime, tenant_id: str, connection_id: str) -> int:
    """Queue again every dead-lettered lead of one CRM connection (``POST
    /api/v1/integrations/{id}/sync``); returns how many. The links go back to ``pending``."""
    docs = await runtime.store.query(
        tenant_id,
        col.CRM_LINKS,
        filters=[where("connection_id", "==", connection_id), where("status", "==", "dead")],
    )
    now = runtime.clock.now()
    for doc in docs:
        await runtime.store.set(
            tenant_id, col.CRM_LINKS, doc.id, {"status": "pending", "last_error": None}, merge=True
        )
        await runtime.jobs.enqueue(
            tenant_id,
            KIND,  # type: ignore[arg-type]
            f"s:{connection_id}:{doc.data['lead_id']}",
            payload={
                "op": "sync",
                "connection_id": connection_id,
                "lead_id": doc.data["lead_id"],
                "events": ["replay"],
                "queued_at": now,
            },
        )
    if docs:
        log.info("crm.replayed", tenant=tenant_id, connection=connection_id, count=len(docs))
    return len(docs)
