"""Delivery statuses: apply what the provider told us to the message it concerns.

A status only moves a message forward (queued < sent < delivered < read); ``failed`` and
``undeliverable`` are final and keep the provider's error code. A status that arrives before the
dispatcher recorded the provider id is retried shortly after.
"""

from __future__ import annotations

from typing import Any

from app.conversations.records import messages_collection
from app.core.logs import get_logger
from app.jobs.queue import Job, RetryLater
from app.messaging.dispatcher import PROVIDER_IDS, provider_index_id, reconcile_from_status
from app.messaging.inbox import STATUS_EVENTS
from app.policy.optouts import OptOutLedger
from app.store import Store, Transaction, where
from kernel.clock import Clock

__all__ = ["StatusService"]

log = get_logger("leadwarm.statuses")

_RANK = {"received": 0, "queued": 1, "sent": 2, "delivered": 3, "read": 4}
_FINAL = {"failed", "undeliverable"}


def _advances(current: str, new: str) -> bool:
    if current in _FINAL:
        return False
    if new in _FINAL:
        return True
    return _RANK.get(new, 0) > _RANK.get(current, 0)


class StatusService:
    """Handler of ``status`` jobs."""

    def __init__(
        self, *, store: Store, clock: Clock, ledger: OptOutLedger, unknown_retry_s: float = 2.0
    ) -> None:
        self.store = store
        self.clock = clock
        self.ledger = ledger
        self.unknown_retry_s = unknown_retry_s

    async def handle_status(self, job: Job) -> None:
        """Apply every stored status of one provider message id."""
        channel = str(job.payload["channel"])
        provider_id = str(job.payload["provider_message_id"])
        events = await self.store.query(
            job.tenant_id,
            STATUS_EVENTS,
            filters=[where("channel", "==", channel), where("provider_message_id", "==", provider_id)],
        )
        if not events:
            return
        ref = await self.store.get(job.tenant_id, PROVIDER_IDS, provider_index_id(channel, provider_id))
        client_ref = next((str(ev.data["client_ref"]) for ev in events if ev.data.get("client_ref")), "")
        if ref is None and client_ref:  # a send whose answer we lost: the provider says it happened
            await reconcile_from_status(
                self.store,
                job.tenant_id,
                channel=channel,
                provider_message_id=provider_id,
                client_ref=client_ref,
                now=self.clock.now(),
            )
            ref = await self.store.get(job.tenant_id, PROVIDER_IDS, provider_index_id(channel, provider_id))
        if ref is None:
            if job.attempts >= 4:
                log.warning(
                    "status.unknown_message",
                    tenant=job.tenant_id,
                    channel=channel,
                    provider_message_id=provider_id,
                )
                for ev in events:
                    await self.store.delete(job.tenant_id, STATUS_EVENTS, ev.id)
                return
            raise RetryLater(self.unknown_retry_s, "message not recorded yet")
        collection = messages_collection(str(ref["conversation_id"]))
        message_id = str(ref["message_id"])

        async def fn(tx: Transaction) -> None:
            msg = await tx.get(collection, message_id)
            if msg is None:
                return
            status = str(msg.get("status", "queued"))
            status_at = dict(msg.get("status_at", {}))
            update: dict[str, Any] = {}
            for ev in sorted(events, key=lambda e: _RANK.get(str(e.data["status"]), 9)):
                new = str(ev.data["status"])
                status_at.setdefault(new, float(ev.data.get("timestamp") or ev.data.get("received_at") or 0))
                if _advances(status, new):
                    status = new
                    update["status"] = new
                    if new in _FINAL:
                        update["error_code"] = ev.data.get("error_code")
                        update["error_title"] = ev.data.get("error_title")
            update["status_at"] = status_at
            tx.set(collection, message_id, update, merge=True)
            for ev in events:
                tx.delete(STATUS_EVENTS, ev.id)

        await self.store.run_transaction(job.tenant_id, fn)
        for ev in events:
            if ev.data.get("status") == "undeliverable" and ev.data.get("recipient"):
                # Remember the dead address so that the policy never tries it again.
                await self.ledger.mark_undeliverable(
                    job.tenant_id,
                    channel=channel,
                    address=str(ev.data["recipient"]),
                    source=f"status:{ev.data.get('error_code') or 'undeliverable'}",
                )
