"""The channel contract: verify a webhook, parse it, send a message.

A channel module knows one provider's wire format and nothing about storage, tenants or
playbooks. The app verifies and parses a webhook with it, stores what comes out, and later asks it
to send what the outbox holds. A new channel is one module beside this one and one line in
:mod:`channels.registry`.

Value types are frozen dataclasses so that the app can store them (``dataclasses.asdict``).
Times are floats: seconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import abc
import inspect
import logging
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from kernel.errors import LeadWarmError

__all__ = [
    "Attachment",
    "Channel",
    "ChannelConfigError",
    "ChannelError",
    "ChannelTraits",
    "Choice",
    "DeliveryStatus",
    "InboundMessage",
    "OutboundMessage",
    "ParsedWebhook",
    "PayloadError",
    "SendError",
    "SignatureError",
    "bound_parsed",
    "clean_text",
    "clean_value",
    "guarded_parse",
    "guarded_verify",
]

logger = logging.getLogger(__name__)

MessageKind = Literal[
    "text",
    "button_reply",
    "list_reply",
    "media",
    "location",
    "contacts",
    "reaction",
    "unsupported",
    "auto_reply",
    "bounce",
]
StatusName = Literal["queued", "sent", "delivered", "read", "failed", "undeliverable"]


class ChannelError(LeadWarmError):
    """Base error of every channel."""


class ChannelConfigError(ChannelError):
    """A channel cannot be built from the settings given: ``missing`` names the absent keys."""

    def __init__(self, channel: str, missing: list[str]) -> None:
        super().__init__(f"{channel} is not configured: missing {', '.join(missing)}")
        self.channel = channel
        self.missing = missing


class SignatureError(ChannelError):
    """The webhook's signature is missing or wrong (the app answers 401)."""


class PayloadError(ChannelError):
    """The webhook's body is malformed; the message says why (the app answers 400)."""


