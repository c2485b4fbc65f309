"""What a web-chat session sees: the messages of its latest conversation, as frames."""

from __future__ import annotations

from typing import Any

from app.composition import Runtime
from app.conversations.records import messages_collection
from app.store import Order, where

__all__ = ["new_messages"]


async def new_messages(
    runtime: Runtime, tenant_id: str, session: str, after_seq: int
) -> list[dict[str, Any]]:
    """Messages of the session's latest web-chat conversation with ``seq > after_seq``."""
    lead = await runtime.conversations.find_lead(tenant_id, "webchat", session)
    if lead is None:
        return []
    conv = await runtime.conversations.latest_conversation(tenant_id, lead.id, "webchat")
    if conv is None:
        return []
    docs = await runtime.store.query(
        tenant_id,
        messages_collection(conv.id),
        filters=[where("seq", ">", after_seq)],
        order_by=[Order("seq")],
    )
    return [
        {
            "type": "message",
            "seq": d.data["seq"],
            "direction": d.data["direction"],
            "text": d.data["text"],
            "choices": d.data.get("choices", []),
            "conversation_id": conv.id,
            "client_id": (d.data.get("provider_message_id") or ":").split(":", 1)[1] or None,
        }
        for d in docs
    ]
