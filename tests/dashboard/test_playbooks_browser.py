"""The playbook journey in a real browser (Debian's Chromium driven by Playwright, against the whole
service on 127.0.0.1): a marketer breaks a playbook in the editor and sees the line, fixes it (with
the schema's completion), simulates a whole conversation in French with a wait fired by advancing
the clock, publishes it and routes it; a lead who then writes the rule's keyword starts it.
Screenshots go to tests/artifacts/ (playbooks*.png, editor-*.png, simulator.png). The pages pass
axe-core and the editor lets the keyboard out (Escape, then Tab)."""

# The browser fixtures are imported from test_browser.py, so test arguments "redefine" them:
# ruff: noqa: F811

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.dashboard.conftest import MARKETER
from tests.dashboard.test_browser import (  # noqa: F401 - the browser tests' fixtures
    Tenant,
    _chromium_is_installed,
    axe_violations,
    browser,
    page,
    say,
    server,
    shot,
    sign_in,
    tenant,
)

DRAFT = """\
id: visite-fr
name: Visite – qualification
version: 1
language: fr
triggers: [inbound_unknown_lead, lead_created]
qualification_threshold: 40
steps:
  - id: bonjour
    type: message
    text: {fr: "Bonjour ! Deux questions rapides.", en: "Hello! Two quick questions."}
  - id: logement
    type: ask
    slot: logement
    kind: choice
    question: {fr: "Une maison ou un appartement ?", en: "A house or a flat?"}
    choices:
      - {id: maison, title: {fr: Maison, en: House}}
      - {id: appartement, title: {fr: Appartement, en: Flat}}
  - id: budget
    type: ask
    slot: budget
    kind: number
    question: {fr: "Quel est votre budget, en euros ?", en: "What is your budget, in euros?"}
  - id: score-budget
    type: score
    if: (slots.budget or 0) >= 1000
    points: 50
    reason: Budget confortable
  - id: attente
    type: wait
    duration: 1d
  - id: relance
    type: message
    text: {fr: "Petit rappel : un conseiller vous écrit bientôt.", en: "A reminder: an adviser writes soon."}
  - id: fin
    type: end
    outcome: qualified
    message: {fr: "Merci, à bientôt !", en: "Thanks, see you soon!"}
"""
BROKEN_LINE = DRAFT.splitlines().index("    kind: number") + 1


def _inbox(tenant: Tenant) -> list[dict[str, Any]]:
    response = httpx.get(f"{tenant.server.base}/api/v1/inbox", headers=tenant.auth, timeout=5)
    response.raise_for_status()
    rows: list[dict[str, Any]] = response.json()["conversations"]
    return rows