class SendError(ChannelError):
    """Sending failed. ``retryable`` says whether trying again later can succeed.

    ``code`` is the provider's error code when it gave one (WhatsApp 131047, Twilio 21610, ...).
    The message never contains credentials.
    """

    def __init__(
        self, message: str, *, retryable: bool, code: str | None = None, retry_after_s: float | None = None
    ):
        super().__init__(message)
        self.retryable = retryable
        self.code = code
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Choice:
    """One option of a question: ``id`` comes back in the reply, ``title`` is shown."""

    id: str
    title: str


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message a contact sent us.

    ``sender`` is the contact's address on the channel (E.164 phone for WhatsApp/SMS, email
    address, web-chat session id); ``recipient`` is ours (WhatsApp phone-number id, Twilio number,
    mailbox). ``text`` is what the playbook reads: the body, a button's title, a caption.
    ``choice_id`` is set for button/list replies. ``reply_to`` is the provider id of the message
    this one answers, when the provider says so.
    """

    channel: str
    provider_message_id: str
    sender: str
    recipient: str
    text: str
    kind: MessageKind = "text"
    timestamp: float = 0.0
    contact_name: str | None = None
    choice_id: str | None = None
    reply_to: str | None = None
    media: dict[str, Any] | None = None
    location: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    """What became of a message we sent: ``provider_message_id`` is the id ``send`` returned.

    ``recipient`` is the contact; ``sender`` is our sending address (WhatsApp phone-number id,
    Twilio number), which routes the status to its tenant."""

    channel: str
    provider_message_id: str
    status: StatusName
    recipient: str = ""
    sender: str = ""
    timestamp: float = 0.0
    error_code: str | None = None
    error_title: str | None = None
    client_ref: str = ""
    """Our reference the provider echoed (the send's ``idempotency_key``), when it does."""


@dataclass(frozen=True, slots=True)
class ParsedWebhook:
    """Everything one webhook delivery carried (a delivery may batch several)."""

    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[DeliveryStatus] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to send. ``choices`` become reply buttons where the channel has them and a
    numbered list where it does not. ``idempotency_key`` is our outbox id, passed to providers
    that accept one. ``sender`` overrides the channel's default sending address. ``template`` is a
    pre-approved template to send instead of ``text`` where the channel has them (WhatsApp):
    ``{"name": ..., "language": "en", "parameters": ["Alex", ...]}`` (body parameters, in order)."""

    to: str
    text: str
    choices: tuple[Choice, ...] = ()
    idempotency_key: str = ""
    reply_to: str | None = None
    sender: str | None = None
    subject: str | None = None
    template: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    """Files sent with the text where the channel carries them (email); others leave them out."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a message: ``content`` bytes of ``mime_type`` (``text/calendar``),
    ``filename``, and Content-Type ``params`` (``{"method": "REQUEST"}`` for an invitation)."""

    content: bytes
    mime_type: str
    filename: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChannelTraits:
    """What the app needs to know about a channel without comparing names.

    ``address_field``: the lead field holding the contact's address here (``phone``, ``email``,
    ``webchat_id``). ``keyword_optouts``: a message that is only STOP/START/HELP is a compliance
    keyword. ``threading``: replies must name the message they answer (email's In-Reply-To and
    References). ``max_text_chars``: longest text one message may carry (the provider's limit).
    ``rich_content``: reply buttons and lists render natively (else a numbered list is sent).
    ``phone_based``: the address is an E.164 phone number (its country hints the lead's region).
    ``consent_on_inbound``: a contact who writes first consents to answers on this channel.
    ``session_window_s``: a provider's customer-service window (WhatsApp's 24 h), ``None`` if none.
    ``max_body_bytes``: largest webhook body :meth:`Channel.parse` reads (bytes); a larger one is a
    :class:`PayloadError` (the app should refuse it before reading it whole: 413).
    ``max_inbound_chars``: longest inbound text kept (characters); a longer one is cut and the
    message's ``metadata["truncated_from"]`` says how long it was (see :func:`bound_parsed`).
    ``charset_priced``: a message's cost depends on its characters (SMS: one character outside
    GSM-7 turns the whole message into UCS-2, 70 characters a segment instead of 160), so the app
    adds none of its own (French no-break spaces stay plain spaces there).
    ``statuses_carry_reference``: the provider echoes our ``idempotency_key`` in its delivery
    statuses (:attr:`DeliveryStatus.client_ref`) of template sends, so a template send whose answer
    we lost can be matched later. ``reports_statuses``: the provider reports on a sent message
    (delivery statuses, or a reply naming it) by its provider message id, so the dispatcher keeps
    the id -> message index (``provider_ids``); ``False`` (web chat: nothing comes back about a
    sent message) writes no index entry, one write fewer per message sent.
    """

    address_field: str
    keyword_optouts: bool = False
    threading: bool = False
    max_text_chars: int = 4096
    rich_content: bool = False
    phone_based: bool = False
    consent_on_inbound: bool = False
    session_window_s: float | None = None
    max_body_bytes: int = 1024 * 1024
    max_inbound_chars: int = 4096
    statuses_carry_reference: bool = False
    charset_priced: bool = False
    reports_statuses: bool = True


class Channel(abc.ABC):
    """One transport. Subclasses set ``name`` and ``traits`` and implement the three verbs."""

    name: ClassVar[str]
    traits: ClassVar[ChannelTraits]
    config_optional: ClassVar[frozenset[str]] = frozenset()
    """Constructor arguments without a default that may still be left empty."""

    @classmethod
    def config_keys(cls) -> dict[str, bool]:
        """The settings this channel is built from: its constructor's keyword arguments, each
        mapped to whether it is required (no default and not in ``config_optional``). Computed
        once per class (``inspect.signature`` is slow, and webhooks ask on every delivery)."""
        cached: dict[str, bool] | None = cls.__dict__.get("_config_keys_cache")
        if cached is None:
            params = list(inspect.signature(cls.__init__).parameters.values())[1:]
            cached = {
                p.name: p.default is inspect.Parameter.empty and p.name not in cls.config_optional
                for p in params
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
            }
            cls._config_keys_cache = cached  # type: ignore[attr-defined]
        return dict(cached)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Channel:
        """Build the channel from one tenant's settings for it (constructor keyword arguments;
        ``None`` and empty values count as absent, unknown keys are ignored).

        Raises :class:`ChannelConfigError` naming every required setting that is missing.
        """
        keys = cls.config_keys()
        given = {k: v for k, v in config.items() if k in keys and v not in (None, "")}
        missing = [k for k, required in keys.items() if required and k not in given]
        if missing:
            raise ChannelConfigError(cls.name, missing)
        for key in cls.config_optional:
            given.setdefault(key, "")
        return cls(**given)

    @abc.abstractmethod
    def verify(self, headers: Mapping[str, str], raw_body: bytes, *, url: str = "") -> None:
        """Check the webhook's authenticity over the raw bytes.

        ``headers`` keys are lower-case. ``url`` is the public URL the provider called (some
        signature schemes sign it). Raises :class:`SignatureError`.
        """

    @abc.abstractmethod
    def parse(self, headers: Mapping[str, str], raw_body: bytes) -> ParsedWebhook:
        """Turn a verified webhook body into messages and statuses. Raises :class:`PayloadError`."""

    @abc.abstractmethod
    async def send(self, message: OutboundMessage) -> str:
        """Send and return the provider's message id. Raises :class:`SendError`."""

    def receiving_addresses(self) -> list[str]:
        """Our addresses this instance receives on (a WhatsApp phone-number id, a Twilio number,
        a mailbox), as webhooks name them: the app routes them to the instance's tenant."""
        return []

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release network clients."""


def numbered_choices(text: str, choices: tuple[Choice, ...]) -> str:
    """Degrade reply buttons to a numbered list for channels that cannot show buttons."""
    if not choices:
        return text
    lines = [text, ""] + [f"{i}. {c.title}" for i, c in enumerate(choices, start=1)]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- total parsing

#: A lone UTF-16 surrogate (U+D800-U+DFFF) in a Python string: JSON's ``"\\ud800"`` escapes and
#: surrogate-escaped bytes make them; they cannot be encoded as UTF-8 (SQLite, Firestore, logs).
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Bounds of :func:`clean_value` (metadata, media, location are copied from provider JSON).
MAX_VALUE_DEPTH = 8
MAX_VALUE_ITEMS = 100
MAX_VALUE_CHARS = 4096
#: Integers outside the signed 64-bit range (Firestore's integer) are kept as strings.
_INT64 = 2**63


def clean_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (the Unicode replacement character),
    so that it encodes as UTF-8. Linear in ``len(text)``."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def clean_value(value: Any, *, depth: int = MAX_VALUE_DEPTH) -> Any:
    """A JSON-safe, bounded copy of ``value`` (provider JSON copied into ``metadata``/``media``).

    Strings: lone surrogates replaced by U+FFFD and cut to :data:`MAX_VALUE_CHARS`; dicts and lists:
    at most :data:`MAX_VALUE_ITEMS` items, nested at most ``depth`` levels (deeper values become
    ``None``); integers outside the signed 64-bit range become strings; NaN and infinities become
    ``None``; other types their ``str``. Never raises, never recurses deeper than ``depth``.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return clean_text(value[:MAX_VALUE_CHARS])
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else "<integer out of range>"
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth <= 0:
        return None
    if isinstance(value, Mapping):
        items = list(value.items())[:MAX_VALUE_ITEMS]
        return {clean_text(str(k)[:MAX_VALUE_CHARS]): clean_value(v, depth=depth - 1) for k, v in items}
    if isinstance(value, list | tuple):
        return [clean_value(v, depth=depth - 1) for v in value[:MAX_VALUE_ITEMS]]
    return clean_text(str(value)[:MAX_VALUE_CHARS])


