"""Email bodies: quoted history and signatures removed from HTML-only, multipart and plain replies of
French and English clients (Gmail, Outlook desktop and web, Apple Mail, Thunderbird); opt-out words
surfaced; every step bounded in time whatever the size of the mail (issue 13 item 6, issue 16)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from channels.email import MAX_INBOUND_TEXT, EmailChannel
from channels.email_parsing import html_reply_text, opt_out_keyword, reply_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "email"
RFC822 = {"content-type": "message/rfc822"}


def parse(name: str) -> str:
    channel = EmailChannel(host="127.0.0.1", from_address="hello@sunnywatt.example")
    [message] = channel.parse(RFC822, (FIXTURES / f"{name}.eml").read_bytes()).messages
    assert message.kind == "text"
    return message.text


@pytest.mark.parametrize(
    ("fixture", "expected", "absent"),
    [
        # Gmail, HTML only: gmail_quote history and the gmail_signature block
        (
            "gmail_html_only_en",
            "Yes, Thursday at 10am works for us.",
            ["wrote:", "20-minute", "Operations Lead"],
        ),
        # Outlook desktop, French, multipart: "De :/Envoyé :" (with NBSP) and a "Tél :" signature block
        (
            "outlook_desktop_fr_multipart",
            "Bonjour,\n\nEnviron 180 € par mois, et nous sommes propriétaires.",
            ["Responsable technique", "Tél", "acme-sas.example", "Envoyé", "montant moyen"],
        ),
        # Outlook web, English, HTML only: divRplyFwdMsg history and the #Signature div
        (
            "outlook_web_en_html",
            "Yes, we own the building. The roof is about 400 m².",
            ["Facilities Manager", "Tel:", "From:", "how large is the roof"],
        ),
        # Outlook web, French, HTML only: a signature typed as plain lines (name, title, "Tél : ...")
        (
            "outlook_web_fr_html",
            "Plutôt en mars, si possible.",
            ["Sophie Bernard", "Directrice", "Tél", "De :", "installer les panneaux"],
        ),
        # Apple Mail, French, multipart: "> Le ... a écrit :" and <blockquote type=cite>; the name line
        (
            "apple_mail_fr_multipart",
            "Oui, le toit est orienté plein sud.",
            ["a écrit", "orientation", "Louis"],
        ),
        # Thunderbird, English, HTML only: moz-cite-prefix, blockquote, moz-signature
        (
            "thunderbird_en_html",
            "Our postcode is SW1A 1AA.",
            ["wrote:", "What is the postcode", "Hall Builders"],
        ),
        # Gmail, French, multipart: attribution wrapped over two lines, "Bonne journée," sign-off
        (
            "gmail_multipart_fr",
            "Bonjour,\nNous habitons au 12 rue des Lilas, 69003 Lyon.",
            ["a écrit", "adresse du logement", "Bonne journée", "Amélie"],
        ),
        # Thunderbird, French, HTML only
        (
            "thunderbird_fr_html",
            "Nous sommes locataires, malheureusement.",
            ["a écrit", "propriétaire", "Artisan plombier"],
        ),
        # Apple Mail (iOS), English, HTML only: "Sent from my iPhone" and blockquote type=cite
        (
            "apple_mail_en_html",
            "Around £120 a month in winter, less in summer.",
            ["iPhone", "wrote:", "electricity bill"],
        ),
        # Outlook desktop, English, multipart: sign-off, signature with Direct/Mobile, From/Sent block
        (
            "outlook_desktop_en_multipart",
            "Hi,\n\nCould you call me tomorrow after 2pm instead?",
            ["Kind regards", "Facilities Manager", "Direct:", "From:", "engineer"],
        ),
        # Outlook, French, plain text: signature block without a sign-off
        (
            "outlook_signature_fr_plain",
            "Oui, jeudi à 11 h me convient.",
            ["Claire Moreau", "Chargée", "Tél", "Mobile"],
        ),
    ],
)
def test_history_and_signature_are_removed(fixture: str, expected: str, absent: list[str]) -> None:
    text = parse(fixture)
    assert text == expected
    for fragment in absent:
        assert fragment not in text


@pytest.mark.parametrize(
    "text",
    [
        "Yes, Thursday.\n\nJohn Smith\nTel: 555 1234",
        "Yes, Thursday.\n\nJohn Smith\nHead of Facilities\n\nT: +44 20 7946 0000\nwww.example.com",
    ],
)
def test_a_name_with_contact_lines_is_a_signature(text: str) -> None:
    assert reply_text(text) == "Yes, Thursday."


def test_html_markers_cut_everything_after_them() -> None:
    html = (
        "<div>Answer one.</div><div id='appendonsend'></div><hr>"
        "<div id='divRplyFwdMsg'><b>De :</b> x</div><div>old question</div><p>old tail</p>"
    )
    assert html_reply_text(html) == "Answer one."
    assert html_reply_text("<p>Mine</p><blockquote><p>theirs</p></blockquote><p>after</p>") == "Mine\n\nafter"


@pytest.mark.parametrize(
    "text",
    [
        "Yes, 75011.\n\nParis",  # a short last line that is an answer, not a signature
        "Oui\n\n75011",
        "Tél : 06 12 34 56 78",  # a phone number given as the answer
        "Oui\n\n75011\n\nTél : 06 12 34 56 78",  # a postcode, then a phone number
        "Yes.\n\nMobile: +44 7700 900123",
        "Thanks, Thursday works",
    ],
)
def test_answers_that_look_like_signatures_are_kept(text: str) -> None:
    assert reply_text(text) == text


@pytest.mark.parametrize(
    ("subject", "body", "expected"),
    [
        ("Re: Votre projet solaire", "STOP merci", ("stop", "body")),
        ("STOP", "", ("stop", "subject")),
        ("RE: Unsubscribe", "Hello", ("unsubscribe", "subject")),
        ("Re: Your quote", "Please unsubscribe me.", ("unsubscribe", "body")),
        ("Re: Votre devis", "Désabonner", ("desabonner", "body")),
        ("Re: Votre devis", "Arrêt svp", ("arret", "body")),
        ("Re: Votre devis", "Se désinscrire", ("se desinscrire", "body")),
        ("Re: Your quote", "Stop by our office on Monday", None),
        ("Re: Your quote", "Yes, stop the old plan and start the new one", None),
        ("Don't stop", "Sounds good", None),
    ],
)
def test_opt_out_words(subject: str, body: str, expected: tuple[str, str] | None) -> None:
    assert opt_out_keyword(subject, body) == expected


def test_opt_out_is_in_the_message_metadata() -> None:
    channel = EmailChannel(host="127.0.0.1", from_address="hello@sunnywatt.example")
    [message] = channel.parse(RFC822, (FIXTURES / "optout_stop.eml").read_bytes()).messages
    assert message.metadata["opt_out_keyword"] == "stop"
    assert message.metadata["opt_out_source"] == "body"
    greeting = (
        b"From: a@example.com\r\nSubject: Re: Your quote\r\n\r\nHello,\r\nPlease remove me.\r\n\r\nThanks\r\n"
    )
    [polite] = channel.parse(RFC822, greeting).messages
    assert polite.metadata["opt_out_keyword"] == "remove"
    [plain] = channel.parse(RFC822, (FIXTURES / "gmail_reply_en.eml").read_bytes()).messages
    assert "opt_out_keyword" not in plain.metadata


ADVERSARIAL = {
    "no spaces": "a" * 1_000_000,
    "newlines": "x\n" + "\n" * 1_000_000,
    "spaces and newlines": "x\n" + " \n" * 500_000,
    "attribution openers": "x\n" + "Le a\n" * 200_000,
    "from lines": "x\n" + "From: a\n" * 120_000,
    "sign-offs": "x\n" + "Thanks\n" * 140_000,
    "contact lines": "x\n\n" + "Tel: 1\n" * 140_000,
    "quotes": "x\n" + "> " * 500_000,
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_reply_text_is_fast_on_a_megabyte_of_adversarial_text(name: str) -> None:
    started = time.perf_counter()
    reply_text(ADVERSARIAL[name])
    assert time.perf_counter() - started < 1.0  # quadratic code took 10-30 s here


@pytest.mark.parametrize(
    "body",
    [
        b"From: a@example.com\r\n\r\n" + b"a \n" * 1_700_000,
        b"From: a@example.com\r\n\r\n" + b"a" * 5_000_000,
        b"From: a@example.com\r\nContent-Type: text/html\r\n\r\n" + b"<p>a</p>\n" * 500_000,
        b"From: a@example.com\r\nContent-Type: text/html\r\n\r\n" + b"<blockquote>" * 500_000,
        b"From: a@example.com\r\nTo: " + b"a@b.example, " * 20_000 + b"\r\n\r\nx",
        b"From: a@example.com\r\nSubject: " + b"=?utf-8?q?a?= " * 20_000 + b"\r\n\r\nx",
    ],
    ids=[
        "5MB lines",
        "5MB one word",
        "5MB html paragraphs",
        "5MB blockquotes",
        "20k recipients",
        "20k words",
    ],
)
def test_a_5mb_email_is_parsed_in_bounded_time_and_kept(body: bytes) -> None:
    channel = EmailChannel(host="127.0.0.1", from_address="hello@sunnywatt.example")
    started = time.perf_counter()
    [message] = channel.parse(RFC822, body).messages
    assert time.perf_counter() - started < 3.0  # was 30 s to hours before the bounds
    assert message.sender == "a@example.com"
    assert len(message.text) <= MAX_INBOUND_TEXT


def test_a_sendgrid_form_with_a_25mb_attachment_is_split_in_bounded_time() -> None:
    boundary = "xYzZY"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="from"\r\n\r\nLead <lead@example.com>\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\nHere is my bill.\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="attachment1"; filename="bill.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    body = head + b"\n" * 25_000_000 + f"\r\n--{boundary}--\r\n".encode()
    channel = EmailChannel(host="127.0.0.1", from_address="hello@sunnywatt.example")
    started = time.perf_counter()
    [message] = channel.parse({"content-type": f"multipart/form-data; boundary={boundary}"}, body).messages
    assert time.perf_counter() - started < 3.0  # the stdlib MIME parser took 7 s per 5 MB of lines
    assert message.text == "Here is my bill." and message.sender == "lead@example.com"
