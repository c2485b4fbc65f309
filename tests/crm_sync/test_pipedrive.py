"""Pipedrive adapter against Prism serving Pipedrive's OpenAPI v2 (persons, deals) and v1 (notes,
users): every request must satisfy the published spec, and stored ids turn a second sync into
updates."""

from __future__ import annotations

from typing import Any

import pytest

from crm_sync.base import ProviderError
from crm_sync.crm import AdapterConfigError, PipedriveAdapter
from tests.crm_sync.fakes import PipedriveFake
from tests.crm_sync.leads import qualified_lead
from tests.crm_sync.support import Route, TestApiClient
from tests.support.prism import PrismServer

OPTIONS = {"pipeline_id": 1, "stage_id": 2, "deal_value": 5000, "currency": "EUR"}


def client_for(prism: dict[str, PrismServer], **stubs: Any) -> TestApiClient:
    return TestApiClient(
        "pipedrive",
        routes=[
            Route("/api/v2", prism["v2"].base_url, strip=True),
            Route("/api/v1", prism["v1"].base_url, strip=True),
        ],
        account={"api_domain": "https://acme.pipedrive.com"},
        stubs=stubs.get("stubs"),
    )


def verbs(client: TestApiClient) -> list[str]:
    out = []
    for call in client.calls:
        parts = [("{id}" if p.isdigit() else p) for p in call.path.split("/")]
        out.append(f"{call.method} {'/'.join(parts)}")
    return out


async def test_first_sync_searches_then_writes_person_deal_note(pipedrive_prism):
    client = client_for(pipedrive_prism)
    lead = qualified_lead(options=OPTIONS)
    ids = await PipedriveAdapter(client).upsert_lead(lead)
    assert all(c.status < 300 for c in client.calls)
    calls = verbs(client)
    assert calls[0] == "GET /api/v2/persons/search"
    assert client.calls[0].params == {
        "term": lead.email,
        "fields": "email",
        "exact_match": "true",
        "limit": 1,
    }
    # Prism's example search answer names a person, so the adapter updates it rather than creating one.
    assert calls[1] == "PATCH /api/v2/persons/{id}"
    person = client.calls[1].json
    assert person["emails"] == [{"value": lead.email, "primary": True, "label": "work"}]
    assert person["phones"] == [{"value": lead.phone, "primary": True, "label": "mobile"}]
    deal_call = next(c for c in client.calls if c.path.startswith("/api/v2/deals") and c.method != "GET")
    assert deal_call.json["pipeline_id"] == 1 and deal_call.json["stage_id"] == 2
    assert deal_call.json["value"] == 5000 and deal_call.json["currency"] == "EUR"
    note_call = client.calls[-1]
    assert (note_call.method, note_call.path) == ("POST", "/api/v1/notes")
    assert note_call.json["person_id"] == int(ids.contact) and note_call.json["deal_id"] == int(str(ids.deal))
    assert "Budget confirmed" in note_call.json["content"] and "<br>" in note_call.json["content"]
    assert ids.contact and ids.deal and ids.note
    await client.aclose()


NOTHING_FOUND = {"success": True, "data": {"items": []}}


async def test_new_person_is_created_with_its_deal_and_note(pipedrive_prism):
    """No person matches (the search is stubbed empty): POST person, POST deal, POST note, each
    checked by Prism against Pipedrive's spec."""
    client = client_for(pipedrive_prism, stubs={("GET", "/api/v2/persons/search"): NOTHING_FOUND})
    lead = qualified_lead(options=OPTIONS)
    ids = await PipedriveAdapter(client).upsert_lead(lead)
    assert verbs(client) == [
        "GET /api/v2/persons/search",
        "GET /api/v2/persons/search",
        "POST /api/v2/persons",
        "POST /api/v2/deals",
        "POST /api/v1/notes",
    ]
    assert [c.params["fields"] for c in client.calls[:2] if c.params] == ["email", "phone"]
    assert all(c.status == 200 for c in client.calls)
    assert client.calls[2].json["name"] == "Jeanne Martin"
    assert (
        client.calls[3].json["person_id"] == int(ids.contact)
        and client.calls[3].json["title"] == "Jeanne Martin (LeadWarm)"
    )
    assert ids.created and ids.deal and ids.note
    await client.aclose()


async def test_a_lost_note_id_finds_the_note_again(pipedrive_prism):
    lead = qualified_lead(options=OPTIONS, remote_ids={"contact": "11", "deal": "22"})
    listed = {
        "success": True,
        "data": [{"id": 5, "content": "other"}, {"id": 77, "content": "x<br>LeadWarm ref lead-0001"}],
    }
    client = client_for(pipedrive_prism, stubs={("GET", "/api/v1/notes"): listed})
    ids = await PipedriveAdapter(client).upsert_lead(lead)
    assert verbs(client)[-2:] == ["GET /api/v1/notes", "PUT /api/v1/notes/{id}"]
    assert client.calls[-1].path == "/api/v1/notes/77" and ids.note == "77"
    assert client.calls[-2].params == {"person_id": 11, "limit": 100, "sort": "add_time DESC"}
    await client.aclose()


