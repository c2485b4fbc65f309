"""Twilio SMS webhooks at the channel level: signatures computed with the twilio package, inbound
messages and status callbacks parsed from Twilio's documented form fields, malformed bodies refused
with a reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from twilio.request_validator import RequestValidator

from channels.base import PayloadError, SignatureError
from channels.sms import ERROR_TITLES, EVENT_HEADER, TwilioSigner, TwilioSmsChannel, normalize_number

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "twilio"
ACCOUNT_SID = "AC" + "a" * 32
AUTH_TOKEN = "twilio-test-auth-token-0123456789"
OUR_NUMBER = "+15017122661"
LEAD = "+14155552671"
URL = "https://leads.example.com/api/webhooks/twilio/sms"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def channel(**kwargs: Any) -> TwilioSmsChannel:
    options: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": OUR_NUMBER,
        "public_base_url": "https://leads.example.com",
        **kwargs,
    }
    return TwilioSmsChannel(**options)


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.form").read_bytes()


def signed(body: bytes, url: str = URL, token: str = AUTH_TOKEN) -> dict[str, str]:
    """Headers Twilio sends: the signature over ``url`` and the form fields of ``body``."""
    params = dict(parse_qsl(body.decode(), keep_blank_values=True))
    signature = RequestValidator(token).compute_signature(url, params)
    return {**FORM, "x-twilio-signature": signature}


# --------------------------------------------------------------------------- signatures


def test_signature_over_public_url_and_fields_is_accepted() -> None:
    body = fixture("inbound_sms")
    channel().verify(signed(body), body, url=URL)


def test_empty_fields_are_signed_too() -> None:
    body = urlencode({"MessageSid": "SM1", "From": LEAD, "To": OUR_NUMBER, "Body": ""}).encode()
    channel().verify(signed(body), body, url=URL)


def test_url_with_query_and_default_port_variants() -> None:
    body = fixture("inbound_sms")
    with_query = URL + "?tenant=demo"
    channel().verify(signed(body, url=with_query), body, url=with_query)
    # Twilio may sign with or without the default port; the validator accepts both.
    with_port = "https://leads.example.com:443/api/webhooks/twilio/sms"
    channel().verify(signed(body, url=with_port), body, url=URL)


@pytest.mark.parametrize(
    ("given", "signed_over", "hmacs"),
    [
        # the URL as given is tried first: one HMAC, with or without a port in PUBLIC_BASE_URL
        ("http://127.0.0.1:8000/api/webhooks/twilio/sms", "http://127.0.0.1:8000/api/webhooks/twilio/sms", 1),
        (URL, URL, 1),
        ("https://leads.example.com:443/api/webhooks/twilio/sms", URL, 2),
        (URL, "https://leads.example.com:443/api/webhooks/twilio/sms", 2),
    ],
)
def test_the_url_as_given_is_tried_first(
    given: str, signed_over: str, hmacs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same answers as ``RequestValidator.validate`` (both port forms), in half its HMACs on
    the common path."""
    body = fixture("inbound_sms")
    headers = signed(body, url=signed_over)
    assert RequestValidator(AUTH_TOKEN).validate(
        given, dict(parse_qsl(body.decode(), keep_blank_values=True)), headers["x-twilio-signature"]
    )
    calls: list[str] = []
    compute = TwilioSigner.signature

    def counting(self: TwilioSigner, uri: str, params: Any) -> str:
        calls.append(uri)
        return compute(self, uri, params)

    monkeypatch.setattr(TwilioSigner, "signature", counting)
    channel().verify(headers, body, url=given)
    assert len(calls) == hmacs


@pytest.mark.parametrize(
    "case",
    ["wrong-token", "missing", "other-url", "tampered", "query-dropped", "no-url"],
)
def test_bad_signatures_are_refused(case: str) -> None:
    body = fixture("inbound_sms")
    headers = signed(body)
    url = URL
    if case == "wrong-token":
        headers = signed(body, token="not-the-token")
    elif case == "missing":
        headers = dict(FORM)
    elif case == "other-url":  # what the app would see behind a proxy that rewrites the URL
        headers = signed(body, url="http://10.0.0.7:8000/api/webhooks/twilio/sms")
    elif case == "tampered":
        body = body.replace(b"solar", b"wind")
    elif case == "query-dropped":
        headers = signed(body, url=URL + "?tenant=demo")
    elif case == "no-url":
        url = ""
    with pytest.raises(SignatureError):
        channel().verify(headers, body, url=url)


