"""The tenant's knowledge base and brand memory (``/api/v1``), authenticated by the admin key (Bearer).

- ``GET /api/v1/knowledge``: every Q&A entry (the seed's ``qaTraining``), by id.
- ``POST /api/v1/knowledge``: create one entry (201; 409 when its ``id`` exists).
- ``PUT /api/v1/knowledge/{id}``: replace one entry (404 if absent).
- ``DELETE /api/v1/knowledge/{id}``: remove one entry (204; 404 if absent).
- ``POST /api/v1/knowledge/import``: bulk upsert of a JSON list (or ``{"qaTraining": [...]}`` /
  ``{"entries": [...]}``), with the seed's camelCase fields. An item with an ``id`` replaces that entry;
  without one it replaces the entry with the same question (case and spacing ignored) or is created.
  Answers ``{"created", "updated", "errors": [{"index", "reason"}]}``; bad items never fail the others.
- ``GET/PUT /api/v1/ai-config``: the seed's ``aiConfig`` (document ``aiConfig/default``).

``usageCount`` and ``successRate`` are counted by the service (:mod:`app.ai.knowledge.stats`): an update
that does not give them keeps the stored values; one that gives them resets the counters' history.
Entries are written through :class:`app.ai.knowledge.repository.KnowledgeRepository`, so the search
index is rebuilt.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from litestar import Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_201_CREATED,
    HTTP_204_NO_CONTENT,
    HTTP_400_BAD_REQUEST,
    HTTP_409_CONFLICT,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from app.ai.knowledge.retrieval import QAEntry
from app.ai.knowledge.stats import STATS_COLLECTION
from app.composition import Runtime
from app.store import collections as col

__all__ = [
    "AI_CONFIG_COLLECTION",
    "AI_CONFIG_DOC",
    "MAX_IMPORT_ITEMS",
    "ROUTES",
    "AIConfig",
    "BrandMemory",
    "KnowledgeEntryIn",
]

AI_CONFIG_COLLECTION = col.AI_CONFIG
AI_CONFIG_DOC = "default"
#: Largest bulk import, in items (bigger bodies get 400: split them).
MAX_IMPORT_ITEMS = 5000
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


class _Camel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", str_strip_whitespace=True
    )


class KnowledgeEntryIn(_Camel):
    """One Q&A entry as clients send it (camelCase or snake_case keys; unknown keys are ignored).

    ``usage_count`` / ``success_rate`` (0..1) may seed imported history; left out, stored values stay.
    """

    id: str | None = Field(default=None, pattern=_ID)
    question: str = Field(min_length=1, max_length=1000)
    response: str = Field(min_length=1, max_length=4000)
    category: str = Field(default="", max_length=100)
    tags: list[str] = Field(default_factory=list, max_length=50)
    is_custom: bool = True
    usage_count: int | None = Field(default=None, ge=0)
    success_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        tags = [t.strip() for t in value if t.strip()]
        if any(len(t) > 50 for t in tags):
            raise ValueError("a tag has at most 50 characters")
        return list(dict.fromkeys(tags))

    def counters_given(self) -> bool:
        """True when the client set ``usage_count`` or ``success_rate``."""
        return bool({"usage_count", "success_rate"} & self.model_fields_set)

    def to_entry(self, entry_id: str, existing: QAEntry | None) -> QAEntry:
        """The stored entry: these fields, counters kept from ``existing`` unless given."""
        return QAEntry(
            id=entry_id,
            question=self.question,
            response=self.response,
            category=self.category,
            tags=self.tags,
            is_custom=self.is_custom,
            usage_count=self.usage_count
            if self.usage_count is not None
            else (existing.usage_count if existing else 0),
            success_rate=self.success_rate
            if self.success_rate is not None
            else (existing.success_rate if existing else 0.0),
            language=self.language,
        )


class BrandMemory(_Camel):
    """``brandMemory``: the tone of voice, keywords to use and the brand's values."""

    tone: str = Field(default="", max_length=500)
    keywords: list[str] = Field(default_factory=list, max_length=50)
    values: list[str] = Field(default_factory=list, max_length=50)


