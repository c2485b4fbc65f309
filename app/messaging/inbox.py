"""The inbox: what a webhook does before it answers 200.

:func:`accept_message` stores an inbound message, deduplicated by the provider's message id, and
enqueues the job that will process its sender's messages, in one transaction. Nothing else: no
lead lookup, no playbook, no network. A redelivered webhook finds the document and does nothing.
Delivery statuses are stored the same way (:func:`accept_status`) and applied by the worker,
since a status may arrive before we have recorded the provider id it refers to.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from app.jobs.queue import JobQueue
from app.messaging.records import InboxItem
from app.store import Transaction
from app.store import collections as col
from app.store.ids import compound_id
from channels.base import DeliveryStatus, InboundMessage

__all__ = ["accept_message", "accept_status", "address_key", "inbox_id"]

INBOX = col.INBOX
STATUS_EVENTS = col.STATUS_EVENTS


def inbox_id(channel: str, provider_message_id: str) -> str:
    """The dedupe key of an inbound message (``/`` escaped for Firestore ids)."""
    return compound_id(channel, provider_message_id)


def address_key(channel: str, sender: str) -> str:
    """Identifies one contact on one channel: ``whatsapp:+33612345678``."""
    return f"{channel}:{sender}"


async def accept_message(
    jobs: JobQueue, tenant_id: str, message: InboundMessage, *, debounce_s: float = 0.0
) -> bool:
    """Store ``message`` and enqueue its processing; ``False`` when it was already stored.

    The sender's job is due ``debounce_s`` seconds after their latest message, so a burst of
    messages is read in one turn and gets one reply.

    Raises :class:`app.store.StoreError` when the store is unavailable (the webhook then answers
    5xx so that the provider delivers again: nothing is lost).
    """
    now = jobs.clock.now()
    doc_id = inbox_id(message.channel, message.provider_message_id)
    key = address_key(message.channel, message.sender)
    item = InboxItem(
        id=doc_id,
        channel=message.channel,
        address_key=key,
        sender=message.sender,
        recipient=message.recipient,
        provider_message_id=message.provider_message_id,
        text=message.text,
        kind=message.kind,
        choice_id=message.choice_id,
        contact_name=message.contact_name,
        payload=_jsonable(dataclasses.asdict(message)),
        seq=now,
        received_at=now,
    )

    async def fn(tx: Transaction) -> bool:
        if await tx.get(INBOX, doc_id) is not None:
            return False
        existing_job = await jobs.read(tx, "inbound", key)
        tx.create(INBOX, doc_id, item.to_doc())
        jobs.write(tx, existing_job, kind="inbound", key=key, due_at=now + debounce_s, due="latest")
        return True

    created = await jobs.store.run_transaction(tenant_id, fn)
    if created:
        jobs.notify()
    return created


async def accept_status(jobs: JobQueue, tenant_id: str, status: DeliveryStatus) -> bool:
    """Store a delivery status and enqueue its application; ``False`` for a duplicate."""
    now = jobs.clock.now()
    doc_id = inbox_id(status.channel, f"{status.provider_message_id}:{status.status}")
    key = inbox_id(status.channel, status.provider_message_id)
    data: dict[str, Any] = {**_jsonable(dataclasses.asdict(status)), "received_at": now, "applied": False}

    async def fn(tx: Transaction) -> bool:
        if await tx.get(STATUS_EVENTS, doc_id) is not None:
            return False
        existing_job = await jobs.read(tx, "status", key)
        tx.create(STATUS_EVENTS, doc_id, data)
        jobs.write(
            tx,
            existing_job,
            kind="status",
            key=key,
            due_at=now,
            payload={"channel": status.channel, "provider_message_id": status.provider_message_id},
        )
        return True

    created = await jobs.store.run_transaction(tenant_id, fn)
    if created:
        jobs.notify()
    return created


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
