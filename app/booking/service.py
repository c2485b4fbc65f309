"""Booking in the worker: the ``booking`` and ``reminder`` job kinds.

A ``book`` step's :class:`~playbooks.runtime.BookingRequested` is enqueued with the turn that
decided it (key ``{conversation_id}~{request_id}``). :meth:`BookingService.handle_booking` books the
slot on the tenant's calendar, records the meeting in ``bookings/{conversation_id}:{request_id}``
(so a retried job never books twice once the record is written), then runs the conversation's
engine with the :class:`~playbooks.runtime.BookingEvent` outcome: ``booked`` (confirmed on the
channel, an ICS invitation by email when the lead's address is known, reminders 24 h and 1 h
before), ``taken`` (the slot went meanwhile) or ``failed`` (the calendar could not be reached):
the lead is told and offered other slots; nothing is half-made, since a provider either books or
raises. Reminders are outbox messages with trigger ``timer``, so the outbound policy applies
quiet hours and opt-outs to them.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from app.booking.calendar import (
    SETTINGS,
    CalendarSettings,
    CalendarSlotSource,
    build_provider,
    load_settings,
    parse_settings,
)
from app.conversations.lookup import CONVERSATIONS
from app.conversations.planning import Outgoing, PlannedJob, TurnPlan, append_outbound
from app.conversations.records import Conversation, Lead
from app.core.logs import get_logger
from app.jobs.queue import Job
from app.store import Store, where
from app.store import collections as col
from app.store.ids import compound_id
from crm_sync.base import Attendee, Booking, CalendarProvider, Slot, SlotTakenError
from crm_sync.calendars import reschedule
from crm_sync.calendars.ics import invitation, invitation_uid
from kernel.errors import LeadWarmError
from playbooks.runtime import BookingCancelRequested, BookingEvent, BookingRequested, EngineResult, SlotSource
from playbooks.slots import render_datetime

if TYPE_CHECKING:
    from app.composition import Runtime

__all__ = ["REMINDERS_S", "REMINDER_NOTICE_S", "SETTINGS_REF", "BookingService", "booking_record_id"]

log = get_logger("leadwarm.booking")

#: When reminders go out, seconds before the meeting's start.
REMINDERS_S: tuple[tuple[str, int], ...] = (("24h", 86400), ("1h", 3600))
#: A reminder not out this many seconds before the start (quiet hours, the daily cap, a late
#: worker deferred it) is dropped: "your meeting is at 9:00" at 8:58 helps nobody.
REMINDER_NOTICE_S = 600

_TEXTS: dict[str, dict[str, str]] = {
    "invite": {
        "en": "Your meeting invitation for {when} is attached.",
        "fr": "Vous trouverez ci-joint l'invitation à notre rendez-vous du {when}.",
    },
    "reminder": {
        "en": "Reminder: your meeting with us is on {when}. Reply here if you need to move it.",
        "fr": "Rappel : votre rendez-vous avec nous est le {when}. Répondez ici si vous devez le déplacer.",
    },
}


#: The tenant's calendar settings document, read with every inbound turn's first read (the
#: conversation service's ``turn_refs``) and handed to :meth:`BookingService.port` as ``known``.
SETTINGS_REF = (SETTINGS, "calendar")


def booking_record_id(conversation_id: str, request_id: str) -> str:
    """Id of the ``bookings`` record of one booking request."""
    return compound_id(conversation_id, request_id)


def _text(key: str, language: str, **values: str) -> str:
    texts = _TEXTS[key]
    return (texts.get(language) or texts["en"]).format(**values)


def _booking_doc(booking: Booking) -> dict[str, Any]:
    return {
        "id": booking.id,
        "provider": booking.provider,
        "start": booking.start,
        "end": booking.end,
        "calendar_id": booking.calendar_id,
        "status": booking.status,
        "url": booking.url,
    }


def _as_booking(data: Mapping[str, Any]) -> Booking:
    return Booking(
        id=str(data["id"]),
        provider=str(data.get("provider") or "builtin"),
        start=float(data["start"]),
        end=float(data["end"]),
        calendar_id=data.get("calendar_id"),
        status=str(data.get("status") or "confirmed"),
    )


class BookingService:
    """Executes booking actions for every tenant (see the module docstring)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.store: Store = runtime.store
        self.clock = runtime.clock
        self._builtin: dict[str, tuple[CalendarSettings, CalendarProvider]] = {}
        """tenant -> the settings its built-in calendar was last built from, and that calendar."""

    # ------------------------------------------------------------------ calendars
    async def settings(
        self, tenant_id: str, *, known: Mapping[tuple[str, str], dict[str, Any] | None] | None = None
    ) -> CalendarSettings:
        """The tenant's calendar settings (from ``known``, documents the caller has just read,
        when it holds them: see :data:`SETTINGS_REF`)."""
        profile = await self.runtime.tenants.profile(tenant_id)
        if known is not None and SETTINGS_REF in known:
            return parse_settings(known[SETTINGS_REF] or {}, default_timezone=profile.timezone)
        return await load_settings(self.store, tenant_id, default_timezone=profile.timezone)

    async def provider(
        self, tenant_id: str, *, known: Mapping[tuple[str, str], dict[str, Any] | None] | None = None
    ) -> tuple[CalendarProvider, CalendarSettings]:
        """The tenant's calendar provider and settings; raises :class:`LeadWarmError` subclasses
        for bad settings or a missing connection. The settings are read every time (or taken from
        ``known``, read by the caller); the built-in calendar is built again only when they differ
        from those it was built from."""
        settings = await self.settings(tenant_id, known=known)
        built = self._builtin.get(tenant_id)
        if built is not None and built[0] == settings:
            return built[1], settings
        provider = await build_provider(
            self.store, tenant_id, settings, clock=self.clock, connections=self.runtime.connections
        )
        if settings.provider == "builtin":
            # Built from the settings alone (schedules parsed, no connection, no state of its
            # own: the bookings are in the store): kept while the settings read stay equal, so a
            # turn no longer rebuilds the tenant's schedules from the document.
            self._builtin[tenant_id] = (settings, provider)
        return provider, settings

    async def port(
        self, tenant_id: str, *, known: Mapping[tuple[str, str], dict[str, Any] | None] | None = None
    ) -> SlotSource | None:
        """The engine's calendar port for the tenant; ``None`` (logged) when it cannot be built.
        ``known``: documents the turn has just read (the settings, :data:`SETTINGS_REF`, which the
        conversation service reads with its first read: ``turn_refs``)."""
        try:
            provider, _ = await self.provider(tenant_id, known=known)
        except LeadWarmError as exc:
            log.warning("booking.no_calendar", tenant=tenant_id, error=type(exc).__name__)
            return None
        return CalendarSlotSource(provider)

    # ------------------------------------------------------------------ jobs
    async def handle_booking(self, job: Job) -> None:
        """Run one booking action (``book`` or ``cancel_booking`` from a conversation, ``change``
        from a provider's webhook)."""
        action = dict(job.payload["action"])
        if action.get("type") == "change":
            await self.apply_change(job.tenant_id, action)
            return
        conversation_id = str(job.payload["conversation_id"])
        if action.get("type") == "cancel_booking":
            await self._cancel(job.tenant_id, BookingCancelRequested.model_validate(action))
            return
        await self._book(job.tenant_id, conversation_id, BookingRequested.model_validate(action))

    async def _book(self, tenant_id: str, conversation_id: str, request: BookingRequested) -> None:
        record_id = booking_record_id(conversation_id, request.request_id)
        record = await self.store.get(tenant_id, col.BOOKINGS, record_id)
        conv_doc = await self.store.get(tenant_id, CONVERSATIONS, conversation_id)
        if conv_doc is None:
            return
        conv = Conversation.from_doc(conv_doc)
        lead = await self.runtime.conversations.locator.get_lead(tenant_id, conv.lead_id)
        profile = await self.runtime.tenants.profile(tenant_id)
        timezone = lead.timezone or profile.timezone
        language = lead.language or profile.default_language
        outcome: str
        booking: Booking | None = None
        reason = ""
        settings: CalendarSettings | None = None
        if record is not None and record.get("status") == "confirmed":
            outcome, booking = "booked", _as_booking(record["booking"])
            settings = await self.settings(tenant_id)
        else:
            given = lead.slots.get("email")  # an address the lead gave in the conversation
            email = lead.email or (given if isinstance(given, str) and "@" in given else None)
            attendee = Attendee(
                name=lead.name, email=email, phone=lead.phone, timezone=timezone, language=language
            )
            slot = Slot(start=request.slot.start, end=request.slot.end, calendar_id=request.slot.calendar_id)
            try:
                provider, settings = await self.provider(tenant_id)
                if request.reschedule_of:
                    booking = await reschedule(
                        provider, _as_booking(request.reschedule_of), slot, attendee, title=request.title
                    )
                else:
                    booking = await provider.book(slot, attendee, title=request.title)
                outcome = "booked"
            except SlotTakenError:
                outcome, reason = "taken", "slot taken"
            except LeadWarmError as exc:
                outcome, reason = "failed", type(exc).__name__
            await self._record(tenant_id, record_id, conv, lead, request, booking, outcome, reason)
            log.info("booking.done", tenant=tenant_id, conversation=conversation_id, outcome=outcome)
        event = BookingEvent(
            outcome=outcome,  # type: ignore[arg-type]
            request_id=request.request_id,
            booking=_booking_doc(booking) if booking is not None else None,
            reason=reason,
        )

        def amend(plan: TurnPlan, result: EngineResult) -> None:
            if booking is None or settings is None:
                return
            if not any(a.type == "meeting_booked" for a in result.actions):
                return  # stale answer: the conversation moved on
            self._after_booked(plan, booking, request, settings, record_id, timezone, language)

        await self.runtime.conversations.run_event(tenant_id, conversation_id, event, amend=amend)

    async def _record(
        self,
        tenant_id: str,
        record_id: str,
        conv: Conversation,
        lead: Lead,
        request: BookingRequested,
        booking: Booking | None,
        outcome: str,
        reason: str,
    ) -> None:
        now = self.clock.now()
        doc: dict[str, Any] = {
            "id": record_id,
            "conversation_id": conv.id,
            "lead_id": lead.id,
            "request_id": request.request_id,
            "status": "confirmed" if outcome == "booked" else outcome,
            "reason": reason,
            "title": request.title,
            "start": request.slot.start if booking is None else booking.start,
            "end": request.slot.end if booking is None else booking.end,
            "provider": None if booking is None else booking.provider,
            "provider_key": None if booking is None else compound_id(booking.provider, booking.id),
            "booking": None if booking is None else _booking_doc(booking),
            "reschedule_of": request.reschedule_of,
            "created_at": now,
            "updated_at": now,
        }
        await self.store.set(tenant_id, col.BOOKINGS, record_id, doc)
        if booking is not None and request.reschedule_of:
            await self._mark(tenant_id, request.reschedule_of, "rescheduled")

    async def _mark(self, tenant_id: str, booking: Mapping[str, Any], status: str) -> None:
        key = compound_id(str(booking.get("provider") or "builtin"), str(booking["id"]))
        for doc in await self.store.query(
            tenant_id, col.BOOKINGS, filters=[where("provider_key", "==", key)]
        ):
            if doc.data.get("status") == "confirmed":
                await self.store.set(
                    tenant_id,
                    col.BOOKINGS,
                    doc.id,
                    {"status": status, "updated_at": self.clock.now()},
                    merge=True,
                )

    def _after_booked(
        self,
        plan: TurnPlan,
        booking: Booking,
        request: BookingRequested,
        settings: CalendarSettings,
        record_id: str,
        timezone: str,
        language: str,
    ) -> None:
        """Add the invitation (email, when the lead has an address) and the reminder jobs."""
        now = self.clock.now()
        lead = plan.lead
        when = render_datetime(_iso(booking.start), language=language, timezone=timezone, now=now)
        if lead.email:
            ics = invitation(
                uid=invitation_uid(booking),
                start=booking.start,
                end=booking.end,
                timezone=timezone,
                summary=request.title,
                organizer_email=settings.organizer_email or "calendar@leadwarm.invalid",
                organizer_name=settings.organizer_name,
                attendee_email=lead.email,
                attendee_name=lead.name or "",
                now=now,
                sequence=1 if request.reschedule_of else 0,
            )
            append_outbound(
                plan,
                Outgoing(
                    text=_text("invite", language, when=when),
                    purpose="step",
                    channel="email",
                    attachments=[
                        {
                            "filename": "invite.ics",
                            "mime_type": "text/calendar",
                            "content_b64": base64.b64encode(ics).decode(),
                            "params": {"method": "REQUEST"},
                        }
                    ],
                ),
                now,
            )
        for label, before in REMINDERS_S:
            due = booking.start - before
            if due <= now:
                continue
            plan.jobs.append(
                PlannedJob(
                    "reminder",
                    f"{record_id}~{label}",
                    due,
                    {"conversation_id": plan.conversation.id, "record_id": record_id, "start": booking.start},
                )
            )

    async def handle_reminder(self, job: Job) -> None:
        """Send a meeting reminder, unless the meeting was cancelled or moved since."""
        record = await self.store.get(job.tenant_id, col.BOOKINGS, str(job.payload["record_id"]))
        if record is None or record.get("status") != "confirmed":
            return
        if abs(float(record["start"]) - float(job.payload["start"])) > 1:
            return
        profile = await self.runtime.tenants.profile(job.tenant_id)
        start = float(record["start"])

        def change(plan: TurnPlan) -> bool:
            lead = plan.lead
            language = lead.language or profile.default_language
            when = render_datetime(
                _iso(start),
                language=language,
                timezone=lead.timezone or profile.timezone,
                now=self.clock.now(),
            )
            append_outbound(
                plan,
                Outgoing(
                    text=_text("reminder", language, when=when),
                    purpose="followup",
                    not_after=start - REMINDER_NOTICE_S,
                ),
                self.clock.now(),
            )
            return True

        await self.runtime.conversations.amend(job.tenant_id, str(job.payload["conversation_id"]), change)

    async def apply_change(self, tenant_id: str, change: Mapping[str, Any]) -> None:
        """A meeting cancelled or moved in the provider (``{"provider", "kind", "booking_id",
        "start", "end", "reason"}``, see :class:`~crm_sync.calendars.common.CalendarChange`):
        update its record, tell the conversation (the lead hears of it, their stage follows),
        and move the reminders. A meeting LeadWarm did not book is ignored."""
        key = compound_id(str(change["provider"]), str(change["booking_id"]))
        docs = await self.store.query(tenant_id, col.BOOKINGS, filters=[where("provider_key", "==", key)])
        records = [d for d in docs if d.data.get("status") == "confirmed"]
        if not records:
            log.info("booking.change_ignored", tenant=tenant_id, provider=change["provider"])
            return
        record = records[0]
        conversation_id = str(record.data["conversation_id"])
        kind = str(change["kind"])
        now = self.clock.now()
        if kind == "cancelled":
            await self.store.set(
                tenant_id,
                col.BOOKINGS,
                record.id,
                {"status": "cancelled", "reason": str(change.get("reason") or "")[:500], "updated_at": now},
                merge=True,
            )
            event = BookingEvent(
                outcome="cancelled",
                booking={"id": change["booking_id"]},
                reason=str(change.get("reason") or ""),
            )
            await self.runtime.conversations.run_event(tenant_id, conversation_id, event, trigger="timer")
            return
        if kind != "rescheduled" or change.get("start") is None or change.get("end") is None:
            return  # Calendly reports the new time as its own "booked" event
        start, end = float(change["start"]), float(change["end"])
        booking = {**(record.data.get("booking") or {}), "start": start, "end": end}
        await self.store.set(
            tenant_id,
            col.BOOKINGS,
            record.id,
            {"start": start, "end": end, "booking": booking, "updated_at": now},
            merge=True,
        )
        event = BookingEvent(
            outcome="moved", booking={"id": change["booking_id"], "start": start, "end": end}
        )

        def amend(plan: TurnPlan, result: EngineResult) -> None:
            for label, before in REMINDERS_S:
                if start - before > now:
                    plan.jobs.append(
                        PlannedJob(
                            "reminder",
                            f"{record.id}~{label}",
                            start - before,
                            {"conversation_id": conversation_id, "record_id": record.id, "start": start},
                        )
                    )

        await self.runtime.conversations.run_event(
            tenant_id, conversation_id, event, amend=amend, trigger="timer"
        )

    async def _cancel(self, tenant_id: str, request: BookingCancelRequested) -> None:
        provider, _ = await self.provider(tenant_id)
        await provider.cancel(_as_booking(request.booking), reason=request.reason)
        await self._mark(tenant_id, request.booking, "cancelled")


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()
