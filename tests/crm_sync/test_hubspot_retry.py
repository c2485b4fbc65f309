"""HubSpot batches retried after a 429 in the middle: every step of a retried batch finds what the
failed attempt already wrote (contacts by email, deals and notes through the contact's
associations), so no record is created twice."""

from __future__ import annotations

import pytest

from crm_sync.base import ProviderError, RemoteIds
from crm_sync.crm import HubSpotAdapter
from tests.crm_sync.fakes import HubSpotFake
from tests.crm_sync.leads import qualified_lead
from tests.crm_sync.support import Route, TestApiClient

OPTIONS = {"pipeline_id": "default", "stage_id": "qualifiedtobuy", "deal_amount": 5000}
STEPS = [
    "/crm/v3/objects/deals/batch/create",
    "/crm/v4/associations/contacts/deals/batch/read",
    "/crm/v3/objects/notes/batch/create",
    "/crm/v4/associations/contacts/notes/batch/read",
]


def _leads(n: int, first: int = 0) -> list:
    return [
        qualified_lead(lead_id=f"lead-{i:04d}", email=f"lead{i}@example.fr", phone=None, options=OPTIONS)
        for i in range(first, first + n)
    ]


@pytest.mark.parametrize("path", STEPS)
async def test_a_429_mid_batch_then_the_whole_batch_again_creates_nothing_twice(hubspot: HubSpotFake, path):
    client = TestApiClient("hubspot", routes=[Route("/", hubspot.base_url)], account={"portal_id": "62515"})
    leads = _leads(30)
    hubspot.fail_paths[path] = [429]
    with pytest.raises(ProviderError) as failed:
        await HubSpotAdapter(client).upsert_leads(leads)
    assert failed.value.status == 429
    # the retried batch holds the failed leads and new ones (another order, as the queue reads them)
    batch = [*reversed(leads), *_leads(10, first=100)]
    results = await HubSpotAdapter(client).upsert_leads(batch)
    assert all(isinstance(r, RemoteIds) for r in results)
    ids = [r for r in results if isinstance(r, RemoteIds)]
    assert len(hubspot.objects["contacts"]) == 40
    assert len(hubspot.objects["deals"]) == 40
    assert len(hubspot.objects["notes"]) == 40
    assert len({r.deal for r in ids}) == len({r.note for r in ids}) == 40
    for r in ids:  # each deal and note on its own contact
        assert hubspot.associated("deals", str(r.deal), "contacts") == [r.contact]
        assert hubspot.associated("notes", str(r.note), "contacts") == [r.contact]
    await client.aclose()
