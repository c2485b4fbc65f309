"""HubSpot (CRM v3 objects, v4 associations) adapter: contact, deal, note, in batches of 100.

Calls (paths relative to ``https://api.hubapi.com``; token, rate limit and retries are the
client's job). Every step works on a batch of up to 100 leads (HubSpot's batch limit, "CRM API |
Contacts", batch endpoints); :meth:`HubSpotAdapter.upsert_lead` is a batch of one.

1. contacts:
   - a stored contact id: ``POST /crm/v3/objects/contacts/batch/update`` (an id HubSpot no longer
     knows, ``OBJECT_NOT_FOUND`` in a 207 answer, falls back to the email upsert);
   - an email: ``POST /crm/v3/objects/contacts/batch/upsert`` with ``idProperty: "email"``
     (results matched back by email; ``new`` says whether HubSpot created it);
   - a phone only: ``POST /crm/v3/objects/contacts/search`` (``phone EQ``, one per lead), then
     batch update the match or ``POST /crm/v3/objects/contacts/batch/create``;
2. deals (unless ``options["deals"]`` is ``False``), in ``options["pipeline_id"]`` (default
   ``default``):
   - a stored deal id: ``POST /crm/v3/objects/deals/batch/update`` (one deleted in HubSpot is
     created again);
   - an existing contact without a stored deal: ``POST /crm/v4/associations/contacts/deals/batch/read``
     then ``POST /crm/v3/objects/deals/batch/read`` to find its deal in the pipeline (so a write
     whose answer was lost is not made twice);
   - else ``POST /crm/v3/objects/deals/batch/create`` with the association to the contact
     (``HUBSPOT_DEFINED`` type 3, deal to contact); batch create answers are not in input order,
     so the new ids are matched to contacts by reading the associations back
     (``/crm/v4/associations/contacts/deals/batch/read``);
3. notes: ``POST /crm/v3/objects/notes/batch/update`` for stored ids; for an existing contact
   without one, its notes are read (``/crm/v4/associations/contacts/notes/batch/read``,
   ``/crm/v3/objects/notes/batch/read``) and ours is found by its ``LeadWarm ref`` line; else
   ``POST /crm/v3/objects/notes/batch/create`` associated to the contact (type 202) and the deal
   (type 214), matched back through ``/crm/v4/associations/contacts/notes/batch/read``.

Requests per batch of up to 100 leads: 3 when every id is stored (update contacts, deals, notes);
5 for new leads with emails (upsert, create deals, read associations, create notes, read
associations); up to 4 more when existing contacts have no stored ids (2 lookups for deals, 2 for
notes); plus one search per phone-only lead. So 100 new leads cost 5 requests: HubSpot's 100
requests per 10 s per app and account (OAuth apps; 190 for Professional/Enterprise private apps)
carry about 2,000 leads/10 s, and the search limit (5 per second) bounds phone-only leads
("API usage guidelines and limits").

Options: ``pipeline_id`` (default ``default``), ``stage_id`` (default ``appointmentscheduled``),
``deal_amount`` (number), ``owner_id`` (``hubspot_owner_id``), ``deal_name``, ``deals`` (``False``
to write no deal).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crm_sync.base import ApiClient, IntegrationError, LeadSnapshot, ProviderError, RemoteIds
from crm_sync.crm._common import (
    AdapterConfigError,
    deal_title,
    is_our_note,
    json_of,
    mapped_fields,
    note_html,
    option,
)
from kernel.clock import Clock, SystemClock

__all__ = ["BATCH_REQUESTS", "BATCH_SIZE", "HubSpotAdapter"]

#: HubSpot's batch endpoints take at most 100 inputs.
BATCH_SIZE = 100
#: Calls one :meth:`HubSpotAdapter.upsert_leads` batch makes on the usual path (the contacts'
#: upsert, their deal associations, the deals, the notes' read and write): the app starts a batch
#: only when the rate limit will have room for all of them soon, so a batch is not held half-sent
#: past its claim while the window refills.
BATCH_REQUESTS = 5
DEAL_TO_CONTACT = 3
NOTE_TO_CONTACT = 202
NOTE_TO_DEAL = 214


def _assoc(to_id: str, type_id: int) -> dict[str, Any]:
    return {
        "to": {"id": to_id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


@dataclass(eq=False)
class _Work:
    """One lead's progress through a batch."""

    lead: LeadSnapshot
    contact_props: dict[str, Any]
    deal_props: dict[str, Any]
    contact: str | None = None
    created: bool = False
    deal: str | None = None
    note: str | None = None
    error: IntegrationError | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _batch_errors(answer: Any) -> list[Mapping[str, Any]]:
    errors = answer.get("errors") if isinstance(answer, Mapping) else None
    return list(errors or ())


