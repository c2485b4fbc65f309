"""The outbound gate: gathers the facts about one outbox item and applies :func:`decide`.

The dispatcher asks the gate right before every send, so the policy holds for the bot, timers and
human agents alike. The gate reads the lead, the conversation, the opt-out ledger, the lead's
daily counter and the tenant's settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.conversations.records import Conversation, Lead
from app.conversations.views import lead_view
from app.messaging.inbox import INBOX
from app.messaging.records import OutboxItem
from app.policy.optouts import OptOutLedger
from app.policy.quiet_hours import parse_hhmm, resolve_timezone
from app.policy.rules import Decision, OutboundFacts, decide
from app.store import Order, Store, where
from app.store import collections as col
from app.tenancy.directory import TenantDirectory
from app.tenancy.records import TenantProfile
from channels.registry import channel_class
from kernel.clock import Clock
from playbooks.expressions import render, template_context

__all__ = ["COUNTERS", "GateResult", "OutboundGate", "counter_id", "lead_addresses"]

COUNTERS = col.SEND_COUNTERS


def counter_id(lead_id: str, zone: ZoneInfo, at: float) -> str:
    """Document id of the lead's sent-messages counter for the local day of ``at``."""
    return f"{lead_id}:{datetime.fromtimestamp(at, zone).date().isoformat()}"


def lead_addresses(lead: Lead) -> dict[str, str]:
    """The lead's address on each channel it has one for."""
    return lead.addresses()


@dataclass(frozen=True, slots=True)
class GateResult:
    """The decision, the template to send instead of free text (if any), the counter to bump."""

    decision: Decision
    template: dict[str, Any] | None
    counter_id: str


