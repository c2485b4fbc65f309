"""Every channel's parser is total and every signature check raises only ``SignatureError``.

Property tests (hypothesis) feed each channel arbitrary JSON, forms and MIME, both from scratch and as
mutations of the real fixtures, and check the contract: ``parse`` returns a ``ParsedWebhook`` whose
contents can be stored (strict UTF-8 JSON: no lone surrogate, no NaN, bounded text) or raises the
channel's ``PayloadError``; nothing else. Regression tests pin the inputs that used to crash the
service (issue 16): deep nesting, a 5,000-digit number, lone surrogates, out-of-range timestamps,
``"phones": 5``, malformed email headers, CR/LF in a SendGrid ``from``, multipart nested 1,000 deep.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.base import Channel, ParsedWebhook, PayloadError, SignatureError
from channels.email import INBOUND_KEY_HEADER, EmailChannel
from channels.sms import MAX_MEDIA, TwilioSmsChannel
from channels.webchat import WebChatChannel
from channels.whatsapp import WhatsAppChannel

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
WHATSAPP_FIXTURES = sorted((FIXTURES / "whatsapp").glob("*.json"))
TWILIO_FIXTURES = sorted((FIXTURES / "twilio").glob("*.form"))
EMAIL_FIXTURES = sorted((FIXTURES / "email").glob("*.eml"))
FORM = {"content-type": "application/x-www-form-urlencoded"}
RFC822 = {"content-type": "message/rfc822"}
WEBCHAT = {"x-session-id": "session-1", "x-widget-id": "widget-1"}
SAFETY_NET_LOGGER = logging.getLogger("channels.base")

#: A few seconds per property at most: a bounded number of examples, each under a deadline.
FAST = settings(
    max_examples=120,
    deadline=timedelta(milliseconds=1500),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def whatsapp() -> WhatsAppChannel:
    return WhatsAppChannel(access_token="t", phone_number_id="123", app_secret="app-secret")


def sms() -> TwilioSmsChannel:
    return TwilioSmsChannel(
        account_sid="AC" + "a" * 32, auth_token="tok", from_number="+15017122661", public_base_url=""
    )


def email_channel() -> EmailChannel:
    return EmailChannel(host="127.0.0.1", from_address="hello@sunnywatt.example", inbound_secret="k")


def assert_storable(channel: Channel, parsed: ParsedWebhook) -> None:
    """What the app stores: strict JSON, UTF-8 encodable, texts within the channel's bound."""
    data = dataclasses.asdict(parsed)
    json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8")
    for message in parsed.messages:
        assert len(message.text) <= channel.traits.max_inbound_chars
        assert isinstance(message.timestamp, float) and message.timestamp < 1e13


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def parse_or_payload_error(channel: Channel, headers: dict[str, str], body: bytes) -> ParsedWebhook | None:
    """Parse; a ``PayloadError`` must come from the parser's own checks, not from the safety net of
    ``guarded_parse`` (which logs a warning when it turns an unexpected exception into one)."""
    records = _Records()
    SAFETY_NET_LOGGER.addHandler(records)
    try:
        parsed = channel.parse(headers, body)
    except PayloadError:
        return None
    finally:
        SAFETY_NET_LOGGER.removeHandler(records)
        assert not records.records, records.records[0].getMessage()
    assert_storable(channel, parsed)
    return parsed


