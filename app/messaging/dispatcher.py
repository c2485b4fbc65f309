"""The dispatcher: sends a conversation's outbox in order, through the outbound policy.

One ``dispatch:{conversation_id}`` job drains that conversation's pending outbox items by
sequence, so a lead never sees the second message before the first. Before each send the
:class:`app.policy.gate.OutboundGate` decides: send, send an approved template instead (WhatsApp
outside the customer-service window), defer (quiet hours, daily cap: the job waits without
counting a failure, and the items behind wait too), drop a stale reply, or block (opt-out,
undeliverable address, no template) after trying the tenant's fallback channels. Every decision
is kept on the outbox item and the message, so the API shows it.

A transient send failure (network, 429, 5xx) is retried at once a few times (stamina), then the job
is retried with backoff, keeping the order; a permanent one marks the item failed and moves on;
when the job's attempts run out the remaining items are marked dead (the dead letter).

Duplicate sends after a crash. The intent (``intent_at`` on the outbox item) is stored before the
provider is called; a definite answer (sent, or an error) replaces it. An item found pending with
an intent was handed to the provider by a process that died before recording the answer:
- on a channel whose delivery statuses echo our reference (``statuses_carry_reference``: WhatsApp's
  ``biz_opaque_callback_data``, which Meta's OpenAPI description allows on templates only, so only
  template sends record an intent; a session message is sent again), the send waits up to
  :data:`RECONCILE_WAIT_S` after the intent for the provider's status, which
  :func:`reconcile_from_status` turns into our record (no resend); past the wait with no status,
  it is sent again;
- e-mail is sent again with the same Message-ID (derived from the outbox item), which mail systems
  treat as the same message;
- SMS (Twilio's status callbacks carry no reference of ours) is sent again: that window remains.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from typing import Any

import stamina

from app.authoring.repository import PlaybookRepository
from app.conversations.records import Lead, messages_collection
from app.core.logs import get_logger
from app.jobs.queue import Job, JobQueue, RetryLater
from app.messaging.directory import ChannelDirectory, UnconfiguredChannel
from app.messaging.pacing import SendPacer
from app.messaging.records import OutboxItem
from app.policy.gate import COUNTERS, GateResult, OutboundGate, lead_addresses
from app.policy.rules import Decision
from app.store import Order, Store, Transaction, where
from app.store import collections as col
from app.store.ids import compound_id
from app.tenancy.directory import TenantDirectory
from channels.base import Attachment, Choice, OutboundMessage, SendError
from kernel.clock import Clock

__all__ = ["RECONCILE_WAIT_S", "Dispatcher", "provider_index_id", "reconcile_from_status"]

log = get_logger("leadwarm.dispatcher")

OUTBOX = col.OUTBOX
PROVIDER_IDS = col.PROVIDER_IDS
#: Provider errors meaning "this person opted out": Twilio 21610 (unsubscribed recipient, STOP at the
#: carrier), WhatsApp 131050 (the user stopped marketing messages from the business).
OPT_OUT_ERROR_CODES = frozenset({"21610", "131050"})
#: Longest provider-requested wait (seconds) honoured inside the quick retries; longer ones are
#: honoured by retrying the dispatch job that much later.
QUICK_RETRY_MAX_WAIT_S = 5.0
#: How long (seconds) after an unconfirmed send's intent the dispatcher waits for the provider's
#: status echoing our reference before sending again (WhatsApp's first status comes in seconds).
RECONCILE_WAIT_S = 120.0


def provider_index_id(channel: str, provider_message_id: str) -> str:
    """Document id mapping a provider's message id to our message."""
    return compound_id(channel, provider_message_id)


class _TransientSendError(Exception):
    def __init__(self, error: SendError) -> None:
        super().__init__(str(error))
        self.error = error


def _decision_doc(decision: Decision, channel: str) -> dict[str, Any]:
    return {"action": decision.action, "reason": decision.reason, "until": decision.until, "channel": channel}


