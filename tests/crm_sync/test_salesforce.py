"""Salesforce adapter against the stateful Salesforce fake: Lead by default, Contact plus
Opportunity on request, upserts on an external id in one composite call, a search by email
without one, sObject Collections of 200, and the daily allowance answered with
REQUEST_LIMIT_EXCEEDED."""

from __future__ import annotations

import pytest

from crm_sync.base import ProviderError
from crm_sync.crm import SalesforceAdapter
from crm_sync.crm.salesforce import soql_literal
from kernel.clock import ManualClock
from tests.crm_sync.fakes import SalesforceFake
from tests.crm_sync.leads import qualified_lead
from tests.crm_sync.support import Route, TestApiClient

EXT = {"external_id_field": "LeadWarm_Id__c"}
NOW = 1_764_504_000.0  # 2025-11-30T12:00:00Z


def client_for(fake: SalesforceFake, version: str = "v61.0") -> TestApiClient:
    return TestApiClient(
        "salesforce",
        routes=[Route("/", fake.base_url)],
        account={"instance_url": fake.base_url, "api_version": version},
    )


async def test_lead_on_external_id_in_one_request_then_updated(salesforce):
    client = client_for(salesforce)
    adapter = SalesforceAdapter(client)
    first = await adapter.upsert_lead(qualified_lead(options=EXT))
    assert salesforce.requests == [("POST", "/services/data/v61.0/composite")]
    assert first.created and first.deal is None and first.note
    lead = salesforce.records["Lead"][first.contact]
    assert (lead["LastName"], lead["Email"], lead["Company"], lead["LeadWarm_Id__c"]) == (
        "Martin",
        "jeanne.martin@example.fr",
        "Martin & Fils",
        "lead-0001",
    )
    assert lead["Rating"] == "Hot" and lead["Description"].startswith("Runs a 12-person")
    note = salesforce.records["Note"][str(first.note)]
    assert note["ParentId"] == first.contact and "Budget confirmed" in note["Body"]

    second = await adapter.upsert_lead(qualified_lead(score=50, remote_ids=first.as_dict(), options=EXT))
    assert (second.contact, second.note, second.created) == (first.contact, first.note, False)
    assert len(salesforce.records["Lead"]) == 1 and len(salesforce.records["Note"]) == 1
    assert salesforce.records["Lead"][first.contact]["Rating"] == "Warm"
    assert "50/100" in salesforce.records["Note"][str(first.note)]["Body"]
    assert salesforce.records["Note"][str(first.note)]["Title"] == "LeadWarm ref lead-0001"
    await client.aclose()


async def test_contact_and_opportunity_on_external_id(salesforce):
    client = client_for(salesforce)
    adapter = SalesforceAdapter(client, clock=ManualClock(NOW))
    options = {**EXT, "object": "contact", "stage_name": "Qualification", "deal_amount": 5000}
    first = await adapter.upsert_lead(qualified_lead(options=options))
    assert len(salesforce.requests) == 1
    opportunity = salesforce.records["Opportunity"][str(first.deal)]
    assert opportunity["ContactId"] == first.contact
    assert (opportunity["StageName"], opportunity["CloseDate"], opportunity["Amount"]) == (
        "Qualification",
        "2025-12-30",
        5000,
    )
    second = await adapter.upsert_lead(qualified_lead(remote_ids=first.as_dict(), options=options))
    assert (second.contact, second.deal, second.note) == (first.contact, first.deal, first.note)
    assert [len(salesforce.records[k]) for k in ("Contact", "Opportunity", "Note")] == [1, 1, 1]
    await client.aclose()


