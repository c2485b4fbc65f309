"""The connections feature: the credential vault, OAuth connections and the integrations API.

It builds the connection services once per runtime (:func:`app.connections.config.build_services`,
on first use, so processes that never touch a connection never read the key), and provides:

* ``connections``: the :class:`~app.connections.services.ConnectionServices`;
* ``connections_config``: the :class:`~app.connections.config.ConnectionConfig` (redirects, result
  page, link key);
* ``sync_handlers``: the :class:`~app.connections.sync.SyncRegistry` the CRM sync registers on;
* ``admin``: the :class:`~app.connections.admin.AdminCaller` of an integrations API request.

At start (the app's lifespan) it runs :meth:`ConnectionServices.startup_check`: when
``ENCRYPTION_KEY`` cannot decrypt what is stored, the service refuses to start with the records
named. A background task (started with the worker) runs the same check first, stopping the
runtime's worker when it fails, then purges expired OAuth states every :data:`PURGE_INTERVAL_S`
seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Final

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide

from app.connections import oauth_routes, routes
from app.connections.admin import admin_caller
from app.connections.config import ConnectionConfig, build_services
from app.connections.services import ConnectionServices
from app.connections.sync import SyncRegistry
from app.core.features import BackgroundTask, Feature
from app.core.logs import get_logger
from app.messaging.directory import TenantChannelConfig
from app.messaging.tenant_channels import ConnectionChannels
from crm_sync.vault import VaultKeyError

if TYPE_CHECKING:
    from app.composition import Runtime

__all__ = ["PURGE_INTERVAL_S", "ConnectionsFeature", "StartupRefusedError", "connections_feature"]

log = get_logger("leadwarm.connections")

#: Seconds between purges of expired OAuth states.
PURGE_INTERVAL_S: Final = 300.0


class StartupRefusedError(RuntimeError):
    """The service must not start: the vault key cannot read what is stored (the message says
    which records and what to set; never a key)."""


class ConnectionsFeature(Feature):
    """Provides ``connections``, ``connections_config``, ``sync_handlers`` and ``admin``."""

    route_handlers = (*oauth_routes.ROUTES, *routes.ROUTES)

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.sync = SyncRegistry()
        self._services: ConnectionServices | None = None
        self._config: ConnectionConfig | None = None
        self._checked: int | None = None
        self._check_lock = asyncio.Lock()
        # Each tenant's own channels come from its connections (built on first use, in the loop
        # that serves: the services hold an HTTP client bound to it).
        runtime.channels.use_credentials(_LazyChannels(self))

    # the services, built once -----------------------------------------------------------------
    def _build(self) -> tuple[ConnectionServices, ConnectionConfig]:
        if self._services is None or self._config is None:
            self._services, self._config = build_services(self.runtime.settings, self.runtime.store)
            # The rest of the runtime reaches the credential layer through it: authorised clients
            # for adapters, and each tenant's own channels (WhatsApp, Twilio, mailbox).
            if self.runtime.connections is None:  # a test (or an embedder) may have set its own
                self.runtime.connections = self._services
        return self._services, self._config

    @property
    def services(self) -> ConnectionServices:
        """The runtime's connection services (built on first use). Raises ``KeyConfigError``
        for a malformed ``ENCRYPTION_KEY``, ``CatalogError`` for a bad ``INTEGRATIONS_CATALOG``."""
        return self._build()[0]

    @property
    def config(self) -> ConnectionConfig:
        """The redirect allowlist, result page and link key the services were built with."""
        return self._build()[1]

    async def startup_check(self) -> int:
        """Decrypt what is stored (once per runtime: the web app's start and the worker's tasks
        share the outcome); returns the records read. Raises :class:`StartupRefusedError`."""
        async with self._check_lock:
            if self._checked is None:
                try:
                    self._checked = await self.services.startup_check()
                except VaultKeyError as exc:
                    log.error("vault.startup_refused", reason=str(exc))
                    raise StartupRefusedError(f"LeadWarm cannot start: {exc}") from None
                log.info(
                    "vault.checked", records=self._checked, key_id=self.services.vault.keyring.current_id
                )
            return self._checked

    async def aclose(self) -> None:
        """Close the services' HTTP client (when they were built)."""
        if self._services is not None:
            await self._services.aclose()

    # the plugin ---------------------------------------------------------------------------------
    def dependencies(self) -> Mapping[str, Provide]:
        return {
            "connections": Provide(lambda: self.services, use_cache=True, sync_to_thread=False),
            "connections_config": Provide(lambda: self.config, use_cache=True, sync_to_thread=False),
            "sync_handlers": Provide(lambda: self.sync, use_cache=True, sync_to_thread=False),
            "admin": Provide(admin_caller),
        }

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config = super().on_app_init(app_config)
        app_config.lifespan.append(self._lifespan)
        return app_config

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        await self.startup_check()
        try:
            yield
        finally:
            await self.aclose()

    def background_tasks(self) -> Sequence[BackgroundTask]:
        return (self._purge_states,)

    async def _purge_states(self, stop: asyncio.Event) -> None:
        try:
            await self.startup_check()
        except StartupRefusedError:
            # a worker without the web app (``leadwarm worker``) must not run on a key that
            # cannot read the store either: stop the runtime's worker and tasks
            stop.set()
            return
        while not stop.is_set():
            try:
                purged = await self.services.repository.purge_states(before=self.runtime.clock.now())
                if purged:
                    log.info("oauth.states_purged", count=purged)
            except Exception as exc:  # a failed purge must not end the task; the next one retries
                log.warning("oauth.states_purge_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=PURGE_INTERVAL_S)


class _LazyChannels:
    """The tenants' channel credentials, read through the feature's services once they exist."""

    def __init__(self, feature: ConnectionsFeature) -> None:
        self.feature = feature
        self._channels: ConnectionChannels | None = None

    async def channel_config(self, tenant_id: str, channel: str) -> TenantChannelConfig | None:
        if self._channels is None:
            services = self.feature.services
            self._channels = ConnectionChannels(
                repository=services.repository, vault=services.vault, settings=self.feature.runtime.settings
            )
        return await self._channels.channel_config(tenant_id, channel)


def connections_feature(runtime: Runtime) -> ConnectionsFeature:
    """The runtime's connections feature (for other features: ``.services``, ``.sync``).
    Raises ``LookupError`` when the runtime was built without it."""
    for feature in runtime.features:
        if isinstance(feature, ConnectionsFeature):
            return feature
    raise LookupError("the runtime has no ConnectionsFeature")
