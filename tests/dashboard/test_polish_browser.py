"""What a person sees, in a real Chromium (Debian's, through Playwright; the whole service on 127.0.0.1):

- the settings page's hours read on the 24-hour clock ("09:00", never "09:00 AM"), in French even
  when the browser itself speaks English, take what people type ("18h30", "6:30 pm") and refuse a
  time that is none with a message in the page's language;
- the widget's launcher, the chat page and the dashboard's widget preview draw no empty box (a
  character no installed font has: this machine has no emoji font);
- every dashboard page fits a phone (390 px: no sideways scroll) and names the API's codes (a lead's
  stage, a message's delivery state, an import's status, an integration's category), its file
  picker included, in French; axe-core finds nothing on them at that width.

Screenshots go to tests/artifacts/ (``polish-*.png``).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.dashboard import test_browser as journeys
from tests.dashboard.conftest import OWNER
from tests.dashboard.test_browser import Tenant, axe_violations, shot, sign_in, start_lead

browser = journeys.browser
server = journeys.server
tenant = journeys.tenant
page = journeys.page

HOURS = ("quiet_hours_start", "quiet_hours_end", "office_hours_start", "office_hours_end")

#: The characters of ``text`` that Chromium draws as the box of a private-use code point, which no
#: font here has: the characters a person sees as an empty box.
BOXES = """([text, font]) => {
  const canvas = document.createElement("canvas"); canvas.width = 48; canvas.height = 48;
  const g = canvas.getContext("2d");
  const draw = (ch) => { g.clearRect(0, 0, 48, 48); g.font = font; g.fillStyle = "#000";
    g.textBaseline = "top"; g.fillText(ch, 2, 2); return g.getImageData(0, 0, 48, 48).data.join(","); };
  const box = draw("\\uE000");
  return [...new Set([...text])].filter((ch) => ch.trim() && draw(ch) === box);
}"""


def boxes(page: Page, selector: str) -> list[str]:
    """The characters of the element's visible text that would show as empty boxes."""
    node = page.locator(selector).first
    text = node.inner_text()
    font = node.evaluate("(n) => getComputedStyle(n).font")
    found: list[str] = page.evaluate(BOXES, [text, font])
    return found


def shown_text(page: Page, selector: str) -> str:
    """The text Chromium draws inside a form field, read from its accessibility tree: for a text
    input its value; for ``type=time`` the browser locale's rendering ("09:00 PM"), not the value."""
    cdp = page.context.new_cdp_session(page)
    try:
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        backend = cdp.send("DOM.describeNode", {"nodeId": node})["node"]["backendNodeId"]
        nodes: list[dict[str, Any]] = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    by_id = {n["nodeId"]: n for n in nodes}
    start = next(n for n in nodes if n.get("backendDOMNodeId") == backend)
    texts: list[str] = []
    stack = [start]
    while stack:
        current = stack.pop()
        if current["role"]["value"] == "StaticText":
            texts.append(current.get("name", {}).get("value", ""))
        stack.extend(by_id[c] for c in reversed(current.get("childIds", [])) if c in by_id)
    return "".join(texts)


def settings_of(tenant: Tenant) -> dict[str, Any]:
    response = httpx.get(f"{tenant.server.base}/api/v1/settings", headers=tenant.auth, timeout=5)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def to_french(page: Page) -> None:
    """The reader chooses French on the page (the browser itself stays in English)."""
    page.get_by_label("Language").select_option("fr")
    page.get_by_role("button", name="Change language").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")