async def test_without_external_id_the_lead_is_found_by_email(salesforce):
    client = client_for(salesforce)
    adapter = SalesforceAdapter(client)
    first = await adapter.upsert_lead(qualified_lead())
    assert [m for m, _ in salesforce.requests] == ["GET", "POST"]  # query, then composite
    # ids lost: the query finds the Lead by email and it is updated, not duplicated
    second = await adapter.upsert_lead(qualified_lead(score=10))
    assert second.contact == first.contact and not second.created
    assert len(salesforce.records["Lead"]) == 1 and len(salesforce.records["Note"]) == 1
    assert second.note == first.note  # found again by its stable title
    assert salesforce.records["Lead"][first.contact]["Rating"] == "Cold"
    await client.aclose()


async def test_contact_mode_without_external_id_finds_the_open_opportunity(salesforce):
    client = client_for(salesforce)
    adapter = SalesforceAdapter(client, clock=ManualClock(NOW))
    first = await adapter.upsert_lead(qualified_lead(options={"object": "contact"}))
    second = await adapter.upsert_lead(
        qualified_lead(options={"object": "contact"}, remote_ids={"contact": first.contact})
    )
    assert second.deal == first.deal
    assert len(salesforce.records["Opportunity"]) == 1
    await client.aclose()


async def test_a_refused_part_rolls_back_the_composite(salesforce):
    client = client_for(salesforce)
    with pytest.raises(ProviderError) as caught:
        await SalesforceAdapter(client).upsert_lead(
            qualified_lead(options={**EXT, "lead_source": "Billboard"})
        )
    assert "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in str(caught.value)
    assert salesforce.records["Lead"] == {} and salesforce.records["Note"] == {}
    await client.aclose()


async def test_collections_of_200_in_two_requests_then_three(salesforce):
    client = client_for(salesforce)
    adapter = SalesforceAdapter(client)
    leads = [qualified_lead(lead_id=f"lead-{i}", email=f"l{i}@example.com", options=EXT) for i in range(200)]
    results = await adapter.upsert_leads(leads)
    assert len(salesforce.requests) == 2
    assert len(salesforce.records["Lead"]) == 200 and len(salesforce.records["Note"]) == 200
    for lead, ids in zip(leads, results, strict=True):
        assert not isinstance(ids, Exception)
        assert salesforce.records["Lead"][ids.contact]["LeadWarm_Id__c"] == lead.lead_id
        assert salesforce.records["Note"][str(ids.note)]["ParentId"] == ids.contact
        assert ids.created
    salesforce.requests.clear()
    again = [
        qualified_lead(lead_id=f"lead-{i}", remote_ids=r.as_dict(), options=EXT)
        for i, r in enumerate(results)
        if not isinstance(r, Exception)
    ]
    again[0] = qualified_lead(lead_id="lead-0", email="l0@example.com", options=EXT)  # its note id was lost
    second = await adapter.upsert_leads(again)
    assert len(salesforce.requests) == 3  # upsert, create the lost note, update the others
    assert len(salesforce.records["Lead"]) == 200
    assert all(not isinstance(r, Exception) and not r.created for r in second)
    with pytest.raises(ValueError, match="at most 200"):
        await adapter.upsert_leads([*leads, qualified_lead()])
    await client.aclose()


async def test_daily_allowance_exceeded():
    fake = await SalesforceFake(allowance=2, window_s=60.0).start()
    client = client_for(fake)
    try:
        adapter = SalesforceAdapter(client)
        await adapter.upsert_lead(qualified_lead())  # query + composite: the whole allowance
        with pytest.raises(ProviderError) as caught:
            await adapter.test_connection()
        assert caught.value.status == 403 and "REQUEST_LIMIT_EXCEEDED" in caught.value.body
        assert client.calls[0].status == 200
    finally:
        await client.aclose()
        await fake.stop()


async def test_record_activity_test_connection_and_version(salesforce):
    client = client_for(salesforce, version="60.0")
    adapter = SalesforceAdapter(client)
    ids = await adapter.upsert_lead(qualified_lead(options=EXT))
    assert salesforce.requests[0][1].startswith("/services/data/v60.0/")
    note = await adapter.record_activity(
        qualified_lead(remote_ids=ids.as_dict()), kind="handoff", text="To Paul"
    )
    assert salesforce.records["Note"][str(note)]["Title"] == "LeadWarm: handoff"
    info = await adapter.test_connection()
    assert info == {"id": "00D000000000001EAA", "name": "Acme", "api_version": "v60.0"}
    await client.aclose()


