"""Reading inbound email: RFC 5322 messages and SendGrid Inbound Parse forms.

Pure functions (no network, no storage) used by :class:`channels.email.EmailChannel`:

- :func:`parse_raw_email` turns one RFC 5322 message into an :class:`InboundMessage` (a reply, or an
  automatic reply of kind ``auto_reply``) or a :class:`DeliveryStatus` (a bounce);
- :func:`parse_sendgrid_form` reads SendGrid Inbound Parse's ``multipart/form-data`` POST ("Inbound
  Parse Webhook > Default parameters": ``from``, ``to``, ``subject``, ``text``, ``html``, ``headers``,
  ``envelope``, ``charsets``; ``email`` carries the raw MIME message when "POST the raw, full MIME
  message" is on);
- :func:`reply_text` keeps the new part of a reply (quoted history and signature removed) with
  mail-parser-reply, plus the few French/Outlook markers it misses;
- :func:`is_auto_reply` applies RFC 3834 §5 (``Auto-Submitted``) and the de-facto headers and
  subjects of autoresponders; :func:`bounce_status` reads RFC 3464 delivery status notifications.

Message ids are handled without angle brackets (``abc@host``): that is the form
:meth:`channels.email.EmailChannel.send` returns, the inbound ``provider_message_id`` and the id a
bounce refers to, so the three match. ``metadata`` keeps the bracketed forms for threading.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import replace
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any

from inscriptis import get_text
from mailparser_reply import EmailReplyParser

from channels.base import DeliveryStatus, InboundMessage, MessageKind, ParsedWebhook, PayloadError

__all__ = [
    "auto_reply_reason",
    "bounce_status",
    "content_type_of",
    "html_to_text",
    "is_auto_reply",
    "normalize_message_id",
    "parse_message_ids",
    "parse_raw_email",
    "parse_sendgrid_form",
    "reply_text",
]

#: Languages whose reply headers ("On ... wrote:", "Le ... a écrit :", "De : / Envoyé :") and
#: signature openers mail-parser-reply looks for.
REPLY_LANGUAGES = ("en", "fr")

_POLICY = email.policy.default
#: Markers that start quoted history which mail-parser-reply 1.36 does not split on: French
#: Outlook's "Message d'origine", forwarded-message banners, a bare line of underscores (Outlook
#: web) and Apple Mail's "Begin forwarded message:".
_HISTORY_START = re.compile(
    r"^\s*(?:-{2,}\s*(?:original message|message d'origine|forwarded message|message transf[ée]r[ée])"
    r"\s*-{2,}|_{10,}|begin forwarded message:|d[ée]but du message r[ée]exp[ée]di[ée]\s*:)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
#: Mobile signatures ("Sent from my iPhone", "Envoyé de mon iPhone", "Get Outlook for Android").
_MOBILE_SIGNATURE = re.compile(
    r"^\s*(?:sent from my\b.*|envoy[ée] (?:de|depuis) mon\b.*|get outlook for\b.*|"
    r"obtenir outlook pour\b.*|t[ée]l[ée]charger outlook pour\b.*)$",
    re.IGNORECASE | re.MULTILINE,
)
#: Subjects of out-of-office and automatic replies (Outlook, Exchange, Gmail, French clients).
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:(?:re|tr|fwd?|aw)\s*:\s*)*"
    r"(?:automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|out of (?:the )?office|"
    r"r[ée]ponse automatique|message automatique|r[ée]ponse d'absence|message d'absence|absence\b|"
    r"absent\b|auto\s*:|ooo\b)",
    re.IGNORECASE,
)
_AUTO_PRECEDENCE = frozenset({"bulk", "auto_reply", "junk", "list"})
_BOUNCE_SENDERS = re.compile(r"^(?:mailer-daemon|postmaster)@", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")


# ---------------------------------------------------------------------------- message ids


def normalize_message_id(value: str | None) -> str:
    """``'<abc@host>'`` or ``'abc@host'`` -> ``'abc@host'``; ``''`` for nothing usable."""
    if not value:
        return ""
    match = _MESSAGE_ID.search(value)
    if match:
        return match.group(1)
    return value.strip().strip("<>").strip()


def parse_message_ids(value: str | None) -> list[str]:
    """All ``<id>`` of an ``In-Reply-To`` or ``References`` header, bracketed, in order, no repeats."""
    if not value:
        return []
    seen: list[str] = []
    for match in _MESSAGE_ID.finditer(str(value)):
        mid = f"<{match.group(1)}>"
        if mid not in seen:
            seen.append(mid)
    return seen


# ---------------------------------------------------------------------------- text


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML body (inscriptis: block layout kept, scripts/styles dropped)."""
    if not html.strip():
        return ""
    text = get_text(html)
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def reply_text(text: str) -> str:
    """The new part of a reply: quoted history and the signature removed.

    mail-parser-reply (languages en + fr) splits on "On ... wrote:", "Le ... a écrit :", Outlook's
    "-----Original Message-----" and "From:/De : ... Sent:/Envoyé :" blocks and cuts signatures
    ("-- ", "Best regards", "Cordialement", ...). Before it, history markers it misses are cut
    (:data:`_HISTORY_START`), and lines quoted with ``>`` at the end are dropped; after it, mobile
    signatures. A message that is nothing but a signature keeps its text rather than becoming empty.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    marker = _HISTORY_START.search(text)
    if marker:
        text = text[: marker.start()]
    lines = text.rstrip().split("\n")
    while lines and (lines[-1].lstrip().startswith(">") or not lines[-1].strip()):
        lines.pop()
    text = "\n".join(lines)
    if not text.strip():
        return ""
    parsed = EmailReplyParser(languages=list(REPLY_LANGUAGES)).read(text)
    first = parsed.replies[0] if parsed.replies else None
    body = (first.body if first is not None else "") or (parsed.latest_reply or "")
    body = _MOBILE_SIGNATURE.sub("", body)
    body = re.sub(r"\n{3,}", "\n\n", body).strip()
    return body or text.strip()


# ---------------------------------------------------------------------------- classification


def auto_reply_reason(headers: Message) -> str | None:
    """Why ``headers`` belong to an automatic message, or ``None`` for a person's message.

    - RFC 3834 §5: ``Auto-Submitted`` with any value but ``no``;
    - ``X-Autoreply`` / ``X-Autorespond`` (set by many autoresponders, e.g. Zimbra, vacation);
    - ``Precedence: bulk | auto_reply | junk | list`` (RFC 3834 §3.1.8, de-facto);
    - ``X-Auto-Response-Suppress`` is NOT used: Outlook also sets it on ordinary mail;
    - out-of-office subjects in English and French ("Automatic reply:", "Out of Office",
      "Réponse automatique :", "Absence", ...).
    """
    auto_submitted = str(headers.get("auto-submitted", "") or "").strip().lower()
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return f"auto-submitted: {auto_submitted}"
    for name in ("x-autoreply", "x-autorespond"):
        if headers.get(name) is not None:
            return name
    precedence = str(headers.get("precedence", "") or "").strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return f"precedence: {precedence}"
    subject = str(headers.get("subject", "") or "")
    if _AUTO_SUBJECT.match(subject):
        return "subject"
    return None


def is_auto_reply(headers: Message) -> bool:
    """Whether the message is an automatic reply (see :func:`auto_reply_reason`)."""
    return auto_reply_reason(headers) is not None


def _is_dsn(msg: Message) -> bool:
    return msg.get_content_type() == "multipart/report" and (
        str(msg.get_param("report-type", "") or "").lower() == "delivery-status"
    )


def bounce_status(msg: Message, *, channel: str = "email") -> DeliveryStatus | None:
    """The :class:`DeliveryStatus` a bounce carries, or ``None`` when ``msg`` is not a failure report.

    Reads an RFC 3464 DSN (``multipart/report; report-type=delivery-status``): per-recipient
    ``Action: failed`` gives ``undeliverable`` with ``Final-Recipient`` (or ``Original-Recipient``)
    as ``recipient`` and ``Status`` (e.g. ``5.1.1``) as ``error_code``; ``Diagnostic-Code`` is the
    ``error_title``. ``delayed``/``delivered`` reports give ``None``. The original Message-ID comes
    from the ``message/rfc822`` or ``text/rfc822-headers`` part (RFC 3462 §2); without one the
    bounce cannot be matched and ``None`` is returned. Non-standard bounces from MAILER-DAEMON or
    postmaster are read the same way when they attach the original message.
    """
    sender = parseaddr(str(msg.get("from", "") or ""))[1]
    if not _is_dsn(msg) and not _BOUNCE_SENDERS.match(sender):
        return None
    original_id = _original_message_id(msg)
    if not original_id:
        return None
    recipient, status_code, diagnostic, action = "", None, None, "failed" if not _is_dsn(msg) else ""
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        for block in blocks[1:] if len(blocks) > 1 else blocks:
            if not isinstance(block, Message):
                continue
            block_action = str(block.get("action", "") or "").strip().lower()
            if not block_action:
                continue
            action = block_action
            recipient = _dsn_address(block.get("final-recipient") or block.get("original-recipient"))
            status_code = str(block.get("status", "") or "").strip() or None
            diagnostic = str(block.get("diagnostic-code", "") or "").strip() or None
            if action == "failed":
                break
    if action != "failed":
        return None
    ours = _first_address(msg.get("to"))
    return DeliveryStatus(
        channel=channel,
        provider_message_id=original_id,
        status="undeliverable",
        recipient=recipient,
        sender=ours,
        timestamp=_timestamp(msg.get("date")),
        error_code=status_code,
        error_title=diagnostic[:200] if diagnostic else None,
    )


def _dsn_actions(msg: Message) -> list[str]:
    """The per-recipient ``Action`` values of a DSN (lower-case), empty for other messages."""
    actions = []
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            for block in payload if isinstance(payload, list) else []:
                if not isinstance(block, Message):
                    continue
                action = str(block.get("action", "") or "").strip().lower()
                if action:
                    actions.append(action)
    return actions


def _dsn_address(value: Any) -> str:
    """``'rfc822; Jane@Example.com'`` -> ``'jane@example.com'`` (RFC 3464 §2.3.2 address-type)."""
    text = str(value or "").strip()
    if ";" in text:
        text = text.split(";", 1)[1]
    return parseaddr(text.strip())[1].lower() or text.strip().lower()


def _original_message_id(msg: Message) -> str:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                found = normalize_message_id(str(inner[0].get("message-id", "") or ""))
                if found:
                    return found
        elif ctype == "text/rfc822-headers":
            headers = email.message_from_bytes(_part_bytes(part) + b"\r\n", policy=_POLICY)
            found = normalize_message_id(str(headers.get("message-id", "") or ""))
            if found:
                return found
    return ""


# ---------------------------------------------------------------------------- messages


def _part_bytes(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "replace") if isinstance(raw, str) else b""


def _part_text(part: Message) -> str:
    """Decoded text of a leaf part; unknown charsets fall back to UTF-8 with replacement."""
    charset = part.get_content_charset() or "utf-8"
    data = _part_bytes(part)
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def _bodies(msg: Message) -> tuple[str, str]:
    """``(text/plain, text/html)`` of the message body, attachments skipped."""
    if isinstance(msg, EmailMessage):
        plain = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        return (_part_text(plain) if plain else "", _part_text(html) if html else "")
    plain_text = html_text = ""
    for part in msg.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        if part.get_content_type() == "text/plain" and not plain_text:
            plain_text = _part_text(part)
        elif part.get_content_type() == "text/html" and not html_text:
            html_text = _part_text(part)
    return plain_text, html_text


def _first_address(value: Any) -> str:
    if not value:
        return ""
    pairs = getaddresses([str(value)])
    for _, addr in pairs:
        if addr and "@" in addr:
            return addr.strip().lower()
    return ""


def _timestamp(value: Any) -> float:
    if not value:
        return 0.0
    try:
        return parsedate_to_datetime(str(value)).timestamp()
    except (TypeError, ValueError, IndexError):
        return 0.0


def _recipient(msg: Message, envelope_to: str = "") -> str:
    """Our receiving address: SendGrid's envelope, else Delivered-To / X-Original-To, else To, else Cc."""
    for value in (
        envelope_to,
        msg.get("delivered-to"),
        msg.get("x-original-to"),
        msg.get("to"),
        msg.get("cc"),
    ):
        found = _first_address(value)
        if found:
            return found
    return ""


