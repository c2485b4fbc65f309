"""Twilio Programmable Messaging (SMS): verify and parse webhooks, send messages, count segments.

Wire formats follow Twilio's documentation and the OpenAPI description Twilio publishes
(``twilio/twilio-oai``, ``twilio_api_v2010``):

- signatures: "Webhooks security" (``X-Twilio-Signature``: base64 HMAC-SHA1, keyed with the auth
  token, of the full public URL followed by every POST parameter's name and value sorted by name),
  checked as the twilio package's ``RequestValidator`` checks it (:class:`TwilioSigner`: the same
  string signed, the key's HMAC blocks hashed once; the validator itself for ``bodySHA256`` URLs);
- inbound messages: "Twilio's request to your incoming message Webhook URL" (form-encoded
  ``MessageSid``, ``From``, ``To``, ``Body``, ``NumMedia``, ``MediaUrl{N}``, ``MediaContentType{N}``);
- delivery statuses: "Track the Message Status of Outbound Messages" (``MessageStatus``,
  ``ErrorCode``, ``ErrorMessage``) and "Messages resource > Message Status values";
- sending: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` through the twilio package
  ("Messages resource > Create a Message resource"; ``Body`` at most 1600 characters);
- errors: "Twilio Error and Warning Dictionary" (21211, 21408, 21610, 21614, 30003-30008);
- segments: "What the Heck is a Segment?" and 3GPP TS 23.038 (GSM-7 160/153 septets, UCS-2 70/67).

The module is pure apart from :meth:`TwilioSmsChannel.send`, which makes one HTTP request.
"""

from __future__ import annotations

import base64
import functools
import hmac
import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs, unquote, urlparse, urlsplit

import aiohttp
import gsm0338  # noqa: F401 - registers the "gsm03.38" codec
import phonenumbers
from twilio.base import values as twilio_values
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator, add_port, remove_port
from twilio.rest import Client

from channels.base import (
    Channel,
    ChannelTraits,
    DeliveryStatus,
    InboundMessage,
    MessageKind,
    OutboundMessage,
    ParsedWebhook,
    PayloadError,
    SendError,
    SignatureError,
    StatusName,
    guarded_parse,
    guarded_verify,
    numbered_choices,
)
from kernel.signing import Hmac

__all__ = [
    "EVENT_HEADER",
    "INBOUND_PATH",
    "MAX_BODY",
    "STATUS_PATH",
    "TwilioSmsChannel",
    "build_body",
    "normalize_number",
    "sms_encoding",
    "sms_segments",
]

logger = logging.getLogger(__name__)

#: Where the app serves the two webhooks (the status callback URL sent with each message).
INBOUND_PATH = "/api/webhooks/twilio/sms"
STATUS_PATH = "/api/webhooks/twilio/status"
#: Header the app sets to say which webhook it received: ``inbound`` or ``status``. Without it,
#: a body carrying ``MessageStatus`` (other than received/receiving) is read as a status.
EVENT_HEADER = "x-leadwarm-twilio-event"
#: "Messages resource > Body": at most 1600 characters.
MAX_BODY = 1600
#: Inbound bounds: a form over :data:`MAX_WEBHOOK_BYTES` is refused (a real one, with 10 media
#: URLs, is a few KB); media items read are at most :data:`MAX_MEDIA` ("Receive an MMS": Twilio
#: delivers at most 10 media per message), whatever ``NumMedia`` says.
MAX_WEBHOOK_BYTES = 64 * 1024
MAX_MEDIA = 10

_SIGNATURE_HEADER = "x-twilio-signature"
_FORM_TYPE = "application/x-www-form-urlencoded"
_USER_AGENT = "LeadWarm/0.1.0"

