"""GoHighLevel (LeadConnector API v2) adapter: contact, opportunity, tags, note, workflow.

Calls (paths relative to ``https://services.leadconnectorhq.com``; the ``Version: 2021-07-28``
header, the bearer token, the rate limit and retries are the client's job), checked against
GoHighLevel's OpenAPI (``apps/contacts.json``, ``apps/opportunities.json``, ``apps/locations.json``
in GoHighLevel/highlevel-api-docs):

1. the contact: ``PUT /contacts/{id}`` when a previous sync stored its id (a 404 or 400 there
   falls back to the upsert), else ``POST /contacts/upsert`` with the ``locationId`` (GoHighLevel
   matches on email and phone per the location's duplicate settings);
2. the tags: ``POST /contacts/{id}/tags`` (the upsert's ``tags`` would overwrite the contact's
   existing tags, which the spec warns against), only when the lead has tags;
3. the opportunity, when ``options["pipeline_id"]`` is set: ``PUT /opportunities/{id}`` with a
   stored id; else, for a contact that already existed, ``GET /opportunities/search`` (contact and
   pipeline) to find the one a lost write may have made, then ``PUT``; else
   ``POST /opportunities/``;
4. the note: ``PUT /contacts/{id}/notes/{noteId}`` with a stored id; else, for a contact that
   already existed, ``GET /contacts/{id}/notes`` to find ours by its ``LeadWarm ref`` line, then
   ``PUT``; else ``POST /contacts/{id}/notes``;
5. the workflow, once per contact and workflow: ``POST /contacts/{id}/workflow/{workflowId}``
   when ``options["workflow_id"]`` is set (scope ``contacts.write``; picking the workflow needs
   ``workflows.readonly``).

Requests per lead: 3 with stored ids (contact, opportunity, note; +1 with tags); 5 for a new
contact with tags (upsert, tags, opportunity, note, +1 with a workflow); an existing contact
without stored ids costs 2 lookups more (its opportunity, its notes). GoHighLevel allows 100
requests per 10 s and 200,000 a day per location (API v2 "Rate Limits" in the developer docs).

Options (``LeadSnapshot.options``): ``pipeline_id`` and ``stage_id`` (the opportunity; no
opportunity without a pipeline), ``workflow_id``, ``monetary_value`` (number), ``assigned_to``
(user id), ``deal_name``, ``location_id`` (when the connection's account has none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crm_sync.base import (
    ApiClient,
    IntegrationError,
    LeadSnapshot,
    ProviderError,
    RemoteIds,
    gohighlevel_location,
)
from crm_sync.crm._common import (
    AdapterConfigError,
    deal_title,
    is_our_note,
    json_of,
    mapped_fields,
    note_text,
    option,
    upsert_each,
)

__all__ = ["BATCH_SIZE", "CONCURRENCY", "GoHighLevelAdapter"]

#: Leads per :meth:`GoHighLevelAdapter.upsert_leads` call (GoHighLevel has no batch endpoint: the
#: app's flush writes this many leads per run and commits their results in one transaction).
BATCH_SIZE = 50
#: Leads of one ``upsert_leads`` call in flight at once (their requests share the rate limit).
CONCURRENCY = 25

_CONTACT_KEYS = frozenset(
    [
        "firstName",
        "lastName",
        "name",
        "email",
        "phone",
        "address1",
        "city",
        "state",
        "postalCode",
        "website",
        "timezone",
        "dnd",
        "source",
        "dateOfBirth",
        "country",
        "companyName",
        "assignedTo",
        "gender",
    ]
)
_OPPORTUNITY_KEYS = frozenset(["name", "status", "monetaryValue", "assignedTo"])


def _custom(
    fields: Mapping[str, Any], allowed: frozenset[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Split mapped fields into standard keys and ``customFields`` (``custom.<id>`` targets)."""
    standard: dict[str, Any] = {}
    custom: list[dict[str, Any]] = []
    for key, value in fields.items():
        if key.startswith("custom."):
            custom.append({"id": key[len("custom.") :], "field_value": value})
        elif key in allowed:
            standard[key] = value
    return standard, custom


