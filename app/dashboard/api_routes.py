"""The API the dashboard's pages read (``/api/v1``; admin key or dashboard session, see
:mod:`app.dashboard.auth`).

- ``GET /api/v1/me``: the signed-in user (session only; 404 with the admin key).
- ``GET /api/v1/users``: the tenant's people (id, email, name, role).
- ``POST /api/v1/invitations`` ``{"email", "role"}``: invite a colleague (owner only when signed
  in). The link (under ``PUBLIC_BASE_URL``) goes out through the tenant's email channel; when none
  is configured (or sending fails) the answer carries ``link`` for the owner to pass on, else
  ``"sent": true``.
- ``GET /api/v1/inbox``: conversations for people: handoffs first (longest waiting first), then the
  newest; filters ``status``, ``channel``, ``playbook``, ``min_score``; each row has the lead's name
  and score and ``waiting_s`` (seconds since the handoff) for handoffs, ``call_back`` (true when the
  lead asked to be called back).
- ``GET /api/v1/leads``: leads newest first; filters ``q`` (name, email or phone contains),
  ``stage``, ``source``, ``channel`` (the lead has an address there), ``min_score``.
- ``GET /api/v1/leads.csv``: the same list as CSV (same filters).
- ``GET /api/v1/analytics/playbooks``: per playbook, conversations started, the per-step funnel
  (conversations that reached each message/ask step, and the drop-off from the step before),
  qualification rate, handoffs, average score and model cost (USD, total and per conversation).

Lists read at most :data:`SCAN_LIMIT` newest records of a collection (a bounded page, never the
whole store). Times are UTC epoch seconds.
"""

from __future__ import annotations

import asyncio
import csv
import io
from functools import partial
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from litestar.params import FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_400_BAD_REQUEST
from pydantic import BaseModel, Field

from app.authoring.repository import PlaybookNotFoundError
from app.composition import Runtime
from app.core.coded_errors import bad_request
from app.core.logs import get_logger
from app.dashboard.auth import request_session
from app.dashboard.people import PeopleDirectory, PeopleError, Role
from app.dashboard.speed import RECENT, freshness, reports, steps_reached
from app.store import Order, cursor_of, where
from app.store.collections import CONVERSATIONS, LEADS, messages_collection
from channels.base import OutboundMessage, SendError
from channels.registry import CHANNELS

__all__ = ["HANDOFF_LIMIT", "ROUTES", "SCAN_LIMIT", "InvitationIn", "analytics_reports", "warm_analytics"]

log = get_logger("leadwarm.dashboard")

#: Most records one list or report reads from a collection (the newest ones).
SCAN_LIMIT = 2000
#: Most open handoffs the inbox lists (the oldest, that is the longest waiting, first).
HANDOFF_LIMIT = 200
_FUNNEL_TYPES = ("message", "ask")
_CSV_FIELDS = ("id", "name", "email", "phone", "stage", "score", "source", "channels", "created_at")


class InvitationIn(BaseModel):
    """Body of ``POST /api/v1/invitations``."""

    email: str = Field(min_length=3, max_length=254)
    role: Role = "agent"


def _bad(reason: str) -> HTTPException:
    return HTTPException(status_code=HTTP_400_BAD_REQUEST, detail=reason)


@get("/api/v1/me", summary="The signed-in dashboard user")
async def me(
    request: Request[Any, Any, Any], tenant_id: NamedDependency[str], people: NamedDependency[PeopleDirectory]
) -> dict[str, Any]:
    """The session's user (404 when called with the admin key)."""
    session = await request_session(request, people)
    if session is None or request.headers.get("authorization"):
        raise NotFoundException("no dashboard session")
    return {**session.user.public(), "tenant_id": tenant_id, "expires_at": session.expires_at}


@get("/api/v1/users", summary="The tenant's people")
async def list_users(
    tenant_id: NamedDependency[str], people: NamedDependency[PeopleDirectory]
) -> dict[str, Any]:
    """Every user of the tenant (never a password hash)."""
    return {"users": [u.public() for u in await people.users(tenant_id)]}