# ---------------------------------------------------------------------------- strategies

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["", "text", "image", "contacts", "1700000000", "+33612345678", "\ud800", "messages"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            out.extend(_paths(child, (*prefix, key)))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            out.extend(_paths(child, (*prefix, index)))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


@st.composite
def mutated_json(draw: st.DrawFn, fixtures: list[Path]) -> bytes:
    """A real fixture with one to three nodes replaced by arbitrary JSON (lone surrogates included)."""
    doc = json.loads(draw(st.sampled_from(fixtures)).read_text(encoding="utf-8"))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        doc = _replace(copy.deepcopy(doc), draw(st.sampled_from(paths)), draw(json_values))
    return json.dumps(doc).encode()


TWILIO_FIELDS = [
    "MessageSid",
    "SmsSid",
    "From",
    "To",
    "Body",
    "NumMedia",
    "MediaUrl0",
    "MediaContentType0",
    "MediaUrl9",
    "MessageStatus",
    "SmsStatus",
    "ErrorCode",
    "ErrorMessage",
    "ProfileName",
    "OptOutType",
]
form_values = st.text(max_size=40) | st.sampled_from(
    ["+14155552671", "10" + "0" * 30, "-1", "1" * 5000, "delivered", "failed", "received", "whatsapp:+1"]
)


@st.composite
def twilio_forms(draw: st.DrawFn) -> bytes:
    fields = draw(
        st.dictionaries(st.sampled_from(TWILIO_FIELDS) | st.text(max_size=8), form_values, max_size=10)
    )
    if draw(st.booleans()):
        fields.setdefault("MessageSid", "SM" + "1" * 32)
        fields.setdefault("From", "+14155552671")
    return urlencode(fields).encode("utf-8", "surrogatepass")


header_names = st.sampled_from(
    [
        "From",
        "To",
        "Cc",
        "Subject",
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Auto-Submitted",
        "Precedence",
        "Content-Type",
        "Content-Transfer-Encoding",
        "MIME-Version",
        "Delivered-To",
    ]
)
header_values = st.text(max_size=60).map(lambda t: t.replace("\r", " ").replace("\n", " ")) | st.sampled_from(
    [
        "=?utf-8?q?=E2=82?=",
        '"unterminated <a@b',
        "<>",
        "@",
        ":;,<>",
        "Mon, 32 Foo 99999 99:99:99 +9999",
        "multipart/mixed; boundary=",
        'multipart/mixed; boundary="b"',
        "text/html; charset=x-unknown",
        "=?x-unknown?b?AAAA?=",
        "a@b.c (comment",
        "Fri, 31 Dec 9999 23:59:59 -1200",
    ]
)


@st.composite
def mime_messages(draw: st.DrawFn) -> bytes:
    """RFC 5322-shaped bytes: arbitrary header fields, then a body of text, HTML or multipart."""
    lines = [
        f"{name}: {value}"
        for name, value in draw(st.lists(st.tuples(header_names, header_values), max_size=8))
    ]
    if draw(st.booleans()):
        lines.insert(0, "From: Lead <lead@example.com>")
    body = draw(
        st.text(max_size=200)
        | st.sampled_from(
            [
                "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>x<blockquote>q",
                "<html><div id=divRplyFwdMsg>De : x</div><blockquote>",
                "> quoted\n> only",
                "Thanks\n-- \nsig",
            ]
        )
    )
    raw = "\r\n".join(lines) + "\r\n\r\n" + body
    return raw.encode("utf-8", "surrogatepass")


@st.composite
def mutated_bytes(draw: st.DrawFn, fixtures: list[Path]) -> bytes:
    """A real fixture with a random slice replaced by random bytes."""
    data = draw(st.sampled_from(fixtures)).read_bytes()
    start = draw(st.integers(0, len(data)))
    end = draw(st.integers(start, min(len(data), start + 200)))
    return data[:start] + draw(st.binary(max_size=60)) + data[end:]


@st.composite
def sendgrid_forms(draw: st.DrawFn) -> tuple[str, bytes]:
    boundary = "xYzZY"
    names = st.sampled_from(
        ["from", "to", "subject", "text", "html", "headers", "envelope", "charsets", "email"]
    )
    fields = draw(st.dictionaries(names, st.text(max_size=80) | header_values, max_size=7))
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n')
    body = "".join(parts) + f"--{boundary}--\r\n"
    return f"multipart/form-data; boundary={boundary}", body.encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------------- properties


@FAST
@given(
    body=st.one_of(
        mutated_json(WHATSAPP_FIXTURES), st.binary(max_size=200), json_values.map(json.dumps).map(str.encode)
    )
)
def test_whatsapp_parse_is_total(body: bytes) -> None:
    parse_or_payload_error(whatsapp(), {}, body)


@FAST
@given(body=st.one_of(twilio_forms(), mutated_bytes(TWILIO_FIXTURES), st.binary(max_size=200)))
def test_sms_parse_is_total(body: bytes) -> None:
    parse_or_payload_error(sms(), FORM, body)


@FAST
@given(body=st.one_of(mime_messages(), mutated_bytes(EMAIL_FIXTURES), st.binary(max_size=300)))
def test_email_parse_is_total_over_mime(body: bytes) -> None:
    parse_or_payload_error(email_channel(), RFC822, body)


@FAST
@given(form=sendgrid_forms())
def test_email_parse_is_total_over_sendgrid_forms(form: tuple[str, bytes]) -> None:
    content_type, body = form
    parse_or_payload_error(email_channel(), {"content-type": content_type}, body)


@FAST
@given(
    frame=st.one_of(
        json_values.map(json.dumps).map(str.encode),
        st.fixed_dictionaries(
            {"id": json_values, "text": json_values}, optional={"choice_id": json_values, "name": json_values}
        )
        .map(json.dumps)
        .map(str.encode),
        st.binary(max_size=100),
    )
)
def test_webchat_parse_is_total(frame: bytes) -> None:
    parse_or_payload_error(WebChatChannel(), WEBCHAT, frame)


headers_strategy = st.dictionaries(
    st.sampled_from(
        ["x-hub-signature-256", "x-twilio-signature", "authorization", INBOUND_KEY_HEADER, "content-type"]
    )
    | st.text(max_size=10),
    st.text(max_size=80)
    | st.sampled_from(["sha256=" + "a" * 64, "Basic !!!", "Basic " + "\ud800", "sha256=\ud800"]),
    max_size=4,
)


@FAST
@given(
    headers=headers_strategy, body=st.binary(max_size=200), url=st.text(max_size=60) | st.just("http://[::1")
)
def test_verify_raises_only_signature_error(headers: dict[str, str], body: bytes, url: str) -> None:
    for channel in (whatsapp(), sms(), email_channel()):
        with pytest.raises(SignatureError):  # never a match by chance, and never another error
            channel.verify(headers, body, url=url)


# ---------------------------------------------------------------------------- regressions (issue 16)


def whatsapp_text(body_text: str = "hi", **message: Any) -> dict[str, Any]:
    msg = {
        "from": "33612345678",
        "id": "wamid.1",
        "timestamp": "1700000000",
        "type": "text",
        "text": {"body": body_text},
    }
    msg.update(message)
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {"metadata": {"phone_number_id": "123"}, "messages": [msg]},
                    }
                ],
            }
        ],
    }


