"""The booking feature: ``book`` steps on the tenant's calendar, the ``booking`` and ``reminder``
job kinds, and the bookings API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from litestar.di import Provide

from app.booking import webhooks
from app.booking.routes import ROUTES
from app.booking.service import SETTINGS_REF, BookingService
from app.core.features import Feature, JobKind, feature_dependencies

if TYPE_CHECKING:
    from app.composition import Runtime

__all__ = ["BookingFeature"]


class BookingFeature(Feature):
    """Provides ``bookings``; gives the conversation worker its calendar port."""

    route_handlers = (*ROUTES, *webhooks.ROUTES)

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.service = BookingService(runtime)
        runtime.conversations.calendar_port = self.service.port
        runtime.conversations.turn_refs.append(SETTINGS_REF)  # read with each turn's first read

    def dependencies(self) -> Mapping[str, Provide]:
        return feature_dependencies(("bookings", self.service))

    def job_kinds(self) -> Mapping[str, JobKind]:
        return {
            "booking": JobKind(self.service.handle_booking),
            "reminder": JobKind(self.service.handle_reminder),
        }
