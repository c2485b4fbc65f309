"""Human handoff as a state machine (see :mod:`app.handoff.records` for the states).

- A turn that moves a conversation into ``handoff`` (a playbook ``handoff`` step, the lead asking
  for a person in their words, the model's ``wants_human`` intent, a playbook loop) gets, in the
  same transaction (a :class:`app.conversations.service.TurnHook`): a message telling the lead what
  happens next, in their language, with the tenant's office hours; the handoff record; a durable
  ``handoff`` job per notification (email, signed webhook) and the response-time timer.
- A person answers through :meth:`HandoffService.agent_message`: an outbox item with trigger
  ``agent`` goes through the same dispatcher and outbound policy as the bot's messages.
- :meth:`HandoffService.hand_back` resumes the playbook at a chosen step or where it paused.
- If nobody answers within ``handoff_response_minutes`` (counted from the next opening of office
  hours), the bot apologises and offers a call-back time; the tenant is reminded.

Every transition is an event on the conversation (``handoff.requested``, ``handoff.answered``,
``handoff.agent_message``, ``handoff.timed_out``, ``handoff.handed_back``, ``handoff.closed``) whose
``by`` says who did it. Notifications are jobs written with the transition: a crash loses none, and
a retried job skips what its handoff record says already went out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.authoring.repository import PlaybookRepository
from app.conversations.planning import TurnPlan, plan_bot_messages
from app.conversations.records import Conversation, ConversationEvent, Lead, Message, messages_collection
from app.conversations.service import ConversationService, TurnWrites
from app.core import i18n
from app.core.logs import get_logger
from app.core.record_words import HANDOFF_REASON_WORDS, REQUESTER_WORDS, STAGE_WORDS, record_word
from app.handoff.call_back import (
    call_back_lines,
    display_number,
    known_number,
    moment_words,
    next_notice,
    number_again,
    one_line,
    read_number,
)
from app.handoff.hours import OfficeHours, callback_time, describe_moment
from app.handoff.mail_labels import mail_label
from app.handoff.notify import NotificationError, WebhookSecrets, post_webhook, send_email
from app.handoff.records import NOTES_KEPT, Handoff, Requester
from app.jobs.queue import Job, JobQueue
from app.messaging.directory import ChannelDirectory
from app.store import Order, Store, Transaction
from app.store import collections as col
from app.tenancy.audit import AuditLog, AuditRecord
from app.tenancy.directory import TenantDirectory
from app.tenancy.records import TenantProfile
from kernel.clock import Clock
from kernel.errors import LeadWarmError
from playbooks import Playbook
from playbooks.runtime import CALL_BACK_REASON, HUMAN_REASON, EngineResult, ResumeEvent

__all__ = ["HandoffConflictError", "HandoffError", "HandoffNotFoundError", "HandoffService"]

log = get_logger("leadwarm.handoff")

HANDOFFS = col.HANDOFFS
#: Messages quoted in a notification (the newest).
_QUOTED_MESSAGES = 8
#: Notification targets of each transition.
_TARGETS: dict[str, tuple[str, ...]] = {
    "requested": ("email", "webhook"),
    "reminder": ("email", "webhook"),
    "answered": ("webhook",),
    "handed_back": ("webhook",),
    "closed": ("webhook",),
    "lead_message": ("webhook",),
    "call_back_when": ("email",),
}
_SUBJECTS = {
    "requested": {
        "en": "Handoff: {lead} wants to talk to a person",
        "fr": "Relais humain : {lead} souhaite parler à quelqu'un",
    },
    "call_back": {
        "en": "Call-back requested: {lead} asks to be called back",
        "fr": "Rappel demandé : {lead} souhaite être rappelé",
    },
    "call_back_when": {
        "en": "Call-back: when {lead} would like to be called",
        "fr": "Rappel demandé : quand {lead} souhaite être rappelé",
    },
    "reminder": {
        "en": "Reminder: {lead} is still waiting for a person",
        "fr": "Rappel : {lead} attend toujours une réponse",
    },
}


class HandoffError(LeadWarmError):
    """Base of the handoff errors."""


class HandoffNotFoundError(HandoffError):
    """No such conversation (or step) for this tenant."""


class HandoffConflictError(HandoffError):
    """The conversation is not in a state that allows the action (closed, not handed off)."""


def _event(now: float, type_: str, by: str, **detail: Any) -> ConversationEvent:
    return ConversationEvent(
        at=now, type=type_, detail={"by": by, **{k: v for k, v in detail.items() if v is not None}}
    )


def _append_events(conv: Conversation, *events: ConversationEvent) -> None:
    conv.events = (conv.events + list(events))[-Conversation.EVENTS_KEPT :]


def _audited(writes: _Writes, audit: AuditLog, conv_id: str, *events: ConversationEvent) -> None:
    """Each transition event is also an audit record, written in the same transaction."""
    for event in events:
        detail = {k: v for k, v in event.detail.items() if k != "by"}
        record = audit.new(
            event.type, actor=str(event.detail.get("by", "system")), target=conv_id, detail=detail
        )
        writes.audit.append((audit, record))


def _handed_back_now(before: Conversation, conv: Conversation) -> ConversationEvent | None:
    """The ``handoff.handed_back`` event this turn added (:meth:`HandoffService.hand_back` appends
    it last), if any."""
    last = conv.events[-1] if conv.events else None
    if last is None or last.type != "handoff.handed_back" or last in before.events[-5:]:
        return None
    return last


def _resume_step(playbook: Playbook, before: Conversation, step_id: Any) -> str | None:
    """Where the bot resumes on a handback that names no step: after the ``handoff`` step
    ``step_id``, else where it paused."""
    if step_id:
        return playbook.following(str(step_id))
    return before.current_step or playbook.steps[0].id


def _awaited_number(conv: Conversation) -> bool:
    """Whether the conversation's open handoff is a call-back still waiting for the lead's number
    (no person has written since it was asked for)."""
    for event in reversed(conv.events):
        if event.type == "handoff.requested":
            return bool(event.detail.get("call_back")) and not event.detail.get("phone")
        if event.type in ("handoff.number", "handoff.answered", "handoff.agent_message"):
            return False
    return False


def _asked_again(conv: Conversation) -> bool:
    """Whether the call-back waiting for the lead's number already asked for it a second time (a
    reply of theirs gave none): it is not asked a third."""
    for event in reversed(conv.events):
        if event.type == "handoff.number_missing":
            return True
        if event.type == "handoff.requested":
            return False
    return False


#: The e-mails with a time to call one call-back sends the team at most: a lead who names the
#: moment again in every message does not fill the team's inbox (the record keeps the latest).
WHEN_MAILS_MAX = 3


def _when_mails(conv: Conversation) -> int:
    """The replies naming a time to call since the conversation's latest handoff request (each
    one's ``handoff.number_missing`` event carries its ``when``)."""
    count = 0
    for event in reversed(conv.events):
        if event.type == "handoff.requested":
            break
        if event.type == "handoff.number_missing" and event.detail.get("when"):
            count += 1
    return count


