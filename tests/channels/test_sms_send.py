"""Twilio SMS sending through the twilio package: against Prism running Twilio's OpenAPI description
(api v2010, real HTTP on 127.0.0.1), and against a local stand-in of api.twilio.com where the exact
form fields or an error answer matter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from twilio.http.async_http_client import AsyncTwilioHttpClient

from channels.base import Choice, OutboundMessage, SendError
from channels.sms import STATUS_PATH, TwilioSmsChannel
from tests.fixtures.twilio.fake_twilio import FakeTwilio, TwilioReply, twilio_error
from tests.support.ports import free_port
from tests.support.prism import PrismServer, start_prism
from tests.support.specs import SPECS_DIR

TWILIO_SPEC = SPECS_DIR / "twilio" / "twilio_api_v2010.json"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-auth-token-0123456789"
OUR_NUMBER = "+15017122661"
TO = "+33612345678"
PUBLIC = "https://leads.example.com"


@pytest.fixture(scope="module")
def twilio_prism() -> Iterator[PrismServer]:
    """Prism serving Twilio's api v2010 OpenAPI description (1.9 MB; starts in a few seconds)."""
    server = start_prism(TWILIO_SPEC, timeout_s=90.0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    server = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    try:
        yield server
    finally:
        server.close()


def channel_for(base_url: str, **kwargs: Any) -> TwilioSmsChannel:
    options: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": OUR_NUMBER,
        "public_base_url": PUBLIC,
        "api_base_url": base_url,
    }
    options.update(kwargs)
    return TwilioSmsChannel(**options)


async def send(channel: TwilioSmsChannel, message: OutboundMessage) -> str:
    try:
        return await channel.send(message)
    finally:
        await channel.aclose()


ROOF = (Choice("tiles", "Pitched – tiles"), Choice("flat", "Flat roof"), Choice("unsure", "Not sure"))

# --------------------------------------------------------------------------- against Prism


@pytest.mark.parametrize(
    "message",
    [
        OutboundMessage(to=TO, text="Hi! What brings you here today?"),
        OutboundMessage(to=TO, text="What kind of roof do you have?", choices=ROOF),
        OutboundMessage(to="+33 6 12 34 56 78", text="é" * 2000),
        OutboundMessage(to=TO, text="From another number", sender="+1 501 712 2662"),
    ],
    ids=["text", "choices", "long-unnormalised", "sender"],
)
async def test_spec_accepts_what_we_send(twilio_prism: PrismServer, message: OutboundMessage) -> None:
    sid = await send(channel_for(twilio_prism.base_url), message)
    assert sid.startswith("SM") and len(sid) == 34


async def test_request_the_spec_rejects_maps_to_non_retryable(twilio_prism: PrismServer) -> None:
    """The spec's AccountSid pattern is ``^AC[0-9a-fA-F]{32}$``: Prism answers 422."""
    with pytest.raises(SendError) as info:
        await send(
            channel_for(twilio_prism.base_url, account_sid="AC-not-a-real-sid"), OutboundMessage(TO, "hi")
        )
    assert info.value.retryable is False
    assert info.value.code == "422"
    assert "422" in str(info.value)
    assert AUTH_TOKEN not in str(info.value)


# --------------------------------------------------------------------------- exact requests


async def test_form_fields_auth_and_status_callback(fake: FakeTwilio) -> None:
    message = OutboundMessage(to="+33 6 12 34 56 78", text="What kind of roof do you have?", choices=ROOF)
    sid = await send(channel_for(fake.base_url), message)
    [request] = fake.requests
    assert sid == request.sid
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "LeadWarm/" in request.headers["user-agent"]
    assert request.form == {
        "To": TO,
        "From": OUR_NUMBER,
        "Body": "What kind of roof do you have?\n\n1. Pitched – tiles\n2. Flat roof\n3. Not sure",
        "StatusCallback": PUBLIC + STATUS_PATH,
    }


async def test_no_public_url_means_no_status_callback(fake: FakeTwilio) -> None:
    await send(channel_for(fake.base_url, public_base_url=""), OutboundMessage(TO, "hi"))
    assert "StatusCallback" not in fake.requests[0].form