#: "Messages resource > Message Status values" -> our status. ``sending`` is still with Twilio;
#: ``canceled`` is a scheduled message that will never leave; inbound statuses are not ours.
_STATUS_MAP: dict[str, StatusName] = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}
_INBOUND_STATUSES = frozenset({"received", "receiving"})
#: Error codes that say the address itself cannot receive SMS, so the app may try another
#: channel: 21211 invalid 'To' number, 21614 'To' is not a mobile number, 30003 unreachable
#: handset, 30005 unknown handset, 30006 landline or unreachable carrier.
UNDELIVERABLE_CODES = frozenset({"21211", "21614", "30003", "30005", "30006"})
#: Titles for common codes when Twilio sends no ``ErrorMessage`` (Error and Warning Dictionary).
ERROR_TITLES: dict[str, str] = {
    "21211": "Invalid 'To' phone number",
    "21408": "Permission to send an SMS has not been enabled for the region",
    "21610": "Attempt to send to unsubscribed recipient",
    "21614": "'To' number is not a valid mobile number",
    "30003": "Unreachable destination handset",
    "30004": "Message blocked",
    "30005": "Unknown destination handset",
    "30006": "Landline or unreachable carrier",
    "30007": "Message filtered (carrier violation)",
    "30008": "Unknown error",
}
#: Inbound webhook fields kept as message metadata (``OptOutType`` is Twilio's Advanced Opt-Out
#: verdict: STOP, START or HELP).
_INBOUND_META = (
    "AccountSid",
    "MessagingServiceSid",
    "NumSegments",
    "SmsStatus",
    "OptOutType",
    "FromCountry",
    "FromState",
    "FromCity",
    "FromZip",
    "ToCountry",
)

SmsEncoding = Literal["GSM-7", "UCS-2"]


# --------------------------------------------------------------------------- helpers


def normalize_number(raw: str, *, default_region: str | None = None) -> str:
    """A phone number in E.164 (``'+1 (650) 555-1234'`` -> ``'+16505551234'``).

    Numbers without ``+`` are read in ``default_region`` (ISO 3166 alpha-2) when given. What is
    not a possible phone number (a short code such as ``'40404'``, an alphanumeric sender id) is
    returned stripped, unchanged. Never raises.
    """
    value = raw.strip()
    if not value:
        return ""
    if _is_e164(value) and _kept_by_parse(value):
        return value  # what phonenumbers gives back, without its parse (a Twilio sender's case)
    return _normalized(value, default_region)


def _kept_by_parse(value: str) -> bool:
    """Whether :func:`_normalized` gives an E.164-shaped ``value`` (``+`` and 7 to 15 digits) back
    unchanged, decided without ``phonenumbers.parse`` (about a fifth of a Twilio webhook's CPU for
    a sender not seen before: a campaign's replies come from thousands of numbers).

    ``parse`` reads the country calling code as the shortest prefix of 1 to 3 digits that names one
    (``_extract_country_code``); with ``+``, the only step that can change the digits after it is
    the national-prefix strip (``_maybe_strip_national_prefix_carrier_code``), which happens only
    when the country's ``national_prefix_for_parsing`` pattern matches the start of the national
    number (``+33 0612...`` -> ``+33612...``). Otherwise the result is ``value`` itself: formatted
    back to E.164 when possible (leading zeros kept), returned as given when not. ``False`` (the
    full parse decides) for no known calling code, and when the prefix pattern matches."""
    digits = value[1:]
    if digits[0] == "0":
        return False
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            pattern = _national_prefix(code)
            return pattern is not None and pattern.match(digits[size:]) is None
    return False