def _job_key(conversation_id: str, seq: int, what: str) -> str:
    return f"{conversation_id}:{seq}:{what}"


@dataclass
class _Writes:
    """Reads then writes of one transition, inside someone's transaction. ``make`` turns the
    stored record (or ``None``) into the one to write (``None``: write nothing)."""

    jobs: JobQueue
    conversation_id: str
    make: Callable[[Handoff | None], Handoff | None]
    new_jobs: list[tuple[str, float, dict[str, Any]]] = field(default_factory=list)
    cancel_timeout: bool = False
    handoff: Handoff | None = None
    audit: list[tuple[AuditLog, AuditRecord]] = field(default_factory=list)
    _existing_jobs: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    _timeout_job: dict[str, Any] | None = None

    async def read(self, tx: Transaction) -> None:
        data = await tx.get(HANDOFFS, self.conversation_id)
        stored = Handoff.from_doc(data) if data else None
        self.handoff = self.make(stored)
        if self.handoff is None:
            return
        seq = self.handoff.seq
        for what, _, _ in self.new_jobs:
            key = _job_key(self.conversation_id, seq, what)
            self._existing_jobs[key] = await self.jobs.read(tx, "handoff", key)
        if self.cancel_timeout and stored is not None:  # the stored handoff's timer
            self._timeout_job = await self.jobs.read(
                tx, "handoff", _job_key(self.conversation_id, stored.seq, "timeout")
            )

    def write(self, tx: Transaction) -> None:
        for audit_log, record in self.audit:
            audit_log.write(tx, record)
        if self.handoff is None:
            return
        seq = self.handoff.seq
        tx.set(HANDOFFS, self.handoff.id, self.handoff.to_doc())
        for what, due_at, payload in self.new_jobs:
            key = _job_key(self.conversation_id, seq, what)
            self.jobs.write(
                tx,
                self._existing_jobs.get(key),
                kind="handoff",
                key=key,
                due_at=due_at,
                payload={**payload, "seq": seq, "conversation_id": self.conversation_id},
                due="exact",
            )
        if self._timeout_job is not None and self._timeout_job.get("status") == "pending":
            tx.delete(col.JOBS, str(self._timeout_job["id"]))