async def test_sender_override(fake: FakeTwilio) -> None:
    await send(channel_for(fake.base_url), OutboundMessage(TO, "hi", sender="+15017122662"))
    assert fake.requests[0].form["From"] == "+15017122662"


@pytest.mark.parametrize(
    ("reply", "retryable", "code"),
    [
        (twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"), False, "21610"),
        (twilio_error(400, 21211, "The 'To' number +336 is not a valid phone number."), False, "21211"),
        (
            twilio_error(400, 21408, "Permission to send an SMS has not been enabled for the region"),
            False,
            "21408",
        ),
        (twilio_error(401, 20003, "Authenticate"), False, "20003"),
        (twilio_error(429, 20429, "Too Many Requests"), True, "20429"),
        (twilio_error(500, 20500, "Internal Server Error"), True, "20500"),
        (TwilioReply(503, b"<html>Service Unavailable</html>"), True, "503"),
    ],
    ids=["21610-unsubscribed", "21211-invalid", "21408-region", "401", "429", "500", "503-html"],
)
async def test_error_answers(fake: FakeTwilio, reply: TwilioReply, retryable: bool, code: str) -> None:
    fake.replies.append(reply)
    with pytest.raises(SendError) as info:
        await send(channel_for(fake.base_url), OutboundMessage(TO, "hi"))
    assert (info.value.retryable, info.value.code) == (retryable, code)
    assert f"HTTP {reply.status}" in str(info.value)


async def test_auth_token_never_leaks_into_errors(fake: FakeTwilio) -> None:
    fake.replies.append(twilio_error(400, 21604, f"echo of a secret {AUTH_TOKEN}"))
    with pytest.raises(SendError) as info:
        await send(channel_for(fake.base_url), OutboundMessage(TO, "hi"))
    assert AUTH_TOKEN not in str(info.value) and AUTH_TOKEN not in repr(info.value)
    assert "***" in str(info.value)


async def test_network_error_is_retryable() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SendError) as info:
        await send(channel_for(closed), OutboundMessage(TO, "hi"))
    assert info.value.retryable is True
    assert AUTH_TOKEN not in str(info.value)


async def test_success_without_sid_is_not_retried(fake: FakeTwilio) -> None:
    fake.replies.append(TwilioReply(201, {"status": "queued"}))
    with pytest.raises(SendError) as info:
        await send(channel_for(fake.base_url), OutboundMessage(TO, "hi"))
    assert info.value.retryable is False


@pytest.mark.parametrize("to", ["not a number", "40404", "", "john@example.com"])
async def test_recipient_must_be_a_phone_number(fake: FakeTwilio, to: str) -> None:
    with pytest.raises(SendError) as info:
        await send(channel_for(fake.base_url), OutboundMessage(to, "hi"))
    assert info.value.retryable is False
    assert fake.requests == []


async def test_missing_credentials_send_nothing(fake: FakeTwilio) -> None:
    for kwargs in ({"auth_token": ""}, {"account_sid": ""}, {"from_number": ""}):
        with pytest.raises(SendError) as info:
            await send(channel_for(fake.base_url, **kwargs), OutboundMessage(TO, "hi"))
        assert info.value.retryable is False
    assert fake.requests == []


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # twilio's own client uses BasicAuth
async def test_caller_http_client_is_used_and_not_closed(fake: FakeTwilio) -> None:
    http = AsyncTwilioHttpClient(timeout=5.0)
    try:
        channel = channel_for(fake.base_url, http_client=http)
        await send(channel, OutboundMessage(TO, "one"))
        assert http.session is not None and not http.session.closed
        assert await channel.send(OutboundMessage(TO, "two"))  # still usable after aclose
        assert [r.form["Body"] for r in fake.sent()] == ["one", "two"]
    finally:
        await http.close()


async def test_channel_client_is_reused_then_closed(fake: FakeTwilio) -> None:
    channel = channel_for(fake.base_url)
    await channel.send(OutboundMessage(TO, "one"))
    await channel.send(OutboundMessage(TO, "two"))
    await channel.aclose()
    await channel.aclose()  # idempotent
    assert len(fake.sent(TO)) == 2
