"""Every collection LeadWarm stores, by name: one place to read the data model from.

Tenant collections live under ``tenants/{tenant_id}/`` (Firestore) or the tenant's rows (SQLite);
routing collections live under :data:`app.store.SYSTEM_TENANT`, since they are read before the
tenant is known. A module that stores something imports its collection name from here.
"""

from __future__ import annotations

__all__ = [
    "AI_CONFIG",
    "API_KEYS",
    "BOOKINGS",
    "BOOKING_SETTINGS",
    "CALENDAR_BOOKINGS",
    "CALENDAR_CLAIMS",
    "CALENDAR_DAYS",
    "CHANNEL_ROUTES",
    "CONFIG",
    "CONVERSATIONS",
    "INBOX",
    "JOBS",
    "KNOWLEDGE",
    "KNOWLEDGE_STATS",
    "KNOWLEDGE_USAGE",
    "LEADS",
    "LLM_USAGE",
    "OPTOUTS",
    "OUTBOX",
    "PLAYBOOKS",
    "PROVIDER_IDS",
    "SEND_COUNTERS",
    "STATUS_EVENTS",
    "messages_collection",
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
SEND_COUNTERS = "send_counters"
OPTOUTS = "optouts"
LLM_USAGE = "llm_usage"

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


def messages_collection(conversation_id: str) -> str:
    """The sub-collection holding one conversation's messages."""
    return f"{CONVERSATIONS}/{conversation_id}/messages"
