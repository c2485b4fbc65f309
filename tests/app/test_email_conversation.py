"""Email end to end: raw RFC 5322 mails posted to /api/webhooks/email/inbound drive the shipped
English playbook to its end, replies leave through a real SMTP server (aiosmtpd) on 127.0.0.1 and
thread, quoted history never reaches the engine, auto-replies are recorded and never answered, and
the signed unsubscribe link records an opt-out."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime, build_channels
from app.messaging.inbox import INBOX
from app.store import where
from app.tenancy.bootstrap import bootstrap
from channels.email import INBOUND_KEY_HEADER, UNSUBSCRIBE_LINES, EmailChannel, make_unsubscribe_token
from playbooks import load_library
from tests.app.conftest import make_settings
from tests.support.smtp_server import ReceivedMail, SmtpRecorder, running_smtp_server

Client = AsyncTestClient[Litestar]
EN = load_library()["solar-qualification-en"]
OURS = "hello@sunnywatt.example"
LEAD = "sam.taylor@example.com"
INBOUND_KEY = "inbound-key-for-tests"
UNSUB_SECRET = "unsubscribe-secret-for-tests"
PUBLIC = "https://leads.example.com"
INBOUND_PATH = "/api/webhooks/email/inbound"


@pytest.fixture
def smtp() -> Iterator[tuple[int, SmtpRecorder]]:
    with running_smtp_server() as (controller, recorder):
        yield controller.port, recorder


@pytest.fixture
async def runtime(tmp_path: Path, smtp: tuple[int, SmtpRecorder]) -> AsyncIterator[Runtime]:
    """A bootstrapped runtime whose email channel sends to the local SMTP server; the worker does
    NOT run by itself: tests call ``worker.drain()``."""
    settings = make_settings(tmp_path / "data", "http://127.0.0.1:9", public_base_url=PUBLIC)
    email = EmailChannel(
        host="127.0.0.1",
        port=smtp[0],
        from_address=f"SunnyWatt <{OURS}>",
        starttls=False,
        unsubscribe_base_url=PUBLIC,
        unsubscribe_secret=UNSUB_SECRET,
        tenant_id=settings.default_tenant_id,
        inbound_secret=INBOUND_KEY,
        timeout_s=5.0,
    )
    rt = Runtime.build(settings, channels={**build_channels(settings), "email": email})
    await bootstrap(rt)
    yield rt
    await rt.channels.aclose()
    await rt.store.close()


_ids = itertools.count(1)


def lead_mail(
    text: str,
    *,
    reply_to: ReceivedMail | None,
    references: list[str],
    extra_headers: str = "",
    sender: str = LEAD,
) -> tuple[bytes, str]:
    """A reply from the lead as Gmail writes it (new text, then the quoted bot message)."""
    message_id = f"<lead-{next(_ids)}@mail.example.com>"
    date = format_datetime(datetime(2025, 11, 3, 10, 0, tzinfo=UTC))
    headers = [
        f"From: Sam Taylor <{sender}>",
        f"To: SunnyWatt <{OURS}>",
        f"Message-ID: {message_id}",
        f"Date: {date}",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
    ]
    body = text + "\r\n"
    if reply_to is not None:
        parent = reply_to.message
        headers.append(f"Subject: Re: {parent['Subject']}")
        headers.append(f"In-Reply-To: {parent['Message-ID']}")
        headers.append("References: " + " ".join([*references, parent["Message-ID"]]))
        quoted = (parent.get_body(preferencelist=("plain",)) or parent).get_content()
        body += f"\r\nOn Mon, 3 Nov 2025 at 09:59, SunnyWatt <{OURS}> wrote:\r\n"
        body += "".join(f"> {line}\r\n" for line in quoted.splitlines())
    else:
        headers.append("Subject: Solar panels quote")
    if extra_headers:
        headers.append(extra_headers)
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode(), message_id


async def post_mail(client: Client, raw: bytes) -> Any:
    return await client.post(
        INBOUND_PATH, content=raw, headers={"Content-Type": "message/rfc822", INBOUND_KEY_HEADER: INBOUND_KEY}
    )


def plain(mail: ReceivedMail) -> str:
    """The mail's text without its closing unsubscribe paragraph (checked on its own)."""
    body = mail.message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content().replace("\r\n", "\n").strip()
    paragraphs = text.split("\n\n")
    prefixes = tuple(line.split("{url}")[0] for line in UNSUBSCRIBE_LINES.values())
    assert paragraphs[-1].startswith(prefixes), "every mail carries its unsubscribe link in the body"
    return "\n\n".join(paragraphs[:-1]).strip()


def step(step_id: str) -> Any:
    return next(s for s in EN.steps if s.id == step_id)


