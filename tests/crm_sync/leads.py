"""Lead snapshots the adapter tests sync."""

from __future__ import annotations

from typing import Any

from crm_sync.base import LeadSnapshot

__all__ = ["qualified_lead"]


def qualified_lead(**overrides: Any) -> LeadSnapshot:
    """A qualified lead with every part a sync carries (contact fields, slots, score and reasons,
    summary, source, transcript link, tags); ``overrides`` replace fields."""
    values: dict[str, Any] = {
        "lead_id": "lead-0001",
        "tenant_id": "tenant-a",
        "name": "Jeanne Martin",
        "first_name": "Jeanne",
        "last_name": "Martin",
        "email": "jeanne.martin@example.fr",
        "phone": "+33612345678",
        "language": "fr",
        "stage": "qualified",
        "score": 82,
        "score_reasons": (
            {"points": 30, "reason": "Budget confirmed", "evidence": "about 5,000 EUR"},
            {"points": 25, "reason": "Decision maker"},
        ),
        "slots": {"budget": 5000, "timeline": "2026-01-15", "company": "Martin & Fils"},
        "summary": "Runs a 12-person bakery chain; wants a demo next week.",
        "source": {"channel": "whatsapp", "campaign": "spring-promo", "referral": {"ad_id": "120210"}},
        "transcript_url": "https://app.leadwarm.test/t/tenant-a/c/42",
        "tags": ("leadwarm", "qualified"),
    }
    values.update(overrides)
    return LeadSnapshot(**values)
