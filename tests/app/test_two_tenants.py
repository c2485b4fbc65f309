"""Two tenants on one deployment, each with its own WhatsApp number and Twilio number: each
webhook is verified only with its owner's secret, replies leave with the owner's credentials, an
address nobody owns is refused, and neither tenant's leads appear in the other's API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from twilio.request_validator import RequestValidator

from app.composition import Runtime
from app.connections.plugin import connections_feature
from app.main import create_app
from app.messaging.tenant_channels import register_routes
from app.tenancy.bootstrap import bootstrap
from app.tenancy.records import TenantProfile
from channels.sms import INBOUND_PATH
from playbooks import LIBRARY_DIR
from tests.app.conftest import ADMIN_KEY, APP_SECRET, PHONE_ID, make_settings, sign, text_webhook
from tests.fixtures.twilio.fake_twilio import FakeTwilio
from tests.support.recording import RecordingServer

ACME_KEY = "lw_acme_admin_key_for_tests"
ACME_PHONE_ID = "222333444555666"
ACME_APP_SECRET = "acme-app-secret"
ACME_TOKEN = "acme-whatsapp-token"
DEMO_SID, DEMO_AUTH, DEMO_NUMBER = "AC" + "d" * 32, "demo-twilio-auth", "+15017122661"
ACME_SID, ACME_AUTH, ACME_NUMBER = "AC" + "a" * 32, "acme-twilio-auth", "+15017122999"
PUBLIC = "https://leads.example.com"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ENCRYPTION_KEY = "11" * 32


@pytest.fixture
def servers() -> Iterator[dict[str, Any]]:
    made = {
        "demo_graph": RecordingServer(),
        "acme_graph": RecordingServer(),
        "demo_twilio": FakeTwilio(account_sid=DEMO_SID, auth_token=DEMO_AUTH),
        "acme_twilio": FakeTwilio(account_sid=ACME_SID, auth_token=ACME_AUTH),
    }
    try:
        yield made
    finally:
        for server in made.values():
            server.close()


@pytest.fixture
async def client(
    tmp_path: Path, servers: dict[str, Any], backend_settings: dict[str, Any]
) -> AsyncIterator[tuple[AsyncTestClient[Litestar], Runtime]]:
    settings = make_settings(
        tmp_path / "data",
        servers["demo_graph"].base_url,
        public_base_url=PUBLIC,
        twilio_account_sid=DEMO_SID,
        twilio_auth_token=DEMO_AUTH,
        twilio_phone_number=DEMO_NUMBER,
        twilio_api_base_url=servers["demo_twilio"].base_url,
        encryption_key=ENCRYPTION_KEY,
        **backend_settings,
    )
    rt = Runtime.build(settings, store=None)
    services = connections_feature(rt).services  # the feature wires the vault into the channels
    await bootstrap(rt)
    for tenant in ("demo", "acme"):
        profile = (await rt.tenants.profile(tenant)).model_copy(
            update={"quiet_hours_start": "00:00", "quiet_hours_end": "00:00"}
        )
        await rt.tenants.save_profile(profile)
    acme = TenantProfile(
        id="acme",
        name="Acme Solar",
        timezone="Europe/Paris",
        default_region="FR",
        default_playbook="solar-qualification-en",
        quiet_hours_start="00:00",
        quiet_hours_end="00:00",
    )
    await rt.tenants.save_profile(acme)
    await rt.tenants.add_api_key("acme", ACME_KEY)
    for path in sorted(LIBRARY_DIR.glob("*.yaml")):
        await rt.playbooks.save("acme", path.read_text(encoding="utf-8"), origin=path.name)
    whatsapp = await services.credentials.create(
        "acme",
        "whatsapp",
        {"access_token": ACME_TOKEN, "phone_number_id": ACME_PHONE_ID, "app_secret": ACME_APP_SECRET},
        settings={"base_url": servers["acme_graph"].base_url},
    )
    assert await register_routes(rt.tenants, whatsapp) == [ACME_PHONE_ID]
    async with AsyncTestClient(app=create_app(runtime=rt, start_worker=False)) as test_client:
        # The Twilio account is connected through the integrations API, as a person would.
        created = await test_client.post(
            "/api/v1/integrations",
            headers={"Authorization": f"Bearer {ACME_KEY}"},
            json={
                "provider": "twilio",
                "credentials": {"account_sid": ACME_SID, "auth_token": ACME_AUTH, "numbers": ACME_NUMBER},
                "settings": {"base_url": servers["acme_twilio"].base_url},
            },
        )
        assert created.status_code in (200, 201), created.text
        assert ACME_AUTH not in created.text
        assert await rt.tenants.route("sms", ACME_NUMBER) == "acme"
        yield test_client, rt


def twilio_form(to: str, sender: str, text: str, sid: str, auth_token: str) -> tuple[bytes, dict[str, str]]:
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACME_SID if to == ACME_NUMBER else DEMO_SID,
        "From": sender,
        "To": to,
        "Body": text,
        "NumMedia": "0",
    }
    signature = RequestValidator(auth_token).compute_signature(PUBLIC + INBOUND_PATH, params)
    return urlencode(params).encode(), {**FORM, "X-Twilio-Signature": signature}


async def conversations(client: AsyncTestClient[Litestar], key: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/conversations", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return list(response.json()["conversations"])


async def test_whatsapp_numbers_of_two_tenants_never_cross(
    client: tuple[AsyncTestClient[Litestar], Runtime], servers: dict[str, Any]
) -> None:
    http, rt = client
    to_acme = text_webhook("Hi, solar panels please", wamid="wamid.ACME1", phone_number_id=ACME_PHONE_ID)
    to_demo = text_webhook("Hello, I'd like a quote", wamid="wamid.DEMO1", sender="33700000001")
    # Each number's webhooks verify only with its owner's app secret.
    assert (
        await http.post("/api/webhooks/whatsapp", content=to_acme, headers=sign(to_acme))
    ).status_code == 401
    assert (
        await http.post("/api/webhooks/whatsapp", content=to_demo, headers=sign(to_demo, ACME_APP_SECRET))
    ).status_code == 401
    ok = await http.post("/api/webhooks/whatsapp", content=to_acme, headers=sign(to_acme, ACME_APP_SECRET))
    assert ok.status_code == 200, ok.text
    ok = await http.post("/api/webhooks/whatsapp", content=to_demo, headers=sign(to_demo, APP_SECRET))
    assert ok.status_code == 200, ok.text
    # A number nobody owns is refused, whoever signs it.
    stray = text_webhook("hello?", wamid="wamid.STRAY", phone_number_id="999999999")
    refused = await http.post("/api/webhooks/whatsapp", content=stray, headers=sign(stray))
    assert refused.status_code == 404 and "no tenant owns" in refused.text
    await rt.worker.drain()
    acme_convs = await conversations(http, ACME_KEY)
    demo_convs = await conversations(http, ADMIN_KEY)
    assert [c["channel"] for c in acme_convs] == ["whatsapp"]
    assert [c["channel"] for c in demo_convs] == ["whatsapp"]
    assert {c["id"] for c in acme_convs}.isdisjoint({c["id"] for c in demo_convs})
    # Another tenant's conversation is not found, not shown.
    other = await http.get(
        f"/api/v1/conversations/{demo_convs[0]['id']}", headers={"Authorization": f"Bearer {ACME_KEY}"}
    )
    assert other.status_code == 404
    # Replies left through each tenant's own number, with its own token.
    acme_sends = [r for r in servers["acme_graph"].requests if r.method == "POST"]
    demo_sends = [r for r in servers["demo_graph"].requests if r.method == "POST"]
    assert acme_sends and demo_sends
    assert all(f"/{ACME_PHONE_ID}/messages" in r.path for r in acme_sends)
    assert all(r.headers["authorization"] == f"Bearer {ACME_TOKEN}" for r in acme_sends)
    assert all(f"/{PHONE_ID}/messages" in r.path for r in demo_sends)
    assert all(ACME_TOKEN not in r.headers["authorization"] for r in demo_sends)
    assert {r.body["to"] for r in acme_sends} == {"33612345678"}
    assert {r.body["to"] for r in demo_sends} == {"33700000001"}


async def test_twilio_numbers_of_two_tenants_never_cross(
    client: tuple[AsyncTestClient[Litestar], Runtime], servers: dict[str, Any]
) -> None:
    http, rt = client
    body, headers = twilio_form(ACME_NUMBER, "+14155550101", "Hi, solar?", "SM" + "1" * 32, DEMO_AUTH)
    assert (await http.post(INBOUND_PATH, content=body, headers=headers)).status_code == 401
    body, headers = twilio_form(ACME_NUMBER, "+14155550101", "Hi, solar?", "SM" + "1" * 32, ACME_AUTH)
    assert (await http.post(INBOUND_PATH, content=body, headers=headers)).status_code == 200
    body, headers = twilio_form(DEMO_NUMBER, "+14155550102", "Hello there", "SM" + "2" * 32, DEMO_AUTH)
    assert (await http.post(INBOUND_PATH, content=body, headers=headers)).status_code == 200
    await rt.worker.drain()
    assert [c["channel"] for c in await conversations(http, ACME_KEY)] == ["sms"]
    assert [c["channel"] for c in await conversations(http, ADMIN_KEY)] == ["sms"]
    assert {r.form["From"] for r in servers["acme_twilio"].sent()} == {ACME_NUMBER}
    assert {r.form["To"] for r in servers["acme_twilio"].sent()} == {"+14155550101"}
    assert {r.form["From"] for r in servers["demo_twilio"].sent()} == {DEMO_NUMBER}
    assert {r.form["To"] for r in servers["demo_twilio"].sent()} == {"+14155550102"}