def text_of(step_id: str, field: str = "question") -> str:
    value = getattr(step(step_id), field)
    return " ".join((value if isinstance(value, str) else str(value["en"])).split())


class Lead:
    """Drives the conversation as the lead's mail client would (threading included)."""

    def __init__(self, client: Client, runtime: Runtime, smtp: SmtpRecorder) -> None:
        self.client, self.runtime, self.smtp = client, runtime, smtp
        self.references: list[str] = []
        self.last_bot: ReceivedMail | None = None
        self.sent_ids: list[str] = []

    async def says(self, text: str, *, extra_headers: str = "") -> list[ReceivedMail]:
        raw, message_id = lead_mail(
            text, reply_to=self.last_bot, references=self.references, extra_headers=extra_headers
        )
        if self.last_bot is not None:
            self.references = [*self.references, self.last_bot.message["Message-ID"]]
        self.references.append(message_id)
        self.sent_ids.append(message_id)
        before = len(self.smtp.messages())
        response = await post_mail(self.client, raw)
        assert response.status_code == 200, response.text
        await self.runtime.worker.drain()
        replies = self.smtp.messages()[before:]
        if replies:
            self.last_bot = replies[-1]
        return replies


async def conversations(runtime: Runtime) -> list[dict[str, Any]]:
    return [d.data for d in await runtime.store.query("demo", "conversations")]


async def inbound_texts(runtime: Runtime) -> list[str]:
    [conv] = await conversations(runtime)
    docs = await runtime.store.query(
        "demo", f"conversations/{conv['id']}/messages", filters=[where("direction", "==", "inbound")]
    )
    return [str(d.data["text"]) for d in sorted(docs, key=lambda d: d.data["seq"])]


async def test_email_conversation_runs_the_shipped_playbook_to_its_end(
    client: Client, runtime: Runtime, smtp: tuple[int, SmtpRecorder]
) -> None:
    lead = Lead(client, runtime, smtp[1])
    first = await lead.says("Hi, I'd like a quote for solar panels")
    assert plain(first[0]).startswith("Hi Sam! Thanks for getting in touch") or plain(first[0]).startswith(
        "Hi! Thanks for getting in touch"
    )
    assert " ".join(plain(first[-1]).split()) == text_of("homeowner")
    assert " ".join(plain((await lead.says("yes I own it"))[-1]).split()) == text_of("bill")
    roof = plain((await lead.says("about 90 dollars"))[-1])
    assert "3. Flat roof" in roof.split("\n")
    assert text_of("timeline") in " ".join(plain((await lead.says("3"))[-1]).split())
    assert " ".join(plain((await lead.says("4"))[-1]).split()) == text_of("postcode")
    assert " ".join(plain((await lead.says("94105"))[-1]).split()) == text_of("email")
    offer = plain((await lead.says("sam@example.com"))[-1])
    assert " ".join(offer.split()).startswith(text_of("callback"))  # free slots, numbered
    assert "1. " in offer.split("\n")[-3]
    questions = [" ".join(plain(m).split()) for m in await lead.says("1")]
    assert questions[0].startswith("Booked: ")
    assert text_of("any-questions", "text") in questions
    end = await lead.says("no thanks")
    assert " ".join(plain(end[-1]).split()) == text_of("nurture-end", "message")

    [conv] = await conversations(runtime)
    assert (conv["channel"], conv["status"], conv["outcome"]) == ("email", "closed", "nurture")
    record = await runtime.store.get("demo", "leads", conv["lead_id"])
    assert record is not None and record["email"] == LEAD
    slots = record["slots"]
    assert (slots["homeowner"], slots["roof_type"], slots["timeline"]) == (True, "flat", "researching")
    assert (slots["postcode"], slots["email"]) == ("94105", "sam@example.com")

    # Quoted history never reached the engine: the stored inbound texts are the new parts only.
    texts = await inbound_texts(runtime)
    assert texts[0] == "Hi, I'd like a quote for solar panels"
    assert texts[-1] == "no thanks"
    assert not any("wrote:" in t or ">" in t or "Thanks for getting in touch" in t for t in texts)

    # Every mail went to the lead from our address, with the RFC 8058 headers.
    mails = smtp[1].messages()
    assert len(mails) >= 10
    for mail in mails:
        assert mail.rcpt_tos == [LEAD]
        assert mail.message["From"].addresses[0].addr_spec == OURS
        assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert await runtime.jobs.dead_letters("demo") == []


