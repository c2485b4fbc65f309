"""Reading inbound email: RFC 5322 messages and SendGrid Inbound Parse forms.

Pure functions (no network, no storage) used by :class:`channels.email.EmailChannel`:

- :func:`parse_raw_email` turns one RFC 5322 message into an :class:`InboundMessage` (a reply, or an
  automatic reply of kind ``auto_reply``) or a :class:`DeliveryStatus` (a bounce);
- :func:`parse_sendgrid_form` reads SendGrid Inbound Parse's ``multipart/form-data`` POST ("Inbound
  Parse Webhook > Default parameters": ``from``, ``to``, ``subject``, ``text``, ``html``, ``headers``,
  ``envelope``, ``charsets``; ``email`` carries the raw MIME message when "POST the raw, full MIME
  message" is on);
- :func:`reply_text` keeps the new part of a plain-text reply (quoted history and signature
  removed), line by line in linear time; :func:`html_reply_text` does the same for HTML replies
  from the clients' markup (Gmail ``gmail_quote``, Outlook ``divRplyFwdMsg``, ``<blockquote>``,
  signature containers) before the text rules. mail-parser-reply, used before, is no longer called:
  its regular expressions are quadratic (10,000 blank lines took 21 s, issue 16);
- :func:`opt_out_keyword` finds an opt-out word (STOP, unsubscribe, désabonner ...) in the subject
  or the first line, surfaced as ``metadata["opt_out_keyword"]``;
- every input is bounded (:data:`MAX_PARSE_BYTES` and the other limits below), so a 5 MB mail costs
  well under a second and never a regex backtracking storm;
- :func:`is_auto_reply` applies RFC 3834 §5 (``Auto-Submitted``) and the de-facto headers and
  subjects of autoresponders; :func:`bounce_status` reads RFC 3464 delivery status notifications.

Message ids are handled without angle brackets (``abc@host``): that is the form
:meth:`channels.email.EmailChannel.send` returns, the inbound ``provider_message_id`` and the id a
bounce refers to, so the three match. ``metadata`` keeps the bracketed forms for threading.
"""

from __future__ import annotations

import email
import email.parser
import email.policy
import hashlib
import itertools
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any

import lxml.etree
import lxml.html
from inscriptis import Inscriptis
from lxml.html import HtmlElement

from channels.base import DeliveryStatus, InboundMessage, MessageKind, ParsedWebhook, PayloadError, clean_text

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

#: Bounds that keep every step linear and short whatever a sender writes: only the first
#: :data:`MAX_PARSE_BYTES` of a message are given to the stdlib MIME parser (pure Python, about 2 µs
#: a line; attachments are never read, and the text parts come first), only the first
#: :data:`MAX_SCAN_CHARS` characters of a body are read for the reply (the new part of a reply is at
#: its top, and at most ``MAX_INBOUND_TEXT`` characters of it are kept), only the first
#: :data:`MAX_HTML_CHARS` of an HTML body are parsed (and a tree of more than
#: :data:`MAX_HTML_ELEMENTS` elements is read as flat text), each header value is cut to
#: :data:`MAX_HEADER_CHARS` before the stdlib parses it (its address parser is superlinear),
#: a line longer than :data:`MAX_MARKER_LINE` is never a history or signature marker (so each regex
#: reads a bounded line), and a message declaring more than :data:`MAX_MULTIPARTS` MIME boundaries
#: is read for its headers only (the stdlib parser recurses once per nesting level).
MAX_PARSE_BYTES = 512 * 1024
MAX_SCAN_CHARS = 30_000
MAX_HTML_ELEMENTS = 2000
MAX_HTML_CHARS = 100_000
MAX_HEADER_CHARS = 4000
MAX_MARKER_LINE = 300
MAX_MULTIPARTS = 50
MAX_PARTS = 500
MAX_SUBJECT_CHARS = 1000


