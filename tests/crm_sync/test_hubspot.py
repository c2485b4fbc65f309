"""HubSpot adapter against the stateful HubSpot fake (tests/crm_sync/fakes.py): one contact, one
deal and one note per lead, a second sync that updates them, batches of 100 in 5 requests, and the
documented rate limit answered with 429 and Retry-After."""

from __future__ import annotations

import pytest

from crm_sync.base import ProviderError
from crm_sync.crm import HubSpotAdapter
from crm_sync.crm.hubspot import BATCH_SIZE
from tests.crm_sync.fakes import HubSpotFake
from tests.crm_sync.leads import qualified_lead
from tests.crm_sync.support import Route, TestApiClient

OPTIONS = {"pipeline_id": "default", "stage_id": "qualifiedtobuy", "deal_amount": 5000}


def client_for(fake: HubSpotFake) -> TestApiClient:
    return TestApiClient("hubspot", routes=[Route("/", fake.base_url)], account={"portal_id": "62515"})


def counts(fake: HubSpotFake) -> tuple[int, int, int]:
    return len(fake.objects["contacts"]), len(fake.objects["deals"]), len(fake.objects["notes"])


async def test_first_sync_then_update(hubspot):
    client = client_for(hubspot)
    adapter = HubSpotAdapter(client)
    lead = qualified_lead(options=OPTIONS)
    first = await adapter.upsert_lead(lead)
    assert first.created and counts(hubspot) == (1, 1, 1)
    assert len(hubspot.requests) == 5
    contact = hubspot.objects["contacts"][first.contact]["properties"]
    assert (contact["email"], contact["firstname"], contact["lastname"], contact["phone"]) == (
        lead.email,
        "Jeanne",
        "Martin",
        "+33612345678",
    )
    deal = hubspot.objects["deals"][str(first.deal)]["properties"]
    assert (deal["pipeline"], deal["dealstage"], deal["amount"]) == ("default", "qualifiedtobuy", "5000")
    assert deal["description"] == lead.summary  # the default mapping
    assert hubspot.associated("deals", str(first.deal), "contacts") == [first.contact]
    assert hubspot.associated("notes", str(first.note), "contacts") == [first.contact]
    assert hubspot.associated("notes", str(first.note), "deals") == [first.deal]
    body = hubspot.objects["notes"][str(first.note)]["properties"]["hs_note_body"]
    assert "82/100" in body and "Martin &amp; Fils" in body and lead.transcript_url in body

    hubspot.requests.clear()
    second = await adapter.upsert_lead(qualified_lead(score=95, remote_ids=first.as_dict(), options=OPTIONS))
    assert (second.contact, second.deal, second.note, second.created) == (
        first.contact,
        first.deal,
        first.note,
        False,
    )
    assert counts(hubspot) == (1, 1, 1)
    assert [p for _, p in hubspot.requests] == [
        "/crm/v3/objects/contacts/batch/update",
        "/crm/v3/objects/deals/batch/update",
        "/crm/v3/objects/notes/batch/update",
    ]
    assert "95/100" in hubspot.objects["notes"][str(first.note)]["properties"]["hs_note_body"]
    await client.aclose()


async def test_lost_ids_do_not_duplicate_anything(hubspot):
    """A sync whose answer was lost (no ids stored) runs again: the contact is upserted on its
    email, the deal found through the v4 associations and the note by its ref line, so nothing is
    created twice."""
    client = client_for(hubspot)
    adapter = HubSpotAdapter(client)
    first = await adapter.upsert_lead(qualified_lead(options=OPTIONS))
    again = await adapter.upsert_lead(qualified_lead(options=OPTIONS))
    assert (again.contact, again.deal, again.note, again.created) == (
        first.contact,
        first.deal,
        first.note,
        False,
    )
    assert counts(hubspot) == (1, 1, 1)
    await client.aclose()


async def test_a_stale_contact_id_falls_back_to_the_email(hubspot):
    client = client_for(hubspot)
    ids = await HubSpotAdapter(client).upsert_lead(
        qualified_lead(remote_ids={"contact": "999999"}, options=OPTIONS)
    )
    assert ids.contact != "999999" and hubspot.contact_by_email("jeanne.martin@example.fr") == ids.contact
    assert counts(hubspot) == (1, 1, 1)
    await client.aclose()