#: Longest id, address or name kept on a message or status (characters); longer ones are cut.
MAX_FIELD_CHARS = 512


def _clean_field(value: str) -> str:
    return clean_text(value[:MAX_FIELD_CHARS])


def _clean_optional(value: str | None) -> str | None:
    return _clean_field(value) if value is not None else None


def _is_clean_text(text: str, limit: int) -> bool:
    """Whether ``clean_text(text[:limit]) == text``: at most ``limit`` characters, no lone
    surrogate."""
    return len(text) <= limit and (text.isascii() or _SURROGATE.search(text) is None)


def _is_clean_value(value: Any, *, depth: int = MAX_VALUE_DEPTH) -> bool:
    """Whether :func:`clean_value` would give back ``value`` itself (equal, of the same types):
    ``True`` for JSON values within its bounds (dicts with string keys, lists, strings without
    lone surrogates, 64-bit integers, finite floats), ``False`` for anything it would change or
    convert (a tuple, a mapping that is not a ``dict``, a value nested past ``depth``). Never
    raises, never recurses deeper than ``depth``."""
    kind = type(value)
    if kind is str:
        return len(value) <= MAX_VALUE_CHARS and (value.isascii() or _SURROGATE.search(value) is None)
    if value is None or kind is bool:
        return True
    if kind is int:
        return bool(-_INT64 <= value < _INT64)
    if kind is float:
        return math.isfinite(value)
    if depth <= 0:
        return False
    if kind is dict:
        if len(value) > MAX_VALUE_ITEMS:
            return False
        for key, item in value.items():  # a loop, not a call per string: the common metadata
            if type(key) is not str or not _is_clean_text(key, MAX_VALUE_CHARS):
                return False
            if type(item) is str:
                if len(item) > MAX_VALUE_CHARS or not (item.isascii() or _SURROGATE.search(item) is None):
                    return False
            elif item is not None and not _is_clean_value(item, depth=depth - 1):
                return False
        return True
    if kind is list:
        return len(value) <= MAX_VALUE_ITEMS and all(_is_clean_value(v, depth=depth - 1) for v in value)
    return False


