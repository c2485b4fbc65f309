"""The Litestar application: the runtime's features, each a plugin (see :mod:`app.features`).

``create_app()`` builds the runtime from the environment; tests pass their own. Startup runs
:func:`app.tenancy.bootstrap.bootstrap` (default tenant, demo content, admin key) and starts the
worker with every feature's background tasks.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from app.composition import Runtime
from app.core.logs import configure_logging, get_logger
from app.core.settings import Settings
from app.messaging.webhooks.front_door import install_front_door
from app.ops.heap import freeze_startup_heap
from app.tenancy.audit import AdminAuditMiddleware
from app.tenancy.bootstrap import bootstrap

__all__ = ["create_app"]

log = get_logger("leadwarm.app")


def create_app(
    *,
    runtime: Runtime | None = None,
    settings: Settings | None = None,
    start_worker: bool = True,
    freeze_heap: bool | None = None,
) -> Litestar:
    """Build the app. ``runtime`` defaults to one built from ``settings`` (default: the env).
    ``freeze_heap`` (default: when the runtime is built here, as ``leadwarm serve`` does) freezes
    the objects alive once started out of the garbage collector's reach
    (:func:`app.ops.heap.freeze_startup_heap`)."""
    freeze = runtime is None if freeze_heap is None else freeze_heap
    settings = runtime.settings if runtime is not None else (settings or Settings())
    if runtime is None:
        configure_logging(level=settings.log_level, fmt=settings.log_format)
    rt = runtime or Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        result = await bootstrap(rt)
        if result.generated_key:
            print(
                f"\n  LeadWarm admin API key for tenant '{result.tenant_id}' (shown once, also in"
                f" {result.key_file}):\n\n    {result.generated_key}\n",
                file=sys.stderr,
                flush=True,
            )
        if start_worker:
            await rt.start()
        if freeze:
            freeze_startup_heap()
        log.info("app.started", tenant=result.tenant_id, store=settings.store, channels=rt.channels.names())
        try:
            yield
        finally:
            await rt.stop()

    app = Litestar(
        plugins=list(rt.features),
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="LeadWarm", version="0.1.0", path="/schema"),
        # logging is configure_logging's: Litestar's default config would replace the root
        # logger's handler, and every library's lines (httpx, uvicorn) would leave our format
        logging_config=None,
        debug=False,
    )
    # provider webhooks answered before Litestar's router, with the same middleware guarantees
    # (app.messaging.webhooks.front_door); the admin audit only audits /api/v1/ writes
    install_front_door(app, inert=(AdminAuditMiddleware,))
    return app