class _BoundedPolicy(email.policy.EmailPolicy):
    """``email.policy.default`` whose header values are cut to :data:`MAX_HEADER_CHARS` before
    parsing, and whose malformed headers (the stdlib raises ``IndexError``, ``ValueError``... on
    some) read as their raw unfolded text instead of raising."""

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if hasattr(value, "name"):
            return value
        raw = str(value)[:MAX_HEADER_CHARS]
        try:
            return super().header_fetch_parse(name, raw)
        except Exception:  # any parser failure: fall back to the raw text
            return " ".join(raw.split())

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        try:
            return super().header_store_parse(name, value)
        except Exception:  # any parser failure (IndexError, AttributeError ...): keep the raw text
            if isinstance(value, str) and ("\r" in value or "\n" in value):
                raise  # CR/LF: refused, as the stdlib does
            return (name, str(value)[:MAX_HEADER_CHARS])  # parsed (guarded) when read


_POLICY = _BoundedPolicy()
_BOUNDARY = re.compile(rb"boundary\s{0,10}\*?\s{0,10}=", re.IGNORECASE)
#: Whole lines that start quoted history: Outlook's "-----Original Message-----" and French
#: "Message d'origine", forwarded-message banners, a line of underscores (Outlook web), Apple
#: Mail's "Begin forwarded message:". Matched against one stripped line of bounded length.
_HISTORY_LINE = re.compile(
    r"(?:-{2,} ?(?:original message|message d'origine|forwarded message|message transf[ée]r[ée]) ?-{2,}"
    r"|_{10,}|-{10,}|begin forwarded message:|d[ée]but du message r[ée]exp[ée]di[ée] ?:)",
    re.IGNORECASE,
)
#: "From:" / "De :" opening an Outlook header block (optionally bold: "*From:*").
_FROM_LINE = re.compile(r"\*?(?:from|de|von) ?:", re.IGNORECASE)
#: The fields that follow it within a few lines.
_HEADER_FIELD = re.compile(
    r"\*?(?:sent|date|to|cc|subject|envoy[ée]|[àa]|objet|gesendet|an|betreff) ?:", re.IGNORECASE
)
#: Mobile signatures ("Sent from my iPhone", "Envoyé de mon iPhone", "Get Outlook for Android").
_MOBILE_SIGNATURE = re.compile(
    r"(?:sent from my\b|envoy[ée] (?:de|depuis) mon\b|get outlook for\b|obtenir outlook pour\b|"
    r"t[ée]l[ée]charger outlook pour\b|sent from outlook\b)",
    re.IGNORECASE,
)
#: Sign-off lines after which only a signature follows (compared whole, without final punctuation).
_SIGN_OFFS = frozenset(
    {
        "thanks",
        "thank you",
        "many thanks",
        "thanks again",
        "best",
        "best regards",
        "kind regards",
        "regards",
        "warm regards",
        "cheers",
        "sincerely",
        "yours sincerely",
        "all the best",
        "cordialement",
        "bien cordialement",
        "très cordialement",
        "bien à vous",
        "salutations",
        "sincères salutations",
        "meilleures salutations",
        "bonne journée",
        "belle journée",
        "merci",
        "merci beaucoup",
        "merci d'avance",
        "à bientôt",
        "bien à toi",
        "amitiés",
    }
)
#: A contact line of a signature block: "Tél : +33 ...", "Mobile: 06 ...", "www.acme.fr".
_CONTACT_LINE = re.compile(
    r"(?:(?:t[ée]l(?:[ée]phone)?|tel|phone|mobile|mob|portable|port|cell|fax|direct|ligne directe|"
    r"standard|office|bureau|gsm|[tmpf])\.? ?[:.]? ?[+(0-9]|(?:www\.|https?://)[^ ]+$)",
    re.IGNORECASE,
)
#: Reply and forward prefixes of a subject ("Re:", "RE :", "TR:", "Fwd:", "AW:").
_SUBJECT_PREFIX = re.compile(r"(?:(?:re|tr|fwd?|aw|wg) ?: ?)+", re.IGNORECASE)
#: Opt-out words (English and French, accents folded): a subject or first line saying only this,
#: with polite words around it, is an opt-out request the app must honour.
OPT_OUT_WORDS = frozenset(
    {
        "stop",
        "stopall",
        "unsubscribe",
        "unsub",
        "optout",
        "opt out",
        "opt-out",
        "remove",
        "remove me",
        "cancel",
        "end",
        "quit",
        "arret",
        "arreter",
        "desabonner",
        "se desabonner",
        "desabonnement",
        "desinscrire",
        "se desinscrire",
        "desinscription",
        "ne plus recevoir",
    }
)
_POLITE_WORDS = frozenset(
    {
        "please",
        "pls",
        "plz",
        "now",
        "me",
        "thanks",
        "thank",
        "you",
        "merci",
        "svp",
        "stp",
        "moi",
        "s'il",
        "vous",
        "plait",
        "te",
        "oui",
        "yes",
        "ok",
    }
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
    """Readable plain text of an HTML body (inscriptis: block layout kept, scripts/styles dropped).

    Only the first :data:`MAX_HTML_CHARS` characters are read."""
    tree = _html_tree(html)
    return _tree_text(tree) if tree is not None else ""


def _html_tree(html: str) -> HtmlElement | None:
    html = clean_text(html[:MAX_HTML_CHARS]).strip()
    if not html:
        return None
    if html.startswith("<?xml"):
        html = html.split("?>", 1)[-1]
    try:
        return lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        try:
            return lxml.html.document_fromstring("<pre>" + html + "</pre>")
        except (lxml.etree.ParserError, ValueError):
            return None


def _tree_text(tree: HtmlElement) -> str:
    """Text of ``tree``: inscriptis's layout for ordinary mail; for a tree of more than
    :data:`MAX_HTML_ELEMENTS` elements (inscriptis is pure Python, ~50 µs an element) or nested
    too deeply for it, the text nodes one per line."""
    text = ""
    if sum(1 for _ in itertools.islice(tree.iter(), MAX_HTML_ELEMENTS + 1)) <= MAX_HTML_ELEMENTS:
        try:
            text = Inscriptis(tree, None).get_text()
        except RecursionError:
            text = ""
    if not text:
        text = "\n".join(t.strip() for t in tree.itertext() if t.strip())
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


#: Elements that begin quoted history in HTML replies: everything from them to the end of the
#: document is history. Outlook desktop/web (``divRplyFwdMsg``, ``appendonsend``, ``stopSpelling``,
#: the new Outlook's reference container, the header block with a top border), Gmail
#: (``gmail_quote``), Thunderbird (``moz-cite-prefix``), Yahoo (``yahoo_quoted``).
_HTML_HISTORY_XPATH = (
    "//*[@id='divRplyFwdMsg' or @id='appendonsend' or @id='stopSpelling'"
    " or @id='mail-editor-reference-message-container' or @id='x_divRplyFwdMsg'"
    " or contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote ')"
    " or contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote_container ')"
    " or contains(concat(' ', normalize-space(@class), ' '), ' moz-cite-prefix ')"
    " or contains(concat(' ', normalize-space(@class), ' '), ' yahoo_quoted ')"
    " or contains(concat(' ', normalize-space(@class), ' '), ' OutlookMessageHeader ')"
    " or (self::div and contains(translate(@style, ' ', ''), 'border-top:solid#E1E1E1'))"
    " or (self::div and contains(translate(@style, ' ', ''), 'border-top:solid#B5C4DF'))]"
)
#: Quoted text and signatures removed wherever they are: ``<blockquote>`` (Gmail, Apple Mail,
#: Thunderbird ``type=cite``), Gmail/Outlook/Thunderbird/Apple signature containers.
_HTML_DROP_XPATH = (
    "//blockquote | //*[@id='Signature' or @id='signature' or @id='x_Signature'"
    " or @id='AppleMailSignature' or @data-smartmail='gmail_signature'"
    " or contains(concat(' ', normalize-space(@class), ' '), ' gmail_signature ')"
    " or contains(concat(' ', normalize-space(@class), ' '), ' moz-signature ')]"
)


def _cut_from(element: HtmlElement) -> None:
    """Remove ``element`` and everything after it in document order."""
    node: HtmlElement | None = element
    while node is not None:
        parent = node.getparent()
        if parent is None:
            break
        for sibling in list(node.itersiblings()):
            parent.remove(sibling)
        node = parent
    parent = element.getparent()
    if parent is not None:
        parent.remove(element)


def html_reply_text(html: str) -> str:
    """The new part of an HTML reply as text: quoted history and signatures removed by their
    markup (:data:`_HTML_HISTORY_XPATH`, :data:`_HTML_DROP_XPATH`), then the text rules of
    :func:`reply_text` for what only the words say ("De : ... Envoyé : ..." without markup)."""
    tree = _html_tree(html)
    if tree is None:
        return ""
    starts = tree.xpath(_HTML_HISTORY_XPATH)
    if starts:
        _cut_from(starts[0])
    for element in tree.xpath(_HTML_DROP_XPATH):
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)
    return reply_text(_tree_text(tree))


