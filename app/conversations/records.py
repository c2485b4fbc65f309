"""Leads, conversations, their events and messages, as stored (tenant-scoped).

Collections: ``leads``, ``conversations``, ``conversations/{id}/messages`` (never an ever-growing
array). Times are floats, seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from app.core.records import Record
from app.store.collections import messages_collection
from channels.registry import CHANNELS

__all__ = [
    "Conversation",
    "ConversationEvent",
    "ConversationStatus",
    "DeliveryState",
    "Direction",
    "Lead",
    "LeadStage",
    "Message",
    "Sender",
    "messages_collection",
]


LeadStage = Literal["new", "engaged", "qualified", "disqualified", "handoff", "booked", "nurture", "closed"]


class Lead(Record):
    """A person we warm up. ``phone`` is E.164; ``consent`` maps a channel to True/False/None
    (unknown); ``webchat_id`` is the web-chat session that speaks for them."""

    id: str
    tenant_id: str
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    webchat_id: str | None = None
    language: str | None = None
    timezone: str | None = None
    consent: dict[str, bool | None] = Field(default_factory=dict)
    slots: dict[str, Any] = Field(default_factory=dict)
    score: int = 0
    stage: LeadStage = "new"
    source: str = "inbound"
    created_at: float = 0.0
    updated_at: float = 0.0

    def addresses(self) -> dict[str, str]:
        """The lead's address on each channel it has one for."""
        out = {name: getattr(self, cls.traits.address_field, None) for name, cls in CHANNELS.items()}
        return {k: v for k, v in out.items() if v}


ConversationStatus = Literal["active", "scheduled", "handoff", "closed"]


class ConversationEvent(Record):
    """One thing that happened in a conversation besides messages: a slot filled, a score
    change with its reason, a timer, a handoff, a delivery decision. Kept on the conversation,
    capped (the newest ``Conversation.EVENTS_KEPT``)."""

    at: float
    type: str
    detail: dict[str, Any] = Field(default_factory=dict)


class Conversation(Record):
    """One lead on one channel running one playbook.

    ``address`` is the lead's address on ``channel``. ``state`` is the engine's
    :class:`playbooks.runtime.ConversationState` as JSON. ``version`` increases on every write:
    the worker commits only if it is unchanged since it read it (optimistic concurrency).
    """

    EVENTS_KEPT: ClassVar[int] = 200

    id: str
    tenant_id: str
    lead_id: str
    channel: str
    address: str
    status: ConversationStatus = "active"
    playbook_id: str
    playbook_version: int
    current_step: str | None = None
    state: dict[str, Any] = Field(default_factory=dict)
    timer: dict[str, Any] | None = None
    version: int = 0
    message_count: int = 0
    inbound_count: int = 0
    last_inbound_at: float | None = None
    last_inbound_by_channel: dict[str, float] = Field(default_factory=dict)
    last_outbound_at: float | None = None
    outcome: str | None = None
    opened_with_template: bool = False
    """Opened by an approved template alone (WhatsApp outside the window): the playbook starts, from
    its first step, when the lead answers (see :mod:`app.conversations.opening`)."""
    llm_usage: dict[str, Any] = Field(default_factory=dict)
    """Model usage of this conversation: turns, calls, prompt/cached/completion tokens,
    cost_micro_usd (1e-6 USD), fallbacks (turns answered offline)."""
    events: list[ConversationEvent] = Field(default_factory=list)
    created_at: float = 0.0
    updated_at: float = 0.0


Direction = Literal["inbound", "outbound"]
Sender = Literal["bot", "contact", "agent"]
DeliveryState = Literal[
    "received", "queued", "sent", "delivered", "read", "failed", "undeliverable", "blocked", "stale"
]


class Message(Record):
    """One message of a conversation (collection ``conversations/{id}/messages``).

    ``seq`` orders messages within the conversation. ``status`` follows delivery webhooks and only
    moves forward (queued < sent < delivered < read; failed is final)."""

    id: str
    conversation_id: str
    lead_id: str
    seq: int
    direction: Direction
    sender: Sender
    channel: str
    text: str
    kind: str = "text"
    choices: list[dict[str, str]] = Field(default_factory=list)
    provider_message_id: str | None = None
    status: DeliveryState = "received"
    error_code: str | None = None
    error_title: str | None = None
    purpose: str | None = None
    step_id: str | None = None
    thread: dict[str, Any] | None = None
    sentiment: float | None = None
    """The lead's sentiment in this message, -1 (negative) .. 1 (positive), when the model read it."""
    llm_usage: dict[str, Any] | None = None
    """The model call of the turn this message started (tokens, cost_micro_usd), if any."""
    """Email threading of an inbound message: subject and references (Message-IDs)."""
    decision: dict[str, Any] | None = None
    """The outbound policy's decision for an outbound message (action, reason, until)."""
    created_at: float = 0.0
    status_at: dict[str, float] = Field(default_factory=dict)