def test_deeply_nested_json_is_a_payload_error_on_every_json_channel() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(PayloadError):
        whatsapp().parse({}, deep)
    with pytest.raises(PayloadError):
        WebChatChannel().parse(WEBCHAT, b'{"id": "1", "text": ' + b"[" * 10_000 + b"]" * 10_000 + b"}")


def test_nesting_under_the_recursion_limit_is_kept_bounded() -> None:
    nested: Any = "x"
    for _ in range(500):
        nested = [nested]
    [message] = whatsapp().parse({}, json.dumps(whatsapp_text(referral=nested)).encode()).messages
    depth, node = 0, message.metadata["referral"]
    while isinstance(node, list):
        depth, node = depth + 1, node[0]
    assert depth < 10  # metadata is cut to a few levels, so the store never recurses 500 deep


def test_a_5000_digit_number_is_a_payload_error() -> None:
    body = json.dumps(whatsapp_text()).replace('"1700000000"', "1" * 5000).encode()
    with pytest.raises(PayloadError):
        whatsapp().parse({}, body)
    with pytest.raises(PayloadError):
        WebChatChannel().parse(WEBCHAT, b'{"id": "1", "text": "hi", "n": ' + b"9" * 5000 + b"}")


def test_lone_surrogates_are_replaced_in_every_text() -> None:
    body = json.dumps(
        whatsapp_text("ok \ud800 then \udfff", contacts=[{"profile": {"name": "A\udc80"}}])
    ).encode()
    [message] = whatsapp().parse({}, body).messages
    assert message.text == "ok \ufffd then \ufffd"
    message.text.encode("utf-8")
    json.dumps(dataclasses.asdict(message), ensure_ascii=False).encode("utf-8")
    [chat] = WebChatChannel().parse(WEBCHAT, b'{"id": "1", "text": "a\\ud83d b"}').messages
    assert chat.text == "a\ufffd b"


@pytest.mark.parametrize("timestamp", ["1" * 30, 10**20, "-5", "99999999999999", 1.5, [1], "1e10"])
def test_out_of_range_or_odd_timestamps_are_payload_errors(timestamp: Any) -> None:
    body = json.dumps(whatsapp_text(timestamp=timestamp)).encode()
    with pytest.raises(PayloadError, match="timestamp"):
        whatsapp().parse({}, body)


