"""The audit trail: who did what, when (collection ``audit``, per tenant).

Every admin action through the API, every handoff transition and every rejected API key (kept
under :data:`app.store.SYSTEM_TENANT`, since the tenant is unknown) is one record and one log line
(``audit`` event). Records never hold a secret: an API key is named by the first 12 hex digits of
its SHA-256 (:func:`key_ref`). Times are floats, seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from pydantic import Field

from app.core.logs import get_logger
from app.core.records import Record
from app.store import Order, Store, Transaction
from app.store import collections as col
from app.tenancy.directory import TenantDirectory, hash_api_key
from kernel.clock import Clock

__all__ = ["AdminAuditMiddleware", "AuditLog", "AuditRecord", "key_ref"]

log = get_logger("leadwarm.audit")

AUDIT = col.AUDIT
#: Orders records made in the same instant by this process (ids sort by time, then this).
_SEQ = itertools.count()
#: Most records one read returns.
MAX_LIST = 500


def key_ref(key: str) -> str:
    """How an API key is named in the audit trail: ``key:`` + 12 hex digits of its SHA-256."""
    return "key:" + hash_api_key(key)[:12]


class AuditRecord(Record):
    """One audited action. ``actor``: ``key:<ref>`` (an admin key), a person's name given to the
    API (``marie``), ``lead`` or ``system``; ``action``: dotted (``settings.updated``,
    ``handoff.requested``, ``api_key.rejected``); ``target``: what it acted on."""

    id: str
    at: float
    actor: str
    action: str
    target: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class AuditLog:
    """Writes and reads audit records."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def __repr__(self) -> str:
        return "AuditLog()"

    def new(
        self,
        action: str,
        *,
        actor: str,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """A record for now, not yet stored (see :meth:`write`)."""
        now = self.clock.now()
        return AuditRecord(
            id=f"{now:017.6f}-{next(_SEQ):09d}-{uuid.uuid4().hex[:6]}",
            at=now,
            actor=actor,
            action=action,
            target=target,
            detail=detail or {},
        )

    def write(self, tx: Transaction, record: AuditRecord) -> None:
        """Store ``record`` in ``tx`` (with the change it audits) and log it."""
        tx.set(AUDIT, record.id, record.to_doc())
        log.info(
            "audit",
            tenant=tx.tenant_id,
            action=record.action,
            actor=record.actor,
            target=record.target,
            detail=record.detail,
        )

    async def record(
        self,
        tenant_id: str,
        action: str,
        *,
        actor: str,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """Store one record and log it (``audit`` at INFO, the same fields)."""
        record = self.new(action, actor=actor, target=target, detail=detail)
        await self.store.set(tenant_id, AUDIT, record.id, record.to_doc())
        log.info("audit", tenant=tenant_id, action=action, actor=actor, target=target, detail=record.detail)
        return record

    async def recent(
        self, tenant_id: str, *, limit: int = 100, action: str | None = None
    ) -> list[AuditRecord]:
        """The newest records first (at most ``limit``, capped at 500), optionally of one
        ``action`` (or an action prefix ending in ``.``: ``handoff.``)."""
        docs = await self.store.query(
            tenant_id, AUDIT, order_by=[Order("id", descending=True)], limit=min(max(limit, 1), MAX_LIST)
        )
        records = [AuditRecord.from_doc(d.data) for d in docs]
        if action:
            records = [
                r
                for r in records
                if r.action == action or (action.endswith(".") and r.action.startswith(action))
            ]
        return records


#: Admin writes whose handlers write a richer record of their own (not audited twice).
SELF_AUDITED = ("/api/v1/settings", "/api/v1/playbooks", "/api/v1/playbook-routes", "/api/v1/handoff/")
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AdminAuditMiddleware(ASGIMiddleware):
    """Audits every successful admin write (``POST/PUT/PATCH/DELETE /api/v1/...`` answered 2xx)
    as ``api.<method>`` on its path, by the key that made it, under the key's tenant; the handlers
    listed in :data:`SELF_AUDITED` write their own record instead."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, tenants: TenantDirectory, audit: AuditLog) -> None:
        self.tenants = tenants
        self.audit = audit

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        path, method = str(scope.get("path", "")), str(scope.get("method", ""))
        if method not in _WRITES or not path.startswith("/api/v1/") or path.startswith(SELF_AUDITED):
            await next_app(scope, receive, send)
            return
        status: list[int] = []

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        await next_app(scope, receive, capture)
        if not status or not 200 <= status[0] < 300:
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        _, _, key = headers.get("authorization", "").partition(" ")
        tenant_id = await self.tenants.tenant_for_key(key.strip()) if key.strip() else None
        if tenant_id is not None:
            await self.audit.record(
                tenant_id,
                f"api.{method.lower()}",
                actor=key_ref(key.strip()),
                target=path,
                detail={"status": status[0]},
            )
