"""Which channel instance serves a tenant: ``(tenant_id, channel name) -> Channel``.

Today every tenant shares the instances built from the process settings (the seed's env
names); per-tenant credentials from the vault plug in here later without touching callers.
"""

from __future__ import annotations

from collections.abc import Mapping

from channels.base import Channel, ChannelTraits, OutboundMessage, ParsedWebhook, SendError
from channels.registry import channel_class

__all__ = ["ChannelDirectory", "UnconfiguredChannel"]


class UnconfiguredChannel(Channel):
    """Stands in for a channel whose credentials are not set: sending fails permanently with a
    message that says which settings are missing; webhooks are refused."""

    def __init__(self, name: str, missing: str) -> None:
        self.name = name  # type: ignore[misc]
        self.traits = channel_class(name).traits  # type: ignore[misc]
        self.missing = missing

    def verify(self, headers: Mapping[str, str], raw_body: bytes, *, url: str = "") -> None:
        from channels.base import SignatureError

        raise SignatureError(f"{self.name} is not configured ({self.missing})")

    def parse(self, headers: Mapping[str, str], raw_body: bytes) -> ParsedWebhook:
        return ParsedWebhook()

    async def send(self, message: OutboundMessage) -> str:
        raise SendError(
            f"{self.name} is not configured: set {self.missing}", retryable=False, code="unconfigured"
        )


class ChannelDirectory:
    """Holds the process's channel instances."""

    def __init__(self, channels: dict[str, Channel]) -> None:
        self._channels = channels

    def get(self, tenant_id: str, name: str) -> Channel:
        """The channel ``name`` for ``tenant_id``. Raises ``KeyError`` for an unknown channel."""
        try:
            return self._channels[name]
        except KeyError:
            raise KeyError(f"unknown channel {name!r}; known: {sorted(self._channels)}") from None

    def traits(self, name: str) -> ChannelTraits:
        """The traits of channel ``name`` (registered channels only). Raises ``KeyError``."""
        return channel_class(name).traits

    def names(self) -> list[str]:
        """Channel names this process serves."""
        return sorted(self._channels)

    async def aclose(self) -> None:
        """Close every channel's network client."""
        for channel in self._channels.values():
            await channel.aclose()