def test_a_marketer_breaks_fixes_simulates_publishes_and_routes_a_playbook(
    page: Page, tenant: Tenant
) -> None:
    base = tenant.server.base
    sign_in(page, tenant, *MARKETER)
    page.get_by_role("navigation").get_by_role("link", name="Playbooks").click()
    existing = page.locator('tr[data-playbook="handoff-demo"]')
    expect(existing).to_contain_text("v1")
    expect(existing).to_contain_text("active")

    # A new playbook: the starter is valid; the marketer pastes a French draft.
    page.get_by_role("link", name="New playbook").click()
    status = page.locator("#pb-status")
    expect(status).to_contain_text("Valid · my-playbook v1")
    editor = page.get_by_role("textbox", name="Playbook YAML")
    editor.fill(DRAFT)
    expect(status).to_contain_text("Valid · visite-fr v1")

    # Break it: live validation shows the loader's line, in the gutter and at the line itself.
    editor.fill(DRAFT.replace("    kind: number", "    kind: nombre"))
    expect(status).to_contain_text("1 problem(s)")
    expect(page.locator("#gutter .n.err")).to_have_count(1)
    expect(page.locator("#gutter .n.err")).to_have_attribute("data-line", str(BROKEN_LINE))
    inline = page.locator(f'#backdrop .l.err[data-line="{BROKEN_LINE}"] .m')
    expect(inline).to_contain_text("kind")
    expect(inline).to_be_visible()
    problem = page.locator("#pb-issues li button")
    expect(problem).to_have_text(re.compile(rf"^Line {BROKEN_LINE}: .*kind"))
    shot(page, "editor-error")

    # Fix it at the line: the problem takes the caret there; the schema completes the kind.
    problem.click()
    page.keyboard.type("    kind: num")
    page.keyboard.press("Control+Space")
    option = page.get_by_role("option", name="number")
    expect(option).to_be_visible()
    page.keyboard.press("Enter")
    expect(status).to_contain_text("Valid · visite-fr v1")
    expect(page.locator("#gutter .n.err")).to_have_count(0)
    assert editor.input_value() == DRAFT

    # Simulate a whole conversation in French; the wait fires when the clock is advanced.
    page.get_by_label("Conversation language").select_option("fr")
    page.get_by_role("button", name="Start").click()
    feed = page.locator("#sim-feed")
    expect(feed).to_contain_text("Une maison ou un appartement ?")
    feed.get_by_role("button", name="Maison").click()  # the lead taps a reply button
    expect(feed).to_contain_text("Quel est votre budget, en euros ?")
    expect(page.locator("#sim-slots")).to_contain_text("logementmaison")
    page.get_by_label("Lead's message").fill("environ 2 500 €")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("#sim-slots")).to_contain_text("budget2500")
    expect(page.locator("#sim-score")).to_have_text("55 / 100 ★")
    expect(page.locator("#sim-reasons li")).to_have_text(
        ["+5 Engagement: replied within 5 minutes", "+50 Budget confortable"]
    )
    expect(page.locator("#sim-state")).to_contain_text("waiting")
    expect(page.locator("#sim-timer")).not_to_have_text("none")
    expect(feed).not_to_contain_text("Petit rappel")
    page.get_by_role("button", name="+1 h").click()
    expect(feed.locator("li.ev-clock")).to_have_count(1)
    expect(feed).not_to_contain_text("Petit rappel")
    page.get_by_role("button", name="+1 day").click()
    expect(feed).to_contain_text("Timer fired")
    expect(feed).to_contain_text("Petit rappel : un conseiller vous écrit bientôt.")
    expect(feed).to_contain_text("Merci, à bientôt !")
    expect(page.locator("#sim-state")).to_contain_text("ended")
    expect(page.locator("#sim-timer")).to_have_text("none")
    shot(page, "simulator")
    # The sandbox touched nothing: the tenant still has no conversation.
    assert _inbox(tenant) == []

    # Publish (the first version of a playbook is active at once).
    page.get_by_role("button", name="Publish").click()
    expect(page.locator("#publish-status")).to_contain_text("Published: visite-fr v1 (active)")

    # Route it: a rule sends web-chat leads who mention a visit to it.
    page.get_by_role("navigation").get_by_role("link", name="Playbooks").click()
    row = page.locator('tr[data-playbook="visite-fr"]')
    expect(row).to_contain_text("active")
    page.get_by_role("button", name="Add a rule").click()
    page.get_by_label("Rule name").fill("Visites")
    page.get_by_label("Playbook", exact=True).select_option("visite-fr")
    page.get_by_label("Channels (comma-separated)").fill("webchat")
    page.get_by_label("Keywords (comma-separated)").fill("visite, rendez-vous")
    page.get_by_role("button", name="Save the routing").click()
    expect(page.locator("#routes-status")).to_have_text("Routing saved")
    expect(row).to_contain_text("Visites")
    shot(page, "playbooks")

    # A lead writes the keyword on web chat: the conversation starts the routed playbook.
    say(tenant, "wc-visitor-1", "Bonjour, je voudrais une visite")
    deadline = time.monotonic() + 15
    while not (rows := _inbox(tenant)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r["playbook_id"] for r in rows] == ["visite-fr"], rows
    page.goto(f"{base}/app/inbox")
    expect(page.locator("#inbox-table tbody")).to_contain_text("visite-fr")


