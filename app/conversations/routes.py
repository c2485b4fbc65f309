"""The tenant admin API (``/api/v1``), authenticated by the tenant's admin key (Bearer).

- ``POST /api/v1/leads``: create (or reuse) a lead and start a playbook on a channel.
- ``GET /api/v1/leads/{id}``.
- ``GET /api/v1/conversations``: newest first, filtered by ``status``, ``channel``, ``lead_id``.
- ``GET /api/v1/conversations/{id}``: messages, slots, score (with reasons), current step, events.

Times in responses are floats, seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import (
    HTTP_201_CREATED,
    HTTP_400_BAD_REQUEST,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
)
from pydantic import BaseModel, Field, field_validator

from app.authoring.repository import PlaybookNotFoundError
from app.authoring.routing import RouteContext
from app.composition import Runtime
from app.conversations import score_reasons
from app.conversations.lookup import CONVERSATIONS, LEADS, address_field, new_lead
from app.conversations.opening import OpeningRefusedError, plan_opening
from app.conversations.planning import TurnPlan, plan_bot_messages
from app.conversations.records import Conversation, messages_collection
from app.store import Order, Transaction, where
from app.store import collections as col

__all__ = ["ROUTES", "LeadCreate"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_OPEN = ("active", "scheduled", "handoff")


class LeadCreate(BaseModel):
    """Body of ``POST /api/v1/leads``. ``channel`` is where the playbook talks to the lead; its
    address (phone for whatsapp/sms, email for email, webchat_id for webchat) is required."""

    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, description="any format; stored as E.164")
    email: str | None = None
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    timezone: str | None = Field(default=None, description="IANA name, e.g. Europe/Paris")
    channel: str = "whatsapp"
    webchat_id: str | None = None
    playbook_id: str | None = None
    consent: dict[str, bool] = Field(default_factory=dict)
    source: str = "api"

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("not an email address")
        return value.strip().lower() if value else value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {value!r}") from exc
        return value


def _bad(reason: str) -> HTTPException:
    return HTTPException(status_code=HTTP_400_BAD_REQUEST, detail=reason)


def _e164(raw: str, region: str | None) -> str:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise _bad(f"phone: {exc}") from exc
    if not phonenumbers.is_valid_number(number):
        raise _bad(f"phone: {raw!r} is not a valid number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@post("/api/v1/leads", status_code=HTTP_201_CREATED, summary="Create a lead and start a playbook")
async def create_lead(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    data: JSONBody[LeadCreate],
) -> Response[Any]:
    """Create the lead (or reuse the one with the same address) and start the playbook.

    400: invalid phone/email/time zone, unknown channel, no playbook for the trigger.
    409: the lead already has an open conversation on that channel.
    422: nothing can reach the lead (opted out; WhatsApp outside the 24-hour window without an
    approved template or a fallback channel): ``error``, ``detail`` and what is ``missing``.
    On WhatsApp outside the window, the opening template is sent alone and the playbook starts when
    the lead answers (``opening: template``).
    """
    profile = await runtime.tenants.profile(tenant_id)
    if data.channel not in runtime.channels.names():
        raise _bad(f"unknown channel {data.channel!r}; one of {runtime.channels.names()}")
    phone = _e164(data.phone, profile.default_region) if data.phone else None
    session_based = address_field(data.channel) == "webchat_id"
    webchat_id = data.webchat_id or (f"wc_{uuid.uuid4().hex}" if session_based else None)
    values = {"phone": phone, "email": data.email, "webchat_id": webchat_id}
    field = address_field(data.channel)
    address = values.get(field)
    if not address:
        raise _bad(f"channel {data.channel!r} needs the lead's {field}")
    try:
        playbook = (
            await runtime.playbooks.get(tenant_id, data.playbook_id)
            if data.playbook_id
            else await runtime.playbooks.choose(
                profile,
                data.language,
                trigger="lead_created",
                context=RouteContext(
                    trigger="lead_created", channel=data.channel, language=data.language, source=data.source
                ),
            )
        )
    except PlaybookNotFoundError as exc:
        raise _bad(str(exc)) from exc
    if "lead_created" not in playbook.triggers:
        raise _bad(f"playbook {playbook.id!r} does not start on 'lead_created'")
    now = runtime.clock.now()
    existing = await runtime.conversations.find_lead(tenant_id, data.channel, address)
    lead = existing or new_lead(tenant_id, data.channel, address, now=now, source=data.source)
    for key, value in {
        "name": data.name,
        "language": data.language,
        "timezone": data.timezone,
        **values,
    }.items():
        if value is not None and getattr(lead, key) in (None, ""):
            setattr(lead, key, value)
    lead.consent.update(data.consent)
    lead.updated_at = now
    current = None
    if existing is not None:
        current = await runtime.conversations.latest_conversation(tenant_id, lead.id, data.channel)
        if current is not None and current.status in _OPEN:
            return Response(
                {
                    "error": "lead already has an open conversation on this channel",
                    "lead_id": lead.id,
                    "conversation_id": current.id,
                },
                status_code=HTTP_409_CONFLICT,
            )
    try:
        opening = await plan_opening(
            tenant_id=tenant_id,
            profile=profile,
            playbook=playbook,
            lead=lead,
            channel=data.channel,
            address=address,
            previous=current,
            channels=runtime.channels,
            optouts=runtime.optouts,
            now=now,
        )
    except OpeningRefusedError as exc:
        return Response(
            {"error": exc.reason, "detail": str(exc), "missing": exc.missing},
            status_code=HTTP_422_UNPROCESSABLE_ENTITY,
        )
    conv = Conversation(
        id=f"cv_{uuid.uuid4().hex[:20]}",
        tenant_id=tenant_id,
        lead_id=lead.id,
        channel=opening.channel,
        address=opening.address,
        playbook_id=playbook.id,
        playbook_version=playbook.version,
        opened_with_template=opening.mode == "template",
        created_at=now,
        updated_at=now,
    )
    plan = TurnPlan(conversation=conv, lead=lead, trigger="start")
    if opening.template is not None:
        summary = f"[WhatsApp template {opening.template['name']}]"
        plan_bot_messages(plan, [summary], now, purpose="template")
        plan.outbox[-1].template = opening.template

    async def fn(tx: Transaction) -> None:
        kind: Any = "dispatch" if plan.outbox else "start"
        job = await runtime.jobs.read(tx, kind, conv.id)
        tx.set(LEADS, lead.id, lead.to_doc())
        tx.set(CONVERSATIONS, plan.conversation.id, plan.conversation.to_doc())
        for message in plan.messages:
            tx.set(messages_collection(conv.id), message.id, message.to_doc())
        for item in plan.outbox:
            tx.set(col.OUTBOX, item.id, item.to_doc())
        runtime.jobs.write(tx, job, kind=kind, key=conv.id, due_at=now)

    await runtime.store.run_transaction(tenant_id, fn)
    runtime.jobs.notify()
    return Response(
        {
            "lead": lead.to_doc(),
            "conversation_id": conv.id,
            "playbook_id": playbook.id,
            "playbook_version": playbook.version,
            "channel": opening.channel,
            "opening": opening.mode,
            "template": opening.template["name"] if opening.template else None,
            "rerouted_from": opening.rerouted_from,
        },
        status_code=HTTP_201_CREATED,
    )


@get("/api/v1/leads/{lead_id:str}", summary="One lead")
async def get_lead(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    lead_id: FromPath[str],
) -> dict[str, Any]:
    """The lead record (404 if absent)."""
    data = await runtime.store.get(tenant_id, LEADS, lead_id)
    if data is None:
        raise NotFoundException(f"lead {lead_id} not found")
    return data


@get("/api/v1/conversations", summary="Conversations, newest first")
async def list_conversations(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    status: FromQuery[str | None] = None,
    channel: FromQuery[str | None] = None,
    lead_id: FromQuery[str | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Summaries (no messages) of the tenant's conversations."""
    filters = [
        where(k, "==", v) for k, v in (("status", status), ("channel", channel), ("lead_id", lead_id)) if v
    ]
    docs = await runtime.store.query(
        tenant_id,
        CONVERSATIONS,
        filters=filters,
        order_by=[Order("created_at", descending=True)],
        limit=limit,
    )
    keep = (
        "id",
        "lead_id",
        "channel",
        "status",
        "playbook_id",
        "playbook_version",
        "current_step",
        "outcome",
        "message_count",
        "last_inbound_at",
        "last_outbound_at",
        "created_at",
        "updated_at",
    )
    return {"conversations": [{k: d.data.get(k) for k in keep} for d in docs]}