class HandoffService:
    """The handoff state machine; also the handler of ``handoff`` jobs."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        jobs: JobQueue,
        tenants: TenantDirectory,
        playbooks: PlaybookRepository,
        channels: ChannelDirectory,
        conversations: ConversationService,
        egress: httpx.AsyncClient,
        public_base_url: str = "",
    ) -> None:
        self.store = store
        self.clock = clock
        self.jobs = jobs
        self.tenants = tenants
        self.playbooks = playbooks
        self.channels = channels
        self.conversations = conversations
        self.secrets = WebhookSecrets(store, clock)
        self.audit = AuditLog(store, clock)
        self.public_base_url = public_base_url.rstrip("/")
        self.egress = egress

    def __repr__(self) -> str:
        return "HandoffService()"

    # ------------------------------------------------------------------ reading
    async def get(self, tenant_id: str, conversation_id: str) -> Handoff | None:
        """The conversation's current (or latest) handoff."""
        data = await self.store.get(tenant_id, HANDOFFS, conversation_id)
        return Handoff.from_doc(data) if data else None

    # ------------------------------------------------------------------ the turn hook
    async def on_turn(self, tenant_id: str, before: Conversation, plan: TurnPlan) -> TurnWrites | None:
        """:class:`app.conversations.service.TurnHook`: a turn entering or leaving ``handoff``."""
        conv = plan.conversation
        handed_back = _handed_back_now(before, conv) is not None
        if conv.status == "handoff" and (before.status != "handoff" or handed_back):
            # (a handback may resume straight into a playbook ``handoff`` step: a new handoff)
            return await self._entering(tenant_id, before, plan)
        if before.status == "handoff" and conv.status != "handoff":
            return await self._leaving(tenant_id, before, plan)
        if before.status == "handoff" and conv.status == "handoff":
            return await self._lead_wrote(tenant_id, plan)
        return None

    async def _entering(self, tenant_id: str, before: Conversation, plan: TurnPlan) -> _Writes:
        conv, lead = plan.conversation, plan.lead
        now = self.clock.now()
        profile = await self.tenants.profile(tenant_id)
        requested = next((e for e in reversed(conv.events) if e.type == "handoff"), None)
        detail = requested.detail if requested is not None else {}
        reason = str(detail.get("reason") or "handoff")
        step_id = detail.get("step_id")
        call_back = reason == CALL_BACK_REASON
        by: Requester = (
            "playbook" if step_id else ("lead" if reason in (HUMAN_REASON, CALL_BACK_REASON) else "bot")
        )
        playbook = await self.playbooks.get(tenant_id, conv.playbook_id, conv.playbook_version)
        resume_step = _resume_step(playbook, before, step_id)
        language = lead.language or profile.default_language
        hours = OfficeHours.of(profile)
        opening = hours.next_opening(now)
        said = "\n".join(m.text or "" for m in plan.messages if m.direction == "inbound")
        number = known_number(lead, playbook.lookups().slot_kinds) if call_back else None
        if call_back and number is None:  # "call me back on 06 12 34 56 78" with no phone question
            number = read_number(said, lead=lead, default_region=profile.default_region)
        when = moment_words(said) if call_back else None  # "rappelez-moi demain matin"
        if number is not None and not lead.phone:
            lead.phone = number  # given in the conversation: the number the team calls
        notice = next_notice(
            call_back=call_back,
            number=number,
            language=language,
            hours=hours,
            now=now,
            response_minutes=profile.handoff_response_minutes,
            region=profile.default_region,
        )
        plan_bot_messages(plan, [notice], now, purpose="handoff")
        due_at = (opening if opening is not None else now) + profile.handoff_response_minutes * 60.0
        requested_event = _event(
            now,
            "handoff.requested",
            by,
            reason=reason,
            step_id=step_id,
            resume_step=resume_step,
            call_back=call_back or None,
            phone=number,
        )
        _append_events(conv, requested_event)
        handoff = Handoff(
            id=conv.id,
            conversation_id=conv.id,
            lead_id=lead.id,
            channel=conv.channel,
            reason=reason,
            call_back=call_back,
            call_back_phone=number,
            call_back_when=when,
            requested_by=by,
            step_id=step_id,
            resume_step=resume_step,
            language=language,
            requested_at=now,
            due_at=due_at,
        )

        def make(stored: Handoff | None) -> Handoff:
            if stored is None:
                return handoff
            return handoff.model_copy(update={"seq": stored.seq + 1, "notified": stored.notified})

        writes = _Writes(self.jobs, conv.id, make, cancel_timeout=True)
        writes.new_jobs = [*self._notify_jobs(profile, "requested", now)]
        writes.new_jobs.append(("timeout", due_at, {"action": "timeout"}))
        _audited(writes, self.audit, conv.id, requested_event)
        log.info("handoff.requested", tenant=tenant_id, conversation=conv.id, by=by, reason=reason)
        return writes

    async def _leaving(self, tenant_id: str, before: Conversation, plan: TurnPlan) -> _Writes:
        conv = plan.conversation
        now = self.clock.now()
        back = _handed_back_now(before, conv)
        if back is not None:
            status, by, transition = "handed_back", str(back.detail.get("by", "agent")), back
        else:
            status, by = "closed", "lead" if conv.status == "closed" else "bot"
            transition = _event(now, "handoff.closed", by, status=conv.status)
            _append_events(conv, transition)
        note = back.detail.get("note") if back is not None else None

        def make(stored: Handoff | None) -> Handoff | None:
            if stored is None:
                return None
            update: dict[str, Any] = {"status": status}
            if back is not None:
                update |= {"handed_back_at": now, "handed_back_by": by, "note": note}
            return stored.model_copy(update=update)

        writes = _Writes(self.jobs, conv.id, make, cancel_timeout=True)
        writes.new_jobs = self._notify_jobs(await self.tenants.profile(tenant_id), status, now)
        _audited(writes, self.audit, conv.id, transition)
        return writes

    def _notify_jobs(
        self, profile: TenantProfile, event: str, now: float, *, ref: str = ""
    ) -> list[tuple[str, float, dict[str, Any]]]:
        """Notification jobs of ``event``; ``ref`` tells apart several events of one kind (the lead's
        messages)."""
        out = []
        for target in _TARGETS[event]:
            if (target == "email" and profile.handoff_emails) or (
                target == "webhook" and profile.handoff_webhook_url
            ):
                payload = {"action": "notify", "event": event, "target": target, "ref": ref}
                out.append((f"{event}:{target}" + (f":{ref}" if ref else ""), now, payload))
        return out

    async def _lead_wrote(self, tenant_id: str, plan: TurnPlan) -> _Writes | None:
        """The lead wrote while a person has the conversation: tell the tenant's webhook. A
        call-back waiting for the lead's number takes the number they give (into the lead's
        ``phone`` and the handoff record) and says when they will be called."""
        inbound = [m for m in plan.messages if m.direction == "inbound"]
        profile = await self.tenants.profile(tenant_id)
        if not inbound:
            return None
        conv, lead, now = plan.conversation, plan.lead, self.clock.now()
        number = None
        text = "\n".join(m.text or "" for m in inbound)
        if _awaited_number(conv):
            number = read_number(text, lead=lead, default_region=profile.default_region)
        if number is not None:
            if not lead.phone:
                lead.phone = number
            language = lead.language or profile.default_language
            notice = next_notice(
                call_back=True,
                number=number,
                language=language,
                hours=OfficeHours.of(profile),
                now=now,
                response_minutes=profile.handoff_response_minutes,
                region=profile.default_region,
            )
            plan_bot_messages(
                plan, [f"{i18n.text('handoff_number_noted', language)} {notice}"], now, purpose="handoff"
            )
            noted = _event(now, "handoff.number", "lead", phone=number)
            _append_events(conv, noted)

            def make(stored: Handoff | None) -> Handoff | None:
                return stored.model_copy(update={"call_back_phone": number}) if stored is not None else None

            writes = _Writes(self.jobs, conv.id, make)
            log.info("handoff.call_back_number", tenant=tenant_id, conversation=conv.id)
        elif _awaited_number(conv):
            writes = self._number_missing(plan, text, profile, now, ref=inbound[-1].id)
            log.info("handoff.call_back_number_missing", tenant=tenant_id, conversation=conv.id)
        elif profile.handoff_webhook_url:
            writes = _Writes(self.jobs, conv.id, lambda stored: stored)
        else:
            return None
        if profile.handoff_webhook_url:
            writes.new_jobs += self._notify_jobs(profile, "lead_message", now, ref=inbound[-1].id)
        return writes

    def _number_missing(
        self, plan: TurnPlan, text: str, profile: TenantProfile, now: float, *, ref: str
    ) -> _Writes:
        """The lead's reply (message ``ref``) to "which number?" gave none: asked again once,
        politely, in their language (:func:`app.handoff.call_back.number_again`), and their words
        kept on the handoff record for the person who calls (``call_back_notes``; a time to call in
        ``call_back_when``). A reply naming a time is e-mailed to the team at once (``call_back_when``),
        up to :data:`WHEN_MAILS_MAX` of them per call-back; later ones are kept on the record only."""
        conv, lead = plan.conversation, plan.lead
        language = lead.language or profile.default_language
        reply, when = number_again(text, language)
        if not _asked_again(conv):
            plan_bot_messages(plan, [reply], now, purpose="handoff")
        _append_events(conv, _event(now, "handoff.number_missing", "lead", when=when))
        words = text.strip()[:500]

        def make(stored: Handoff | None) -> Handoff | None:
            if stored is None:
                return None
            notes = [*stored.call_back_notes, words][-NOTES_KEPT:] if words else stored.call_back_notes
            return stored.model_copy(
                update={"call_back_notes": notes, "call_back_when": when or stored.call_back_when}
            )

        writes = _Writes(self.jobs, conv.id, make)
        if when is not None and _when_mails(conv) <= WHEN_MAILS_MAX:  # this reply's event counted
            writes.new_jobs = self._notify_jobs(profile, "call_back_when", now, ref=ref)
        return writes

    # ------------------------------------------------------------------ a person answers
    async def agent_message(
        self, tenant_id: str, conversation_id: str, *, text: str, author: str = "agent"
    ) -> Message:
        """Queue ``text`` from a person to the lead (trigger ``agent``: the outbound policy still
        applies). A conversation the bot was running is taken over (status ``handoff``). Raises
        :class:`HandoffNotFoundError`, :class:`HandoffConflictError` (closed conversation)."""
        now = self.clock.now()
        profile = await self.tenants.profile(tenant_id)

        async def fn(tx: Transaction) -> Message:
            data = await tx.get(col.CONVERSATIONS, conversation_id)
            if data is None:
                raise HandoffNotFoundError(f"no conversation {conversation_id!r}")
            conv = Conversation.from_doc(data)
            if conv.status == "closed":
                raise HandoffConflictError("the conversation is closed")
            lead_doc = await tx.get(col.LEADS, conv.lead_id)
            lead = Lead.from_doc(lead_doc or {"id": conv.lead_id, "tenant_id": tenant_id})
            stored = await tx.get(HANDOFFS, conv.id)
            handoff = Handoff.from_doc(stored) if stored else None
            dispatch_job = await self.jobs.read(tx, "dispatch", conv.id)
            plan = TurnPlan(conversation=conv, lead=lead, trigger="agent")
            events: list[ConversationEvent] = []
            taking_over = conv.status != "handoff" or handoff is None
            if taking_over:
                handoff = Handoff(
                    id=conv.id,
                    conversation_id=conv.id,
                    lead_id=lead.id,
                    channel=conv.channel,
                    seq=(handoff.seq + 1) if handoff else 1,
                    reason="a person took over",
                    requested_by="agent",
                    resume_step=conv.current_step,
                    language=lead.language or profile.default_language,
                    requested_at=now,
                )
                events.append(_event(now, "handoff.requested", author, reason=handoff.reason))
                conv.status = "handoff"
                conv.state = {**conv.state, "status": "handoff"}
            assert handoff is not None
            first_answer = handoff.answered_at is None
            final = handoff
            writes = _Writes(self.jobs, conv.id, lambda _stored: final, cancel_timeout=True)
            if first_answer:
                handoff.status, handoff.answered_at, handoff.answered_by = "answered", now, author
                events.append(_event(now, "handoff.answered", author, waited_s=now - handoff.requested_at))
                writes.new_jobs = self._notify_jobs(profile, "answered", now)
            await writes.read(tx)
            plan_bot_messages(plan, [text], now, purpose="agent")
            message = plan.messages[-1]
            message.sender = "agent"
            events.append(_event(now, "handoff.agent_message", author, message_id=message.id))
            _append_events(conv, *events)
            _audited(writes, self.audit, conv.id, *events)
            conv.updated_at = now
            conv.version += 1
            tx.set(col.CONVERSATIONS, conv.id, conv.to_doc())
            tx.set(messages_collection(conv.id), message.id, message.to_doc())
            for item in plan.outbox:
                tx.set(col.OUTBOX, item.id, item.to_doc())
            self.jobs.write(tx, dispatch_job, kind="dispatch", key=conv.id, due_at=now)
            writes.write(tx)
            return message

        message = await self.store.run_transaction(tenant_id, fn)
        self.jobs.notify()
        log.info("handoff.agent_message", tenant=tenant_id, conversation=conversation_id, by=author)
        return message

    # ------------------------------------------------------------------ a person takes over
    async def take_over(self, tenant_id: str, conversation_id: str, *, by: str = "agent") -> Handoff:
        """A person takes the conversation before writing anything: the bot stops answering it
        (status ``handoff``) and the handoff is ``answered`` by ``by``. Waiting handoffs stop their
        response-time timer; taking over a conversation a person already has changes nothing.
        Returns the handoff record. Raises :class:`HandoffNotFoundError`,
        :class:`HandoffConflictError` (closed conversation)."""
        now = self.clock.now()
        profile = await self.tenants.profile(tenant_id)

        async def fn(tx: Transaction) -> Handoff:
            data = await tx.get(col.CONVERSATIONS, conversation_id)
            if data is None:
                raise HandoffNotFoundError(f"no conversation {conversation_id!r}")
            conv = Conversation.from_doc(data)
            if conv.status == "closed":
                raise HandoffConflictError("the conversation is closed")
            stored = await tx.get(HANDOFFS, conv.id)
            handoff = Handoff.from_doc(stored) if stored else None
            if conv.status == "handoff" and handoff is not None and handoff.answered_at is not None:
                return handoff
            events: list[ConversationEvent] = []
            if conv.status != "handoff" or handoff is None:
                lead_doc = await tx.get(col.LEADS, conv.lead_id)
                language = (lead_doc or {}).get("language") or profile.default_language
                handoff = Handoff(
                    id=conv.id,
                    conversation_id=conv.id,
                    lead_id=conv.lead_id,
                    channel=conv.channel,
                    seq=(handoff.seq + 1) if handoff else 1,
                    reason="a person took over",
                    requested_by="agent",
                    resume_step=conv.current_step,
                    language=str(language),
                    requested_at=now,
                )
                events.append(_event(now, "handoff.requested", by, reason=handoff.reason))
                conv.status = "handoff"
                conv.state = {**conv.state, "status": "handoff"}
            handoff.status, handoff.answered_at, handoff.answered_by = "answered", now, by
            events.append(_event(now, "handoff.answered", by, waited_s=now - handoff.requested_at))
            final = handoff
            writes = _Writes(self.jobs, conv.id, lambda _stored: final, cancel_timeout=True)
            writes.new_jobs = self._notify_jobs(profile, "answered", now)
            await writes.read(tx)
            _append_events(conv, *events)
            _audited(writes, self.audit, conv.id, *events)
            conv.updated_at = now
            conv.version += 1
            tx.set(col.CONVERSATIONS, conv.id, conv.to_doc())
            writes.write(tx)
            return final

        handoff = await self.store.run_transaction(tenant_id, fn)
        self.jobs.notify()
        log.info("handoff.taken_over", tenant=tenant_id, conversation=conversation_id, by=by)
        return handoff

    # ------------------------------------------------------------------ handback
    async def hand_back(
        self,
        tenant_id: str,
        conversation_id: str,
        *,
        by: str = "agent",
        note: str | None = None,
        step_id: str | None = None,
    ) -> Conversation:
        """Give a handed-off conversation back to the bot, which runs from ``step_id`` (else where
        the handoff paused it). Raises :class:`HandoffNotFoundError` (no conversation, unknown
        step), :class:`HandoffConflictError` (not in handoff)."""
        data = await self.store.get(tenant_id, col.CONVERSATIONS, conversation_id)
        if data is None:
            raise HandoffNotFoundError(f"no conversation {conversation_id!r}")
        conv = Conversation.from_doc(data)
        if conv.status != "handoff":
            raise HandoffConflictError(f"the conversation is {conv.status}, not in handoff")
        playbook = await self.playbooks.get(tenant_id, conv.playbook_id, conv.playbook_version)
        if step_id is not None and playbook.step(step_id) is None:
            raise HandoffNotFoundError(f"no step {step_id!r} in playbook {playbook.id!r} v{playbook.version}")
        handoff = await self.get(tenant_id, conversation_id)
        resume = step_id if step_id is not None else (handoff.resume_step if handoff else conv.current_step)

        def amend(plan: TurnPlan, result: EngineResult) -> None:
            now = self.clock.now()
            _append_events(
                plan.conversation,
                _event(now, "handoff.handed_back", by, note=note, resume_step=resume),
            )

        committed = await self.conversations.run_event(
            tenant_id, conversation_id, ResumeEvent(step_id=resume), trigger="agent", amend=amend
        )
        if committed is None:
            raise HandoffNotFoundError(f"conversation {conversation_id!r} never started")
        self.jobs.notify()
        log.info("handoff.handed_back", tenant=tenant_id, conversation=conversation_id, by=by, step=resume)
        return committed

    # ------------------------------------------------------------------ jobs
    async def handle_job(self, job: Job) -> None:
        """Run a ``handoff`` job: ``notify`` (one event to one target) or ``timeout``."""
        action = job.payload.get("action")
        if action == "timeout":
            await self._timeout(job)
        elif action == "notify":
            await self._notify(job)
        else:
            log.warning("handoff.unknown_job", tenant=job.tenant_id, job=job.id)

    async def _timeout(self, job: Job) -> None:
        tenant_id = job.tenant_id
        conversation_id = str(job.payload.get("conversation_id"))
        seq = int(job.payload.get("seq", 0))
        now = self.clock.now()
        profile = await self.tenants.profile(tenant_id)
        hours = OfficeHours.of(profile)

        async def fn(tx: Transaction) -> bool:
            stored = await tx.get(HANDOFFS, conversation_id)
            handoff = Handoff.from_doc(stored) if stored else None
            if handoff is None or handoff.seq != seq or handoff.status != "open":
                return False  # answered, handed back, or superseded meanwhile
            data = await tx.get(col.CONVERSATIONS, conversation_id)
            if data is None:
                return False
            conv = Conversation.from_doc(data)
            if conv.status != "handoff":
                return False
            lead = Lead.from_doc(
                await tx.get(col.LEADS, conv.lead_id) or {"id": conv.lead_id, "tenant_id": ""}
            )
            dispatch_job = await self.jobs.read(tx, "dispatch", conv.id)
            current = handoff
            writes = _Writes(self.jobs, conv.id, lambda _stored: current)
            writes.new_jobs = self._notify_jobs(profile, "reminder", now)
            await writes.read(tx)
            language = lead.language or handoff.language
            callback = callback_time(hours, now)
            when = describe_moment(callback, hours, now, language) if callback is not None else "?"
            plan = TurnPlan(conversation=conv, lead=lead, trigger="timer")
            if handoff.call_back and handoff.call_back_phone:  # they asked for it: say when we will
                phone = display_number(handoff.call_back_phone, profile.default_region)
                apology = i18n.text("handoff_call_back_timeout", language, phone=phone, callback=when)
            else:
                apology = i18n.text("handoff_timeout", language, callback=when)
            plan_bot_messages(plan, [apology], now, purpose="handoff")
            handoff.status, handoff.timed_out_at = "timed_out", now
            timed_out = _event(now, "handoff.timed_out", "system", callback_at=callback)
            _append_events(conv, timed_out)
            _audited(writes, self.audit, conv.id, timed_out)
            conv.updated_at = now
            conv.version += 1
            tx.set(col.CONVERSATIONS, conv.id, conv.to_doc())
            for message in plan.messages:
                tx.set(messages_collection(conv.id), message.id, message.to_doc())
            for item in plan.outbox:
                tx.set(col.OUTBOX, item.id, item.to_doc())
            self.jobs.write(tx, dispatch_job, kind="dispatch", key=conv.id, due_at=now)
            writes.write(tx)
            return True

        if await self.store.run_transaction(tenant_id, fn):
            self.jobs.notify()
            log.info("handoff.timed_out", tenant=tenant_id, conversation=conversation_id)

    async def _notify(self, job: Job) -> None:
        tenant_id = job.tenant_id
        conversation_id = str(job.payload.get("conversation_id"))
        seq = int(job.payload.get("seq", 0))
        event, target = str(job.payload.get("event")), str(job.payload.get("target"))
        handoff = await self.get(tenant_id, conversation_id)
        data = await self.store.get(tenant_id, col.CONVERSATIONS, conversation_id)
        if handoff is None or data is None:
            return
        conv = Conversation.from_doc(data)
        lead = Lead.from_doc(
            await self.store.get(tenant_id, col.LEADS, conv.lead_id)
            or {"id": conv.lead_id, "tenant_id": tenant_id}
        )
        profile = await self.tenants.profile(tenant_id)
        ref = str(job.payload.get("ref") or "")
        event_id = f"{tenant_id}:{conversation_id}:{seq}:{event}" + (f":{ref}" if ref else "")
        if target == "email":
            for address in profile.handoff_emails:
                marker = f"{seq}:{event}{ref and ':' + ref}:email:{address}"
                if marker in handoff.notified:
                    continue
                subject, text = await self._email_text(tenant_id, profile, conv, lead, handoff, event)
                channel = await self.channels.resolve(tenant_id, "email")
                await self._deliver(
                    send_email(channel, to=address, subject=subject, text=text, idempotency_key=event_id),
                    tenant_id,
                    conversation_id,
                    marker,
                )
        elif target == "webhook" and profile.handoff_webhook_url:
            marker = f"{seq}:{event}{ref and ':' + ref}:webhook"
            if marker in handoff.notified:
                return
            payload = await self._webhook_payload(tenant_id, conv, lead, handoff, event, event_id)
            secret = await self.secrets.get(tenant_id)
            await self._deliver(
                post_webhook(
                    self.egress,
                    profile.handoff_webhook_url,
                    payload,
                    secret=secret,
                    event_id=event_id,
                    now=self.clock.now(),
                ),
                tenant_id,
                conversation_id,
                marker,
            )

    async def _deliver(self, sending: Any, tenant_id: str, conversation_id: str, marker: str) -> None:
        try:
            await sending
        except NotificationError as exc:
            if exc.retryable:
                log.warning(
                    "handoff.notify_retry", tenant=tenant_id, conversation=conversation_id, error=str(exc)
                )
                raise
            log.error("handoff.notify_failed", tenant=tenant_id, conversation=conversation_id, error=str(exc))
            await self._mark(tenant_id, conversation_id, marker, failed=True)
            return
        await self._mark(tenant_id, conversation_id, marker)
        log.info("handoff.notified", tenant=tenant_id, conversation=conversation_id, what=marker)

    async def _mark(self, tenant_id: str, conversation_id: str, marker: str, *, failed: bool = False) -> None:
        now = self.clock.now()

        async def fn(tx: Transaction) -> None:
            stored = await tx.get(HANDOFFS, conversation_id)
            if stored is None:
                return
            handoff = Handoff.from_doc(stored)
            handoff.notified[marker + (":failed" if failed else "")] = now
            if failed:
                handoff.notified[marker] = now  # never retried: a refusal is final
            tx.set(HANDOFFS, conversation_id, handoff.to_doc())

        await self.store.run_transaction(tenant_id, fn)

    # ------------------------------------------------------------------ notification contents
    async def _recent(self, tenant_id: str, conv: Conversation) -> list[Message]:
        docs = await self.store.query(
            tenant_id,
            messages_collection(conv.id),
            order_by=[Order("seq", descending=True)],
            limit=_QUOTED_MESSAGES,
        )
        return [Message.from_doc(d.data) for d in reversed(docs)]

    def _links(self, conv: Conversation) -> dict[str, str]:
        base = f"{self.public_base_url}/api/v1/conversations/{conv.id}"
        return {"conversation": base, "reply": f"{base}/messages", "handback": f"{base}/handback"}

    async def _email_text(
        self,
        tenant_id: str,
        profile: TenantProfile,
        conv: Conversation,
        lead: Lead,
        handoff: Handoff,
        event: str,
    ) -> tuple[str, str]:
        who = lead.name or lead.phone or lead.email or lead.id
        lang = "fr" if profile.default_language.startswith("fr") else "en"
        kind = "call_back" if event == "requested" and handoff.call_back else event
        subject = _SUBJECTS.get(kind, _SUBJECTS["requested"])[lang].format(lead=who)
        links = self._links(conv)

        def say(key: str, **values: object) -> str:
            return mail_label(key, lang, **values)

        lines = [
            subject,
            "",
            say("open", url=f"{self.public_base_url}/app/conversations/{conv.id}"),
            "",
            say("lead", who=who),
            *(f"  {channel}: {address}" for channel, address in lead.addresses().items()),
            say("channel", channel=conv.channel),
            say(
                "reason",
                reason=record_word(HANDOFF_REASON_WORDS, handoff.reason, lang),
                by=record_word(REQUESTER_WORDS, handoff.requested_by, lang),
            ),
            *(
                [
                    say("call_back_on", number=handoff.call_back_phone or say("no_number")),
                    *call_back_lines(handoff.call_back_when, handoff.call_back_notes, lang),
                ]
                if handoff.call_back
                else []
            ),
            say("score", score=lead.score, stage=record_word(STAGE_WORDS, lead.stage, lang)),
        ]
        if lead.slots:
            lines += [say("answers"), *(f"  {k}: {v}" for k, v in lead.slots.items())]
        lines += ["", say("latest")]
        for message in await self._recent(tenant_id, conv):
            lines.append(f"  [{message.sender}] {one_line(message.text, 500)}")
        lines += [
            "",
            say("api"),
            say("get", url=links["conversation"]),
            say("reply", url=links["reply"], body='{"text": "..."}'),
            say("handback", url=links["handback"], body='{"note": "..."}'),
        ]
        return subject, "\n".join(lines)

    async def _webhook_payload(
        self, tenant_id: str, conv: Conversation, lead: Lead, handoff: Handoff, event: str, event_id: str
    ) -> dict[str, Any]:
        return {
            "id": event_id,
            "type": f"handoff.{event}",
            "created_at": self.clock.now(),
            "tenant_id": tenant_id,
            "conversation": {
                "id": conv.id,
                "channel": conv.channel,
                "status": conv.status,
                "current_step": conv.current_step,
                "playbook_id": conv.playbook_id,
                "links": self._links(conv),
            },
            "lead": {
                "id": lead.id,
                "name": lead.name,
                "phone": lead.phone,
                "email": lead.email,
                "language": lead.language,
                "score": lead.score,
                "stage": lead.stage,
                "slots": lead.slots,
            },
            "handoff": handoff.model_dump(mode="json", exclude={"notified"}),
            "recent_messages": [
                {"sender": m.sender, "text": m.text, "at": m.created_at}
                for m in await self._recent(tenant_id, conv)
            ],
        }
