"""The channel registry: ``{name: class}``. A new channel is one module and one line here."""

from __future__ import annotations

from channels.base import Channel
from channels.email import EmailChannel
from channels.sms import TwilioSmsChannel
from channels.webchat import WebChatChannel
from channels.whatsapp import WhatsAppChannel

__all__ = ["CHANNELS", "channel_class"]

#: Channel name (as stored on conversations and used in webhook URLs) -> implementation.
CHANNELS: dict[str, type[Channel]] = {
    WhatsAppChannel.name: WhatsAppChannel,
    TwilioSmsChannel.name: TwilioSmsChannel,
    EmailChannel.name: EmailChannel,
    WebChatChannel.name: WebChatChannel,
}


def channel_class(name: str) -> type[Channel]:
    """Return the channel class registered as ``name``.

    Raises :class:`KeyError` naming the unknown channel and the known ones.
    """
    try:
        return CHANNELS[name]
    except KeyError:
        known = ", ".join(sorted(CHANNELS)) or "none"
        raise KeyError(f"unknown channel {name!r}; known channels: {known}") from None
