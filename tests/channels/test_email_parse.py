"""EmailChannel.verify/parse: raw RFC 5322 messages, SendGrid Inbound Parse forms, auto-replies, bounces."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from channels.base import PayloadError, SignatureError
from channels.email import INBOUND_KEY_HEADER, EmailChannel
from channels.email_parsing import reply_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "email"
INBOUND_SECRET = "inbound-secret-for-tests"


def raw(name: str) -> bytes:
    return (FIXTURES / f"{name}.eml").read_bytes()


@pytest.fixture
def channel() -> EmailChannel:
    return EmailChannel(
        host="127.0.0.1", port=2525, from_address="hello@sunnywatt.example", inbound_secret=INBOUND_SECRET
    )


RFC822 = {"content-type": "message/rfc822"}


@pytest.mark.parametrize(
    ("fixture", "expected", "quoted"),
    [
        ("gmail_reply_en", "Yes, we own the house. The roof faces south.", "Do you own your home"),
        ("gmail_reply_fr", "Oui, nous sommes propriétaires depuis 2019.", "Êtes-vous propriétaire"),
        ("outlook_reply_en", "About 150 dollars a month.", "monthly electricity bill"),
        ("outlook_reply_fr", "Environ 150 euros par mois.", "montant moyen"),
        ("outlook_reply_fr_origine", "Plutôt en mars, merci.", "installer les panneaux"),
        ("signature_dashdash", "Tuesday afternoon works for me.", "Builder & Co"),
    ],
)
def test_only_the_new_part_reaches_the_text(
    channel: EmailChannel, fixture: str, expected: str, quoted: str
) -> None:
    [message] = channel.parse(RFC822, raw(fixture)).messages
    assert message.text == expected
    assert quoted not in message.text
    for signature in ("Thanks,", "Cordialement", "Envoyé de mon iPhone", "-- "):
        assert signature not in message.text
    assert message.kind == "text"


def test_fields_and_threading_metadata(channel: EmailChannel) -> None:
    [message] = channel.parse({"content-type": "text/plain"}, raw("gmail_reply_en")).messages
    assert message.channel == "email"
    assert message.sender == "john.smith@example.com"  # lower-cased
    assert message.recipient == "hello@sunnywatt.example"
    assert message.contact_name == "John Smith"
    assert message.provider_message_id == "CAF=john-reply-1@mail.gmail.com"
    assert message.reply_to == "bot-1@sunnywatt.example"
    assert message.timestamp == 1762164902.0
    assert message.metadata == {
        "message_id": "<CAF=john-reply-1@mail.gmail.com>",
        "in_reply_to": "<bot-1@sunnywatt.example>",
        "references": ["<root-0@sunnywatt.example>", "<bot-1@sunnywatt.example>"],
        "subject": "Re: Your solar project",
    }


def test_encoded_display_name_is_decoded(channel: EmailChannel) -> None:
    [message] = channel.parse(RFC822, raw("gmail_reply_fr")).messages
    assert message.contact_name == "Camille Dupré"
    assert message.metadata["subject"] == "Re: Votre projet solaire"


def test_html_only_mail_becomes_text_without_quote_or_script(channel: EmailChannel) -> None:
    [message] = channel.parse(RFC822, raw("html_only")).messages
    assert "Do you install batteries & inverters?" in message.text
    assert message.text.startswith("Hello,")
    for leftover in ("<", "alert", "color", "Thanks for your interest", "wrote:"):
        assert leftover not in message.text


def test_missing_message_id_uses_a_stable_hash(channel: EmailChannel) -> None:
    first = channel.parse(RFC822, raw("no_message_id")).messages[0]
    again = channel.parse(RFC822, raw("no_message_id")).messages[0]
    other = channel.parse(RFC822, raw("no_message_id").replace(b"anyone", b"someone")).messages[0]
    assert first.provider_message_id.startswith("sha256-")
    assert first.provider_message_id == again.provider_message_id != other.provider_message_id
    assert first.metadata["message_id"] is None


@pytest.mark.parametrize(
    "fixture",
    [
        "autoreply_auto_submitted",
        "autoreply_outlook_fr",
        "autoreply_x_autoreply",
        "autoreply_precedence",
        "autoreply_out_of_office_subject",
    ],
)
def test_automatic_replies_are_flagged(channel: EmailChannel, fixture: str) -> None:
    [message] = channel.parse(RFC822, raw(fixture)).messages
    assert message.kind == "auto_reply"
    assert message.metadata["auto_reply_reason"]


@pytest.mark.parametrize(
    ("header", "auto"),
    [
        ("Auto-Submitted: no", False),
        ("Auto-Submitted: auto-generated", True),
        ("Precedence: list", True),
        ("Precedence: bulk", True),
        ("Precedence: first-class", False),
        ("X-Autorespond: yes", True),
        ("Subject: Automatic reply: hello", True),
        ("Subject: RE: Absence du 3 au 10 novembre", True),
        ("Subject: Re: Absolutely, let's talk", False),
        ("Subject: Out of the office until Monday", True),
    ],
)
def test_auto_reply_header_variants(channel: EmailChannel, header: str, auto: bool) -> None:
    base = raw("gmail_reply_en")
    if header.startswith("Subject:"):
        base = base.replace(b"Subject: Re: Your solar project", header.encode())
    else:
        base = header.encode() + b"\r\n" + base
    [message] = channel.parse(RFC822, base).messages
    assert (message.kind == "auto_reply") is auto


@pytest.mark.parametrize(
    ("fixture", "original", "recipient", "code"),
    [
        ("bounce_dsn", "original-123@sunnywatt.example", "nobody@example.com", "5.1.1"),
        ("bounce_dsn_rfc822", "original-456@sunnywatt.example", "gone@contoso.example", "5.2.1"),
    ],
)
def test_dsn_bounce_marks_the_original_message_undeliverable(
    channel: EmailChannel, fixture: str, original: str, recipient: str, code: str
) -> None:
    parsed = channel.parse(RFC822, raw(fixture))
    assert parsed.messages == []
    [status] = parsed.statuses
    assert status.status == "undeliverable"
    assert status.provider_message_id == original
    assert status.recipient == recipient
    assert status.error_code == code
    assert status.sender == "hello@sunnywatt.example"


def test_delayed_dsn_is_not_a_failure(channel: EmailChannel) -> None:
    parsed = channel.parse(RFC822, raw("dsn_delayed"))
    assert parsed.statuses == [] and parsed.messages == []


def test_bounce_without_original_id_is_recorded_as_bounce(channel: EmailChannel) -> None:
    body = (
        b"From: MAILER-DAEMON@mx.example\r\nTo: hello@sunnywatt.example\r\nSubject: failure notice\r\n"
        b"Message-ID: <qmail-1@mx.example>\r\n\r\nSorry, I could not deliver your message.\r\n"
    )
    [message] = channel.parse(RFC822, body).messages
    assert message.kind == "bounce"


@pytest.mark.parametrize("body", [b"", b"   \r\n", b"no header here, just text"])
def test_malformed_bodies(channel: EmailChannel, body: bytes) -> None:
    with pytest.raises(PayloadError):
        channel.parse(RFC822, body)


# ---------------------------------------------------------------------------- SendGrid Inbound Parse


def form(fields: dict[str, tuple[str, bytes]]) -> tuple[dict[str, str], bytes]:
    """A multipart/form-data body like SendGrid's (name -> (content-type, bytes))."""
    boundary = "xYzZY" + uuid.uuid4().hex
    chunks = []
    for name, (ctype, data) in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
        if ctype:
            head += f"Content-Type: {ctype}\r\n"
        chunks.append(head.encode() + b"\r\n" + data + b"\r\n")
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return {"content-type": f"multipart/form-data; boundary={boundary}"}, body


