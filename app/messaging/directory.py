"""Which channel instance serves a tenant: ``(tenant_id, channel name) -> Channel``.

Each tenant sends and receives through its own credentials: its WhatsApp number, Twilio account
and mailbox are connections in the vault (:mod:`app.messaging.tenant_channels` reads them). The
instances built from the process settings (the seeds' environment names) serve the default
tenant, and the web chat, which needs no credentials, serves everyone. A tenant with neither gets
an :class:`UnconfiguredChannel` that says what is missing: nothing is ever sent with another
tenant's credentials.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any, Protocol

from app.core.logs import get_logger
from channels.base import (
    Channel,
    ChannelConfigError,
    ChannelTraits,
    OutboundMessage,
    ParsedWebhook,
    SendError,
    SignatureError,
)
from channels.registry import channel_class

__all__ = ["ChannelCredentials", "ChannelDirectory", "TenantChannelConfig", "UnconfiguredChannel"]

log = get_logger("leadwarm.channels")


class UnconfiguredChannel(Channel):
    """Stands in for a channel whose credentials are not set: sending fails permanently with a
    message that says which settings are missing; webhooks are refused."""

    def __init__(self, name: str, missing: str) -> None:
        self.name = name  # type: ignore[misc]
        self.traits = channel_class(name).traits  # type: ignore[misc]
        self.missing = missing

    def verify(self, headers: Mapping[str, str], raw_body: bytes, *, url: str = "") -> None:
        raise SignatureError(f"{self.name} is not configured ({self.missing})")

    def parse(self, headers: Mapping[str, str], raw_body: bytes) -> ParsedWebhook:
        return ParsedWebhook()

    async def send(self, message: OutboundMessage) -> str:
        raise SendError(
            f"{self.name} is not configured: set {self.missing}", retryable=False, code="unconfigured"
        )


class TenantChannelConfig(Protocol):
    """What a tenant's channel connection gives: ``version`` changes whenever the connection does
    (so a cached instance is rebuilt), ``config`` holds the channel's constructor arguments."""

    @property
    def version(self) -> str: ...

    @property
    def config(self) -> Mapping[str, Any]: ...


class ChannelCredentials(Protocol):
    """Port: a tenant's own credentials for a channel (from the vault)."""

    async def channel_config(self, tenant_id: str, channel: str) -> TenantChannelConfig | None:
        """The tenant's active connection for ``channel`` as constructor arguments, or ``None``."""
        ...


class ChannelDirectory:
    """Holds the process's channel instances: the defaults and one per (tenant, channel) built from
    the tenant's connection (cached until the connection changes)."""

    def __init__(
        self,
        channels: dict[str, Channel],
        *,
        default_tenant: str = "demo",
        credentials: ChannelCredentials | None = None,
    ) -> None:
        self._channels = channels
        self.default_tenant = default_tenant
        self.credentials = credentials
        self._tenant_channels: dict[tuple[str, str], tuple[str, Channel]] = {}
        self._resolved: dict[tuple[str, str], tuple[Channel, float]] = {}
        """(tenant, channel) -> (instance, monotonic time resolved), for ``resolve(max_age_s=...)``."""

    def use_credentials(self, credentials: ChannelCredentials) -> None:
        """Read tenants' channel connections from ``credentials`` from now on."""
        self.credentials = credentials

    def get(self, tenant_id: str, name: str) -> Channel:
        """The process-wide instance of channel ``name`` (the default tenant's, built from the
        settings). Raises ``KeyError`` for an unknown channel. Use :meth:`resolve` to act for a
        tenant."""
        try:
            return self._channels[name]
        except KeyError:
            raise KeyError(f"unknown channel {name!r}; known: {sorted(self._channels)}") from None

    async def resolve(self, tenant_id: str, name: str, *, max_age_s: float = 0.0) -> Channel:
        """The instance that acts for ``tenant_id`` on channel ``name``: its own connection's, else
        (default tenant, or a channel needing no credentials) the process-wide one, else an
        :class:`UnconfiguredChannel`. Raises ``KeyError`` for an unknown channel.

        With ``max_age_s`` > 0 an instance this process resolved less than ``max_age_s`` seconds
        ago is reused without reading the tenant's connections (webhook verification: a rotated
        secret takes effect within that delay); sends always resolve afresh."""
        if max_age_s > 0:
            cached = self._resolved.get((tenant_id, name))
            if cached is not None and time.monotonic() - cached[1] < max_age_s:
                return cached[0]
        channel = await self._resolve(tenant_id, name)
        if len(self._resolved) >= 10_000:
            self._resolved.clear()
        self._resolved[(tenant_id, name)] = (channel, time.monotonic())
        return channel

    async def _resolve(self, tenant_id: str, name: str) -> Channel:
        default = self.get(tenant_id, name)
        config = None
        if self.credentials is not None and channel_class(name).config_keys():
            config = await self.credentials.channel_config(tenant_id, name)
        if config is not None:
            return await self._tenant_instance(tenant_id, name, config)
        if tenant_id == self.default_tenant or not channel_class(name).config_keys():
            return default
        return UnconfiguredChannel(name, f"a {name} connection for tenant {tenant_id}")

    async def _tenant_instance(self, tenant_id: str, name: str, config: TenantChannelConfig) -> Channel:
        cached = self._tenant_channels.get((tenant_id, name))
        if cached is not None and cached[0] == config.version:
            return cached[1]
        try:
            channel = channel_class(name).from_config(config.config)
        except ChannelConfigError as exc:
            log.warning("channel.connection_incomplete", tenant=tenant_id, channel=name, missing=exc.missing)
            return UnconfiguredChannel(name, f"{', '.join(exc.missing)} in tenant {tenant_id}'s connection")
        self._tenant_channels[(tenant_id, name)] = (config.version, channel)
        if cached is not None:
            with contextlib.suppress(Exception):
                await cached[1].aclose()
        return channel

    def traits(self, name: str) -> ChannelTraits:
        """The traits of channel ``name`` (registered channels only). Raises ``KeyError``."""
        return channel_class(name).traits

    def names(self) -> list[str]:
        """Channel names this process serves."""
        return sorted(self._channels)

    async def aclose(self) -> None:
        """Close every channel's network client."""
        for channel in [*self._channels.values(), *(c for _, c in self._tenant_channels.values())]:
            await channel.aclose()
        self._tenant_channels.clear()
