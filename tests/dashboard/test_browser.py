"""Journeys in a real browser: Debian's Chromium driven by Playwright, against the whole service
started on 127.0.0.1 by the test (worker running). Screenshots of each page go to tests/artifacts/.

- sign in (a wrong password first);
- a handoff arrives in the inbox while the page is open and shows up without a reload; its
  conversation shows the transcript, the answer and the score's reason;
- the leads list filters;
- the analytics funnel matches the conversations the test ran.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from app.composition import Runtime
from channels.base import InboundMessage
from tests.app.conftest import make_settings
from tests.dashboard.conftest import AGENT, MARKETER, OWNER, setup_tenant
from tests.dashboard.live import LiveServer
from tests.support.recording import RecordingServer

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
#: axe-core from npm (tools/package.json, installed by ``scripts/setup.sh --dev``).
AXE = Path(__file__).resolve().parents[2] / "tools" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(autouse=True, scope="module")
def _chromium_is_installed() -> None:
    """A missing browser fails the tests (scripts/test.sh installs it), it does not skip them."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does)", pytrace=False)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The service on a fresh store (one per module: each test works in its own tenant)."""
    graph = RecordingServer()
    runtime = Runtime.build(make_settings(tmp_path_factory.mktemp("live") / "data", graph.base_url))
    live = LiveServer(runtime).start()
    try:
        yield live
    finally:
        live.stop()
        graph.close()


@dataclass
class Tenant:
    """A fresh tenant of the live service: its id and admin-key headers."""

    server: LiveServer
    id: str
    auth: dict[str, str]


@pytest.fixture
def tenant(server: LiveServer) -> Tenant:
    """A new tenant with the handoff playbook and three people (nothing shared between tests)."""
    tenant_id = f"t{uuid.uuid4().hex[:10]}"
    key = server.call(setup_tenant(server.runtime, tenant_id))
    return Tenant(server, tenant_id, {"Authorization": f"Bearer {key}"})


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, tenant: Tenant, email: str, password: str) -> None:
    page.goto(f"{tenant.server.base}/app")
    page.get_by_label("Workspace").fill(tenant.id)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


def conversation(tenant: Tenant, conversation_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{tenant.server.base}/api/v1/conversations/{conversation_id}", headers=tenant.auth, timeout=5
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def wait_for(
    tenant: Tenant, conversation_id: str, *, step: str | None = None, status: str | None = None
) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        conv = conversation(tenant, conversation_id)
        if (step is None or conv["current_step"] == step) and (status is None or conv["status"] == status):
            return
        time.sleep(0.05)
    raise AssertionError(f"{conversation_id} never reached step={step} status={status}: {conv['status']}")


def start_lead(tenant: Tenant, name: str, answer: str | None = None) -> dict[str, Any]:
    """A web-chat lead on the handoff playbook; ``answer`` is their budget (1000 or more hands off)."""
    response = httpx.post(
        f"{tenant.server.base}/api/v1/leads",
        json={"name": name, "channel": "webchat", "playbook_id": "handoff-demo", "source": "browser-test"},
        headers=tenant.auth,
        timeout=5,
    )
    assert response.status_code == 201, response.text
    started: dict[str, Any] = response.json()
    wait_for(tenant, started["conversation_id"], step="budget")
    if answer is not None:
        say(tenant, started["lead"]["webchat_id"], answer)
        wait_for(tenant, started["conversation_id"], status="handoff" if float(answer) >= 1000 else "closed")
    return started


def say(tenant: Tenant, webchat_id: str, text: str) -> None:
    message = InboundMessage(
        channel="webchat",
        provider_message_id=f"wc-{uuid.uuid4().hex}",
        sender=webchat_id,
        recipient="",
        text=text,
        timestamp=time.time(),
    )
    tenant.server.call(tenant.server.runtime.accept(tenant.id, message))


def test_sign_in(page: Page, tenant: Tenant) -> None:
    server = tenant.server
    page.goto(f"{server.base}/app/leads")
    expect(page).to_have_url(f"{server.base}/app/signin?next=/app/leads")
    shot(page, "signin")
    page.get_by_label("Workspace").fill(tenant.id)
    page.get_by_label("Email").fill(OWNER[0])
    page.get_by_label("Password").fill("wrong-password-0")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong workspace, email or password.")
    page.get_by_label("Password").fill(OWNER[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Leads")).to_be_visible()
    expect(page.get_by_text(f"{OWNER[0]} · owner")).to_be_visible()
    page.get_by_role("link", name="People").click()
    expect(page.locator("#people-table tbody tr")).to_have_count(3)
    page.get_by_label("Email", exact=True).fill("newbie@demo.test")
    page.get_by_role("button", name="Invite a colleague").click()
    expect(page.locator("#invite-result input.link")).to_be_visible()
    link = page.locator("#invite-result input.link").input_value()
    assert link.startswith(f"{server.runtime.settings.public_base_url}/app/invite/")
    shot(page, "people")
    # The colleague opens the link (here on the test's port), chooses a password, and is in.
    page.get_by_role("button", name="Sign out").click()
    page.goto(server.base + link[len(server.runtime.settings.public_base_url) :])
    expect(page.get_by_text("newbie@demo.test · agent")).to_be_visible()
    page.get_by_label("Name").fill("Newbie")
    page.get_by_label("Choose a password (at least 10 characters)").fill("newbie-password-1")
    shot(page, "invite")
    page.get_by_role("button", name="Join the team").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(page.get_by_text("newbie@demo.test · agent")).to_be_visible()


def test_a_handoff_shows_up_in_the_open_inbox(page: Page, tenant: Tenant) -> None:
    start_lead(tenant, "Ben Small", "100")
    sign_in(page, tenant, *AGENT)
    rows = page.locator("#inbox-table tbody tr")
    expect(rows).to_have_count(1)
    expect(page.locator("#inbox-summary")).to_contain_text("Handoffs waiting: 0")
    page.evaluate("window.__noReload = true")

    hot = start_lead(tenant, "Ana Hot", "5000")

    expect(rows).to_have_count(2)
    first = rows.first
    expect(first).to_contain_text("Ana Hot")
    expect(first).to_contain_text("handoff")
    expect(page.locator("#inbox-summary")).to_contain_text("Handoffs waiting: 1")
    assert page.evaluate("window.__noReload === true"), "the page reloaded"
    shot(page, "inbox")

    first.get_by_role("link", name="Ana Hot").click()
    expect(page).to_have_url(f"{tenant.server.base}/app/conversations/{hot['conversation_id']}")
    transcript = page.locator("#transcript")
    expect(transcript).to_contain_text("What is your budget?")
    expect(transcript).to_contain_text("5000")
    expect(page.locator("#slots")).to_contain_text("budget")
    expect(page.locator("#reasons")).to_contain_text("Big budget")
    shot(page, "conversation")


def test_the_leads_list_filters(page: Page, tenant: Tenant) -> None:
    start_lead(tenant, "Ana Hot", "5000")
    start_lead(tenant, "Ben Small", "100")
    start_lead(tenant, "Chloé Quiet")
    sign_in(page, tenant, *MARKETER)
    page.get_by_role("link", name="Leads").click()
    rows = page.locator("#leads-table tbody tr")
    expect(rows).to_have_count(3)
    page.get_by_label("Search (name, email, phone)").fill("chlo")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Chloé Quiet")
    page.get_by_label("Search (name, email, phone)").fill("")
    page.get_by_label("Minimum score").fill("50")
    page.keyboard.press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Ana Hot")
    href = page.get_by_role("link", name="Export CSV").get_attribute("href")
    assert href == "/api/v1/leads.csv?min_score=50"
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    text = Path(download.value.path()).read_text()
    assert "Ana Hot" in text and "Ben Small" not in text
    shot(page, "leads")


def test_the_analytics_funnel_matches_the_conversations_run(page: Page, tenant: Tenant) -> None:
    start_lead(tenant, "Ana Hot", "5000")
    start_lead(tenant, "Ben Small", "100")
    start_lead(tenant, "Chloé Quiet")
    start_lead(tenant, "Dan Hot", "2000")
    sign_in(page, tenant, *OWNER)
    page.get_by_role("link", name="Analytics").click()
    card = page.locator('section[data-playbook="handoff-demo"]')
    expect(card).to_contain_text("Conversations started4")
    expect(card.locator('tr[data-step="hello"] td.reached')).to_have_text("4")
    expect(card.locator('tr[data-step="budget"] td.reached')).to_have_text("4")
    expect(card).to_contain_text("Qualification rate50%")
    expect(card).to_contain_text("Handoffs2")
    shot(page, "analytics")


def test_pages_speak_french(browser: Browser, tenant: Tenant) -> None:
    context = browser.new_context(locale="fr-FR")
    try:
        page = context.new_page()
        page.goto(f"{tenant.server.base}/app")
        page.get_by_label("Espace de travail").fill(tenant.id)
        page.get_by_label("E-mail").fill(AGENT[0])
        page.get_by_label("Mot de passe").fill(AGENT[1])
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Boîte de réception")).to_be_visible()
        expect(page.locator("html")).to_have_attribute("lang", "fr")
        shot(page, "inbox-fr")
    finally:
        context.close()


def axe_violations(page: Page) -> list[str]:
    """WCAG 2.1 A/AA violations axe-core finds on the page: ``"rule: target"`` strings."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => (await axe.run(document, {runOnly: {type: 'tag', values:"
        " ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations"
        ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"
    )
    return list(result)