class Dispatcher:
    """Handler of ``dispatch`` jobs. ``channels`` resolves ``(tenant_id, channel) -> Channel``."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        channels: ChannelDirectory,
        gate: OutboundGate,
        tenants: TenantDirectory,
        playbooks: PlaybookRepository | None = None,
        quick_attempts: int = 3,
        jobs: JobQueue | None = None,
        pacer: SendPacer | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.channels = channels
        self.gate = gate
        self.tenants = tenants
        self.playbooks = playbooks
        self.quick_attempts = quick_attempts
        self.jobs = jobs
        """The queue whose dispatch jobs this handler completes in its own last transaction
        (``None``: the worker completes them)."""
        self.pacer = pacer
        """Send pacing per sender and recipient (:mod:`app.messaging.pacing`; ``None``: none)."""

    async def handle_dispatch(self, job: Job) -> None:
        """Send every pending outbox item of the conversation ``job.key``, in order. The
        conversation is read with the items (one hand-off), for the first item's gate."""
        [conversation], docs = await self.store.get_many_then_query(
            job.tenant_id,
            [(col.CONVERSATIONS, job.key)],
            OUTBOX,
            filters=[where("conversation_id", "==", job.key), where("status", "==", "pending")],
            order_by=[Order("seq")],
        )
        templated_turns: set[float] = set()
        for index, doc in enumerate(docs):
            # The last item's record completes the job in the same transaction (one fewer).
            last = job if index == len(docs) - 1 else None
            item = OutboxItem.from_doc(doc.data)
            # the first item's gate uses the conversation read above; the next ones read it again
            # (each send may take a while, and a turn may commit meanwhile)
            known = (conversation,) if index == 0 and item.conversation_id == job.key else None
            await self._dispatch_one(job.tenant_id, item, templated_turns, job=last, conversation=known)

    async def _dispatch_one(
        self,
        tenant_id: str,
        item: OutboxItem,
        templated_turns: set[float],
        *,
        job: Job | None = None,
        conversation: tuple[dict[str, Any] | None] | None = None,
    ) -> None:
        """Decide and act on one item. ``templated_turns`` holds the turns (their ``created_at``)
        for which a template already went out: one template stands for a turn's messages. ``job``
        (the dispatch job, for its last item) is completed with the item's record.
        ``conversation``: the item's conversation document as just read, if it was (see
        :meth:`app.policy.gate.OutboundGate.check`)."""
        result = await self.gate.check(tenant_id, item, conversation=conversation)
        action = result.decision.action
        if action == "send_template" and item.created_at in templated_turns:
            covered = Decision("block", "replaced_by_template")
            await self._finish(tenant_id, item, status="blocked", decision=covered, job=job)
            return
        if action == "block":
            rerouted = await self._fallback(tenant_id, item, result.decision)
            if rerouted is None:
                await self._finish(tenant_id, item, status="blocked", decision=result.decision, job=job)
                log.info("send.blocked", tenant=tenant_id, outbox=item.id, reason=result.decision.reason)
                return
            item, result = rerouted
        elif action == "send_template":
            templated_turns.add(item.created_at)
        elif action == "drop_stale":
            await self._finish(tenant_id, item, status="stale", decision=result.decision, job=job)
            log.info("send.stale_dropped", tenant=tenant_id, outbox=item.id)
            return
        elif action == "defer":
            assert result.decision.until is not None
            if (item.decision or {}).get("reason") != result.decision.reason:
                await self.store.set(
                    tenant_id,
                    OUTBOX,
                    item.id,
                    {"decision": _decision_doc(result.decision, item.channel)},
                    merge=True,
                )
            delay = max(0.0, result.decision.until - self.clock.now())
            log.info(
                "send.deferred",
                tenant=tenant_id,
                outbox=item.id,
                reason=result.decision.reason,
                delay_s=delay,
            )
            raise RetryLater(delay, f"deferred: {result.decision.reason}", count=False)
        await self._send(tenant_id, item, result, job=job)

    async def _fallback(
        self, tenant_id: str, item: OutboxItem, why: Decision
    ) -> tuple[OutboxItem, GateResult] | None:
        """Move a blocked item to the first fallback channel where the policy lets it go."""
        lead_doc = await self.store.get(tenant_id, col.LEADS, item.lead_id)
        if lead_doc is None:
            return None
        addresses = lead_addresses(Lead.from_doc(lead_doc))
        for channel_name in await self._fallback_channels(tenant_id, item):
            address = addresses.get(channel_name)
            if channel_name == item.channel or not address or channel_name not in self.channels.names():
                continue
            if isinstance(await self.channels.resolve(tenant_id, channel_name), UnconfiguredChannel):
                continue
            result = await self.gate.check(tenant_id, item, channel=channel_name, to=address)
            if result.decision.action in ("send", "send_template"):
                moved = item.model_copy(update={"channel": channel_name, "to": address})
                moved.decision = {
                    **_decision_doc(result.decision, channel_name),
                    "rerouted_from": item.channel,
                    "rerouted_because": why.reason,
                }
                log.info(
                    "send.rerouted",
                    tenant=tenant_id,
                    outbox=item.id,
                    from_channel=item.channel,
                    to_channel=channel_name,
                    reason=why.reason,
                )
                return moved, result
        return None

    async def _thread(self, tenant_id: str, item: OutboxItem) -> tuple[str | None, dict[str, Any]]:
        """For email: the Message-ID to answer (the lead's last mail) and its subject/references."""
        if not self.channels.traits(item.channel).threading:
            return None, {}
        docs = await self.store.query(
            tenant_id,
            messages_collection(item.conversation_id),
            filters=[where("direction", "==", "inbound"), where("channel", "==", item.channel)],
            order_by=[Order("seq", descending=True)],
            limit=1,
        )
        if not docs:
            return None, {}
        last = docs[0].data
        thread = last.get("thread") or {}
        references = [*thread.get("references", []), last.get("provider_message_id")]
        return last.get("provider_message_id"), {
            "subject": thread.get("subject"),
            "references": [r for r in references if r],
        }

    async def _fallback_channels(self, tenant_id: str, item: OutboxItem) -> list[str]:
        """The playbook's fallback channels, then the tenant's (without repeats)."""
        channels: list[str] = []
        conv = await self.store.get(tenant_id, col.CONVERSATIONS, item.conversation_id)
        if conv and conv.get("playbook_id") and self.playbooks is not None:
            with contextlib.suppress(LookupError):
                playbook = await self.playbooks.get(
                    tenant_id, conv["playbook_id"], conv.get("playbook_version")
                )
                channels.extend(playbook.fallback_channels)
        profile = await self.tenants.profile(tenant_id)
        return list(dict.fromkeys([*channels, *profile.fallback_channels]))

    async def _send(
        self, tenant_id: str, item: OutboxItem, result: GateResult, *, job: Job | None = None
    ) -> None:
        channel = await self.channels.resolve(tenant_id, item.channel)
        if item.intent_at is not None and self.channels.traits(item.channel).statuses_carry_reference:
            # A send was handed over and its answer lost (a crash): wait for the provider's status.
            remaining = item.intent_at + RECONCILE_WAIT_S - self.clock.now()
            if remaining > 0:
                log.info("send.awaiting_reconciliation", tenant=tenant_id, outbox=item.id, wait_s=remaining)
                why = "unconfirmed send: waiting for the provider's status"
                raise RetryLater(remaining, why, count=False)
            log.warning("send.unconfirmed_resend", tenant=tenant_id, outbox=item.id, channel=item.channel)
        if self.pacer is not None:  # raises RetryLater until the item's slot at the provider's rate
            self.pacer.admit(
                channel=item.channel,
                sender=self.pacer.sender_of(channel, tenant_id),
                to=item.to,
                key=item.id,
                text=item.text,
            )
        if self.channels.traits(item.channel).statuses_carry_reference and result.template is not None:
            # only a send whose statuses echo our reference can be reconciled (WhatsApp templates):
            # elsewhere the intent would cost a store write per send and change nothing
            intent = {"intent_at": self.clock.now(), "intent_channel": item.channel}
            await self.store.set(tenant_id, OUTBOX, item.id, intent, merge=True)
        reply_to, thread = await self._thread(tenant_id, item)
        message = OutboundMessage(
            to=item.to,
            text=item.text,
            choices=tuple(Choice(id=c["id"], title=c["title"]) for c in item.choices),
            idempotency_key=item.id,
            template=result.template,
            attachments=tuple(
                Attachment(
                    content=base64.b64decode(a["content_b64"]),
                    mime_type=str(a["mime_type"]),
                    filename=str(a["filename"]),
                    params=dict(a.get("params") or {}),
                )
                for a in item.attachments
            ),
            reply_to=reply_to,
            metadata={
                "conversation_id": item.conversation_id,
                "message_id": item.message_id,
                "tenant_id": tenant_id,
                "message_id_seed": "lw." + hashlib.sha256(f"{tenant_id}:{item.id}".encode()).hexdigest()[:32],
                **thread,
            },
        )

        async def attempt() -> str:
            try:
                return str(await channel.send(message))
            except SendError as exc:
                if exc.retryable:
                    raise _TransientSendError(exc) from exc
                raise

        def backoff(exc: Exception) -> bool | float:
            # A provider that asks for a wait gets exactly that wait (stamina's hook); one that asks
            # for longer than the quick retries may spend goes to the job's own retry below.
            if not isinstance(exc, _TransientSendError):
                return False
            wait = exc.error.retry_after_s
            if wait is None:
                return True
            return wait if wait <= QUICK_RETRY_MAX_WAIT_S else False

        # Only a failed first try pays for stamina's retry machinery (building it cost a send about
        # as much CPU as the send itself): its first round re-raises that failure, so the waits,
        # the attempts counted and the hooks are stamina's own.
        failed: _TransientSendError | None = None
        try:
            try:
                provider_id = await attempt()
            except _TransientSendError as first:
                failed = first
            if failed is not None:
                async for try_ in stamina.retry_context(
                    on=backoff, attempts=self.quick_attempts, timeout=15.0
                ):
                    with try_:
                        if failed is not None:
                            error, failed = failed, None
                            raise error
                        provider_id = await attempt()
        except _TransientSendError as exc:
            await self.store.set(
                tenant_id,
                OUTBOX,
                item.id,
                {"attempts": item.attempts + 1, "last_error": str(exc.error)[:300], "intent_at": None},
                merge=True,
            )
            log.warning(
                "send.retry_later",
                tenant=tenant_id,
                outbox=item.id,
                channel=item.channel,
                error=str(exc.error),
                code=exc.error.code,
            )
            if exc.error.retry_after_s is not None:
                raise RetryLater(exc.error.retry_after_s, str(exc.error)) from exc
            raise
        except SendError as exc:
            log.warning(
                "send.failed",
                tenant=tenant_id,
                outbox=item.id,
                channel=item.channel,
                error=str(exc),
                code=exc.code,
            )
            await self._finish(tenant_id, item, status="failed", error=str(exc), code=exc.code, job=job)
            if exc.code in OPT_OUT_ERROR_CODES:
                # The provider says the person unsubscribed: the ledger must know it too.
                await self.gate.ledger.record(
                    tenant_id, channel=item.channel, address=item.to, source=f"provider_error:{exc.code}"
                )
            return
        decision = result.decision if item.decision is None else None
        await self._record_sent(tenant_id, item, provider_id, result, decision, job=job)

    async def _record_sent(
        self,
        tenant_id: str,
        item: OutboxItem,
        provider_id: str,
        result: GateResult,
        decision: Decision | None,
        *,
        job: Job | None = None,
    ) -> None:
        now = self.clock.now()
        decision_doc = item.decision if decision is None else _decision_doc(decision, item.channel)
        traits = self.channels.traits(item.channel)
        indexed = traits.reports_statuses or traits.threading  # statuses and email replies find it

        async def fn(tx: Transaction) -> None:
            refs = [
                (messages_collection(item.conversation_id), item.message_id),
                (COUNTERS, result.counter_id),
                # read so that the merge below needs no read of its own (SQLite: one statement fewer)
                (OUTBOX, item.id),
            ]
            if job is not None and self.jobs is not None:
                refs.append((col.JOBS, job.id))  # what JobQueue.read_job reads, in the same batch
            msg, counter, _outbox, *rest = await tx.get_many(refs)
            job_doc = rest[0] if rest else None
            tx.set(
                OUTBOX,
                item.id,
                {
                    "status": "sent",
                    "provider_message_id": provider_id,
                    "sent_at": now,
                    "attempts": item.attempts + 1,
                    "channel": item.channel,
                    "to": item.to,
                    "decision": decision_doc,
                    "intent_at": None,
                },
                merge=True,
            )
            if indexed:
                tx.set(
                    PROVIDER_IDS,
                    provider_index_id(item.channel, provider_id),
                    {"conversation_id": item.conversation_id, "message_id": item.message_id},
                )
            tx.set(
                COUNTERS,
                result.counter_id,
                {"count": int((counter or {}).get("count", 0)) + 1, "updated_at": now},
            )
            if msg is not None:
                update: dict[str, Any] = {
                    "provider_message_id": provider_id,
                    "channel": item.channel,
                    "status_at": {**msg.get("status_at", {}), "sent": now},
                    "decision": decision_doc,
                }
                if result.template is not None:
                    update["template"] = result.template
                if msg.get("status") == "queued":
                    update["status"] = "sent"
                tx.set(messages_collection(item.conversation_id), item.message_id, update, merge=True)
            if job is not None and self.jobs is not None:
                self.jobs.complete_in(tx, job, job_doc)

        await self.store.run_transaction(tenant_id, fn, inline=True)  # fn awaits only its reads
        if job is not None and self.jobs is not None:
            job.mark_completed()
        log.info(
            "send.ok",
            tenant=tenant_id,
            outbox=item.id,
            channel=item.channel,
            template=result.template is not None,
        )

    async def _finish(
        self,
        tenant_id: str,
        item: OutboxItem,
        *,
        status: str,
        decision: Decision | None = None,
        error: str | None = None,
        code: str | None = None,
        job: Job | None = None,
    ) -> None:
        """Close an item that will not be sent (failed, dead, blocked or stale); ``job`` (the
        dispatch job, leased by this process) is completed in the same transaction."""
        decision_doc = _decision_doc(decision, item.channel) if decision else item.decision
        message_status = {"failed": "failed", "dead": "failed", "blocked": "blocked", "stale": "stale"}[
            status
        ]

        async def fn(tx: Transaction) -> None:
            msg = await tx.get(messages_collection(item.conversation_id), item.message_id)
            job_doc = await self.jobs.read_job(tx, job) if job is not None and self.jobs else None
            if job is not None and self.jobs is not None:
                self.jobs.complete_in(tx, job, job_doc)
            tx.set(
                OUTBOX,
                item.id,
                {
                    "status": status,
                    "last_error": (error or "")[:300] or item.last_error,
                    "error_code": code,
                    "decision": decision_doc,
                },
                merge=True,
            )
            if msg is not None:
                tx.set(
                    messages_collection(item.conversation_id),
                    item.message_id,
                    {
                        "status": message_status,
                        "error_code": code,
                        "error_title": (error or "")[:200] or None,
                        "decision": decision_doc,
                        "status_at": {**msg.get("status_at", {}), message_status: self.clock.now()},
                    },
                    merge=True,
                )

        await self.store.run_transaction(tenant_id, fn, inline=True)  # fn awaits only its reads
        if job is not None and self.jobs is not None:
            job.mark_completed()

    async def on_dead(self, job: Job) -> None:
        """The job ran out of attempts: its pending items become dead letters."""
        docs = await self.store.query(
            job.tenant_id,
            OUTBOX,
            filters=[where("conversation_id", "==", job.key), where("status", "==", "pending")],
        )
        for doc in docs:
            item = OutboxItem.from_doc(doc.data)
            await self._finish(
                job.tenant_id, item, status="dead", error=item.last_error or job.last_error or "dead"
            )
            log.error("send.dead_letter", tenant=job.tenant_id, outbox=item.id, error=item.last_error)


