"""The web chat as a visitor sees it: a real Chromium (Debian's, driven by Playwright) opens a page
on another origin that embeds ``/widget.js``; the chat shows the tenant's name and greeting and the
playbook's first message without waiting, converses, and the screenshot is kept in
``tests/artifacts/``. Origins the tenant does not allow are refused."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.app.conftest import ADMIN_KEY, APP_SECRET, PHONE_ID, VERIFY_TOKEN
from tests.support.service import Service, service_env

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
BRAND = "SunnyWatt Solar"
GREETING = "Hi! Thinking about solar? Ask us anything."


@pytest.fixture(autouse=True, scope="module")
def _chromium_is_installed() -> None:
    """A missing browser fails the tests (scripts/test.sh installs it), it does not skip them."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does)", pytrace=False)


@contextlib.contextmanager
def site(html: str) -> Iterator[str]:
    """Another origin (a second server on 127.0.0.1) serving one page; yields its origin."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    env = service_env(
        data_dir=tmp_path / "data",
        graph_url="http://127.0.0.1:9",
        store={"store": "sqlite"},
        admin_key=ADMIN_KEY,
        whatsapp={
            "whatsapp_token": "test-token",
            "whatsapp_phone_id": PHONE_ID,
            "whatsapp_app_secret": APP_SECRET,
            "webhook_verify_token": VERIFY_TOKEN,
        },
        BURST_WINDOW_SECONDS="0",
    )
    svc = Service.start(env, tmp_path / "service.log")
    try:
        yield svc
    finally:
        svc.stop()


def configure(service: Service, origin: str) -> None:
    settings = {
        "name": BRAND,
        "brand_color": "#0a7f5a",
        "greeting": {"en": GREETING},
        "webchat_allowed_origins": [origin],
        "quiet_hours_start": "00:00",
        "quiet_hours_end": "00:00",
    }
    r = httpx.put(f"{service.base}/api/v1/settings", json=settings, headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text


def test_widget_on_another_origin_greets_and_converses(service: Service) -> None:
    from playwright.sync_api import expect, sync_playwright

    page_html = f"""<!doctype html><html><head><title>SunnyWatt – Solar for your home</title></head>
<body style="font-family: sans-serif; background: #fdf6e3; margin: 40px">
<h1>SunnyWatt</h1><p>Rooftop solar, installed in 3 weeks.</p>
<script src="{service.base}/widget.js" data-tenant="demo" data-lang="en" async></script>
</body></html>"""
    with site(page_html) as origin, sync_playwright() as pw:
        configure(service, origin)
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 760})
            page.goto(origin + "/")
            page.locator("#leadwarm-launcher").click()
            chat = page.frame_locator("#leadwarm-chat")
            expect(chat.locator("#brand")).to_have_text(BRAND, timeout=15_000)
            expect(chat.locator(".greeting")).to_have_text(GREETING)
            # the playbook's first message and question arrive without the visitor writing
            expect(chat.locator(".msg.outbound").first).to_contain_text(
                "Thanks for getting in touch", timeout=20_000
            )
            expect(chat.locator(".msg.outbound").nth(1)).to_contain_text("Do you own the home")
            expect(chat.locator("#reset")).to_be_hidden()  # no developer button for visitors
            chat.locator("#text").fill("Yes, I own it")
            chat.locator("#text").press("Enter")
            expect(chat.locator(".msg.inbound").last).to_have_text("Yes, I own it")
            expect(chat.locator(".msg.outbound").nth(2)).to_contain_text(
                "electricity per month", timeout=20_000
            )
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "webchat-widget.png"))
            # reconnect with history: a reload shows the whole conversation again
            page.reload()
            page.locator("#leadwarm-launcher").click()
            chat = page.frame_locator("#leadwarm-chat")
            expect(chat.locator(".msg.inbound").first).to_have_text("Yes, I own it", timeout=15_000)
            expect(chat.locator(".msg.outbound")).to_have_count(3)
        finally:
            browser.close()

    # the same widget from a site the tenant did not allow
    other = "http://evil.example"
    r = httpx.get(
        f"{service.base}/chat/config", params={"tenant": "demo"}, headers={"Origin": other}, timeout=10
    )
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    r = httpx.get(
        f"{service.base}/chat/config", params={"tenant": "demo"}, headers={"Origin": origin}, timeout=10
    )
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
    csp = httpx.get(f"{service.base}/chat", params={"tenant": "demo"}, timeout=10).headers[
        "content-security-policy"
    ]
    assert csp == f"frame-ancestors 'self' {origin}"
    assert httpx.get(f"{service.base}/chat", params={"tenant": "nobody"}, timeout=10).status_code == 404
