"""Counting what each fake CRM holds, and the options each integration needs."""

from __future__ import annotations

from typing import Any

from tests.crm_sync.fakes import FakeServer, GoHighLevelFake, HubSpotFake, PipedriveFake, SalesforceFake

OPTIONS: dict[str, dict[str, Any]] = {
    "gohighlevel": {
        "pipeline_id": "VDm7RPYC2GLUvdpKmBfC",
        "stage_id": "7915dedc-8f18-44d5-8bc3-77c04e994a10",
    },
    "hubspot": {"pipeline_id": "default", "stage_id": "qualifiedtobuy", "deal_amount": 5000},
    "pipedrive": {"pipeline_id": 1, "stage_id": 2, "deal_value": 5000, "currency": "EUR"},
    "salesforce": {"object": "contact", "stage_name": "Qualification"},
}

FAKES: dict[str, type[FakeServer]] = {
    "gohighlevel": GoHighLevelFake,
    "hubspot": HubSpotFake,
    "pipedrive": PipedriveFake,
    "salesforce": SalesforceFake,
}


def counts(provider: str, fake: Any) -> tuple[int, int, int]:
    """``(contacts, deals, notes)`` in the fake."""
    if provider == "hubspot":
        return tuple(len(fake.objects[k]) for k in ("contacts", "deals", "notes"))  # type: ignore[return-value]
    if provider == "gohighlevel":
        return len(fake.contacts), len(fake.opportunities), len(fake.notes)
    if provider == "pipedrive":
        return len(fake.persons), len(fake.deals), len(fake.notes)
    records = fake.records
    return len(records["Contact"]) + len(records["Lead"]), len(records["Opportunity"]), len(records["Note"])


def contact_phone_and_email(provider: str, fake: Any, contact_id: str) -> tuple[Any, Any]:
    """The contact's phone and email as the fake stores them."""
    if provider == "hubspot":
        props = fake.objects["contacts"][contact_id]["properties"]
        return props.get("phone"), props.get("email")
    if provider == "gohighlevel":
        contact = fake.contacts[contact_id]
        return contact.get("phone"), contact.get("email")
    if provider == "pipedrive":
        person = fake.persons[int(contact_id)]
        return person.get("phones"), person.get("emails")
    record = fake.records["Contact"].get(contact_id) or fake.records["Lead"][contact_id]
    return record.get("Phone"), record.get("Email")