class GoHighLevelAdapter:
    """GoHighLevel over an :class:`ApiClient` whose ``account`` carries ``location_id``; see the
    module docstring for the calls. Raises :class:`~crm_sync.base.IntegrationError` subclasses."""

    provider = "gohighlevel"

    def __init__(self, client: ApiClient) -> None:
        self._client = client

    def _location(self, lead: LeadSnapshot | None = None) -> str:
        location = gohighlevel_location(self._client.account) or (
            option(lead, "location_id") if lead else None
        )
        if not location:
            raise AdapterConfigError("the GoHighLevel connection has no locationId")
        return str(location)

    def _contact_body(self, lead: LeadSnapshot, contact_fields: Mapping[str, Any]) -> dict[str, Any]:
        body, custom = _custom(contact_fields, _CONTACT_KEYS)
        if lead.email:
            body.setdefault("email", lead.email)
        if lead.phone:
            body.setdefault("phone", lead.phone)
        if lead.first_name:
            body.setdefault("firstName", lead.first_name)
        if lead.last_name:
            body.setdefault("lastName", lead.last_name)
        if lead.name:
            body.setdefault("name", lead.name)
        channel = lead.source.get("channel")
        body.setdefault("source", f"LeadWarm ({channel})" if channel else "LeadWarm")
        if custom:
            body["customFields"] = custom
        return body

    async def _upsert_contact(
        self, lead: LeadSnapshot, location: str, contact_fields: Mapping[str, Any]
    ) -> tuple[str, bool]:
        body = self._contact_body(lead, contact_fields)
        known = lead.remote_ids.get("contact")
        if known:
            try:
                await self._client.request("PUT", f"/contacts/{known}", json=body)
                return known, False
            except ProviderError as exc:
                if exc.status not in (400, 404):
                    raise
        if not (lead.email or lead.phone):
            raise AdapterConfigError("GoHighLevel needs the lead's email or phone to upsert a contact")
        answer = json_of(
            await self._client.request("POST", "/contacts/upsert", json={"locationId": location, **body})
        )
        contact = answer.get("contact") or {}
        contact_id = contact.get("id")
        if not contact_id:
            raise ProviderError("GoHighLevel's upsert answer has no contact id", status=200)
        return str(contact_id), bool(answer.get("new"))

    async def _opportunity(
        self,
        lead: LeadSnapshot,
        location: str,
        contact_id: str,
        deal_fields: Mapping[str, Any],
        *,
        contact_created: bool,
    ) -> str | None:
        pipeline = option(lead, "pipeline_id")
        if not pipeline:
            return None
        standard, custom = _custom(deal_fields, _OPPORTUNITY_KEYS)
        body: dict[str, Any] = {"name": deal_title(lead), "status": "open", "pipelineId": str(pipeline)}
        stage = option(lead, "stage_id")
        if stage:
            body["pipelineStageId"] = str(stage)
        value = option(lead, "monetary_value")
        if isinstance(value, int | float) and not isinstance(value, bool):
            body["monetaryValue"] = value
        assigned = option(lead, "assigned_to")
        if assigned:
            body["assignedTo"] = str(assigned)
        body.update(standard)
        if custom:
            body["customFields"] = custom
        deal_id = lead.remote_ids.get("deal")
        if not deal_id and not contact_created:
            found = json_of(
                await self._client.request(
                    "GET",
                    "/opportunities/search",
                    params={"location_id": location, "contact_id": contact_id, "pipeline_id": str(pipeline)},
                )
            )
            for opportunity in found.get("opportunities") or ():
                if opportunity.get("id"):
                    deal_id = str(opportunity["id"])
                    break
        if deal_id:
            await self._client.request("PUT", f"/opportunities/{deal_id}", json=body)
            return deal_id
        answer = json_of(
            await self._client.request(
                "POST", "/opportunities/", json={**body, "locationId": location, "contactId": contact_id}
            )
        )
        new_id = (answer.get("opportunity") or {}).get("id")
        if not new_id:
            raise ProviderError("GoHighLevel's opportunity answer has no id", status=201)
        return str(new_id)

    async def _note(self, lead: LeadSnapshot, contact_id: str, *, contact_created: bool) -> str | None:
        body = {"body": note_text(lead)}
        note_id = lead.remote_ids.get("note")
        if not note_id and not contact_created:
            listed = json_of(await self._client.request("GET", f"/contacts/{contact_id}/notes"))
            for note in listed.get("notes") or ():
                if note.get("id") and is_our_note(note.get("body"), lead):
                    note_id = str(note["id"])
                    break
        if note_id:
            try:
                await self._client.request("PUT", f"/contacts/{contact_id}/notes/{note_id}", json=body)
                return note_id
            except ProviderError as exc:
                if exc.status not in (400, 404):
                    raise
        answer = json_of(await self._client.request("POST", f"/contacts/{contact_id}/notes", json=body))
        created = (answer.get("note") or {}).get("id")
        return str(created) if created else None

    async def upsert_lead(self, lead: LeadSnapshot) -> RemoteIds:
        """Create or update the contact, its tags, opportunity and note, and start the workflow
        once; see the module docstring. Returns the ids (``extra["workflow"]`` names the workflow
        the contact was added to). Raises :class:`AdapterConfigError` without a location id or
        without email and phone, or what the client raises."""
        location = self._location(lead)
        contact_fields, deal_fields = mapped_fields(lead, self.provider)
        contact_id, created = await self._upsert_contact(lead, location, contact_fields)
        if lead.tags:
            await self._client.request("POST", f"/contacts/{contact_id}/tags", json={"tags": list(lead.tags)})
        deal_id = await self._opportunity(lead, location, contact_id, deal_fields, contact_created=created)
        note_id = await self._note(lead, contact_id, contact_created=created)
        extra: dict[str, str] = {}
        workflow = option(lead, "workflow_id")
        if workflow:
            workflow = str(workflow)
            if lead.remote_ids.get("workflow") != workflow:
                await self._client.request("POST", f"/contacts/{contact_id}/workflow/{workflow}", json={})
            extra["workflow"] = workflow
        return RemoteIds(contact=contact_id, deal=deal_id, note=note_id, created=created, extra=extra)

    async def upsert_leads(self, leads: Sequence[LeadSnapshot]) -> list[RemoteIds | IntegrationError]:
        """:meth:`upsert_lead` for up to :data:`BATCH_SIZE` leads, :data:`CONCURRENCY` at once
        (GoHighLevel has no batch endpoint; the requests are the same, the client's rate limit
        paces them all): one entry per lead, in order, its ids or its error. Raises a retryable
        error when every lead failed and one failed with it (:func:`upsert_each`), and
        :class:`ValueError` for more than :data:`BATCH_SIZE` leads."""
        if len(leads) > BATCH_SIZE:
            raise ValueError(f"at most {BATCH_SIZE} leads per GoHighLevel call")
        return await upsert_each(self.upsert_lead, leads, concurrency=CONCURRENCY)

    async def record_activity(self, lead: LeadSnapshot, *, kind: str, text: str) -> str | None:
        """``POST /contacts/{id}/notes`` with ``[kind] text`` (1 request); needs a stored contact
        id (raises :class:`AdapterConfigError` otherwise). Returns the note id."""
        contact_id = lead.remote_ids.get("contact")
        if not contact_id:
            raise AdapterConfigError(f"lead {lead.lead_id} has no GoHighLevel contact yet")
        answer = json_of(
            await self._client.request(
                "POST", f"/contacts/{contact_id}/notes", json={"body": f"[{kind}] {text}"[:60_000]}
            )
        )
        created = (answer.get("note") or {}).get("id")
        return str(created) if created else None

    async def test_connection(self) -> Mapping[str, Any]:
        """``GET /locations/{locationId}`` (1 request): ``{"id", "name"}`` of the sub-account."""
        location = self._location()
        answer = json_of(await self._client.request("GET", f"/locations/{location}"))
        found = answer.get("location") or {}
        return {"id": str(found.get("id") or location), "name": found.get("name")}
