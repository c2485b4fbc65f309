"""Document ids built from several parts."""

from __future__ import annotations

__all__ = ["compound_id"]


def compound_id(*parts: str) -> str:
    """``parts`` joined by ``:``, with ``/`` escaped as ``%2F`` (Firestore ids cannot hold a slash).

    Example: ``compound_id("whatsapp", "wamid.X/1") == "whatsapp:wamid.X%2F1"``. Used for every
    id derived from a provider's or a contact's identifiers (dedupe keys, job ids, indexes).
    """
    return ":".join(parts).replace("/", "%2F")
