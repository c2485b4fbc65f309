"""The CRM feature: the ``crm_sync`` job kind, the triggers on every committed turn, the CRM sync
API and the inbound CRM webhooks (:mod:`app.crm.routes`)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from litestar.di import Provide

from app.composition import Runtime
from app.connections.plugin import connections_feature
from app.core.features import Feature, JobKind, feature_dependencies
from app.crm.routes import ROUTES
from app.crm.sync import KIND, CrmSync, replay_dead_letters
from crm_sync.crm import ADAPTERS
from crm_sync.models import Connection

__all__ = ["CrmFeature"]


class CrmFeature(Feature):
    """Provides ``crm`` (:class:`app.crm.sync.CrmSync`); runs ``crm_sync`` jobs; hooks the
    conversation worker's commit so that trigger events enqueue a sync in the same transaction."""

    route_handlers = ROUTES

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.sync = CrmSync(runtime)
        runtime.conversations.commit_hooks.append(self.sync.on_commit)
        # POST /api/v1/integrations/{id}/sync on a CRM connection replays its dead letters.
        with contextlib.suppress(LookupError):
            registry = connections_feature(runtime).sync
            for provider in ADAPTERS:
                registry.register(provider, self._replay)

    async def _replay(self, connection: Connection, *, actor: str) -> Mapping[str, Any]:
        replayed = await replay_dead_letters(self.runtime, connection.tenant_id, connection.id)
        return {"replayed": replayed, "actor": actor}

    def dependencies(self) -> Mapping[str, Provide]:
        return feature_dependencies(("crm", self.sync))

    def job_kinds(self) -> Mapping[str, JobKind]:
        return {KIND: JobKind(self.sync.handle)}