def _is_bound_message(message: InboundMessage, max_chars: int) -> bool:
    """Whether :func:`_bound_message` would change nothing (the common case: a short ASCII
    message), so that the parser's own message can be kept instead of a copy."""
    text, message_id, sender, recipient = (
        message.text,
        message.provider_message_id,
        message.sender,
        message.recipient,
    )
    name, choice, reply = message.contact_name or "", message.choice_id or "", message.reply_to or ""
    limit = MAX_FIELD_CHARS
    if (
        len(text) > max_chars
        or len(message_id) > limit
        or len(sender) > limit
        or len(recipient) > limit
        or len(name) > limit
        or len(choice) > limit
        or len(reply) > limit
    ):
        return False
    joined = text + message_id + sender + recipient + name + choice + reply
    if not joined.isascii() and _SURROGATE.search(joined) is not None:
        return False
    metadata, media, location = message.metadata, message.media, message.location
    return (
        type(metadata) is dict
        and _is_clean_value(metadata)
        and (media is None or _is_clean_value(media))
        and (location is None or _is_clean_value(location))
    )


def _bound_message(message: InboundMessage, max_chars: int) -> InboundMessage:
    if _is_bound_message(message, max_chars):
        return message
    text = clean_text(message.text)
    metadata = clean_value(message.metadata) or {}
    if len(text) > max_chars:
        metadata["truncated_from"] = len(text)
        text = text[:max_chars]
    # every field named (not dataclasses.replace, which reads the fields' list each call: the
    # busiest line of a webhook's parse)
    return InboundMessage(
        channel=message.channel,
        provider_message_id=_clean_field(message.provider_message_id),
        sender=_clean_field(message.sender),
        recipient=_clean_field(message.recipient),
        text=text,
        kind=message.kind,
        timestamp=message.timestamp,
        contact_name=_clean_optional(message.contact_name),
        choice_id=_clean_optional(message.choice_id),
        reply_to=_clean_optional(message.reply_to),
        media=clean_value(message.media) if message.media is not None else None,
        location=clean_value(message.location) if message.location is not None else None,
        metadata=metadata,
    )


