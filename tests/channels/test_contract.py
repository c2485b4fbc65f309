"""The channel contract, run against every channel of the registry and its fake provider.

Each registered channel has a harness here that knows its provider's wire format: how to sign a
webhook carrying one text from a lead, and where a sent message shows up. The same assertions then
hold for all of them (the pattern of Litestar's backend suites): traits that the app can read, a
configuration that names what is missing, verify/parse/send. A channel added to the registry
without a harness fails :func:`test_every_registered_channel_has_a_harness`.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from app.conversations.records import Lead
from channels.base import (
    Channel,
    ChannelConfigError,
    ChannelTraits,
    OutboundMessage,
    PayloadError,
    SignatureError,
)
from channels.registry import CHANNELS
from channels.sms import EVENT_HEADER
from tests.fixtures.twilio.fake_twilio import FakeTwilio
from tests.support.recording import RecordingServer
from tests.support.smtp_server import running_smtp_server

LEAD_PHONE = "+33612345678"
LEAD_EMAIL = "camille@example.org"


@dataclass
class Harness:
    """One channel wired to its fake provider. ``webhook(signed)`` gives (headers, body, url) of a
    delivery carrying "hello there" from ``lead``; ``sent()`` lists what the fake received, as
    (recipient, text) pairs."""

    channel: Channel
    config: dict[str, Any]
    lead: str
    webhook: Callable[[bool], tuple[dict[str, str], bytes, str]]
    sent: Callable[[], list[tuple[str, str]]]
    signed: bool = True
    signs_body: bool = True
    """False where the provider proves itself with a shared key rather than a signature of the body
    (inbound email relays such as SendGrid's Inbound Parse sign nothing)."""


def whatsapp(stack: ExitStack) -> Harness:
    graph = RecordingServer()
    stack.callback(graph.close)
    config = {
        "access_token": "wa-token",
        "phone_number_id": "106540352242922",
        "app_secret": "wa-secret",
        "api_base_url": graph.base_url,
    }

    def webhook(signed: bool) -> tuple[dict[str, str], bytes, str]:
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Camille"}, "wa_id": LEAD_PHONE[1:]}],
            "messages": [
                {
                    "from": LEAD_PHONE[1:],
                    "id": "wamid.CONTRACT",
                    "timestamp": "1763000000",
                    "type": "text",
                    "text": {"body": "hello there"},
                }
            ],
        }
        body = json.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
            }
        ).encode()
        secret = b"wa-secret" if signed else b"someone-else"
        digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
        return {"x-hub-signature-256": f"sha256={digest}", "content-type": "application/json"}, body, ""

    def sent() -> list[tuple[str, str]]:
        return [
            ("+" + r.body["to"].lstrip("+"), r.body.get("text", {}).get("body", ""))
            for r in graph.requests
            if isinstance(r.body, dict) and r.body.get("type") == "text"
        ]

    return Harness(CHANNELS["whatsapp"].from_config(config), config, LEAD_PHONE, webhook, sent)


def sms(stack: ExitStack) -> Harness:
    sid, token, ours = "AC" + "c" * 32, "sms-auth-token", "+15017122661"
    fake = FakeTwilio(account_sid=sid, auth_token=token)
    stack.callback(fake.close)
    public = "https://leads.example.com/api/webhooks/twilio/sms"
    config = {
        "account_sid": sid,
        "auth_token": token,
        "from_number": ours,
        "public_base_url": "https://leads.example.com",
        "api_base_url": fake.base_url,
    }

    def webhook(signed: bool) -> tuple[dict[str, str], bytes, str]:
        params = {
            "MessageSid": "SM" + "9" * 32,
            "AccountSid": sid,
            "From": LEAD_PHONE,
            "To": ours,
            "Body": "hello there",
            "NumMedia": "0",
        }
        signature = RequestValidator(token if signed else "wrong-token").compute_signature(public, params)
        headers = {
            "x-twilio-signature": signature,
            "content-type": "application/x-www-form-urlencoded",
            EVENT_HEADER: "inbound",
        }
        return headers, urlencode(params).encode(), public

    def sent() -> list[tuple[str, str]]:
        return [(r.form["To"], r.form.get("Body", "")) for r in fake.sent()]

    return Harness(CHANNELS["sms"].from_config(config), config, LEAD_PHONE, webhook, sent)


