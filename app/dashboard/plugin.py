"""The dashboard feature: the pages at ``/app``, the API they read, and session authentication.

It provides ``people`` (:class:`app.dashboard.people.PeopleDirectory`) and replaces the ``tenant_id``
dependency with :func:`app.dashboard.auth.tenant_from_key_or_session`, so every ``/api/v1`` route
accepts either the admin key (machines) or a dashboard session (people, CSRF-checked). It must
come after the tenancy feature in :data:`app.features.FEATURES`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide

from app.core.features import Feature, JobKind, feature_dependencies
from app.dashboard import api_admin, api_inbox, api_routes, pages, pages_admin, pages_inbox, pages_playbooks
from app.dashboard.api_admin import admin_from_key_or_session, build_importer
from app.dashboard.api_routes import warm_analytics
from app.dashboard.auth import tenant_from_key_or_session
from app.dashboard.imports import JOB_KIND
from app.dashboard.people import PeopleDirectory

if TYPE_CHECKING:
    from app.composition import Runtime

__all__ = ["DashboardFeature"]


class DashboardFeature(Feature):
    """Provides ``people``; ``tenant_id`` becomes "admin key or session"."""

    route_handlers = (
        *api_routes.ROUTES,
        *pages.ROUTES,
        *api_inbox.ROUTES,  # inbox actions, the lead page
        *pages_inbox.ROUTES,
        *pages_playbooks.ROUTES,  # playbook list, editor, simulator
        *api_admin.ROUTES,  # dash-admin: CSV import, funnel chart
        *pages_admin.ROUTES,  # dash-admin: import, integrations, settings pages
    )

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.people = PeopleDirectory(runtime.store, runtime.clock)
        self.lead_imports = build_importer(runtime)
        self.warmup: asyncio.Task[int] | None = None
        """The start-up analytics warm-up (:func:`app.dashboard.api_routes.warm_analytics`)."""

    def dependencies(self) -> Mapping[str, Provide]:
        return feature_dependencies(("people", self.people), ("lead_imports", self.lead_imports))

    def job_kinds(self) -> Mapping[str, JobKind]:
        return {JOB_KIND: JobKind(self.lead_imports.handle_job)}

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config = super().on_app_init(app_config)
        app_config.dependencies["tenant_id"] = Provide(tenant_from_key_or_session)
        app_config.dependencies["admin"] = Provide(admin_from_key_or_session)  # integrations API
        # a lifespan entered after the app's own (which starts and stops the runtime), so it is
        # left before the store closes: Litestar's on_shutdown hooks run after every lifespan
        app_config.lifespan.append(self._warmup_lifespan)
        return app_config

    @contextlib.asynccontextmanager
    async def _warmup_lifespan(self, _app: Litestar) -> AsyncIterator[None]:
        """Warm the analytics caches in the background while the app serves (the first view of
        the page is then warm); cancelled at shutdown."""
        self.warmup = asyncio.get_running_loop().create_task(warm_analytics(self.runtime))
        try:
            yield
        finally:
            if not self.warmup.done():
                self.warmup.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self.warmup