def test_sendgrid_default_fields(channel: EmailChannel) -> None:
    headers_block = (
        "Received: by mx0.sendgrid.net\nMessage-ID: <sg-1@mail.example.com>\n"
        "In-Reply-To: <bot-9@sunnywatt.example>\nReferences: <bot-9@sunnywatt.example>\n"
        "From: Élodie <Elodie@Example.com>\nTo: hello@sunnywatt.example\nSubject: Re: Devis\n"
        "Date: Mon, 3 Nov 2025 10:15:02 +0000\n"
    )
    headers, body = form(
        {
            "headers": ("", headers_block.encode()),
            "from": ("", "Élodie <Elodie@Example.com>".encode()),
            "to": ("", b"hello@sunnywatt.example"),
            "subject": ("", b"Re: Devis"),
            "text": (
                "",
                "Oui, mardi.\n\nLe lun. 3 nov. 2025 à 10:02, SunnyWatt a écrit :\n> Mardi ?\n".encode(),
            ),
            "html": ("", b"<p>Oui, mardi.</p>"),
            "envelope": ("", b'{"to":["hello@sunnywatt.example"],"from":"elodie@example.com"}'),
            "charsets": (
                "",
                b'{"to":"UTF-8","html":"UTF-8","subject":"UTF-8","from":"UTF-8","text":"UTF-8"}',
            ),
            "SPF": ("", b"pass"),
        }
    )
    [message] = channel.parse(headers, body).messages
    assert message.sender == "elodie@example.com"
    assert message.contact_name == "Élodie"
    assert message.recipient == "hello@sunnywatt.example"
    assert message.provider_message_id == "sg-1@mail.example.com"
    assert message.text == "Oui, mardi."
    assert message.metadata["references"] == ["<bot-9@sunnywatt.example>"]