async def test_second_sync_updates_with_stored_ids(pipedrive_prism):
    client = client_for(pipedrive_prism)
    stored = {"contact": "11", "deal": "22", "note": "33"}
    ids = await PipedriveAdapter(client).upsert_lead(qualified_lead(remote_ids=stored, options=OPTIONS))
    assert verbs(client) == [
        "PATCH /api/v2/persons/{id}",
        "PATCH /api/v2/deals/{id}",
        "PUT /api/v1/notes/{id}",
    ]
    assert [c.path for c in client.calls] == ["/api/v2/persons/11", "/api/v2/deals/22", "/api/v1/notes/33"]
    assert (ids.contact, ids.deal, ids.note, ids.created) == ("11", "22", "33", False)
    await client.aclose()


async def test_custom_fields_go_to_custom_fields(pipedrive_prism):
    client = client_for(pipedrive_prism)
    code = "a" * 40
    lead = qualified_lead(
        remote_ids={"contact": "11", "deal": "22", "note": "33"}, fields={code: 82, "label_ids": [5]}
    )
    await PipedriveAdapter(client).upsert_lead(lead)
    assert client.calls[0].json["custom_fields"] == {code: 82}
    assert client.calls[0].json["label_ids"] == [5]
    await client.aclose()


async def test_a_request_that_breaks_the_spec_fails(pipedrive_prism):
    """An id that is not an integer breaks the spec's path parameter: Prism refuses it."""
    client = client_for(pipedrive_prism)
    with pytest.raises(ProviderError) as caught:
        await client.request("PATCH", "/api/v2/persons/not-a-number", json={"name": "x"})
    assert caught.value.status in (400, 404, 422)
    with pytest.raises(ProviderError) as caught:
        await client.request("POST", "/api/v2/deals", json={"person_id": 1})  # no title
    assert caught.value.status == 422
    with pytest.raises(AdapterConfigError):
        await PipedriveAdapter(client).upsert_lead(qualified_lead(remote_ids={"contact": "abc"}))
    await client.aclose()


async def test_record_activity_and_test_connection(pipedrive_prism):
    client = client_for(pipedrive_prism)
    adapter = PipedriveAdapter(client)
    note = await adapter.record_activity(
        qualified_lead(remote_ids={"contact": "11", "deal": "22"}), kind="handoff", text="Passed to Paul"
    )
    assert note
    assert client.calls[-1].json == {"content": "[handoff] Passed to Paul", "person_id": 11, "deal_id": 22}
    info = await adapter.test_connection()
    assert "company_id" in info
    await client.aclose()


# --------------------------------------------------------------------------- against the stateful fake


def fake_client(fake: PipedriveFake) -> TestApiClient:
    return TestApiClient("pipedrive", routes=[Route("/", fake.base_url)])


async def test_one_person_deal_note_and_a_second_sync_updates(pipedrive_fake):
    client = fake_client(pipedrive_fake)
    adapter = PipedriveAdapter(client)
    first = await adapter.upsert_lead(qualified_lead(options=OPTIONS))
    assert first.created and len(client.calls) == 5
    second = await adapter.upsert_lead(qualified_lead(score=40, options=OPTIONS, remote_ids=first.as_dict()))
    assert (second.contact, second.deal, second.note) == (first.contact, first.deal, first.note)
    assert len(client.calls) == 8
    lost = await adapter.upsert_lead(qualified_lead(score=41, options=OPTIONS))  # ids lost: found again
    assert (lost.contact, lost.deal, lost.note) == (first.contact, first.deal, first.note)
    assert (len(pipedrive_fake.persons), len(pipedrive_fake.deals), len(pipedrive_fake.notes)) == (1, 1, 1)
    assert "41/100" in pipedrive_fake.notes[int(str(first.note))]["content"]
    phone_only = await adapter.upsert_lead(qualified_lead(email=None, options=OPTIONS))
    assert phone_only.contact == first.contact
    await client.aclose()


async def test_outage_mid_sync_then_retry_writes_once(pipedrive_fake):
    client = fake_client(pipedrive_fake)
    adapter = PipedriveAdapter(client)
    pipedrive_fake.fail_paths["/api/v1/notes"] = [503]
    with pytest.raises(ProviderError):
        await adapter.upsert_lead(qualified_lead(options=OPTIONS))
    await adapter.upsert_lead(qualified_lead(options=OPTIONS))
    assert (len(pipedrive_fake.persons), len(pipedrive_fake.deals), len(pipedrive_fake.notes)) == (1, 1, 1)
    await client.aclose()


async def test_burst_and_token_budget_answer_429():
    fake = await PipedriveFake(burst=3, window_s=60.0).start()
    client = fake_client(fake)
    try:
        with pytest.raises(ProviderError) as caught:
            await PipedriveAdapter(client).upsert_lead(qualified_lead(options=OPTIONS))
        assert (
            caught.value.status == 429
            and caught.value.retry_after_s
            and "Request over limit" in caught.value.body
        )
    finally:
        await client.aclose()
        await fake.stop()
    fake = await PipedriveFake(daily_tokens=100).start()  # 2 searches (40 each), person and deal (10 each)
    client = fake_client(fake)
    try:
        with pytest.raises(ProviderError) as caught:
            await PipedriveAdapter(client).upsert_lead(qualified_lead(options=OPTIONS))
        assert caught.value.status == 429 and fake.spent == 100  # ... so the note's 10 is over budget
        assert client.calls[-1].path == "/api/v1/notes"
    finally:
        await client.aclose()
        await fake.stop()
