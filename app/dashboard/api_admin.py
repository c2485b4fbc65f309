"""The API behind the dashboard's admin pages (``/api/v1``; admin key or dashboard session).

- ``POST /api/v1/leads/imports``: upload a CSV of leads (multipart form: ``file``, optional
  ``playbook_id`` and ``channel``). The answer (202) is the queued import; a durable job then
  checks and writes the rows in batches (:mod:`app.dashboard.imports`) and starts each new lead on
  the playbook when one is named. 400 when the file cannot be imported at all
  (no ``consent`` column, not CSV, too big) or the playbook does not exist.
- ``GET /api/v1/leads/imports``: the newest imports.
- ``GET /api/v1/leads/imports/{id}``: one import and its ``progress`` (0..1): the page polls it.
- ``GET /api/v1/leads/imports/{id}/report``: every refused row (line, field, code, reason, value).
- ``GET /api/v1/analytics/playbooks/{id}/funnel.svg``: the playbook's funnel as an SVG bar chart
  (drawn by ``pygal`` from ``GET /api/v1/analytics/playbooks``, values printed on the bars, no
  script); ``lang`` (``en``/``fr``) chooses the labels.

Times are UTC epoch seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
import pygal
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_400_BAD_REQUEST
from pygal.style import Style

from app.authoring.repository import PlaybookNotFoundError
from app.composition import Runtime
from app.connections.admin import AdminCaller, admin_caller
from app.connections.audit import record
from app.connections.services import ConnectionServices
from app.core.coded_errors import bad_request
from app.dashboard.auth import request_session, tenant_from_key_or_session
from app.dashboard.i18n import LANGUAGES
from app.dashboard.imports import ImportFileError, LeadImporter, split_csv
from app.dashboard.people import PeopleDirectory
from app.store import collections as col
from app.store import where
from app.tenancy.directory import TenantDirectory

__all__ = ["ROUTES", "ImportForm", "admin_from_key_or_session", "build_importer", "funnel_svg"]


async def admin_from_key_or_session(
    request: Request[Any, Any, Any],
    tenants: NamedDependency[TenantDirectory],
    people: NamedDependency[PeopleDirectory],
    connections: NamedDependency[ConnectionServices],
) -> AdminCaller:
    """Litestar dependency ``admin`` (the integrations API's caller) that also takes a dashboard
    session: the admin key exactly as :func:`app.connections.admin.admin_caller`; else the session
    (CSRF and role checked by :func:`app.dashboard.auth.tenant_from_key_or_session`), audited as
    ``user:<user id>``. Raises 401/403 like those."""
    if request.headers.get("authorization"):
        return await admin_caller(request, tenants, connections)
    tenant_id = await tenant_from_key_or_session(request, tenants, people)
    session = await request_session(request, people)
    caller = AdminCaller(tenant_id=tenant_id, actor=f"user:{session.user.id if session else 'unknown'}")
    await record(
        connections.repository,
        tenant_id,
        "admin_api",
        actor=caller.actor,
        detail={"method": request.method, "path": request.url.path[:300]},
    )
    return caller


def build_importer(runtime: Runtime) -> LeadImporter:
    """The runtime's :class:`LeadImporter`; it starts leads through ``POST /api/v1/leads``'s handler
    (:func:`app.conversations.routes.create_lead`), so the opening and the outbound policy are the API's."""

    async def start_lead(tenant_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        from app.conversations.routes import LeadCreate, create_lead

        try:
            data = LeadCreate.model_validate({k: v for k, v in body.items() if v is not None})
            response = await create_lead.fn(request=None, runtime=runtime, tenant_id=tenant_id, data=data)
        except HTTPException as exc:
            return exc.status_code, {"detail": exc.detail}
        except ValueError as exc:  # pydantic's ValidationError
            return HTTP_400_BAD_REQUEST, {"detail": str(exc)[:300]}
        content = response.content if isinstance(response.content, dict) else {}
        return response.status_code, content

    return LeadImporter(
        store=runtime.store,
        clock=runtime.clock,
        jobs=runtime.jobs,
        start_lead=start_lead,
        channels=runtime.channels.names,
    )


@dataclass
class ImportForm:
    """The multipart form of ``POST /api/v1/leads/imports``."""

    file: UploadFile
    playbook_id: str = ""
    channel: str = ""


def _bad(reason: str, code: str | None = None, **params: Any) -> HTTPException:
    return bad_request(reason, code, params)


@post("/api/v1/leads/imports", status_code=HTTP_202_ACCEPTED, summary="Import leads from a CSV file")
async def create_import(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    people: NamedDependency[PeopleDirectory],
    lead_imports: NamedDependency[LeadImporter],
    data: Annotated[ImportForm, Body(media_type=RequestEncodingType.MULTI_PART)],
) -> dict[str, Any]:
    """See the module docstring."""
    playbook_id = data.playbook_id.strip()[:100] or None
    channel = data.channel.strip()[:40] or None
    if channel and channel not in runtime.channels.names():
        raise _bad(
            f"unknown channel {channel!r}; one of {runtime.channels.names()}",
            "unknown_channel",
            value=channel,
        )
    if playbook_id:
        try:
            playbook = await runtime.playbooks.get(tenant_id, playbook_id)
        except PlaybookNotFoundError as exc:
            raise _bad(str(exc), "no_such_playbook", value=playbook_id) from exc
        if "lead_created" not in playbook.triggers:
            raise _bad(
                f"playbook {playbook_id!r} does not start on 'lead_created'",
                "not_lead_created",
                value=playbook_id,
            )
    raw = await data.file.read()
    profile = await runtime.tenants.profile(tenant_id)
    try:
        rows, _ = await anyio.to_thread.run_sync(lambda: split_csv(raw))
    except ImportFileError as exc:
        raise _bad(str(exc), exc.code, **exc.params) from exc
    session = None if request.headers.get("authorization") else await request_session(request, people)
    imp = await lead_imports.create(
        tenant_id,
        rows,
        filename=data.file.filename or "leads.csv",
        region=profile.default_region,
        playbook_id=playbook_id,
        channel=channel,
        created_by=session.user.email if session else "admin-key",
    )
    return imp.view()


@get("/api/v1/leads/imports", summary="The newest lead imports")
async def list_imports(
    tenant_id: NamedDependency[str], lead_imports: NamedDependency[LeadImporter]
) -> dict[str, Any]:
    """``{"imports": [...]}``, newest first (at most 20)."""
    return {"imports": [i.view() for i in await lead_imports.recent(tenant_id)]}


@get("/api/v1/leads/imports/{import_id:str}", summary="One lead import and its progress")
async def get_import(
    tenant_id: NamedDependency[str], lead_imports: NamedDependency[LeadImporter], import_id: FromPath[str]
) -> dict[str, Any]:
    """The import (404 when unknown)."""
    imp = await lead_imports.get(tenant_id, import_id)
    if imp is None:
        raise NotFoundException("no such import")
    return imp.view()


@get("/api/v1/leads/imports/{import_id:str}/report", summary="The rows an import refused")
async def import_report(
    tenant_id: NamedDependency[str], lead_imports: NamedDependency[LeadImporter], import_id: FromPath[str]
) -> dict[str, Any]:
    """``{"import": ..., "refused": [{line, field, code, reason, value}]}`` sorted by line."""
    imp = await lead_imports.get(tenant_id, import_id)
    if imp is None:
        raise NotFoundException("no such import")
    return {"import": imp.view(), "refused": await lead_imports.report(tenant_id, import_id)}


_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL)
_LABELS = {
    "en": {"reached": "Reached", "drop_off": "Drop-off", "title": "Funnel of {name}"},
    "fr": {"reached": "Atteinte", "drop_off": "Abandons", "title": "Entonnoir de {name}"},
}
_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1f2933",
    foreground_strong="#1f2933",
    foreground_subtle="#52606d",
    colors=("#1d4ed8", "#b45309"),
    font_family="system-ui, sans-serif",
)