def test_sendgrid_html_only_and_latin1_charset(channel: EmailChannel) -> None:
    headers, body = form(
        {
            "headers": (
                "",
                b"Message-ID: <sg-2@x.example>\nFrom: a@x.example\nTo: hello@sunnywatt.example\n",
            ),
            "from": ("", b"a@x.example"),
            "html": ("", "<p>Très bien</p>".encode("latin-1")),
            "charsets": ("", b'{"html":"iso-8859-1"}'),
        }
    )
    [message] = channel.parse(headers, body).messages
    assert message.text == "Très bien"


def test_sendgrid_raw_mime_option(channel: EmailChannel) -> None:
    headers, body = form(
        {"email": ("", raw("outlook_reply_fr")), "envelope": ("", b'{"to":["inbox@sunnywatt.example"]}')}
    )
    [message] = channel.parse(headers, body).messages
    assert message.text == "Environ 150 euros par mois."
    assert message.recipient == "inbox@sunnywatt.example"


def test_sendgrid_raw_mime_bounce(channel: EmailChannel) -> None:
    headers, body = form({"email": ("", raw("bounce_dsn"))})
    [status] = channel.parse(headers, body).statuses
    assert status.provider_message_id == "original-123@sunnywatt.example"


def test_sendgrid_form_without_sender_is_rejected(channel: EmailChannel) -> None:
    headers, body = form({"text": ("", b"hello")})
    with pytest.raises(PayloadError):
        channel.parse(headers, body)


# ---------------------------------------------------------------------------- verify


def test_verify_accepts_the_key_in_url_header_or_basic_auth(channel: EmailChannel) -> None:
    channel.verify({}, b"", url=f"https://lw.example/api/webhooks/email/inbound?key={INBOUND_SECRET}")
    channel.verify({INBOUND_KEY_HEADER: INBOUND_SECRET}, b"")
    basic = base64.b64encode(f"sendgrid:{INBOUND_SECRET}".encode()).decode()
    channel.verify({"Authorization": f"Basic {basic}"}, b"")


@pytest.mark.parametrize(
    ("headers", "url"),
    [
        ({}, ""),
        ({}, "https://lw.example/api/webhooks/email/inbound?key=wrong"),
        ({INBOUND_KEY_HEADER: INBOUND_SECRET + "x"}, ""),
        ({"authorization": "Basic !!notbase64"}, ""),
        ({"authorization": "Bearer " + INBOUND_SECRET}, ""),
    ],
)
def test_verify_refuses_missing_or_wrong_keys(
    channel: EmailChannel, headers: dict[str, str], url: str
) -> None:
    with pytest.raises(SignatureError):
        channel.verify(headers, b"", url=url)


def test_verify_refuses_everything_without_a_configured_secret() -> None:
    channel = EmailChannel(host="127.0.0.1", from_address="hello@sunnywatt.example")
    with pytest.raises(SignatureError):
        channel.verify({INBOUND_KEY_HEADER: ""}, b"", url="https://x/?key=")


def test_reply_text_keeps_a_message_that_is_only_text() -> None:
    assert reply_text("Just a short question?") == "Just a short question?"
    assert reply_text("> only quoted\n> lines\n") == ""