@post("/api/v1/invitations", status_code=HTTP_201_CREATED, summary="Invite a colleague")
async def create_invitation(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    people: NamedDependency[PeopleDirectory],
    data: JSONBody[InvitationIn],
) -> Response[Any]:
    """Invite ``email`` with ``role``; 400 on a bad email or an existing user; 403 for non-owners."""
    session = await request_session(request, people)
    by_key = bool(request.headers.get("authorization"))
    if not by_key and (session is None or session.user.role != "owner"):
        raise PermissionDeniedException("only an owner invites people")
    inviter = "admin-key" if by_key or session is None else session.user.id
    try:
        invitation = await people.invite(tenant_id, data.email, role=data.role, invited_by=inviter)
    except PeopleError as exc:
        raise bad_request(str(exc), exc.code, exc.params) from exc
    # PUBLIC_BASE_URL, never the request's Host header (which a client chooses).
    link = f"{runtime.settings.public_base_url.rstrip('/')}/app/invite/{invitation.token}"
    sent = await _send_invitation(runtime, tenant_id, invitation.email, link)
    body: dict[str, Any] = {"email": invitation.email, "role": invitation.role, "sent": sent}
    if not sent:
        body["link"] = link
    return Response(body, status_code=HTTP_201_CREATED)


async def _send_invitation(runtime: Runtime, tenant_id: str, email: str, link: str) -> bool:
    """Mail the link through the tenant's email channel; ``False`` when there is none or it fails."""
    if "email" not in runtime.channels.names():
        return False
    try:
        channel = await runtime.channels.resolve(tenant_id, "email")
        profile = await runtime.tenants.profile(tenant_id)
        await channel.send(
            OutboundMessage(
                to=email,
                subject=f"{profile.name}: LeadWarm invitation / invitation",
                text=(
                    f"You are invited to {profile.name}'s LeadWarm dashboard. Choose your password here"
                    f" (valid 7 days, once):\n{link}\n\nVous êtes invité(e) sur le tableau de bord"
                    f" LeadWarm de {profile.name}. Choisissez votre mot de passe ici (valable 7 jours,"
                    f" une fois) :\n{link}\n"
                ),
                idempotency_key=f"invite-{email}",
            )
        )
    except (SendError, KeyError, NotImplementedError, OSError):
        return False
    return True


async def _leads_by_id(runtime: Runtime, tenant_id: str, ids: set[str]) -> dict[str, dict[str, Any]]:
    """The leads of ``ids`` in one batched read (``Store.get_many``), missing ones left out."""
    wanted = sorted(ids)
    docs = await runtime.store.get_many(tenant_id, [(LEADS, i) for i in wanted])
    return {i: d for i, d in zip(wanted, docs, strict=True) if d is not None}


def _call_back_asked(conv: dict[str, Any]) -> bool:
    """Whether the conversation's latest handoff is a call-back the lead asked for."""
    for event in reversed(conv.get("events") or []):
        if isinstance(event, dict) and event.get("type") == "handoff.requested":
            return bool((event.get("detail") or {}).get("call_back"))
    return False


def _handoff_since(conv: dict[str, Any]) -> float | None:
    events = conv.get("events") or []
    for event in reversed(events):
        if isinstance(event, dict) and event.get("type") == "handoff":
            return float(event.get("at") or 0.0)
    return float(conv.get("updated_at") or 0.0)