def test_french_hours_read_on_the_24_hour_clock(page: Page, tenant: Tenant) -> None:
    sign_in(page, tenant, *OWNER)  # an en-US browser
    to_french(page)
    page.get_by_role("link", name="Paramètres").click()
    saved = settings_of(tenant)
    office_end = page.get_by_label("Fin des heures de bureau")
    expect(office_end).to_have_value(saved["office_hours_end"])
    for name in HOURS:
        shown = shown_text(page, f'[name="{name}"]')
        assert shown == saved[name] and re.fullmatch(r"\d\d:\d\d", shown), (name, shown, saved[name])
    expect(office_end).to_have_accessible_description(re.compile("sur 24 heures, HH:MM"))
    # From the keyboard: French ways of writing a time become HH:MM when the field is left.
    office_end.focus()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("18h30")
    page.keyboard.press("Tab")
    expect(office_end).to_have_value("18:30")
    assert shown_text(page, '[name="office_hours_end"]') == "18:30"
    quiet_start = page.get_by_label("Début des heures calmes")
    quiet_start.fill("25:00")
    quiet_start.press("Tab")
    expect(quiet_start).to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.locator("#settings-errors")).to_have_text(
        "Début des heures calmes\u00a0: saisissez une heure sur 24 heures, HH:MM (ex. 18:30)"
    )
    assert settings_of(tenant)["office_hours_end"] == saved["office_hours_end"]  # nothing saved
    quiet_start.fill("7h")
    quiet_start.press("Tab")
    expect(quiet_start).to_have_value("07:00")
    expect(quiet_start).not_to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.locator("#settings-status")).to_have_text("Enregistré")
    after = settings_of(tenant)
    assert (after["quiet_hours_start"], after["office_hours_end"]) == ("07:00", "18:30")
    shot(page, "polish-settings-hours-fr")


def test_english_hours_take_am_pm_and_show_24_hours(page: Page, tenant: Tenant) -> None:
    sign_in(page, tenant, *OWNER)
    page.get_by_role("link", name="Settings").click()
    start = page.get_by_label("Office hours start")
    expect(start).to_have_value(settings_of(tenant)["office_hours_start"])
    assert shown_text(page, '[name="office_hours_start"]') == settings_of(tenant)["office_hours_start"]
    start.fill("8:15 am")
    start.press("Tab")
    expect(start).to_have_value("08:15")
    end = page.get_by_label("Office hours end")
    end.fill("6:30 pm")
    end.press("Tab")
    expect(end).to_have_value("18:30")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#settings-status")).to_have_text("Saved")
    after = settings_of(tenant)
    assert (after["office_hours_start"], after["office_hours_end"]) == ("08:15", "18:30")


def test_the_widget_its_chat_and_the_preview_draw_no_empty_box(page: Page, tenant: Tenant) -> None:
    base = tenant.server.base
    sign_in(page, tenant, *OWNER)
    page.get_by_role("link", name="Settings").click()
    greeting = page.locator("#preview .wp-greeting")
    # No greeting of the tenant's own: the preview shows the bot's welcome, as the chat does.
    expect(greeting).to_contain_text(f"Welcome to Tenant {tenant.id}. How can we help you today?")
    assert boxes(page, "#preview .wp-greeting") == []
    shot(page, "polish-preview")
    # The chat page itself, in French.
    page.goto(f"{base}/chat?tenant={tenant.id}&lang=fr")
    expect(page.locator(".greeting")).to_contain_text(f"Bienvenue chez Tenant {tenant.id}.")
    assert boxes(page, ".greeting") == []
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    # The launcher on a page that embeds the widget: a drawn icon, closed and open.
    page.goto(f"{base}/app/signin")
    page.evaluate(
        """([src, id]) => { const s = document.createElement("script"); s.src = src;
             s.dataset.tenant = id; document.body.append(s); }""",
        [f"{base}/widget.js", tenant.id],
    )
    launcher = page.locator("#leadwarm-launcher")
    expect(launcher.locator("svg")).to_have_count(1)
    assert boxes(page, "#leadwarm-launcher") == []
    launcher.click()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(launcher.locator("svg")).to_have_count(1)
    assert boxes(page, "#leadwarm-launcher") == []


def test_the_french_chat_says_it_is_connecting_in_french(browser: Browser, tenant: Tenant) -> None:
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        # A socket that never opens: the page stays in its "connecting" state.
        page.add_init_script("window.WebSocket = class { send() {} close() {} };")
        page.goto(f"{tenant.server.base}/chat?tenant={tenant.id}&lang=fr")
        expect(page.locator("#status")).to_have_text("connexion…")
    finally:
        context.close()