def _normalized_lines(text: str) -> list[str]:
    text = text[:MAX_SCAN_CHARS].replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    return [line.rstrip() for line in text.split("\n")]


def _marker(line: str) -> str:
    """A line as markers are matched: stripped, and empty when too long to be a marker."""
    stripped = line.strip()
    return stripped if len(stripped) <= MAX_MARKER_LINE else ""


def _is_attribution(text: str) -> bool:
    """ "On <date>, <name> wrote:" / "Le <date>, <name> a écrit :" (Gmail, Apple Mail, Thunderbird)."""
    lowered = " ".join(text.lower().split())
    if lowered.startswith("on ") and lowered.endswith(("wrote:", "wrote :")):
        return True
    return lowered.startswith("le ") and lowered.endswith(("a écrit :", "a écrit:", "a ecrit :", "a ecrit:"))


def _history_start(lines: list[str]) -> int:
    """Index of the first line of quoted history in ``lines`` (``len(lines)`` when none)."""
    for i, line in enumerate(lines):
        marker = _marker(line)
        if not marker:
            continue
        if _HISTORY_LINE.fullmatch(marker):
            return i
        lowered = marker.lower()
        if lowered.startswith(("on ", "le ")):
            joined = marker
            for extra in range(3):
                if _is_attribution(joined):
                    return i
                if i + extra + 1 >= len(lines):
                    break
                joined += " " + _marker(lines[i + extra + 1])
        if _FROM_LINE.match(marker):
            following = [_marker(other) for other in lines[i + 1 : i + 7]]
            if sum(1 for other in following if other and _HEADER_FIELD.match(other)) >= 2:
                return i
    return len(lines)


