"""WhatsApp Business Platform, Cloud API: verify and parse webhooks, send messages.

Wire formats follow Meta's documentation and the OpenAPI description Meta publishes
(``facebook/openapi``, ``business-messaging-api_v23.0.yaml``):

- webhooks: "Webhooks > Validate payloads / Event notifications" (signature), "messages webhook
  reference" (incoming messages) and "Status messages webhook reference" (delivery statuses);
- sending: ``POST /{Version}/{Phone-Number-ID}/messages`` ("Messages > Send Message"), interactive
  reply buttons and list messages;
- errors: "Cloud API > Support > Error codes" (Graph API error JSON, throttling codes).

The module is pure apart from :meth:`WhatsAppChannel.send`, which makes one HTTP request.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import msgspec

from channels.base import (
    Channel,
    ChannelError,
    ChannelTraits,
    Choice,
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
from kernel.http import parse_retry_after
from kernel.signing import HmacSha256

__all__ = [
    "MAX_BUTTONS",
    "MAX_LIST_ROWS",
    "SubscriptionError",
    "WhatsAppChannel",
    "build_message_payload",
]

logger = logging.getLogger(__name__)

#: Limits from "Messages > Interactive reply buttons / list messages" and the OpenAPI schemas
#: ``TextMessage``, ``BodyObject``, ``ActionObject`` and ``SectionObject``.
MAX_TEXT_BODY = 4096
MAX_INTERACTIVE_BODY = 1024
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_LIST_ROWS = 10
MAX_LIST_BUTTON_LABEL = 20
MAX_ROW_TITLE = 24
MAX_ROW_DESCRIPTION = 72
#: Inbound bounds. A webhook body over :data:`MAX_WEBHOOK_BYTES` is refused (Meta batches several
#: updates in one delivery, each a few KB; a text is at most 65,536 characters). An inbound text
#: longer than :data:`MAX_INBOUND_TEXT` is cut (``metadata["truncated_from"]``).
MAX_WEBHOOK_BYTES = 3 * 1024 * 1024
MAX_INBOUND_TEXT = 4096
#: Timestamps after this (9999-12-31T23:59:59Z) are refused: no real event has them, and larger
#: ones overflow ``float``/``datetime``.
MAX_TIMESTAMP = 253_402_300_799

#: Graph API / Cloud API error codes that mean "slow down, then try again" even when the HTTP
#: status is 400 ("Cloud API > Support > Error codes > Throttling errors"): 4 application
#: request limit, 80007 WABA rate limit, 130429 throughput, 131056 pair rate limit.
RETRYABLE_ERROR_CODES = frozenset({4, 80007, 130429, 131056})

_SIGNATURE_HEADER = "x-hub-signature-256"
#: isinstance() tuples: ``str | int`` in a call builds a new union object on every call.
_TEXT_OR_INT = (str, int)
_CONTAINERS = (dict, list)
_SIGNATURE_RE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_JSON_DECODER = msgspec.json.Decoder()
_MEDIA_TYPES = frozenset({"image", "video", "document", "audio", "sticker"})
_MEDIA_FIELDS = ("id", "mime_type", "sha256", "filename")
#: Webhook status -> our status. "played" is a voice message listened to (implies read).
_STATUS_MAP: dict[str, StatusName] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "played": "read",
    "failed": "failed",
    "accepted": "queued",
    "held_for_quality_assessment": "queued",
}
#: Failed with 131026 ("Message undeliverable": not on WhatsApp, old client, ...) is reported as
#: ``undeliverable`` so that the app can fall back to another channel.
_UNDELIVERABLE_CODES = frozenset({"131026"})
_USER_AGENT = "LeadWarm/0.1.0"


class SubscriptionError(ChannelError):
    """The webhook subscription handshake (GET ``hub.*``) is wrong: the app answers 403."""


def _truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, ending with an ellipsis when cut."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (the contract promises lower-case keys; be lenient)."""
    value = headers.get(name)
    if value is not None:
        return value
    for key, val in headers.items():
        if key.lower() == name:
            return val
    return None


def _e164(number: str) -> str:
    """``'16505551234'`` -> ``'+16505551234'`` (Meta sends wa_ids without the plus)."""
    number = number.strip()
    return number if number.startswith("+") else "+" + number


