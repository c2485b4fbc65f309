"""Channels: one module per transport behind the small contract in :mod:`channels.base`."""

from channels.base import (
    Channel,
    ChannelError,
    ChannelTraits,
    Choice,
    DeliveryStatus,
    InboundMessage,
    OutboundMessage,
    ParsedWebhook,
    PayloadError,
    SendError,
    SignatureError,
    clean_text,
    clean_value,
    numbered_choices,
)
from channels.registry import CHANNELS, channel_class
from channels.whatsapp import SubscriptionError, WhatsAppChannel

__all__ = [
    "CHANNELS",
    "Channel",
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
    "SubscriptionError",
    "WhatsAppChannel",
    "channel_class",
    "clean_text",
    "clean_value",
    "numbered_choices",
]
