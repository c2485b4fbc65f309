"""The CRM feature: the ``crm_sync`` job kind, the triggers on every committed turn, the CRM sync
API and the inbound CRM webhooks (:mod:`app.crm.routes`)."""

from __future__ import annotations

from collections.abc import Mapping

from litestar.di import Provide

from app.composition import Runtime
from app.core.features import Feature, JobKind, feature_dependencies
from app.crm.routes import ROUTES
from app.crm.sync import KIND, CrmSync

__all__ = ["CrmFeature"]


class CrmFeature(Feature):
    """Provides ``crm`` (:class:`app.crm.sync.CrmSync`); runs ``crm_sync`` jobs; hooks the
    conversation worker's commit so that trigger events enqueue a sync in the same transaction."""

    route_handlers = ROUTES

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.sync = CrmSync(runtime)
        runtime.conversations.commit_hooks.append(self.sync.on_commit)

    def dependencies(self) -> Mapping[str, Provide]:
        return feature_dependencies(("crm", self.sync))

    def job_kinds(self) -> Mapping[str, JobKind]:
        return {KIND: JobKind(self.sync.handle)}