def _timestamp(raw: Any, where: str) -> float:
    """Meta's timestamps are strings of whole seconds since the epoch; absent -> 0.0.

    Raises :class:`PayloadError` for anything but a string or integer of at most 12 digits between
    0 and :data:`MAX_TIMESTAMP` (a 5,000-digit number is refused before conversion)."""
    if raw is None or raw == "":
        return 0.0
    if isinstance(raw, bool) or not isinstance(raw, _TEXT_OR_INT):
        raise PayloadError(f"{where}: timestamp must be a string of whole seconds")
    text = str(raw).strip() if isinstance(raw, str) else None
    if text is not None and not (text.isascii() and text.isdigit() and len(text) <= 12):
        raise PayloadError(f"{where}: timestamp {text[:20]!r} is not whole seconds")
    value = int(text) if text is not None else int(raw)
    if not 0 <= value <= MAX_TIMESTAMP:
        raise PayloadError(f"{where}: timestamp out of range")
    return float(value)


def _decode(raw_body: bytes) -> Any:
    """The JSON value of ``raw_body``: msgspec's decoder (a third of :func:`json.loads`'s CPU on a
    webhook), and :func:`json.loads` for what msgspec refuses but JSON allows (a lone surrogate
    escape, an integer past 64 bits, a UTF-16 body), so that every body :func:`json.loads` reads is
    read, with the same values. Raises :class:`PayloadError` when neither reads it (nesting too
    deep included)."""
    try:
        return _JSON_DECODER.decode(raw_body)
    except RecursionError:
        raise PayloadError("body is not JSON: RecursionError") from None
    except (msgspec.DecodeError, UnicodeDecodeError, ValueError):
        pass
    try:
        return json.loads(raw_body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PayloadError(f"body is not JSON: {type(exc).__name__}") from None


def _scalar(value: Any) -> str:
    """A JSON scalar as text (``None`` -> ``''``); objects and arrays, which have no text, -> ``''``."""
    if type(value) is str:  # the common case first
        return value
    if value is None or isinstance(value, _CONTAINERS):
        return ""
    return value if isinstance(value, str) else str(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{where} must be a list")
    return value


def _template(template: dict[str, Any]) -> dict[str, Any]:
    """A template message object (Cloud API "Template messages": name, language code and policy,
    body parameters of type text). The ``deterministic`` language policy is the only one Meta
    accepts, and the Business Messaging API's OpenAPI description requires it."""
    name, language = template.get("name"), template.get("language")
    if not isinstance(name, str) or not name or not isinstance(language, str) or not language:
        raise SendError("a WhatsApp template needs a name and a language code", retryable=False)
    out: dict[str, Any] = {"name": name, "language": {"policy": "deterministic", "code": language}}
    parameters = [str(p) for p in template.get("parameters", [])]
    if parameters:
        out["components"] = [
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in parameters]}
        ]
    return out


def build_message_payload(message: OutboundMessage, *, list_button_label: str = "Options") -> dict[str, Any]:
    """Build the JSON body of ``POST /{Version}/{Phone-Number-ID}/messages`` for ``message``.

    - no choices: ``type: text`` (body cut to 4096 characters, ``preview_url: false``);
    - 1-3 choices: interactive reply buttons (titles cut to 20 characters);
    - 4-10 choices: interactive list, one section (row titles cut to 24; a cut title is kept
      whole, up to 72 characters, as the row description);
    - more than 10: text with a numbered list (:func:`channels.base.numbered_choices`);
    - ``message.template`` set: ``type: template`` (the text is not sent).

    Interactive bodies are cut to 1024 characters. ``reply_to`` becomes ``context.message_id``.
    ``to`` is sent as the E.164 digits without ``+`` (the OpenAPI example ``'19505550005'``).
    Raises :class:`SendError` (not retryable) when ``message.to`` is not a phone number.
    """
    to = re.sub(r"[\s\-().]", "", message.to).removeprefix("+")
    if not to.isdigit():
        raise SendError("WhatsApp recipient must be an E.164 phone number", retryable=False)
    payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
    if message.idempotency_key and message.template:
        # Echoed in this message's status webhooks (biz_opaque_callback_data, at most 512
        # characters): a send whose answer was lost is found. Templates only: the v23.0 OpenAPI
        # description (shared/specs/whatsapp) accepts the field on a template message and refuses
        # it on text and interactive ones (additionalProperties: false; Prism answers 422).
        payload["biz_opaque_callback_data"] = message.idempotency_key[:512]
    if message.reply_to:
        payload["context"] = {"message_id": message.reply_to}
    if message.template:
        payload["type"] = "template"
        payload["template"] = _template(message.template)
        return payload
    choices = message.choices
    if not choices or len(choices) > MAX_LIST_ROWS:
        body = numbered_choices(message.text, choices)
        payload["type"] = "text"
        payload["text"] = {"body": _truncate(body, MAX_TEXT_BODY), "preview_url": False}
        return payload
    payload["type"] = "interactive"
    body_obj = {"text": _truncate(message.text, MAX_INTERACTIVE_BODY)}
    if len(choices) <= MAX_BUTTONS:
        payload["interactive"] = {
            "type": "button",
            "body": body_obj,
            "action": {"buttons": [_button(c) for c in choices]},
        }
    else:
        payload["interactive"] = {
            "type": "list",
            "body": body_obj,
            "action": {
                "button": _truncate(list_button_label, MAX_LIST_BUTTON_LABEL),
                "sections": [{"rows": [_row(c) for c in choices]}],
            },
        }
    return payload


