"""The handoff feature: a person takes a conversation over (see :mod:`app.handoff.service`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from litestar.di import Provide

from app.core.features import Feature, JobKind, feature_dependencies
from app.handoff.routes import ROUTES
from app.handoff.service import HandoffService

if TYPE_CHECKING:
    from app.composition import Runtime

__all__ = ["HandoffFeature"]


class HandoffFeature(Feature):
    """Provides ``handoff``; hooks every conversation turn; runs ``handoff`` jobs."""

    route_handlers = ROUTES

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.service = HandoffService(
            store=runtime.store,
            clock=runtime.clock,
            jobs=runtime.jobs,
            tenants=runtime.tenants,
            playbooks=runtime.playbooks,
            channels=runtime.channels,
            conversations=runtime.conversations,
            egress=runtime.egress,
            public_base_url=runtime.settings.public_base_url,
        )
        runtime.conversations.turn_hooks.append(self.service.on_turn)

    def dependencies(self) -> Mapping[str, Provide]:
        return feature_dependencies(("handoff", self.service))

    def job_kinds(self) -> Mapping[str, JobKind]:
        return {"handoff": JobKind(self.service.handle_job)}
