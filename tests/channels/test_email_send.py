"""EmailChannel.send against a real SMTP server (aiosmtpd) on 127.0.0.1, and unsubscribe tokens."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from channels.base import Choice, OutboundMessage, SendError
from channels.email import (
    EmailChannel,
    UnsubscribeTokenError,
    make_unsubscribe_token,
    read_unsubscribe_token,
    text_to_html,
)
from tests.support.ports import free_port
from tests.support.smtp_server import SmtpRecorder, running_smtp_server

SECRET = "unsub-secret-for-tests"
PASSWORD = "smtp-pass-never-logged"


@pytest.fixture
def smtp() -> Iterator[tuple[int, SmtpRecorder]]:
    with running_smtp_server() as (controller, recorder):
        yield controller.port, recorder


def make_channel(port: int, **overrides: object) -> EmailChannel:
    options: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "from_address": "SunnyWatt <hello@sunnywatt.example>",
        "starttls": False,
        "unsubscribe_base_url": "https://leadwarm.example/",
        "unsubscribe_secret": SECRET,
        "tenant_id": "acme",
        "timeout_s": 5.0,
        **overrides,
    }
    return EmailChannel(**options)  # type: ignore[arg-type]


async def test_send_builds_threaded_multipart_message(smtp: tuple[int, SmtpRecorder]) -> None:
    port, recorder = smtp
    channel = make_channel(port)
    message = OutboundMessage(
        to="Jane.Doe@Example.com",
        text="Thanks Jane!\n\nDo you own <your> home?\nPick one & reply.",
        choices=(Choice(id="yes", title="Yes"), Choice(id="no", title="No")),
        reply_to="<lead-2@example.com>",
        metadata={
            "subject": "Solar quote",
            "references": ["<bot-1@sunnywatt.example>", "<lead-1@example.com>"],
        },
    )
    provider_id = await channel.send(message)

    [mail] = recorder.wait_for(1)
    assert mail.rcpt_tos == ["Jane.Doe@Example.com"]
    msg = mail.message
    assert msg["Message-ID"] == f"<{provider_id}>"
    assert provider_id.endswith("@sunnywatt.example")
    assert msg["In-Reply-To"] == "<lead-2@example.com>"
    assert msg["References"].split() == [
        "<bot-1@sunnywatt.example>",
        "<lead-1@example.com>",
        "<lead-2@example.com>",
    ]
    assert msg["Subject"] == "Re: Solar quote"
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert "1. Yes\n2. No" in plain.get_content().replace("\r\n", "\n")
    html_text = html.get_content().replace("\r\n", "\n")
    assert "&lt;your&gt;" in html_text and "&amp; reply" in html_text and "<your>" not in html_text
    assert html_text.count("<p>") == 3  # the message; the unsubscribe paragraph is styled

    # RFC 8058: an https URL in List-Unsubscribe plus the One-Click POST header.
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = msg["List-Unsubscribe"].strip("<>")
    assert url.startswith("https://leadwarm.example/api/unsubscribe/")
    token = urlsplit(url).path.rsplit("/", 1)[1]
    assert read_unsubscribe_token(SECRET, token) == ("acme", "jane.doe@example.com")


async def test_each_send_gets_a_new_message_id_and_subject_defaults(smtp: tuple[int, SmtpRecorder]) -> None:
    port, recorder = smtp
    channel = make_channel(port, unsubscribe_mailto="unsubscribe@sunnywatt.example", default_subject="Hello")
    first = await channel.send(OutboundMessage(to="a@example.com", text="one"))
    second = await channel.send(
        OutboundMessage(to="a@example.com", text="two", subject="Explicit", metadata={"tenant_id": "other"})
    )
    assert first != second
    mails = recorder.wait_for(2)
    assert [m.message["Subject"] for m in mails] == ["Hello", "Explicit"]
    assert mails[0].message["In-Reply-To"] is None and mails[0].message["References"] is None
    header = mails[1].message["List-Unsubscribe"]
    assert "<mailto:unsubscribe@sunnywatt.example?subject=unsubscribe>" in header
    token = header.split(">", 1)[0].strip("<").rsplit("/", 1)[1]
    assert read_unsubscribe_token(SECRET, token) == ("other", "a@example.com")


async def test_without_a_secret_no_unsubscribe_headers(smtp: tuple[int, SmtpRecorder]) -> None:
    port, recorder = smtp
    await make_channel(port, unsubscribe_secret="").send(OutboundMessage(to="a@example.com", text="hi"))
    [mail] = recorder.wait_for(1)
    assert mail.message["List-Unsubscribe"] is None and mail.message["List-Unsubscribe-Post"] is None


async def test_550_is_permanent_and_451_is_transient(smtp: tuple[int, SmtpRecorder]) -> None:
    port, recorder = smtp
    recorder.refuse["gone@example.com"] = "550 5.1.1 <gone@example.com>: Recipient address rejected"
    recorder.refuse["busy@example.com"] = "451 4.3.0 Try again later"
    channel = make_channel(port, user="", password=PASSWORD)
    with pytest.raises(SendError) as permanent:
        await channel.send(OutboundMessage(to="gone@example.com", text="hi"))
    assert permanent.value.retryable is False and permanent.value.code == "550"
    with pytest.raises(SendError) as transient:
        await channel.send(OutboundMessage(to="busy@example.com", text="hi"))
    assert transient.value.retryable is True and transient.value.code == "451"
    assert recorder.messages() == []
    for error in (permanent.value, transient.value):
        assert PASSWORD not in str(error)


async def test_connection_refused_is_retryable_and_never_shows_the_password() -> None:
    channel = make_channel(free_port(), user="bot", password=PASSWORD)
    with pytest.raises(SendError) as info:
        await channel.send(OutboundMessage(to="a@example.com", text="hi"))
    assert info.value.retryable is True
    assert PASSWORD not in str(info.value) and PASSWORD not in repr(channel)


async def test_not_an_address_is_permanent(smtp: tuple[int, SmtpRecorder]) -> None:
    port, _ = smtp
    with pytest.raises(SendError) as info:
        await make_channel(port).send(OutboundMessage(to="+33612345678", text="hi"))
    assert info.value.retryable is False


def test_tls_defaults_follow_the_port() -> None:
    assert make_channel(587, starttls=None).starttls is True
    implicit = make_channel(465, starttls=None)
    assert implicit.implicit_tls is True and implicit.starttls is False
    assert make_channel(2525, starttls=False).starttls is False


def test_unsubscribe_token_round_trip_and_tampering() -> None:
    token = make_unsubscribe_token(SECRET, "acme", " Jane@Example.com ")
    assert read_unsubscribe_token(SECRET, token) == ("acme", "jane@example.com")
    assert "=" not in token and "/" not in token and "+" not in token
    with pytest.raises(UnsubscribeTokenError):
        read_unsubscribe_token("another-secret", token)
    forged = (
        make_unsubscribe_token(SECRET, "acme", "someone@else.com").split(".")[0] + "." + token.split(".")[1]
    )
    with pytest.raises(UnsubscribeTokenError):
        read_unsubscribe_token(SECRET, forged)
    for bad in ("", "no-dot", ".", "abc.", "!!!.???"):
        with pytest.raises(UnsubscribeTokenError):
            read_unsubscribe_token(SECRET, bad)
    with pytest.raises(ValueError):
        make_unsubscribe_token("", "acme", "a@example.com")


def test_text_to_html_escapes_and_splits_paragraphs() -> None:
    html = text_to_html("a <b>\nline two\n\n\nsecond & last")
    assert "<p>a &lt;b&gt;<br>\nline two</p>" in html
    assert "<p>second &amp; last</p>" in html


async def test_list_unsubscribe_leaves_verbatim_and_a_mail_parser_finds_the_url(
    smtp: tuple[int, SmtpRecorder],
) -> None:
    """RFC 2369 / RFC 8058 on the wire: the headers are neither RFC 2047-encoded nor folded inside the
    URL (the stdlib SMTP policy did both for a long URL), and Python's email package reading the bytes
    the server received gets the URL back from the header; the link is also in both bodies."""
    port, recorder = smtp
    channel = make_channel(port, unsubscribe_mailto="unsubscribe@sunnywatt.example")
    tenant = "tenant-with-a-rather-long-identifier-" + "x" * 40
    address = "someone.with.a.long.address@subdomain.example.com"
    await channel.send(OutboundMessage(to=address, text="Hello", metadata={"tenant_id": tenant}))
    [mail] = recorder.wait_for(1)

    raw_lines = mail.raw.split(b"\r\n")
    [header_line] = [line for line in raw_lines if line.lower().startswith(b"list-unsubscribe:")]
    assert b"=?" not in header_line
    index = raw_lines.index(header_line)
    assert not raw_lines[index + 1].startswith((b" ", b"\t"))  # not folded onto a continuation line
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw_lines

    for policy in (email.policy.default, email.policy.compat32):
        parsed = email.message_from_bytes(mail.raw, policy=policy)
        header = str(parsed["List-Unsubscribe"])
        urls = re.findall(r"<([^<>]+)>", header)
        assert len(urls) == 2 and urls[1] == "mailto:unsubscribe@sunnywatt.example?subject=unsubscribe"
        token = urlsplit(urls[0]).path.rsplit("/", 1)[1]
        assert read_unsubscribe_token(SECRET, token) == (tenant, address)
        assert str(parsed["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"

    msg = mail.message
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert urls[0] in plain.get_content()
    assert f'href="{urls[0]}"' in html.get_content()


def test_a_header_value_with_cr_lf_cannot_be_sent() -> None:
    channel = make_channel(2525, unsubscribe_mailto="a@b.example\r\nBcc: victim@example.com")
    with pytest.raises(SendError) as info:
        channel.build(OutboundMessage(to="a@example.com", text="hi"))
    assert info.value.retryable is False


def test_the_unsubscribe_line_follows_the_message_language() -> None:
    channel = make_channel(2525)
    french = channel.build(OutboundMessage(to="a@example.com", text="Bonjour", metadata={"language": "fr"}))
    body = french.get_body(preferencelist=("plain",))
    assert (
        body is not None
        and "désabonnez-vous ici : https://leadwarm.example/api/unsubscribe/" in body.get_content()
    )
    without = make_channel(2525, unsubscribe_secret="").build(OutboundMessage(to="a@example.com", text="Hi"))
    plain = without.get_body(preferencelist=("plain",))
    assert plain is not None and "unsubscribe" not in plain.get_content().lower()
