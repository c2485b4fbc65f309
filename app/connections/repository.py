"""The credential layer's repository over the storage port
(:class:`crm_sync.repository.ConnectionRepository`).

Collections, per tenant: ``connections`` (one document per connection, secrets sealed),
``oauth_apps`` (doc id = provider), ``connection_leases`` (doc id = connection id: the refresh
lease, ``{"owner", "until"}``), ``connection_audit``. OAuth states live in ``SYSTEM_TENANT``'s
``oauth_states`` (doc id = SHA-256 of the state value), since the callback learns the tenant from
the state. Leases and state consumption run in store transactions, so they are atomic across
processes on both backends.

Queries: ``id > after`` ordered by ``id`` (single-field), audit ordered by ``at`` and, for one
connection, ``connection_id == x`` ordered by ``at`` (a composite index on Firestore).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.core.logs import get_logger
from app.store import SYSTEM_TENANT, ConflictError, Order, Store, Transaction, where
from crm_sync.audit import AuditEvent
from crm_sync.models import Connection, OAuthApp, OAuthState
from crm_sync.repository import SealedKind

_log = get_logger("leadwarm.audit")
#: Audit kinds logged at warning level.
_WARN_KINDS = frozenset({"refresh_failed", "needs_reauth", "revoke_failed", "connect_failed", "key_rotation"})

__all__ = ["StoreConnectionRepository"]

CONNECTIONS = "connections"
OAUTH_APPS = "oauth_apps"
LEASES = "connection_leases"
AUDIT = "connection_audit"
STATES = "oauth_states"
_COLLECTION: dict[str, str] = {"connection": CONNECTIONS, "oauth_app": OAUTH_APPS}


class StoreConnectionRepository:
    """:class:`crm_sync.repository.ConnectionRepository` over an :class:`app.store.Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # connections -----------------------------------------------------------------------------
    async def get_connection(self, tenant_id: str, connection_id: str) -> Connection | None:
        """See the Protocol."""
        doc = await self.store.get(tenant_id, CONNECTIONS, connection_id)
        return Connection.from_doc(tenant_id, doc) if doc else None

    async def save_connection(self, connection: Connection) -> Connection:
        """See the Protocol."""

        async def tx_fn(tx: Transaction) -> Connection:
            current = await tx.get(CONNECTIONS, connection.id)
            version = int(current.get("version") or 0) if current else 0
            stored = connection.replace(version=max(version, connection.version) + 1)
            tx.set(CONNECTIONS, connection.id, stored.to_doc())
            return stored

        return await self.store.run_transaction(connection.tenant_id, tx_fn)

    async def update_connection(
        self, tenant_id: str, connection_id: str, fn: Callable[[Connection], Connection | None]
    ) -> Connection | None:
        """See the Protocol."""

        async def tx_fn(tx: Transaction) -> Connection | None:
            doc = await tx.get(CONNECTIONS, connection_id)
            if doc is None:
                return None
            current = Connection.from_doc(tenant_id, doc)
            changed = fn(current)
            if changed is None:
                return current
            stored = changed.replace(version=current.version + 1)
            tx.set(CONNECTIONS, connection_id, stored.to_doc())
            return stored

        return await self.store.run_transaction(tenant_id, tx_fn)

    async def delete_connection(self, tenant_id: str, connection_id: str) -> None:
        """See the Protocol."""
        await self.store.delete(tenant_id, CONNECTIONS, connection_id)
        await self.store.delete(tenant_id, LEASES, connection_id)

    async def list_connections(
        self, tenant_id: str, *, after: str | None = None, limit: int = 100
    ) -> list[Connection]:
        """See the Protocol."""
        docs = await self._page(tenant_id, CONNECTIONS, after, limit)
        return [Connection.from_doc(tenant_id, d.data) for d in docs]

    async def list_tenants(self) -> list[str]:
        """See the Protocol."""
        return await self.store.list_tenants()

    async def _page(self, tenant_id: str, collection: str, after: str | None, limit: int) -> list[Any]:
        filters = [where("id", ">", after)] if after is not None else []
        return await self.store.query(
            tenant_id, collection, filters=filters, order_by=[Order("id")], limit=max(1, min(limit, 1000))
        )

    # sealed records --------------------------------------------------------------------------
    async def list_sealed_ids(
        self, tenant_id: str, kind: SealedKind, *, after: str | None = None, limit: int = 100
    ) -> list[str]:
        """See the Protocol."""
        return [d.id for d in await self._page(tenant_id, _COLLECTION[kind], after, limit)]

    async def get_secrets(self, tenant_id: str, kind: SealedKind, record_id: str) -> dict[str, str] | None:
        """See the Protocol."""
        doc = await self.store.get(tenant_id, _COLLECTION[kind], record_id)
        return dict(doc.get("secrets") or {}) if doc is not None else None

    async def update_secrets(
        self,
        tenant_id: str,
        kind: SealedKind,
        record_id: str,
        fn: Callable[[dict[str, str]], dict[str, str] | None],
    ) -> bool:
        """See the Protocol."""
        collection = _COLLECTION[kind]

        async def tx_fn(tx: Transaction) -> bool:
            doc = await tx.get(collection, record_id)
            if doc is None:
                return False
            new = fn(dict(doc.get("secrets") or {}))
            if new is None:
                return False
            doc["secrets"] = new
            if kind == "connection":
                doc["version"] = int(doc.get("version") or 0) + 1
            tx.set(collection, record_id, doc)
            return True

        return await self.store.run_transaction(tenant_id, tx_fn)

    # OAuth apps --------------------------------------------------------------------------------
    async def get_oauth_app(self, tenant_id: str, provider: str) -> OAuthApp | None:
        """See the Protocol."""
        doc = await self.store.get(tenant_id, OAUTH_APPS, provider)
        return OAuthApp.from_doc(tenant_id, doc) if doc else None

    async def save_oauth_app(self, app: OAuthApp) -> None:
        """See the Protocol."""
        await self.store.set(app.tenant_id, OAUTH_APPS, app.provider, app.to_doc())

    async def delete_oauth_app(self, tenant_id: str, provider: str) -> None:
        """See the Protocol."""
        await self.store.delete(tenant_id, OAUTH_APPS, provider)

    # OAuth states ------------------------------------------------------------------------------
    async def create_state(self, state: OAuthState) -> None:
        """See the Protocol."""

        async def tx_fn(tx: Transaction) -> None:
            tx.create(STATES, state.key, state.to_doc())

        await self.store.run_transaction(SYSTEM_TENANT, tx_fn)

    async def consume_state(self, key: str, *, now: float) -> OAuthState | None:
        """See the Protocol."""

        async def tx_fn(tx: Transaction) -> OAuthState | None:
            doc = await tx.get(STATES, key)
            if doc is None:
                return None
            before = OAuthState.from_doc(doc)
            if before.used_at is None:
                doc["used_at"] = now
                doc["secrets"] = {}  # the verifier is needed once: keep it no longer than that
                tx.set(STATES, key, doc)
            return before

        return await self.store.run_transaction(SYSTEM_TENANT, tx_fn)

    async def peek_state(self, key: str) -> OAuthState | None:
        """The pending authorisation stored under ``key`` (SHA-256 hex of the state value), read
        without consuming it (the callback uses it to audit a failure in the right tenant)."""
        doc = await self.store.get(SYSTEM_TENANT, STATES, key)
        return OAuthState.from_doc(doc) if doc else None

    async def purge_states(self, *, before: float, limit: int = 500) -> int:
        """See the Protocol."""
        docs = await self.store.query(
            SYSTEM_TENANT, STATES, filters=[where("expires_at", "<", before)], limit=max(1, min(limit, 1000))
        )
        for d in docs:
            await self.store.delete(SYSTEM_TENANT, STATES, d.id)
        return len(docs)

    # leases --------------------------------------------------------------------------------------
    async def acquire_lease(
        self, tenant_id: str, connection_id: str, *, owner: str, ttl_s: float, now: float
    ) -> bool:
        """See the Protocol."""

        async def tx_fn(tx: Transaction) -> bool:
            doc = await tx.get(LEASES, connection_id)
            if doc and doc.get("owner") != owner and float(doc.get("until") or 0) > now:
                return False
            tx.set(LEASES, connection_id, {"owner": owner, "until": now + ttl_s, "taken_at": now})
            return True

        try:
            return await self.store.run_transaction(tenant_id, tx_fn)
        except ConflictError:  # heavy contention: not taken this time, the caller polls again
            return False

    async def release_lease(self, tenant_id: str, connection_id: str, *, owner: str) -> None:
        """See the Protocol."""

        async def tx_fn(tx: Transaction) -> None:
            doc = await tx.get(LEASES, connection_id)
            if doc and doc.get("owner") == owner:
                tx.delete(LEASES, connection_id)

        await self.store.run_transaction(tenant_id, tx_fn)

    # audit -----------------------------------------------------------------------------------------
    async def append_audit(self, event: AuditEvent) -> None:
        """See the Protocol. Every event is also one log line (``audit.<kind>``; failures at
        warning level), with the event's small facts and never a secret."""
        await self.store.set(event.tenant_id, AUDIT, event.id, event.to_doc())
        emit = _log.warning if event.kind in _WARN_KINDS else _log.info
        emit(
            f"audit.{event.kind}",
            tenant=event.tenant_id,
            actor=event.actor,
            connection_id=event.connection_id,
            provider=event.provider,
            detail=event.detail,
        )

    async def list_audit(
        self, tenant_id: str, *, connection_id: str | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        """See the Protocol."""
        filters = [where("connection_id", "==", connection_id)] if connection_id else []
        docs = await self.store.query(
            tenant_id,
            AUDIT,
            filters=filters,
            order_by=[Order("at", descending=True)],
            limit=max(1, min(limit, 1000)),
        )
        return [AuditEvent.from_doc(tenant_id, d.data) for d in docs]
