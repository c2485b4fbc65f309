"""The API behind the conversation view's actions and the lead page (``/api/v1``; admin key or
dashboard session, see :mod:`app.dashboard.auth`: every role reads, agents and up write).

- ``GET /api/v1/conversations/{id}/handling``: what a person needs to act on a conversation: its
  status, its handoff (or ``null``), the playbook's steps to hand back to, the default resume step,
  and the internal notes.
- ``POST /api/v1/conversations/{id}/takeover``: a person takes the conversation (the bot stops
  answering it; :meth:`app.handoff.service.HandoffService.take_over`). 404 unknown, 409 closed.
- ``GET /api/v1/conversations/{id}/notes``, ``POST`` ``{"text"}``: the team's internal notes on a
  conversation. A note is stored (``conversations/{id}/notes``) and shown to the team only; it is
  never queued for the lead (no outbox item, no message).
- ``GET /api/v1/leads/{id}/overview``: the lead page's data: the lead, its answers (slots), its
  conversations, a timeline across channels (messages, handoff events, score changes, bookings,
  CRM sync attempts, notes; newest :data:`TIMELINE_LIMIT`), the score history with evidence, the
  bookings and the CRM sync status per connection.

The author of a note or a take-over is the signed-in user (their email), or ``admin-key`` when a
machine calls with the admin key. Times are floats, seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_409_CONFLICT
from pydantic import BaseModel, Field, field_validator

from app.authoring.repository import PlaybookNotFoundError
from app.composition import Runtime
from app.conversations import score_reasons
from app.core.records import Record
from app.dashboard.auth import request_session
from app.dashboard.people import PeopleDirectory
from app.handoff.service import HandoffConflictError, HandoffNotFoundError, HandoffService
from app.store import Order, where
from app.store import collections as col

__all__ = [
    "MESSAGES_PER_CONVERSATION",
    "NOTES_LIMIT",
    "ROUTES",
    "TIMELINE_LIMIT",
    "Note",
    "NoteIn",
]

#: Most notes a conversation lists (the newest, shown oldest first).
NOTES_LIMIT = 200
#: Most conversations of a lead the lead page reads (the newest).
CONVERSATIONS_LIMIT = 20
#: Most messages per conversation the lead page's timeline reads (the newest).
MESSAGES_PER_CONVERSATION = 200
#: Most entries of the lead page's timeline (the newest).
TIMELINE_LIMIT = 500
_ROWS_LIMIT = 100
_HANDOFF_EVENTS = ("handoff", "handoff.")
_RANK = {("message", "inbound"): 0, ("message", "outbound"): 2, ("note", None): 3}
_BOOKING_FIELDS = (
    "id",
    "conversation_id",
    "status",
    "title",
    "start",
    "end",
    "provider",
    "reason",
    "created_at",
)
_SYNC_FIELDS = ("id", "connection_id", "provider", "type", "status", "attempt", "error", "duration_ms", "at")
_CONVERSATION_FIELDS = (
    "id",
    "channel",
    "status",
    "playbook_id",
    "playbook_version",
    "current_step",
    "created_at",
    "updated_at",
)


class NoteIn(BaseModel):
    """Body of ``POST /api/v1/conversations/{id}/notes``: 1 to 4000 characters of plain text."""

    text: str = Field(min_length=1, max_length=4000)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a note needs some text")
        return value.strip()


class Note(Record):
    """An internal note on a conversation (``conversations/{id}/notes``), for the team only.
    ``author`` is the writer's email (``admin-key`` for a machine); ``created_at`` epoch seconds."""

    id: str
    conversation_id: str
    lead_id: str
    author: str
    text: str
    created_at: float


async def _author(request: Request[Any, Any, Any], people: PeopleDirectory) -> str:
    if request.headers.get("authorization"):
        return "admin-key"
    session = await request_session(request, people)
    return session.user.email if session is not None else "unknown"


async def _conversation(runtime: Runtime, tenant_id: str, conversation_id: str) -> dict[str, Any]:
    data = await runtime.store.get(tenant_id, col.CONVERSATIONS, conversation_id)
    if data is None:
        raise NotFoundException(f"conversation {conversation_id!r} not found")
    return data


async def _notes(runtime: Runtime, tenant_id: str, conversation_id: str) -> list[dict[str, Any]]:
    docs = await runtime.store.query(
        tenant_id,
        col.notes_collection(conversation_id),
        order_by=[Order("created_at", descending=True), Order("id", descending=True)],
        limit=NOTES_LIMIT,
    )
    return [d.data for d in reversed(docs)]


