"""GoHighLevel adapter against Prism serving GoHighLevel's own OpenAPI (contacts, opportunities,
locations): every request must satisfy the vendor's spec (Prism answers 422/400 otherwise, which
the client raises), and a second sync with the stored ids updates instead of creating."""

from __future__ import annotations

from typing import Any

import pytest

from crm_sync.base import ProviderError
from crm_sync.crm import AdapterConfigError, GoHighLevelAdapter
from tests.crm_sync.fakes import GoHighLevelFake
from tests.crm_sync.leads import qualified_lead
from tests.crm_sync.support import Route, TestApiClient
from tests.support.prism import PrismServer

LOCATION = "ve9EPM428h8vShlRW1KT"
OPTIONS = {"pipeline_id": "VDm7RPYC2GLUvdpKmBfC", "stage_id": "7915dedc-8f18-44d5-8bc3-77c04e994a10"}


def client_for(
    prism: dict[str, PrismServer],
    *,
    version: str | None = "2021-07-28",
    stubs: dict[tuple[str, str], Any] | None = None,
) -> TestApiClient:
    return TestApiClient(
        "gohighlevel",
        routes=[Route(f"/{name}", server.base_url) for name, server in prism.items()],
        account={"locationId": LOCATION},
        headers={"Version": version} if version else {},
        stubs=stubs,
    )


def shape(methods: list[str]) -> list[str]:
    """Calls with the example ids Prism returns replaced by placeholders."""
    out = []
    for call in methods:
        method, path = call.split(" ", 1)
        parts = path.split("/")
        if len(parts) > 2 and parts[1] == "contacts" and parts[2] not in {"upsert"}:
            parts[2] = "{id}"
        if len(parts) > 4 and parts[3] == "notes":
            parts[4] = "{note}"
        if len(parts) > 2 and parts[1] == "opportunities" and parts[2] not in {"", "search"}:
            parts[2] = "{id}"
        out.append(f"{method} {'/'.join(parts)}")
    return out


async def test_first_sync_creates_contact_opportunity_note_and_starts_workflow(ghl_prism):
    client = client_for(ghl_prism)
    lead = qualified_lead(options={**OPTIONS, "workflow_id": "wf-123", "monetary_value": 5000})
    ids = await GoHighLevelAdapter(client).upsert_lead(lead)
    calls = shape(client.methods())
    assert calls[0] == "POST /contacts/upsert"
    assert calls[1] == "POST /contacts/{id}/tags"
    assert calls[-3:] == [
        "POST /opportunities/",
        "POST /contacts/{id}/notes",
        "POST /contacts/{id}/workflow/wf-123",
    ]
    assert all(c.status < 300 for c in client.calls)
    upsert = client.calls[0].json
    assert (
        upsert["locationId"] == LOCATION and upsert["email"] == lead.email and upsert["phone"] == lead.phone
    )
    assert "tags" not in upsert  # the upsert's tags would overwrite the contact's own
    assert client.calls[1].json == {"tags": ["leadwarm", "qualified"]}
    opportunity = next(c.json for c in client.calls if c.path == "/opportunities/")
    assert opportunity["pipelineId"] == OPTIONS["pipeline_id"]
    assert opportunity["pipelineStageId"] == OPTIONS["stage_id"]
    assert opportunity["contactId"] == ids.contact and opportunity["monetaryValue"] == 5000
    note = next(c.json for c in client.calls if c.path.endswith("/notes"))["body"]
    for part in (
        "82/100",
        "Budget confirmed",
        "budget: 5000",
        "bakery",
        "campaign=spring-promo",
        lead.transcript_url,
    ):
        assert part in note
    assert ids.contact and ids.deal and ids.note and ids.extra == {"workflow": "wf-123"}
    await client.aclose()


