"""Domain records as stored: one pydantic model per collection, tenant-scoped.

Collections (under each tenant): ``config/tenant``, ``leads``, ``conversations``,
``conversations/{id}/messages`` (never an ever-growing array), ``inbox``, ``outbox``, ``jobs``,
``playbooks``, ``qaTraining``, ``provider_ids`` (provider message id -> message), ``status_events``.
Times are floats, seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "COLLECTIONS",
    "Conversation",
    "ConversationEvent",
    "InboxItem",
    "Lead",
    "Message",
    "OutboxItem",
    "Record",
    "StoredPlaybook",
    "TenantProfile",
    "messages_collection",
]


class Record(BaseModel):
    """Base of every stored record: ``to_doc`` / ``from_doc`` convert to and from store documents."""

    model_config = ConfigDict(extra="ignore")

    def to_doc(self) -> dict[str, Any]:
        """JSON-compatible dict for :class:`app.store.Store`."""
        return self.model_dump(mode="json")

    @classmethod
    def from_doc(cls, data: dict[str, Any]) -> Self:
        """Build from a stored document (unknown keys are ignored, so old code reads new docs)."""
        return cls.model_validate(data)


COLLECTIONS = {
    "tenant": "config",
    "leads": "leads",
    "conversations": "conversations",
    "inbox": "inbox",
    "outbox": "outbox",
    "jobs": "jobs",
    "playbooks": "playbooks",
    "qa": "qaTraining",
    "ai_config": "aiConfig",
    "provider_ids": "provider_ids",
    "status_events": "status_events",
}


def messages_collection(conversation_id: str) -> str:
    """The sub-collection holding one conversation's messages."""
    return f"conversations/{conversation_id}/messages"


class TenantProfile(Record):
    """A tenant's own settings (document ``config/tenant``).

    ``playbooks_by_language`` picks the playbook for a new lead by the language of their first
    message; ``default_playbook`` is used otherwise. ``timezone`` is an IANA name; ``default_region``
    an ISO 3166 code for phone numbers written without a country code.
    """

    id: str
    name: str
    default_language: str = "en"
    languages: list[str] = Field(default_factory=lambda: ["en", "fr"])
    timezone: str = "UTC"
    default_region: str | None = None
    default_playbook: str | None = None
    playbooks_by_language: dict[str, str] = Field(default_factory=dict)
    # --- outbound policy (app/policy)
    quiet_hours_start: str = "21:00"
    quiet_hours_end: str = "08:00"
    quiet_hours_allow_direct_replies: bool = True
    """A direct answer to a lead who wrote in the last 15 minutes may go out in quiet hours."""
    daily_cap_per_lead: int = 20
    optout_all_channels: bool = True
    """An opt-out on one channel stops every channel of the lead."""
    whatsapp_window_hours: float = 24.0
    whatsapp_templates: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Approved templates by message purpose ("followup", "step", ... or "default"):
    ``{"name": "lead_followup", "language": "en", "parameters": ["{{ lead.first_name }}"]}``."""
    fallback_channels: list[str] = Field(default_factory=list)
    """Channels to try, in order, when the policy blocks a message on its own channel."""
    help_text: dict[str, str] = Field(default_factory=dict)
    llm_monthly_budget_usd: float | None = None
    """This tenant's monthly model budget (USD); None uses LLM_MONTHLY_BUDGET_USD."""
    """Answer to HELP/AIDE per language; a default naming the tenant is used otherwise."""
    created_at: float = 0.0


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
        out = {"whatsapp": self.phone, "sms": self.phone, "email": self.email, "webchat": self.webchat_id}
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
    status: Literal["pending", "sent", "failed", "dead", "blocked", "stale"] = "pending"
    decision: dict[str, Any] | None = None
    """The outbound policy's last decision: action, reason, until (epoch seconds)."""
    attempts: int = 0
    provider_message_id: str | None = None
    last_error: str | None = None
    error_code: str | None = None
    created_at: float = 0.0
    sent_at: float | None = None


class StoredPlaybook(Record):
    """A tenant's playbook: its YAML source (validated on write) and the version it declares."""

    id: str
    version: int
    name: str
    language: str
    source: str
    status: Literal["active", "draft"] = "active"
    updated_at: float = 0.0
