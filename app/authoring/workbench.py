"""The playbook workbench API, behind the dashboard's editor (admin key or dashboard session):

- ``GET /api/v1/playbooks/schema``: the playbook JSON Schema (editor completion).
- ``GET /api/v1/playbooks/{id}/versions/{version}``: one stored version with its YAML ``source``.
- ``POST /api/v1/playbooks/validate`` ``{source}``: the real loader's verdict, ``{valid, issues:
  [{line, column, message}], playbook: {id, version, name, language} | null}`` (always 200; the
  issues are the answer). Lines and columns are 1-based (0 when unknown).
- ``POST /api/v1/playbooks/simulate`` ``{source, session, action}``: one step of a sandboxed
  conversation with that (draft) source (:mod:`app.authoring.simulation`): the offline interpreter,
  a manual clock of its own, nothing stored, nothing sent. 400 with ``issues`` when the source is
  invalid, 400 with ``detail`` when the session no longer fits it (restart).

The loader runs in a worker thread (a large YAML file never stalls the event loop), and the last
:data:`PARSED_CACHE_SIZE` texts parsed are kept (a simulator turn does not parse its unchanged
draft again); sources are capped at :data:`MAX_SOURCE_CHARS`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from functools import cache
from typing import Any, Literal

from litestar import Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_400_BAD_REQUEST
from pydantic import BaseModel, ConfigDict, Field

from app.ai.language import detect_language
from app.authoring.simulation import SimAction, SimPolicy, SimSession, SimulationError, simulate
from app.composition import Runtime
from app.conversations.scoring import make_scorer
from app.core import i18n
from kernel.clock import Clock
from playbooks import Playbook, PlaybookError, RuleInterpreter, load_playbook_text
from playbooks.export_schema import SCHEMA_PATH

__all__ = ["MAX_SOURCE_CHARS", "PARSED_CACHE_SIZE", "ROUTES", "SimulateRequest", "ValidateRequest"]

#: Longest playbook source the workbench reads (characters).
MAX_SOURCE_CHARS = 200_000
_ORIGIN = "playbook.yaml"


class ValidateRequest(BaseModel):
    """``source``: the playbook's YAML text; ``language``: the language of the issues' messages
    (the editor page's, e.g. ``fr``; a language without words for an issue gets it in English)."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(max_length=MAX_SOURCE_CHARS)
    language: str = Field(default="en", max_length=8)


class SimulateRequest(BaseModel):
    """``source``: the draft's YAML; ``session``: what the last answer returned (``null`` to begin:
    then ``language`` and the simulated start time are taken from ``session_language`` and the
    server's clock); ``action``: what the lead or the marketer does; ``language``: the language of
    the issues' messages when the draft is invalid (the page's, as in :class:`ValidateRequest`)."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(max_length=MAX_SOURCE_CHARS)
    session: SimSession | None = None
    session_language: Literal["en", "fr"] = "en"
    language: str = Field(default="en", max_length=8)
    action: SimAction


def _issues(exc: PlaybookError, language: str = "en") -> list[dict[str, Any]]:
    """The issues as JSON, ``message`` in ``language`` (:meth:`playbooks.PlaybookIssue.text`)."""
    return [{"line": i.line, "column": i.column, "message": i.text(language)} for i in exc.issues]


#: Parsed sources kept (by SHA-256 of the text) so that the simulator's turns and the editor's
#: checks of an unchanged text do not parse the YAML again; least recently used first out.
PARSED_CACHE_SIZE = 64
_parsed: OrderedDict[bytes, Playbook] = OrderedDict()


async def _load(source: str) -> Playbook:
    """The loader in a worker thread (a text already parsed comes from a small LRU cache).
    Raises :class:`playbooks.PlaybookError`."""
    key = hashlib.sha256(source.encode("utf-8", "surrogatepass")).digest()
    cached = _parsed.get(key)
    if cached is not None:
        _parsed.move_to_end(key)
        return cached
    playbook = await asyncio.to_thread(load_playbook_text, source, source=_ORIGIN)
    _parsed[key] = playbook
    while len(_parsed) > PARSED_CACHE_SIZE:
        _parsed.popitem(last=False)
    return playbook


@cache
def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


@get("/api/v1/playbooks/schema", summary="The playbook JSON Schema")
async def playbook_schema(tenant_id: NamedDependency[str]) -> dict[str, Any]:
    """The JSON Schema playbooks follow (draft 2020-12), for editors' completion."""
    return _schema()


@get(
    "/api/v1/playbooks/{playbook_id:str}/versions/{version:int}",
    summary="One playbook version with its YAML source",
)
async def get_version(
    playbook_id: FromPath[str],
    version: FromPath[int],
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
) -> dict[str, Any]:
    """The stored version, ``source`` included; 404 when the tenant has no such version."""
    for stored in await runtime.playbooks.versions(tenant_id, playbook_id[:200]):
        if stored.version == version:
            return stored.model_dump()
    raise NotFoundException(f"playbook {playbook_id[:200]!r} version {version} not found")


@post("/api/v1/playbooks/validate", status_code=HTTP_200_OK, summary="Validate a playbook's YAML")
async def validate_playbook(
    tenant_id: NamedDependency[str], data: JSONBody[ValidateRequest]
) -> dict[str, Any]:
    """Run the loader on ``source``; every issue with its line (see the module)."""
    try:
        playbook = await _load(data.source)
    except PlaybookError as exc:
        return {"valid": False, "issues": _issues(exc, data.language), "playbook": None}
    return {
        "valid": True,
        "issues": [],
        "playbook": {
            "id": playbook.id,
            "version": playbook.version,
            "name": playbook.name,
            "language": playbook.language,
        },
    }


@post("/api/v1/playbooks/simulate", status_code=HTTP_200_OK, summary="Simulate a draft playbook")
async def simulate_playbook(
    runtime: NamedDependency[Runtime], tenant_id: NamedDependency[str], data: JSONBody[SimulateRequest]
) -> Response[Any]:
    """One action of a sandboxed conversation (see the module); nothing is stored or sent."""
    try:
        playbook = await _load(data.source)
    except PlaybookError as exc:
        return Response(
            {"detail": "invalid playbook", "issues": _issues(exc, data.language)},
            status_code=HTTP_400_BAD_REQUEST,
        )
    profile = await runtime.tenants.profile(tenant_id)
    session = data.session or SimSession(now=runtime.clock.now(), language=data.session_language)
    knowledge = runtime.conversations.interpreters.knowledge
    languages = tuple(profile.languages) or ("en", "fr")

    async def answer(question: str, language: str) -> str | None:
        entry = await knowledge.best_entry(tenant_id, question, language)
        return entry.response if entry is not None else None

    def interpreter_for(clock: Clock) -> RuleInterpreter:
        return RuleInterpreter(
            detect_language=lambda text: detect_language(text, supported=languages),
            answer=answer,
            clock=clock,
            timezone=profile.timezone,
            default_region=profile.default_region,
        )

    try:
        result = await simulate(
            playbook,
            session,
            data.action,
            interpreter_for=interpreter_for,
            scorer_for=make_scorer,
            timezone=profile.timezone,
            default_region=profile.default_region,
            fallback_text={lang: i18n.text("fallback", lang) for lang in ("en", "fr")},
            policy=SimPolicy.from_profile(profile),
        )
    except SimulationError as exc:
        return Response({"detail": str(exc)}, status_code=HTTP_400_BAD_REQUEST)
    return Response(result.model_dump(mode="json"))


#: Registered by :class:`app.authoring.plugin.AuthoringFeature` (before the ``{id}`` routes).
ROUTES = (playbook_schema, get_version, validate_playbook, simulate_playbook)