async def test_second_sync_updates_with_stored_ids(ghl_prism):
    client = client_for(ghl_prism)
    first = await GoHighLevelAdapter(client).upsert_lead(
        qualified_lead(options={**OPTIONS, "workflow_id": "wf-123"})
    )
    client.calls.clear()
    again = qualified_lead(score=91, remote_ids=first.as_dict(), options={**OPTIONS, "workflow_id": "wf-123"})
    second = await GoHighLevelAdapter(client).upsert_lead(again)
    assert shape(client.methods()) == [
        "PUT /contacts/{id}",
        "POST /contacts/{id}/tags",
        "PUT /opportunities/{id}",
        "PUT /contacts/{id}/notes/{note}",
    ]
    assert client.calls[0].path == f"/contacts/{first.contact}"
    assert client.calls[2].path == f"/opportunities/{first.deal}"
    assert "91/100" in client.calls[3].json["body"]
    assert (second.contact, second.deal, second.note) == (first.contact, first.deal, first.note)
    assert not second.created
    await client.aclose()


async def test_existing_contact_without_stored_opportunity_searches_first(ghl_prism):
    client = client_for(ghl_prism)
    lead = qualified_lead(tags=(), options=OPTIONS)
    adapter = GoHighLevelAdapter(client)
    # The contact exists in the CRM (a stored id) but the opportunity id was lost.
    ids = await adapter.upsert_lead(lead)
    client.calls.clear()
    await adapter.upsert_lead(qualified_lead(tags=(), options=OPTIONS, remote_ids={"contact": ids.contact}))
    assert shape(client.methods())[:3] == [
        "PUT /contacts/{id}",
        "GET /opportunities/search",
        "PUT /opportunities/{id}",
    ]
    search = client.calls[1].params
    assert search == {
        "location_id": LOCATION,
        "contact_id": ids.contact,
        "pipeline_id": OPTIONS["pipeline_id"],
    }
    await client.aclose()


async def test_a_lost_note_id_finds_the_note_again(ghl_prism):
    contact = "sx6wyHhbFdRXh302LLNR"
    notes = {
        "notes": [
            {"id": "n-other", "body": "call back"},
            {"id": "n-ours", "body": "...\nLeadWarm ref lead-0001"},
        ]
    }
    client = client_for(ghl_prism, stubs={("GET", f"/contacts/{contact}/notes"): notes})
    ids = await GoHighLevelAdapter(client).upsert_lead(
        qualified_lead(
            tags=(), options=OPTIONS, remote_ids={"contact": contact, "deal": "yWQobCRIhRguQtD2llvk"}
        )
    )
    assert shape(client.methods())[-2:] == ["GET /contacts/{id}/notes", "PUT /contacts/{id}/notes/{note}"]
    assert client.calls[-1].path == f"/contacts/{contact}/notes/n-ours" and ids.note == "n-ours"
    assert client.calls[-1].status == 200  # Prism accepted the update
    await client.aclose()


async def test_a_request_that_breaks_the_spec_fails(ghl_prism):
    """Without the required ``Version`` header Prism refuses the call: the spec check bites."""
    client = client_for(ghl_prism, version=None)
    with pytest.raises(ProviderError) as caught:
        await GoHighLevelAdapter(client).upsert_lead(qualified_lead(options=OPTIONS))
    assert caught.value.status in (400, 422)
    await client.aclose()


async def test_record_activity_and_test_connection(ghl_prism):
    client = client_for(ghl_prism)
    adapter = GoHighLevelAdapter(client)
    note = await adapter.record_activity(
        qualified_lead(remote_ids={"contact": "sx6wyHhbFdRXh302LLNR"}),
        kind="meeting",
        text="Booked for Tuesday 10:00",
    )
    assert note
    assert client.calls[-1].json == {"body": "[meeting] Booked for Tuesday 10:00"}
    info = await adapter.test_connection()
    assert info["id"]
    await client.aclose()


async def test_no_location_or_no_contact_details_is_a_config_error(ghl_prism):
    client = client_for(ghl_prism)
    client.account = {}
    with pytest.raises(AdapterConfigError):
        await GoHighLevelAdapter(client).upsert_lead(qualified_lead())
    client.account = {"locationId": LOCATION}
    with pytest.raises(AdapterConfigError):
        await GoHighLevelAdapter(client).upsert_lead(qualified_lead(email=None, phone=None))
    assert client.calls == []
    await client.aclose()