@get("/api/v1/conversations/{conversation_id:str}/handling", summary="What a person needs to act")
async def handling(
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    handoff: NamedDependency[HandoffService],
    conversation_id: FromPath[str],
) -> dict[str, Any]:
    """``{conversation_id, lead_id, status, handoff, steps: [{id, type}], resume_step, notes}``;
    404 for an unknown conversation."""
    conv = await _conversation(runtime, tenant_id, conversation_id)
    record = await handoff.get(tenant_id, conversation_id)
    steps: list[dict[str, str]] = []
    try:
        playbook = await runtime.playbooks.get(
            tenant_id, str(conv.get("playbook_id")), int(conv.get("playbook_version") or 0) or None
        )
        steps = [{"id": s.id, "type": str(getattr(s, "type", ""))} for s in playbook.steps]
    except PlaybookNotFoundError:
        pass
    resume = record.resume_step if record is not None else None
    return {
        "conversation_id": conversation_id,
        "lead_id": conv.get("lead_id"),
        "status": conv.get("status"),
        "current_step": conv.get("current_step"),
        "handoff": record.to_doc() if record is not None else None,
        "steps": steps,
        "resume_step": resume or conv.get("current_step"),
        "notes": await _notes(runtime, tenant_id, conversation_id),
    }


@post(
    "/api/v1/conversations/{conversation_id:str}/takeover",
    status_code=HTTP_200_OK,
    summary="A person takes the conversation over",
)
async def take_over(
    request: Request[Any, Any, Any],
    tenant_id: NamedDependency[str],
    people: NamedDependency[PeopleDirectory],
    handoff: NamedDependency[HandoffService],
    conversation_id: FromPath[str],
) -> dict[str, Any]:
    """The bot stops answering; ``{conversation_id, status: "handoff", answered_by}``. 404 unknown
    conversation, 409 closed."""
    by = await _author(request, people)
    try:
        record = await handoff.take_over(tenant_id, conversation_id, by=by)
    except HandoffNotFoundError as exc:
        raise NotFoundException(str(exc)) from None
    except HandoffConflictError as exc:
        raise HTTPException(status_code=HTTP_409_CONFLICT, detail=str(exc)) from None
    return {"conversation_id": conversation_id, "status": "handoff", "answered_by": record.answered_by}


@get("/api/v1/conversations/{conversation_id:str}/notes", summary="Internal notes of a conversation")
async def list_notes(
    runtime: NamedDependency[Runtime], tenant_id: NamedDependency[str], conversation_id: FromPath[str]
) -> dict[str, Any]:
    """``{"notes": [...]}`` oldest first (the newest :data:`NOTES_LIMIT`); 404 unknown conversation."""
    await _conversation(runtime, tenant_id, conversation_id)
    return {"notes": await _notes(runtime, tenant_id, conversation_id)}


@post(
    "/api/v1/conversations/{conversation_id:str}/notes",
    status_code=HTTP_201_CREATED,
    summary="Add an internal note (never sent to the lead)",
)
async def add_note(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    people: NamedDependency[PeopleDirectory],
    conversation_id: FromPath[str],
    data: JSONBody[NoteIn],
) -> dict[str, Any]:
    """Store the note; the stored note back. 400 empty text, 404 unknown conversation."""
    conv = await _conversation(runtime, tenant_id, conversation_id)
    note = Note(
        # Sortable: notes written in the same clock tick keep the order they were written in.
        id=f"nt_{time.time_ns():020d}_{uuid.uuid4().hex[:8]}",
        conversation_id=conversation_id,
        lead_id=str(conv.get("lead_id")),
        author=await _author(request, people),
        text=data.text,
        created_at=runtime.clock.now(),
    )
    await runtime.store.set(tenant_id, col.notes_collection(conversation_id), note.id, note.to_doc())
    return note.to_doc()


# ---------------------------------------------------------------------- the lead page


def _event_entry(conv: dict[str, Any], event: dict[str, Any]) -> dict[str, Any] | None:
    kind = str(event.get("type") or "")
    detail = event.get("detail") or {}
    base = {
        "at": float(event.get("at") or 0.0),
        "conversation_id": conv.get("id"),
        "channel": conv.get("channel"),
    }
    if kind.startswith(_HANDOFF_EVENTS):
        return {
            **base,
            "kind": "handoff",
            "event": kind,
            "by": detail.get("by"),
            "reason": detail.get("reason"),
            "note": detail.get("note"),
            "step_id": detail.get("resume_step") or detail.get("step_id"),
        }
    if kind == "score_changed":
        detail = score_reasons.tagged(detail)  # events stored before reasons had codes
        return {
            **base,
            "kind": "score",
            "points": detail.get("points"),
            "score": detail.get("score"),
            "reason": detail.get("reason"),
            "reason_code": detail.get("reason_code"),
            "reason_params": detail.get("reason_params"),
            "evidence": detail.get("evidence"),
            "step_id": detail.get("step_id"),
        }
    return None


async def _messages(runtime: Runtime, tenant_id: str, conversation_id: str) -> list[dict[str, Any]]:
    docs = await runtime.store.query(
        tenant_id,
        col.messages_collection(conversation_id),
        order_by=[Order("seq", descending=True)],
        limit=MESSAGES_PER_CONVERSATION,
    )
    return [d.data for d in docs]