async def reconcile_from_status(
    store: Store, tenant_id: str, *, channel: str, provider_message_id: str, client_ref: str, now: float
) -> bool:
    """Record an unconfirmed send from the provider's status echoing our reference: the outbox item
    ``client_ref`` (its id), still pending with an intent, becomes ``sent`` with that provider id,
    its message too, and the provider id is indexed, in one transaction, so no resend happens.
    ``True`` when it recorded one; ``False`` when the item is unknown, has no intent or is done."""

    async def fn(tx: Transaction) -> bool:
        doc = await tx.get(OUTBOX, client_ref)
        if doc is None or doc.get("status") != "pending" or doc.get("intent_at") is None:
            return False
        if (doc.get("intent_channel") or doc.get("channel")) != channel:
            return False
        msg_collection = messages_collection(str(doc["conversation_id"]))
        msg = await tx.get(msg_collection, str(doc["message_id"]))
        tx.set(
            OUTBOX,
            client_ref,
            {
                "status": "sent",
                "channel": channel,
                "provider_message_id": provider_message_id,
                "sent_at": float(doc["intent_at"]),
                "attempts": int(doc.get("attempts", 0)) + 1,
                "intent_at": None,
                "reconciled_at": now,
            },
            merge=True,
        )
        tx.set(
            PROVIDER_IDS,
            provider_index_id(channel, provider_message_id),
            {"conversation_id": doc["conversation_id"], "message_id": doc["message_id"]},
        )
        if msg is not None:
            update: dict[str, Any] = {
                "provider_message_id": provider_message_id,
                "status_at": {**msg.get("status_at", {}), "sent": float(doc["intent_at"])},
            }
            if msg.get("status") == "queued":
                update["status"] = "sent"
            tx.set(msg_collection, str(doc["message_id"]), update, merge=True)
        return True

    done = bool(await store.run_transaction(tenant_id, fn))
    if done:
        log.warning("send.reconciled", tenant=tenant_id, outbox=client_ref, channel=channel)
    return done
