"""GET/PUT /api/v1/settings: partial updates, validation (400 with the field and the reason, nothing
saved), the audit trail (a record and a log line), and the settings taking effect."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.store import SYSTEM_TENANT
from app.tenancy.audit import AuditLog, key_ref
from tests.app.conftest import ADMIN_KEY

Client = AsyncTestClient[Litestar]
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def test_get_then_put_changes_only_what_is_given(client: Client, runtime: Runtime) -> None:
    r = await client.get("/api/v1/settings", headers=AUTH)
    assert r.status_code == 200
    before = r.json()
    assert before["tenant_id"] == "demo" and before["languages"] == ["en", "fr"]
    body = {
        "quiet_hours_start": "20:30",
        "quiet_hours_end": "08:15",
        "languages": ["fr", "en", "es"],
        "default_language": "fr",
        "timezone": "America/Montreal",
        "default_region": "ca",
        "burst_window_seconds": {"whatsapp": 2.5, "webchat": 0},
        "handoff_emails": ["Ventes@SunnyWatt.example"],
        "handoff_webhook_url": "https://hooks.sunnywatt.example/leadwarm",
        "handoff_response_minutes": 45,
        "brand_color": "#0a7f5a",
        "logo_url": "https://cdn.sunnywatt.example/logo.png",
        "greeting": {"fr": "Bonjour ! Une question sur le solaire ?", "en": "Hi! A question about solar?"},
        "optout_all_channels": False,
        "daily_cap_per_lead": 5,
        "whatsapp_templates": {
            "default": {"name": "lead_intro", "language": "fr", "parameters": ["{{ lead.first_name }}"]}
        },
        "webchat_allowed_origins": ["https://www.SunnyWatt.example/"],
    }
    r = await client.put("/api/v1/settings", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["default_region"] == "CA"
    assert after["handoff_emails"] == ["Ventes@sunnywatt.example"]
    assert after["webchat_allowed_origins"] == ["https://www.sunnywatt.example"]
    assert after["name"] == before["name"]  # untouched
    assert (await client.get("/api/v1/settings", headers=AUTH)).json() == after
    profile = await runtime.tenants.profile("demo")
    assert profile.quiet_hours_start == "20:30" and profile.daily_cap_per_lead == 5
    assert profile.whatsapp_templates["default"]["name"] == "lead_intro"

    audit = (await client.get("/api/v1/audit", headers=AUTH, params={"action": "settings.updated"})).json()
    assert len(audit) == 1
    record = audit[0]
    assert record["actor"] == key_ref(ADMIN_KEY) and ADMIN_KEY not in str(record)
    assert record["detail"]["daily_cap_per_lead"] == {"from": 20, "to": 5}
    assert "name" not in record["detail"]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"quiet_hours_start": "25:00"}, "quiet_hours_start", "should match pattern"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"languages": ["english"]}, "languages", "ISO 639-1"),
        ({"default_language": "de"}, "default_language", "must be one of languages"),
        ({"handoff_emails": ["not-an-address"]}, "handoff_emails", "not-an-address"),
        ({"handoff_webhook_url": "ftp://x.example"}, "handoff_webhook_url", "http(s) URL"),
        ({"burst_window_seconds": {"pigeon": 1}}, "burst_window_seconds", "unknown channel"),
        ({"burst_window_seconds": {"sms": 900}}, "burst_window_seconds.sms", "less than or equal to 120"),
        ({"brand_color": "green"}, "brand_color", "should match pattern"),
        ({"daily_cap_per_lead": 0}, "daily_cap_per_lead", "greater than or equal to 1"),
        (
            {"whatsapp_templates": {"default": {"name": "Lead Intro"}}},
            "whatsapp_templates.default.name",
            "lower-case",
        ),
        ({"office_hours_start": "18:00", "office_hours_end": "09:00"}, "body", "before office_hours_end"),
        ({"webchat_allowed_origins": ["https://a.example/path"]}, "webchat_allowed_origins", "not an origin"),
        ({"surprise": 1}, "surprise", "unknown setting"),
        ({"default_playbook": "nope"}, "default_playbook", "no such playbook"),
        ({"llm_monthly_budget_usd": -1}, "llm_monthly_budget_usd", "greater than or equal to 0"),
    ],
)
async def test_invalid_settings_are_refused_with_the_field_and_reason(
    client: Client, runtime: Runtime, body: dict[str, Any], field: str, reason: str
) -> None:
    before = (await client.get("/api/v1/settings", headers=AUTH)).json()
    r = await client.put("/api/v1/settings", json=body, headers=AUTH)
    assert r.status_code == 400, r.text
    errors = r.json()["errors"]
    assert any(e["field"] == field and reason in e["reason"] for e in errors), errors
    assert (await client.get("/api/v1/settings", headers=AUTH)).json() == before
    assert (await client.get("/api/v1/audit", headers=AUTH)).json() == []


@pytest.mark.parametrize(
    ("body", "field", "code", "params"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown_time_zone", {"value": "Mars/Olympus"}),
        ({"quiet_hours_start": "25:00"}, "quiet_hours_start", "not_time", {}),
        ({"brand_color": "green"}, "brand_color", "not_color", {}),
        ({"languages": ["english"]}, "languages", "not_language_code", {"value": "english"}),
        ({"default_language": "de"}, "default_language", "language_not_listed", {}),
        ({"default_region": "ZZ"}, "default_region", "not_region_code", {"value": "ZZ"}),
        ({"handoff_emails": ["not-an-address"]}, "handoff_emails", "not_email", {"value": "not-an-address"}),
        ({"handoff_webhook_url": "ftp://x.example"}, "handoff_webhook_url", "not_http_url", {}),
        ({"fallback_channels": ["pigeon"]}, "fallback_channels", "unknown_channel", {"value": "pigeon"}),
        ({"daily_cap_per_lead": 0}, "daily_cap_per_lead", "greater_than_equal", {"ge": 1}),
        ({"burst_window_seconds": {"sms": 900}}, "burst_window_seconds.sms", "less_than_equal", {"le": 120}),
        ({"office_hours_start": "18:00", "office_hours_end": "09:00"}, "body", "office_hours_order", {}),
        ({"surprise": 1}, "surprise", "unknown_setting", {}),
        ({"default_playbook": "nope"}, "default_playbook", "no_such_playbook", {"value": "nope"}),
    ],
)
async def test_refusals_carry_a_stable_code_beside_the_english_reason(
    client: Client, body: dict[str, Any], field: str, code: str, params: dict[str, Any]
) -> None:
    """The dashboard says a refusal in its reader's language from ``code`` and ``params``."""
    r = await client.put("/api/v1/settings", json=body, headers=AUTH)
    assert r.status_code == 400, r.text
    (error,) = [e for e in r.json()["errors"] if e["field"] == field]
    assert error["code"] == code and params.items() <= error["params"].items(), error
    assert error["reason"] and error["reason"].isascii()  # the English text stays for API users