def _french_phone(browser: Browser) -> BrowserContext:
    # bypass_csp lets axe-core in (the pages' CSP forbids injected scripts; nothing else runs).
    context = browser.new_context(locale="fr-FR", viewport={"width": 390, "height": 844}, bypass_csp=True)
    context.set_default_timeout(10_000)
    return context


def test_every_page_fits_a_phone_and_names_codes_in_french(browser: Browser, tenant: Tenant) -> None:
    hot = start_lead(tenant, "Ana Hot", "5000")
    start_lead(tenant, "Ben Small", "100")
    base = tenant.server.base
    context = _french_phone(browser)
    try:
        page = context.new_page()
        page.goto(f"{base}/app/signin")
        page.get_by_label("Espace de travail").fill(tenant.id)
        page.get_by_label("E-mail").fill(OWNER[0])
        page.get_by_label("Mot de passe").fill(OWNER[1])
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Boîte de réception")).to_be_visible()
        pages = (
            ("inbox", "/app/inbox", "#inbox-table tbody tr:not(:has(td.empty))"),
            ("conversation", f"/app/conversations/{hot['conversation_id']}", "#transcript li"),
            ("leads", "/app/leads", "#leads-table tbody tr:not(:has(td.empty))"),
            ("lead", f"/app/leads/{hot['lead']['id']}", "#timeline tbody tr"),
            ("analytics", "/app/analytics", "figure.chart img"),
            ("people", "/app/people", "#people-table tbody tr"),
            ("playbooks", "/app/playbooks", "#pb-table tbody tr"),
            ("editor", "/app/playbooks/editor", "main h1"),
            ("import", "/app/import", "#imports-table"),
            ("integrations", "/app/integrations", "#catalog-table tbody tr"),
            ("settings", "/app/settings", "#budget:not(:empty)"),
        )
        for name, path, ready in pages:
            page.goto(base + path)
            expect(page.locator(ready).first).to_be_attached()
            page.wait_for_load_state("networkidle")
            root = "document.documentElement"
            wide, screen = page.evaluate(f"[{root}.scrollWidth, {root}.clientWidth]")
            assert wide <= screen, (path, wide, screen)
            assert boxes(page, "body") == [], path
            assert axe_violations(page) == [], path
            shot(page, f"polish-phone-fr-{name}")

        page.goto(f"{base}/app/leads")
        table = page.locator("#leads-table tbody")
        expect(table.locator("tr", has_text="Ana Hot")).to_contain_text("qualifié")
        expect(table.locator("tr", has_text="Ben Small")).to_contain_text("non qualifié")
        expect(page.locator("#f-stage option[value=disqualified]")).to_have_text("non qualifié")
        page.goto(f"{base}/app/conversations/{hot['conversation_id']}")
        transcript = page.locator("#transcript")
        expect(transcript).to_contain_text("envoyé")
        expect(transcript).to_contain_text("reçu")
        expect(transcript).not_to_contain_text(re.compile(r"· (sent|received)\b"))
        page.goto(f"{base}/app/leads/{hot['lead']['id']}")
        expect(page.locator("#lead-meta")).to_contain_text("qualifié · Score\u00a0: 65 / 100")
        expect(page.locator("#timeline")).to_contain_text("(envoyé)")
        # The CSV file picker in the page's words (the browser's own says "Choose File"), and an import's status.
        page.goto(f"{base}/app/import")
        picker = page.locator(".file-pick")
        expect(picker).to_have_text(re.compile(r"^\s*Choisir un fichier\s+Aucun fichier choisi\s*$"))
        csv = b"name,email,phone,consent\nZoe Csv,zoe@example.com,+33612345678,yes\n"
        page.get_by_label("Fichier CSV").set_input_files(
            {"name": "zoe.csv", "mimeType": "text/csv", "buffer": csv}
        )
        expect(picker).to_contain_text("zoe.csv")
        page.get_by_role("button", name="Importer", exact=True).click()
        expect(page.locator("#imports-table tbody tr").first).to_contain_text("terminé")
        page.goto(f"{base}/app/integrations")
        row = page.locator("#catalog-table tbody tr", has_text="Cal.com")
        expect(row).to_contain_text("agenda")
        expect(row).to_contain_text("clé d'API")
    finally:
        context.close()
