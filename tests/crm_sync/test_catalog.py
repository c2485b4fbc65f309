"""The provider catalog: the shipped file validates, names only existing code, and carries the
quirks the integrations depend on."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_sync.catalog import CatalogError, check_catalog, load_catalog
from crm_sync.hooks import HOOKS
from crm_sync.oauth import apps_from_env

EXPECTED = {
    "gohighlevel",
    "hubspot",
    "pipedrive",
    "salesforce",
    "google_calendar",
    "calendly",
    "cal_com",
    "whatsapp",
    "twilio",
    "smtp_imap",
    "webhook",
}

#: A small registry standing for the app's adapter registries.
REGISTRY = {
    "crm": {"gohighlevel", "hubspot", "pipedrive", "salesforce"},
    "calendar": {"gohighlevel", "google_calendar", "calendly", "cal_com"},
    "channel": {"whatsapp", "sms", "email"},
}


def test_shipped_catalog_has_every_provider_and_only_known_code() -> None:
    catalog = load_catalog()
    assert set(catalog.providers) == EXPECTED
    assert check_catalog(catalog, adapters=REGISTRY) == []
    for name, entry in catalog.providers.items():
        assert entry.name == name
        for limit in entry.rate_limits:
            assert limit.doc.startswith("https://")
        if entry.oauth2:
            assert entry.oauth2.token_url.startswith("https://") and entry.env_prefix


def test_check_catalog_reports_missing_adapters_and_hooks() -> None:
    catalog = load_catalog()
    partial = {**REGISTRY, "crm": {"hubspot"}}
    problems = check_catalog(catalog, adapters=partial, hooks={"webhook_ping"})
    assert "gohighlevel: crm adapter 'gohighlevel' has no code" in problems
    assert "salesforce: crm adapter 'salesforce' has no code" in problems
    assert "smtp_imap: hook 'smtp_imap_login' has no code" in problems
    assert not any(p.startswith("hubspot") for p in problems)
    assert set(HOOKS) >= {"smtp_imap_login", "webhook_ping"}


def test_quirks() -> None:
    catalog = load_catalog()
    ghl = catalog.get("gohighlevel")
    assert ghl.api is not None and ghl.api.headers["Version"] == "2021-07-28"
    assert ghl.token_response.account_fields["locationId"] == "location_id"
    assert ghl.token_response.account_fields["userType"] == "user_type"
    assert ghl.oauth2 is not None and ghl.oauth2.refresh_token_rotates
    sf = catalog.get("salesforce")
    assert sf.token_response.base_url_field == "instance_url" and sf.token_response.default_expires_in_s
    assert sf.oauth2 is not None and sf.oauth2.pkce
    pd = catalog.get("pipedrive")
    assert pd.token_response.base_url_field == "api_domain"
    assert pd.oauth2 is not None and pd.oauth2.client_auth == "client_secret_basic"
    assert pd.auth_modes == ("oauth2", "api_key")
    assert catalog.get("hubspot").oauth2.revoke_style == "delete_path"  # type: ignore[union-attr]
    assert catalog.get("twilio").auth_modes == ("basic",)


def test_invalid_entries_are_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "catalog.yaml"
    bad.write_text(
        "providers:\n  x:\n    display_name: X\n    categories: [crm]\n    auth_modes: [oauth2]\n"
        "    docs: https://x.test\n    test_hook: webhook_ping\n"
    )
    with pytest.raises(CatalogError, match="oauth2 section"):
        load_catalog(bad)
    bad.write_text("providers: [")
    with pytest.raises(CatalogError):
        load_catalog(bad)
    with pytest.raises(CatalogError):
        load_catalog().get("nope")
    with pytest.raises(CatalogError):
        load_catalog().override("hubspot", oauth2={"token_url": "http://example.com/token"})


def test_override_points_a_provider_elsewhere() -> None:
    catalog = load_catalog().override("hubspot", api={"base_url": "http://127.0.0.1:9"})
    assert catalog.get("hubspot").api.base_url == "http://127.0.0.1:9"  # type: ignore[union-attr]
    assert load_catalog().get("hubspot").api.base_url == "https://api.hubapi.com"  # type: ignore[union-attr]


def test_default_tenant_apps_from_env() -> None:
    env = {
        "GHL_CLIENT_ID": "id1",
        "GHL_CLIENT_SECRET": "sec1",
        "HUBSPOT_CLIENT_ID": "id2",
        "GOOGLE_CLIENT_ID": "g",
        "GOOGLE_CLIENT_SECRET": "gs",
    }
    apps = apps_from_env(load_catalog(), env)
    assert set(apps) == {"gohighlevel", "google_calendar"}
    assert apps["gohighlevel"].client_secret.reveal() == "sec1" and "sec1" not in repr(apps)
