"""Playbook authoring API: ``GET/POST /api/v1/playbooks`` (list, or upload a YAML playbook; 400
with file:line issues). Admin key (Bearer) required."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_201_CREATED, HTTP_400_BAD_REQUEST

from app.composition import Runtime
from playbooks import PlaybookError

__all__ = ["ROUTES"]


def _bad(reason: str) -> HTTPException:
    return HTTPException(status_code=HTTP_400_BAD_REQUEST, detail=reason)


@get("/api/v1/playbooks", summary="The tenant's playbooks")
async def list_playbooks(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], tenant_id: NamedDependency[str]
) -> dict[str, Any]:
    """Every stored playbook version (without the YAML source)."""
    stored = await runtime.playbooks.list(tenant_id)
    return {"playbooks": [p.model_dump(exclude={"source"}) for p in stored]}


@post("/api/v1/playbooks", status_code=HTTP_201_CREATED, summary="Upload a YAML playbook")
async def upload_playbook(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], tenant_id: NamedDependency[str]
) -> Response[Any]:
    """Validate and store the YAML body; 400 lists every issue as line + message."""
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
    return Response(stored.model_dump(exclude={"source"}), status_code=HTTP_201_CREATED)


ROUTES = (list_playbooks, upload_playbook)
