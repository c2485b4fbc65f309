"""Twilio SMS end to end: signed webhooks (signatures from the twilio package, over the PUBLIC URL)
drive the shipped playbook to its end, replies leave through a local stand-in of api.twilio.com,
redeliveries reply once, and status callbacks update the messages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from twilio.request_validator import RequestValidator

from app.composition import Runtime, build_channels
from app.messaging.webhooks.twilio import EMPTY_TWIML
from app.store import where
from app.tenancy.bootstrap import bootstrap
from channels.sms import INBOUND_PATH, STATUS_PATH, TwilioSmsChannel
from playbooks import load_library
from tests.app.conftest import make_settings
from tests.fixtures.twilio.fake_twilio import FakeTwilio

Client = AsyncTestClient[Litestar]
EN = load_library()["solar-qualification-en"]
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-auth-token-0123456789"
OUR_NUMBER = "+15017122661"
LEAD = "+14155552671"
#: Where Twilio reaches us; the test client calls http://testserver.local, as a proxy would.
PUBLIC = "https://leads.example.com"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def twilio_api() -> Iterator[FakeTwilio]:
    server = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def runtime(tmp_path: Path, twilio_api: FakeTwilio) -> AsyncIterator[Runtime]:
    """A bootstrapped runtime with the SMS channel pointed at the stand-in; the worker does NOT
    run by itself: tests call ``worker.drain()``."""
    settings = make_settings(
        tmp_path / "data",
        "http://127.0.0.1:9",
        public_base_url=PUBLIC,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_phone_number=OUR_NUMBER,
    )
    sms = TwilioSmsChannel(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_number=OUR_NUMBER,
        public_base_url=PUBLIC,
        api_base_url=twilio_api.base_url,
    )
    rt = Runtime.build(settings, channels={**build_channels(settings), "sms": sms})
    await bootstrap(rt)
    yield rt
    await rt.channels.aclose()
    await rt.store.close()


def sign(body: bytes, *, url: str, token: str = AUTH_TOKEN) -> dict[str, str]:
    """Headers Twilio sends: X-Twilio-Signature over ``url`` and the body's form fields."""
    params = dict(parse_qsl(body.decode(), keep_blank_values=True))
    return {**FORM, "X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}


def inbound(text: str, sid: str, *, sender: str = LEAD) -> bytes:
    """An inbound SMS webhook body in Twilio's documented fields."""
    fields = {
        "ToCountry": "US",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": text,
        "FromCountry": "US",
        "To": OUR_NUMBER,
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }
    return urlencode(fields).encode()


def status_callback(sid: str, status: str, *, error_code: str = "") -> bytes:
    fields = {"SmsSid": sid, "SmsStatus": status, "MessageStatus": status, "To": LEAD, "MessageSid": sid}
    fields.update({"AccountSid": ACCOUNT_SID, "From": OUR_NUMBER, "ApiVersion": "2010-04-01"})
    if error_code:
        fields["ErrorCode"] = error_code
    return urlencode(fields).encode()


async def post_inbound(client: Client, body: bytes) -> Any:
    return await client.post(INBOUND_PATH, content=body, headers=sign(body, url=PUBLIC + INBOUND_PATH))


async def say(client: Client, runtime: Runtime, twilio_api: FakeTwilio, text: str, sid: str) -> list[str]:
    """The lead texts ``text``; returns the SMS bodies the app sent back."""
    before = len(twilio_api.sent(LEAD))
    response = await post_inbound(client, inbound(text, sid))
    assert response.status_code == 200, response.text
    await runtime.worker.drain()
    return [r.form["Body"] for r in twilio_api.sent(LEAD)[before:]]


def step(step_id: str) -> Any:
    return next(s for s in EN.steps if s.id == step_id)


def text_of(step_id: str, field: str = "question") -> str:
    value = getattr(step(step_id), field)
    return value if isinstance(value, str) else str(value["en"])


def numbered(step_id: str) -> list[str]:
    titles = [c.title if isinstance(c.title, str) else c.title["en"] for c in step(step_id).choices]
    return [f"{i}. {title}" for i, title in enumerate(titles, start=1)]


async def conversations(runtime: Runtime) -> list[dict[str, Any]]:
    return [d.data for d in await runtime.store.query("demo", "conversations")]


# --------------------------------------------------------------------------- signatures


async def test_signed_inbound_sms_is_stored_and_answered_with_empty_twiml(
    client: Client, runtime: Runtime, twilio_api: FakeTwilio
) -> None:
    response = await post_inbound(client, inbound("Hi, I'd like a quote for solar panels", "SM" + "1" * 32))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.text == EMPTY_TWIML
    assert response.headers["content-length"] == str(len(EMPTY_TWIML))
    assert twilio_api.requests == []  # the webhook only stores; the worker replies
    assert await runtime.ingest.consume("demo") == 1  # stored in the ingest log, before the 200
    assert len(await runtime.store.query("demo", "inbox")) == 1


async def test_bad_signatures_are_401_and_nothing_is_stored(client: Client, runtime: Runtime) -> None:
    body = inbound("hi", "SM" + "2" * 32)
    wrong_token = await client.post(
        INBOUND_PATH, content=body, headers=sign(body, url=PUBLIC + INBOUND_PATH, token="other")
    )
    missing = await client.post(INBOUND_PATH, content=body, headers=FORM)
    # Signed for the URL the app itself sees, not the public one Twilio called.
    rewritten = await client.post(
        INBOUND_PATH, content=body, headers=sign(body, url="http://testserver.local" + INBOUND_PATH)
    )
    tampered = await client.post(
        INBOUND_PATH, content=body.replace(b"hi", b"yo"), headers=sign(body, url=PUBLIC + INBOUND_PATH)
    )
    status_body = status_callback("SM" + "3" * 32, "delivered")
    status_unsigned = await client.post(STATUS_PATH, content=status_body, headers=FORM)
    assert [r.status_code for r in (wrong_token, missing, rewritten, tampered, status_unsigned)] == [401] * 5
    assert await runtime.store.query("demo", "inbox") == []
    assert await runtime.store.query("demo", "status_events") == []


async def test_query_string_is_part_of_the_signed_url(client: Client, runtime: Runtime) -> None:
    body = inbound("hi", "SM" + "4" * 32)
    path = INBOUND_PATH + "?source=landing"
    ok = await client.post(path, content=body, headers=sign(body, url=PUBLIC + path))
    without_query = await client.post(path, content=body, headers=sign(body, url=PUBLIC + INBOUND_PATH))
    assert (ok.status_code, without_query.status_code) == (200, 401)


async def test_malformed_body_with_a_valid_signature_is_quarantined_and_answered_200(
    client: Client, runtime: Runtime
) -> None:
    no_sid = urlencode({"From": LEAD, "To": OUR_NUMBER, "Body": "hi"}).encode()
    response = await post_inbound(client, no_sid)
    assert response.status_code == 200  # Twilio would retry anything else
    # the route's one 200 answer, stored or quarantined: the empty TwiML, so Twilio sends nothing
    assert response.text == EMPTY_TWIML
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    not_form = b'{"MessageSid": "SM1", "From": "+14155552671"}'
    response = await client.post(
        INBOUND_PATH, content=not_form, headers=sign(not_form, url=PUBLIC + INBOUND_PATH)
    )
    assert response.status_code == 200
    kept = [d.data for d in await runtime.store.query("demo", "quarantine")]
    assert sorted(item["body"] for item in kept) == sorted([no_sid.decode(), not_form.decode()])
    assert any("MessageSid" in item["reason"] for item in kept)
    await runtime.ingest.consume("demo")
    assert await runtime.store.query("demo", "inbox") == []


# --------------------------------------------------------------------------- conversation


async def test_same_webhook_three_times_yields_one_reply(
    client: Client, runtime: Runtime, twilio_api: FakeTwilio
) -> None:
    body = inbound("Hello, I want solar panels", "SM" + "5" * 32)
    for _ in range(3):
        assert (await post_inbound(client, body)).status_code == 200
        await runtime.worker.drain()
    bodies = [r.form["Body"] for r in twilio_api.sent(LEAD)]
    assert len(bodies) == 2  # greeting + first question, exactly once
    assert bodies[-1] == text_of("homeowner")
    assert len(await runtime.store.query("demo", "inbox")) == 1


async def test_sms_conversation_runs_the_shipped_playbook_to_its_end(
    client: Client, runtime: Runtime, twilio_api: FakeTwilio
) -> None:
    sids = iter(f"SM{i:032x}" for i in range(100, 200))

    async def lead_says(text: str) -> list[str]:
        return await say(client, runtime, twilio_api, text, next(sids))

    first = await lead_says("Hi, I'd like a quote for solar panels")
    assert first[0].startswith("Hi! Thanks for getting in touch")
    assert first[-1] == text_of("homeowner")
    assert (await lead_says("yes I own it"))[-1] == text_of("bill")
    roof = (await lead_says("about 90 dollars"))[-1]
    assert roof.split("\n") == [text_of("roof"), "", *numbered("roof")]
    assert "3. Flat roof" in roof.split("\n")
    timeline = (await lead_says("3"))[-1]  # "3" picks the third numbered option
    assert timeline.split("\n") == [text_of("timeline"), "", *numbered("timeline")]
    assert (await lead_says("4"))[-1] == text_of("postcode")
    assert (await lead_says("94105"))[-1] == text_of("email")
    offer = (await lead_says("sam@example.com"))[-1].split("\n")
    assert offer[0].startswith(text_of("callback"))  # the book step offers free slots, numbered
    assert [line[:3] for line in offer if line[:1].isdigit()] == ["1. ", "2. ", "3. "]
    booked = await lead_says("1")
    assert booked[0].startswith("Booked: ") and booked[0].endswith("See you then!")
    assert booked[-1] == text_of("any-questions", "text")
    assert (await lead_says("no thanks"))[-1] == text_of("nurture-end", "message")

    [conv] = await conversations(runtime)
    assert (conv["channel"], conv["status"], conv["outcome"]) == ("sms", "closed", "nurture")
    lead = await runtime.store.get("demo", "leads", conv["lead_id"])
    assert lead is not None and lead["phone"] == LEAD
    slots = lead["slots"]
    assert (slots["homeowner"], slots["roof_type"], slots["timeline"]) == (True, "flat", "researching")
    assert (slots["postcode"], slots["email"]) == ("94105", "sam@example.com")
    for request in twilio_api.sent(LEAD):
        assert request.form["From"] == OUR_NUMBER
        assert request.form["StatusCallback"] == PUBLIC + STATUS_PATH
    assert await runtime.jobs.dead_letters("demo") == []


# --------------------------------------------------------------------------- statuses


async def _outbound(runtime: Runtime) -> dict[str, dict[str, Any]]:
    [conv] = await conversations(runtime)
    docs = await runtime.store.query(
        "demo", f"conversations/{conv['id']}/messages", filters=[where("direction", "==", "outbound")]
    )
    return {str(d.data["provider_message_id"]): d.data for d in docs}


async def test_status_callbacks_update_the_messages(
    client: Client, runtime: Runtime, twilio_api: FakeTwilio
) -> None:
    await say(client, runtime, twilio_api, "Hi, solar please", "SM" + "6" * 32)
    await say(client, runtime, twilio_api, "yes", "SM" + "7" * 32)
    delivered, filtered, unreachable = (r.sid for r in twilio_api.sent(LEAD)[:3])
    assert delivered and filtered and unreachable
    callbacks = [
        status_callback(delivered, "sent"),
        status_callback(delivered, "delivered"),
        status_callback(delivered, "delivered"),  # Twilio may retry a callback
        status_callback(filtered, "undelivered", error_code="30007"),
        status_callback(unreachable, "undelivered", error_code="30003"),
    ]
    for body in callbacks:
        response = await client.post(STATUS_PATH, content=body, headers=sign(body, url=PUBLIC + STATUS_PATH))
        assert response.status_code == 200, response.text
    await runtime.worker.drain()
    messages = await _outbound(runtime)
    assert messages[delivered]["status"] == "delivered"
    assert {"sent", "delivered"} <= set(messages[delivered]["status_at"])
    assert (messages[filtered]["status"], messages[filtered]["error_code"]) == ("failed", "30007")
    assert (messages[unreachable]["status"], messages[unreachable]["error_code"]) == (
        "undeliverable",
        "30003",
    )
    assert await runtime.store.query("demo", "status_events") == []