def test_without_auth_token_every_webhook_is_refused() -> None:
    body = fixture("inbound_sms")
    with pytest.raises(SignatureError, match="not configured"):
        channel(auth_token="").verify(signed(body, token=""), body, url=URL)


def test_token_never_in_repr_or_errors() -> None:
    sms = channel()
    assert AUTH_TOKEN not in repr(sms)
    body = fixture("inbound_sms")
    with pytest.raises(SignatureError) as info:
        sms.verify(signed(body, token="x"), body, url=URL)
    assert AUTH_TOKEN not in str(info.value)


# --------------------------------------------------------------------------- inbound


def test_inbound_sms() -> None:
    parsed = channel().parse({**FORM, EVENT_HEADER: "inbound"}, fixture("inbound_sms"))
    assert parsed.statuses == []
    [message] = parsed.messages
    assert message.channel == "sms"
    assert message.provider_message_id == "SM1f0e8ae6ade43cb3c0ce4525424e404f"
    assert (message.sender, message.recipient) == (LEAD, OUR_NUMBER)
    assert (message.kind, message.text) == ("text", "Hi, I'd like a quote for solar panels")
    assert message.media is None
    assert message.metadata["AccountSid"] == ACCOUNT_SID
    assert message.metadata["FromCountry"] == "US"


def test_inbound_mms_is_media_with_body_as_text() -> None:
    [message] = channel().parse(FORM, fixture("inbound_mms")).messages
    assert (message.kind, message.text) == ("media", "Here is my roof")
    assert message.media is not None
    assert (message.media["type"], message.media["mime_type"]) == ("image", "image/jpeg")
    assert message.media["url"].endswith("/Media/ME0a1b2c3d4e5f60718293a4b5c6d7e8f")
    assert [item["mime_type"] for item in message.media["items"]] == ["image/jpeg", "image/png"]


def test_numbers_are_normalised_to_e164() -> None:
    body = urlencode({"MessageSid": "SM2", "From": "4155552671", "To": "+1 (501) 712-2661", "Body": "hi"})
    [message] = channel(default_region="US").parse(FORM, body.encode()).messages
    assert (message.sender, message.recipient) == (LEAD, OUR_NUMBER)
    assert normalize_number("+33 6 12 34 56 78") == "+33612345678"
    assert normalize_number("06 12 34 56 78", default_region="FR") == "+33612345678"
    assert normalize_number(" 40404 ") == "40404"  # a short code is kept as it is
    assert normalize_number("") == ""


def test_advanced_opt_out_verdict_is_kept() -> None:
    body = urlencode(
        {"MessageSid": "SM3", "From": LEAD, "To": OUR_NUMBER, "Body": "STOP", "OptOutType": "STOP"}
    )
    [message] = channel().parse(FORM, body.encode()).messages
    assert message.metadata["OptOutType"] == "STOP"


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (b'{"MessageSid": "SM1", "From": "+14155552671"}', FORM, "form-encoded"),
        (b'{"MessageSid": "SM1"}', {"content-type": "application/json"}, "content type"),
        (urlencode({"From": LEAD, "Body": "hi"}).encode(), FORM, "MessageSid"),
        (urlencode({"MessageSid": "SM1", "Body": "hi"}).encode(), FORM, "From"),
        (urlencode({"MessageSid": "SM1", "From": LEAD, "NumMedia": "two"}).encode(), FORM, "NumMedia"),
        (urlencode({"MessageSid": "SM1", "From": "whatsapp:" + LEAD}).encode(), FORM, "not an SMS"),
        (b"MessageSid=SM1&From=%FF%FE", FORM, "UTF-8"),
        (b"MessageSid=SM1&From=\xff", FORM, "UTF-8"),
        (urlencode({"MessageSid": "SM1", "From": LEAD}).encode(), {**FORM, EVENT_HEADER: "voice"}, "event"),
    ],
    ids=[
        "json",
        "json-type",
        "no-sid",
        "no-from",
        "num-media",
        "whatsapp",
        "bad-escape",
        "bad-bytes",
        "event",
    ],
)
def test_malformed_bodies_are_refused_with_the_reason(
    body: bytes, headers: dict[str, str], reason: str
) -> None:
    with pytest.raises(PayloadError, match=reason):
        channel().parse(headers, body)


# --------------------------------------------------------------------------- statuses


def test_delivered_status() -> None:
    parsed = channel().parse({**FORM, EVENT_HEADER: "status"}, fixture("status_delivered"))
    assert parsed.messages == []
    [status] = parsed.statuses
    assert status.provider_message_id == "SM9a8b7c6d5e4f30211f2e3d4c5b6a7980"
    assert (status.status, status.sender, status.recipient) == ("delivered", OUR_NUMBER, LEAD)
    assert status.error_code is None


