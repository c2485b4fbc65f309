"""A feature: one capability of the service, as one Litestar plugin.

A :class:`Feature` brings everything its capability needs: its routes, the objects its handlers
receive through dependency injection (``Provide``), its job kinds (registered on the worker when
the runtime is built, so ``leadwarm worker`` runs them without any web server), and its background
tasks (started and stopped with the worker). ``app/main.py`` lists the features; nothing else wires
a capability in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin
from litestar.types import ControllerRouterHandler

from app.jobs.queue import Job

if TYPE_CHECKING:
    from app.composition import Runtime

__all__ = ["BackgroundTask", "Feature", "JobKind", "provide"]

T = TypeVar("T")

BackgroundTask = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
"""A coroutine function that runs until the event is set."""


@dataclass(frozen=True, slots=True)
class JobKind:
    """The handler of one job kind, and what to do when a job of that kind goes to the dead letter."""

    handler: Callable[[Job], Awaitable[None]]
    on_dead: Callable[[Job], Awaitable[None]] | None = None


def provide(value: T) -> Provide:
    """A dependency that always gives ``value`` (a process-wide service)."""

    def _value() -> T:
        return value

    return Provide(_value, use_cache=True, sync_to_thread=False)


class Feature(InitPlugin):
    """Base of every feature plugin; subclasses override what they bring."""

    route_handlers: ClassVar[Sequence[ControllerRouterHandler]] = ()

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def dependencies(self) -> Mapping[str, Provide]:
        """Objects handlers may declare as parameters, by parameter name."""
        return {}

    def job_kinds(self) -> Mapping[str, JobKind]:
        """Job kinds this feature runs (registered on the worker by :meth:`Runtime.build`)."""
        return {}

    def background_tasks(self) -> Sequence[BackgroundTask]:
        """Tasks started with the worker and stopped with it."""
        return ()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Register the routes and dependencies (Litestar calls this once per app)."""
        app_config.route_handlers.extend(self.route_handlers)
        app_config.dependencies.update(self.dependencies())
        return app_config

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def feature_dependencies(*pairs: tuple[str, Any]) -> dict[str, Provide]:
    """``{name: provide(value)}`` for each ``(name, value)``."""
    return {name: provide(value) for name, value in pairs}


__all__ += ["feature_dependencies"]
