"""The agent's journey in a real browser (Debian's Chromium through Playwright) against the whole
service on 127.0.0.1, with the lead on WhatsApp: a recording server on 127.0.0.1 stands in for
Meta's Graph API, and the lead writes through the signed webhook.

A handoff arrives in the inbox while the page is open (no reload; handoffs first, with their
wait); the agent opens it, takes over, answers (the fake Graph API receives the reply), adds an
internal note (never sent), and hands back to the bot at a chosen step; the lead page shows the
timeline. Screenshots go to tests/artifacts/ (and, with ``LEADWARM_UPDATE_SCREENSHOTS=1``, the
inbox's to docs/screenshots/inbox.png for the README: a test run leaves tracked files alone);
axe-core checks the conversation and lead pages.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from app.authoring.routing import PlaybookRoutes, RouteRule
from app.composition import Runtime
from tests.app.conftest import make_settings, sign, text_webhook
from tests.dashboard.conftest import AGENT, setup_runtime
from tests.dashboard.live import LiveServer
from tests.dashboard.test_browser import (  # noqa: F401 (fixture)
    ARTIFACTS,
    _chromium_is_installed,
    axe_violations,
    browser,
)
from tests.support.recording import RecordingServer

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LEAD_WA = "33612345678"


class Service:
    """The live service (tenant ``demo``; WhatsApp leads get the handoff playbook) and its fake Graph API."""

    def __init__(self, tmp: Path) -> None:
        self.graph = RecordingServer()
        self.runtime = Runtime.build(make_settings(tmp / "data", self.graph.base_url))
        self.live = LiveServer(self.runtime).start()
        self.live.call(self._setup())
        self.base = self.live.base

    async def _setup(self) -> None:
        await setup_runtime(self.runtime)
        await self.runtime.playbooks.save_routes(
            "demo", PlaybookRoutes(rules=[RouteRule(playbook_id="handoff-demo", channels=["whatsapp"])])
        )

    def lead_writes(self, text: str, *, sender: str = LEAD_WA, name: str = "Camille") -> None:
        """The lead sends ``text`` on WhatsApp: Meta's signed webhook to the live service."""
        body = text_webhook(
            text, wamid=f"wamid.{uuid.uuid4().hex}", sender=sender, name=name, timestamp=int(time.time())
        )
        response = httpx.post(
            f"{self.base}/api/webhooks/whatsapp", content=body, headers=sign(body), timeout=5
        )
        assert response.status_code == 200, response.text

    def sent_to(self, to: str = LEAD_WA) -> list[str]:
        """Texts the service sent to ``to`` through the fake Graph API, in order."""
        out = []
        for request in list(self.graph.requests):
            body = request.body if isinstance(request.body, dict) else {}
            if str(body.get("to", "")).lstrip("+") == to and body.get("type") == "text":
                out.append(str(body["text"]["body"]))
        return out

    def wait_sent(self, text: str, *, timeout_s: float = 15.0) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            sent = self.sent_to()
            if any(text in s for s in sent):
                return sent
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never reached the Graph API: {self.sent_to()}")

    def close(self) -> None:
        self.live.stop()
        self.graph.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = Service(tmp_path_factory.mktemp("inbox-live"))
    try:
        yield svc
    finally:
        svc.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/app")
    page.get_by_label("Workspace").fill("demo")
    page.get_by_label("Email").fill(AGENT[0])
    page.get_by_label("Password").fill(AGENT[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


def test_an_agent_takes_over_a_live_handoff_answers_notes_and_hands_back(
    browser: Browser,  # noqa: F811
    service: Service,
) -> None:
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        _journey(context.new_page(), service)
    finally:
        context.close()
    # The pages the journey touched pass axe-core (a context that lets its script in).
    checker = browser.new_context(locale="en-US", bypass_csp=True, viewport={"width": 1280, "height": 900})
    checker.set_default_timeout(15_000)
    try:
        page = checker.new_page()
        sign_in(page, service.base)
        page.get_by_role("link", name="Camille").click()
        expect(page.locator("#notes li.note-item")).to_have_count(1)
        assert axe_violations(page) == [], "conversation"
        page.get_by_role("link", name="Lead page").click()
        expect(page.locator("#timeline tbody tr.k-note")).to_have_count(1)
        assert axe_violations(page) == [], "lead"
    finally:
        checker.close()


def _journey(page: Page, service: Service) -> None:
    base = service.base
    # A lead already talking to the bot, so the handoff has someone to jump ahead of.
    service.lead_writes("Hello", sender="33699999999", name="Ben Early")
    sign_in(page, base)
    rows = page.locator("#inbox-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Ben Early")
    expect(page.locator("#inbox-summary")).to_contain_text("Handoffs waiting: 0")
    page.evaluate("window.__noReload = true")

    # Camille writes on WhatsApp; her big budget hands her to a person, while the page is open.
    service.lead_writes("Hi, I want solar panels")
    service.wait_sent("What is your budget?")
    service.lead_writes("5000")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Camille")
    expect(rows.first).to_contain_text("handoff")
    expect(rows.first).to_have_class("handoff")
    expect(rows.first.locator("td").nth(2)).to_have_text(re.compile(r"^\d+ (s|min)$"))
    expect(page.locator("#inbox-summary")).to_contain_text("Handoffs waiting: 1")
    assert page.evaluate("window.__noReload === true"), "the page reloaded"
    shot(page, "inbox-live-handoff")
    if os.environ.get("LEADWARM_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "inbox.png"))

    rows.first.get_by_role("link", name="Camille").click()
    expect(page.locator("#transcript")).to_contain_text("5000")
    status = page.locator("#handling-status")
    expect(status).to_have_text("handoff")
    page.get_by_role("button", name="Take over").click()
    expect(status).to_have_text(f"A person has this conversation ({AGENT[0]})")
    expect(page.get_by_role("button", name="Take over")).to_be_hidden()

    reply = "Hi Camille, Ana here: a visit on Tuesday at 10:00?"
    page.get_by_label("Reply as yourself").fill(reply)
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#transcript li.from-agent")).to_contain_text(reply)
    sent = service.wait_sent(reply)
    assert sent[-1] == reply

    note = "Wants the visit before 12:00; roof faces south."
    page.get_by_label("Note", exact=True).fill(note)
    page.get_by_role("button", name="Add a note").click()
    expect(page.locator("#notes li.note-item")).to_have_count(1)
    expect(page.locator("#notes")).to_contain_text(note)
    expect(page.locator("#notes")).to_contain_text(AGENT[0])
    shot(page, "conversation-taken-over")

    page.get_by_label("Resume the bot at step").select_option("bye")
    page.get_by_role("button", name="Hand back to the bot").click()
    expect(page.locator("#reply-status")).to_have_text("Handed back to the bot")
    service.wait_sent("Thanks, goodbye.")
    expect(page.locator("#transcript")).to_contain_text("Thanks, goodbye.")
    expect(status).to_have_text("closed")  # the playbook's end: the bot said goodbye and closed it
    assert not any(note in s for s in service.sent_to()), "a note reached the lead"
    shot(page, "conversation-handed-back")

    page.get_by_role("link", name="Lead page").click()
    expect(page.get_by_role("heading", name="Lead · Camille")).to_be_visible()
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text(note)
    expect(timeline).to_contain_text(reply)
    expect(timeline).to_contain_text("handed back to the bot · " + AGENT[0])  # the event in words
    expect(page.locator("#score-history")).to_contain_text("Big budget")
    expect(page.locator("#answers")).to_contain_text("5000")
    shot(page, "lead")