def _as_list(value: Any) -> Any:
    """The seed stores some lists as one string: split it on newlines and semicolons."""
    if isinstance(value, str):
        return [part.strip() for part in re.split(r"[\n;]+", value) if part.strip()]
    return value


class AIConfig(_Camel):
    """The tenant's ``aiConfig`` (brand memory the prompts use); JSON keys are camelCase.

    ``painPoints``, ``competitors``, ``objectives`` and ``noGoTopics`` are lists of strings (a single
    string is accepted and split on newlines and ";"). ``competitors`` may hold brand names, which the
    guardrails keep the bot from naming or impersonating.
    """

    company_name: str = Field(min_length=1, max_length=200)
    industry: str = Field(default="", max_length=200)
    target_audience: str = Field(default="", max_length=1000)
    main_product: str = Field(default="", max_length=1000)
    pain_points: list[str] = Field(default_factory=list, max_length=50)
    unique_value: str = Field(default="", max_length=1000)
    competitors: list[str] = Field(default_factory=list, max_length=50)
    objectives: list[str] = Field(default_factory=list, max_length=50)
    no_go_topics: list[str] = Field(default_factory=list, max_length=50)
    brand_memory: BrandMemory = Field(default_factory=BrandMemory)

    @field_validator("pain_points", "competitors", "objectives", "no_go_topics", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _as_list(value)

    @field_validator("pain_points", "competitors", "objectives", "no_go_topics")
    @classmethod
    def _items(cls, value: list[str]) -> list[str]:
        items = [v.strip() for v in value if v.strip()]
        if any(len(v) > 500 for v in items):
            raise ValueError("an item has at most 500 characters")
        return items


def _bad(reason: str) -> HTTPException:
    return HTTPException(status_code=HTTP_400_BAD_REQUEST, detail=reason)


def _entry_doc(entry: QAEntry) -> dict[str, Any]:
    return entry.model_dump(mode="json", by_alias=True)


def _norm_question(text: str) -> str:
    return " ".join(text.casefold().split())


async def _existing(runtime: NamedDependency[Runtime], tenant_id: str) -> dict[str, QAEntry]:
    return {e.id: e for e in await runtime.knowledge.entries(tenant_id)}


async def _save(runtime: NamedDependency[Runtime], tenant_id: str, items: list[tuple[QAEntry, bool]]) -> None:
    """Save entries; drop the usage history of those whose counters the client set."""
    await runtime.knowledge.save(tenant_id, [entry for entry, _ in items])
    for entry, reset in items:
        if reset:
            await runtime.store.delete(tenant_id, STATS_COLLECTION, entry.id)


def _new_id() -> str:
    return f"qa_{uuid.uuid4().hex[:16]}"


@get("/api/v1/knowledge", summary="The knowledge base")
async def list_knowledge(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], tenant_id: NamedDependency[str]
) -> dict[str, Any]:
    """Every entry, by id, with camelCase keys."""
    entries = await runtime.knowledge.entries(tenant_id)
    return {"entries": [_entry_doc(e) for e in entries]}


@post("/api/v1/knowledge", status_code=HTTP_201_CREATED, summary="Create one knowledge entry")
async def create_knowledge(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    data: JSONBody[KnowledgeEntryIn],
) -> Response[Any]:
    """Create an entry (id generated when absent). 409 when the id exists; 400 on invalid fields."""
    entry_id = data.id or _new_id()
    if data.id and data.id in await _existing(runtime, tenant_id):
        return Response({"error": f"entry {data.id} exists; use PUT"}, status_code=HTTP_409_CONFLICT)
    entry = data.to_entry(entry_id, None)
    await _save(runtime, tenant_id, [(entry, True)])
    return Response(_entry_doc(entry), status_code=HTTP_201_CREATED)


@put("/api/v1/knowledge/{entry_id:str}", summary="Replace one knowledge entry")
async def update_knowledge(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    entry_id: FromPath[str],
    data: JSONBody[KnowledgeEntryIn],
) -> dict[str, Any]:
    """Replace the entry (404 if absent; a body ``id`` other than the path's is a 400)."""
    if data.id is not None and data.id != entry_id:
        raise _bad("the body's id differs from the path's")
    current = (await _existing(runtime, tenant_id)).get(entry_id)
    if current is None:
        raise NotFoundException(f"entry {entry_id} not found")
    entry = data.to_entry(entry_id, current)
    await _save(runtime, tenant_id, [(entry, data.counters_given())])
    return _entry_doc(entry)