def _bound_status(status: DeliveryStatus) -> DeliveryStatus:
    fields = (status.provider_message_id, status.recipient, status.sender)
    code, title = status.error_code or "", status.error_title or ""
    if all(len(f) <= MAX_FIELD_CHARS for f in (*fields, code, title)):
        joined = "".join((*fields, code, title))
        if joined.isascii() or _SURROGATE.search(joined) is None:
            return status  # nothing to cut or replace: the parser's own status
    return DeliveryStatus(
        channel=status.channel,
        provider_message_id=_clean_field(status.provider_message_id),
        status=status.status,
        recipient=_clean_field(status.recipient),
        sender=_clean_field(status.sender),
        timestamp=status.timestamp,
        error_code=_clean_optional(status.error_code),
        error_title=_clean_optional(status.error_title),
        client_ref=status.client_ref,
    )


def bound_parsed(parsed: ParsedWebhook, *, max_chars: int) -> ParsedWebhook:
    """``parsed`` made safe to store: every string without lone surrogates (:func:`clean_text`),
    ids, addresses and names cut to :data:`MAX_FIELD_CHARS`, provider JSON bounded
    (:func:`clean_value`), and each message text cut to ``max_chars``
    characters with ``metadata["truncated_from"] = <original length>`` (the message is kept)."""
    messages = [_bound_message(m, max_chars) for m in parsed.messages]
    statuses = [_bound_status(s) for s in parsed.statuses]
    if all(map(operator.is_, messages, parsed.messages)) and all(
        map(operator.is_, statuses, parsed.statuses)
    ):
        return parsed  # nothing changed: no new (frozen) container to build
    return ParsedWebhook(messages=messages, statuses=statuses)


def guarded_parse(
    channel: str, traits: ChannelTraits, raw_body: bytes, parse: Callable[[], ParsedWebhook]
) -> ParsedWebhook:
    """Run ``parse`` so that it is total: a :class:`ParsedWebhook` or a :class:`PayloadError`.

    - a body over ``traits.max_body_bytes`` is refused before ``parse`` runs;
    - any other exception of ``parse`` (``RecursionError`` from deep nesting, ``ValueError`` from a
      5,000-digit number, ``OverflowError``, ``TypeError``, ``IndexError`` ...) becomes a
      :class:`PayloadError` naming its type, and is logged with its traceback (a parser bug to fix);
    - the result goes through :func:`bound_parsed` with ``traits.max_inbound_chars``.
    """
    if len(raw_body) > traits.max_body_bytes:
        raise PayloadError(
            f"{channel} webhook body is {len(raw_body)} bytes; the limit is {traits.max_body_bytes}"
        )
    try:
        parsed = parse()
        return bound_parsed(parsed, max_chars=traits.max_inbound_chars)
    except PayloadError:
        raise
    except RecursionError:
        raise PayloadError(f"{channel} webhook body is nested too deeply") from None
    except Exception as exc:
        logger.warning(
            "%s webhook parser failed on its input: %s", channel, type(exc).__name__, exc_info=True
        )
        raise PayloadError(f"{channel} webhook body could not be parsed ({type(exc).__name__})") from None


def guarded_verify(channel: str, verify: Callable[[], None]) -> None:
    """Run ``verify`` so that it raises nothing but :class:`SignatureError`: any other exception
    (odd header bytes, a malformed URL) is a failed check, logged with its type."""
    try:
        verify()
    except SignatureError:
        raise
    except Exception as exc:
        logger.warning("%s webhook signature check failed on its input: %s", channel, type(exc).__name__)
        raise SignatureError(
            f"{channel} webhook signature could not be checked ({type(exc).__name__})"
        ) from None