def _message_from(
    headers: Message,
    *,
    channel: str,
    raw_for_id: bytes,
    plain: str,
    html: str,
    envelope_to: str = "",
) -> InboundMessage:
    name, sender = parseaddr(str(headers.get("from", "") or ""))
    sender = sender.strip().lower()
    if not sender:
        raise PayloadError("email has no From address")
    message_id_header = str(headers.get("message-id", "") or "")
    provider_id = normalize_message_id(message_id_header)
    if not provider_id:
        provider_id = "sha256-" + hashlib.sha256(raw_for_id).hexdigest()[:40]
    in_reply_to = parse_message_ids(str(headers.get("in-reply-to", "") or ""))
    references = parse_message_ids(str(headers.get("references", "") or ""))
    subject = str(headers.get("subject", "") or "").strip()
    body = plain if plain.strip() else html_to_text(html)
    reason = auto_reply_reason(headers)
    kind: MessageKind = "auto_reply" if reason else "text"
    metadata: dict[str, Any] = {
        "message_id": f"<{provider_id}>" if normalize_message_id(message_id_header) else None,
        "in_reply_to": in_reply_to[0] if in_reply_to else None,
        "references": references,
        "subject": subject,
    }
    if reason:
        metadata["auto_reply_reason"] = reason
    return InboundMessage(
        channel=channel,
        provider_message_id=provider_id,
        sender=sender,
        recipient=_recipient(headers, envelope_to),
        text=reply_text(body),
        kind=kind,
        timestamp=_timestamp(headers.get("date")),
        contact_name=name.strip() or None,
        reply_to=normalize_message_id(in_reply_to[0]) if in_reply_to else None,
        metadata=metadata,
    )


