"""Every collection LeadWarm stores, by name: one place to read the data model from.

Tenant collections live under ``tenants/{tenant_id}/`` (Firestore) or the tenant's rows (SQLite);
routing collections live under :data:`app.store.SYSTEM_TENANT`, since they are read before the
tenant is known. A module that stores something imports its collection name from here.
"""

from __future__ import annotations

__all__ = [
    "AI_CONFIG",
    "API_KEYS",
    "AUDIT",
    "BOOKINGS",
    "BOOKING_SETTINGS",
    "CALENDAR_BOOKINGS",
    "CALENDAR_CLAIMS",
    "CALENDAR_DAYS",
    "CHANNEL_ROUTES",
    "CONFIG",
    "CONVERSATIONS",
    "CRM_BATCH",
    "CRM_BREAKERS",
    "CRM_INTEGRATIONS",
    "CRM_LINKS",
    "CRM_REVIEWS",
    "CRM_SYNC_LOGS",
    "CRM_WEBHOOK_EVENTS",
    "CRM_WEBHOOK_LOGS",
    "CRM_WEBHOOK_ROUTES",
    "DASHBOARD_INVITATIONS",
    "DASHBOARD_SESSIONS",
    "HANDOFFS",
    "INBOX",
    "JOBS",
    "KNOWLEDGE",
    "KNOWLEDGE_STATS",
    "KNOWLEDGE_USAGE",
    "KNOWLEDGE_USAGE_SHARDS",
    "LEADS",
    "LEAD_IMPORTS",
    "LEAD_IMPORT_BATCHES",
    "LLM_USAGE",
    "LLM_USAGE_SHARDS",
    "OPTOUTS",
    "OUTBOX",
    "PLAYBOOKS",
    "PROVIDER_IDS",
    "QUARANTINE",
    "SEND_COUNTERS",
    "STATUS_EVENTS",
    "USERS",
    "WEBCHAT_LEAD_COUNTS",
    "messages_collection",
    "notes_collection",
]

# --- tenant data
CONFIG = "config"
"""Tenant settings: document ``config/tenant``."""
LEADS = "leads"
CONVERSATIONS = "conversations"
INBOX = "inbox"
"""Inbound messages as accepted by webhooks, deduplicated by provider message id."""
OUTBOX = "outbox"
"""Messages to send, written with the turn that decided them."""
JOBS = "jobs"
PLAYBOOKS = "playbooks"
KNOWLEDGE = "qaTraining"
"""The knowledge base (the seed's Firestore name)."""
KNOWLEDGE_STATS = "qaStats"
KNOWLEDGE_USAGE = "qaUsage"
AI_CONFIG = "aiConfig"
"""Brand memory (the seed's Firestore name): document ``aiConfig/default``."""
PROVIDER_IDS = "provider_ids"
"""A provider's message id -> our conversation and message."""
STATUS_EVENTS = "status_events"
QUARANTINE = "quarantine"
"""Signed webhook bodies that could not be parsed (see :mod:`app.messaging.quarantine`)."""
SEND_COUNTERS = "send_counters"
OPTOUTS = "optouts"
LLM_USAGE = "llm_usage"
LLM_USAGE_SHARDS = "llm_usage_shards"
"""Counter shards of ``llm_usage``: ``{month}:{shard}``, incremented without a transaction."""
KNOWLEDGE_USAGE_SHARDS = "qaUsageShards"
"""Counter shards of the knowledge entries' ``usage_count``: ``{entry_id}:{shard}``."""
# CRM sync (app/crm)
CRM_INTEGRATIONS = "crm_integrations"
"""Per CRM connection: events, direction, frequency, review, options, field mapping
(doc id = connection id)."""
CRM_LINKS = "crm_links"
"""Per (connection, lead): remote ids, the last synced idempotency key, the dead-letter state."""
CRM_BREAKERS = "crm_breakers"
"""Per connection: the circuit breaker's state."""
CRM_SYNC_LOGS = "crm_sync_logs"
CRM_WEBHOOK_LOGS = "crm_webhook_logs"
CRM_WEBHOOK_EVENTS = "crm_webhook_events"
"""Inbound CRM webhook events already applied (doc id = the event's dedupe id)."""
CRM_REVIEWS = "crm_reviews"
"""Leads waiting for a person's approval before they are written to a CRM."""
CRM_BATCH = "crm_batch"
"""Leads waiting for an hourly or daily batch sync."""
HANDOFFS = "handoffs"
AUDIT = "audit"
"""Who did what: admin actions, handoffs, rejected API keys (app/tenancy/audit.py)."""
"""Human handoffs of conversations, their notifications and timers (app/handoff)."""

BOOKINGS = "bookings"
"""Meetings booked from conversations (any provider), by conversation and request."""
BOOKING_SETTINGS = "booking_settings"
"""A tenant's calendar settings (document ``calendar``)."""
CALENDAR_BOOKINGS = "calendar_bookings"
CALENDAR_DAYS = "calendar_days"
CALENDAR_CLAIMS = "calendar_claims"
"""The built-in calendar's ledger (see :mod:`app.booking.ledger`)."""

# --- routing (under SYSTEM_TENANT)
API_KEYS = "api_keys"
CHANNEL_ROUTES = "channel_routes"
CRM_WEBHOOK_ROUTES = "crm_webhook_routes"
"""``{platform}:{account id}`` or ``token:{sha256(token)}`` -> the tenant and connection of an
inbound CRM webhook."""


def messages_collection(conversation_id: str) -> str:
    """The sub-collection holding one conversation's messages."""
    return f"{CONVERSATIONS}/{conversation_id}/messages"


# --- dashboard (app/dashboard)
USERS = "users"
"""The tenant's dashboard users (people): email, role, argon2 password hash."""
DASHBOARD_SESSIONS = "dashboard_sessions"
"""Under ``SYSTEM_TENANT``: sign-in sessions by SHA-256 of the cookie's token (tenant, user, expiry)."""
DASHBOARD_INVITATIONS = "dashboard_invitations"
"""Under ``SYSTEM_TENANT``: pending invitations by SHA-256 of the link's token (single use)."""


def notes_collection(conversation_id: str) -> str:
    """The sub-collection holding one conversation's internal notes (the team's, never sent)."""
    return f"{CONVERSATIONS}/{conversation_id}/notes"


# --- dashboard CSV imports (app/dashboard/imports.py)
LEAD_IMPORTS = "lead_imports"
"""CSV imports of leads: one document per import (status, counters, rows refused while parsing)."""
LEAD_IMPORT_BATCHES = "lead_import_batches"
"""An import's rows, ``{import_id}:{n}`` of at most 100 rows each, with their report once written."""
# --- web chat (app/webchat)
WEBCHAT_LEAD_COUNTS = "webchat_lead_counts"
"""New web-chat leads per embedding origin and UTC hour (``{sha256(origin)[:20]}:{hour}``): ``count``."""