async def _query(
    runtime: Runtime, tenant_id: str, collection: str, lead_id: str, order: str
) -> list[dict[str, Any]]:
    docs = await runtime.store.query(
        tenant_id,
        collection,
        filters=[where("lead_id", "==", lead_id)],
        order_by=[Order(order, descending=True)],
        limit=_ROWS_LIMIT,
    )
    return [d.data for d in docs]


@get("/api/v1/leads/{lead_id:str}/overview", summary="A lead's timeline, answers, score, bookings, CRM")
async def lead_overview(
    runtime: NamedDependency[Runtime], tenant_id: NamedDependency[str], lead_id: FromPath[str]
) -> dict[str, Any]:
    """See the module docstring. ``timeline`` is newest first; each entry has ``at``, ``kind``
    (``message``, ``handoff``, ``score``, ``booking``, ``sync``, ``note``) and the kind's fields.
    ``crm`` lists each connection's link (``status`` pending/synced/dead, ``synced_at``,
    ``last_error``) with its newest sync attempts. 404 for an unknown lead."""
    lead = await runtime.store.get(tenant_id, col.LEADS, lead_id)
    if lead is None:
        raise NotFoundException(f"lead {lead_id!r} not found")
    conv_docs = await runtime.store.query(
        tenant_id,
        col.CONVERSATIONS,
        filters=[where("lead_id", "==", lead_id)],
        order_by=[Order("created_at", descending=True)],
        limit=CONVERSATIONS_LIMIT,
    )
    convs = [d.data for d in conv_docs]
    per_conv_messages, per_conv_notes, bookings, links, logs = await asyncio.gather(
        asyncio.gather(*(_messages(runtime, tenant_id, str(c["id"])) for c in convs)),
        asyncio.gather(*(_notes(runtime, tenant_id, str(c["id"])) for c in convs)),
        _query(runtime, tenant_id, col.BOOKINGS, lead_id, "created_at"),
        _query(runtime, tenant_id, col.CRM_LINKS, lead_id, "queued_at"),
        _query(runtime, tenant_id, col.CRM_SYNC_LOGS, lead_id, "at"),
    )
    timeline: list[dict[str, Any]] = []
    score_history: list[dict[str, Any]] = []
    for conv, messages, notes in zip(convs, per_conv_messages, per_conv_notes, strict=True):
        for m in reversed(messages):  # oldest first
            timeline.append(
                {
                    "at": float(m.get("created_at") or 0.0),
                    "kind": "message",
                    "conversation_id": conv.get("id"),
                    "channel": m.get("channel") or conv.get("channel"),
                    "direction": m.get("direction"),
                    "sender": m.get("sender"),
                    "text": m.get("text"),
                    "status": m.get("status"),
                }
            )
        for event in conv.get("events") or []:
            entry = _event_entry(conv, event) if isinstance(event, dict) else None
            if entry is None:
                continue
            timeline.append(entry)
            if entry["kind"] == "score":
                score_history.append(entry)
        for n in notes:
            timeline.append(
                {
                    "at": float(n.get("created_at") or 0.0),
                    "kind": "note",
                    "conversation_id": conv.get("id"),
                    "channel": conv.get("channel"),
                    "author": n.get("author"),
                    "text": n.get("text"),
                }
            )
    booking_rows = [{k: b.get(k) for k in _BOOKING_FIELDS} for b in bookings]
    for b in booking_rows:
        timeline.append({"at": float(b.get("created_at") or 0.0), "kind": "booking", **b})
    sync_rows = [{k: s.get(k) for k in _SYNC_FIELDS} for s in logs]
    for s in sync_rows:
        timeline.append({**s, "kind": "sync", "at": float(s.get("at") or 0.0)})
    # Oldest first (stable), then reversed. At one instant a turn reads: the lead's message, what
    # the bot decided (score, handoff), then its replies.
    timeline.sort(key=lambda e: (e["at"], _RANK.get((e["kind"], e.get("direction")), 1)))
    timeline.reverse()
    score_history.sort(key=lambda e: e["at"])
    crm = [
        {
            "connection_id": link.get("connection_id"),
            "provider": link.get("provider"),
            "status": link.get("status"),
            "remote_ids": link.get("remote_ids") or {},
            "queued_at": link.get("queued_at"),
            "synced_at": link.get("synced_at"),
            "last_error": link.get("last_error"),
            "attempts": link.get("attempts"),
            "logs": [s for s in sync_rows if s.get("connection_id") == link.get("connection_id")][:10],
        }
        for link in links
    ]
    return {
        "lead": lead,
        "slots": lead.get("slots") or {},
        "score": int(lead.get("score") or 0),
        "conversations": [{k: c.get(k) for k in _CONVERSATION_FIELDS} for c in convs],
        "timeline": timeline[:TIMELINE_LIMIT],
        "score_history": score_history,
        "bookings": booking_rows,
        "crm": crm,
    }


#: The routes this module serves (registered by :class:`app.dashboard.plugin.DashboardFeature`).
ROUTES = (handling, take_over, list_notes, add_note, lead_overview)
