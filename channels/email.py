"""Email: send through SMTP (aiosmtplib), read inbound mail, sign unsubscribe links.

- sending: one ``multipart/alternative`` message (text and HTML, RFC 2046 §5.1.4) with a
  ``Message-ID`` we generate (RFC 5322 §3.6.4) and return as the provider message id,
  ``In-Reply-To``/``References`` so that replies thread, and ``List-Unsubscribe`` (RFC 2369) with
  ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058) pointing at a signed URL, both
  written verbatim on one line (never RFC 2047-encoded or folded), the link repeated in the body;
- inbound webhook: a raw RFC 5322 message (``message/rfc822`` or ``text/plain``) or SendGrid
  Inbound Parse's ``multipart/form-data``; parsing lives in :mod:`channels.email_parsing` and is
  also what the IMAP poller uses (:meth:`EmailChannel.parse_raw`);
- webhook authentication: SendGrid signs nothing for Inbound Parse, so the URL carries a shared
  secret (EMAIL_INBOUND_SECRET): ``?key=<secret>`` in the URL configured at the provider, or the
  header ``X-LeadWarm-Inbound-Key: <secret>``, or HTTP Basic auth with the secret as password
  (SendGrid accepts ``https://user:secret@host/...`` URLs). Compared in constant time; with no
  secret configured every webhook is refused.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import html
import logging
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import aiosmtplib

from channels.base import (
    Channel,
    ChannelError,
    ChannelTraits,
    OutboundMessage,
    ParsedWebhook,
    SendError,
    SignatureError,
    guarded_parse,
    guarded_verify,
    numbered_choices,
)
from channels.email_parsing import (
    content_type_of,
    normalize_message_id,
    parse_message_ids,
    parse_raw_email,
    parse_sendgrid_form,
)

__all__ = [
    "INBOUND_KEY_HEADER",
    "EmailChannel",
    "UnsubscribeTokenError",
    "build_email",
    "make_unsubscribe_token",
    "read_unsubscribe_token",
    "text_to_html",
]

logger = logging.getLogger(__name__)

INBOUND_KEY_HEADER = "x-leadwarm-inbound-key"
#: References kept on a reply: the first (thread root) and the most recent ones (RFC 5322 §3.6.4
#: allows trimming; many clients keep about ten).
MAX_REFERENCES = 10
#: Inbound bounds: SendGrid Inbound Parse accepts messages up to 30 MB, attachments included
#: ("Inbound Parse Webhook > Message size"); the reply text kept is at most
#: :data:`MAX_INBOUND_TEXT` characters (``metadata["truncated_from"]`` when cut).
MAX_WEBHOOK_BYTES = 30 * 1024 * 1024
MAX_INBOUND_TEXT = 10_000
#: Header fields that must leave exactly as written: RFC 2369 §2 list headers are read by mail
#: clients as angle-bracketed URLs, so they may be neither RFC 2047-encoded nor folded inside a URL
#: (the stdlib policy does both for a value longer than 78 characters without spaces).
_VERBATIM_HEADERS = ("List-Unsubscribe", "List-Unsubscribe-Post")
#: RFC 5322 §2.1.1: a line is at most 998 characters.
_MAX_LINE = 998
#: The unsubscribe line added to the body, by ``metadata["language"]`` (default English).
UNSUBSCRIBE_LINES = {
    "en": "To stop receiving these emails, unsubscribe here: {url}",
    "fr": "Pour ne plus recevoir ces e-mails, désabonnez-vous ici : {url}",
}


class _VerbatimHeader(str):
    """A header value the generator writes as is, on one line: the ``email`` policies call
    ``fold(policy=...)`` on a stored value that has a ``name`` instead of folding/encoding it
    (``EmailPolicy.header_store_parse`` / ``_fold``). The value must be ASCII without CR/LF."""

    name: str

    def __new__(cls, name: str, value: str) -> _VerbatimHeader:
        if not value.isascii() or "\r" in value or "\n" in value:
            raise ValueError(f"{name} must be ASCII on one line")
        if len(name) + 2 + len(value) > _MAX_LINE:
            raise ValueError(f"{name} is longer than one {_MAX_LINE}-character line")
        header = super().__new__(cls, value)
        header.name = name
        return header

    def fold(self, *, policy: Any) -> str:
        return f"{self.name}: {self}{policy.linesep}"


class UnsubscribeTokenError(ChannelError, ValueError):
    """The unsubscribe token is malformed or its signature is wrong."""


# ---------------------------------------------------------------------------- unsubscribe tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _token_mac(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), b"leadwarm-unsubscribe\x00" + payload, hashlib.sha256).digest()


def make_unsubscribe_token(secret: str, tenant_id: str, address: str) -> str:
    """A URL-safe token naming ``(tenant_id, address)``: ``b64url(tenant\\naddress).b64url(HMAC)``.

    HMAC-SHA256 keyed with ``secret`` (EMAIL_UNSUBSCRIBE_SECRET), unpadded URL-safe base64. The
    address is lower-cased. Tokens do not expire: RFC 8058 links must keep working in old mail.
    Raises :class:`ValueError` for an empty secret or a tenant id containing a newline.
    """
    if not secret:
        raise ValueError("unsubscribe secret is empty")
    if "\n" in tenant_id:
        raise ValueError("tenant id must not contain a newline")
    payload = f"{tenant_id}\n{address.strip().lower()}".encode()
    return f"{_b64(payload)}.{_b64(_token_mac(secret, payload))}"


def read_unsubscribe_token(secret: str, token: str) -> tuple[str, str]:
    """``(tenant_id, address)`` of a token made by :func:`make_unsubscribe_token`.

    Raises :class:`UnsubscribeTokenError` when it is malformed or the signature (compared in
    constant time) does not match.
    """
    if not secret:
        raise UnsubscribeTokenError("unsubscribe secret is empty")
    body, dot, signature = token.partition(".")
    if not dot or not body or not signature:
        raise UnsubscribeTokenError("malformed unsubscribe token")
    try:
        payload, given = _unb64(body), _unb64(signature)
    except (ValueError, TypeError):
        raise UnsubscribeTokenError("malformed unsubscribe token") from None
    if not hmac.compare_digest(given, _token_mac(secret, payload)):
        raise UnsubscribeTokenError("unsubscribe token signature does not match")
    try:
        tenant_id, _, address = payload.decode("utf-8").partition("\n")
    except UnicodeDecodeError:
        raise UnsubscribeTokenError("malformed unsubscribe token") from None
    if not address:
        raise UnsubscribeTokenError("unsubscribe token names no address")
    return tenant_id, address


# ---------------------------------------------------------------------------- building


def text_to_html(text: str) -> str:
    """Escaped HTML for plain ``text``: blank lines separate ``<p>``, single newlines become ``<br>``."""
    paragraphs = [p.strip("\n") for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    body = "\n".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in p.split("\n")) + "</p>" for p in paragraphs
    )
    return f'<!DOCTYPE html>\n<html><body style="font-family:sans-serif">\n{body}\n</body></html>\n'


def _reply_subject(subject: str) -> str:
    subject = subject.strip()
    if not subject:
        return ""
    lowered = subject.lower()
    if lowered.startswith(("re:", "re :")):
        return subject
    return f"Re: {subject}"


def build_email(
    message: OutboundMessage,
    *,
    from_address: str,
    message_id: str,
    default_subject: str,
    list_unsubscribe: str | None = None,
    unsubscribe_url: str | None = None,
    date: str | None = None,
) -> EmailMessage:
    """The MIME message :meth:`EmailChannel.send` sends for ``message``.

    - ``Subject``: ``message.subject``; else ``"Re: " + metadata["subject"]`` (the lead's last
      subject); else ``default_subject``;
    - ``In-Reply-To``: ``message.reply_to`` (with or without angle brackets);
      ``References``: ``metadata["references"]`` (list or header string) then ``reply_to``,
      trimmed to the first and the last :data:`MAX_REFERENCES` - 1;
    - ``choices`` become a numbered list; HTML is the escaped text (:func:`text_to_html`);
    - ``list_unsubscribe`` (a ready header value) adds ``List-Unsubscribe`` and, when it holds an
      https URL, ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058 §3.1); both are
      written verbatim on one line (never RFC 2047-encoded or folded, RFC 2369 §2), and a value
      that is not ASCII or longer than a 998-character line raises :class:`ValueError`;
    - ``unsubscribe_url`` adds a last paragraph with the link to the body (text and HTML), worded
      by ``metadata["language"]`` (:data:`UNSUBSCRIBE_LINES`, English by default), so the link
      also works where the client shows no unsubscribe button.
    """
    text = numbered_choices(message.text, message.choices)
    html_body = text_to_html(text)
    if unsubscribe_url:
        language = str((message.metadata or {}).get("language") or "en")[:2].lower()
        line = UNSUBSCRIBE_LINES.get(language, UNSUBSCRIBE_LINES["en"])
        text = f"{text.rstrip()}\n\n{line.format(url=unsubscribe_url)}"
        prefix = html.escape(line.split("{url}")[0])
        link = f'<a href="{html.escape(unsubscribe_url)}">{html.escape(unsubscribe_url)}</a>'
        footer = f'<p style="font-size:small;color:#666">{prefix}{link}</p>\n'
        html_body = html_body.replace("</body></html>", footer + "</body></html>")
    mail = EmailMessage()
    mail["From"] = from_address
    mail["To"] = message.to
    metadata = message.metadata or {}
    subject = message.subject or _reply_subject(str(metadata.get("subject") or "")) or default_subject
    mail["Subject"] = subject
    mail["Date"] = date or formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = message_id
    parent = normalize_message_id(message.reply_to)
    raw_refs = metadata.get("references") or []
    refs = parse_message_ids(
        " ".join(str(r) for r in raw_refs) if isinstance(raw_refs, list) else str(raw_refs)
    )
    if parent:
        mail["In-Reply-To"] = f"<{parent}>"
        if f"<{parent}>" not in refs:
            refs.append(f"<{parent}>")
    if len(refs) > MAX_REFERENCES:
        refs = refs[:1] + refs[-(MAX_REFERENCES - 1) :]
    if refs:
        mail["References"] = " ".join(refs)
    if list_unsubscribe:
        mail["List-Unsubscribe"] = _VerbatimHeader("List-Unsubscribe", list_unsubscribe)
        if "<https://" in list_unsubscribe or "<http://" in list_unsubscribe:
            mail["List-Unsubscribe-Post"] = _VerbatimHeader(
                "List-Unsubscribe-Post", "List-Unsubscribe=One-Click"
            )
    mail.set_content(text)
    mail.add_alternative(html_body, subtype="html")
    for attachment in message.attachments:
        maintype, _, subtype = attachment.mime_type.partition("/")
        mail.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
            params=dict(attachment.params),
        )
    return mail


# ---------------------------------------------------------------------------- channel


class EmailChannel(Channel):
    """The email channel: SMTP out, RFC 5322 / SendGrid in.

    ``host``/``port``/``user``/``password`` are the SMTP server (EMAIL_HOST, EMAIL_PORT,
    EMAIL_USER, EMAIL_PASSWORD; no login when ``user`` is empty). ``from_address`` (EMAIL_FROM,
    ``"Name <addr>"`` allowed) is the default sender and the Message-ID domain. TLS: ``implicit_tls``
    defaults to ``port == 465``; ``starttls`` defaults to ``True`` on 587 and to aiosmtplib's
    opportunistic upgrade elsewhere; ``False`` forces plain SMTP (a local test server).
    ``unsubscribe_base_url`` (PUBLIC_BASE_URL) and ``unsubscribe_secret`` (EMAIL_UNSUBSCRIBE_SECRET)
    make the List-Unsubscribe link ``{base}/api/unsubscribe/{token}``; without a secret the headers
    are left out. ``unsubscribe_mailto`` adds a ``mailto:`` alternative. ``tenant_id`` names the
    tenant in tokens unless ``message.metadata["tenant_id"]`` does. ``inbound_secret``
    (EMAIL_INBOUND_SECRET) authenticates the inbound webhook (module docstring). ``timeout_s`` is
    per SMTP command, seconds. Secrets never appear in ``repr``, logs or exceptions.
    """

    name: ClassVar[str] = "email"
    traits: ClassVar[ChannelTraits] = ChannelTraits(
        address_field="email",
        threading=True,
        max_text_chars=20_000,
        max_body_bytes=MAX_WEBHOOK_BYTES,
        max_inbound_chars=MAX_INBOUND_TEXT,
    )

    def __init__(
        self,
        *,
        host: str,
        port: int = 587,
        user: str = "",
        password: str = "",
        from_address: str,
        starttls: bool | None = None,
        implicit_tls: bool | None = None,
        unsubscribe_base_url: str = "",
        unsubscribe_secret: str = "",
        unsubscribe_mailto: str = "",
        tenant_id: str = "",
        inbound_secret: str = "",
        default_subject: str = "Your request",
        timeout_s: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        display, address = parseaddr(from_address)
        if "@" not in address:
            raise ValueError("from_address must contain an email address")
        self.host = host
        self.port = port
        self.user = user
        self._password = password
        self.from_address = formataddr((display, address)) if display else address
        self.from_domain = address.rsplit("@", 1)[1].lower()
        self.implicit_tls = port == 465 if implicit_tls is None else implicit_tls
        self.starttls: bool | None = (True if port == 587 else None) if starttls is None else starttls
        if self.implicit_tls:
            self.starttls = False
        self.unsubscribe_base_url = unsubscribe_base_url.rstrip("/")
        self._unsubscribe_secret = unsubscribe_secret
        self.unsubscribe_mailto = unsubscribe_mailto
        self.tenant_id = tenant_id
        self._inbound_secret = inbound_secret
        self.default_subject = default_subject
        self.timeout_s = timeout_s
        self.tls_context = tls_context

    def __repr__(self) -> str:
        return (
            f"EmailChannel(host={self.host!r}, port={self.port!r}, user={self.user!r}, "
            f"from_address={self.from_address!r}, starttls={self.starttls!r}, "
            f"implicit_tls={self.implicit_tls!r})"
        )

    # ------------------------------------------------------------------ inbound

    def receiving_addresses(self) -> list[str]:
        """The mailbox (lower-case) replies are addressed to."""
        return [parseaddr(self.from_address)[1].lower()]

    def verify(self, headers: Mapping[str, str], raw_body: bytes, *, url: str = "") -> None:
        """Check the inbound webhook's shared secret (``?key=``, header or Basic password).

        Raises :class:`SignatureError` (and nothing else, whatever the input) when no secret is
        configured or none of the three carries it. See the module docstring for why a shared
        secret (SendGrid Inbound Parse is unsigned).
        """
        guarded_verify(self.name, lambda: self._verify(headers, url))

    def _verify(self, headers: Mapping[str, str], url: str) -> None:
        if not self._inbound_secret:
            raise SignatureError("EMAIL_INBOUND_SECRET is not configured; refusing the webhook")
        expected = self._inbound_secret.encode()
        candidates: list[str] = []
        if url:
            candidates.extend(parse_qs(urlsplit(url).query).get("key", []))
        lowered = {k.lower(): v for k, v in headers.items()}
        if lowered.get(INBOUND_KEY_HEADER):
            candidates.append(lowered[INBOUND_KEY_HEADER])
        scheme, _, credentials = lowered.get("authorization", "").partition(" ")
        if scheme.lower() == "basic" and credentials:
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                candidates.append(base64.b64decode(credentials.strip()).decode().partition(":")[2])
        ok = False
        for candidate in candidates:
            ok |= hmac.compare_digest(candidate.encode("utf-8", "surrogatepass"), expected)
        if not ok:
            raise SignatureError("inbound email key is missing or wrong")

    def parse(self, headers: Mapping[str, str], raw_body: bytes) -> ParsedWebhook:
        """Parse a raw RFC 5322 message or a SendGrid Inbound Parse form (by Content-Type).

        ``multipart/form-data`` -> :func:`channels.email_parsing.parse_sendgrid_form`; anything else
        (``message/rfc822``, ``text/plain``, none) -> :meth:`parse_raw`.

        Total (:func:`channels.base.guarded_parse`): any body gives messages/statuses or
        :class:`PayloadError` (a body over :data:`MAX_WEBHOOK_BYTES`, no From, ...). The reply text
        is cut to :data:`MAX_INBOUND_TEXT` characters (``metadata["truncated_from"]``); lone
        surrogates are replaced by U+FFFD. An opt-out word in the subject or first line sets
        ``metadata["opt_out_keyword"]`` and ``metadata["opt_out_source"]``
        (:func:`channels.email_parsing.opt_out_keyword`).
        """
        content_type = content_type_of(headers)
        if content_type.lower().startswith("multipart/form-data"):
            return guarded_parse(
                self.name,
                self.traits,
                raw_body,
                lambda: parse_sendgrid_form(content_type, raw_body, channel=self.name),
            )
        return self.parse_raw(raw_body)

    def parse_raw(self, raw: bytes) -> ParsedWebhook:
        """Parse one RFC 5322 message (webhook body or IMAP fetch); see
        :func:`channels.email_parsing.parse_raw_email`. Total like :meth:`parse`: raises only
        :class:`PayloadError`."""
        return guarded_parse(self.name, self.traits, raw, lambda: parse_raw_email(raw, channel=self.name))

    # ------------------------------------------------------------------ outbound

    def unsubscribe_url(self, tenant_id: str, address: str) -> str | None:
        """``{unsubscribe_base_url}/api/unsubscribe/{token}``, or ``None`` without a secret/base URL."""
        if not self._unsubscribe_secret or not self.unsubscribe_base_url:
            return None
        token = make_unsubscribe_token(self._unsubscribe_secret, tenant_id, address)
        return f"{self.unsubscribe_base_url}/api/unsubscribe/{token}"

    def read_unsubscribe_token(self, token: str) -> tuple[str, str]:
        """``(tenant_id, address)`` of a token this channel signed; raises :class:`UnsubscribeTokenError`
        (also when no unsubscribe secret is configured)."""
        return read_unsubscribe_token(self._unsubscribe_secret, token)

    def _list_unsubscribe(self, tenant_id: str, address: str) -> str | None:
        parts = []
        url = self.unsubscribe_url(tenant_id, address)
        if url:
            parts.append(f"<{url}>")
        if self.unsubscribe_mailto:
            parts.append(f"<mailto:{self.unsubscribe_mailto}?subject=unsubscribe>")
        return ", ".join(parts) or None

    def build(self, message: OutboundMessage, *, message_id: str | None = None) -> EmailMessage:
        """The MIME message :meth:`send` would send (a fresh Message-ID unless given)."""
        to = parseaddr(message.to)[1]
        if "@" not in to:
            raise SendError("email recipient is not an email address", retryable=False, code="bad_address")
        tenant_id = str((message.metadata or {}).get("tenant_id") or self.tenant_id)
        try:
            return build_email(
                message,
                from_address=message.sender or self.from_address,
                message_id=message_id or make_msgid(domain=self.from_domain),
                default_subject=self.default_subject,
                list_unsubscribe=self._list_unsubscribe(tenant_id, to),
                unsubscribe_url=self.unsubscribe_url(tenant_id, to),
            )
        except ValueError as exc:  # a header value the stdlib refuses (CR/LF, an over-long line)
            raise SendError(f"email cannot be built: {exc}", retryable=False, code="bad_header") from None

    async def send(self, message: OutboundMessage) -> str:
        """Send over SMTP and return our Message-ID without angle brackets (``abc@domain``).

        ``message.metadata["message_id_seed"]`` (letters, digits, ``.-``; 64 at most), when given, makes
        the Message-ID ``<seed@our domain>``: the dispatcher derives it from the outbox item, so a
        resend after a crash carries the same one and the recipient's mail system can show one
        message (RFC 5322 section 3.6.4: one Message-ID per message).

        Raises :class:`SendError`: retryable for connection errors, timeouts and 4xx replies
        (RFC 5321 §4.2.1 transient negative completion); not retryable for 5xx (``code`` is the
        reply code, e.g. ``"550"`` for an unknown mailbox, ``"535"`` for bad credentials) and for
        a recipient that is not an address. Error texts are the server's, with the password removed.
        """
        raw_seed = str((message.metadata or {}).get("message_id_seed") or "")[:64]
        seed = "".join(c for c in raw_seed if c.isascii() and (c.isalnum() or c in ".-"))
        mail = self.build(message, message_id=f"<{seed}@{self.from_domain}>" if seed else None)
        message_id = normalize_message_id(str(mail["Message-ID"]))
        try:
            await aiosmtplib.send(
                mail,
                hostname=self.host,
                port=self.port,
                username=self.user or None,
                password=self._password if self.user else None,
                use_tls=self.implicit_tls,
                start_tls=self.starttls,
                timeout=self.timeout_s,
                tls_context=self.tls_context,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0] if exc.recipients else None
            code = first.code if first is not None else 550
            text = first.message if first is not None else "recipient refused"
            raise self._error(code, text) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise self._error(exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendError(
                self._redact(f"SMTP send failed: {type(exc).__name__}: {exc}"), retryable=True
            ) from None
        logger.info("email sent message_id=%s", message_id)
        return message_id

    def _error(self, code: int, text: str) -> SendError:
        retryable = not 500 <= code < 600
        return SendError(
            self._redact(f"SMTP send failed ({code}): {text}"),
            retryable=retryable,
            code=str(code),
        )

    def _redact(self, text: str) -> str:
        for secret in (self._password, self._unsubscribe_secret, self._inbound_secret):
            if secret:
                text = text.replace(secret, "***")
        return text
