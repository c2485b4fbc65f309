"""Field mappings: transforms, per-CRM defaults, and the check against each CRM's property list
(HubSpot and Salesforce fakes, Pipedrive and GoHighLevel through Prism)."""

from __future__ import annotations

import pytest

from crm_sync.mapping import (
    FieldMapping,
    MappingError,
    RemoteProperty,
    apply_mapping,
    check_mapping,
    default_mapping,
    fetch_properties,
    split_targets,
)
from tests.crm_sync.leads import qualified_lead
from tests.crm_sync.support import Route, TestApiClient
from tests.crm_sync.test_gohighlevel import LOCATION
from tests.crm_sync.test_gohighlevel import client_for as ghl_client
from tests.crm_sync.test_pipedrive import client_for as pipedrive_client


def test_transforms():
    lead = qualified_lead(
        phone=None,
        slots={
            "mobile": "06 12 34 56 78",
            "bad_phone": "12",
            "budget": "5000.0",
            "start": "2026-01-15T09:30:00+01:00",
            "owner": "oui",
            "plan": "pro",
            "interests": ["crm", "sms"],
        },
    )
    rows = [
        FieldMapping("slots.mobile", "mobilephone", "e164", default_region="FR"),
        FieldMapping("slots.bad_phone", "phone", "e164", default_region="FR"),
        FieldMapping("slots.budget", "deal.amount", "number"),
        FieldMapping("slots.start", "start_date", "date"),
        FieldMapping("slots.start", "start_at", "datetime"),
        FieldMapping("slots.owner", "is_owner", "bool"),
        FieldMapping("slots.plan", "hs_lead_status", "picklist", values={"pro": "IN_PROGRESS"}),
        FieldMapping("slots.interests", "interests", "join"),
        FieldMapping("score_reasons", "why", "reasons"),
        FieldMapping("source.referral.ad_id", "ad", "text"),
        FieldMapping("slots.missing", "nothing"),
    ]
    mapped = apply_mapping(lead, rows, provider="hubspot")
    assert mapped.values == {
        "mobilephone": "+33612345678",
        "deal.amount": 5000,
        "start_date": "2026-01-15",
        "start_at": "2026-01-15T08:30:00Z",
        "is_owner": "true",
        "hs_lead_status": "IN_PROGRESS",
        "interests": "crm;sms",
        "why": "+30 Budget confirmed\n+25 Decision maker",
        "ad": "120210",
    }
    assert [(p.target, p.code) for p in mapped.problems] == [("phone", "bad_value")]
    assert "12" not in mapped.problems[0].detail  # the value never appears in the message
    salesforce = apply_mapping(lead, rows, provider="salesforce").values
    assert salesforce["is_owner"] is True and salesforce["start_at"] == "2026-01-15T08:30:00.000+0000"
    assert apply_mapping(lead, rows, provider="pipedrive").values["start_at"] == "2026-01-15 08:30:00"
    assert split_targets(mapped.values)[1] == {"amount": 5000}
    with pytest.raises(MappingError, match=r"slots\.bad_phone -> phone"):
        apply_mapping(lead, rows, provider="hubspot", strict=True)
    with pytest.raises(MappingError):
        apply_mapping(
            lead,
            [FieldMapping("slots.plan", "x", "picklist", values={"basic": "B"})],
            provider="hubspot",
            strict=True,
        )


def test_bad_rows_are_refused():
    with pytest.raises(MappingError, match="unknown transform"):
        FieldMapping("email", "email", "uppercase")
    with pytest.raises(MappingError, match="empty"):
        FieldMapping("email", " ")
    with pytest.raises(MappingError, match="unknown mapping source"):
        apply_mapping(qualified_lead(), [FieldMapping("password", "x")], provider="hubspot")
    with pytest.raises(MappingError):
        default_mapping("zoho")


def test_check_mapping_reports_problems():
    props = [
        RemoteProperty("email"),
        RemoteProperty("createdate", writable=False),
        RemoteProperty("hs_lead_status", options=("NEW", "OPEN")),
    ]
    rows = [
        FieldMapping("email", "email"),
        FieldMapping("stage", "createdate"),
        FieldMapping(
            "slots.plan", "hs_lead_status", "picklist", values={"pro": "IN_PROGRESS", "basic": "NEW"}
        ),
        FieldMapping("score", "leadwarm_score_typo"),
        FieldMapping("summary", "deal.description"),
    ]
    problems = check_mapping(rows, contact_properties=props, deal_properties=[RemoteProperty("description")])
    assert [(p.target, p.code) for p in problems] == [
        ("createdate", "read_only"),
        ("hs_lead_status", "unknown_option"),
        ("leadwarm_score_typo", "unknown_property"),
    ]


async def test_hubspot_defaults_fit_a_new_portal(hubspot):
    client = TestApiClient("hubspot", routes=[Route("/", hubspot.base_url)])
    contacts = await fetch_properties(client)
    deals = await fetch_properties(client, object_type="deal")
    assert check_mapping(default_mapping("hubspot"), contact_properties=contacts, deal_properties=deals) == []
    assert ("hs_lead_status", ("IN_PROGRESS", "NEW", "OPEN")) in [
        (p.name, tuple(sorted(p.options))) for p in contacts
    ]
    assert any(p.name == "createdate" and not p.writable for p in contacts)
    await client.aclose()


async def test_salesforce_defaults_fit_describe(salesforce):
    client = TestApiClient(
        "salesforce", routes=[Route("/", salesforce.base_url)], account={"api_version": "v61.0"}
    )
    leads = await fetch_properties(client, object_type="lead")
    assert check_mapping(default_mapping("salesforce"), contact_properties=leads) == []
    bad = [FieldMapping("score", "Rating", "picklist", values={"82": "Scorching"})]
    assert [p.code for p in check_mapping(bad, contact_properties=leads)] == ["unknown_option"]
    assert salesforce.requests == [("GET", "/services/data/v61.0/sobjects/Lead/describe")]
    await client.aclose()


async def test_pipedrive_person_fields_through_prism(pipedrive_prism):
    client = pipedrive_client(pipedrive_prism)
    fields = await fetch_properties(client)
    assert fields and all(f.name for f in fields)
    assert client.calls[0].path == "/api/v2/personFields" and client.calls[0].status == 200
    await client.aclose()


async def test_gohighlevel_custom_fields_through_prism(ghl_prism):
    client = ghl_client(ghl_prism)
    fields = await fetch_properties(client)
    names = {f.name for f in fields}
    assert {"firstName", "email", "phone"} <= names
    assert any(name.startswith("custom.") for name in names)
    assert client.calls[0].path == f"/locations/{LOCATION}/customFields" and client.calls[0].status == 200
    assert check_mapping(default_mapping("gohighlevel"), contact_properties=fields) == []
    await client.aclose()


def test_defaults_sync_a_lead_with_no_configuration():
    for provider in ("hubspot", "salesforce", "gohighlevel", "pipedrive", "webhook"):
        mapped = apply_mapping(qualified_lead(), default_mapping(provider), provider=provider)
        assert mapped.problems == []
    assert (
        apply_mapping(qualified_lead(), default_mapping("salesforce"), provider="salesforce").values[
            "LastName"
        ]
        == "Martin"
    )
