"""A tenant's stored settings (document ``config/tenant``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from app.core.records import Record

__all__ = ["TenantProfile"]


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
    """Answer to HELP/AIDE per language; a default naming the tenant is used otherwise."""
    llm_monthly_budget_usd: float | None = None
    """This tenant's monthly model budget (USD); None uses LLM_MONTHLY_BUDGET_USD; 0 never calls
    the model (the offline interpreter answers)."""
    # --- human handoff (app/handoff)
    handoff_emails: list[str] = Field(default_factory=list)
    """Addresses told at once when a conversation is handed to a person."""
    handoff_webhook_url: str | None = None
    """Receives a signed POST for every handoff transition (see :mod:`app.handoff.notify`)."""
    handoff_response_minutes: int = 30
    """If no person answers a handoff within this time, the bot apologises and offers a call-back."""
    office_hours_start: str = "09:00"
    office_hours_end: str = "18:00"
    office_days: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    """ISO weekdays (1 = Monday) the team works, in ``timezone``."""
    # --- conversations
    burst_window_seconds: dict[str, float] = Field(default_factory=lambda: {"webchat": 0.0})
    """Per channel: messages from one lead this close together get one reply (seconds); a channel
    not listed uses BURST_WINDOW_SECONDS. The web chat needs none: its page says when the visitor
    is typing (see :func:`app.webchat.sessions.still_typing`)."""
    # --- branding (web chat, notifications)
    brand_color: str = "#1f6feb"
    """``#rrggbb``: header and the visitor's bubbles."""
    brand_text_color: str = "#ffffff"
    """``#rrggbb``: text over ``brand_color``."""
    logo_url: str | None = None
    greeting: dict[str, str] = Field(default_factory=dict)
    """Per language: what the web chat shows on open before the playbook's first message."""
    webchat_allowed_origins: list[str] = Field(default_factory=list)
    """Sites (``https://www.example.com``) allowed to embed the web chat widget."""
    created_at: float = 0.0
