"""Pipedrive adapter: person, deal (API v2) and note (API v1).

Calls (paths relative to the connection's ``api_domain``, e.g. ``https://acme.pipedrive.com``;
token, rate limits and retries are the client's job), checked against Pipedrive's
``openapi-v2.yaml`` and ``openapi-v1.yaml``:

1. the person: ``PATCH /api/v2/persons/{id}`` with a stored id (a 404 falls back to the search);
   else ``GET /api/v2/persons/search`` on the email (``fields=email``, ``exact_match``), then on
   the phone (``fields=phone``), and ``PATCH`` the match; else ``POST /api/v2/persons``;
2. the deal: ``PATCH /api/v2/deals/{id}`` with a stored id; else, for a person that already
   existed, ``GET /api/v2/deals?person_id=..&pipeline_id=..&status=open`` and ``PATCH`` the first;
   else ``POST /api/v2/deals`` (in ``options["pipeline_id"]``/``options["stage_id"]`` when set);
3. the note: ``PUT /api/v1/notes/{id}`` with a stored id; else, for a person that already
   existed, ``GET /api/v1/notes?person_id=..`` to find ours by its ``LeadWarm ref`` line; else
   ``POST /api/v1/notes`` on the person and the deal (API v2 has no notes).

Requests per lead: 3 with stored ids (person, deal, note); 5 for a new lead with email and phone
(2 searches, create person, deal, note); 6 for an existing person found by email without stored
ids (search, person, deal lookup, deal, notes lookup, note). Pipedrive budgets requests by "token
cost" per company per day and a burst limit per 2 s window (developers.pipedrive.com, "Rate
limiting"): searches cost more than writes, so a stored id saves budget.

Options: ``pipeline_id``, ``stage_id`` (integers), ``deal_value`` (number), ``currency`` (ISO
code), ``owner_id`` (user id), ``deal_name``. Mapped fields whose target is a 40-character field
code go to ``custom_fields``; ``label_ids``, ``owner_id``, ``org_id``, ``visible_to`` and
``marketing_status`` are set as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from crm_sync.base import ApiClient, IntegrationError, LeadSnapshot, ProviderError, RemoteIds
from crm_sync.crm._common import (
    AdapterConfigError,
    deal_title,
    display_name,
    is_our_note,
    json_of,
    mapped_fields,
    note_html,
    option,
    upsert_each,
)

__all__ = ["BATCH_SIZE", "CONCURRENCY", "PipedriveAdapter"]

#: Leads per :meth:`PipedriveAdapter.upsert_leads` call (no batch endpoint for persons: the app's
#: flush writes this many leads per run and commits their results in one transaction).
BATCH_SIZE = 50
#: Leads of one ``upsert_leads`` call in flight at once (their requests share the rate limit).
CONCURRENCY = 25

_FIELD_CODE = re.compile(r"[0-9a-f]{40}")
_PERSON_KEYS = frozenset({"owner_id", "org_id", "label_ids", "visible_to", "marketing_status"})
_DEAL_KEYS = frozenset(
    {"value", "currency", "owner_id", "org_id", "label_ids", "probability", "expected_close_date"}
)


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AdapterConfigError("a Pipedrive id option is not an integer") from None


def _split(fields: Mapping[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for key, value in fields.items():
        if _FIELD_CODE.fullmatch(key):
            custom[key] = value
        elif key in allowed:
            body[key] = value
    if custom:
        body["custom_fields"] = custom
    return body


class PipedriveAdapter:
    """Pipedrive over an :class:`ApiClient`; see the module docstring for the calls."""

    provider = "pipedrive"

    def __init__(self, client: ApiClient) -> None:
        self._client = client

    async def _search(self, term: str, field: str) -> int | None:
        answer = json_of(
            await self._client.request(
                "GET",
                "/api/v2/persons/search",
                params={"term": term, "fields": field, "exact_match": "true", "limit": 1},
            )
        )
        for entry in (answer.get("data") or {}).get("items") or ():
            item = entry.get("item") or {}
            if item.get("id") is not None:
                return int(item["id"])
        return None

    def _person_body(self, lead: LeadSnapshot, contact_fields: Mapping[str, Any]) -> dict[str, Any]:
        body = _split(contact_fields, _PERSON_KEYS)
        body["name"] = display_name(lead)[:255]
        if lead.email:
            body["emails"] = [{"value": lead.email, "primary": True, "label": "work"}]
        if lead.phone:
            body["phones"] = [{"value": lead.phone, "primary": True, "label": "mobile"}]
        owner = _int_or_none(option(lead, "owner_id"))
        if owner is not None:
            body.setdefault("owner_id", owner)
        return body

    async def _person(self, lead: LeadSnapshot, contact_fields: Mapping[str, Any]) -> tuple[int, bool]:
        body = self._person_body(lead, contact_fields)
        known = _int_or_none(lead.remote_ids.get("contact"))
        if known is None:
            if lead.email:
                known = await self._search(lead.email, "email")
            if known is None and lead.phone:
                known = await self._search(lead.phone, "phone")
        if known is not None:
            try:
                await self._client.request("PATCH", f"/api/v2/persons/{known}", json=body)
                return known, False
            except ProviderError as exc:
                if exc.status != 404:
                    raise
        if not (lead.email or lead.phone):
            raise AdapterConfigError("Pipedrive needs the lead's email or phone to match a person")
        answer = json_of(await self._client.request("POST", "/api/v2/persons", json=body))
        person_id = (answer.get("data") or {}).get("id")
        if person_id is None:
            raise ProviderError("Pipedrive's person answer has no id", status=200)
        return int(person_id), True

    async def _deal(
        self, lead: LeadSnapshot, person_id: int, deal_fields: Mapping[str, Any], *, person_created: bool
    ) -> int:
        body = _split(deal_fields, _DEAL_KEYS)
        body["title"] = deal_title(lead)
        pipeline = _int_or_none(option(lead, "pipeline_id"))
        stage = _int_or_none(option(lead, "stage_id"))
        if pipeline is not None:
            body["pipeline_id"] = pipeline
        if stage is not None:
            body["stage_id"] = stage
        value = option(lead, "deal_value")
        if isinstance(value, int | float) and not isinstance(value, bool):
            body.setdefault("value", value)
            currency = option(lead, "currency")
            if currency:
                body.setdefault("currency", str(currency))
        owner = _int_or_none(option(lead, "owner_id"))
        if owner is not None:
            body.setdefault("owner_id", owner)
        deal_id = _int_or_none(lead.remote_ids.get("deal"))
        if deal_id is None and not person_created:
            params: dict[str, Any] = {"person_id": person_id, "status": "open", "limit": 1}
            if pipeline is not None:
                params["pipeline_id"] = pipeline
            found = json_of(await self._client.request("GET", "/api/v2/deals", params=params))
            for deal in found.get("data") or ():
                if deal.get("id") is not None:
                    deal_id = int(deal["id"])
                    break
        if deal_id is not None:
            await self._client.request("PATCH", f"/api/v2/deals/{deal_id}", json=body)
            return deal_id
        answer = json_of(
            await self._client.request("POST", "/api/v2/deals", json={**body, "person_id": person_id})
        )
        created = (answer.get("data") or {}).get("id")
        if created is None:
            raise ProviderError("Pipedrive's deal answer has no id", status=200)
        return int(created)

    async def _note(
        self, lead: LeadSnapshot, person_id: int, deal_id: int, *, person_created: bool
    ) -> str | None:
        content = note_html(lead)
        note_id = _int_or_none(lead.remote_ids.get("note"))
        if note_id is None and not person_created:
            listed = json_of(
                await self._client.request(
                    "GET",
                    "/api/v1/notes",
                    params={"person_id": person_id, "limit": 100, "sort": "add_time DESC"},
                )
            )
            for note in listed.get("data") or ():
                if note.get("id") is not None and is_our_note(note.get("content"), lead):
                    note_id = int(note["id"])
                    break
        if note_id is not None:
            try:
                await self._client.request("PUT", f"/api/v1/notes/{note_id}", json={"content": content})
                return str(note_id)
            except ProviderError as exc:
                if exc.status != 404:
                    raise
        answer = json_of(
            await self._client.request(
                "POST", "/api/v1/notes", json={"content": content, "person_id": person_id, "deal_id": deal_id}
            )
        )
        created = (answer.get("data") or {}).get("id")
        return str(created) if created is not None else None

    async def upsert_lead(self, lead: LeadSnapshot) -> RemoteIds:
        """Create or update the person, its deal and the note; see the module docstring. Raises
        :class:`AdapterConfigError` (no email or phone, a non-integer id option) or what the
        client raises."""
        contact_fields, deal_fields = mapped_fields(lead, self.provider)
        person_id, created = await self._person(lead, contact_fields)
        deal_id = await self._deal(lead, person_id, deal_fields, person_created=created)
        note_id = await self._note(lead, person_id, deal_id, person_created=created)
        return RemoteIds(contact=str(person_id), deal=str(deal_id), note=note_id, created=created)

    async def upsert_leads(self, leads: Sequence[LeadSnapshot]) -> list[RemoteIds | IntegrationError]:
        """:meth:`upsert_lead` for up to :data:`BATCH_SIZE` leads, :data:`CONCURRENCY` at once
        (Pipedrive has no batch endpoint for persons; the client's rate limit paces the requests):
        one entry per lead, in order, its ids or its error. Raises a retryable error when every
        lead failed and one failed with it (:func:`~crm_sync.crm._common.upsert_each`), and
        :class:`ValueError` for more than :data:`BATCH_SIZE` leads."""
        if len(leads) > BATCH_SIZE:
            raise ValueError(f"at most {BATCH_SIZE} leads per Pipedrive call")
        return await upsert_each(self.upsert_lead, leads, concurrency=CONCURRENCY)

    async def record_activity(self, lead: LeadSnapshot, *, kind: str, text: str) -> str | None:
        """``POST /api/v1/notes`` on the stored person (and deal) with ``[kind] text`` (1 request)."""
        person = _int_or_none(lead.remote_ids.get("contact"))
        if person is None:
            raise AdapterConfigError(f"lead {lead.lead_id} has no Pipedrive person yet")
        body: dict[str, Any] = {"content": f"[{kind}] {text}"[:60_000], "person_id": person}
        deal = _int_or_none(lead.remote_ids.get("deal"))
        if deal is not None:
            body["deal_id"] = deal
        answer = json_of(await self._client.request("POST", "/api/v1/notes", json=body))
        created = (answer.get("data") or {}).get("id")
        return str(created) if created is not None else None

    async def test_connection(self) -> Mapping[str, Any]:
        """``GET /api/v1/users/me`` (1 request): ``{"id", "name", "company_id", "company_name"}``."""
        answer = json_of(await self._client.request("GET", "/api/v1/users/me"))
        data = answer.get("data") or {}
        return {
            "id": data.get("id"),
            "name": data.get("name"),
            "company_id": data.get("company_id"),
            "company_name": data.get("company_name"),
        }
