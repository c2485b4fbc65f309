"""The storage the credential layer needs, as a Protocol (``crm_sync`` never imports ``app``).

The app implements it over its store (``app/connections/repository.py``). Every method is scoped
to one tenant except the OAuth states, which live where the callback can find them before it
knows the tenant. Methods that must be atomic say so; the implementation runs them in one store
transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol, runtime_checkable

from crm_sync.audit import AuditEvent
from crm_sync.models import Connection, OAuthApp, OAuthState

__all__ = ["ConnectionRepository", "SealedKind"]

SealedKind = Literal["connection", "oauth_app"]


@runtime_checkable
class ConnectionRepository(Protocol):
    """Connections, OAuth app registrations, OAuth states, refresh leases and the audit trail."""

    # connections -----------------------------------------------------------------------------
    async def get_connection(self, tenant_id: str, connection_id: str) -> Connection | None:
        """The connection, or ``None``."""
        ...

    async def save_connection(self, connection: Connection) -> Connection:
        """Write the connection whole (create or replace); returns it with ``version`` + 1."""
        ...

    async def update_connection(
        self, tenant_id: str, connection_id: str, fn: Callable[[Connection], Connection | None]
    ) -> Connection | None:
        """Atomically read the connection, apply ``fn`` and write its result (``version`` + 1);
        ``fn`` returning ``None`` writes nothing. Returns the stored connection after the call, or
        ``None`` when it does not exist. ``fn`` may run more than once (transaction retries)."""
        ...

    async def delete_connection(self, tenant_id: str, connection_id: str) -> None:
        """Delete the connection and its lease (no error when absent)."""
        ...

    async def list_connections(
        self, tenant_id: str, *, after: str | None = None, limit: int = 100
    ) -> list[Connection]:
        """The tenant's connections ordered by id, those with an id above ``after``, at most ``limit``."""
        ...

    async def list_tenants(self) -> list[str]:
        """Every tenant that may hold connections or app registrations."""
        ...

    # sealed records (rotation) -----------------------------------------------------------------
    async def list_sealed_ids(
        self, tenant_id: str, kind: SealedKind, *, after: str | None = None, limit: int = 100
    ) -> list[str]:
        """Ids of the tenant's records of ``kind`` holding secrets, ordered, above ``after``."""
        ...

    async def get_secrets(self, tenant_id: str, kind: SealedKind, record_id: str) -> dict[str, str] | None:
        """The record's sealed secrets (field -> vault text), or ``None`` when it does not exist."""
        ...

    async def update_secrets(
        self,
        tenant_id: str,
        kind: SealedKind,
        record_id: str,
        fn: Callable[[dict[str, str]], dict[str, str] | None],
    ) -> bool:
        """Atomically replace the record's sealed secrets with ``fn(current)``; ``None`` leaves
        them. Returns whether something was written. Exceptions from ``fn`` roll back and propagate."""
        ...

    # OAuth app registrations -------------------------------------------------------------------
    async def get_oauth_app(self, tenant_id: str, provider: str) -> OAuthApp | None:
        """The tenant's own OAuth app for ``provider``, or ``None``."""
        ...

    async def save_oauth_app(self, app: OAuthApp) -> None:
        """Create or replace the tenant's OAuth app for its provider."""
        ...

    async def delete_oauth_app(self, tenant_id: str, provider: str) -> None:
        """Remove the registration (no error when absent)."""
        ...

    # OAuth states ------------------------------------------------------------------------------
    async def create_state(self, state: OAuthState) -> None:
        """Store a pending authorisation under ``state.key`` (fails if the key exists)."""
        ...

    async def consume_state(self, key: str, *, now: float) -> OAuthState | None:
        """Atomically read the state and mark it used at ``now``. Returns it as it was *before*
        (so ``used_at`` set means it had been used already: a replay), or ``None`` when unknown."""
        ...

    async def purge_states(self, *, before: float, limit: int = 500) -> int:
        """Delete states that expired before ``before``; returns how many."""
        ...

    # refresh leases ------------------------------------------------------------------------------
    async def acquire_lease(
        self, tenant_id: str, connection_id: str, *, owner: str, ttl_s: float, now: float
    ) -> bool:
        """Atomically take the connection's refresh lease for ``ttl_s`` seconds when it is free,
        expired, or already ``owner``'s; returns whether ``owner`` holds it now."""
        ...

    async def release_lease(self, tenant_id: str, connection_id: str, *, owner: str) -> None:
        """Free the lease if ``owner`` holds it."""
        ...

    # audit -----------------------------------------------------------------------------------------
    async def append_audit(self, event: AuditEvent) -> None:
        """Record one audit event."""
        ...

    async def list_audit(
        self, tenant_id: str, *, connection_id: str | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        """The tenant's latest audit events (newest first), optionally for one connection."""
        ...
