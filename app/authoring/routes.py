"""Playbook authoring API (admin key as Bearer):

- ``GET /api/v1/playbooks``: every stored version with its status (active, draft, retired).
- ``POST /api/v1/playbooks``: upload a YAML playbook (400 with file:line issues; 409 when that
  id and version exist: versions are immutable). A playbook's first version is active at once, a
  later one is a draft.
- ``POST /api/v1/playbooks/{id}/versions/{version}/activate``: new conversations start that version.
- ``GET/PUT /api/v1/playbook-routes``: the rules choosing a new conversation's playbook
  (:mod:`app.authoring.routing`); 400 names a rule's unknown playbook.

Every change is audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post, put
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import Body, FromPath
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_400_BAD_REQUEST, HTTP_409_CONFLICT
from pydantic import ValidationError

from app.authoring.repository import PlaybookNotFoundError, PlaybookVersionExistsError
from app.authoring.routing import PlaybookRoutes
from app.composition import Runtime
from app.tenancy.audit import AuditLog
from app.tenancy.settings_api import actor_of
from playbooks import PlaybookError

__all__ = ["ROUTES"]


def _bad(reason: str) -> HTTPException:
    return HTTPException(status_code=HTTP_400_BAD_REQUEST, detail=reason)


@get("/api/v1/playbooks", summary="The tenant's playbooks")
async def list_playbooks(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], tenant_id: NamedDependency[str]
) -> dict[str, Any]:
    """Every stored playbook version (without the YAML source), with its status."""
    stored = await runtime.playbooks.list(tenant_id)
    return {"playbooks": [p.model_dump(exclude={"source"}) for p in stored]}


@post(
    "/api/v1/playbooks",
    status_code=HTTP_201_CREATED,
    summary="Upload a YAML playbook",
)
async def upload_playbook(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    audit: NamedDependency[AuditLog],
) -> Response[Any]:
    """Validate and store the YAML body; 400 lists every issue as line + message; 409 when this
    id and version already exist."""
    raw = await request.body()
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad("playbook must be UTF-8 text") from exc
    try:
        stored = await runtime.playbooks.save(tenant_id, source, origin="playbook.yaml")
    except PlaybookError as exc:
        issues = [{"line": i.line, "column": i.column, "message": i.message} for i in exc.issues]
        return Response({"error": "invalid playbook", "issues": issues}, status_code=HTTP_400_BAD_REQUEST)
    except PlaybookVersionExistsError as exc:
        return Response({"error": str(exc)}, status_code=HTTP_409_CONFLICT)
    await audit.record(
        tenant_id,
        "playbook.uploaded",
        actor=actor_of(request),
        target=f"{stored.id}@{stored.version}",
        detail={"status": stored.status},
    )
    return Response(stored.model_dump(exclude={"source"}), status_code=HTTP_201_CREATED)


@post(
    "/api/v1/playbooks/{playbook_id:str}/versions/{version:int}/activate",
    status_code=HTTP_200_OK,
    summary="Make a playbook version the one new conversations start",
)
async def activate_version(
    request: Request[Any, Any, Any],
    playbook_id: FromPath[str],
    version: FromPath[int],
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    audit: NamedDependency[AuditLog],
) -> dict[str, Any]:
    """404 for an unknown version. Conversations under way keep the version they started."""
    try:
        stored = await runtime.playbooks.activate(tenant_id, playbook_id, version)
    except PlaybookNotFoundError as exc:
        raise NotFoundException(str(exc)) from None
    await audit.record(
        tenant_id, "playbook.activated", actor=actor_of(request), target=f"{playbook_id}@{version}"
    )
    return stored.model_dump(exclude={"source"})


@get("/api/v1/playbook-routes", summary="The rules choosing a new conversation's playbook")
async def get_routes(runtime: NamedDependency[Runtime], tenant_id: NamedDependency[str]) -> dict[str, Any]:
    """The rules in order, and the default playbook."""
    return (await runtime.playbooks.routes(tenant_id)).model_dump(mode="json")


@put("/api/v1/playbook-routes", summary="Replace the routing rules")
async def put_routes(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    audit: NamedDependency[AuditLog],
    data: Annotated[dict[str, Any], Body(description="PlaybookRoutes: {rules: [...], default_playbook}")],
) -> Response[Any]:
    """Validate and replace; 400 with ``errors: [{field, reason}]`` (a malformed rule, a playbook
    the tenant does not have)."""
    try:
        routes = PlaybookRoutes.model_validate(data)
    except ValidationError as exc:
        errors = [
            {
                "field": ".".join(str(p) for p in e["loc"]),
                "reason": str(e["msg"]).removeprefix("Value error, "),
            }
            for e in exc.errors()
        ]
        return Response({"detail": "invalid routes", "errors": errors}, status_code=HTTP_400_BAD_REQUEST)
    known = {p.id for p in await runtime.playbooks.list(tenant_id)}
    unknown = [
        {"field": f"rules.{i}.playbook_id", "reason": f"no playbook {rule.playbook_id!r}"}
        for i, rule in enumerate(routes.rules)
        if rule.playbook_id not in known
    ]
    if routes.default_playbook and routes.default_playbook not in known:
        unknown.append({"field": "default_playbook", "reason": f"no playbook {routes.default_playbook!r}"})
    if unknown:
        return Response({"detail": "invalid routes", "errors": unknown}, status_code=HTTP_400_BAD_REQUEST)
    await runtime.playbooks.save_routes(tenant_id, routes)
    await audit.record(
        tenant_id,
        "playbook_routes.updated",
        actor=actor_of(request),
        target="playbook-routes",
        detail={"rules": len(routes.rules), "default_playbook": routes.default_playbook},
    )
    return Response(routes.model_dump(mode="json"))


ROUTES = (list_playbooks, upload_playbook, activate_version, get_routes, put_routes)
