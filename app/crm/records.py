"""What the CRM sync stores (tenant-scoped), and the trigger events as data.

Collections (:mod:`app.store.collections`): ``crm_integrations`` (one :class:`Integration` per CRM
connection, doc id = connection id; absent means the defaults), ``crm_links`` (one :class:`Link`
per (connection, lead)), ``crm_breakers``, ``crm_sync_logs`` (:class:`SyncLog`), ``crm_reviews``
(:class:`ReviewItem`), ``crm_batch``, ``crm_webhook_logs``, ``crm_webhook_events``. Times are
floats, seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from app.core.records import Record
from app.store.ids import compound_id

__all__ = [
    "DEFAULT_EVENTS",
    "LEAD_UPDATED",
    "STAGE_CHANGED",
    "TRIGGER_EVENTS",
    "Integration",
    "Link",
    "ReviewItem",
    "SyncLog",
    "link_id",
]

STAGE_CHANGED = "stage.changed"
"""The trigger emitted when a turn moves the lead's stage (``new`` -> ``engaged`` excepted)."""
LEAD_UPDATED = "lead.updated"
"""The trigger emitted when a turn fills an answer of a lead already qualified, handed off or
booked (the e-mail or call-back time given after qualification reaches the CRM)."""

TRIGGER_EVENTS: dict[str, tuple[str, ...]] = {
    "lead.qualified": ("lead.qualified",),
    "handoff": ("handoff",),
    "conversation.closed": ("ended", "keyword.stop"),
    "meeting.booked": ("meeting.booked", "booking.confirmed"),
    "sync.requested": ("sync.requested",),
    STAGE_CHANGED: (),
    LEAD_UPDATED: (),
}
"""Trigger name -> the conversation event types (``ConversationEvent.type``) that emit it. A
feature that records a new event type (the booking feature's ``meeting.booked``) is picked up
here, with no code change; ``stage.changed`` and ``lead.updated`` are computed from the lead."""

DEFAULT_EVENTS = ("lead.qualified", "handoff", "meeting.booked", "sync.requested", LEAD_UPDATED)

Direction = Literal["to", "from", "both"]
Frequency = Literal["realtime", "hourly", "daily"]


class Integration(Record):
    """One CRM connection's sync settings (``crm_integrations/{connection_id}``).

    ``events`` are trigger names of :data:`TRIGGER_EVENTS`; ``direction`` ``to`` (leads go to the
    CRM), ``from`` (only inbound webhooks act), ``both``; ``frequency`` ``realtime`` or a batch
    (``hourly``, ``daily``: at the next full hour / 00:00 UTC); ``review`` holds each lead for a
    person's approval; ``options`` is :attr:`crm_sync.base.LeadSnapshot.options` (pipeline, stage...);
    ``mapping`` rows of :class:`crm_sync.mapping.FieldMapping` (empty: the adapter's defaults).
    Inbound: ``start_tags`` (a tag added in the CRM starts a playbook; empty: any tag),
    ``start_on_create`` (a new CRM contact starts one), ``start_channel``, ``start_playbook_id``;
    ``webhook_account_id`` routes signed vendor webhooks to this tenant (default: the connection's
    location or portal id); ``webhook_token_hash`` is the SHA-256 of the URL token, when one was made.
    """

    connection_id: str
    enabled: bool = True
    events: list[str] = Field(default_factory=lambda: list(DEFAULT_EVENTS))
    direction: Direction = "both"
    frequency: Frequency = "realtime"
    review: bool = False
    options: dict[str, Any] = Field(default_factory=dict)
    mapping: list[dict[str, Any]] = Field(default_factory=list)
    start_tags: list[str] = Field(default_factory=list)
    start_on_create: bool = False
    start_channel: str | None = None
    start_playbook_id: str | None = None
    webhook_account_id: str | None = None
    webhook_token_hash: str | None = None
    updated_at: float = 0.0

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(TRIGGER_EVENTS))
        if unknown:
            raise ValueError(f"unknown events {unknown}; known: {sorted(TRIGGER_EVENTS)}")
        return value

    def outbound(self) -> bool:
        """Whether leads are written to this CRM."""
        return self.enabled and self.direction in ("to", "both")

    def inbound(self) -> bool:
        """Whether this CRM's webhooks act on leads."""
        return self.enabled and self.direction in ("from", "both")


def link_id(connection_id: str, lead_id: str) -> str:
    """Document id of a (connection, lead) pair (links, reviews, batch entries)."""
    return compound_id(connection_id, lead_id)


class Link(Record):
    """One lead in one CRM (``crm_links``). ``remote_ids`` are what the last sync returned;
    ``synced_key`` the idempotency key of the content last written (a job whose snapshot has that
    key writes nothing); ``status`` ``pending``, ``synced`` or ``dead`` (the dead letter, with
    ``last_error``, replayed by :func:`app.crm.sync.replay_dead_letters`); ``queued_at`` when the
    change that is being synced was made, ``synced_at`` when the CRM acknowledged it;
    ``writes`` counts successful writes."""

    id: str
    connection_id: str
    lead_id: str
    provider: str = ""
    remote_ids: dict[str, str] = Field(default_factory=dict)
    remote_contact: str | None = None
    """``remote_ids["contact"]``, top level so inbound webhooks find the lead by it."""
    synced_key: str | None = None
    status: Literal["pending", "synced", "dead"] = "pending"
    last_error: str | None = None
    attempts: int = 0
    queued_at: float | None = None
    synced_at: float | None = None
    writes: int = 0


class SyncLog(Record):
    """One attempt (``crm_sync_logs``): ``type`` ``upsert``; ``status`` ``ok``, ``skipped`` (the
    content was already written), ``retry``, ``deferred`` (circuit open), ``dead``, ``error``;
    ``payload`` the snapshot sent (secrets redacted), ``response`` the remote ids or the
    provider's answer (cut), ``duration_ms``."""

    id: str
    connection_id: str
    lead_id: str
    provider: str
    type: str = "upsert"
    status: str
    attempt: int = 1
    idempotency_key: str | None = None
    error: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    response: dict[str, Any] = Field(default_factory=dict)
    duration_ms: float = 0.0
    at: float


class ReviewItem(Record):
    """A lead held for approval before it is written (``crm_reviews``; id = link id)."""

    id: str
    connection_id: str
    lead_id: str
    provider: str = ""
    status: Literal["pending", "approved", "rejected"] = "pending"
    events: list[str] = Field(default_factory=list)
    created_at: float
    decided_at: float | None = None
    decided_by: str | None = None
