"""Audit events of the credential layer: connect, refresh, refresh failure, disconnect, key rotation,
test. Stored through :class:`crm_sync.repository.ConnectionRepository` (collection
``connection_audit`` of the tenant). An event's ``detail`` never holds a secret."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["AUDIT_KINDS", "AuditEvent"]

#: Kinds of event the layer records.
AUDIT_KINDS: Final = frozenset(
    {
        "connect",
        "reconnect",
        "refresh",
        "refresh_failed",
        "needs_reauth",
        "disconnect",
        "revoke_failed",
        "key_rotation",
        "test",
        "credentials_updated",
        "app_registered",
    }
)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit record. ``at`` is epoch seconds (UTC); ``actor`` who caused it (``"system"``,
    an admin key id...); ``detail`` small JSON facts (status, error code, counts), never secrets."""

    id: str
    tenant_id: str
    kind: str
    at: float
    connection_id: str | None = None
    provider: str | None = None
    actor: str = "system"
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(
        cls,
        tenant_id: str,
        kind: str,
        *,
        connection_id: str | None = None,
        provider: str | None = None,
        actor: str = "system",
        detail: dict[str, Any] | None = None,
        at: float | None = None,
    ) -> AuditEvent:
        """A new event with a time-sortable id. Raises ``ValueError`` for an unknown ``kind``."""
        if kind not in AUDIT_KINDS:
            raise ValueError(f"unknown audit kind {kind!r}")
        when = time.time() if at is None else at
        return cls(
            id=f"{int(when * 1000):013d}-{secrets.token_hex(4)}",
            tenant_id=tenant_id,
            kind=kind,
            at=when,
            connection_id=connection_id,
            provider=provider,
            actor=actor,
            detail=dict(detail or {}),
        )

    def to_doc(self) -> dict[str, Any]:
        """The stored JSON document."""
        return {
            "id": self.id,
            "kind": self.kind,
            "at": self.at,
            "connection_id": self.connection_id,
            "provider": self.provider,
            "actor": self.actor,
            "detail": self.detail,
        }

    @classmethod
    def from_doc(cls, tenant_id: str, doc: dict[str, Any]) -> AuditEvent:
        """Rebuild from :meth:`to_doc`'s output."""
        return cls(
            id=str(doc["id"]),
            tenant_id=tenant_id,
            kind=str(doc["kind"]),
            at=float(doc["at"]),
            connection_id=doc.get("connection_id"),
            provider=doc.get("provider"),
            actor=str(doc.get("actor") or "system"),
            detail=dict(doc.get("detail") or {}),
        )