@get("/api/v1/conversations/{conversation_id:str}", summary="One conversation with its messages")
async def get_conversation(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    conversation_id: FromPath[str],
) -> dict[str, Any]:
    """The conversation, its lead's slots and score, and its messages in order (404 if absent)."""
    store = runtime.store
    data = await store.get(tenant_id, CONVERSATIONS, conversation_id)
    if data is None:
        raise NotFoundException(f"conversation {conversation_id} not found")
    conv = Conversation.from_doc(data)
    lead = await store.get(tenant_id, LEADS, conv.lead_id) or {}
    messages = await store.query(tenant_id, messages_collection(conversation_id), order_by=[Order("seq")])
    reasons = [score_reasons.tagged(e.detail) for e in conv.events if e.type == "score_changed"]
    outbox = await store.query(
        tenant_id,
        "outbox",
        filters=[where("conversation_id", "==", conversation_id)],
        order_by=[Order("seq")],
    )
    decisions = sorted(
        (
            {
                "message_id": o.data["message_id"],
                "status": o.data["status"],
                "channel": o.data["channel"],
                **(o.data.get("decision") or {}),
            }
            for o in outbox
        ),
        key=lambda d: str(d["message_id"]),
    )
    return {
        **conv.to_doc(),
        "cost_usd": int(conv.llm_usage.get("cost_micro_usd", 0)) / 1_000_000,
        "delivery_decisions": decisions,
        "lead": lead,
        "slots": lead.get("slots", {}),
        "score": lead.get("score", 0),
        "score_reasons": reasons,
        "messages": [m.data for m in messages],
    }


#: The routes this module serves (registered by its capability's feature plugin).
ROUTES = (create_lead, get_lead, list_conversations, get_conversation)
