"""Token-response quirks, normalised by the catalog's data."""

from __future__ import annotations

import pytest

from crm_sync.catalog import load_catalog
from crm_sync.oauth import TokenExchangeError, parse_token_response

NOW = 1_900_000_000.0


def test_salesforce_instance_url_and_missing_expires_in() -> None:
    sf = load_catalog().get("salesforce")
    body = {
        "access_token": "00Dxx!AQ",
        "refresh_token": "5Aep",
        "instance_url": "https://acme.my.salesforce.com",
        "id": "https://login.salesforce.com/id/00D/005",
        "scope": "api refresh_token",
        "token_type": "Bearer",
    }
    tokens = parse_token_response(sf, body, now=NOW)
    assert tokens.base_url == "https://acme.my.salesforce.com"
    assert tokens.expires_at == NOW + 7200
    assert tokens.account == {"identity_url": "https://login.salesforce.com/id/00D/005"}
    assert tokens.scopes == ("api", "refresh_token")
    assert "00Dxx" not in repr(tokens)


def test_pipedrive_api_domain_and_ghl_ids() -> None:
    catalog = load_catalog()
    pd = parse_token_response(
        catalog.get("pipedrive"),
        {
            "access_token": "a",
            "refresh_token": "r",
            "expires_in": 3599,
            "api_domain": "https://shop.pipedrive.com",
        },
        now=NOW,
    )
    assert pd.base_url == "https://shop.pipedrive.com" and pd.expires_at == NOW + 3599 and pd.scopes is None
    ghl = parse_token_response(
        catalog.get("gohighlevel"),
        {
            "access_token": "a",
            "expires_in": 86399,
            "locationId": "L1",
            "userType": "Location",
            "companyId": "C",
        },
        now=NOW,
    )
    assert ghl.account == {"location_id": "L1", "user_type": "Location", "company_id": "C"}
    assert ghl.refresh_token is None and ghl.base_url is None
    with pytest.raises(TokenExchangeError):
        parse_token_response(catalog.get("hubspot"), {"token_type": "bearer"}, now=NOW)