@functools.lru_cache(maxsize=512)
def _national_prefix(code: int) -> re.Pattern[str] | None:
    """The national-prefix pattern ``phonenumbers.parse`` applies to a number of calling code
    ``code`` (its main region's ``national_prefix_for_parsing``; ``re.compile`` of an empty pattern
    when the region has none, which matches nothing ``parse`` would strip), or ``None`` when the
    code has no metadata (the full parse decides)."""
    region = phonenumbers.region_code_for_country_code(code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    return re.compile(prefix) if prefix else re.compile(r"(?!)")


@functools.lru_cache(maxsize=4096)
def _normalized(value: str, default_region: str | None) -> str:
    """:func:`normalize_number` of a stripped, non-empty ``value``; cached (pure, and a
    ``phonenumbers.parse`` cost more than the rest of a Twilio webhook's parse: our own ``To``
    number comes in every webhook). Bounded: at most 4,096 entries."""
    try:
        parsed = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_possible_number(parsed):
        return value
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _is_e164(value: str) -> bool:
    return value.startswith("+") and value[1:].isdigit() and 8 <= len(value) <= 16


def sms_encoding(text: str) -> SmsEncoding:
    """``'GSM-7'`` when every character is in the GSM 03.38 alphabet (basic or extension
    table), else ``'UCS-2'`` (3GPP TS 23.038)."""
    try:
        text.encode("gsm03.38")
    except UnicodeEncodeError:
        return "UCS-2"
    return "GSM-7"


def sms_segments(text: str) -> int:
    """How many SMS segments carry ``text``; 0 for an empty text.

    GSM-7: 160 septets fit one segment, else 153 per segment; extension-table characters
    (``€ [ ] { } ~ ^ \\ |`` and form feed) take two septets and are never split across
    segments. UCS-2 (any character outside GSM-7): 70 UTF-16 code units fit one segment, else
    67 per segment; a surrogate pair (emoji) is never split. Source: 3GPP TS 23.038 and Twilio,
    "What the Heck is a Segment?".
    """
    if not text:
        return 0
    if sms_encoding(text) == "GSM-7":
        sizes = [len(ch.encode("gsm03.38")) for ch in text]
        single, multi = 160, 153
    else:
        sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        single, multi = 70, 67
    if sum(sizes) <= single:
        return 1
    segments, used = 1, 0
    for size in sizes:
        if used + size > multi:
            segments += 1
            used = 0
        used += size
    return segments


def build_body(message: OutboundMessage, *, limit: int = MAX_BODY) -> str:
    """The SMS text for ``message``: choices as a numbered list (SMS has no buttons), at most
    ``limit`` characters. When too long, the text is cut (ending with ``…``) so that the choice
    list stays whole; a choice list that alone exceeds the limit is cut too."""
    body = numbered_choices(message.text.strip(), message.choices)
    if len(body) <= limit:
        return body
    tail = numbered_choices("", message.choices) if message.choices else ""
    room = limit - len(tail) - 1
    if room < 1:
        return body[: limit - 1].rstrip() + "…"
    return message.text.strip()[:room].rstrip() + "…" + tail


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (the contract promises lower-case keys; be lenient)."""
    value = headers.get(name)
    if value is not None:
        return value
    for key, val in headers.items():
        if key.lower() == name:
            return val
    return None


class _FormParams(dict[str, list[str]]):
    """Form fields as lists, with the ``getlist`` that ``RequestValidator`` uses for repeated keys."""

    def getlist(self, name: str) -> list[str]:
        return self[name]


def _form(headers: Mapping[str, str], raw_body: bytes) -> list[tuple[str, str]]:
    """Parse a form-encoded body strictly: its ``(name, value)`` fields in order."""
    content_type = (_header(headers, "content-type") or _FORM_TYPE).split(";")[0].strip().lower()
    if content_type != _FORM_TYPE:
        raise PayloadError(f"content type must be {_FORM_TYPE}, got {content_type[:60]!r}")
    try:
        text = raw_body.decode("utf-8")
        pairs = form_fields(text) if text else []
    except UnicodeDecodeError:
        raise PayloadError("body is not UTF-8") from None
    except ValueError as exc:
        raise PayloadError(f"body is not form-encoded: {exc}") from None
    return pairs


def _form_part(part: str) -> str:
    if "+" in part:
        part = part.replace("+", " ")
    return unquote(part, errors="strict") if "%" in part else part


def form_fields(text: str) -> list[tuple[str, str]]:
    """``urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True,
    errors="strict")``: the same ``(name, value)`` pairs in order and the same errors
    (``ValueError`` for a field without ``=``, an empty field included;
    ``UnicodeDecodeError`` for a percent escape that is not UTF-8), without its per-field calls
    (two ``unquote`` calls and two result coercions per field: a sixth of a Twilio webhook's
    parse). ``text`` must not be empty (``parse_qsl`` gives ``[]`` for it)."""
    pairs = []
    for field in text.split("&"):
        name, separator, value = field.partition("=")
        if not separator:
            raise ValueError(f"bad query field: {field!r}")
        pairs.append((_form_part(name), _form_part(value)))
    return pairs


#: URLs whose signature candidates are cached (:func:`_url_candidates`) are at most this long.
_CACHED_URL_CHARS = 512


@functools.lru_cache(maxsize=64)
def _cached_candidates(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    return (add_port(parsed), remove_port(parsed)) if parsed.port else (remove_port(parsed), add_port(parsed))


def _url_candidates(url: str) -> tuple[str, str]:
    """The two URLs the twilio validator signs for ``url`` (with its default port and without),
    the one in the form given first (with its port when it names one, else without). Cached for
    URLs of at most :data:`_CACHED_URL_CHARS` characters (a route's URL is one string per
    PUBLIC_BASE_URL and query): a ``urlparse`` and two rebuilds per webhook otherwise. Raises
    ``ValueError`` for a port out of range."""
    if len(url) > _CACHED_URL_CHARS:
        return _cached_candidates.__wrapped__(url)
    return _cached_candidates(url)


class TwilioSigner:
    """``X-Twilio-Signature`` under one auth token, as the twilio package's ``RequestValidator``
    computes it (Twilio, "Webhooks security"): base64 of the HMAC-SHA1 of the URL followed by
    each parameter name (sorted) and each of its distinct values (sorted), UTF-8 encoded. The
    key's padded HMAC blocks are hashed once (:class:`kernel.signing.Hmac`), not per signature as
    ``RequestValidator`` does, and nothing else is built per webhook."""

    __slots__ = ("_mac", "_validator")

    def __init__(self, auth_token: str) -> None:
        self._mac = Hmac(auth_token.encode("utf-8"), "sha1")
        self._validator = RequestValidator(auth_token)

    def signature(self, url: str, params: Mapping[str, list[str]]) -> str:
        """``RequestValidator(auth_token).compute_signature(url, params)`` for form fields as
        lists (``{name: [value, ...]}``). Raises ``UnicodeEncodeError`` for a lone surrogate, as
        the validator does."""
        parts = [url]
        for name in sorted(params):
            for value in sorted(set(params[name])):
                parts += (name, value)
        return base64.b64encode(self._mac.digest("".join(parts).encode("utf-8"))).decode("ascii")

    def valid(self, url: str, params: Mapping[str, list[str]] | str, signature: str) -> bool:
        """``RequestValidator(auth_token).validate(url, params, signature)``, which accepts the
        URL with or without its default port and computes both signatures every time: here the
        URL in the form it was given is tried first, the other only when it fails (the same two
        candidates and answers, half the HMACs on the common path, whether PUBLIC_BASE_URL names
        a port or not). A ``bodySHA256`` URL (``params`` the body text) goes to the validator as
        it is. The comparison is constant-time."""
        if isinstance(params, str):
            return bool(self._validator.validate(url, params, signature))
        given = signature.encode("utf-8", errors="surrogatepass")
        return any(
            hmac.compare_digest(self.signature(candidate, params).encode("ascii"), given)
            for candidate in _url_candidates(url)
        )


def _required(form: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = form.get(name, "").strip()
        if value:
            return value
    raise PayloadError(f"{names[0]} is missing")


# --------------------------------------------------------------------------- the channel


class _AsyncHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # twilio ships no type hints
    """twilio's aiohttp client, with two fixes: its constructor ``timeout`` reaches no request
    (the generated ``create_async`` passes ``timeout=None``, which aiohttp reads as "no limit"),
    and its ``auth=BasicAuth(...)`` is deprecated by aiohttp 3.14; so apply the timeout and send
    Basic credentials as an ``Authorization`` header (RFC 7617)."""

    async def request(self, method: str, url: str, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        auth = kwargs.pop("auth", None)
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Authorization": f"Basic {token}"}
        return await super().request(method, url, **kwargs)


class TwilioSmsChannel(Channel):
    """The Twilio SMS channel.

    ``account_sid`` (TWILIO_ACCOUNT_SID) and ``auth_token`` (TWILIO_AUTH_TOKEN) authorise sends
    and sign webhooks; ``from_number`` (TWILIO_PHONE_NUMBER) is the sending number (stored in
    E.164). ``api_base_url`` replaces ``https://api.twilio.com`` (tests point it at a local
    server). ``public_base_url`` (PUBLIC_BASE_URL) is where Twilio reaches the app: the status
    callback URL is ``public_base_url + STATUS_PATH`` (none when empty). ``http_client`` is a
    twilio async HTTP client used as given and not closed by :meth:`aclose`; without one the
    channel makes its own (aiohttp) with ``timeout_s`` seconds per request. ``default_region``
    reads numbers that lack ``+``. The auth token never appears in ``repr``, logs or exceptions.
    """

    name: ClassVar[str] = "sms"
    traits: ClassVar[ChannelTraits] = ChannelTraits(
        address_field="phone",
        keyword_optouts=True,
        max_text_chars=MAX_BODY,
        phone_based=True,
        consent_on_inbound=True,
        max_body_bytes=MAX_WEBHOOK_BYTES,
        max_inbound_chars=MAX_BODY,
        charset_priced=True,  # a no-break space is not GSM-7: it would double a segment's cost
    )

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        public_base_url: str,
        api_base_url: str = "https://api.twilio.com",
        http_client: Any = None,
        timeout_s: float = 15.0,
        default_region: str | None = None,
    ) -> None:
        self.account_sid = account_sid.strip()
        self._auth_token = auth_token
        self.default_region = default_region
        self.from_number = normalize_number(from_number, default_region=default_region)
        self.public_base_url = public_base_url.rstrip("/")
        self.api_base_url = api_base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._http = http_client
        self._owns_http = http_client is None
        self._client: Client | None = None
        self._last_form: tuple[bytes, list[tuple[str, str]]] | None = None
        """The last body :meth:`parse` read and its fields, which :meth:`verify` reuses."""
        self._signer: TwilioSigner | None = None
        """The auth token's signer, made on the first :meth:`verify`."""

    def __repr__(self) -> str:
        return (
            f"TwilioSmsChannel(account_sid={self.account_sid!r}, from_number={self.from_number!r}, "
            f"api_base_url={self.api_base_url!r})"
        )

    @property
    def status_callback_url(self) -> str | None:
        """``public_base_url + STATUS_PATH``, or ``None`` without a public base URL."""
        return self.public_base_url + STATUS_PATH if self.public_base_url else None

    # ------------------------------------------------------------------ webhooks

    def receiving_addresses(self) -> list[str]:
        """The sending number (E.164), which Twilio's webhooks name in ``To`` (inbound) and
        ``From`` (status callbacks)."""
        return [self.from_number] if self.from_number else []

    def verify(self, headers: Mapping[str, str], raw_body: bytes, *, url: str = "") -> None:
        """Check ``X-Twilio-Signature`` for ``url`` and the form parameters of ``raw_body``.

        ``url`` must be the public URL Twilio called, query string included (behind a proxy the
        app rebuilds it from PUBLIC_BASE_URL). The check is the twilio package's
        ``RequestValidator(auth_token).validate`` (Twilio, "Webhooks security"), which also
        accepts the URL with or without its default port and handles ``bodySHA256`` URLs.
        Raises :class:`SignatureError` (and nothing else, whatever the input) when no auth token is
        configured, the header is missing, ``url`` is empty, or the signature does not match.
        """
        guarded_verify(self.name, lambda: self._verify(headers, raw_body, url))

    def _verify(self, headers: Mapping[str, str], raw_body: bytes, url: str) -> None:
        if not self._auth_token:
            raise SignatureError("Twilio auth token is not configured; refusing the webhook")
        signature = _header(headers, _SIGNATURE_HEADER)
        if not signature:
            raise SignatureError("missing X-Twilio-Signature header")
        if not url:
            raise SignatureError("the public URL of the webhook is needed to check its signature")
        text = raw_body.decode("utf-8", errors="replace")
        params: Any
        query = urlsplit(url).query
        # the query is parsed only when it could name bodySHA256 (plainly or percent-encoded)
        if ("%" in query or "bodySHA256" in query) and "bodySHA256" in parse_qs(query):
            params = text  # JSON webhooks sign a hash of the body in the URL instead of the fields
        else:
            params = _FormParams()
            last = self._last_form
            # the fields parse() read from these very bytes (a strict parse that succeeded gives
            # the same fields as the lenient one below), else the body's own
            fields = last[1] if last is not None and last[0] == raw_body else None
            if fields is None:
                params.update(parse_qs(text, keep_blank_values=True))
            for name, value in fields or ():
                params.setdefault(name, []).append(value)
        signer = self._signer
        if signer is None:
            signer = self._signer = TwilioSigner(self._auth_token)
        if not signer.valid(url, params, signature.strip()):
            raise SignatureError("X-Twilio-Signature does not match the URL and body")

    def parse(self, headers: Mapping[str, str], raw_body: bytes) -> ParsedWebhook:
        """Turn an inbound-message webhook or a status callback into a message or a status.

        :data:`EVENT_HEADER` (set by the app per route) says which; without it a body with a
        ``MessageStatus`` other than received/receiving is a status. Inbound: ``From`` is the
        sender and ``To`` our number (both E.164); media makes kind ``media`` with ``Body`` as
        text. Status: ``From`` (our number) becomes ``sender``, ``To`` ``recipient``; unknown or
        inbound statuses yield nothing. At most :data:`MAX_MEDIA` media are read (``MediaUrl0`` to
        ``MediaUrl9``), whatever ``NumMedia`` says. The parser is total
        (:func:`channels.base.guarded_parse`): it raises :class:`PayloadError` for a body over
        :data:`MAX_WEBHOOK_BYTES`, not form-encoded UTF-8, lacking ``MessageSid``/``From``
        (inbound) or ``MessageSid``/``MessageStatus`` (status), or with a ``NumMedia`` that is not
        a non-negative integer. A ``Body`` over :data:`MAX_BODY` characters is cut
        (``metadata["truncated_from"]``); lone surrogates are replaced by U+FFFD.
        """
        return guarded_parse(self.name, self.traits, raw_body, lambda: self._parse(headers, raw_body))

    def _parse(self, headers: Mapping[str, str], raw_body: bytes) -> ParsedWebhook:
        fields = _form(headers, raw_body)
        self._last_form = (raw_body, fields)
        form = dict(fields)  # the last value wins for a repeated field
        event = (_header(headers, EVENT_HEADER) or "").strip().lower()
        if not event:
            status = form.get("MessageStatus", "").strip().lower()
            event = "status" if status and status not in _INBOUND_STATUSES else "inbound"
        if event == "status":
            parsed = self._parse_status(form)
            return ParsedWebhook(statuses=[parsed] if parsed is not None else [])
        if event != "inbound":
            raise PayloadError(f"unknown Twilio event {event[:40]!r}")
        return ParsedWebhook(messages=[self._parse_inbound(form)])

    def _number(self, raw: str) -> str:
        return normalize_number(raw, default_region=self.default_region)

    def _parse_inbound(self, form: Mapping[str, str]) -> InboundMessage:
        sid = _required(form, "MessageSid", "SmsMessageSid", "SmsSid")
        sender = _required(form, "From")
        if ":" in sender:
            raise PayloadError(f"From {sender.split(':')[0][:20]}:… is not an SMS address")
        raw_count = (form.get("NumMedia") or "0").strip()
        if not (raw_count.isascii() and raw_count.isdigit()):
            raise PayloadError(f"NumMedia must be a non-negative integer, got {raw_count[:20]!r}")
        # Never int(raw_count): 10**30 must not drive a loop, and 5,000 digits exceed int() itself.
        num_media = MAX_MEDIA if len(raw_count.lstrip("0")) > 2 else min(int(raw_count), MAX_MEDIA)
        text = form.get("Body", "")
        kind: MessageKind = "text"
        media: dict[str, Any] | None = None
        items = [
            {"url": form[f"MediaUrl{i}"], "mime_type": form.get(f"MediaContentType{i}", "")}
            for i in range(num_media)
            if form.get(f"MediaUrl{i}")
        ]
        if items:
            kind = "media"
            mime = items[0]["mime_type"]
            media = {"type": mime.split("/")[0] or "file", "url": items[0]["url"], "mime_type": mime}
            if len(items) > 1:
                media["items"] = items
        return InboundMessage(
            channel=self.name,
            provider_message_id=sid,
            sender=self._number(sender),
            recipient=self._number(form.get("To", "")),
            text=text,
            kind=kind,
            media=media,
            contact_name=form.get("ProfileName") or None,
            metadata={key: form[key] for key in _INBOUND_META if key in form},
        )

    def _parse_status(self, form: Mapping[str, str]) -> DeliveryStatus | None:
        sid = _required(form, "MessageSid", "SmsSid")
        raw_status = _required(form, "MessageStatus", "SmsStatus").lower()
        status = _STATUS_MAP.get(raw_status)
        if status is None:
            if raw_status not in _INBOUND_STATUSES:
                logger.info("twilio status %r for %s ignored", raw_status, sid)
            return None
        code = form.get("ErrorCode", "").strip() or None
        if status == "failed" and code in UNDELIVERABLE_CODES:
            status = "undeliverable"
        title = form.get("ErrorMessage", "").strip() or (ERROR_TITLES.get(code) if code else None)
        if raw_status == "canceled" and title is None:
            title = "canceled"
        return DeliveryStatus(
            channel=self.name,
            provider_message_id=sid,
            status=status,
            recipient=self._number(form.get("To", "")),
            sender=self._number(form.get("From", "")),
            error_code=code,
            error_title=title,
        )

    # ------------------------------------------------------------------ sending

    async def send(self, message: OutboundMessage) -> str:
        """Send ``message`` as one SMS and return the Message SID Twilio assigned.

        ``message.sender`` overrides ``from_number``; choices become a numbered list
        (:func:`build_body`). Raises :class:`SendError`: not retryable without credentials, for
        a recipient that is not an E.164 phone number, for Twilio's 4xx answers (``code`` is
        Twilio's error code: 21610 unsubscribed recipient, 21211 invalid number, 21408 region
        not enabled, ...) and for a 2xx answer without a SID (the SMS may have gone: do not
        resend); retryable for HTTP 429, 5xx and network errors. Twilio's Messages API takes no
        idempotency key, so a timeout after Twilio accepted the request can lead to a resend.
        """
        if not (self.account_sid and self._auth_token):
            raise SendError("Twilio account SID and auth token are not configured", retryable=False)
        to = self._number(message.to)
        if not _is_e164(to):
            raise SendError("SMS recipient must be an E.164 phone number", retryable=False)
        sender = self._number(message.sender) if message.sender else self.from_number
        if not sender:
            raise SendError("Twilio sending number is not configured", retryable=False)
        client = self._get_client()
        try:
            created = await client.api.v2010.accounts(self.account_sid).messages.create_async(
                to=to,
                from_=sender,
                body=build_body(message),
                status_callback=self.status_callback_url or twilio_values.unset,
            )
        except (TwilioRestException, TwilioServiceException) as exc:
            raise self._send_error(exc) from None
        except (aiohttp.InvalidURL, ValueError) as exc:
            raise SendError(f"Twilio send failed: {type(exc).__name__}", retryable=False) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise SendError(f"Twilio send failed: {type(exc).__name__}", retryable=True) from None
        except TwilioException as exc:
            raise SendError(self._redact(f"Twilio send failed: {exc}"), retryable=False) from None
        sid = getattr(created, "sid", None)
        if not isinstance(sid, str) or not sid:
            raise SendError("Twilio accepted the request but returned no message SID", retryable=False)
        return sid

    def _send_error(self, exc: TwilioRestException | TwilioServiceException) -> SendError:
        status = int(exc.status or 0)
        code = str(exc.code) if exc.code is not None else None
        text = (exc.detail or exc.title) if isinstance(exc, TwilioServiceException) else exc.msg
        retryable = status == 429 or status >= 500
        message = self._redact(f"Twilio send failed (HTTP {status}, code {code}): {text}")
        return SendError(message, retryable=retryable, code=code)

    def _redact(self, text: str) -> str:
        return text.replace(self._auth_token, "***") if self._auth_token else text

    def _get_client(self) -> Client:
        """The twilio REST client, made on first use (inside the event loop aiohttp needs)."""
        if self._client is None:
            if self._http is None:
                self._http = _AsyncHttpClient(timeout=self.timeout_s)
                self._owns_http = True
            client = Client(
                self.account_sid,
                self._auth_token,
                http_client=self._http,
                # Only explicit settings: no TWILIO_EDGE/TWILIO_REGION rewriting of the base URL.
                environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
                user_agent_extensions=[_USER_AGENT],
            )
            client.api.base_url = self.api_base_url
            self._client = client
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client this channel created (never one passed in)."""
        if self._http is not None and self._owns_http:
            await self._http.close()
            self._http = None
        self._client = None