@get("/api/v1/inbox", summary="Conversations for people, handoffs first")
async def inbox(
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    status: FromQuery[str | None] = None,
    channel: FromQuery[str | None] = None,
    playbook: FromQuery[str | None] = None,
    min_score: Annotated[int | None, QueryParameter(ge=0, le=100)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """See the module docstring; ``handoffs`` counts the handoffs among the rows read.

    Without ``min_score`` it reads the open handoffs (oldest first, at most :data:`HANDOFF_LIMIT`) and
    the newest ``limit`` conversations, and the leads of the ``limit`` rows shown only; with
    ``min_score`` it reads the newest ``5 * limit`` conversations and their leads, and while fewer
    than ``limit`` match, further back (``20 * limit``, then :data:`SCAN_LIMIT`), then filters."""
    filters = [where(k, "==", v) for k, v in (("channel", channel), ("playbook_id", playbook)) if v]
    if status:
        filters.append(where("status", "==", status))
    filters.append(RECENT)

    order = [Order("created_at", descending=True)]

    async def older(count: int, after: list[Any] | None) -> list[Any]:
        return await runtime.store.query(
            tenant_id, CONVERSATIONS, filters=filters, order_by=order, limit=count, start_after=after
        )

    asked = limit if min_score is None else min(5 * limit, SCAN_LIMIT)
    docs = await older(asked, None)
    if status in (None, "handoff"):
        handoffs = await runtime.store.query(
            tenant_id,
            CONVERSATIONS,
            filters=[*[f for f in filters if f.field != "status"], where("status", "==", "handoff")],
            order_by=[Order("created_at")],
            limit=HANDOFF_LIMIT,
        )
    else:
        handoffs = []
    now = runtime.clock.now()
    leads: dict[str, dict[str, Any]] = {}

    async def rows_of(convs: list[Any]) -> list[dict[str, Any]]:
        if min_score is not None:
            wanted = {str(d.data.get("lead_id")) for d in convs} - set(leads)
            leads.update(await _leads_by_id(runtime, tenant_id, wanted))
        out = []
        seen: set[str] = set()
        for doc in convs:
            conv = doc.data
            if doc.id in seen:
                continue
            seen.add(doc.id)
            score = int(leads.get(str(conv.get("lead_id")), {}).get("score") or 0)
            if min_score is not None and score < min_score:
                continue
            since = _handoff_since(conv) if conv.get("status") == "handoff" else None
            out.append(
                {
                    "id": conv.get("id"),
                    "lead_id": conv.get("lead_id"),
                    "lead_name": conv.get("address"),
                    "channel": conv.get("channel"),
                    "status": conv.get("status"),
                    "playbook_id": conv.get("playbook_id"),
                    "current_step": conv.get("current_step"),
                    "score": score,
                    "stage": None,
                    "message_count": conv.get("message_count", 0),
                    "updated_at": conv.get("updated_at"),
                    "created_at": conv.get("created_at"),
                    "waiting_s": max(0.0, now - since) if since is not None else None,
                    "call_back": since is not None and _call_back_asked(conv),
                }
            )
        return out

    rows = await rows_of([*docs, *handoffs])
    for wider in (20 * limit, SCAN_LIMIT):  # too few matches among the rows read: read further back
        if min_score is None or len(docs) < asked or sum(r["status"] != "handoff" for r in rows) >= limit:
            break
        # the next page only (a cursor after the last one read), never the first ones again
        more = await older(min(wider, SCAN_LIMIT) - asked, cursor_of(docs[-1], order))
        asked = min(wider, SCAN_LIMIT)
        docs = [*docs, *more]
        rows = await rows_of([*docs, *handoffs])
    rows.sort(key=lambda r: (r["status"] != "handoff", -(r["waiting_s"] or 0.0), -(r["updated_at"] or 0.0)))
    shown = rows[:limit]
    # The leads of the rows shown only (not of every row read).
    wanted = {str(r["lead_id"]) for r in shown} - set(leads)
    leads.update(await _leads_by_id(runtime, tenant_id, wanted))
    for row in shown:
        lead = leads.get(str(row["lead_id"]), {})
        row["lead_name"] = lead.get("name") or row["lead_name"]
        row["score"] = int(lead.get("score") or 0)
        row["stage"] = lead.get("stage")
    return {
        "conversations": shown,
        "handoffs": sum(1 for r in rows if r["status"] == "handoff"),
        "now": now,
    }


def _lead_channels(lead: dict[str, Any]) -> list[str]:
    return sorted(name for name, cls in CHANNELS.items() if lead.get(cls.traits.address_field))


_LEAD_ORDER = (Order("created_at", descending=True),)


def _lead_row(lead: dict[str, Any], channels: list[str]) -> dict[str, Any]:
    return {
        "id": lead.get("id"),
        "name": lead.get("name"),
        "email": lead.get("email"),
        "phone": lead.get("phone"),
        "stage": lead.get("stage"),
        "score": int(lead.get("score") or 0),
        "source": lead.get("source"),
        "channels": channels,
        "created_at": lead.get("created_at"),
    }


def _parse_after(after: str | None) -> list[Any] | None:
    """A lead list cursor ``"<created_at>:<lead id>"`` (as the API's ``next`` gives it) as a store
    cursor; raises a 400 on anything else."""
    if not after:
        return None
    at, _, lead_id = after.partition(":")
    try:
        created_at = float(at)
    except ValueError:
        created_at = float("nan")
    if not lead_id or len(after) > 300 or created_at != created_at:
        raise _bad("after must be the 'next' cursor of a previous page")
    return [created_at, lead_id]


async def _leads(
    runtime: Runtime,
    tenant_id: str,
    *,
    q: str | None,
    stage: str | None,
    source: str | None,
    channel: str | None,
    min_score: int | None,
    limit: int | None = None,
    after: list[Any] | None = None,
) -> tuple[list[dict[str, Any]], int, bool]:
    """``(rows, total, exact)``: the matching leads, newest first, after the cursor (at least
    ``limit + 1`` when there are that many, so that the caller knows whether a next page exists).

    ``stage`` and ``source`` are store filters: then ``total`` is ``Store.count`` (every match,
    ``exact``) and only ``limit + 1`` leads are read. ``q``, ``channel`` and ``min_score`` are
    matched here, over the :data:`SCAN_LIMIT` newest leads after the cursor: ``total`` then counts
    the matches among those, and ``exact`` is false when older leads were left unread (the total
    is then a lower bound)."""
    filters = [where(k, "==", v) for k, v in (("stage", stage), ("source", source)) if v]
    filters.append(RECENT)
    order = list(_LEAD_ORDER)
    needle = (q or "").strip().casefold()[:200]
    if not needle and not channel and min_score is None and limit is not None:
        total, docs = await asyncio.gather(
            runtime.store.count(tenant_id, LEADS, filters=filters),
            runtime.store.query(
                tenant_id, LEADS, filters=filters, order_by=order, limit=limit + 1, start_after=after
            ),
        )
        return [_lead_row(d.data, _lead_channels(d.data)) for d in docs], total, True
    docs = await runtime.store.query(
        tenant_id, LEADS, filters=filters, order_by=order, limit=SCAN_LIMIT, start_after=after
    )
    out: list[dict[str, Any]] = []
    for doc in docs:
        lead = doc.data
        channels = _lead_channels(lead)
        if channel and channel not in channels:
            continue
        if min_score is not None and int(lead.get("score") or 0) < min_score:
            continue
        if needle and not any(
            needle in str(lead.get(k) or "").casefold() for k in ("name", "email", "phone", "id")
        ):
            continue
        out.append(_lead_row(lead, channels))
    return out, len(out), len(docs) < SCAN_LIMIT


@get("/api/v1/leads", summary="Leads, newest first, searchable")
async def list_leads(
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    q: FromQuery[str | None] = None,
    stage: FromQuery[str | None] = None,
    source: FromQuery[str | None] = None,
    channel: FromQuery[str | None] = None,
    min_score: Annotated[int | None, QueryParameter(ge=0, le=100)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    after: Annotated[str | None, QueryParameter(max_length=300)] = None,
) -> dict[str, Any]:
    """``{"leads": [...], "total": n, "total_exact": bool, "next": cursor | null}``: ``total``
    counts the matches (a lower bound when ``total_exact`` is false, see :func:`_leads`),
    ``leads`` the first ``limit`` after ``after`` (a previous page's ``next``,
    ``"<created_at>:<id>"``; 400 when malformed), ``next`` the cursor of the page after this one."""
    rows, total, exact = await _leads(
        runtime,
        tenant_id,
        q=q,
        stage=stage,
        source=source,
        channel=channel,
        min_score=min_score,
        limit=limit,
        after=_parse_after(after),
    )
    shown = rows[:limit]
    more = len(rows) > limit
    last = shown[-1] if shown else None
    cursor = f"{last['created_at']!r}:{last['id']}" if last and more else None
    return {"leads": shown, "total": total, "total_exact": exact, "next": cursor}


def _csv_cell(value: Any) -> str:
    text = " ".join(value) if isinstance(value, list) else "" if value is None else str(value)
    # A cell starting with = + - @ is a formula to spreadsheets (OWASP CSV injection): quote it.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@get("/api/v1/leads.csv", summary="Leads as CSV", media_type="text/csv")
async def export_leads(
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    q: FromQuery[str | None] = None,
    stage: FromQuery[str | None] = None,
    source: FromQuery[str | None] = None,
    channel: FromQuery[str | None] = None,
    min_score: Annotated[int | None, QueryParameter(ge=0, le=100)] = None,
) -> Response[str]:
    """The filtered leads as CSV (UTF-8, header row; cells that spreadsheets would run are quoted)."""
    rows, _, _ = await _leads(
        runtime, tenant_id, q=q, stage=stage, source=source, channel=channel, min_score=min_score
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_CSV_FIELDS)
    for row in rows:
        writer.writerow([_csv_cell(row.get(f)) for f in _CSV_FIELDS])
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="leads.csv"'},
    )


async def _steps_reached(runtime: Runtime, tenant_id: str, conv: dict[str, Any]) -> set[str]:
    messages = await runtime.store.query(
        tenant_id,
        messages_collection(str(conv["id"])),
        filters=[where("direction", "==", "outbound")],
        limit=SCAN_LIMIT,
    )
    steps = {str(m.data["step_id"]) for m in messages if m.data.get("step_id")}
    if conv.get("current_step"):
        steps.add(str(conv["current_step"]))
    return steps


@get("/api/v1/analytics/playbooks", summary="Funnel, qualification and cost per playbook")
async def playbook_analytics(
    runtime: NamedDependency[Runtime], tenant_id: NamedDependency[str]
) -> dict[str, Any]:
    """See the module docstring. Rates are 0..1 (``null`` without conversations); money in USD."""
    return {"playbooks": await analytics_reports(runtime, tenant_id)}


async def warm_analytics(runtime: Runtime) -> int:
    """Compute every tenant's analytics once, filling the process's caches
    (:data:`app.dashboard.speed.steps_reached`, :data:`app.dashboard.speed.reports`), so that
    the first page view after a start costs what a warm one does. Run in the background at
    start-up (:class:`app.dashboard.plugin.DashboardFeature`); returns how many tenants it read.
    A tenant whose reports fail is logged and skipped."""
    tenants = await runtime.store.list_tenants()
    for tenant_id in tenants:
        try:
            await analytics_reports(runtime, tenant_id)
        except Exception:  # a warm-up never stops the service; the page recomputes
            log.warning("dashboard.analytics_warmup_failed", tenant=tenant_id, exc_info=True)
    return len(tenants)


async def analytics_reports(runtime: Runtime, tenant_id: str) -> list[dict[str, Any]]:
    """One report per playbook (its latest version), from the caches while nothing changed;
    see the module docstring for the fields."""
    stored = await runtime.playbooks.list(tenant_id)
    latest: dict[str, int] = {}
    for p in stored:
        latest[p.id] = max(latest.get(p.id, 0), p.version)
    out = []
    for playbook_id, version in sorted(latest.items()):
        try:
            playbook = await runtime.playbooks.get(tenant_id, playbook_id, version)
        except PlaybookNotFoundError:
            continue
        # Taken before the read: a write during it leaves the cached report older than its token.
        token, now = await freshness(runtime.store, tenant_id, playbook_id), runtime.clock.now()
        cached = reports.get(tenant_id, playbook_id, version, token, now)
        if cached is not None:
            out.append(cached)
            continue
        docs = await runtime.store.query(
            tenant_id,
            CONVERSATIONS,
            filters=[where("playbook_id", "==", playbook_id), RECENT],
            order_by=[Order("created_at", descending=True)],
            limit=SCAN_LIMIT,
        )
        convs = [d.data for d in docs]
        reached = [
            await steps_reached.get(tenant_id, c, partial(_steps_reached, runtime, tenant_id, c))
            for c in convs
        ]
        funnel = []
        previous: int | None = None
        for step in playbook.steps:
            if getattr(step, "type", "") not in _FUNNEL_TYPES:
                continue
            count = sum(1 for steps in reached if step.id in steps)
            funnel.append(
                {
                    "step_id": step.id,
                    "type": step.type,
                    "reached": count,
                    "drop_off": (previous - count) if previous is not None else 0,
                }
            )
            previous = count
        started = len(convs)
        states = [c.get("state") or {} for c in convs]
        qualified = sum(1 for s in states if s.get("qualified"))
        scores = [int(s.get("score") or 0) for s in states]
        cost = sum(int((c.get("llm_usage") or {}).get("cost_micro_usd", 0)) for c in convs) / 1_000_000
        report = {
            "playbook_id": playbook_id,
            "name": playbook.name,
            "version": version,
            "conversations": started,
            "funnel": funnel,
            "qualified": qualified,
            "qualification_rate": qualified / started if started else None,
            "handoffs": sum(1 for c in convs if c.get("status") == "handoff"),
            "average_score": sum(scores) / started if started else None,
            "cost_usd": cost,
            "cost_per_conversation_usd": cost / started if started else None,
            "cost_per_qualified_usd": cost / qualified if qualified else None,
        }
        reports.put(tenant_id, playbook_id, version, token, now, report)
        out.append(report)
    return out


#: The routes this module serves (registered by :class:`app.dashboard.plugin.DashboardFeature`).
ROUTES = (me, list_users, create_invitation, inbox, list_leads, export_leads, playbook_analytics)