def parse_raw_email(raw: bytes, *, channel: str = "email", envelope_to: str = "") -> ParsedWebhook:
    """Parse one RFC 5322 message: a bounce gives a status, anything else one message.

    Raises :class:`PayloadError` for an empty body or a message without a From address. A bounce
    that cannot be matched to a message we sent (no original Message-ID) is returned as an
    ``auto_reply`` message, so it is recorded and never answered.
    """
    if not raw.strip():
        raise PayloadError("empty email")
    msg = email.message_from_bytes(raw, policy=_POLICY)
    if not msg.keys():
        raise PayloadError("not an RFC 5322 message: no header fields")
    status = bounce_status(msg, channel=channel)
    if status is not None:
        return ParsedWebhook(statuses=[status])
    actions = _dsn_actions(msg)
    if actions and "failed" not in actions:
        return ParsedWebhook()  # a "delayed"/"delivered" report: nothing to record
    plain, html = _bodies(msg)
    message = _message_from(
        msg, channel=channel, raw_for_id=raw, plain=plain, html=html, envelope_to=envelope_to
    )
    if message.kind == "text" and (_is_dsn(msg) or _BOUNCE_SENDERS.match(message.sender)):
        message = replace(message, kind="bounce", metadata={**message.metadata, "unmatched_bounce": True})
    return ParsedWebhook(messages=[message])