def test_playbook_pages_pass_axe_and_let_the_keyboard_out(browser: Browser, tenant: Tenant) -> None:
    context = browser.new_context(locale="fr-FR", bypass_csp=True, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        base = tenant.server.base
        page.goto(f"{base}/app")
        page.get_by_label("Espace de travail").fill(tenant.id)
        page.get_by_label("E-mail").fill(MARKETER[0])
        page.get_by_label("Mot de passe").fill(MARKETER[1])
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Boîte de réception")).to_be_visible()

        page.goto(f"{base}/app/playbooks")
        expect(page.locator('tr[data-playbook="handoff-demo"]')).to_contain_text("actif")
        page.get_by_role("button", name="Ajouter une règle").click()
        assert axe_violations(page) == []

        page.goto(f"{base}/app/playbooks/editor?id=handoff-demo&version=1")
        status = page.locator("#pb-status")
        expect(status).to_contain_text("Valide · handoff-demo v1")
        editor = page.get_by_role("textbox", name="YAML du scénario")
        editor.fill(editor.input_value().replace("kind: number", "kind: nombre"))
        expect(status).to_contain_text("1 problème(s)")
        # The problem is said in the page's language, in the list and in the simulator.
        expect(page.locator("#pb-issues li")).to_contain_text("doit valoir 'text'")
        expect(page.locator("#pb-issues li")).to_contain_text("(reçu 'nombre')")
        page.get_by_role("button", name="Démarrer").click()
        # French typography: a no-break space before the colon.
        expect(page.locator("#sim-feed li.ev-error")).to_contain_text("Une erreur est survenue\u00a0: Ligne")
        expect(page.locator("#sim-feed li.ev-error")).to_contain_text("doit valoir 'text'")
        shot(page, "editor-fr")
        violations = axe_violations(page)
        assert violations == [], violations

        # Tab indents inside the editor; Escape then Tab moves on to the next control.
        editor.focus()
        page.keyboard.press("Control+End")
        page.keyboard.press("Tab")
        expect(editor).to_be_focused()
        assert editor.input_value().endswith("  ")
        page.keyboard.press("Escape")
        page.keyboard.press("Tab")
        expect(editor).not_to_be_focused()

        # Completion follows the schema: a step's keys, the step types, then the wait step's keys.
        editor.focus()
        page.keyboard.press("Control+End")
        page.keyboard.type("\n  - id: extra\n    ty")
        page.keyboard.press("Control+Space")
        expect(page.get_by_role("option", name="type")).to_be_visible()
        page.keyboard.press("Enter")
        page.keyboard.type("wa")
        page.keyboard.press("Control+Space")
        expect(page.get_by_role("listbox").get_by_role("option")).to_have_text(["wait"])
        page.keyboard.press("Enter")
        page.keyboard.type("\n    ")
        # the chosen step type is in the text, the caret on the new line (a failure says which)
        expect(editor).to_have_value(re.compile(r"type: wait\n    $"))
        page.keyboard.press("Control+Space")
        options = page.get_by_role("listbox").get_by_role("option")
        expect(options.filter(has_text="duration")).to_have_count(1)
        expect(options.filter(has_text="until_reply")).to_have_count(1)
        expect(options.filter(has_text="question")).to_have_count(0)
        page.keyboard.press("Escape")
        assert editor.input_value().endswith("  - id: extra\n    type: wait\n    ")
    finally:
        context.close()


def test_a_new_version_is_published_as_a_draft_then_activated_from_the_list(
    page: Page, tenant: Tenant
) -> None:
    sign_in(page, tenant, *MARKETER)
    page.goto(f"{tenant.server.base}/app/playbooks")
    page.locator('tr[data-playbook="handoff-demo"]').get_by_role("link", name="Edit handoff-demo").click()
    status = page.locator("#pb-status")
    expect(status).to_contain_text("Valid · handoff-demo v1")
    # Publishing the same version again is refused: versions never change.
    page.get_by_role("button", name="Publish").click()
    expect(page.locator("#publish-status")).to_contain_text("This version already exists")
    page.get_by_role("button", name="Next version number").click()
    expect(status).to_contain_text("Valid · handoff-demo v2")
    page.get_by_label("and make it active").uncheck()
    page.get_by_role("button", name="Publish").click()
    expect(page.locator("#publish-status")).to_contain_text("Published: handoff-demo v2 (draft)")

    page.get_by_role("navigation").get_by_role("link", name="Playbooks").click()
    versions = page.locator('tr[data-playbook="handoff-demo"] ul.versions li')
    expect(versions).to_have_count(2)
    expect(versions.nth(0)).to_contain_text("active")
    expect(versions.nth(1)).to_contain_text("draft")
    page.get_by_role("button", name="Activate handoff-demo v2").click()
    expect(page.locator("#pb-list-status")).to_have_text("Activated: handoff-demo v2")
    expect(versions.nth(0)).to_contain_text("retired")
    expect(versions.nth(1)).to_contain_text("active")
    stored = httpx.get(f"{tenant.server.base}/api/v1/playbooks", headers=tenant.auth, timeout=5).json()
    assert {(p["version"], p["status"]) for p in stored["playbooks"] if p["id"] == "handoff-demo"} == {
        (1, "retired"),
        (2, "active"),
    }


def test_a_simulated_message_in_quiet_hours_shows_as_held(page: Page, tenant: Tenant) -> None:
    """The simulator applies the tenant's quiet hours: with quiet hours around the current time, the
    playbook's first message (the lead did not write) is shown held until they end, in the
    tenant's time zone."""
    runtime = tenant.server.runtime

    async def quiet_now() -> str:
        profile = await runtime.tenants.profile(tenant.id)
        profile = profile.model_copy(update={"timezone": "Asia/Tokyo"})  # 9 hours from the browser's UTC
        local = datetime.fromtimestamp(runtime.clock.now(), ZoneInfo(profile.timezone))
        start, end = (
            (local - timedelta(hours=1)).strftime("%H:%M"),
            (local + timedelta(hours=2)).strftime("%H:%M"),
        )
        await runtime.tenants.save_profile(
            profile.model_copy(update={"quiet_hours_start": start, "quiet_hours_end": end})
        )
        return end

    end = tenant.server.call(quiet_now())
    hours, minutes = (int(x) for x in end.split(":"))
    shown_end = f"{hours % 12 or 12}:{minutes:02d} {'AM' if hours < 12 else 'PM'}"  # en's 12-hour clock
    sign_in(page, tenant, *MARKETER)
    page.get_by_role("navigation").get_by_role("link", name="Playbooks").click()
    page.get_by_role("link", name="New playbook").click()
    page.get_by_role("textbox", name="Playbook YAML").fill(DRAFT)
    expect(page.locator("#pb-status")).to_contain_text("Valid · visite-fr v1")
    page.get_by_label("Conversation language").select_option("fr")
    page.get_by_role("button", name="Start").click()
    held = page.locator("#sim-feed li.ev-bot.held")
    expect(held.first).to_contain_text("Bonjour ! Deux questions rapides.")
    expect(held.first.locator(".held")).to_contain_text("Held by the sending rules until")
    expect(held.first.locator(".held")).to_contain_text("(quiet hours)")
    # in the tenant's zone (the lead's clock), whatever the browser's own
    expect(held.first.locator(".held")).to_contain_text(shown_end)
    expect(page.locator("#sim-now")).to_contain_text("(Asia/Tokyo)")
    shot(page, "simulator-held")