def test_soql_literal_escapes_quotes_and_backslashes():
    assert soql_literal("o'brien\\x") == "'o\\'brien\\\\x'"
    assert soql_literal("a\nb") == "'a\\nb'"


async def test_an_outage_then_a_retry_writes_once(salesforce):
    """A 503 on the composite call: nothing was written (the call is atomic), the retry writes the
    Lead and its Note once; a 503 after the write (the answer lost) is found again by email."""
    client = client_for(salesforce)
    adapter = SalesforceAdapter(client)
    salesforce.fail_paths["/services/data/v61.0/composite"] = [503]
    with pytest.raises(ProviderError) as caught:
        await adapter.upsert_lead(qualified_lead())
    assert caught.value.retryable
    first = await adapter.upsert_lead(qualified_lead())
    again = await adapter.upsert_lead(qualified_lead())  # as if the first answer had been lost
    assert (again.contact, again.note) == (first.contact, first.note)
    assert len(salesforce.records["Lead"]) == 1 and len(salesforce.records["Note"]) == 1
    await client.aclose()


async def test_a_stored_id_deleted_in_salesforce_is_dropped(salesforce):
    client = client_for(salesforce)
    adapter = SalesforceAdapter(client)
    first = await adapter.upsert_lead(qualified_lead())
    salesforce.records["Lead"].clear()
    salesforce.records["Note"].clear()
    second = await adapter.upsert_lead(qualified_lead(remote_ids=first.as_dict()))
    assert second.contact != first.contact and second.created
    assert len(salesforce.records["Lead"]) == 1 and len(salesforce.records["Note"]) == 1
    await client.aclose()


async def test_contact_mode_collections_write_contacts_opportunities_notes_in_three_requests(salesforce):
    client = client_for(salesforce)
    adapter = SalesforceAdapter(client)
    options = {**EXT, "object": "contact", "stage_name": "Qualification"}
    leads = [
        qualified_lead(lead_id=f"lead-{i}", email=f"c{i}@example.com", options=options) for i in range(50)
    ]
    results = await adapter.upsert_leads(leads)
    assert [m for m, _ in salesforce.requests] == ["PATCH", "PATCH", "POST"]
    assert salesforce.requests[1][1].endswith("/composite/sobjects/Opportunity/LeadWarm_Id__c")
    records = salesforce.records
    assert (len(records["Contact"]), len(records["Opportunity"]), len(records["Note"])) == (50, 50, 50)
    for lead, ids in zip(leads, results, strict=True):
        assert not isinstance(ids, Exception) and ids.deal and ids.note
        assert records["Contact"][ids.contact]["LeadWarm_Id__c"] == lead.lead_id
        assert records["Opportunity"][ids.deal]["ContactId"] == ids.contact
        assert records["Opportunity"][ids.deal]["StageName"] == "Qualification"
        assert records["Note"][ids.note]["ParentId"] == ids.contact
    # a second sync with the stored ids updates the same 150 records
    salesforce.requests.clear()
    again = await adapter.upsert_leads(
        [
            qualified_lead(
                lead_id=f"lead-{i}",
                email=f"c{i}@example.com",
                score=95,
                options=options,
                remote_ids=r.as_dict(),
            )
            for i, r in enumerate(results)
            if not isinstance(r, Exception)
        ]
    )
    assert [m for m, _ in salesforce.requests] == ["PATCH", "PATCH", "PATCH"]
    assert (len(records["Contact"]), len(records["Opportunity"]), len(records["Note"])) == (50, 50, 50)
    assert all(not isinstance(r, Exception) and not r.created for r in again)
    await client.aclose()