class HubSpotAdapter:
    """HubSpot over an :class:`ApiClient`; see the module docstring for the calls."""

    provider = "hubspot"

    def __init__(self, client: ApiClient, *, clock: Clock | None = None) -> None:
        self._client = client
        self._clock = clock or SystemClock()

    def _now_ms(self) -> str:
        """``hs_timestamp``: epoch milliseconds as a string (HubSpot accepts it for datetimes)."""
        return str(int(self._clock.now() * 1000))

    # ------------------------------------------------------------------ public

    async def upsert_lead(self, lead: LeadSnapshot) -> RemoteIds:
        """Create or update one lead's contact, deal and note (a batch of one). Raises the lead's
        :class:`IntegrationError`."""
        (result,) = await self.upsert_leads([lead])
        if isinstance(result, IntegrationError):
            raise result
        return result

    async def upsert_leads(self, leads: Sequence[LeadSnapshot]) -> list[RemoteIds | IntegrationError]:
        """Sync up to :data:`BATCH_SIZE` leads in a few batch requests; the answer has one entry per
        lead, in order: its :class:`RemoteIds`, or the error that stopped it (a lead with neither
        email nor phone, a record HubSpot refused). An error of a whole request (429, 5xx, auth)
        is raised as it is, since no lead of the batch got further. Raises :class:`ValueError`
        for more than 100 leads."""
        if len(leads) > BATCH_SIZE:
            raise ValueError(f"at most {BATCH_SIZE} leads per HubSpot batch")
        work = []
        for lead in leads:
            contact_props, deal_props = mapped_fields(lead, self.provider)
            item = _Work(lead, self._contact_props(lead, contact_props), deal_props)
            if not (lead.remote_ids.get("contact") or lead.email or lead.phone):
                item.error = AdapterConfigError("HubSpot needs the lead's email or phone to match a contact")
            work.append(item)
        await self._contacts([w for w in work if w.error is None])
        await self._deals([w for w in work if w.error is None and option(w.lead, "deals", True) is not False])
        await self._notes([w for w in work if w.error is None])
        return [
            w.error
            if w.error is not None
            else RemoteIds(
                contact=str(w.contact), deal=w.deal, note=w.note, created=w.created, extra=dict(w.extra)
            )
            for w in work
        ]

    async def record_activity(self, lead: LeadSnapshot, *, kind: str, text: str) -> str | None:
        """``POST /crm/v3/objects/notes`` associated to the stored contact (and deal), 1 request."""
        contact = lead.remote_ids.get("contact")
        if not contact:
            raise AdapterConfigError(f"lead {lead.lead_id} has no HubSpot contact yet")
        associations = [_assoc(contact, NOTE_TO_CONTACT)]
        if lead.remote_ids.get("deal"):
            associations.append(_assoc(lead.remote_ids["deal"], NOTE_TO_DEAL))
        body = {
            "properties": {"hs_timestamp": self._now_ms(), "hs_note_body": f"[{kind}] {text}"[:60_000]},
            "associations": associations,
        }
        answer = json_of(await self._client.request("POST", "/crm/v3/objects/notes", json=body))
        return str(answer["id"]) if answer.get("id") else None

    async def test_connection(self) -> Mapping[str, Any]:
        """``GET /account-info/v3/details`` (1 request): ``{"portal_id", "time_zone", "currency"}``."""
        answer = json_of(await self._client.request("GET", "/account-info/v3/details"))
        return {
            "portal_id": answer.get("portalId"),
            "time_zone": answer.get("timeZone"),
            "currency": answer.get("companyCurrency"),
        }

    # ------------------------------------------------------------------ contacts

    @staticmethod
    def _contact_props(lead: LeadSnapshot, mapped: dict[str, Any]) -> dict[str, Any]:
        props = dict(mapped)
        if lead.email:
            props.setdefault("email", lead.email)
        if lead.phone:
            props.setdefault("phone", lead.phone)
        if lead.first_name:
            props.setdefault("firstname", lead.first_name)
        if lead.last_name:
            props.setdefault("lastname", lead.last_name)
        if not (lead.first_name or lead.last_name) and lead.name:
            first, _, last = lead.name.partition(" ")
            props.setdefault("firstname", first)
            if last:
                props.setdefault("lastname", last)
        return props

    async def _contacts(self, work: list[_Work]) -> None:
        updates = [w for w in work if w.lead.remote_ids.get("contact")]
        for w in updates:
            w.contact = w.lead.remote_ids["contact"]
        by_email = [w for w in work if w not in updates and w.lead.email]
        phone_only = [w for w in work if w not in updates and w not in by_email]
        creates: list[_Work] = []
        for w in phone_only:
            found = await self._search_phone(str(w.lead.phone))
            if found:
                w.contact = found
                updates.append(w)
            else:
                creates.append(w)
        if updates:
            inputs = [{"id": w.contact, "properties": w.contact_props} for w in updates]
            answer = json_of(
                await self._client.request(
                    "POST", "/crm/v3/objects/contacts/batch/update", json={"inputs": inputs}
                )
            )
            self._mark_errors(updates, _batch_errors(answer), key=lambda w: str(w.contact))
            for w in updates:
                # a stored id HubSpot no longer knows (deleted, merged): match on the email again
                if w.error is not None and w.lead.email and "OBJECT_NOT_FOUND" in str(w.error):
                    w.error, w.contact = None, None
                    by_email.append(w)
        if by_email:
            await self._upsert_by_email(by_email)
        if creates:
            answer = json_of(
                await self._client.request(
                    "POST",
                    "/crm/v3/objects/contacts/batch/create",
                    json={"inputs": [{"properties": w.contact_props} for w in creates]},
                )
            )
            by_phone = {
                str(r.get("properties", {}).get("phone")): str(r["id"]) for r in answer.get("results", ())
            }
            for w in creates:
                w.contact = by_phone.get(str(w.lead.phone))
                w.created = True
                if w.contact is None:
                    w.error = ProviderError("HubSpot did not create the contact", status=207)

    async def _upsert_by_email(self, work: list[_Work]) -> None:
        inputs: dict[str, dict[str, Any]] = {}
        for w in work:
            email = str(w.lead.email).lower()
            inputs[email] = {"idProperty": "email", "id": email, "properties": w.contact_props}
        answer = json_of(
            await self._client.request(
                "POST", "/crm/v3/objects/contacts/batch/upsert", json={"inputs": list(inputs.values())}
            )
        )
        found: dict[str, tuple[str, bool]] = {}
        for result in answer.get("results", ()):
            email = str((result.get("properties") or {}).get("email") or "").lower()
            if email and result.get("id"):
                found[email] = (str(result["id"]), bool(result.get("new", False)))
        for w in work:
            hit = found.get(str(w.lead.email).lower())
            if hit is None:
                w.error = ProviderError("HubSpot did not upsert the contact", status=207)
            else:
                w.contact, w.created = hit

    async def _search_phone(self, phone: str) -> str | None:
        body = {
            "filterGroups": [{"filters": [{"propertyName": "phone", "operator": "EQ", "value": phone}]}],
            "properties": ["email", "phone"],
            "limit": 1,
        }
        answer = json_of(await self._client.request("POST", "/crm/v3/objects/contacts/search", json=body))
        for result in answer.get("results", ()):
            if result.get("id"):
                return str(result["id"])
        return None

    @staticmethod
    def _mark_errors(work: list[_Work], errors: list[Mapping[str, Any]], *, key: Any) -> None:
        """Attach a 207 answer's per-record errors (``context.ids``) to the leads they name."""
        for error in errors:
            ids = set((error.get("context") or {}).get("ids") or ())
            for w in work:
                if key(w) in ids:
                    w.error = ProviderError(
                        f"HubSpot refused the record: {error.get('category', 'OBJECT_NOT_FOUND')}",
                        status=400,
                        body=str(error.get("message", "")),
                    )

    # ------------------------------------------------------------------ deals

    def _deal_props(self, w: _Work) -> dict[str, Any]:
        lead = w.lead
        props = {
            "dealname": deal_title(lead),
            "pipeline": str(option(lead, "pipeline_id", "default")),
            "dealstage": str(option(lead, "stage_id", "appointmentscheduled")),
        }
        amount = option(lead, "deal_amount")
        if isinstance(amount, int | float) and not isinstance(amount, bool):
            props["amount"] = str(amount)
        owner = option(lead, "owner_id")
        if owner:
            props["hubspot_owner_id"] = str(owner)
        props.update(w.deal_props)
        return props

    async def _associations(self, from_type: str, to_type: str, ids: Sequence[str]) -> dict[str, list[str]]:
        """``POST /crm/v4/associations/{from}/{to}/batch/read``: ``{from id: [to ids]}``."""
        if not ids:
            return {}
        answer = json_of(
            await self._client.request(
                "POST",
                f"/crm/v4/associations/{from_type}/{to_type}/batch/read",
                json={"inputs": [{"id": i} for i in dict.fromkeys(ids)]},
            )
        )
        out: dict[str, list[str]] = {}
        for result in answer.get("results", ()):
            source = str((result.get("from") or {}).get("id"))
            out[source] = [str(t.get("toObjectId")) for t in result.get("to") or () if t.get("toObjectId")]
        return out

    async def _batch_read(self, kind: str, ids: Sequence[str], prop: str) -> dict[str, Any]:
        """``POST /crm/v3/objects/{kind}/batch/read`` in chunks of 100: ``{id: value of prop}``."""
        values: dict[str, Any] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), BATCH_SIZE):
            chunk = unique[start : start + BATCH_SIZE]
            answer = json_of(
                await self._client.request(
                    "POST",
                    f"/crm/v3/objects/{kind}/batch/read",
                    json={"inputs": [{"id": i} for i in chunk], "properties": [prop]},
                )
            )
            for result in answer.get("results", ()):
                values[str(result.get("id"))] = (result.get("properties") or {}).get(prop)
        return values

    async def _deals(self, work: list[_Work]) -> None:
        for w in work:
            w.deal = w.lead.remote_ids.get("deal")
        lookup = [w for w in work if not w.deal and not w.created]
        if lookup:
            linked = await self._associations("contacts", "deals", [str(w.contact) for w in lookup])
            candidates = sorted({d for w in lookup for d in linked.get(str(w.contact), ())})
            pipelines = await self._batch_read("deals", candidates, "pipeline") if candidates else {}
            for w in lookup:
                wanted = str(option(w.lead, "pipeline_id", "default"))
                for deal in linked.get(str(w.contact), ()):
                    if str(pipelines.get(deal)) == wanted:
                        w.deal = deal
                        break
        updates = [w for w in work if w.deal]
        creates = [w for w in work if not w.deal]
        if updates:
            answer = json_of(
                await self._client.request(
                    "POST",
                    "/crm/v3/objects/deals/batch/update",
                    json={"inputs": [{"id": w.deal, "properties": self._deal_props(w)} for w in updates]},
                )
            )
            self._mark_errors(updates, _batch_errors(answer), key=lambda w: str(w.deal))
            for w in updates:
                if w.error is not None and "OBJECT_NOT_FOUND" in str(w.error):  # deleted in HubSpot
                    w.error, w.deal = None, None
                    creates.append(w)
        if creates:
            inputs = [
                {"properties": self._deal_props(w), "associations": [_assoc(str(w.contact), DEAL_TO_CONTACT)]}
                for w in creates
            ]
            answer = json_of(
                await self._client.request(
                    "POST", "/crm/v3/objects/deals/batch/create", json={"inputs": inputs}
                )
            )
            new_ids = {str(r.get("id")) for r in answer.get("results", ()) if r.get("id")}
            linked = await self._associations("contacts", "deals", [str(w.contact) for w in creates])
            for w in creates:
                mine = [d for d in linked.get(str(w.contact), ()) if d in new_ids]
                if mine:
                    w.deal = mine[0]
                    new_ids.discard(mine[0])
                else:
                    w.error = ProviderError("HubSpot did not create the deal", status=207)

    # ------------------------------------------------------------------ notes

    async def _notes(self, work: list[_Work]) -> None:
        work = [w for w in work if w.error is None]
        for w in work:
            w.note = w.lead.remote_ids.get("note")
        lookup = [w for w in work if not w.note and not w.created]
        if lookup:
            # a note whose id was lost: find it by its "LeadWarm ref" line rather than add another
            linked = await self._associations("contacts", "notes", [str(w.contact) for w in lookup])
            candidates = sorted({n for w in lookup for n in linked.get(str(w.contact), ())})
            bodies = await self._batch_read("notes", candidates, "hs_note_body") if candidates else {}
            for w in lookup:
                w.note = next(
                    (n for n in linked.get(str(w.contact), ()) if is_our_note(bodies.get(n), w.lead)), None
                )
        updates = [w for w in work if w.note]
        creates = [w for w in work if not w.note]
        stamp = self._now_ms()
        if updates:
            inputs = [{"id": w.note, "properties": {"hs_note_body": note_html(w.lead)}} for w in updates]
            answer = json_of(
                await self._client.request(
                    "POST", "/crm/v3/objects/notes/batch/update", json={"inputs": inputs}
                )
            )
            self._mark_errors(updates, _batch_errors(answer), key=lambda w: str(w.note))
            for w in updates:
                if w.error is not None and "OBJECT_NOT_FOUND" in str(w.error):  # deleted in HubSpot
                    w.error, w.note = None, None
                    creates.append(w)
        if creates:
            new_inputs: list[dict[str, Any]] = []
            for w in creates:
                associations = [_assoc(str(w.contact), NOTE_TO_CONTACT)]
                if w.deal:
                    associations.append(_assoc(w.deal, NOTE_TO_DEAL))
                new_inputs.append(
                    {
                        "properties": {"hs_timestamp": stamp, "hs_note_body": note_html(w.lead)},
                        "associations": associations,
                    }
                )
            answer = json_of(
                await self._client.request(
                    "POST", "/crm/v3/objects/notes/batch/create", json={"inputs": new_inputs}
                )
            )
            new_ids = {str(r.get("id")) for r in answer.get("results", ()) if r.get("id")}
            linked = await self._associations("contacts", "notes", [str(w.contact) for w in creates])
            for w in creates:
                mine = [n for n in linked.get(str(w.contact), ()) if n in new_ids]
                if mine:
                    w.note = mine[0]
                    new_ids.discard(mine[0])
