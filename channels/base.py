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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from kernel.errors import LeadWarmError

__all__ = [
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
]

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
    """

    address_field: str
    keyword_optouts: bool = False
    threading: bool = False
    max_text_chars: int = 4096
    rich_content: bool = False
    phone_based: bool = False
    consent_on_inbound: bool = False
    session_window_s: float | None = None


class Channel(abc.ABC):
    """One transport. Subclasses set ``name`` and ``traits`` and implement the three verbs."""

    name: ClassVar[str]
    traits: ClassVar[ChannelTraits]
    config_optional: ClassVar[frozenset[str]] = frozenset()
    """Constructor arguments without a default that may still be left empty."""

    @classmethod
    def config_keys(cls) -> dict[str, bool]:
        """The settings this channel is built from: its constructor's keyword arguments, each
        mapped to whether it is required (no default and not in ``config_optional``)."""
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        return {
            p.name: p.default is inspect.Parameter.empty and p.name not in cls.config_optional
            for p in params
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        }

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