def mail(stack: ExitStack) -> Harness:
    controller, recorder = stack.enter_context(running_smtp_server())
    config = {
        "host": "127.0.0.1",
        "port": controller.port,
        "from_address": "SunnyWatt <hello@sunnywatt.example>",
        "starttls": False,
        "unsubscribe_secret": "unsub-secret",
        "inbound_secret": "inbound-key",
        "timeout_s": 5.0,
    }

    def webhook(signed: bool) -> tuple[dict[str, str], bytes, str]:
        body = (
            f"From: Camille <{LEAD_EMAIL}>\r\nTo: hello@sunnywatt.example\r\nSubject: Solar\r\n"
            "Message-ID: <contract-1@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello there\r\n"
        ).encode()
        return {"x-leadwarm-inbound-key": "inbound-key" if signed else "guess"}, body, ""

    def sent() -> list[tuple[str, str]]:
        out = []
        for received in recorder.messages():
            parsed = email.message_from_bytes(received.raw, policy=email.policy.default)
            part = parsed.get_body(preferencelist=("plain",))
            out.append((received.rcpt_tos[0], part.get_content() if part is not None else ""))
        return out

    return Harness(CHANNELS["email"].from_config(config), config, LEAD_EMAIL, webhook, sent, signs_body=False)


def webchat(stack: ExitStack) -> Harness:
    channel = CHANNELS["webchat"].from_config({})
    session = "wc_contract_session"
    queue = channel.subscribe(session)  # type: ignore[attr-defined]

    def webhook(signed: bool) -> tuple[dict[str, str], bytes, str]:
        frame = {"type": "message", "id": "m1", "text": "hello there"}
        return {"x-session-id": session, "x-widget-id": "demo"}, json.dumps(frame).encode(), ""

    def sent() -> list[tuple[str, str]]:
        return [(session, "") for _ in range(queue.qsize())]

    return Harness(channel, {}, session, webhook, sent, signed=False)


HARNESSES: dict[str, Callable[[ExitStack], Harness]] = {
    "whatsapp": whatsapp,
    "sms": sms,
    "email": mail,
    "webchat": webchat,
}


def test_every_registered_channel_has_a_harness() -> None:
    assert set(HARNESSES) == set(CHANNELS)


@pytest.fixture(params=sorted(CHANNELS))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    with ExitStack() as stack:
        built = HARNESSES[request.param](stack)
        yield built
        await built.channel.aclose()


@pytest.fixture
def name(harness: Harness) -> str:
    return harness.channel.name


def test_traits_are_readable_by_the_app(harness: Harness) -> None:
    traits = type(harness.channel).traits
    assert isinstance(traits, ChannelTraits)
    assert traits.address_field in Lead.model_fields
    assert traits.max_text_chars > 0


def test_missing_settings_are_named(harness: Harness) -> None:
    cls = type(harness.channel)
    required = sorted(k for k, needed in cls.config_keys().items() if needed)
    if not required:
        assert isinstance(cls.from_config({}), cls)
        return
    with pytest.raises(ChannelConfigError) as caught:
        cls.from_config({})
    assert sorted(caught.value.missing) == required
    assert isinstance(cls.from_config(harness.config), cls)


def test_verify_accepts_the_provider_and_refuses_a_forgery(harness: Harness) -> None:
    headers, body, url = harness.webhook(True)
    harness.channel.verify(headers, body, url=url)
    if not harness.signed:
        return
    forged_headers, forged_body, url = harness.webhook(False)
    with pytest.raises(SignatureError):
        harness.channel.verify(forged_headers, forged_body, url=url)
    if harness.signs_body:
        with pytest.raises(SignatureError):
            harness.channel.verify(headers, body + b" ", url=url)


def test_parse_gives_the_leads_message_to_one_of_our_addresses(harness: Harness) -> None:
    headers, body, _ = harness.webhook(True)
    parsed = harness.channel.parse(headers, body)
    assert len(parsed.messages) == 1
    message = parsed.messages[0]
    assert message.channel == harness.channel.name
    assert message.sender == harness.lead
    assert "hello there" in message.text
    assert message.provider_message_id
    addresses = harness.channel.receiving_addresses()
    if addresses:
        assert message.recipient.lower() in [a.lower() for a in addresses]


def test_parse_refuses_garbage_with_a_reason(harness: Harness) -> None:
    headers, _, _ = harness.webhook(True)
    if harness.channel.name == "email":
        garbage = b"\x00\xff not a mail at all"
    else:
        garbage = b"{not json" if harness.channel.name != "sms" else b"%ff%fe=\xff"
    try:
        parsed = harness.channel.parse(headers, garbage)
    except PayloadError as exc:
        assert str(exc)
    else:  # a lenient format (a raw mail) may read garbage as a message without text
        assert all(not m.text.strip() or m.text for m in parsed.messages)


async def test_send_reaches_the_provider_once(harness: Harness) -> None:
    provider_id = await harness.channel.send(
        OutboundMessage(to=harness.lead, text="Hi from the contract", idempotency_key="cv_1:00000001")
    )
    assert provider_id
    sent = harness.sent()
    assert len(sent) == 1
    assert sent[0][0] == harness.lead
    if harness.channel.name != "webchat":  # the web chat's page reads the text from the store
        assert "Hi from the contract" in sent[0][1]