@delete("/api/v1/knowledge/{entry_id:str}", status_code=HTTP_204_NO_CONTENT, summary="Delete one entry")
async def delete_knowledge(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    entry_id: FromPath[str],
) -> None:
    """Remove the entry and its counters (404 if absent)."""
    if entry_id not in await _existing(runtime, tenant_id):
        raise NotFoundException(f"entry {entry_id} not found")
    await runtime.knowledge.delete(tenant_id, entry_id)
    await runtime.store.delete(tenant_id, STATS_COLLECTION, entry_id)


def _error_reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err.get("loc", ())) or "item"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


@post("/api/v1/knowledge/import", status_code=HTTP_200_OK, summary="Bulk import of knowledge entries")
async def import_knowledge(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], tenant_id: NamedDependency[str]
) -> dict[str, Any]:
    """Upsert every valid item; see the module docstring. 400 only when the body is not a JSON list
    (or an object holding one under ``qaTraining`` / ``entries``) or has too many items."""
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(f"body is not JSON: {exc}") from exc
    if isinstance(body, dict):
        body = body.get("qaTraining", body.get("entries"))
    if not isinstance(body, list):
        raise _bad('body must be a JSON list of entries (or {"qaTraining": [...]})')
    if len(body) > MAX_IMPORT_ITEMS:
        raise _bad(f"at most {MAX_IMPORT_ITEMS} entries per import; got {len(body)}")
    existing = await _existing(runtime, tenant_id)
    by_question = {_norm_question(e.question): e.id for e in existing.values()}
    seen: set[str] = set()
    errors: list[dict[str, Any]] = []
    to_save: dict[str, tuple[QAEntry, bool]] = {}
    created = updated = 0
    for index, raw in enumerate(body):
        if not isinstance(raw, dict):
            errors.append({"index": index, "reason": "item is not a JSON object"})
            continue
        try:
            item = KnowledgeEntryIn.model_validate(raw)
        except ValidationError as exc:
            errors.append({"index": index, "reason": _error_reason(exc)})
            continue
        key = _norm_question(item.question)
        entry_id = item.id or by_question.get(key) or _new_id()
        if entry_id in seen:
            errors.append({"index": index, "reason": f"entry {entry_id} appears twice in this import"})
            continue
        seen.add(entry_id)
        current = existing.get(entry_id)
        to_save[entry_id] = (item.to_entry(entry_id, current), item.counters_given())
        by_question[key] = entry_id
        if current is None:
            created += 1
        else:
            updated += 1
    if to_save:
        await _save(runtime, tenant_id, list(to_save.values()))
    return {"created": created, "updated": updated, "errors": errors}


@get("/api/v1/ai-config", summary="The tenant's brand memory (aiConfig)")
async def get_ai_config(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], tenant_id: NamedDependency[str]
) -> dict[str, Any]:
    """The stored aiConfig, validated and with every key present; 404 when the tenant has none."""
    data = await runtime.store.get(tenant_id, AI_CONFIG_COLLECTION, AI_CONFIG_DOC)
    if data is None:
        raise NotFoundException("no aiConfig for this tenant; PUT one")
    try:
        return AIConfig.model_validate(data).model_dump(mode="json", by_alias=True)
    except ValidationError:
        return data  # stored by an older version: shown as is, so it can be fixed with PUT


@put("/api/v1/ai-config", summary="Replace the tenant's brand memory (aiConfig)")
async def put_ai_config(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    data: JSONBody[AIConfig],
) -> dict[str, Any]:
    """Validate and store the aiConfig (400 with the invalid fields); answers what was stored."""
    doc = data.model_dump(mode="json", by_alias=True)
    await runtime.store.set(tenant_id, AI_CONFIG_COLLECTION, AI_CONFIG_DOC, doc)
    return doc


#: The routes this module serves (registered by its capability's feature plugin).
ROUTES = (
    list_knowledge,
    create_knowledge,
    update_knowledge,
    delete_knowledge,
    import_knowledge,
    get_ai_config,
    put_ai_config,
)