async def test_bot_replies_thread_under_the_leads_last_message(
    client: Client, runtime: Runtime, smtp: tuple[int, SmtpRecorder]
) -> None:
    """In-Reply-To = the lead's last Message-ID; References end with it (needs the dispatcher to
    pass the inbound Message-ID as ``reply_to``: issue 3, conversation/dispatcher side)."""
    lead = Lead(client, runtime, smtp[1])
    for text in ("Hi, I'd like a quote for solar panels", "yes", "about 200"):
        replies = await lead.says(text)
        assert replies
        for reply in replies:
            assert reply.message["In-Reply-To"] == lead.sent_ids[-1]
            assert reply.message["References"].split()[-1] == lead.sent_ids[-1]
            assert reply.message["Subject"].lower().startswith("re:")


async def test_auto_reply_is_recorded_but_never_answered(
    client: Client, runtime: Runtime, smtp: tuple[int, SmtpRecorder]
) -> None:
    lead = Lead(client, runtime, smtp[1])
    await lead.says("Hi, I'd like a quote for solar panels")
    [conv] = await conversations(runtime)
    step_before = conv["current_step"]
    sent_before = len(smtp[1].messages())

    replies = await lead.says(
        "I am out of the office until Monday.", extra_headers="Auto-Submitted: auto-replied"
    )
    assert replies == []
    assert len(smtp[1].messages()) == sent_before
    [conv] = await conversations(runtime)
    assert conv["current_step"] == step_before
    docs = await runtime.store.query("demo", INBOX, filters=[where("kind", "==", "auto_reply")])
    assert [d.data["text"] for d in docs] == ["I am out of the office until Monday."]
    # ... and the playbook still takes the lead's real answer.
    answer = await lead.says("yes I own it")
    assert " ".join(plain(answer[-1]).split()) == text_of("bill")


async def test_webhook_key_is_required(client: Client, runtime: Runtime) -> None:
    raw, _ = lead_mail("hello", reply_to=None, references=[])
    for headers in ({"Content-Type": "message/rfc822"}, {INBOUND_KEY_HEADER: "wrong"}):
        response = await client.post(INBOUND_PATH, content=raw, headers=headers)
        assert response.status_code == 401
    response = await client.post(f"{INBOUND_PATH}?key={INBOUND_KEY}", content=raw)
    assert response.status_code == 200
    await runtime.ingest.consume("demo")  # the ingest job: the log into the inbox
    assert len(await runtime.store.query("demo", INBOX)) == 1
    again = await client.post(f"{INBOUND_PATH}?key={INBOUND_KEY}", content=raw)
    assert again.json()["duplicates"] == 1
    assert len(await runtime.store.query("demo", INBOX)) == 1


async def test_bounce_marks_the_sent_message_undeliverable(
    client: Client, runtime: Runtime, smtp: tuple[int, SmtpRecorder]
) -> None:
    lead = Lead(client, runtime, smtp[1])
    [*_, question] = await lead.says("Hi, I'd like a quote for solar panels")
    original = question.message["Message-ID"]
    dsn = (Path(__file__).resolve().parents[1] / "fixtures" / "email" / "bounce_dsn.eml").read_bytes()
    dsn = dsn.replace(b"<original-123@sunnywatt.example>", original.encode())
    response = await post_mail(client, dsn)
    assert response.status_code == 200 and response.json()["statuses"] == 1
    await runtime.worker.drain()
    [conv] = await conversations(runtime)
    docs = await runtime.store.query("demo", f"conversations/{conv['id']}/messages")
    by_provider = {d.data.get("provider_message_id"): d.data for d in docs}
    assert by_provider[original.strip("<>")]["status"] in ("undeliverable", "failed")


async def test_unsubscribe_page_and_one_click(client: Client, runtime: Runtime) -> None:
    token = make_unsubscribe_token(UNSUB_SECRET, "demo", LEAD)
    page = await client.get(f"/api/unsubscribe/{token}", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert page.status_code == 200
    assert "Me désabonner" in page.text and LEAD in page.text and "<form" in page.text
    ledger = runtime.optouts
    assert await ledger.is_opted_out("demo", "email", LEAD) is False  # GET records nothing

    one_click = await client.post(
        f"/api/unsubscribe/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert one_click.status_code == 200
    assert await ledger.is_opted_out("demo", "email", LEAD) is True
    again = await client.post(f"/api/unsubscribe/{token}", content=b"List-Unsubscribe=One-Click")
    assert again.status_code == 200
    entry = await ledger.get("demo", "email", LEAD)
    assert entry is not None and entry["history"][-1]["source"] == "unsubscribe_link"

    english = await client.get(f"/api/unsubscribe/{token}", headers={"Accept-Language": "en-GB"})
    assert "Unsubscribe" in english.text

    forged = make_unsubscribe_token("another-secret", "demo", "victim@example.com")
    for method in (client.get, client.post):
        response = await method(f"/api/unsubscribe/{forged}")
        assert response.status_code == 404
    assert await ledger.is_opted_out("demo", "email", "victim@example.com") is False
