"""The ``sync`` seam of the integrations API: ``POST /api/v1/integrations/{id}/sync`` runs the
handler registered for the connection's provider (the CRM sync feature registers its own when it
lands); with none, it answers that there is nothing to sync yet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from crm_sync.models import Connection

__all__ = ["SyncHandler", "SyncRegistry"]


class SyncHandler(Protocol):
    """Starts a sync of one connection (typically: enqueue a job) and returns small JSON facts
    for the API's 202 answer (``{"job_id": ...}``). Raises ``crm_sync.base.IntegrationError``
    when the sync cannot start."""

    async def __call__(self, connection: Connection, *, actor: str) -> Mapping[str, Any]:
        """See the class docstring."""
        ...


class SyncRegistry:
    """Sync handlers by provider name (one per provider)."""

    def __init__(self) -> None:
        self._handlers: dict[str, SyncHandler] = {}

    def register(self, provider: str, handler: SyncHandler) -> None:
        """Use ``handler`` for ``provider``'s connections (replaces an earlier one)."""
        self._handlers[provider] = handler

    def get(self, provider: str) -> SyncHandler | None:
        """The provider's handler, or ``None``."""
        return self._handlers.get(provider)

    def providers(self) -> list[str]:
        """Providers with a handler, sorted."""
        return sorted(self._handlers)
