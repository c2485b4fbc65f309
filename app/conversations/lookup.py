"""Which lead and which conversation an inbound message belongs to.

A message is matched to a conversation by, in order: the thread it answers (an email's
In-Reply-To / References naming a message we sent), the lead's latest conversation on the same
channel, then the lead's open conversation on another channel (a lead may answer by email a
question asked on WhatsApp: the conversation follows them). A new lead gets a deterministic id
derived from its address, so two concurrent first messages cannot create two leads.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from app.conversations.records import Conversation, Lead
from app.messaging.dispatcher import PROVIDER_IDS, provider_index_id
from app.messaging.records import InboxItem
from app.store import Order, Store, where
from app.store import collections as col
from channels.registry import channel_class
from kernel.clock import Clock

__all__ = [
    "CONVERSATIONS",
    "LEADS",
    "OPEN_STATUSES",
    "ConversationLocator",
    "Located",
    "address_field",
    "new_lead",
]

LEADS = col.LEADS
CONVERSATIONS = col.CONVERSATIONS
OPEN_STATUSES = ("active", "scheduled", "handoff")


#: Which lead field holds the contact's address on each channel.
def address_field(channel: str) -> str:
    """The lead field holding the contact's address on ``channel`` (its registered traits).

    Raises ``KeyError`` for an unregistered channel."""
    return channel_class(channel).traits.address_field


@dataclass(slots=True)
class Located:
    """The lead and conversation a turn works on, and whether each must be created."""

    conversation: Conversation
    lead: Lead
    conversation_is_new: bool
    lead_is_new: bool


def new_lead(
    tenant_id: str, channel: str, address: str, *, now: float, name: str | None = None, source: str
) -> Lead:
    """A new (unsaved) lead reached at ``address`` on ``channel``.

    Its id derives from the tenant and the address (``ld_`` + 20 hex characters of SHA-256), so the
    first message of a stranger and a lead created through the API for the same address are one
    lead, and two concurrent first messages cannot create two leads. ``now`` is epoch seconds (UTC).
    """
    digest = hashlib.sha256(f"{tenant_id}:{channel}:{address}".encode()).hexdigest()[:20]
    lead = Lead(
        id=f"ld_{digest}", tenant_id=tenant_id, name=name, source=source, created_at=now, updated_at=now
    )
    setattr(lead, address_field(channel), address)
    return lead


class ConversationLocator:
    """Finds (or prepares) the lead and conversation of an inbound message."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def get_lead(self, tenant_id: str, lead_id: str) -> Lead:
        """The lead; raises ``LookupError`` when absent."""
        data = await self.store.get(tenant_id, LEADS, lead_id)
        if data is None:
            raise LookupError(f"lead {lead_id} not found")
        return Lead.from_doc(data)

    async def find_lead(self, tenant_id: str, channel: str, address: str) -> Lead | None:
        """The lead whose address on ``channel`` is ``address`` (oldest first), or ``None``."""
        field = address_field(channel)
        docs = await self.store.query(
            tenant_id, LEADS, filters=[where(field, "==", address)], order_by=[Order("created_at")], limit=1
        )
        return Lead.from_doc(docs[0].data) if docs else None

    async def latest_conversation(
        self, tenant_id: str, lead_id: str, channel: str | None = None
    ) -> Conversation | None:
        """The lead's most recent conversation (on ``channel`` when given)."""
        filters = [where("lead_id", "==", lead_id)]
        if channel is not None:
            filters.append(where("channel", "==", channel))
        docs = await self.store.query(
            tenant_id,
            CONVERSATIONS,
            filters=filters,
            order_by=[Order("created_at", descending=True)],
            limit=1,
        )
        return Conversation.from_doc(docs[0].data) if docs else None

    async def _by_thread(self, tenant_id: str, item: InboxItem) -> Conversation | None:
        metadata = item.payload.get("metadata") or {}
        refs = [metadata.get("in_reply_to"), *reversed(metadata.get("references") or [])]
        for ref in filter(None, refs):
            index = await self.store.get(tenant_id, PROVIDER_IDS, provider_index_id(item.channel, str(ref)))
            if index is not None:
                data = await self.store.get(tenant_id, CONVERSATIONS, str(index["conversation_id"]))
                if data is not None:
                    return Conversation.from_doc(data)
        return None

    async def for_inbound(self, tenant_id: str, item: InboxItem) -> Located:
        """The lead and conversation ``item`` belongs to; new (unsaved) ones when it has none."""
        now = self.clock.now()
        conv = await self._by_thread(tenant_id, item)
        lead = await self.get_lead(tenant_id, conv.lead_id) if conv else None
        if lead is None:
            lead = await self.find_lead(tenant_id, item.channel, item.sender)
        lead_is_new = lead is None
        if lead is None:
            lead = new_lead(
                tenant_id, item.channel, item.sender, now=now, name=item.contact_name, source=item.channel
            )
            if channel_class(item.channel).traits.consent_on_inbound:
                lead.consent[item.channel] = True  # they wrote to us first
        if conv is None and not lead_is_new:
            conv = await self.latest_conversation(tenant_id, lead.id, item.channel)
            if conv is None or conv.status not in OPEN_STATUSES:
                elsewhere = await self.latest_conversation(tenant_id, lead.id)
                if elsewhere is not None and elsewhere.status in OPEN_STATUSES:
                    conv = elsewhere
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
        elif conv.channel != item.channel:
            # The lead answered on another channel: the conversation follows them there.
            conv = conv.model_copy(update={"channel": item.channel, "address": item.sender})
        return Located(conv, lead, conversation_is_new, lead_is_new)
