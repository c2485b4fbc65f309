"""The conversation worker: one turn of one conversation at a time, durably.

For each job it loads the lead and conversation, asks the playbook engine what to do (the engine
may consult the interpreter: rules offline, GPT later), and commits in ONE transaction the new
conversation state, the lead's slots and score, the messages (the lead's and the bot's), the
outbox items and their dispatch job, the timer job, and the inbox item marked processed. The
commit checks that the conversation's ``version`` has not moved since it was read (optimistic
concurrency); if it has, the turn is recomputed. So two processes never apply a turn twice, and a
crash before the commit simply replays the turn: nothing is sent until it is committed.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import phonenumbers

from app import i18n
from app.effects import TurnPlan, append_inbound, plan_bot_messages, plan_turn
from app.inbox import INBOX
from app.jobs import Job, JobQueue
from app.logs import get_logger
from app.nlu.language import detect_language
from app.playbook_repo import PlaybookRepository
from app.records import Conversation, InboxItem, Lead, messages_collection
from app.store import ConflictError, Order, Store, Transaction, where
from app.tenants import TenantDirectory
from playbooks import Playbook, advance, new_state
from playbooks.runtime import (
    ConversationState,
    Event,
    InboundEvent,
    Ports,
    StartEvent,
    TimerFiredEvent,
)

__all__ = ["ADDRESS_FIELDS", "ConversationService", "lead_view"]

log = get_logger("leadwarm.conversation")

LEADS = "leads"
CONVERSATIONS = "conversations"
OUTBOX = "outbox"
MAX_REPLAYS = 8

#: Which lead field holds the contact's address on each channel.
ADDRESS_FIELDS = {"whatsapp": "phone", "sms": "phone", "email": "email", "webchat": "webchat_id"}
#: Message kinds that carry nothing the playbook can read.
_SILENT_KINDS = {"reaction"}


def lead_view(lead: Lead) -> dict[str, Any]:
    """The lead fields playbook templates may read."""
    first = (lead.name or "").split(" ")[0] or None
    return {
        "id": lead.id,
        "name": lead.name,
        "first_name": first,
        "phone": lead.phone,
        "email": lead.email,
        "language": lead.language,
    }


@dataclass(slots=True)
class _Turn:
    conversation: Conversation
    lead: Lead
    conversation_is_new: bool
    lead_is_new: bool


class ConversationService:
    """Runs turns for the worker's ``inbound``, ``start`` and ``timer`` jobs."""

    def __init__(
        self,
        *,
        store: Store,
        jobs: JobQueue,
        clock: Any,
        tenants: TenantDirectory,
        playbooks: PlaybookRepository,
        interpreters: Any,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.clock = clock
        self.tenants = tenants
        self.playbooks = playbooks
        self.interpreters = interpreters

    # ------------------------------------------------------------------ job handlers
    async def handle_inbound(self, job: Job) -> None:
        """Process, in order, every pending inbox item of the job's address."""
        docs = await self.store.query(
            job.tenant_id,
            INBOX,
            filters=[where("address_key", "==", job.key), where("status", "==", "pending")],
            order_by=[Order("seq")],
        )
        for doc in docs:
            data = doc.data
            await self._replay_until_committed(
                job.tenant_id, lambda d=data: self._inbound_turn(job.tenant_id, d)
            )

    async def handle_start(self, job: Job) -> None:
        """Start the playbook of a conversation created through the API."""
        await self._replay_until_committed(job.tenant_id, lambda: self._start_turn(job.tenant_id, job.key))

    async def handle_timer(self, job: Job) -> None:
        """Fire a conversation's wait timer (ignored if the conversation moved on)."""
        timer_id = str(job.payload.get("timer_id", ""))
        await self._replay_until_committed(
            job.tenant_id, lambda: self._timer_turn(job.tenant_id, job.key, timer_id)
        )

    async def _replay_until_committed(self, tenant_id: str, turn: Any) -> None:
        for _ in range(MAX_REPLAYS):
            if await turn():
                return
            log.info("turn.replayed", tenant=tenant_id, reason="conversation changed concurrently")
        raise ConflictError("conversation kept changing; the job will retry")

    # ------------------------------------------------------------------ turns
    async def _inbound_turn(self, tenant_id: str, item_doc: dict[str, Any]) -> bool:
        item = InboxItem.from_doc(item_doc)
        current = await self.store.get(tenant_id, INBOX, item.id)
        if current is None or current.get("status") != "pending":
            return True  # another run processed it
        now = self.clock.now()
        profile = await self.tenants.profile(tenant_id)
        turn = await self._load_for_inbound(tenant_id, item)
        conv, lead = turn.conversation, turn.lead
        if item.kind in _SILENT_KINDS or not item.text.strip():
            # Nothing the playbook can read: keep the message; answer politely unless it is a
            # reaction. The playbook does not advance.
            plan = self._bare_plan(turn, item, now)
            if item.kind not in _SILENT_KINDS:
                reply = i18n.text("unsupported_message", lead.language or profile.default_language)
                plan_bot_messages(plan, [reply], now, purpose="fallback")
            return await self._commit(tenant_id, turn, plan, inbox_item=item)
        event: Event
        if not conv.state:
            language = detect_language(item.text, supported=profile.languages) or lead.language
            playbook = await self._playbook_for(turn, profile, language, trigger="inbound_unknown_lead")
            state = new_state(playbook, language=language or playbook.language, lead=lead_view(lead))
            event = StartEvent(trigger="inbound_unknown_lead", text=item.text)
        else:
            playbook = await self.playbooks.get(tenant_id, conv.playbook_id, conv.playbook_version)
            state = ConversationState.model_validate(conv.state)
            state.lead = lead_view(lead)
            event = InboundEvent(text=item.text, choice_id=item.choice_id, message_kind=item.kind)
        result = await advance(playbook, state, event, await self._ports(tenant_id, lead))
        plan = plan_turn(conv, lead, result, now, inbound=item)
        return await self._commit(tenant_id, turn, plan, inbox_item=item)

    async def _start_turn(self, tenant_id: str, conversation_id: str) -> bool:
        data = await self.store.get(tenant_id, CONVERSATIONS, conversation_id)
        if data is None:
            log.warning("start.missing_conversation", tenant=tenant_id, conversation=conversation_id)
            return True
        conv = Conversation.from_doc(data)
        if conv.state:
            return True  # already started (an inbound message got there first)
        lead = await self._get_lead(tenant_id, conv.lead_id)
        playbook = await self.playbooks.get(tenant_id, conv.playbook_id, conv.playbook_version)
        state = new_state(playbook, language=lead.language or playbook.language, lead=lead_view(lead))
        result = await advance(
            playbook, state, StartEvent(trigger="lead_created"), await self._ports(tenant_id, lead)
        )
        turn = _Turn(conv, lead, conversation_is_new=False, lead_is_new=False)
        return await self._commit(tenant_id, turn, plan_turn(conv, lead, result, self.clock.now()))

    async def _timer_turn(self, tenant_id: str, conversation_id: str, timer_id: str) -> bool:
        data = await self.store.get(tenant_id, CONVERSATIONS, conversation_id)
        if data is None or not data.get("state"):
            return True
        conv = Conversation.from_doc(data)
        if not conv.timer or conv.timer.get("id") != timer_id:
            return True  # stale timer: the conversation moved on
        lead = await self._get_lead(tenant_id, conv.lead_id)
        playbook = await self.playbooks.get(tenant_id, conv.playbook_id, conv.playbook_version)
        state = ConversationState.model_validate(conv.state)
        state.lead = lead_view(lead)
        result = await advance(
            playbook, state, TimerFiredEvent(timer_id=timer_id), await self._ports(tenant_id, lead)
        )
        turn = _Turn(conv, lead, conversation_is_new=False, lead_is_new=False)
        return await self._commit(tenant_id, turn, plan_turn(conv, lead, result, self.clock.now()))

    # ------------------------------------------------------------------ loading
    async def _get_lead(self, tenant_id: str, lead_id: str) -> Lead:
        data = await self.store.get(tenant_id, LEADS, lead_id)
        if data is None:
            raise LookupError(f"lead {lead_id} not found")
        return Lead.from_doc(data)

    async def find_lead(self, tenant_id: str, channel: str, address: str) -> Lead | None:
        """The lead whose address on ``channel`` is ``address`` (oldest first), or ``None``."""
        field = ADDRESS_FIELDS.get(channel, "webchat_id")
        docs = await self.store.query(
            tenant_id, LEADS, filters=[where(field, "==", address)], order_by=[Order("created_at")], limit=1
        )
        return Lead.from_doc(docs[0].data) if docs else None

    async def latest_conversation(self, tenant_id: str, lead_id: str, channel: str) -> Conversation | None:
        """The lead's most recent conversation on ``channel``."""
        docs = await self.store.query(
            tenant_id,
            CONVERSATIONS,
            filters=[where("lead_id", "==", lead_id), where("channel", "==", channel)],
            order_by=[Order("created_at", descending=True)],
            limit=1,
        )
        return Conversation.from_doc(docs[0].data) if docs else None

    async def _load_for_inbound(self, tenant_id: str, item: InboxItem) -> _Turn:
        now = self.clock.now()
        lead = await self.find_lead(tenant_id, item.channel, item.sender)
        lead_is_new = lead is None
        if lead is None:
            digest = hashlib.sha256(f"{tenant_id}:{item.address_key}".encode()).hexdigest()[:20]
            lead = Lead(
                id=f"ld_{digest}",
                tenant_id=tenant_id,
                name=item.contact_name,
                source=item.channel,
                created_at=now,
                updated_at=now,
            )
            setattr(lead, ADDRESS_FIELDS.get(item.channel, "webchat_id"), item.sender)
            if item.channel in ("whatsapp", "sms"):
                lead.consent[item.channel] = True  # they wrote to us first
        conv = None if lead_is_new else await self.latest_conversation(tenant_id, lead.id, item.channel)
        conversation_is_new = conv is None
        if conv is None:
            conv = Conversation(
                id=f"cv_{uuid.uuid4().hex[:20]}",
                tenant_id=tenant_id,
                lead_id=lead.id,
                channel=item.channel,
                address=item.sender,
                playbook_id="",
                playbook_version=0,
                created_at=now,
                updated_at=now,
            )
        return _Turn(conv, lead, conversation_is_new, lead_is_new)

    async def _playbook_for(
        self, turn: _Turn, profile: Any, language: str | None, *, trigger: str
    ) -> Playbook:
        conv = turn.conversation
        if conv.playbook_id:
            return await self.playbooks.get(profile.id, conv.playbook_id, conv.playbook_version)
        playbook = await self.playbooks.choose(profile, language, trigger=trigger)
        conv.playbook_id, conv.playbook_version = playbook.id, playbook.version
        return playbook

    async def _ports(self, tenant_id: str, lead: Lead) -> Ports:
        profile = await self.tenants.profile(tenant_id)
        region = profile.default_region
        if lead.phone:
            with contextlib.suppress(phonenumbers.NumberParseException):
                region = phonenumbers.region_code_for_number(phonenumbers.parse(lead.phone)) or region
        timezone = lead.timezone or profile.timezone
        return Ports(
            interpreter=await self.interpreters.for_lead(tenant_id, timezone=timezone, default_region=region),
            clock=self.clock,
            timezone=timezone,
            default_region=region,
            fallback_text={lang: i18n.text("fallback", lang) for lang in profile.languages},
        )

    def _bare_plan(self, turn: _Turn, item: InboxItem, now: float) -> TurnPlan:
        """A turn with no engine run: record the message (the caller may add a reply)."""
        plan = TurnPlan(
            conversation=turn.conversation.model_copy(deep=True), lead=turn.lead.model_copy(deep=True)
        )
        append_inbound(plan, item, now)
        plan.conversation.updated_at = now
        return plan

    # ------------------------------------------------------------------ commit
    async def _commit(
        self, tenant_id: str, turn: _Turn, plan: TurnPlan, *, inbox_item: InboxItem | None = None
    ) -> bool:
        """Write the whole turn in one transaction; ``False`` if the conversation moved meanwhile."""
        expected = turn.conversation.version
        conv, lead = plan.conversation, plan.lead
        if not conv.playbook_id and turn.conversation.playbook_id:
            conv.playbook_id, conv.playbook_version = (
                turn.conversation.playbook_id,
                turn.conversation.playbook_version,
            )
        conv.version = expected + 1
        now = self.clock.now()

        async def fn(tx: Transaction) -> bool:
            current = await tx.get(CONVERSATIONS, conv.id)
            if turn.conversation_is_new:
                if current is not None:
                    return False
            elif current is None or current.get("version") != expected:
                return False
            if inbox_item is not None:
                item_now = await tx.get(INBOX, inbox_item.id)
                if item_now is None or item_now.get("status") != "pending":
                    return True  # processed by someone else: nothing to write
            lead_now = await tx.get(LEADS, lead.id)
            if turn.lead_is_new and lead_now is not None:
                return False  # created concurrently: replay and pick it up
            timer_job = await self.jobs.read(tx, "timer", conv.id) if plan.timer else None
            dispatch_job = await self.jobs.read(tx, "dispatch", conv.id) if plan.outbox else None
            # -- writes
            tx.set(CONVERSATIONS, conv.id, conv.to_doc())
            if lead_now is None:
                tx.set(LEADS, lead.id, lead.to_doc())
            else:
                merged_slots = {**lead_now.get("slots", {}), **lead.slots}
                tx.set(
                    LEADS,
                    lead.id,
                    {
                        "slots": merged_slots,
                        "score": lead.score,
                        "stage": lead.stage,
                        "language": lead.language,
                        "updated_at": lead.updated_at,
                    },
                    merge=True,
                )
            for message in plan.messages:
                tx.set(messages_collection(conv.id), message.id, message.to_doc())
            for item in plan.outbox:
                tx.set(OUTBOX, item.id, item.to_doc())
            if plan.outbox:
                self.jobs.write(tx, dispatch_job, kind="dispatch", key=conv.id, due_at=now)
            if plan.timer is not None and plan.timer.action == "set":
                assert plan.timer.due_at is not None
                self.jobs.write(
                    tx,
                    timer_job,
                    kind="timer",
                    key=conv.id,
                    due_at=plan.timer.due_at,
                    payload={"timer_id": plan.timer.timer_id},
                    due="exact",
                )
            elif plan.timer is not None and timer_job is not None and timer_job.get("status") == "pending":
                tx.delete("jobs", str(timer_job["id"]))
            if inbox_item is not None:
                tx.set(
                    INBOX,
                    inbox_item.id,
                    {"status": "processed", "processed_at": now, "conversation_id": conv.id},
                    merge=True,
                )
            return True

        committed = await self.store.run_transaction(tenant_id, fn)
        if committed:
            if plan.outbox or plan.timer:
                self.jobs.notify()
            log.info(
                "turn.committed",
                tenant=tenant_id,
                conversation=conv.id,
                step=conv.current_step,
                status=conv.status,
                replies=len(plan.outbox),
                score=lead.score,
            )
        return bool(committed)
