"""The conversation worker: one turn of one conversation at a time, durably.

For each job it loads the lead and conversation, asks the playbook engine what to do (the engine
may consult the interpreter: rules offline, GPT when configured), and commits in ONE transaction
the new conversation state, the lead's slots and score, the messages (the lead's and the bot's),
the outbox items and their dispatch job, the timer job, and the inbox items marked processed. The
commit checks that the conversation's ``version`` has not moved since it was read (optimistic
concurrency) and that no newer message from the lead arrived meanwhile; otherwise the turn is
recomputed with everything. So two processes never apply a turn twice, a burst of messages gets
one reply that reads them all, and a crash before the commit simply replays the turn: nothing is
sent until it is committed.

Compliance keywords (STOP, START, HELP and their French forms) are handled here, before the
playbook: a STOP is written to the opt-out ledger and closes the conversation without a reply.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import phonenumbers

from app.ai.directory import InterpreterDirectory
from app.ai.knowledge.stats import record_kb_outcome
from app.ai.language import detect_language
from app.ai.llm.usage import TurnUsage
from app.authoring.repository import PlaybookRepository
from app.authoring.routing import RouteContext, utm_from
from app.conversations.lookup import CONVERSATIONS, LEADS, ConversationLocator, Located
from app.conversations.planning import OptOutChange, TurnPlan, append_inbound, plan_bot_messages, plan_turn
from app.conversations.records import Conversation, ConversationEvent, Lead, messages_collection
from app.conversations.scoring import make_scorer
from app.conversations.views import lead_view
from app.core import i18n
from app.core.logs import get_logger
from app.jobs.queue import Job, JobQueue, job_doc_id
from app.messaging.directory import ChannelDirectory
from app.messaging.inbox import INBOX
from app.messaging.records import InboxItem
from app.policy.keywords import Keyword, classify_keyword
from app.policy.optouts import OptOutLedger
from app.store import ConflictError, Order, Store, Transaction, where
from app.store import collections as col
from app.tenancy.directory import TenantDirectory
from app.tenancy.records import TenantProfile
from kernel.clock import Clock
from kernel.clone import clone_model
from playbooks import Playbook, advance, new_state
from playbooks.runtime import (
    ConversationState,
    EngineResult,
    Event,
    InboundEvent,
    Ports,
    SlotSource,
    StartEvent,
    TimerFiredEvent,
)

__all__ = ["CalendarPort", "CommitHook", "ConversationService", "TurnHook", "TurnWrites", "earliest_job_due"]

log = get_logger("leadwarm.conversation")

OUTBOX = col.OUTBOX
MAX_REPLAYS = 8
#: Message kinds that are kept but never answered and never advance the playbook.
_SILENT_KINDS = {"reaction", "auto_reply", "bounce"}


class CommitHook(Protocol):
    """Something another feature writes with a turn, in the turn's own transaction.

    Called inside :meth:`ConversationService._commit`'s transaction after the turn's reads and
    before its writes, with the conversation and lead as read (``before``) and the turn's plan:
    it may read (``tx.get``) and returns a function that writes (``tx.set``), or ``None``.
    """

    async def __call__(
        self, tx: Transaction, before: Located, plan: TurnPlan
    ) -> Callable[[], None] | None: ...


class TurnWrites(Protocol):
    """What a :class:`TurnHook` writes in the turn's transaction: ``read`` runs with the turn's
    reads (before any write, as Firestore requires), ``write`` with its writes."""

    async def read(self, tx: Transaction) -> None: ...

    def write(self, tx: Transaction) -> None: ...


class CalendarPort(Protocol):
    """The tenant's calendar for a turn's ``book`` steps (``None``: none). ``known`` maps
    documents ``(collection, id)`` the turn has just read (``None``: absent) to their data, from
    :attr:`ConversationService.turn_refs`: a document found there is not read again."""

    async def __call__(
        self, tenant_id: str, *, known: Mapping[tuple[str, str], dict[str, Any] | None] | None = None
    ) -> SlotSource | None: ...


class TurnHook(Protocol):
    """Called with the conversation as read (``before``) and the turn's plan before every commit;
    may add messages and events to ``plan`` and return writes for the same transaction."""

    async def __call__(self, tenant_id: str, before: Conversation, plan: TurnPlan) -> TurnWrites | None: ...


def earliest_job_due(plan: TurnPlan, now: float) -> float | None:
    """When the earliest job that ``plan`` enqueues falls due (UTC epoch seconds: ``now`` for its
    outbox's dispatch, else its timer's or other jobs' due times), or ``None`` when it enqueues
    none (a cancelled timer enqueues nothing). The turn wakes this process's worker only for a
    job due before the worker planned to wake (:meth:`app.jobs.queue.JobQueue.notify`): a wait
    timer a day away no longer costs the sleeping worker a look at the store."""
    dues = [now] if plan.outbox else []
    dues += [job.due_at for job in plan.jobs]
    if plan.timer is not None and plan.timer.action == "set" and plan.timer.due_at is not None:
        dues.append(plan.timer.due_at)
    return min(dues) if dues else None


def _pending_query(address_key: str) -> dict[str, Any]:
    """The query (filters and order) of an address's pending inbox items, oldest first."""
    return {
        "filters": [where("address_key", "==", address_key), where("status", "==", "pending")],
        "order_by": [Order("seq")],
    }


class ConversationService:
    """Runs turns for the worker's ``inbound``, ``start`` and ``timer`` jobs."""

    def __init__(
        self,
        *,
        store: Store,
        jobs: JobQueue,
        clock: Clock,
        tenants: TenantDirectory,
        playbooks: PlaybookRepository,
        interpreters: InterpreterDirectory,
        ledger: OptOutLedger,
        channels: ChannelDirectory,
        burst_window_s: float = 0.0,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.clock = clock
        self.tenants = tenants
        self.playbooks = playbooks
        self.interpreters = interpreters
        self.ledger = ledger
        self.channels = channels
        self.burst_window_s = burst_window_s
        self.locator = ConversationLocator(store, clock)
        self.commit_hooks: list[CommitHook] = []
        """Added by features (the CRM sync's triggers); see :class:`CommitHook`."""
        self.turn_hooks: list[TurnHook] = []
        """Features that add to a turn before it commits (see :class:`TurnHook`)."""
        self.calendar_port: CalendarPort | None = None
        """Set by the booking feature: the tenant's calendar for ``book`` steps (``None``: none)."""
        self.turn_refs: list[tuple[str, str]] = []
        """Documents ``(collection, id)`` of the tenant that features read on every inbound turn
        (the booking settings): read with the turn's first read (one hand-off) and handed to
        :attr:`calendar_port` as ``known``."""

    # ------------------------------------------------------------------ lookups (API, web chat)
    async def find_lead(self, tenant_id: str, channel: str, address: str) -> Lead | None:
        """See :meth:`app.conversations.lookup.ConversationLocator.find_lead`."""
        return await self.locator.find_lead(tenant_id, channel, address)

    async def latest_conversation(
        self, tenant_id: str, lead_id: str, channel: str | None = None
    ) -> Conversation | None:
        """See :meth:`app.conversations.lookup.ConversationLocator.latest_conversation`."""
        return await self.locator.latest_conversation(tenant_id, lead_id, channel)

    # ------------------------------------------------------------------ job handlers
    async def handle_inbound(self, job: Job) -> None:
        """Process every pending inbox item of the job's address as one turn."""
        await self._replay_until_committed(
            job.tenant_id, lambda: self._inbound_turn(job.tenant_id, job.key, job=job)
        )

    async def handle_start(self, job: Job) -> None:
        """Start the playbook of a conversation created through the API."""
        await self._replay_until_committed(
            job.tenant_id, lambda: self._start_turn(job.tenant_id, job.key, job=job)
        )

    async def handle_timer(self, job: Job) -> None:
        """Fire a conversation's wait timer (ignored if the conversation moved on)."""
        timer_id = str(job.payload.get("timer_id", ""))
        await self._replay_until_committed(
            job.tenant_id, lambda: self._timer_turn(job.tenant_id, job.key, timer_id, job=job)
        )

    async def run_event(
        self,
        tenant_id: str,
        conversation_id: str,
        event: Event,
        *,
        trigger: str = "inbound",
        amend: Callable[[TurnPlan, EngineResult], None] | None = None,
    ) -> Conversation | None:
        """Apply an app-side ``event`` (a person's hand-back, a booking's outcome) to a stored,
        started conversation as one committed turn whose messages go out with ``trigger``;
        ``amend(plan, result)`` may add to the plan before it commits (an event naming who acted,
        an invitation, reminders). Returns the conversation as committed, or ``None`` if it does
        not exist or never started. Raises :class:`app.store.ConflictError` when it kept changing."""
        committed: list[Conversation] = []

        async def turn() -> bool:
            data = await self.store.get(tenant_id, CONVERSATIONS, conversation_id)
            if data is None or not data.get("state"):
                return True
            conv = Conversation.from_doc(data)
            lead = await self.locator.get_lead(tenant_id, conv.lead_id)
            playbook = await self.playbooks.get(tenant_id, conv.playbook_id, conv.playbook_version)
            state = ConversationState.model_validate(conv.state)
            state.lead = lead_view(lead)
            result = await advance(playbook, state, event, await self._ports(tenant_id, lead, conv))
            located = Located(conv, lead, conversation_is_new=False, lead_is_new=False)
            plan = plan_turn(conv, lead, result, self.clock.now(), trigger=trigger)
            if amend is not None:
                amend(plan, result)
            if await self._commit(tenant_id, located, plan):
                committed.append(plan.conversation)
                return True
            return False

        await self._replay_until_committed(tenant_id, turn)
        return committed[0] if committed else None

    async def amend(
        self,
        tenant_id: str,
        conversation_id: str,
        change: Callable[[TurnPlan], bool],
        *,
        trigger: str = "timer",
    ) -> None:
        """Commit an app-side change to a conversation without running the engine (a meeting
        reminder); ``change`` edits the plan and returns ``False`` to write nothing."""

        async def turn() -> bool:
            data = await self.store.get(tenant_id, CONVERSATIONS, conversation_id)
            if data is None:
                return True
            conv = Conversation.from_doc(data)
            lead = await self.locator.get_lead(tenant_id, conv.lead_id)
            located = Located(conv, lead, conversation_is_new=False, lead_is_new=False)
            plan = self._bare_plan(located, [], self.clock.now())
            plan.trigger = trigger
            if not change(plan):
                return True
            return await self._commit(tenant_id, located, plan)

        await self._replay_until_committed(tenant_id, turn)

    async def _replay_until_committed(self, tenant_id: str, turn: Callable[[], Awaitable[bool]]) -> None:
        for _ in range(MAX_REPLAYS):
            if await turn():
                return
            log.info("turn.replayed", tenant=tenant_id, reason="conversation or inbox changed meanwhile")
        raise ConflictError("conversation kept changing; the job will retry")

    # ------------------------------------------------------------------ turns
    async def _inbound_turn(self, tenant_id: str, address_key: str, *, job: Job | None = None) -> bool:
        # Every accepted message bumps this job's generation in the transaction that stores it:
        # reading it first tells the commit whether the lead wrote again while we worked.
        # (the job, then the pending items, in one round trip: the order is kept)
        # (and the documents features read on every turn, in the same round trip)
        [job_doc, *extra], pending = await self.store.get_many_then_query(
            tenant_id,
            [(col.JOBS, job_doc_id("inbound", address_key)), *self.turn_refs],
            INBOX,
            **_pending_query(address_key),
        )
        known = dict(zip(self.turn_refs, extra, strict=True))
        generation = (job_doc or {}).get("generation")
        items = [InboxItem.from_doc(d.data) for d in pending]
        if not items:
            return True
        now = self.clock.now()
        profile = await self.tenants.profile(tenant_id)
        located = await self.locator.for_inbound(tenant_id, items[-1])
        lead = located.lead
        if located.lead_is_new and all(i.kind in _SILENT_KINDS for i in items):
            # An autoresponder or a reaction from someone we never talked to: keep the inbox
            # record, create no lead, answer nothing.
            await self._mark_ignored(tenant_id, items, reason="automatic message from an unknown sender")
            return True
        readable = [i for i in items if i.kind not in _SILENT_KINDS and i.text.strip()]
        keyword = self._keyword(items[-1].channel, readable)
        if keyword is not None:
            plan = await self._keyword_plan(tenant_id, located, items, keyword, profile, now)
            return await self._commit(
                tenant_id, located, plan, inbox_items=items, generation=generation, job=job
            )
        if not readable:
            # Nothing the playbook can read: keep the messages; answer politely unless they are
            # reactions or automatic replies. The playbook does not advance.
            plan = self._bare_plan(located, items, now)
            if any(i.kind not in _SILENT_KINDS for i in items):
                reply = i18n.text("unsupported_message", lead.language or profile.default_language)
                plan_bot_messages(plan, [reply], now, purpose="fallback")
            return await self._commit(
                tenant_id, located, plan, inbox_items=items, generation=generation, job=job
            )
        conv = located.conversation
        text = "\n".join(i.text for i in readable)
        event: Event
        if not conv.state:
            # py3langid over the first message: CPU work (0.5-1.7 ms), off the event loop
            detected = await asyncio.to_thread(detect_language, text, supported=profile.languages)
            language = detected or lead.language
            playbook = await self._playbook_for(
                located, profile, language, trigger="inbound_unknown_lead", text=text, first=items[0]
            )
            state = new_state(playbook, language=language or playbook.language, lead=lead_view(lead))
            event = StartEvent(trigger="inbound_unknown_lead", text=text)
            if conv.opened_with_template:
                # The lead answers our template: the playbook starts from its first step; their
                # words answered the template, not the playbook's first question.
                event = StartEvent(trigger="lead_created")
        else:
            playbook = await self.playbooks.get(tenant_id, conv.playbook_id, conv.playbook_version)
            state = ConversationState.model_validate(conv.state)
            state.lead = lead_view(lead)
            last = readable[-1]
            # A timer's turn may commit a follow-up after this message arrived: never a negative delay.
            reply_seconds = (
                max(0.0, items[0].received_at - conv.last_outbound_at) if conv.last_outbound_at else None
            )
            event = InboundEvent(
                text=text,
                choice_id=last.choice_id,
                message_kind=last.kind,
                reply_seconds=reply_seconds,
                inbound_count=conv.inbound_count + len(items),
            )
        ports = await self._ports(tenant_id, lead, conv, evidence_text=text, known=known)
        result = await advance(playbook, state, event, ports)
        usage_doc = result.interpretation.usage if result.interpretation is not None else None
        usage = TurnUsage(**usage_doc) if usage_doc else None
        plan = plan_turn(conv, lead, result, now, inbound=items, trigger="inbound", llm_usage=usage)
        return await self._commit(tenant_id, located, plan, inbox_items=items, generation=generation, job=job)

    async def _start_turn(self, tenant_id: str, conversation_id: str, *, job: Job | None = None) -> bool:
        data = await self.store.get(tenant_id, CONVERSATIONS, conversation_id)
        if data is None:
            log.warning("start.missing_conversation", tenant=tenant_id, conversation=conversation_id)
            return True
        conv = Conversation.from_doc(data)
        if conv.state:
            return True  # already started (an inbound message got there first)
        lead = await self.locator.get_lead(tenant_id, conv.lead_id)
        playbook = await self.playbooks.get(tenant_id, conv.playbook_id, conv.playbook_version)
        state = new_state(playbook, language=lead.language or playbook.language, lead=lead_view(lead))
        ports = await self._ports(tenant_id, lead, conv)
        result = await advance(playbook, state, StartEvent(trigger="lead_created"), ports)
        located = Located(conv, lead, conversation_is_new=False, lead_is_new=False)
        return await self._commit(
            tenant_id, located, plan_turn(conv, lead, result, self.clock.now(), trigger="start"), job=job
        )

    async def _timer_turn(
        self, tenant_id: str, conversation_id: str, timer_id: str, *, job: Job | None = None
    ) -> bool:
        data = await self.store.get(tenant_id, CONVERSATIONS, conversation_id)
        if data is None or not data.get("state"):
            return True
        conv = Conversation.from_doc(data)
        if not conv.timer or conv.timer.get("id") != timer_id:
            return True  # stale timer: the conversation moved on
        lead = await self.locator.get_lead(tenant_id, conv.lead_id)
        playbook = await self.playbooks.get(tenant_id, conv.playbook_id, conv.playbook_version)
        state = ConversationState.model_validate(conv.state)
        state.lead = lead_view(lead)
        ports = await self._ports(tenant_id, lead, conv)
        result = await advance(playbook, state, TimerFiredEvent(timer_id=timer_id), ports)
        located = Located(conv, lead, conversation_is_new=False, lead_is_new=False)
        return await self._commit(
            tenant_id, located, plan_turn(conv, lead, result, self.clock.now(), trigger="timer"), job=job
        )

    # ------------------------------------------------------------------ keywords
    def _keyword(self, channel: str, readable: list[InboxItem]) -> Keyword | None:
        for item in reversed(readable):
            # A channel may read an opt-out itself (an email's subject or first line, "STOP merci").
            if (item.payload.get("metadata") or {}).get("opt_out_keyword"):
                return "stop"
        if not self.channels.traits(channel).keyword_optouts:
            return None
        for item in reversed(readable):
            keyword = classify_keyword(item.text)
            if keyword is not None:
                return keyword
        return None

    async def _keyword_plan(
        self,
        tenant_id: str,
        located: Located,
        items: list[InboxItem],
        keyword: Keyword,
        profile: TenantProfile,
        now: float,
    ) -> TurnPlan:
        last = items[-1]
        plan = self._bare_plan(located, items, now)
        language = plan.lead.language or profile.default_language
        source = f"keyword:{last.text.strip()[:20]}"
        if keyword == "stop":
            # Recorded in the turn's own transaction, which also blocks every send still queued:
            # nothing leaves after the STOP is acknowledged (templates and follow-ups included).
            plan.optout = OptOutChange(channel=last.channel, address=last.sender, source=source)
            plan.cancel_pending_sends = True
            plan.lead.consent[last.channel] = False
            plan.conversation.status = "closed"
            plan.conversation.outcome = plan.conversation.outcome or "opted_out"
            if plan.conversation.timer:
                from app.conversations.planning import TimerChange

                plan.timer = TimerChange("cancel", timer_id=str(plan.conversation.timer.get("id")))
        elif keyword == "start":
            plan.optout = OptOutChange(
                channel=last.channel, address=last.sender, source=source, opted_out=False
            )
            plan.lead.consent[last.channel] = True
            plan_bot_messages(plan, [i18n.text("resubscribed", language)], now, purpose="fallback")
        else:
            help_text = profile.help_text.get(language) or i18n.text(
                "help", language, company_name=profile.name
            )
            plan_bot_messages(plan, [help_text], now, purpose="fallback")
        plan.conversation.events.append(
            ConversationEvent(
                at=now, type=f"keyword.{keyword}", detail={"channel": last.channel, "source": source}
            )
        )
        log.info("keyword.handled", tenant=tenant_id, keyword=keyword, channel=last.channel)
        return plan

    # ------------------------------------------------------------------ helpers
    async def _playbook_for(
        self,
        located: Located,
        profile: TenantProfile,
        language: str | None,
        *,
        trigger: str,
        text: str = "",
        first: InboxItem | None = None,
    ) -> Playbook:
        conv = located.conversation
        if conv.playbook_id:
            return await self.playbooks.get(profile.id, conv.playbook_id, conv.playbook_version)
        metadata = (first.payload.get("metadata") if first is not None else None) or {}
        referral = metadata.get("referral") if isinstance(metadata.get("referral"), dict) else None
        context = RouteContext(
            trigger=trigger,
            channel=conv.channel,
            language=language,
            text=text,
            source=located.lead.source,
            referral=referral,
            utm=utm_from((referral or {}).get("source_url"), metadata.get("page_url")),
        )
        playbook = await self.playbooks.choose(profile, language, trigger=trigger, context=context)
        conv.playbook_id, conv.playbook_version = playbook.id, playbook.version
        return playbook

    async def _ports(
        self,
        tenant_id: str,
        lead: Lead,
        conv: Conversation,
        *,
        evidence_text: str = "",
        known: Mapping[tuple[str, str], dict[str, Any] | None] | None = None,
    ) -> Ports:
        profile = await self.tenants.profile(tenant_id)
        region = profile.default_region
        if lead.phone:
            with contextlib.suppress(phonenumbers.NumberParseException):
                region = phonenumbers.region_code_for_number(phonenumbers.parse(lead.phone)) or region
        timezone = lead.timezone or profile.timezone
        interpreter = await self.interpreters.for_lead(
            tenant_id, timezone=timezone, default_region=region, conversation_id=conv.id, channel=conv.channel
        )
        # Built without validation: every value is typed here, and validating checked the ports
        # against the engine's runtime-checkable Protocols (an isinstance that lists the
        # Protocol's members on every call): 30 -> 8 us a turn.
        return Ports.model_construct(
            interpreter=interpreter,
            scorer=make_scorer(evidence_text) if evidence_text else None,
            clock=self.clock,
            timezone=timezone,
            default_region=region,
            fallback_text={lang: i18n.text("fallback", lang) for lang in profile.languages},
            calendar=await self.calendar_port(tenant_id, known=known)
            if self.calendar_port is not None
            else None,
        )

    @staticmethod
    def _bare_plan(located: Located, items: list[InboxItem], now: float) -> TurnPlan:
        """A turn with no engine run: record the messages (the caller may add a reply)."""
        plan = TurnPlan(conversation=clone_model(located.conversation), lead=clone_model(located.lead))
        for item in items:
            append_inbound(plan, item, now)
        plan.conversation.updated_at = now
        return plan

    async def _mark_ignored(self, tenant_id: str, items: list[InboxItem], *, reason: str) -> None:
        now = self.clock.now()

        async def fn(tx: Transaction) -> None:
            for item in items:
                tx.set(
                    INBOX,
                    item.id,
                    {"status": "processed", "processed_at": now, "ignored": reason},
                    merge=True,
                )

        await self.store.run_transaction(tenant_id, fn)
        log.info("inbound.ignored", tenant=tenant_id, items=len(items), reason=reason)

    # ------------------------------------------------------------------ commit
    async def _commit(
        self,
        tenant_id: str,
        located: Located,
        plan: TurnPlan,
        *,
        inbox_items: Sequence[InboxItem] = (),
        generation: int | None = None,
        job: Job | None = None,
    ) -> bool:
        """Write the whole turn in one transaction; ``False`` when it must be recomputed.

        Only this lead's documents are read in the transaction (no query: on Firestore a query in
        a transaction locks every document it scans, so a query on the inbox would serialise all
        leads). ``generation`` is the inbound job's generation when the turn read the inbox.
        ``job``, the leased job that runs this turn, is completed in the same transaction
        (:meth:`app.jobs.queue.JobQueue.complete_in`), so the worker writes nothing after it.
        """
        expected = located.conversation.version
        conv, lead = plan.conversation, plan.lead
        if not conv.playbook_id and located.conversation.playbook_id:
            conv.playbook_id = located.conversation.playbook_id
            conv.playbook_version = located.conversation.playbook_version
        conv.version = expected + 1
        now = self.clock.now()
        item_ids = {i.id for i in inbox_items}
        address_key = inbox_items[-1].address_key if inbox_items else None
        hooked = [await hook(tenant_id, located.conversation, plan) for hook in self.turn_hooks]
        extra_writes = [w for w in hooked if w is not None]

        inbound_job_id = job_doc_id("inbound", address_key) if address_key is not None else None
        timer_job_id = job_doc_id("timer", conv.id)
        # The running job's document is also written by the turn when it enqueues the same
        # (kind, key) again (a timer that sets the next timer): then one write does both.
        rewritten = {job_doc_id(j.kind, j.key) for j in plan.jobs}
        if plan.outbox:
            rewritten.add(job_doc_id("dispatch", conv.id))
        if plan.timer is not None and plan.timer.action == "set":
            rewritten.add(timer_job_id)

        completed_in_tx: list[bool] = []  # set by the attempt that completed the job
        # The dispatch job is written leased by this process when a worker here runs this turn's
        # job (so it runs the dispatch too): one write of the document instead of a write, then
        # a lease transaction (JobQueue.write's ``lease``).
        lease_dispatch = job is not None and self.jobs.takes_handovers
        handed: list[Job] = []  # set by the attempt that wrote the dispatch job leased

        # every document the turn reads by id, in one batch read (one round trip on Firestore);
        # only the jobs it may write are read (a read is a lock)
        job_refs = [(col.JOBS, job_doc_id(j.kind, j.key)) for j in plan.jobs]
        if plan.timer:
            job_refs.append((col.JOBS, job_doc_id("timer", conv.id)))
        if plan.outbox:
            job_refs.append((col.JOBS, job_doc_id("dispatch", conv.id)))
        refs = [(CONVERSATIONS, conv.id), (LEADS, lead.id), *job_refs]
        if address_key is not None:
            refs += [(col.JOBS, job_doc_id("inbound", address_key))]
            refs += [(INBOX, item_id) for item_id in sorted(item_ids)]

        async def fn(tx: Transaction) -> bool:
            completed_in_tx.clear()
            handed.clear()
            docs = await tx.get_many(refs)
            current, lead_now = docs[:2]
            jobs_now = docs[2 : 2 + len(job_refs)]
            other_jobs = jobs_now[: len(plan.jobs)]
            dispatch_job = jobs_now.pop() if plan.outbox else None
            timer_job = jobs_now.pop() if plan.timer else None
            if located.conversation_is_new:
                if current is not None:
                    return False
            elif current is None or current.get("version") != expected:
                return False
            own_doc: dict[str, Any] | None = None
            if address_key is not None:
                job_now, *items_now = docs[2 + len(job_refs) :]
                if job is not None and job.id == inbound_job_id:
                    own_doc = job_now
                if not any(i is not None and i.get("status") == "pending" for i in items_now):
                    # processed by someone else: nothing to write but this job's completion
                    if job is not None and own_doc is not None:
                        self.jobs.complete_in(tx, job, own_doc)
                        completed_in_tx.append(True)
                    return True
                if job_now is not None and generation is not None and job_now.get("generation") != generation:
                    return False  # the lead wrote again meanwhile: one turn must read it all
            if located.lead_is_new and lead_now is not None:
                return False  # created concurrently: replay and pick it up
            optout = plan.optout
            ledger_entry = await self.ledger.read(tx, optout.channel, optout.address) if optout else None
            queued = (
                await tx.query(
                    OUTBOX,
                    filters=[where("conversation_id", "==", conv.id), where("status", "==", "pending")],
                )
                if plan.cancel_pending_sends and not located.conversation_is_new
                else []
            )
            if job is not None and job.id != inbound_job_id:
                own_doc = await self.jobs.read_job(tx, job)
            hook_writes = [await hook(tx, located, plan) for hook in self.commit_hooks]
            for extra in extra_writes:
                await extra.read(tx)
            # -- writes
            if job is not None:
                after = self.jobs.complete_in(tx, job, own_doc, write=job.id not in rewritten)
                completed_in_tx.append(True)
                if job.id == timer_job_id:
                    timer_job = after
                if job.id == job_doc_id("dispatch", conv.id):
                    dispatch_job = after
                other_jobs = [
                    after if job_doc_id(j.kind, j.key) == job.id else existing
                    for j, existing in zip(plan.jobs, other_jobs, strict=True)
                ]
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
                        "consent": lead.consent,
                        "updated_at": lead.updated_at,
                        # a number the turn learnt (a call-back's), never one the lead had replaced
                        **({"phone": lead.phone} if lead.phone and not lead_now.get("phone") else {}),
                    },
                    merge=True,
                )
            for message in plan.messages:
                tx.set(messages_collection(conv.id), message.id, message.to_doc())
            for item in plan.outbox:
                tx.set(OUTBOX, item.id, item.to_doc())
            if plan.outbox:
                leased = self.jobs.write(
                    tx, dispatch_job, kind="dispatch", key=conv.id, due_at=now, lease=lease_dispatch
                )
                if leased is not None:
                    handed.append(leased)
            for planned, existing in zip(plan.jobs, other_jobs, strict=True):
                self.jobs.write(
                    tx,
                    existing,
                    kind=planned.kind,  # type: ignore[arg-type]
                    key=planned.key,
                    due_at=planned.due_at,
                    payload=planned.payload,
                    due="exact",
                )
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
            elif (
                plan.timer is not None
                and timer_job is not None
                and timer_job.get("status") == "pending"
                and not (job is not None and job.id == timer_job_id)  # completed above
            ):
                tx.delete(col.JOBS, str(timer_job["id"]))
            if optout is not None:
                self.ledger.write(
                    tx,
                    ledger_entry,
                    channel=optout.channel,
                    address=optout.address,
                    fields={"opted_out": optout.opted_out},
                    source=optout.source,
                )
            blocked = {"action": "block", "reason": "opted_out", "until": None}
            for doc in queued:
                tx.set(OUTBOX, doc.id, {"status": "blocked", "decision": blocked}, merge=True)
                tx.set(
                    messages_collection(conv.id),
                    str(doc.data["message_id"]),
                    {"status": "blocked", "decision": blocked},
                    merge=True,
                )
            for item_id in item_ids:
                tx.set(
                    INBOX,
                    item_id,
                    {"status": "processed", "processed_at": now, "conversation_id": conv.id},
                    merge=True,
                )
            for write in hook_writes:
                if write is not None:
                    write()
            for extra in extra_writes:
                extra.write(tx)
            return True

        # inline: fn and its hooks await nothing but the transaction's reads (one hand-off on SQLite)
        committed = await self.store.run_transaction(tenant_id, fn, inline=True)
        if committed and job is not None and completed_in_tx:
            job.mark_completed()
        if committed:
            for leased in handed:
                self.jobs.hand_over(leased)
        if committed and conv.status == "closed" and located.conversation.status != "closed":
            # The conversation reached its outcome: credit the knowledge entries it used.
            await record_kb_outcome(
                self.store, tenant_id, conv.id, success=lead.stage in ("qualified", "booked")
            )
        if committed:
            wake_at = earliest_job_due(plan, now)
            if wake_at is not None:
                self.jobs.notify(due_at=wake_at)
            log.info(
                "turn.committed",
                tenant=tenant_id,
                conversation=conv.id,
                step=conv.current_step,
                status=conv.status,
                inbound=len(inbox_items),
                replies=len(plan.outbox),
                score=lead.score,
            )
        return bool(committed)