# ---------------------------------------------------------------------------- SendGrid


def _form_fields(content_type: str, raw_body: bytes) -> dict[str, Message]:
    """Parts of a ``multipart/form-data`` body by field name (stdlib MIME parser, RFC 7578)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    form = email.message_from_bytes(head + raw_body, policy=email.policy.compat32)
    if not form.is_multipart():
        raise PayloadError("multipart/form-data body without parts")
    fields: dict[str, Message] = {}
    for part in form.get_payload():
        if not isinstance(part, Message):
            continue
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str) and name not in fields:
            fields[name] = part
    return fields


def parse_sendgrid_form(content_type: str, raw_body: bytes, *, channel: str = "email") -> ParsedWebhook:
    """Parse SendGrid Inbound Parse's form POST.

    With the raw-MIME option the ``email`` field is parsed by :func:`parse_raw_email`. Otherwise the
    ``headers`` field (the original header block) gives Message-ID, threading and auto-reply
    headers, ``text``/``html`` the bodies (decoded with the ``charsets`` JSON field), ``from``/``to``
    and ``envelope.to`` the addresses. Raises :class:`PayloadError` when neither ``email`` nor
    ``from`` is present.
    """
    fields = _form_fields(content_type, raw_body)
    charsets: dict[str, str] = {}
    if "charsets" in fields:
        try:
            loaded = json.loads(_part_bytes(fields["charsets"]).decode("utf-8", "replace"))
            if isinstance(loaded, dict):
                charsets = {str(k): str(v) for k, v in loaded.items()}
        except ValueError:
            charsets = {}

    def value(name: str) -> str:
        part = fields.get(name)
        if part is None:
            return ""
        data = _part_bytes(part)
        try:
            return data.decode(charsets.get(name) or part.get_content_charset() or "utf-8", "replace")
        except LookupError:
            return data.decode("utf-8", "replace")

    envelope_to = ""
    if value("envelope"):
        try:
            envelope = json.loads(value("envelope"))
            targets = envelope.get("to") if isinstance(envelope, dict) else None
            if isinstance(targets, list) and targets:
                envelope_to = str(targets[0]).lower()
        except ValueError:
            envelope_to = ""
    if "email" in fields:
        return parse_raw_email(_part_bytes(fields["email"]), channel=channel, envelope_to=envelope_to)
    if not value("from"):
        raise PayloadError("SendGrid form has neither 'email' nor 'from'")
    header_block = value("headers").replace("\r\n", "\n").strip("\n")
    headers = email.message_from_string(header_block + "\n\n", policy=_POLICY)
    for name in ("from", "to", "subject"):
        if headers.get(name) is None and value(name):
            headers[name] = value(name)
    status = bounce_status(headers, channel=channel)
    if status is not None:
        return ParsedWebhook(statuses=[status])
    message = _message_from(
        headers,
        channel=channel,
        raw_for_id=raw_body,
        plain=value("text"),
        html=value("html"),
        envelope_to=envelope_to,
    )
    return ParsedWebhook(messages=[message])


def content_type_of(headers: Mapping[str, str]) -> str:
    """The request's Content-Type header (any case), or ``''``."""
    for key, val in headers.items():
        if key.lower() == "content-type":
            return val
    return ""