def test_pages_pass_axe_and_work_from_the_keyboard(browser: Browser, tenant: Tenant) -> None:
    # The pages' CSP forbids injected scripts: this context lets axe-core in (and nothing else runs).
    context = browser.new_context(locale="en-US", bypass_csp=True, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    try:
        _axe_and_keyboard(context.new_page(), tenant)
    finally:
        context.close()


def _axe_and_keyboard(page: Page, tenant: Tenant) -> None:
    hot = start_lead(tenant, "Ana Hot", "5000")
    base = tenant.server.base
    page.goto(f"{base}/app/signin")
    assert axe_violations(page) == []
    # Keyboard only: skip link first, then the form in order, Enter submits.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.get_by_label("Workspace").focus()
    page.keyboard.press("Control+A")
    page.keyboard.type(tenant.id)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(OWNER[0])
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(OWNER[1])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(page.locator("#inbox-table tbody tr")).to_have_count(1)
    for path, ready in (
        ("/app/inbox", "#inbox-table tbody tr a"),
        (f"/app/conversations/{hot['conversation_id']}", "#reasons li"),
        ("/app/leads", "#leads-table tbody tr"),
        ("/app/analytics", "section.playbook"),
        ("/app/people", "#people-table tbody tr"),
    ):
        page.goto(base + path)
        expect(page.locator(ready).first).to_be_visible()
        assert axe_violations(page) == [], path
    # From the inbox, the keyboard reaches the conversation link and opens it.
    page.goto(f"{base}/app/inbox")
    link = page.get_by_role("link", name="Ana Hot")
    expect(link).to_be_visible()
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.textContent") == "Ana Hot":
            break
    expect(link).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/app/conversations/{hot['conversation_id']}")
