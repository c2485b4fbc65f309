"""Bounded inputs, stated per channel: a maximum webhook body (a larger one is a ``PayloadError`` that
says why) and a maximum inbound text (a longer one is cut and the message keeps
``metadata["truncated_from"]``: the message is never lost)."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest

from channels import CHANNELS
from channels.base import ChannelTraits, PayloadError
from channels.email import EmailChannel
from channels.sms import TwilioSmsChannel
from channels.webchat import WebChatChannel
from channels.whatsapp import WhatsAppChannel

WHATSAPP_MAX_TEXT = 65_536  # WhatsApp's own maximum for a text a user sends


def whatsapp_body(text: str) -> bytes:
    message = {"from": "33612345678", "id": "wamid.long", "timestamp": "1700000000", "type": "text"}
    message["text"] = {"body": text}  # type: ignore[assignment]
    change = {"field": "messages", "value": {"metadata": {"phone_number_id": "123"}, "messages": [message]}}
    return json.dumps(
        {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}
    ).encode()


def test_every_channel_states_its_bounds() -> None:
    for name, cls in CHANNELS.items():
        traits = cls.traits
        assert isinstance(traits, ChannelTraits), name
        assert 1024 <= traits.max_body_bytes <= 64 * 1024 * 1024, name
        assert 500 <= traits.max_inbound_chars <= 20_000, name
    assert WhatsAppChannel.traits.max_inbound_chars == 4096
    assert TwilioSmsChannel.traits.max_inbound_chars == 1600
    assert EmailChannel.traits.max_body_bytes == 30 * 1024 * 1024


def test_a_65536_character_whatsapp_text_is_kept_cut_with_a_note() -> None:
    channel = WhatsAppChannel(access_token="t", phone_number_id="123", app_secret="s")
    started = time.perf_counter()
    [message] = channel.parse({}, whatsapp_body("x" * WHATSAPP_MAX_TEXT)).messages
    assert time.perf_counter() - started < 0.5
    assert len(message.text) == channel.traits.max_inbound_chars
    assert message.metadata["truncated_from"] == WHATSAPP_MAX_TEXT
    [short] = channel.parse({}, whatsapp_body("hello")).messages
    assert "truncated_from" not in short.metadata


def test_a_webchat_text_over_the_limit_is_cut_not_refused() -> None:
    channel = WebChatChannel()
    frame = json.dumps({"id": "m1", "text": "é" * 5000}).encode()
    [message] = channel.parse({"x-session-id": "s1"}, frame).messages
    assert message.text == "é" * channel.traits.max_inbound_chars
    assert message.metadata["truncated_from"] == 5000


def test_an_sms_body_over_1600_is_cut_with_a_note() -> None:
    channel = TwilioSmsChannel(
        account_sid="AC1", auth_token="t", from_number="+15017122661", public_base_url=""
    )
    body = urlencode({"MessageSid": "SM1", "From": "+14155552671", "Body": "y" * 2000}).encode()
    [message] = channel.parse({"content-type": "application/x-www-form-urlencoded"}, body).messages
    assert len(message.text) == 1600 and message.metadata["truncated_from"] == 2000


def test_an_email_reply_over_the_limit_is_cut_with_a_note() -> None:
    channel = EmailChannel(host="127.0.0.1", from_address="hello@sunnywatt.example")
    words = " ".join(["word"] * 4000)  # 19,999 characters on one line
    [message] = channel.parse({}, f"From: a@example.com\r\n\r\n{words}\r\n".encode()).messages
    assert len(message.text) == channel.traits.max_inbound_chars
    assert message.metadata["truncated_from"] == len(words)


@pytest.mark.parametrize(
    ("channel", "headers"),
    [
        (WhatsAppChannel(access_token="t", phone_number_id="123", app_secret="s"), {}),
        (
            TwilioSmsChannel(
                account_sid="AC1", auth_token="t", from_number="+15017122661", public_base_url=""
            ),
            {"content-type": "application/x-www-form-urlencoded"},
        ),
        (EmailChannel(host="127.0.0.1", from_address="hello@sunnywatt.example"), {}),
        (WebChatChannel(), {"x-session-id": "s1"}),
    ],
    ids=["whatsapp", "sms", "email", "webchat"],
)
def test_a_body_over_the_limit_is_a_payload_error_with_the_reason(
    channel: object, headers: dict[str, str]
) -> None:
    limit = channel.traits.max_body_bytes  # type: ignore[attr-defined]
    with pytest.raises(PayloadError, match=f"{limit + 1} bytes; the limit is {limit}"):
        channel.parse(headers, b"x" * (limit + 1))  # type: ignore[attr-defined]


def test_email_parse_raw_is_bounded_too() -> None:
    channel = EmailChannel(host="127.0.0.1", from_address="hello@sunnywatt.example")
    with pytest.raises(PayloadError, match="limit"):
        channel.parse_raw(b"x" * (channel.traits.max_body_bytes + 1))
