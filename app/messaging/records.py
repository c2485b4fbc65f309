"""The inbox and the outbox, as stored: what a webhook accepted and what the dispatcher sends."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from app.core.records import Record

__all__ = ["InboxItem", "OutboxItem"]


class InboxItem(Record):
    """An inbound message as stored by the webhook before it answers 200.

    Document id: ``{channel}:{provider_message_id}`` (the dedupe key). ``address_key`` is
    ``{channel}:{sender}``: the worker processes one address's items in ``seq`` order."""

    id: str
    channel: str
    address_key: str
    sender: str
    recipient: str
    provider_message_id: str
    text: str
    kind: str = "text"
    choice_id: str | None = None
    contact_name: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    status: Literal["pending", "processed"] = "pending"
    seq: float
    received_at: float
    processed_at: float | None = None
    conversation_id: str | None = None


class OutboxItem(Record):
    """A message to send, written in the same transaction as the conversation state that decided
    it. ``status``: pending -> sent, or failed (permanent error) / dead (retries exhausted)."""

    id: str
    conversation_id: str
    message_id: str
    lead_id: str
    channel: str
    to: str
    text: str
    choices: list[dict[str, str]] = Field(default_factory=list)
    seq: int = 0
    purpose: str = "step"
    trigger: Literal["inbound", "start", "timer", "agent"] = "inbound"
    template: dict[str, Any] | None = None
    """A WhatsApp template (name, language, parameters) the step or tenant names for this message."""
    attachments: list[dict[str, Any]] = Field(default_factory=list)
    """Files for channels that carry them (email): ``{"filename", "mime_type", "content_b64", "params"}``."""
    not_after: float | None = None
    """Not sent from this instant on (epoch seconds): a meeting reminder, its meeting's start; the
    policy drops it as stale (``expired``) rather than send or defer it past that."""
    status: Literal["pending", "sent", "failed", "dead", "blocked", "stale"] = "pending"
    decision: dict[str, Any] | None = None
    """The outbound policy's last decision: action, reason, until (epoch seconds)."""
    attempts: int = 0
    intent_at: float | None = None
    """When a send was last handed to the provider without our record of its answer (epoch seconds);
    set before the call, cleared by a definite answer (see :mod:`app.messaging.dispatcher`)."""
    provider_message_id: str | None = None
    last_error: str | None = None
    error_code: str | None = None
    created_at: float = 0.0
    sent_at: float | None = None