# --------------------------------------------------------------------------- against the stateful fake


def fake_client(fake: GoHighLevelFake) -> TestApiClient:
    return TestApiClient(
        "gohighlevel",
        routes=[Route("/", fake.base_url)],
        account={"locationId": LOCATION},
        headers={"Version": "2021-07-28"},
    )


async def test_one_contact_opportunity_note_and_a_second_sync_updates(ghl_fake):
    client = fake_client(ghl_fake)
    adapter = GoHighLevelAdapter(client)
    options = {**OPTIONS, "workflow_id": "wf-1"}
    first = await adapter.upsert_lead(qualified_lead(options=options))
    assert first.created and len(client.calls) == 5
    second = await adapter.upsert_lead(qualified_lead(score=40, options=options, remote_ids=first.as_dict()))
    assert (second.contact, second.deal, second.note) == (first.contact, first.deal, first.note)
    lost = await adapter.upsert_lead(qualified_lead(score=41, options=options))  # ids lost: found again
    assert (lost.contact, lost.deal, lost.note) == (first.contact, first.deal, first.note)
    assert (len(ghl_fake.contacts), len(ghl_fake.opportunities), len(ghl_fake.notes)) == (1, 1, 1)
    assert "41/100" in ghl_fake.notes[str(first.note)]["body"]
    assert ghl_fake.contacts[first.contact]["tags"] == ["leadwarm", "qualified"]
    assert ghl_fake.workflows == [(first.contact, "wf-1"), (first.contact, "wf-1")]  # once per lost id
    await client.aclose()


async def test_outage_mid_sync_then_retry_writes_once(ghl_fake):
    client = fake_client(ghl_fake)
    adapter = GoHighLevelAdapter(client)
    ghl_fake.fail_paths["/opportunities/"] = [502]
    with pytest.raises(ProviderError) as caught:
        await adapter.upsert_lead(qualified_lead(options=OPTIONS))
    assert caught.value.retryable
    await adapter.upsert_lead(qualified_lead(options=OPTIONS))
    assert (len(ghl_fake.contacts), len(ghl_fake.opportunities), len(ghl_fake.notes)) == (1, 1, 1)
    await client.aclose()


async def test_burst_limit_answers_429_with_rate_limit_headers():
    fake = await GoHighLevelFake(limit=2, window_s=60.0).start()
    client = fake_client(fake)
    try:
        with pytest.raises(ProviderError) as caught:
            await GoHighLevelAdapter(client).upsert_lead(qualified_lead(options=OPTIONS))
        assert caught.value.status == 429 and caught.value.retryable and caught.value.retry_after_s
        assert len(client.calls) == 3 and fake.rejected_429 == 1
    finally:
        await client.aclose()
        await fake.stop()


async def test_the_account_as_the_oauth_flow_stores_it_reaches_adapter_mapping_and_calendar(ghl_prism):
    """The token response's ``locationId`` is stored as ``account.location_id`` (the catalog's
    ``account_fields``); the adapter, the property list and the calendar all find it there."""
    from crm_sync.calendars.gohighlevel import GoHighLevelCalendar
    from crm_sync.catalog import load_catalog
    from crm_sync.mapping import fetch_properties
    from crm_sync.oauth import parse_token_response

    tokens = parse_token_response(
        load_catalog().get("gohighlevel"),
        {"access_token": "a", "expires_in": 86399, "locationId": LOCATION, "userType": "Location"},
        now=1_900_000_000.0,
    )
    client = client_for(ghl_prism)
    client.account = dict(tokens.account)
    assert "locationId" not in client.account
    try:
        await GoHighLevelAdapter(client).upsert_lead(qualified_lead(options=OPTIONS))
        assert client.calls[0].json["locationId"] == LOCATION
        await fetch_properties(client, object_type="contact")
        assert client.calls[-1].path == f"/locations/{LOCATION}/customFields"
        GoHighLevelCalendar(client, calendar_id="cal-1")  # raised "no locationId" before
    finally:
        await client.aclose()
