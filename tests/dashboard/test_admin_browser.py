"""Journeys of the admin pages in a real browser (Chromium through Playwright, the whole service on
127.0.0.1, worker running). Screenshots go to tests/artifacts/.

- a CSV of 1,000 leads (with bad rows) imports with progress and a report of the bad rows;
- the analytics page's funnel (table and chart) matches the conversations the test ran;
- integrations: connect an API-key provider (on a loopback fake), test it, edit a CRM's field
  mappings, see and replay its dead letter, disconnect; the OAuth Connect button asks for a link;
- settings: change branding and notifications, see the widget's embed snippet and live preview;
- axe-core finds nothing on these pages; they speak French.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from app.composition import Runtime
from app.crm.records import Link, link_id
from app.store import collections as col
from tests.dashboard import test_browser as journeys
from tests.dashboard.conftest import MARKETER, OWNER
from tests.dashboard.test_browser import Tenant, axe_violations, shot, sign_in, start_lead
from tests.support.recording import RecordingServer, Reply

N_ROWS = 1000
# The browser, the live service and a fresh tenant per test: the same fixtures as the other journeys.
browser = journeys.browser
server = journeys.server
tenant = journeys.tenant
page = journeys.page


def csv_of_1000(tmp_path: Path) -> tuple[Path, dict[int, str]]:
    """1,000 rows; the bad ones (by file line, header = 1) and the code each must be refused with."""
    bad: dict[int, str] = {}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["name", "email", "phone", "consent"])
    for i in range(N_ROWS):
        line = i + 2
        row = [f"Lead {i}", f"lead{i}@example.com", f"+336{i:08d}", "yes"]
        if i % 97 == 5:
            row[2], bad[line] = "12345", "bad_phone"
        elif i % 89 == 7:
            row[1], bad[line] = "nobody@", "bad_email"
        elif i % 101 == 9:
            row[3], bad[line] = "", "bad_consent"
        elif i % 113 == 11:
            row[1], bad[line] = f"lead{i - 1}@example.com", "duplicate_in_file"
        writer.writerow(row)
    path = tmp_path / "leads.csv"
    path.write_text(buffer.getvalue())
    return path, bad


def test_a_csv_of_1000_leads_imports_with_progress_and_a_report(
    page: Page, tenant: Tenant, tmp_path: Path
) -> None:
    path, bad = csv_of_1000(tmp_path)
    sign_in(page, tenant, *MARKETER)
    page.get_by_role("link", name="CSV import").click()
    expect(page.get_by_role("heading", name="Import leads")).to_be_visible()
    # Every value the progress text takes, as the page shows it.
    page.evaluate(
        """() => { window.__seen = []; new MutationObserver(() => window.__seen.push(
             document.getElementById('import-progress').value)).observe(
             document.getElementById('import-state'), {childList: true, characterData: true, subtree: true}); }"""
    )
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#import-state")).to_contain_text("Import finished", timeout=60_000)
    seen = page.evaluate("window.__seen")
    assert seen[0] < 100 and seen[-1] == 100 and seen == sorted(seen), seen
    expect(page.locator("#import-state")).to_contain_text(f"{N_ROWS} / {N_ROWS} rows handled (100%)")
    expect(page.locator('#import-counts dd[data-count="Imported"]')).to_have_text(str(N_ROWS - len(bad)))
    expect(page.locator('#import-counts dd[data-count="Refused"]')).to_have_text(str(len(bad)))
    rows = page.locator("#report-table tbody tr")
    expect(rows).to_have_count(len(bad))
    lines = [int(x) for x in rows.locator("td:first-child").all_inner_texts()]
    assert lines == sorted(bad)
    first_bad_phone = min(k for k, v in bad.items() if v == "bad_phone")
    expect(rows.nth(lines.index(first_bad_phone))).to_contain_text("invalid phone number")
    expect(page.locator("#report-table")).to_contain_text("duplicate in the file")
    expect(page.locator("#report-table")).to_contain_text("consent missing or unclear")
    expect(page.locator("#imports-table tbody tr").first).to_contain_text("leads.csv")
    shot(page, "import")
    total = httpx.get(f"{tenant.server.base}/api/v1/leads", headers=tenant.auth, timeout=5).json()["total"]
    assert total == N_ROWS - len(bad)


def test_the_funnel_chart_matches_the_conversations_run(page: Page, tenant: Tenant) -> None:
    start_lead(tenant, "Ana Hot", "5000")
    start_lead(tenant, "Ben Small", "100")
    start_lead(tenant, "Chloé Quiet")
    sign_in(page, tenant, *OWNER)
    page.get_by_role("link", name="Analytics").click()
    card = page.locator('section[data-playbook="handoff-demo"]')
    expect(card).to_contain_text("Conversations started3")
    expect(card.locator('tr[data-step="hello"] td.reached')).to_have_text("3")
    expect(card.locator('tr[data-step="budget"] td.reached')).to_have_text("3")
    expect(card).to_contain_text("Qualification rate33.3%")
    chart = card.locator("figure.chart img")
    expect(chart).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('figure.chart img'); return i && i.complete && i.naturalWidth > 0; }"
    )
    svg = httpx.get(f"{tenant.server.base}{chart.get_attribute('src')}", headers=tenant.auth, timeout=5).text
    # The chart draws the same numbers: 3 reached at each step, no drop-off.
    values = re.findall(r'<text[^>]*class="value[^"]*"[^>]*>([^<]*)</text>', svg)
    assert values.count("3") >= 2, values
    shot(page, "analytics-chart")


@pytest.fixture
def fake_vendor() -> Iterator[RecordingServer]:
    vendor = RecordingServer()
    try:
        yield vendor
    finally:
        vendor.close()


def test_integrations_connect_test_map_replay_disconnect(
    page: Page, tenant: Tenant, fake_vendor: RecordingServer
) -> None:
    base = tenant.server.base
    # A CRM connection on a loopback fake (Pipedrive with an API key), made through the API.
    made = httpx.post(
        f"{base}/api/v1/integrations",
        json={
            "provider": "pipedrive",
            "auth_mode": "api_key",
            "label": "Sales CRM",
            "credentials": {"api_token": "pd-secret-token", "company_domain": "acme"},
            "settings": {"base_url": fake_vendor.base_url},
        },
        headers=tenant.auth,
        timeout=5,
    )
    assert made.status_code == 201, made.text
    crm_id = made.json()["id"]
    runtime: Runtime = tenant.server.runtime
    dead_lead = start_lead(tenant, "Dora Dead")["lead"]["id"]
    dead = Link(
        id=link_id(crm_id, dead_lead),
        connection_id=crm_id,
        lead_id=dead_lead,
        provider="pipedrive",
        status="dead",
        attempts=8,
        last_error="HTTP 500 from the CRM",
        queued_at=time.time(),
    )
    tenant.server.call(runtime.store.set(tenant.id, col.CRM_LINKS, dead.id, dead.to_doc()))
    sign_in(page, tenant, *OWNER)
    page.get_by_role("link", name="Integrations").click()
    expect(page.get_by_role("heading", name="Available integrations")).to_be_visible()
    providers = httpx.get(f"{base}/api/v1/integrations", headers=tenant.auth, timeout=5).json()["providers"]
    expect(page.locator("#catalog-table tbody tr")).to_have_count(len(providers))

    # Connect Cal.com with its API key, on the fake (its identity comes back on Test).
    fake_vendor.replies.append(Reply(body={"data": {"id": 7, "name": "Ana Cal", "email": "ana@cal.test"}}))
    page.get_by_label("Connect with a key: Cal.com").click()
    page.get_by_label("API key", exact=True).fill("cal_live_secret")
    page.get_by_label("API base URL (optional)").first.fill(fake_vendor.base_url)
    page.get_by_role("button", name="Connect Cal.com").click()
    expect(page.locator("#integrations-status")).to_contain_text("Connected: Cal.com")
    connections = page.locator("#connections-table tbody tr")
    expect(connections).to_have_count(2)
    fake_vendor.replies.append(Reply(body={"data": {"id": 7, "name": "Ana Cal", "email": "ana@cal.test"}}))
    page.get_by_role("button", name="Test Cal.com").click()
    expect(page.locator("#integrations-status")).to_contain_text("Connection works: Cal.com")
    expect(page.locator("#integrations-status")).to_contain_text("Ana Cal")
    expect(connections.filter(has_text="Cal.com")).to_contain_text("Ana Cal")  # the identity, once tested
    me = [r for r in fake_vendor.requests if r.path.startswith("/v2/me")]
    assert me and me[-1].headers.get("authorization") == "Bearer cal_live_secret"
    assert "cal_live_secret" not in page.content() and "pd-secret-token" not in page.content()

    # The CRM's panel: mappings, dead letter, replay.
    panel = page.locator(f'section[data-crm="{crm_id}"]')
    expect(panel.locator("table.dead tbody")).to_contain_text(dead_lead)
    expect(panel.locator("table.dead tbody")).to_contain_text("HTTP 500 from the CRM")
    panel.get_by_role("button", name="Add a row").click()
    panel.get_by_label("Our field 1").fill("slots.budget")
    panel.get_by_label("CRM property 1").fill("budget_c")
    panel.get_by_label("Transform 1").fill("text")
    panel.get_by_role("button", name="Save").click()
    expect(panel.get_by_text("Saved")).to_be_visible()
    settings = httpx.get(f"{base}/api/v1/crm/{crm_id}/settings", headers=tenant.auth, timeout=5).json()
    assert settings["mapping"] == [{"source": "slots.budget", "target": "budget_c", "transform": "text"}]
    panel.get_by_role("button", name="Replay the dead letter").click()
    expect(panel).to_contain_text("1 queued again")
    replayed = tenant.server.call(runtime.store.get(tenant.id, col.CRM_LINKS, dead.id))
    assert replayed is not None and replayed["attempts"] == 8  # back in the queue (then the sync runs)
    expect(panel.locator("table.dead tbody")).not_to_contain_text("HTTP 500 from the CRM")
    shot(page, "integrations")

    # OAuth: Connect asks the service for a signed link and goes there (answered here, never sent out).
    hubspot = page.get_by_role("button", name="Connect HubSpot")
    expect(hubspot).to_be_disabled()
    page.get_by_label("Set the OAuth app: HubSpot").click()
    page.locator('form[data-oauth-app="hubspot"] input[name="client_id"]').fill("hs-client")
    page.locator('form[data-oauth-app="hubspot"] input[name="client_secret"]').fill("hs-secret")
    page.locator('form[data-oauth-app="hubspot"]').get_by_role("button", name="Save").click()
    expect(page.locator("#integrations-status")).to_contain_text("Saved: HubSpot")
    expect(hubspot).to_be_enabled()
    assert "hs-secret" not in page.content()
    went: list[str] = []

    def answer(route: Route) -> None:
        went.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<title>consent</title><h1>consent</h1>")

    page.route(re.compile(r".*/auth/hubspot/init\?.*"), answer)
    page.get_by_role("button", name="Connect HubSpot").click()
    expect(page.get_by_role("heading", name="consent")).to_be_visible()
    assert "tenant=" + tenant.id in went[0] and "sig=" in went[0]
    page.unroute(re.compile(r".*/auth/hubspot/init\?.*"))

    # Disconnect Cal.com.
    page.goto(f"{base}/app/integrations")
    expect(connections).to_have_count(2)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Disconnect Cal.com").click()
    expect(connections).to_have_count(1)
    listed = httpx.get(f"{base}/api/v1/integrations/configured", headers=tenant.auth, timeout=5).json()
    assert [c["provider"] for c in listed["integrations"]] == ["pipedrive"]


def test_settings_branding_snippet_and_preview(page: Page, tenant: Tenant) -> None:
    sign_in(page, tenant, *OWNER)
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_label("Workspace name")).to_have_value(f"Tenant {tenant.id}")
    snippet = page.get_by_role("textbox", name="Embed snippet").input_value()
    assert f'data-tenant="{tenant.id}"' in snippet and "/widget.js" in snippet
    # A bad value is refused with the field marked, nothing saved.
    page.get_by_label("Time zone").fill("Mars/Olympus")
    page.get_by_role("button", name="Save").click()
    # The field is named as the page names it (its label), not as the API does.
    expect(page.locator("#settings-errors")).to_contain_text("Time zone: unknown time zone")
    expect(page.get_by_label("Time zone")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Time zone").fill("Europe/Paris")
    page.get_by_label("Greeting (French)").fill("Bonjour, comment pouvons-nous aider ?")
    page.get_by_label("Greeting (English)").fill("Hello there, how can we help?")
    page.get_by_label("Handoff notification addresses (comma separated)").fill(
        "sales@example.com, boss@example.com"
    )
    page.get_by_label("Quiet hours start").fill("21:30")
    page.get_by_label("Monthly budget (USD)").fill("25")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#settings-status")).to_have_text("Saved")
    expect(page.locator("#budget")).to_contain_text("of a budget of $25.00")
    saved = httpx.get(f"{tenant.server.base}/api/v1/settings", headers=tenant.auth, timeout=5).json()
    assert saved["timezone"] == "Europe/Paris"
    assert saved["handoff_emails"] == ["sales@example.com", "boss@example.com"]
    assert saved["greeting"]["fr"] == "Bonjour, comment pouvons-nous aider ?"
    assert saved["quiet_hours_start"] == "21:30"
    assert saved["llm_monthly_budget_usd"] == 25
    # The live preview follows the form as it is typed (before any save).
    preview = page.locator("#preview")
    expect(preview.locator(".wp-greeting")).to_have_text("Hello there, how can we help?")
    page.get_by_label("Brand colour", exact=True).fill("#aa2200")
    page.get_by_label("Greeting (English)").fill("Salut from the preview")
    expect(preview.locator(".wp-greeting")).to_have_text("Salut from the preview")
    head = preview.locator(".wp-head")
    expect(head).to_have_css("background-color", "rgb(170, 34, 0)")
    expect(preview.locator(".wp-name")).to_have_text(f"Tenant {tenant.id}")
    expect(page.locator("#budget")).to_contain_text("This month")
    shot(page, "settings")


def test_admin_pages_pass_axe_and_speak_french(browser: Browser, tenant: Tenant) -> None:
    start_lead(tenant, "Ana Hot", "5000")
    context = browser.new_context(locale="en-US", bypass_csp=True, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        sign_in(page, tenant, *OWNER)
        for path, ready in (
            ("/app/import", "#imports-table tbody tr"),
            ("/app/integrations", "#catalog-table tbody tr"),
            ("/app/settings", "#budget:not(:empty)"),
            ("/app/analytics", "figure.chart img"),
        ):
            page.goto(tenant.server.base + path)
            expect(page.locator(ready).first).to_be_visible()
            assert axe_violations(page) == [], path
    finally:
        context.close()
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        page.goto(f"{tenant.server.base}/app/import")
        page.get_by_label("Espace de travail").fill(tenant.id)
        page.get_by_label("E-mail").fill(OWNER[0])
        page.get_by_label("Mot de passe").fill(OWNER[1])
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Importer des prospects")).to_be_visible()
        expect(page.get_by_label("Fichier CSV")).to_be_visible()
        shot(page, "import-fr")
        page.get_by_role("link", name="Paramètres").click()
        expect(page.get_by_role("heading", name="Paramètres")).to_be_visible()
        expect(page.get_by_role("heading", name="Code d'intégration")).to_be_visible()
        shot(page, "settings-fr")
        page.get_by_role("link", name="Intégrations").click()
        expect(page.get_by_role("heading", name="Intégrations disponibles")).to_be_visible()
        expect(page.locator("#catalog-table tbody tr").first).to_be_visible()
        shot(page, "integrations-fr")
    finally:
        context.close()