async def test_batch_of_100_in_five_requests_with_each_deal_on_its_own_contact(hubspot):
    client = client_for(hubspot)
    leads = [
        qualified_lead(
            lead_id=f"lead-{i}",
            name=f"Lead {i}",
            first_name=f"First{i}",
            last_name=f"Last{i}",
            email=f"lead{i}@example.com",
            phone=f"+336{i:08d}",
            options=OPTIONS,
        )
        for i in range(BATCH_SIZE)
    ]
    results = await HubSpotAdapter(client).upsert_leads(leads)
    assert len(hubspot.requests) == 5
    assert counts(hubspot) == (100, 100, 100)
    for lead, ids in zip(leads, results, strict=True):
        assert not isinstance(ids, Exception)
        assert hubspot.objects["contacts"][ids.contact]["properties"]["email"] == lead.email
        # the fake answers batch creates in reverse order: the ids must still match
        assert (
            hubspot.objects["deals"][str(ids.deal)]["properties"]["dealname"]
            == f"Lead {lead.lead_id[5:]} (LeadWarm)"
        )
        assert hubspot.associated("deals", str(ids.deal), "contacts") == [ids.contact]
        assert hubspot.associated("notes", str(ids.note), "contacts") == [ids.contact]
    with pytest.raises(ValueError, match="at most 100"):
        await HubSpotAdapter(client).upsert_leads([*leads, qualified_lead()])
    await client.aclose()


async def test_phone_only_lead_is_found_by_search(hubspot):
    client = client_for(hubspot)
    adapter = HubSpotAdapter(client)
    lead = qualified_lead(email=None, options=OPTIONS)
    first = await adapter.upsert_lead(lead)
    assert first.created
    second = await adapter.upsert_lead(lead)
    assert second.contact == first.contact and not second.created
    assert counts(hubspot)[0] == 1
    assert hubspot.count("POST", "/crm/v3/objects/contacts/search") == 2
    no_contact = await adapter.upsert_leads([qualified_lead(email=None, phone=None)])
    assert isinstance(no_contact[0], Exception)
    await client.aclose()


async def test_rate_limit_answers_429_with_retry_after():
    fake = await HubSpotFake(limit=3, window_s=60.0).start()
    client = client_for(fake)
    try:
        with pytest.raises(ProviderError) as caught:
            await HubSpotAdapter(client).upsert_lead(qualified_lead(options=OPTIONS))
        assert caught.value.status == 429 and caught.value.retryable
        assert caught.value.retry_after_s is not None and 1 <= caught.value.retry_after_s <= 60
        assert "RATE_LIMIT" in caught.value.body
        assert fake.rejected_429 == 1
        assert client.calls[0].status == 200  # the first 3 went through
    finally:
        await client.aclose()
        await fake.stop()


async def test_unknown_property_is_refused(hubspot):
    client = client_for(hubspot)
    with pytest.raises(ProviderError) as caught:
        await HubSpotAdapter(client).upsert_lead(qualified_lead(fields={"no_such_property": "x"}))
    assert caught.value.status == 400 and "does not exist" in caught.value.body
    await client.aclose()


async def test_record_activity_and_test_connection(hubspot):
    client = client_for(hubspot)
    adapter = HubSpotAdapter(client)
    ids = await adapter.upsert_lead(qualified_lead(options=OPTIONS))
    note = await adapter.record_activity(
        qualified_lead(remote_ids=ids.as_dict()), kind="meeting", text="Demo booked Tuesday 10:00"
    )
    assert note and hubspot.associated("notes", note, "contacts") == [ids.contact]
    assert (
        hubspot.objects["notes"][note]["properties"]["hs_note_body"] == "[meeting] Demo booked Tuesday 10:00"
    )
    assert (await adapter.test_connection())["portal_id"] == 62515
    await client.aclose()


@pytest.mark.parametrize(
    "failing",
    [
        "/crm/v3/objects/deals/batch/create",
        "/crm/v4/associations/contacts/deals/batch/read",
        "/crm/v3/objects/notes/batch/create",
    ],
)
async def test_a_failure_mid_sync_then_a_retry_writes_everything_once(hubspot, failing):
    """An outage (503) at any step after the contact is written: the adapter raises a retryable
    error (no ids reach the app), the app retries the same snapshot, and the CRM ends with one
    contact, one deal and one note."""
    client = client_for(hubspot)
    adapter = HubSpotAdapter(client)
    hubspot.fail_paths[failing] = [503]
    with pytest.raises(ProviderError) as caught:
        await adapter.upsert_lead(qualified_lead(options=OPTIONS))
    assert caught.value.retryable and caught.value.status == 503
    ids = await adapter.upsert_lead(qualified_lead(options=OPTIONS))
    assert counts(hubspot) == (1, 1, 1)
    assert hubspot.associated("deals", str(ids.deal), "contacts") == [ids.contact]
    assert hubspot.associated("notes", str(ids.note), "deals") == [ids.deal]
    await client.aclose()


async def test_a_deal_or_note_deleted_in_hubspot_is_created_again(hubspot):
    client = client_for(hubspot)
    adapter = HubSpotAdapter(client)
    first = await adapter.upsert_lead(qualified_lead(options=OPTIONS))
    del hubspot.objects["deals"][str(first.deal)]
    del hubspot.objects["notes"][str(first.note)]
    second = await adapter.upsert_lead(qualified_lead(options=OPTIONS, remote_ids=first.as_dict()))
    assert second.contact == first.contact and second.deal != first.deal and second.note != first.note
    assert counts(hubspot) == (1, 1, 1)
    assert hubspot.associated("deals", str(second.deal), "contacts") == [first.contact]
    await client.aclose()