async def test_settings_need_the_admin_key(client: Client, runtime: Runtime) -> None:
    assert (await client.get("/api/v1/settings")).status_code == 401
    r = await client.put(
        "/api/v1/settings", json={"daily_cap_per_lead": 3}, headers={"Authorization": "Bearer nope"}
    )
    assert r.status_code == 401
    rejected = await AuditLog(runtime.store, runtime.clock).recent(SYSTEM_TENANT, action="api_key.rejected")
    assert [(r.actor, r.target) for r in rejected] == [(key_ref("nope"), "/api/v1/settings")]
    assert "nope" not in str(rejected[0].to_doc()).replace(key_ref("nope"), "")


async def test_every_admin_write_is_audited_once(client: Client) -> None:
    r = await client.post("/api/v1/leads", json={"name": "Ana", "channel": "webchat"}, headers=AUTH)
    assert r.status_code == 201
    await client.post("/api/v1/leads", json={"channel": "pigeon"}, headers=AUTH)  # 400: not audited
    await client.put("/api/v1/settings", json={"daily_cap_per_lead": 7}, headers=AUTH)
    trail = (await client.get("/api/v1/audit", headers=AUTH)).json()
    assert [(r["action"], r["target"]) for r in trail] == [
        ("settings.updated", "settings"),
        ("api.post", "/api/v1/leads"),
    ]
    assert trail[1]["actor"] == key_ref(ADMIN_KEY) and trail[1]["detail"] == {"status": 201}


async def test_the_monthly_model_budget_is_a_setting(client: Client, runtime: Runtime) -> None:
    """A tenant's own budget replaces LLM_MONTHLY_BUDGET_USD (the usage API and the model's budget
    check read it from the profile); null restores the default."""
    assert (await client.get("/api/v1/settings", headers=AUTH)).json()["llm_monthly_budget_usd"] is None
    default = runtime.settings.llm_monthly_budget_usd
    assert (await client.get("/api/v1/usage", headers=AUTH)).json()["budget_usd"] == default
    for value in (0, 12.5):
        r = await client.put("/api/v1/settings", json={"llm_monthly_budget_usd": value}, headers=AUTH)
        assert r.status_code == 200, r.text
        assert r.json()["llm_monthly_budget_usd"] == value
        assert (await client.get("/api/v1/usage", headers=AUTH)).json()["budget_usd"] == value
        assert (await runtime.tenants.profile("demo")).llm_monthly_budget_usd == value
    r = await client.put("/api/v1/settings", json={"llm_monthly_budget_usd": None}, headers=AUTH)
    assert r.json()["llm_monthly_budget_usd"] is None
    assert (await client.get("/api/v1/usage", headers=AUTH)).json()["budget_usd"] == default