def _button(choice: Choice) -> dict[str, Any]:
    return {"type": "reply", "reply": {"id": choice.id, "title": _truncate(choice.title, MAX_BUTTON_TITLE)}}


def _row(choice: Choice) -> dict[str, Any]:
    row: dict[str, Any] = {"id": choice.id, "title": _truncate(choice.title, MAX_ROW_TITLE)}
    if len(choice.title.strip()) > MAX_ROW_TITLE:
        row["description"] = _truncate(choice.title, MAX_ROW_DESCRIPTION)
    return row


class WhatsAppChannel(Channel):
    """The WhatsApp Cloud API channel.

    ``access_token`` (WHATSAPP_TOKEN) authorises sends, ``phone_number_id`` (WHATSAPP_PHONE_ID)
    is the sending number, ``app_secret`` (WHATSAPP_APP_SECRET) checks webhook signatures. The
    send URL is ``{api_base_url}/{api_version}/{phone_number_id}/messages``. ``http_client`` is
    used as given and not closed by :meth:`aclose`; without one the channel makes its own with
    ``timeout_s`` (seconds). Credentials never appear in ``repr``, logs or exceptions.
    """

    name: ClassVar[str] = "whatsapp"
    traits: ClassVar[ChannelTraits] = ChannelTraits(
        address_field="phone",
        keyword_optouts=True,
        max_text_chars=MAX_TEXT_BODY,
        rich_content=True,
        phone_based=True,
        consent_on_inbound=True,
        session_window_s=24 * 3600.0,
        max_body_bytes=MAX_WEBHOOK_BYTES,
        max_inbound_chars=MAX_INBOUND_TEXT,
        statuses_carry_reference=True,
    )
    config_optional: ClassVar[frozenset[str]] = frozenset({"app_secret"})

    def __init__(
        self,
        *,
        access_token: str,
        phone_number_id: str,
        app_secret: str,
        api_base_url: str = "https://graph.facebook.com",
        api_version: str = "v23.0",
        http_client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
        list_button_label: str = "Options",
    ) -> None:
        self._access_token = access_token
        self._app_secret = app_secret
        self._signer: HmacSha256 | None = None
        self.phone_number_id = phone_number_id
        self.api_base_url = api_base_url.rstrip("/")
        self.api_version = api_version.strip("/")
        self.timeout_s = timeout_s
        self.list_button_label = list_button_label
        self._client = http_client
        self._owns_client = http_client is None

    def __repr__(self) -> str:
        return (
            f"WhatsAppChannel(phone_number_id={self.phone_number_id!r}, api_base_url={self.api_base_url!r}, "
            f"api_version={self.api_version!r})"
        )

    # ------------------------------------------------------------------ webhooks

    def receiving_addresses(self) -> list[str]:
        """The phone-number id Meta's webhooks name in ``metadata.phone_number_id``."""
        return [self.phone_number_id]

    def verify(self, headers: Mapping[str, str], raw_body: bytes, *, url: str = "") -> None:
        """Check ``X-Hub-Signature-256`` over the raw body.

        Meta signs every event notification with ``sha256=`` + hex HMAC-SHA256 of the exact
        bytes it sent, keyed with the app secret ("Webhooks > Validate payloads / Event
        notifications"). The comparison is constant-time. ``url`` is not signed by Meta.
        Raises :class:`SignatureError` (and nothing else, whatever the input) when no app secret
        is configured (unsigned webhooks are never accepted) or the header is missing, malformed
        or wrong.
        """
        guarded_verify(self.name, lambda: self._verify(headers, raw_body))

    def _verify(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        if not self._app_secret:
            raise SignatureError("WhatsApp app secret is not configured; refusing the webhook")
        header = _header(headers, _SIGNATURE_HEADER)
        if header is None:
            raise SignatureError("missing X-Hub-Signature-256 header")
        match = _SIGNATURE_RE.fullmatch(str(header)[:100].strip())
        if match is None:
            raise SignatureError("malformed X-Hub-Signature-256 header (want 'sha256=<64 hex>')")
        signer = self._signer
        if signer is None:  # the key's padded blocks hashed once per channel instance
            signer = self._signer = HmacSha256(self._app_secret.encode())
        expected = signer.digest(raw_body)
        if not hmac.compare_digest(expected, bytes.fromhex(match.group(1))):
            raise SignatureError("X-Hub-Signature-256 does not match the body")

    @staticmethod
    def verify_subscription(params: Mapping[str, str], verify_token: str) -> str:
        """Answer Meta's webhook verification request (GET with ``hub.*`` query parameters).

        Returns ``hub.challenge`` when ``hub.mode`` is ``subscribe`` and ``hub.verify_token``
        equals ``verify_token`` (WEBHOOK_VERIFY_TOKEN, compared in constant time); the app
        echoes it with 200 ("Webhooks > Verification requests"). Raises
        :class:`SubscriptionError` otherwise, including when ``verify_token`` is empty.
        """
        if not verify_token:
            raise SubscriptionError("webhook verify token is not configured")
        if params.get("hub.mode") != "subscribe":
            raise SubscriptionError("hub.mode must be 'subscribe'")
        given = params.get("hub.verify_token", "")
        if not hmac.compare_digest(given.encode(), verify_token.encode()):
            raise SubscriptionError("hub.verify_token does not match")
        challenge = params.get("hub.challenge")
        if not challenge:
            raise SubscriptionError("hub.challenge is missing")
        return challenge

    def parse(self, headers: Mapping[str, str], raw_body: bytes) -> ParsedWebhook:
        """Turn a ``whatsapp_business_account`` webhook into messages and statuses.

        Reads ``entry[].changes[]`` whose ``field`` is ``messages``; other fields (group,
        account and template updates) are skipped. Unknown keys are ignored and unknown message
        types come out as kind ``unsupported``. The parser is total: any body gives messages and
        statuses or :class:`PayloadError` (:func:`channels.base.guarded_parse`): bodies over
        :data:`MAX_WEBHOOK_BYTES`, not JSON objects (including nesting too deep and numbers too
        long for Python), whose ``object`` is not ``whatsapp_business_account``, whose
        messages/statuses lack their id or sender, or with timestamps out of range. Texts longer
        than :data:`MAX_INBOUND_TEXT` are cut (``metadata["truncated_from"]``) and lone surrogates
        in any string are replaced by U+FFFD.
        """
        return guarded_parse(self.name, self.traits, raw_body, lambda: self._parse(raw_body))

    def _parse(self, raw_body: bytes) -> ParsedWebhook:
        data = _decode(raw_body)
        if not isinstance(data, dict):
            raise PayloadError("body must be a JSON object")
        if data.get("object") != "whatsapp_business_account":
            got = data.get("object")
            shown = repr(got)[:60] if isinstance(got, str | int | float | bool | None) else type(got).__name__
            raise PayloadError(f"object must be 'whatsapp_business_account', got {shown}")
        result = ParsedWebhook()
        for entry in _list(data.get("entry"), "entry"):
            if not isinstance(entry, dict):
                raise PayloadError("entry[] items must be objects")
            for change in _list(entry.get("changes"), "entry[].changes"):
                if not isinstance(change, dict):
                    raise PayloadError("entry[].changes[] items must be objects")
                if change.get("field", "messages") != "messages":
                    continue
                value = change.get("value")
                if not isinstance(value, dict):
                    raise PayloadError("entry[].changes[].value must be an object")
                self._parse_value(value, _scalar(entry.get("id", "")), result)
        return result

    def _parse_value(self, value: dict[str, Any], waba_id: str, out: ParsedWebhook) -> None:
        metadata = _dict(value.get("metadata"))
        recipient = _scalar(metadata.get("phone_number_id", ""))
        names: dict[str, str] = {}
        contacts = [c for c in _list(value.get("contacts"), "value.contacts") if isinstance(c, dict)]
        for contact in contacts:
            name = _dict(contact.get("profile")).get("name")
            if name and contact.get("wa_id"):
                names[_scalar(contact["wa_id"])] = _scalar(name)
        only_name = None
        if len(contacts) == 1:
            only_name = _dict(contacts[0].get("profile")).get("name")
        base_meta = {"waba_id": waba_id, "display_phone_number": metadata.get("display_phone_number")}
        for raw in _list(value.get("messages"), "value.messages"):
            out.messages.append(self._parse_message(raw, recipient, base_meta, names, only_name))
        for raw in _list(value.get("statuses"), "value.statuses"):
            status = self._parse_status(raw, recipient)
            if status is not None:
                out.statuses.append(status)
        for error in _list(value.get("errors"), "value.errors"):
            if isinstance(error, dict):
                logger.warning(
                    "whatsapp webhook error code=%.20s title=%.200s",
                    _scalar(error.get("code")),
                    _scalar(error.get("title")),
                )

    def _parse_message(
        self,
        raw: Any,
        recipient: str,
        base_meta: dict[str, Any],
        names: dict[str, str],
        only_name: Any,
    ) -> InboundMessage:
        if not isinstance(raw, dict):
            raise PayloadError("messages[] items must be objects")
        message_id, sender = raw.get("id"), raw.get("from")
        if not message_id or not isinstance(message_id, str):
            raise PayloadError("messages[] item without an id")
        if not sender or not isinstance(sender, str):
            raise PayloadError(f"message {message_id} has no 'from'")
        wa_type = _scalar(raw.get("type", "unknown"))
        meta: dict[str, Any] = {**base_meta, "whatsapp_type": wa_type}
        for key in ("referral", "errors", "order", "system", "contacts"):
            if key in raw:
                meta[key] = raw[key]
        context = _dict(raw.get("context"))
        sender = _e164(sender)
        # the contact's name, set at construction (a dataclasses.replace per message cost more
        # than the rest of its parse)
        name = names.get(sender.removeprefix("+"), only_name)
        timestamp = _timestamp(raw.get("timestamp"), f"message {message_id}")
        extra: dict[str, Any] = {}  # what the type adds: choice_id, media, location, reply_to
        kind, text = _content(raw, wa_type, extra)
        # every field by position, in InboundMessage's order (keywords and a ** dict cost a
        # third of the construction)
        return InboundMessage(
            self.name,
            message_id,
            sender,
            recipient,
            text,
            kind,
            timestamp,
            _scalar(name) if name else None,
            extra.get("choice_id"),
            extra.get("reply_to", _scalar(context.get("id")) or None),
            extra.get("media"),
            extra.get("location"),
            meta,
        )

    def _parse_status(self, raw: Any, phone_number_id: str) -> DeliveryStatus | None:
        if not isinstance(raw, dict):
            raise PayloadError("statuses[] items must be objects")
        message_id, wa_status = raw.get("id"), raw.get("status")
        if not message_id or not isinstance(message_id, str):
            raise PayloadError("statuses[] item without an id")
        status = _STATUS_MAP.get(_scalar(wa_status))
        if status is None:
            logger.info("whatsapp status %r for %s ignored", wa_status, message_id)
            return None
        errors = raw.get("errors")
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        code = _scalar(first["code"]) if first.get("code") is not None else None
        if status == "failed" and code in _UNDELIVERABLE_CODES:
            status = "undeliverable"
        recipient = raw.get("recipient_id")
        return DeliveryStatus(
            channel=self.name,
            provider_message_id=message_id,
            status=status,
            recipient=_e164(_scalar(recipient)) if recipient else "",
            sender=phone_number_id,
            timestamp=_timestamp(raw.get("timestamp"), f"status of {message_id}"),
            error_code=code,
            error_title=_scalar(first["title"]) if first.get("title") else None,
            client_ref=_scalar(raw.get("biz_opaque_callback_data"))[:512],
        )

    # ------------------------------------------------------------------ sending

    @property
    def messages_url(self) -> str:
        """``{api_base_url}/{api_version}/{phone_number_id}/messages``."""
        return self._messages_url(self.phone_number_id)

    def _messages_url(self, phone_number_id: str) -> str:
        return f"{self.api_base_url}/{self.api_version}/{phone_number_id}/messages"

    def build_payload(self, message: OutboundMessage) -> dict[str, Any]:
        """The JSON body :meth:`send` posts; see :func:`build_message_payload`."""
        return build_message_payload(message, list_button_label=self.list_button_label)

    async def send(self, message: OutboundMessage) -> str:
        """Send ``message`` and return the ``wamid`` Meta assigned (``messages[0].id``).

        ``message.sender`` overrides the phone-number id. Raises :class:`SendError`:
        not retryable without an access token or when the request cannot be formed;
        retryable for network errors, HTTP 429, 5xx and Meta's throttling codes (with
        ``retry_after_s`` from ``Retry-After``); not retryable for other 4xx (``code`` is
        Meta's ``error.code``, e.g. ``131047`` outside the 24-hour window) and for a 2xx
        answer without a message id (the message may have gone out: do not resend).
        """
        if not self._access_token:
            raise SendError("WhatsApp access token is not configured", retryable=False)
        payload = self.build_payload(message)
        url = self._messages_url(message.sender or self.phone_number_id)
        client = self._get_client()
        try:
            response = await client.post(
                url,
                json=payload,
                headers={"Authorization": f"Bearer {self._access_token}", "User-Agent": _USER_AGENT},
            )
        except (httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            # The request could not even be formed (bad header value, URL): retrying cannot help.
            raise SendError(f"WhatsApp send failed: {type(exc).__name__}", retryable=False) from None
        except httpx.HTTPError as exc:
            raise SendError(f"WhatsApp send failed: {type(exc).__name__}", retryable=True) from None
        if response.is_success:
            try:
                body = response.json()
                message_id = body["messages"][0]["id"]
            except (ValueError, KeyError, IndexError, TypeError):
                message_id = None
            if not isinstance(message_id, str) or not message_id:
                raise SendError("WhatsApp accepted the request but returned no message id", retryable=False)
            return message_id
        raise self._send_error(response)

    async def message_templates(
        self, business_account_id: str, *, max_pages: int = 10
    ) -> list[dict[str, Any]]:
        """The message templates of the WhatsApp Business Account ``business_account_id`` (Graph
        API ``GET /{WABA-ID}/message_templates``, "WhatsApp Business Account > Message Templates"):
        name, language, status, category and components of each, following ``paging.next`` for at
        most ``max_pages`` pages of 100. Raises :class:`SendError` (``retryable`` as for a send)."""
        if not self._access_token:
            raise SendError("WhatsApp access token is not configured", retryable=False)
        if not business_account_id.isdigit():
            raise SendError("the WhatsApp Business Account id is a number", retryable=False)
        url: str | None = f"{self.api_base_url}/{self.api_version}/{business_account_id}/message_templates"
        params: dict[str, str] | None = {"fields": "name,language,status,category,components", "limit": "100"}
        headers = {"Authorization": f"Bearer {self._access_token}", "User-Agent": _USER_AGENT}
        out: list[dict[str, Any]] = []
        client = self._get_client()
        for _ in range(max_pages):
            if url is None:
                break
            try:
                response = await client.get(url, params=params, headers=headers)
            except httpx.HTTPError as exc:
                raise SendError(f"WhatsApp templates: {type(exc).__name__}", retryable=True) from None
            if not response.is_success:
                raise self._send_error(response)
            try:
                body = response.json()
            except ValueError:
                raise SendError("WhatsApp templates: the answer is not JSON", retryable=False) from None
            out.extend(t for t in _dict(body).get("data") or [] if isinstance(t, dict))
            following = _dict(_dict(body).get("paging")).get("next")
            url, params = (
                (
                    following
                    if isinstance(following, str) and following.startswith(self.api_base_url)
                    else None
                ),
                None,
            )
        return out

    def _send_error(self, response: httpx.Response) -> SendError:
        """Map an error answer (Graph API error JSON or anything else) to :class:`SendError`."""
        code: int | str | None = None
        text = response.reason_phrase or "error"
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            code = error.get("code")
            text = str(error.get("message") or error.get("error_user_title") or text)
            details = _dict(error.get("error_data")).get("details")
            if details:
                text = f"{text}: {details}"
        elif isinstance(body, dict) and body.get("title"):  # RFC 9457 problem JSON
            text = str(body["title"])
        status = response.status_code
        retryable = status == 429 or status >= 500 or code in RETRYABLE_ERROR_CODES
        message = self._redact(f"WhatsApp send failed (HTTP {status}): {text}")
        return SendError(
            message,
            retryable=retryable,
            code=str(code) if code is not None else None,
            retry_after_s=parse_retry_after(response.headers) if retryable else None,
        )

    def _redact(self, text: str) -> str:
        for secret in (self._access_token, self._app_secret):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s)
            self._owns_client = True
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client this channel created (never one passed in)."""
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None


def _content(raw: dict[str, Any], wa_type: str, fields: dict[str, Any]) -> tuple[MessageKind, str]:
    """Kind and text of one incoming message; sets ``choice_id``/``media``/``location``/``reply_to``
    in ``fields`` where the type has them ("messages webhook reference", one section per type)."""
    if wa_type == "text":
        return "text", _scalar(_dict(raw.get("text")).get("body", ""))
    if wa_type == "interactive":
        interactive = _dict(raw.get("interactive"))
        itype = interactive.get("type")
        if itype in ("button_reply", "list_reply"):
            reply = _dict(interactive.get(itype))
            fields["choice_id"] = _scalar(reply["id"]) if reply.get("id") is not None else None
            kind: MessageKind = "button_reply" if itype == "button_reply" else "list_reply"
            return kind, _scalar(reply.get("title", ""))
        return "unsupported", ""
    if wa_type == "button":  # quick-reply button of a template message
        button = _dict(raw.get("button"))
        payload = button.get("payload")
        fields["choice_id"] = _scalar(payload) if payload is not None else None
        return "button_reply", _scalar(button.get("text", ""))
    if wa_type in _MEDIA_TYPES:
        media_obj = _dict(raw.get(wa_type))
        media: dict[str, Any] = {"type": wa_type}
        media.update({k: media_obj[k] for k in _MEDIA_FIELDS if k in media_obj})
        if wa_type == "audio" and "voice" in media_obj:
            media["voice"] = bool(media_obj["voice"])
        fields["media"] = media
        return "media", _scalar(media_obj.get("caption") or "")
    if wa_type == "location":
        loc = _dict(raw.get("location"))
        fields["location"] = {k: loc.get(k) for k in ("latitude", "longitude", "name", "address")}
        return "location", ", ".join(_scalar(loc[k]) for k in ("name", "address") if loc.get(k))
    if wa_type == "contacts":
        return "contacts", _contacts_summary(raw.get("contacts"))
    if wa_type == "reaction":
        reaction = _dict(raw.get("reaction"))
        if reaction.get("message_id"):
            fields["reply_to"] = _scalar(reaction["message_id"])
        return "reaction", _scalar(reaction.get("emoji") or "")
    return "unsupported", ""


def _contacts_summary(contacts: Any) -> str:
    """``'Shared contact: Lucía Gómez (Google) +1 (983) 555-2319'``; several joined by ``'; '``."""
    parts = []
    for contact in contacts if isinstance(contacts, list) else []:
        if not isinstance(contact, dict):
            continue
        name = _dict(contact.get("name"))
        label = _scalar(
            name.get("formatted_name")
            or " ".join(_scalar(name[k]) for k in ("first_name", "last_name") if name.get(k))
            or "unnamed"
        )
        company = _dict(contact.get("org")).get("company")
        if company:
            label += f" ({company})"
        raw_phones = contact.get("phones")
        phones = [
            _scalar(phone["phone"])
            for phone in (raw_phones if isinstance(raw_phones, list) else [])
            if isinstance(phone, dict) and isinstance(phone.get("phone"), str | int) and phone.get("phone")
        ]
        if phones:
            label += " " + ", ".join(phones)
        parts.append(label)
    if not parts:
        return "Shared contact"
    return ("Shared contact: " if len(parts) == 1 else "Shared contacts: ") + "; ".join(parts)
