"""Salesforce (REST API) adapter: a Lead, or a Contact plus an Opportunity, and a Note.

Paths are relative to the connection's ``instance_url``; the API version comes from
``options["api_version"]``, else ``client.account["api_version"]`` (the catalog's), else
``v60.0``. Token, limits and retries are the client's job. Shapes follow the REST API Developer
Guide ("Insert or Update (Upsert) a Record Using an External ID", "Composite", "sObject
Collections", "Query").

One lead (:meth:`SalesforceAdapter.upsert_lead`), all writes in one ``POST /composite`` call with
``allOrNone: true`` (a failed part rolls back the others), the note's parent given by reference
(``@{contact.id}``):

- with ``options["external_id_field"]`` (e.g. ``LeadWarm_Id__c``, holding our lead id):
  ``PATCH /sobjects/{Lead|Contact}/{field}/{lead id}`` (Salesforce creates or updates), in
  Contact mode also ``PATCH /sobjects/Opportunity/{opportunity field}/{lead id}`` with
  ``ContactId``; then the Note (``PATCH /sobjects/Note/{id}`` when stored, else ``POST``).
  1 request per lead (a Note whose id was lost is not found again in this mode, since the
  record's id is only known inside the composite call: it gets a second Note).
- without it: a stored id is ``PATCH``-ed; else ``GET /query`` finds the record by email (then
  phone, one query) and it is ``PATCH``-ed, or it is ``POST``-ed; a known record without a
  stored Note id gets a query for its Note (by its stable title). 1 request with stored ids, 2 for
  a new record, 3 for an existing record found again.
  In Contact mode the open Opportunity of a known Contact is found with a query on
  ``Opportunity WHERE ContactId = ...`` (one request more).

Many leads (:meth:`SalesforceAdapter.upsert_leads`, with an external id field, all leads in one
mode): ``PATCH /composite/sobjects/{Lead|Contact}/{field}`` upserts up to 200 records (results in
input order); in Contact mode ``PATCH /composite/sobjects/Opportunity/{field}`` upserts their
Opportunities (``ContactId`` set); then ``POST /composite/sobjects`` creates the missing Notes and
``PATCH /composite/sobjects`` updates the stored ones: 2 to 3 requests per 200 leads in Lead mode,
3 to 4 in Contact mode. Without an external id field it is one lead at a time.

Salesforce counts every call against the org's rolling 24-hour allowance (Enterprise: 100,000 plus
1,000 per licence, "API Request Limits and Allocations"); over it, it answers 403
``REQUEST_LIMIT_EXCEEDED``; ``Sforce-Limit-Info: api-usage=N/M`` reports the usage. A composite
call counts as one.

Options: ``object`` (``lead``, the default, or ``contact``), ``external_id_field``,
``opportunity_external_id_field`` (default: the same name), ``stage_name`` (default
``Prospecting``), ``close_in_days`` (default 30), ``company`` (a Lead's required ``Company`` when
the lead gave none; default ``[not provided]``), ``lead_source`` (``LeadSource`` picklist value),
``owner_id``, ``deal_amount``, ``deal_name``, ``api_version``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from crm_sync.base import ApiClient, IntegrationError, LeadSnapshot, ProviderError, RemoteIds
from crm_sync.crm._common import (
    SALESFORCE_NOTE_LIMIT,
    AdapterConfigError,
    deal_title,
    display_name,
    json_of,
    mapped_fields,
    note_marker,
    note_text,
    option,
)
from kernel.clock import Clock, SystemClock

__all__ = ["COLLECTION_SIZE", "SalesforceAdapter", "note_title", "soql_literal"]

#: sObject Collections take at most 200 records.
COLLECTION_SIZE = 200
#: Calls one :meth:`SalesforceAdapter.upsert_leads` batch makes on the usual path (the records,
#: the opportunities in Contact mode, the notes): the app waits until the allowance has room for
#: them before it gathers the batch.
BATCH_REQUESTS = 3
DEFAULT_VERSION = "v60.0"


def soql_literal(value: str) -> str:
    """``value`` as a quoted SOQL string literal (backslash, quote, newline escaped, as the SOQL
    reference's "Quoted String Escape Sequences" list)."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f"'{escaped}'"


def _error_text(body: Any) -> tuple[str, str]:
    """``(errorCode, message)`` of a Salesforce error body (a list of ``{message, errorCode}``)."""
    if isinstance(body, list) and body and isinstance(body[0], Mapping):
        return str(body[0].get("errorCode", "")), str(body[0].get("message", ""))
    if isinstance(body, Mapping) and body.get("errors"):
        return _error_text(body["errors"])
    return "", str(body)[:500]


def note_title(lead: LeadSnapshot) -> str:
    """The Note's title, stable for a lead (``LeadWarm ref <lead id>``), so a lost note id is found
    again by a query (a Note's ``Body`` cannot be filtered in SOQL)."""
    return note_marker(lead)[:255]


class SalesforceAdapter:
    """Salesforce over an :class:`ApiClient`; see the module docstring for the calls."""

    provider = "salesforce"

    def __init__(self, client: ApiClient, *, clock: Clock | None = None) -> None:
        self._client = client
        self._clock = clock or SystemClock()

    # ------------------------------------------------------------------ helpers

    def _version(self, lead: LeadSnapshot | None = None) -> str:
        version = (option(lead, "api_version") if lead else None) or self._client.account.get("api_version")
        version = str(version or DEFAULT_VERSION)
        return version if version.startswith("v") else f"v{version}"

    def _base(self, lead: LeadSnapshot | None = None) -> str:
        return f"/services/data/{self._version(lead)}"

    @staticmethod
    def _mode(lead: LeadSnapshot) -> str:
        mode = str(option(lead, "object", "lead")).lower()
        if mode not in {"lead", "contact"}:
            raise AdapterConfigError("Salesforce option 'object' must be 'lead' or 'contact'")
        return mode

    def _record(self, lead: LeadSnapshot, mode: str) -> dict[str, Any]:
        contact_fields, _ = mapped_fields(lead, self.provider)
        record = dict(contact_fields)
        if lead.first_name:
            record.setdefault("FirstName", lead.first_name)
        record.setdefault("LastName", lead.last_name or (lead.name or display_name(lead)).split(" ")[-1])
        if lead.email:
            record.setdefault("Email", lead.email)
        if lead.phone:
            record.setdefault("Phone", lead.phone)
        if mode == "lead":
            company = lead.slots.get("company") or option(lead, "company", "[not provided]")
            record.setdefault("Company", str(company)[:255])
            source = option(lead, "lead_source")
            if source:
                record.setdefault("LeadSource", str(source))
            if lead.score:
                record.setdefault(
                    "Rating", "Hot" if lead.score >= 70 else "Warm" if lead.score >= 40 else "Cold"
                )
        if not record.get("Description") and lead.summary:
            record["Description"] = lead.summary[:32_000]
        owner = option(lead, "owner_id")
        if owner:
            record.setdefault("OwnerId", str(owner))
        ext = option(lead, "external_id_field")
        if ext:
            record.pop(str(ext), None)  # the value travels in the URL
        return record

    def _opportunity(self, lead: LeadSnapshot, contact_ref: str) -> dict[str, Any]:
        _, deal_fields = mapped_fields(lead, self.provider)
        days = option(lead, "close_in_days", 30)
        close = dt.datetime.fromtimestamp(self._clock.now(), tz=dt.UTC).date() + dt.timedelta(days=int(days))
        record: dict[str, Any] = {
            "Name": deal_title(lead)[:120],
            "StageName": str(option(lead, "stage_name", "Prospecting")),
            "CloseDate": close.isoformat(),
            "ContactId": contact_ref,
        }
        amount = option(lead, "deal_amount")
        if isinstance(amount, int | float) and not isinstance(amount, bool):
            record["Amount"] = amount
        record.update(deal_fields)
        ext = option(lead, "opportunity_external_id_field") or option(lead, "external_id_field")
        if ext:
            record.pop(str(ext), None)
        return record

    async def _query(self, lead: LeadSnapshot, soql: str) -> list[Mapping[str, Any]]:
        answer = json_of(await self._client.request("GET", f"{self._base(lead)}/query", params={"q": soql}))
        return list(answer.get("records") or ())

    async def _find(self, lead: LeadSnapshot, sobject: str) -> str | None:
        """One query on email OR phone; an email match wins over a phone match, oldest first."""
        conditions = []
        if lead.email:
            conditions.append(f"Email = {soql_literal(lead.email)}")
        if lead.phone:
            conditions.append(f"Phone = {soql_literal(lead.phone)}")
        if not conditions:
            return None
        rows = await self._query(
            lead,
            f"SELECT Id, Email FROM {sobject} WHERE {' OR '.join(conditions)} "  # noqa: S608 - escaped
            "ORDER BY CreatedDate LIMIT 10",
        )
        email = (lead.email or "").lower()
        for row in rows:
            if email and str(row.get("Email") or "").lower() == email:
                return str(row["Id"])
        return str(rows[0]["Id"]) if rows else None

    async def _composite(
        self, lead: LeadSnapshot, parts: list[dict[str, Any]]
    ) -> dict[str, Mapping[str, Any]]:
        """``POST /composite`` (allOrNone); ``{referenceId: subresponse}``; raises on a failed part."""
        answer = json_of(
            await self._client.request(
                "POST", f"{self._base(lead)}/composite", json={"allOrNone": True, "compositeRequest": parts}
            )
        )
        out: dict[str, Mapping[str, Any]] = {}
        failure: ProviderError | None = None
        for sub in answer.get("compositeResponse") or ():
            out[str(sub.get("referenceId"))] = sub
            status = int(sub.get("httpStatusCode") or 0)
            if status >= 400:
                code, message = _error_text(sub.get("body"))
                if code != "PROCESSING_HALTED" and failure is None:
                    failure = ProviderError(
                        f"Salesforce refused {sub.get('referenceId')}: {code or status}",
                        status=status,
                        retryable=status >= 500,
                        body=message,
                    )
        if failure is not None:
            raise failure
        return out

    # ------------------------------------------------------------------ one lead

    async def upsert_lead(self, lead: LeadSnapshot) -> RemoteIds:
        """Create or update the Lead (or Contact and Opportunity) and the Note; see the module
        docstring. A stored id Salesforce no longer knows (404 ``NOT_FOUND``: deleted, merged,
        converted) is dropped and the sync runs again once without stored ids. Raises
        :class:`AdapterConfigError` (bad options, nothing to match on) or :class:`ProviderError`
        (with the first refused part's ``errorCode``)."""
        try:
            return await self._upsert_one(lead)
        except ProviderError as exc:
            if exc.status != 404 or not lead.remote_ids:
                raise
        return await self._upsert_one(dataclasses.replace(lead, remote_ids={}))

    async def _upsert_one(self, lead: LeadSnapshot) -> RemoteIds:
        mode = self._mode(lead)
        sobject = "Lead" if mode == "lead" else "Contact"
        base = self._base(lead)
        ext = option(lead, "external_id_field")
        record = self._record(lead, mode)
        parts: list[dict[str, Any]] = []
        contact_id = lead.remote_ids.get("contact")
        deal_id = lead.remote_ids.get("deal")
        if ext:
            url = f"{base}/sobjects/{sobject}/{quote(str(ext), safe='')}/{quote(lead.lead_id, safe='')}"
            parts.append({"method": "PATCH", "url": url, "referenceId": "contact", "body": record})
            contact_ref = "@{contact.id}"
        else:
            if not contact_id:
                if not (lead.email or lead.phone):
                    raise AdapterConfigError(
                        "Salesforce needs an external id field, or the lead's email or phone"
                    )
                contact_id = await self._find(lead, sobject)
            if contact_id:
                url = f"{base}/sobjects/{sobject}/{quote(contact_id, safe='')}"
                parts.append({"method": "PATCH", "url": url, "referenceId": "contact", "body": record})
                contact_ref = contact_id
            else:
                url = f"{base}/sobjects/{sobject}"
                parts.append({"method": "POST", "url": url, "referenceId": "contact", "body": record})
                contact_ref = "@{contact.id}"
        if mode == "contact":
            opp = self._opportunity(lead, contact_ref)
            opp_ext = option(lead, "opportunity_external_id_field") or ext
            if opp_ext:
                opp_field = quote(str(opp_ext), safe="")
                url = f"{base}/sobjects/Opportunity/{opp_field}/{quote(lead.lead_id, safe='')}"
                parts.append({"method": "PATCH", "url": url, "referenceId": "deal", "body": opp})
            else:
                if not deal_id and contact_id:
                    rows = await self._query(
                        lead,
                        f"SELECT Id FROM Opportunity WHERE ContactId = {soql_literal(contact_id)} "  # noqa: S608
                        "AND IsClosed = false ORDER BY CreatedDate LIMIT 1",
                    )
                    deal_id = str(rows[0]["Id"]) if rows else None
                if deal_id:
                    url = f"{base}/sobjects/Opportunity/{quote(deal_id, safe='')}"
                    parts.append({"method": "PATCH", "url": url, "referenceId": "deal", "body": opp})
                else:
                    parts.append(
                        {
                            "method": "POST",
                            "url": f"{base}/sobjects/Opportunity",
                            "referenceId": "deal",
                            "body": opp,
                        }
                    )
        note_id = lead.remote_ids.get("note")
        if not note_id and contact_id:
            # a note whose id was lost: find it by its stable title rather than add another
            rows = await self._query(
                lead,
                f"SELECT Id FROM Note WHERE ParentId = {soql_literal(contact_id)} "  # noqa: S608 - escaped
                f"AND Title = {soql_literal(note_title(lead))} ORDER BY CreatedDate LIMIT 1",
            )
            note_id = str(rows[0]["Id"]) if rows else None
        note = {
            "Title": note_title(lead),
            "Body": note_text(lead, limit=SALESFORCE_NOTE_LIMIT),
        }
        if note_id:
            url = f"{base}/sobjects/Note/{quote(note_id, safe='')}"
            parts.append({"method": "PATCH", "url": url, "referenceId": "note", "body": note})
        else:
            parts.append(
                {
                    "method": "POST",
                    "url": f"{base}/sobjects/Note",
                    "referenceId": "note",
                    "body": {**note, "ParentId": contact_ref},
                }
            )
        results = await self._composite(lead, parts)
        contact_body = results.get("contact", {}).get("body") or {}
        contact_status = int(results.get("contact", {}).get("httpStatusCode") or 0)
        final_contact = contact_id
        created = False
        if isinstance(contact_body, Mapping) and contact_body.get("id"):
            final_contact = str(contact_body["id"])
            created = bool(contact_body.get("created", contact_status == 201))
        if not final_contact:
            raise ProviderError("Salesforce's composite answer has no record id", status=contact_status)
        deal_body = results.get("deal", {}).get("body") or {}
        if isinstance(deal_body, Mapping) and deal_body.get("id"):
            deal_id = str(deal_body["id"])
        note_body = results.get("note", {}).get("body") or {}
        if isinstance(note_body, Mapping) and note_body.get("id"):
            note_id = str(note_body["id"])
        return RemoteIds(
            contact=final_contact,
            deal=deal_id if mode == "contact" else None,
            note=note_id,
            created=created,
            extra={"object": sobject},
        )

    # ------------------------------------------------------------------ many leads

    async def upsert_leads(self, leads: Sequence[LeadSnapshot]) -> list[RemoteIds | IntegrationError]:
        """Sync up to :data:`COLLECTION_SIZE` leads; one entry per lead, in order (its ids or its
        error). Uses sObject Collections when every lead is in Lead mode with the same external id
        field and API version; otherwise calls :meth:`upsert_lead` per lead. A failure of a whole
        request is raised. Raises :class:`ValueError` for more than 200 leads."""
        if len(leads) > COLLECTION_SIZE:
            raise ValueError(f"at most {COLLECTION_SIZE} leads per Salesforce collection")
        if not leads:
            return []
        exts = {option(lead, "external_id_field") for lead in leads}
        modes = {str(option(lead, "object", "lead")).lower() for lead in leads}
        versions = {self._version(lead) for lead in leads}
        if (
            len(exts) != 1
            or None in exts
            or len(modes) != 1
            or not modes <= {"lead", "contact"}
            or len(versions) != 1
        ):
            out: list[RemoteIds | IntegrationError] = []
            for lead in leads:
                try:
                    out.append(await self.upsert_lead(lead))
                except (AdapterConfigError, ProviderError) as exc:
                    if isinstance(exc, ProviderError) and (exc.retryable or exc.status in (401, 403)):
                        raise
                    out.append(exc)
            return out
        ext = str(exts.pop())
        mode = modes.pop()
        sobject = "Lead" if mode == "lead" else "Contact"
        base = self._base(leads[0])
        records = []
        for lead in leads:
            record = self._record(lead, mode)
            records.append({"attributes": {"type": sobject}, ext: lead.lead_id, **record})
        answer = json_of(
            await self._client.request(
                "PATCH",
                f"{base}/composite/sobjects/{sobject}/{quote(ext, safe='')}",
                json={"allOrNone": False, "records": records},
            )
        )
        results: list[RemoteIds | IntegrationError] = []
        done: list[tuple[int, str, bool]] = []
        for index, (lead, result) in enumerate(zip(leads, answer, strict=False)):
            if result.get("success") and result.get("id"):
                done.append((index, str(result["id"]), bool(result.get("created"))))
                results.append(RemoteIds(contact=str(result["id"])))
            else:
                code, message = _error_text(result.get("errors"))
                results.append(
                    ProviderError(f"Salesforce refused lead {lead.lead_id}: {code}", status=400, body=message)
                )
        for _ in range(len(leads) - len(results)):
            results.append(ProviderError("Salesforce returned fewer results than records", status=200))
        deals: dict[int, str] = {}
        if mode == "contact" and done:
            deals = await self._upsert_opportunities(leads, done, base, ext, results)
            done = [(i, cid, new) for i, cid, new in done if i in deals]
        creates = [(i, cid, new) for i, cid, new in done if not leads[i].remote_ids.get("note")]
        updates = [(i, cid, new) for i, cid, new in done if leads[i].remote_ids.get("note")]
        notes: dict[int, str] = {}
        if creates:
            body = {
                "allOrNone": False,
                "records": [
                    {
                        "attributes": {"type": "Note"},
                        "ParentId": cid,
                        "Title": note_title(leads[i]),
                        "Body": note_text(leads[i], limit=SALESFORCE_NOTE_LIMIT),
                    }
                    for i, cid, _ in creates
                ],
            }
            created = json_of(await self._client.request("POST", f"{base}/composite/sobjects", json=body))
            for (i, _, _), result in zip(creates, created, strict=False):
                if result.get("success") and result.get("id"):
                    notes[i] = str(result["id"])
        if updates:
            body = {
                "allOrNone": False,
                "records": [
                    {
                        "attributes": {"type": "Note"},
                        "id": leads[i].remote_ids["note"],
                        "Title": note_title(leads[i]),
                        "Body": note_text(leads[i], limit=SALESFORCE_NOTE_LIMIT),
                    }
                    for i, _, _ in updates
                ],
            }
            updated = json_of(await self._client.request("PATCH", f"{base}/composite/sobjects", json=body))
            for (i, _, _), result in zip(updates, updated, strict=False):
                if result.get("success"):
                    notes[i] = leads[i].remote_ids["note"]
        for i, cid, new in done:
            results[i] = RemoteIds(
                contact=cid, deal=deals.get(i), note=notes.get(i), created=new, extra={"object": sobject}
            )
        return results

    async def _upsert_opportunities(
        self,
        leads: Sequence[LeadSnapshot],
        done: list[tuple[int, str, bool]],
        base: str,
        ext: str,
        results: list[RemoteIds | IntegrationError],
    ) -> dict[int, str]:
        """Contact mode of :meth:`upsert_leads`: ``PATCH /composite/sobjects/Opportunity/{field}``
        upserts the Opportunities of the Contacts just written (on ``opportunity_external_id_field``,
        default the Contact's field, holding our lead id); returns ``{lead index: Opportunity id}``
        and puts a refused one's error in ``results``."""
        opp_ext = str(option(leads[done[0][0]], "opportunity_external_id_field") or ext)
        records = [
            {
                "attributes": {"type": "Opportunity"},
                opp_ext: leads[i].lead_id,
                **self._opportunity(leads[i], cid),
            }
            for i, cid, _ in done
        ]
        answer = json_of(
            await self._client.request(
                "PATCH",
                f"{base}/composite/sobjects/Opportunity/{quote(opp_ext, safe='')}",
                json={"allOrNone": False, "records": records},
            )
        )
        deals: dict[int, str] = {}
        for (i, _, _), result in zip(done, answer, strict=False):
            if result.get("success") and result.get("id"):
                deals[i] = str(result["id"])
            else:
                code, message = _error_text(result.get("errors"))
                results[i] = ProviderError(
                    f"Salesforce refused the opportunity of lead {leads[i].lead_id}: {code}",
                    status=400,
                    body=message,
                )
        for i, _, _ in done[len(answer) :]:
            results[i] = ProviderError("Salesforce returned fewer results than records", status=200)
        return deals

    # ------------------------------------------------------------------ other

    async def record_activity(self, lead: LeadSnapshot, *, kind: str, text: str) -> str | None:
        """``POST /sobjects/Note`` on the stored record (1 request); returns the Note id."""
        parent = lead.remote_ids.get("contact")
        if not parent:
            raise AdapterConfigError(f"lead {lead.lead_id} has no Salesforce record yet")
        body = {"ParentId": parent, "Title": f"LeadWarm: {kind}"[:255], "Body": text[:SALESFORCE_NOTE_LIMIT]}
        answer = json_of(await self._client.request("POST", f"{self._base(lead)}/sobjects/Note", json=body))
        return str(answer["id"]) if answer.get("id") else None

    async def test_connection(self) -> Mapping[str, Any]:
        """``GET /query`` of ``SELECT Id, Name FROM Organization`` (1 request): ``{"id", "name"}``."""
        answer = json_of(
            await self._client.request(
                "GET", f"{self._base()}/query", params={"q": "SELECT Id, Name FROM Organization LIMIT 1"}
            )
        )
        rows = answer.get("records") or [{}]
        return {"id": rows[0].get("Id"), "name": rows[0].get("Name"), "api_version": self._version()}