def test_undelivered_30007_is_failed_with_its_code() -> None:
    [status] = channel().parse({**FORM, EVENT_HEADER: "status"}, fixture("status_undelivered_30007")).statuses
    assert (status.status, status.error_code) == ("failed", "30007")
    assert status.error_title == ERROR_TITLES["30007"]


def test_unreachable_handset_is_undeliverable_with_twilios_message() -> None:
    [status] = channel().parse({**FORM, EVENT_HEADER: "status"}, fixture("status_undelivered_30003")).statuses
    assert (status.status, status.error_code) == ("undeliverable", "30003")
    assert status.error_title == "Unreachable destination handset"


@pytest.mark.parametrize(
    ("twilio_status", "ours"),
    [("queued", "queued"), ("sending", "queued"), ("sent", "sent"), ("read", "read"), ("failed", "failed")],
)
def test_status_values(twilio_status: str, ours: str) -> None:
    body = urlencode({"MessageSid": "SM4", "MessageStatus": twilio_status, "From": OUR_NUMBER, "To": LEAD})
    [status] = channel().parse({**FORM, EVENT_HEADER: "status"}, body.encode()).statuses
    assert status.status == ours


def test_unknown_and_inbound_statuses_yield_nothing() -> None:
    for value in ("partially_delivered", "received"):
        body = urlencode({"MessageSid": "SM5", "MessageStatus": value, "From": OUR_NUMBER}).encode()
        assert channel().parse({**FORM, EVENT_HEADER: "status"}, body).statuses == []


def test_status_without_message_status_is_malformed() -> None:
    body = urlencode({"MessageSid": "SM6", "From": OUR_NUMBER}).encode()
    with pytest.raises(PayloadError, match="MessageStatus"):
        channel().parse({**FORM, EVENT_HEADER: "status"}, body)


def test_without_the_hint_the_body_decides() -> None:
    assert len(channel().parse(FORM, fixture("status_delivered")).statuses) == 1
    assert len(channel().parse(FORM, fixture("inbound_sms")).messages) == 1


class _MultiForm(dict[str, list[str]]):
    """Form fields with every value of a repeated name, as Twilio signs them."""

    def getlist(self, name: str) -> list[str]:
        return self[name]


def test_verify_reuses_the_fields_parse_read_from_the_same_bytes_only() -> None:
    """parse() then verify() of one body (the pipeline's order) parse the form once; the answer is
    the validator's, repeated fields included, and other bytes are never checked against it."""
    fields = [("MessageSid", "SM1"), ("From", LEAD), ("To", OUR_NUMBER), ("Body", "b"), ("Body", "a")]
    body = urlencode(fields).encode()
    form = _MultiForm()
    for name, value in fields:
        form.setdefault(name, []).append(value)
    headers = {**FORM, "x-twilio-signature": RequestValidator(AUTH_TOKEN).compute_signature(URL, form)}
    sms = channel()
    sms.verify(headers, body, url=URL)  # nothing parsed yet: the body's own fields
    inbound = {**headers, EVENT_HEADER: "inbound"}
    assert sms.parse(inbound, body).messages[0].text == "a"  # the last value wins in the message
    sms.verify(headers, body, url=URL)  # the fields parse() read
    tampered = body.replace(b"Body=a", b"Body=c")
    with pytest.raises(SignatureError):
        sms.verify(headers, tampered, url=URL)
    sms.parse(inbound, tampered)
    with pytest.raises(SignatureError):
        sms.verify(headers, tampered, url=URL)


@pytest.mark.parametrize("key", ["bodySHA256", "body%53HA256"])
def test_body_hash_urls_are_checked_by_the_validator(key: str) -> None:
    """A JSON webhook signs the URL, whose ``bodySHA256`` (plain or percent-encoded) is the hash of
    the body: the validator's answer, for the body and for a tampered one."""
    import hashlib

    body = b'{"MessageSid": "SM1"}'
    url = f"{URL}?{key}={hashlib.sha256(body).hexdigest()}"
    headers = {"x-twilio-signature": RequestValidator(AUTH_TOKEN).compute_signature(url, {})}
    assert RequestValidator(AUTH_TOKEN).validate(url, body.decode(), headers["x-twilio-signature"])
    channel().verify(headers, body, url=url)
    with pytest.raises(SignatureError):
        channel().verify(headers, body + b" ", url=url)