def funnel_svg(analytics: dict[str, Any], *, lang: str) -> bytes:
    """An SVG bar chart of one playbook's funnel (``analytics`` is one item of
    ``GET /api/v1/analytics/playbooks``): per step, conversations that reached it and the drop-off."""
    labels = _LABELS.get(lang, _LABELS["en"])
    steps = analytics.get("funnel") or []
    chart = pygal.Bar(
        style=_STYLE,
        width=720,
        height=320,
        js=[],
        disable_xml_declaration=True,
        legend_at_bottom=True,
        print_values=True,
        show_y_guides=True,
        title=labels["title"].format(name=analytics.get("name") or analytics.get("playbook_id")),
    )
    top = max([1, *(int(s["reached"]) for s in steps)])
    step = max(1, -(-top // 8))  # at most about 8 whole-number gridlines
    chart.range = (0, top)
    chart.y_labels = list(range(0, top + 1, step))
    chart.x_labels = [str(s["step_id"]) for s in steps]
    chart.add(labels["reached"], [int(s["reached"]) for s in steps])
    chart.add(labels["drop_off"], [int(s["drop_off"]) for s in steps])
    svg = chart.render(is_unicode=True)
    # pygal always embeds its tooltip configuration as a script; an <img> would not run it anyway.
    return _SCRIPT.sub("", str(svg)).encode()


@get(
    "/api/v1/analytics/playbooks/{playbook_id:str}/funnel.svg",
    summary="A playbook's funnel as an SVG chart",
    media_type="image/svg+xml",
)
async def funnel_chart(
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    playbook_id: FromPath[str],
    lang: FromQuery[str] = "en",
) -> Response[bytes]:
    """See the module docstring; 404 when the playbook has no analytics."""
    from app.dashboard.api_routes import playbook_analytics

    data = await playbook_analytics.fn(runtime=runtime, tenant_id=tenant_id)
    item = next((p for p in data["playbooks"] if p["playbook_id"] == playbook_id), None)
    if item is None:
        raise NotFoundException("no analytics for this playbook")
    svg = await anyio.to_thread.run_sync(lambda: funnel_svg(item, lang=lang if lang in LANGUAGES else "en"))
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


@get("/api/v1/crm/{connection_id:str}/dead-letters", summary="Leads in a CRM connection's dead letter")
async def dead_letters(
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    connection_id: FromPath[str],
) -> dict[str, Any]:
    """``{"dead": [{lead_id, attempts, last_error, queued_at}]}``: the leads whose sync gave up
    (at most 200), which ``POST /api/v1/crm/{id}/replay`` queues again."""
    docs = await runtime.store.query(
        tenant_id,
        col.CRM_LINKS,
        filters=[where("connection_id", "==", connection_id[:100]), where("status", "==", "dead")],
        limit=200,
    )
    keep = ("lead_id", "attempts", "last_error", "queued_at")
    return {"dead": [{k: d.data.get(k) for k in keep} for d in docs]}


#: The routes this module serves (registered by :class:`app.dashboard.plugin.DashboardFeature`).
ROUTES = (create_import, list_imports, get_import, import_report, funnel_chart, dead_letters)
