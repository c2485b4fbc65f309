"""The handoff API (``/api/v1``, the tenant's admin key as Bearer).

- ``POST /api/v1/conversations/{id}/messages``: a person answers the lead (through the outbound
  policy: opt-outs and the WhatsApp window apply; quiet hours do not stop a direct answer to a lead
  who just wrote). A conversation the bot was running is taken over.
- ``POST /api/v1/conversations/{id}/handback``: the bot resumes, at ``step_id`` or where it paused.
- ``GET /api/v1/conversations/{id}/handoff``: the conversation's current handoff.
- ``POST /api/v1/handoff/webhook-secret``: a new signing secret for the handoff webhook, shown once.
"""

from __future__ import annotations

from typing import Any

from litestar import get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_409_CONFLICT
from pydantic import BaseModel, Field

from app.handoff.service import HandoffConflictError, HandoffNotFoundError, HandoffService

__all__ = ["ROUTES", "AgentMessage", "Handback"]


class AgentMessage(BaseModel):
    """Body of ``POST /api/v1/conversations/{id}/messages``. ``author`` names the person (kept on
    the conversation's events)."""

    text: str = Field(min_length=1, max_length=4096)
    author: str = Field(default="agent", min_length=1, max_length=120)


class Handback(BaseModel):
    """Body of ``POST /api/v1/conversations/{id}/handback``: ``step_id`` to resume at (default:
    where the handoff paused the playbook), a ``note`` and who hands back (``by``)."""

    note: str | None = Field(default=None, max_length=2000)
    step_id: str | None = Field(default=None, max_length=200)
    by: str = Field(default="agent", min_length=1, max_length=120)


def _http(exc: HandoffNotFoundError | HandoffConflictError) -> HTTPException:
    if isinstance(exc, HandoffNotFoundError):
        return NotFoundException(str(exc))
    return HTTPException(status_code=HTTP_409_CONFLICT, detail=str(exc))


@post(
    "/api/v1/conversations/{conversation_id:str}/messages",
    status_code=HTTP_201_CREATED,
    summary="A person answers the lead",
)
async def post_agent_message(
    conversation_id: FromPath[str],
    tenant_id: NamedDependency[str],
    handoff: NamedDependency[HandoffService],
    data: JSONBody[AgentMessage],
) -> dict[str, Any]:
    """Queue a person's message; 404 unknown conversation, 409 closed conversation."""
    try:
        message = await handoff.agent_message(tenant_id, conversation_id, text=data.text, author=data.author)
    except (HandoffNotFoundError, HandoffConflictError) as exc:
        raise _http(exc) from None
    return {"conversation_id": conversation_id, "message_id": message.id, "status": message.status}


@post(
    "/api/v1/conversations/{conversation_id:str}/handback",
    status_code=HTTP_200_OK,
    summary="Return a handed-off conversation to the bot",
)
async def post_handback(
    conversation_id: FromPath[str],
    tenant_id: NamedDependency[str],
    handoff: NamedDependency[HandoffService],
    data: JSONBody[Handback],
) -> dict[str, Any]:
    """Resume the playbook; 404 unknown conversation or step, 409 not in handoff."""
    try:
        conv = await handoff.hand_back(
            tenant_id, conversation_id, by=data.by, note=data.note, step_id=data.step_id
        )
    except (HandoffNotFoundError, HandoffConflictError) as exc:
        raise _http(exc) from None
    return {"conversation_id": conv.id, "status": conv.status, "current_step": conv.current_step}


@get("/api/v1/conversations/{conversation_id:str}/handoff", summary="The conversation's handoff")
async def get_handoff(
    conversation_id: FromPath[str], tenant_id: NamedDependency[str], handoff: NamedDependency[HandoffService]
) -> dict[str, Any]:
    """The current (or latest) handoff of the conversation; 404 if it never had one."""
    record = await handoff.get(tenant_id, conversation_id)
    if record is None:
        raise NotFoundException(f"conversation {conversation_id!r} has no handoff")
    return record.to_doc()


@post("/api/v1/handoff/webhook-secret", status_code=HTTP_201_CREATED, summary="Rotate the webhook secret")
async def rotate_webhook_secret(
    tenant_id: NamedDependency[str], handoff: NamedDependency[HandoffService]
) -> dict[str, Any]:
    """A new signing secret for the handoff webhook (the old one stops at once). Shown only here."""
    secret = await handoff.secrets.rotate(tenant_id)
    return {"secret": secret, "header": "LeadWarm-Signature", "scheme": "t=<unix>,v1=<hex HMAC-SHA256>"}


ROUTES = (post_agent_message, post_handback, get_handoff, rotate_webhook_secret)