def _paragraphs(lines: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            out[-1].append(line)
        elif out[-1]:
            out.append([])
    return [p for p in out if p]


def _is_contact_block(paragraph: list[str]) -> bool:
    if len(paragraph) > 8 or any(len(line.strip()) > 100 for line in paragraph):
        return False
    return any(_CONTACT_LINE.match(line.strip()) for line in paragraph)


def _is_name_line(line: str) -> bool:
    """ "Jean Dupont", "Mark O'Neil": one to four capitalised words, no digit, no final punctuation."""
    words = line.strip().split()
    return (
        0 < len(words) <= 4
        and len(line.strip()) <= 60
        and all(word[0].isupper() for word in words)
        and not any(ch.isdigit() for ch in line)
        and not line.strip().endswith(("?", ".", "!", ":", ","))
    )


def _is_name_block(paragraph: list[str]) -> bool:
    """A name, then up to two short lines (title, company) without final punctuation."""
    return (
        len(paragraph) <= 3
        and _is_name_line(paragraph[0])
        and all(len(line.strip()) <= 60 and not line.strip().endswith(("?", ".", "!")) for line in paragraph)
    )


def _short_tail(lines: list[str], start: int) -> bool:
    """Whether ``lines[start:]`` holds at most 8 non-empty lines, each at most 100 characters
    (read from the end, so that the scan stops after 9 such lines: linear overall)."""
    count = 0
    for line in reversed(lines[start:]) if len(lines) - start <= 200 else ():
        if line.strip():
            count += 1
            if count > 8 or len(line.strip()) > 100:
                return False
    return len(lines) - start <= 200


def _strip_signature(lines: list[str]) -> list[str]:
    """``lines`` without a trailing signature: from "-- ", a mobile signature, or a sign-off line
    followed by at most 8 short lines; then an Outlook-style block (name, title, "Tél : ...")."""
    for i, line in enumerate(lines):
        marker = _marker(line)
        if not marker:
            continue
        if marker in ("--", "-- ", "—") or _MOBILE_SIGNATURE.match(marker):
            lines = lines[:i]
            break
        folded = marker.lower().rstrip(",.!; ")
        if i > 0 and folded in _SIGN_OFFS and _short_tail(lines, i + 1):
            lines = lines[:i]
            break
    paragraphs = _paragraphs(lines)
    if len(paragraphs) > 1 and _is_contact_block(paragraphs[-1]):
        # A contact block is a signature only with a name in it or just before it: a lead who
        # gives a phone number in its own paragraph is answering.
        if any(_is_name_line(line) for line in paragraphs[-1]):
            paragraphs.pop()
        elif len(paragraphs) > 2 and _is_name_block(paragraphs[-2]):
            del paragraphs[-2:]
    return [line for p in paragraphs for line in [*p, ""]][:-1] if paragraphs else []


def reply_text(text: str) -> str:
    """The new part of a reply: quoted history and the signature removed.

    Line by line, in time linear in the text (only its first :data:`MAX_SCAN_CHARS` characters are
    read; each marker regex reads one line of at most :data:`MAX_MARKER_LINE` characters): history
    starts at "On ... wrote:" / "Le ... a écrit :" (wrapped over up to three lines), at
    "-----Original Message-----" / "Message d'origine" / forward banners / a line of underscores,
    or at an Outlook "From:/De :" line followed by "Sent:/Envoyé :/To:/À :/Subject:/Objet :" lines;
    trailing ``>`` quoted lines are dropped; the signature goes from "-- ", a mobile signature
    ("Sent from my iPhone", "Envoyé de mon iPhone") or a sign-off line ("Best regards",
    "Cordialement", ...), and an Outlook-style block (name, title, "Tél : ...") at the end. A
    message that is nothing but a signature keeps its text rather than becoming empty.
    """
    lines = _normalized_lines(text)
    lines = lines[: _history_start(lines)]
    while lines and (lines[-1].lstrip().startswith(">") or not lines[-1].strip()):
        lines.pop()
    if not any(line.strip() for line in lines):
        return ""
    kept = _strip_signature(lines)
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    return body or "\n".join(lines).strip()


def opt_out_keyword(subject: str, body: str) -> tuple[str, str] | None:
    """``(word, "subject" | "body")`` when the subject (reply prefixes removed) or the first
    non-empty line of ``body`` is an opt-out request: one of :data:`OPT_OUT_WORDS` (case, accents
    and punctuation ignored), alone or with polite words ("please unsubscribe me", "STOP merci").
    ``None`` otherwise. Bounded: lines longer than 80 characters are not read."""
    first_line = next((line for line in _normalized_lines(body[:2000]) if line.strip()), "")
    subject = _SUBJECT_PREFIX.sub("", subject[:200].strip(), count=1) if len(subject) <= 200 else ""
    for source, line in (("subject", subject), ("body", first_line)):
        word = _opt_out_word(line)
        if word:
            return word, source
    return None


def _opt_out_word(line: str) -> str | None:
    if not line or len(line) > 80:
        return None
    decomposed = unicodedata.normalize("NFKD", line.lower().replace("’", "'"))
    folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = [w for w in re.split(r"[^a-z'\-]+", folded) if w and w not in _POLITE_WORDS]
    phrase = " ".join(words).strip("-'")
    if phrase in OPT_OUT_WORDS:
        return phrase
    compact = phrase.replace(" ", "").replace("-", "")
    return compact if compact in OPT_OUT_WORDS else None


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
    for part in _walk(msg):
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
    for part in _walk(msg):
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
    for part in _walk(msg):
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


def _walk(msg: Message) -> list[Message]:
    """``msg`` and its parts in document order, like ``Message.walk`` but without recursion and
    at most :data:`MAX_PARTS` parts."""
    out: list[Message] = []
    stack: list[Message] = [msg]
    while stack and len(out) < MAX_PARTS:
        part = stack.pop()
        out.append(part)
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend(reversed([c for c in children if isinstance(c, Message)]))
    return out


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
    except (LookupError, ValueError):  # an unknown charset, or a name holding a NUL character
        return data.decode("utf-8", "replace")


def _bodies(msg: Message) -> tuple[str, str]:
    """``(text/plain, text/html)`` of the message body, attachments skipped."""
    if isinstance(msg, EmailMessage):
        try:
            plain = msg.get_body(preferencelist=("plain",))
            html = msg.get_body(preferencelist=("html",))
            return (_part_text(plain) if plain else "", _part_text(html) if html else "")
        except (RecursionError, ValueError, LookupError, TypeError):
            pass  # a structure get_body cannot read: fall back to the first text parts
    plain_text = html_text = ""
    for part in _walk(msg):
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
    except (TypeError, ValueError, IndexError, OverflowError):
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


def _reply_of(plain: str, html: str) -> str:
    """The new part of the reply from the text and HTML bodies: the text body's, unless the HTML
    body's is markedly shorter (its markup showed quoted history or a signature the text missed)."""
    plain_reply = reply_text(plain) if plain.strip() else ""
    html_reply = html_reply_text(html) if html.strip() else ""
    if not plain_reply:
        return html_reply
    if html_reply and len(html_reply) < 0.8 * len(plain_reply):
        return html_reply
    return plain_reply


_GREETING = re.compile(
    r"(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|bonjour|bonsoir|salut|madame|monsieur|"
    r"cher|ch[èe]re)\b",
    re.IGNORECASE,
)


def _first_lines(text: str) -> str:
    """The first non-empty line of ``text``, or the second when the first is a short greeting."""
    lines = [line.strip() for line in text[:2000].splitlines() if line.strip()][:2]
    if len(lines) == 2 and len(lines[0]) <= 40 and _GREETING.match(lines[0]):
        return lines[1]
    return lines[0] if lines else ""


def _without_name_line(text: str, display_name: str) -> str:
    """``text`` without a last line that is only the sender's name or first name ("Sarah",
    "— Jean Dupont"), when something comes before it. Other short last lines (a city, a postcode)
    are answers and stay."""
    names = {" ".join(display_name.lower().split())}
    names.add(next(iter(display_name.lower().split()), ""))
    names.discard("")
    lines = text.rstrip().split("\n")
    last = lines[-1].strip().lstrip("-–— ").rstrip(".,!").lower() if lines else ""
    if len(lines) > 1 and last in names and any(line.strip() for line in lines[:-1]):
        return "\n".join(lines[:-1]).strip()
    return text


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
    subject = str(headers.get("subject", "") or "").strip()[:MAX_SUBJECT_CHARS]
    text = _without_name_line(_reply_of(plain, html), name) if name else _reply_of(plain, html)
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
    else:
        opt_out = opt_out_keyword(subject, _first_lines(text))
        if opt_out:
            metadata["opt_out_keyword"], metadata["opt_out_source"] = opt_out
    return InboundMessage(
        channel=channel,
        provider_message_id=provider_id,
        sender=sender,
        recipient=_recipient(headers, envelope_to),
        text=text,
        kind=kind,
        timestamp=_timestamp(headers.get("date")),
        contact_name=name.strip() or None,
        reply_to=normalize_message_id(in_reply_to[0]) if in_reply_to else None,
        metadata=metadata,
    )


def parse_raw_email(raw: bytes, *, channel: str = "email", envelope_to: str = "") -> ParsedWebhook:
    """Parse one RFC 5322 message: a bounce gives a status, anything else one message.

    Only the first :data:`MAX_PARSE_BYTES` are parsed (the provider id hashes all of ``raw``); a
    message declaring more than :data:`MAX_MULTIPARTS` boundaries is read for its headers only.
    Raises :class:`PayloadError` for an empty body or a message without a From address. A bounce
    that cannot be matched to a message we sent (no original Message-ID) is returned as an
    ``auto_reply`` message, so it is recorded and never answered.
    """
    if not raw.strip():
        raise PayloadError("empty email")
    if len(_BOUNDARY.findall(raw, 0, MAX_PARSE_BYTES)) > MAX_MULTIPARTS:
        return _headers_only(raw, channel=channel, envelope_to=envelope_to)
    msg = email.message_from_bytes(raw[:MAX_PARSE_BYTES], policy=_POLICY)
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


def _headers_only(raw: bytes, *, channel: str, envelope_to: str) -> ParsedWebhook:
    """A message whose MIME structure is too deep or too wide to read: its headers only, an empty
    text, and ``metadata["body_unreadable"]`` saying why (the message is kept, never answered)."""
    headers = email.parser.BytesHeaderParser(policy=_POLICY).parsebytes(raw[:MAX_PARSE_BYTES])
    if not headers.keys():
        raise PayloadError("not an RFC 5322 message: no header fields")
    message = _message_from(
        headers, channel=channel, raw_for_id=raw, plain="", html="", envelope_to=envelope_to
    )
    metadata = {**message.metadata, "body_unreadable": f"more than {MAX_MULTIPARTS} MIME multiparts"}
    return ParsedWebhook(messages=[replace(message, kind="unsupported", metadata=metadata)])


# ---------------------------------------------------------------------------- SendGrid


#: At most this many form parts are read, each with a header block of at most 16 KiB.
MAX_FORM_PARTS = 100
_MAX_PART_HEADER = 16 * 1024


@dataclass(frozen=True, slots=True)
class _FormField:
    headers: Message
    data: bytes

    def get_content_charset(self) -> str | None:
        charset = self.headers.get_content_charset()
        return charset if isinstance(charset, str) else None


def _form_fields(content_type: str, raw_body: bytes) -> dict[str, _FormField]:
    """Fields of a ``multipart/form-data`` body by name (RFC 7578), files (attachments) skipped.

    Split on the boundary with ``bytes.split`` (linear, in C): the stdlib MIME parser reads the body
    line by line in Python, about 7 s for a 5 MB attachment of empty lines. Only each part's small
    header block goes through the stdlib parser. Raises :class:`PayloadError` without a boundary."""
    holder = Message()
    holder["Content-Type"] = " ".join(content_type[:1000].split())
    boundary = holder.get_boundary()
    if not boundary or len(boundary) > 200:
        raise PayloadError("multipart/form-data without a usable boundary")
    delimiter = ("--" + boundary).encode("utf-8", "surrogateescape")
    newline = (
        b"\r\n" if b"\r\n" + delimiter in raw_body or raw_body.startswith(delimiter + b"\r\n") else b"\n"
    )
    pieces = (newline + raw_body).split(newline + delimiter)
    if len(pieces) < 2:
        raise PayloadError("multipart/form-data body without parts")
    fields: dict[str, _FormField] = {}
    for piece in pieces[1 : MAX_FORM_PARTS + 1]:
        if piece.startswith(b"--"):
            break  # the close delimiter
        line_end = piece.find(newline)
        rest = piece[line_end + len(newline) :] if line_end >= 0 else b""
        if rest.startswith(newline):
            head, data = b"", rest[len(newline) :]
        else:
            split_at = rest.find(newline + newline, 0, _MAX_PART_HEADER)
            if split_at < 0:
                continue
            head, data = rest[:split_at], rest[split_at + 2 * len(newline) :]
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head + newline * 2)
        name = headers.get_param("name", header="content-disposition")
        if not isinstance(name, str) or name in fields:
            continue
        if headers.get_filename() is not None and name != "email":
            continue  # an attachment: never read
        fields[name] = _FormField(headers, data)
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
            loaded = json.loads(fields["charsets"].data[:10_000].decode("utf-8", "replace"))
            if isinstance(loaded, dict):
                charsets = {str(k): str(v) for k, v in loaded.items()}
        except (ValueError, RecursionError):
            charsets = {}

    def value(name: str) -> str:
        part = fields.get(name)
        if part is None:
            return ""
        data = part.data[:MAX_PARSE_BYTES]
        try:
            return data.decode(charsets.get(name) or part.get_content_charset() or "utf-8", "replace")
        except (LookupError, ValueError):  # an unknown charset, or a name holding a NUL character
            return data.decode("utf-8", "replace")

    envelope_to = ""
    if value("envelope"):
        try:
            envelope = json.loads(value("envelope"))
            targets = envelope.get("to") if isinstance(envelope, dict) else None
            if isinstance(targets, list) and targets:
                envelope_to = str(targets[0]).lower()
        except (ValueError, RecursionError):
            envelope_to = ""
    if "email" in fields:
        return parse_raw_email(fields["email"].data, channel=channel, envelope_to=envelope_to)
    if not value("from"):
        raise PayloadError("SendGrid form has neither 'email' nor 'from'")
    header_block = value("headers").replace("\r\n", "\n").strip("\n")
    headers = email.message_from_string(header_block + "\n\n", policy=_POLICY)
    for name in ("from", "to", "subject"):
        if headers.get(name) is None and value(name):
            # A form field may hold CR/LF (the stdlib refuses them in a header): one line of text.
            headers[name] = " ".join(value(name)[:MAX_HEADER_CHARS].split())
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