def test_contacts_with_phones_5_give_a_summary() -> None:
    contacts = [
        {"name": {"formatted_name": "Lucía"}, "phones": 5},
        {"name": 7, "phones": [{"phone": {"x": 1}}]},
    ]
    body = json.dumps(whatsapp_text(type="contacts", contacts=contacts)).encode()
    [message] = whatsapp().parse({}, body).messages
    assert message.kind == "contacts"
    assert message.text == "Shared contacts: Lucía; unnamed"


def test_malformed_email_headers_still_give_the_message() -> None:
    raw = (
        b'From: Lead <lead@example.com>\r\nTo: =?utf-8?q?\r\nCc: "unterminated <a@b\r\n'
        b"Date: Mon, 32 Foo 99999 99:99:99 +9999\r\nReferences: <<<>>>\r\nSubject: =?x-unknown?b?AAAA?=\r\n\r\n"
        b"Thursday works.\r\n"
    )
    [message] = email_channel().parse(RFC822, raw).messages
    assert message.sender == "lead@example.com" and message.text == "Thursday works."
    assert message.timestamp == 0.0


def test_cr_lf_in_a_sendgrid_from_is_read_as_one_line() -> None:
    boundary = "xYzZY"
    fields = {
        "from": "Lead <lead@example.com>\r\nBcc: victim@example.com",
        "subject": "Hi\r\nthere",
        "text": "Yes.",
    }
    body = (
        "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
            for k, v in fields.items()
        )
        + f"--{boundary}--\r\n"
    )
    [message] = (
        email_channel()
        .parse({"content-type": f"multipart/form-data; boundary={boundary}"}, body.encode())
        .messages
    )
    assert message.sender == "lead@example.com"
    assert message.metadata["subject"] == "Hi there" and message.text == "Yes."


def deep_multipart(depth: int) -> bytes:
    head = b"From: Lead <lead@example.com>\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
    body = b"".join(
        f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n".encode() for i in range(depth)
    )
    body += b"Content-Type: text/plain\r\n\r\nhi\r\n"
    body += b"".join(f"--b{i}--\r\n".encode() for i in reversed(range(depth)))
    return head + body


def test_multipart_nested_1000_deep_is_kept_headers_only_and_fast() -> None:
    started = time.perf_counter()
    [message] = email_channel().parse(RFC822, deep_multipart(1000)).messages
    assert time.perf_counter() - started < 1.0
    assert message.sender == "lead@example.com" and message.kind == "unsupported"
    assert "MIME" in message.metadata["body_unreadable"]
    # a normal nesting (a forwarded mail with attachments) is read as usual
    [normal] = email_channel().parse(RFC822, deep_multipart(5)).messages
    assert normal.text == "hi" and normal.kind == "text"


def test_verify_survives_odd_inputs() -> None:
    odd = [
        ({"x-hub-signature-256": "sha256=" + "é" * 64}, b"{}", ""),
        ({"x-twilio-signature": "abc"}, b"\xff\xfe", "http://[::1"),
        ({"authorization": "Basic \ud800", INBOUND_KEY_HEADER: "\udfff"}, b"", "https://x/?key=%ff"),
    ]
    for headers, body, url in odd:
        for channel in (whatsapp(), sms(), email_channel()):
            with pytest.raises(SignatureError):
                channel.verify(headers, body, url=url)


def test_twilio_num_media_of_10_to_the_30_reads_at_most_10_media_at_once() -> None:
    fields = {"MessageSid": "MM1", "From": "+14155552671", "To": "+15017122661", "NumMedia": "1" + "0" * 30}
    fields.update({f"MediaUrl{i}": f"https://api.twilio.com/m/{i}" for i in range(12)})
    started = time.perf_counter()
    [message] = sms().parse(FORM, urlencode(fields).encode()).messages
    assert time.perf_counter() - started < 0.5
    assert message.media is not None and len(message.media["items"]) == MAX_MEDIA
    [huge] = sms().parse(FORM, urlencode({**fields, "NumMedia": "1" * 5000}).encode()).messages
    assert huge.media is not None and len(huge.media["items"]) == MAX_MEDIA
    for bad in ("-1", "1e3", "٣"):
        with pytest.raises(PayloadError, match="NumMedia"):
            sms().parse(FORM, urlencode({**fields, "NumMedia": bad}).encode())


def test_basic_auth_garbage_is_a_signature_error() -> None:
    header = "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()
    with pytest.raises(SignatureError):
        email_channel().verify({"authorization": header}, b"", url="")
