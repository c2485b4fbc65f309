"""Audit events the app adds to the credential layer's trail (same collection, same shape:
:class:`crm_sync.audit.AuditEvent`): admin-key use on the integrations API, failed connections,
enable / disable, OAuth app removal, tenant creation. Each is also one log line, without secrets.

The credential layer's :meth:`AuditEvent.new` accepts only its own kinds; these are built here
with the same time-sortable ids.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Final

from crm_sync.audit import AuditEvent
from crm_sync.repository import ConnectionRepository

__all__ = ["APP_AUDIT_KINDS", "record"]

#: Kinds the app records (besides :data:`crm_sync.audit.AUDIT_KINDS`).
APP_AUDIT_KINDS: Final = frozenset(
    {"admin_api", "connect_failed", "enable", "disable", "oauth_app_removed", "tenant_created"}
)


async def record(
    repository: ConnectionRepository,
    tenant_id: str,
    kind: str,
    *,
    actor: str = "system",
    connection_id: str | None = None,
    provider: str | None = None,
    detail: dict[str, Any] | None = None,
    at: float | None = None,
) -> AuditEvent:
    """Append one event to the tenant's trail and log it. ``detail`` holds small facts, never a
    secret. Raises ``ValueError`` for a kind outside :data:`APP_AUDIT_KINDS`."""
    if kind not in APP_AUDIT_KINDS:
        raise ValueError(f"unknown app audit kind {kind!r}")
    when = time.time() if at is None else at
    event = AuditEvent(
        id=f"{int(when * 1000):013d}-{secrets.token_hex(4)}",
        tenant_id=tenant_id,
        kind=kind,
        at=when,
        connection_id=connection_id,
        provider=provider,
        actor=actor,
        detail=dict(detail or {}),
    )
    await repository.append_audit(event)  # stored, and logged by the repository
    return event
