"""The dispatcher: sends a conversation's outbox in order and records what the provider said.

One ``dispatch:{conversation_id}`` job drains that conversation's pending outbox items by
sequence, so a lead never sees the second message before the first. A transient failure (network,
429, 5xx) is retried at once a few times (stamina), then the job is retried with backoff, keeping
the order; a permanent one marks the item failed and moves on; when the job's attempts run out
the remaining items are marked dead (the dead letter).

Delivery is at-least-once across a crash between the provider's answer and our record of it:
providers offer no idempotency key for WhatsApp or SMS sends, so that window cannot be closed here.
"""

from __future__ import annotations

from typing import Any

import stamina

from app.jobs import Job, RetryLater
from app.logs import get_logger
from app.records import OutboxItem, messages_collection
from app.store import Order, Store, Transaction, where
from channels.base import Choice, OutboundMessage, SendError

__all__ = ["Dispatcher", "provider_index_id"]

log = get_logger("leadwarm.dispatcher")

OUTBOX = "outbox"
PROVIDER_IDS = "provider_ids"


def provider_index_id(channel: str, provider_message_id: str) -> str:
    """Document id mapping a provider's message id to our message."""
    return f"{channel}:{provider_message_id}".replace("/", "%2F")


class _TransientSendError(Exception):
    def __init__(self, error: SendError) -> None:
        super().__init__(str(error))
        self.error = error


class Dispatcher:
    """Handler of ``dispatch`` jobs. ``channels`` resolves ``(tenant_id, channel) -> Channel``."""

    def __init__(self, *, store: Store, clock: Any, channels: Any, quick_attempts: int = 3) -> None:
        self.store = store
        self.clock = clock
        self.channels = channels
        self.quick_attempts = quick_attempts

    async def handle_dispatch(self, job: Job) -> None:
        """Send every pending outbox item of the conversation ``job.key``, in order."""
        docs = await self.store.query(
            job.tenant_id,
            OUTBOX,
            filters=[where("conversation_id", "==", job.key), where("status", "==", "pending")],
            order_by=[Order("seq")],
        )
        for doc in docs:
            item = OutboxItem.from_doc(doc.data)
            await self._send_one(job.tenant_id, item)

    async def _send_one(self, tenant_id: str, item: OutboxItem) -> None:
        channel = self.channels.get(tenant_id, item.channel)
        message = OutboundMessage(
            to=item.to,
            text=item.text,
            choices=tuple(Choice(id=c["id"], title=c["title"]) for c in item.choices),
            idempotency_key=item.id,
            metadata={"conversation_id": item.conversation_id, "message_id": item.message_id},
        )

        async def attempt() -> str:
            try:
                return str(await channel.send(message))
            except SendError as exc:
                if exc.retryable:
                    raise _TransientSendError(exc) from exc
                raise

        try:
            async for try_ in stamina.retry_context(
                on=_TransientSendError, attempts=self.quick_attempts, timeout=15.0
            ):
                with try_:
                    provider_id = await attempt()
        except _TransientSendError as exc:
            await self._record_attempt(tenant_id, item, str(exc.error))
            delay = exc.error.retry_after_s
            log.warning(
                "send.retry_later",
                tenant=tenant_id,
                outbox=item.id,
                channel=item.channel,
                error=str(exc.error),
                code=exc.error.code,
            )
            if delay is not None:
                raise RetryLater(delay, str(exc.error)) from exc
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
            await self._record_failure(tenant_id, item, str(exc), exc.code, status="failed")
            return
        await self._record_sent(tenant_id, item, provider_id)

    async def _record_sent(self, tenant_id: str, item: OutboxItem, provider_id: str) -> None:
        now = self.clock.now()

        async def fn(tx: Transaction) -> None:
            msg = await tx.get(messages_collection(item.conversation_id), item.message_id)
            tx.set(
                OUTBOX,
                item.id,
                {
                    "status": "sent",
                    "provider_message_id": provider_id,
                    "sent_at": now,
                    "attempts": item.attempts + 1,
                },
                merge=True,
            )
            tx.set(
                PROVIDER_IDS,
                provider_index_id(item.channel, provider_id),
                {"conversation_id": item.conversation_id, "message_id": item.message_id},
            )
            if msg is not None:
                status_at = {**msg.get("status_at", {}), "sent": now}
                update: dict[str, Any] = {"provider_message_id": provider_id, "status_at": status_at}
                if msg.get("status") == "queued":
                    update["status"] = "sent"
                tx.set(messages_collection(item.conversation_id), item.message_id, update, merge=True)

        await self.store.run_transaction(tenant_id, fn)
        log.info("send.ok", tenant=tenant_id, outbox=item.id, channel=item.channel)

    async def _record_attempt(self, tenant_id: str, item: OutboxItem, error: str) -> None:
        await self.store.set(
            tenant_id, OUTBOX, item.id, {"attempts": item.attempts + 1, "last_error": error[:300]}, merge=True
        )

    async def _record_failure(
        self, tenant_id: str, item: OutboxItem, error: str, code: str | None, *, status: str
    ) -> None:
        async def fn(tx: Transaction) -> None:
            msg = await tx.get(messages_collection(item.conversation_id), item.message_id)
            tx.set(
                OUTBOX, item.id, {"status": status, "last_error": error[:300], "error_code": code}, merge=True
            )
            if msg is not None:
                tx.set(
                    messages_collection(item.conversation_id),
                    item.message_id,
                    {
                        "status": "failed",
                        "error_code": code,
                        "error_title": error[:200],
                        "status_at": {**msg.get("status_at", {}), "failed": self.clock.now()},
                    },
                    merge=True,
                )

        await self.store.run_transaction(tenant_id, fn)

    async def on_dead(self, job: Job) -> None:
        """The job ran out of attempts: its pending items become dead letters."""
        docs = await self.store.query(
            job.tenant_id,
            OUTBOX,
            filters=[where("conversation_id", "==", job.key), where("status", "==", "pending")],
        )
        for doc in docs:
            item = OutboxItem.from_doc(doc.data)
            await self._record_failure(
                job.tenant_id, item, item.last_error or job.last_error or "dead", None, status="dead"
            )
            log.error("send.dead_letter", tenant=job.tenant_id, outbox=item.id, error=item.last_error)