class OutboundGate:
    """Decides, for one outbox item, whether it may be sent now, and how."""

    def __init__(self, *, store: Store, clock: Clock, tenants: TenantDirectory, ledger: OptOutLedger) -> None:
        self.store = store
        self.clock = clock
        self.tenants = tenants
        self.ledger = ledger

    async def check(
        self,
        tenant_id: str,
        item: OutboxItem,
        *,
        channel: str | None = None,
        to: str | None = None,
        conversation: tuple[dict[str, Any] | None] | None = None,
    ) -> GateResult:
        """The decision for ``item`` (or for sending it on ``channel`` to ``to`` instead).

        Three store reads once the tenant's profile is cached: the lead and the conversation (one
        batch), the inbox's "newer message pending" query, then the opt-out ledger's entries and
        the lead's daily counter (one batch). ``conversation`` (a 1-tuple: the item's conversation
        document, ``None`` when absent) is one the caller has just read: then the lead and the
        pending query are one batch (two reads in all)."""
        channel = channel or item.channel
        to = to or item.to
        now = self.clock.now()
        profile = await self.tenants.profile(tenant_id)
        # Read "a newer message is pending" BEFORE the opt-out ledger: the turn that handles a
        # STOP marks it processed and records the opt-out in one transaction, so a STOP no longer
        # pending here is in the ledger read next. The other order let a turn commit between the
        # two reads (no opt-out yet, then nothing pending) and the message went out after a STOP.
        newer_pending = False
        if conversation is not None:
            conv_doc = conversation[0]
            conv = _conversation_facts(conv_doc) if conv_doc else None
            if conv is not None and item.trigger != "agent":
                lead_doc, newer_pending = await self._lead_and_newer_pending(tenant_id, item.lead_id, conv)
            else:
                [lead_doc] = await self.store.get_many(tenant_id, [(col.LEADS, item.lead_id)])
        else:
            lead_doc, conv_doc = await self.store.get_many(
                tenant_id, [(col.LEADS, item.lead_id), (col.CONVERSATIONS, item.conversation_id)]
            )
            conv = _conversation_facts(conv_doc) if conv_doc else None
            if conv is not None and item.trigger != "agent":
                newer_pending = await self._newer_inbound_pending(tenant_id, conv)
        lead = Lead.from_doc(lead_doc or {"id": item.lead_id, "tenant_id": tenant_id})
        zone = resolve_timezone(lead.timezone, lead.phone, profile.timezone)
        # the opt-out ledger's entries and the lead's daily counter in one batch read
        counter = counter_id(lead.id, zone, now)
        refs = self.ledger.block_refs(
            channel=channel,
            address=to,
            lead_addresses=lead_addresses(lead),
            all_channels=profile.optout_all_channels,
        )
        *entries, counter_doc = await self.store.get_many(tenant_id, [*refs, (COUNTERS, counter)])
        opted_out, undeliverable = self.ledger.judge(entries)
        stale = await self._stale(tenant_id, item, conv)
        sent_today = int((counter_doc or {}).get("count", 0))
        has_window = channel_class(channel).traits.session_window_s is not None
        template = self._template(profile, item, lead) if has_window else None
        facts = OutboundFacts(
            channel=channel,
            trigger=item.trigger,
            now=now,
            zone=zone,
            quiet_start=parse_hhmm(profile.quiet_hours_start),
            quiet_end=parse_hhmm(profile.quiet_hours_end),
            allow_direct_replies=profile.quiet_hours_allow_direct_replies,
            opted_out=opted_out,
            undeliverable=undeliverable,
            stale=stale,
            last_inbound_at=(conv.last_inbound_by_channel.get(channel) if conv else None),
            window_seconds=profile.whatsapp_window_hours * 3600,
            has_template=template is not None,
            sent_today=sent_today,
            daily_cap=profile.daily_cap_per_lead,
            not_after=item.not_after,
        )
        decision = decide(facts)
        if newer_pending and decision.action in ("send", "send_template"):
            decision = Decision("defer", "newer_inbound_pending", until=now + 1.0)
        return GateResult(decision, template if decision.action == "send_template" else None, counter)

    @staticmethod
    def _template(profile: TenantProfile, item: OutboxItem, lead: Lead) -> dict[str, Any] | None:
        """The approved template for this message, its parameters rendered for the lead."""
        chosen = item.template or profile.whatsapp_templates.get(item.purpose)
        chosen = chosen or profile.whatsapp_templates.get("default")
        if not chosen:
            return None
        context = template_context(
            lead=lead_view(lead),
            slots=lead.slots,
            score=lead.score,
            language=lead.language or profile.default_language,
        )
        parameters = [render(str(p), context) for p in chosen.get("parameters", [])]
        return {**chosen, "parameters": parameters}

    async def _stale(self, tenant_id: str, item: OutboxItem, conv: Conversation | None) -> bool:
        """A bot message decided before the lead's latest processed message is stale."""
        if conv is None or item.trigger == "agent" or conv.last_inbound_at is None:
            return False
        return conv.last_inbound_at > item.created_at

    async def _newer_inbound_pending(self, tenant_id: str, conv: Conversation) -> bool:
        pending = await self.store.query(tenant_id, INBOX, **_pending_query(conv))
        return bool(pending)

    async def _lead_and_newer_pending(
        self, tenant_id: str, lead_id: str, conv: Conversation
    ) -> tuple[dict[str, Any] | None, bool]:
        """The lead's document, then whether a message from the lead is pending on ``conv``'s
        address (:meth:`_newer_inbound_pending`), in one batch read."""
        [lead_doc], pending = await self.store.get_many_then_query(
            tenant_id, [(col.LEADS, lead_id)], INBOX, **_pending_query(conv)
        )
        return lead_doc, bool(pending)


_UNREAD = frozenset({"events", "state"})
"""The conversation fields the gate does not read: the bulk of its document (up to 200 events,
the engine's state)."""


def _conversation_facts(doc: dict[str, Any]) -> Conversation:
    """The conversation of ``doc`` as the gate reads it (channel, address, inbound times): its
    events and engine state are left out, not parsed (parsing 150 events took about 0.7 ms)."""
    return Conversation.from_doc({k: v for k, v in doc.items() if k not in _UNREAD})


def _pending_query(conv: Conversation) -> dict[str, Any]:
    """The query (filters, order, limit) of "a message from the lead is pending" on ``conv``'s
    address: the same shape as the worker's, so the ``(address_key, status, seq)`` index serves it
    instead of a scan of the tenant's whole inbox."""
    return {
        "filters": [
            where("address_key", "==", f"{conv.channel}:{conv.address}"),
            where("status", "==", "pending"),
        ],
        "order_by": [Order("seq")],
        "limit": 1,
    }
