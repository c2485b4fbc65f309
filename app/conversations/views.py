"""Read-only views of records for templates and API answers."""

from __future__ import annotations

from typing import Any

from app.conversations.records import Lead

__all__ = ["lead_view"]


def lead_view(lead: Lead) -> dict[str, Any]:
    """The lead fields playbook templates may read: id, name, first_name, phone, email, language."""
    first = (lead.name or "").split(" ")[0] or None
    return {
        "id": lead.id,
        "name": lead.name,
        "first_name": first,
        "phone": lead.phone,
        "email": lead.email,
        "language": lead.language,
    }
