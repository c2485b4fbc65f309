"""A tenant's own channels: its WhatsApp number, Twilio account and mailbox, read from its
connections in the vault, and the routes that send their webhooks to it.

A connection's fields follow the provider catalog (``crm_sync/catalog.yaml``: ``whatsapp``,
``twilio``, ``smtp_imap``); :data:`CONNECTION_FIELDS` maps them onto the channel's constructor
arguments, the app adds what is the service's own (the public URL Twilio signs, the unsubscribe
secret). :func:`register_routes` writes, for each receiving address of a connection (a WhatsApp
phone-number id, a Twilio number, a mailbox), the route that hands its webhooks to the tenant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.core.logs import get_logger
from app.core.settings import Settings
from app.messaging.channel_config import install_secret
from app.tenancy.directory import TenantDirectory
from channels.sms import normalize_number
from crm_sync.models import Connection
from crm_sync.repository import ConnectionRepository
from crm_sync.vault import DecryptionError, Vault

__all__ = [
    "CHANNEL_PROVIDERS",
    "CONNECTION_FIELDS",
    "ConnectionChannels",
    "channel_of",
    "receiving_addresses",
    "register_routes",
]

log = get_logger("leadwarm.channels.tenants")

#: channel -> the catalog provider whose connection carries its credentials.
CHANNEL_PROVIDERS: Mapping[str, str] = {"whatsapp": "whatsapp", "sms": "twilio", "email": "smtp_imap"}

#: channel -> constructor argument -> the connection field (setting or secret) feeding it.
CONNECTION_FIELDS: Mapping[str, Mapping[str, str]] = {
    "whatsapp": {
        "access_token": "access_token",
        "phone_number_id": "phone_number_id",
        "app_secret": "app_secret",
        "api_base_url": "base_url",
    },
    "sms": {
        "account_sid": "account_sid",
        "auth_token": "auth_token",
        "from_number": "numbers",
        "api_base_url": "base_url",
    },
    "email": {
        "host": "smtp_host",
        "port": "smtp_port",
        "user": "username",
        "password": "password",
        "from_address": "from_address",
        "inbound_secret": "inbound_secret",
    },
}


def channel_of(connection: Connection) -> str | None:
    """The channel a connection serves (``whatsapp``, ``sms``, ``email``), or ``None``."""
    for channel, provider in CHANNEL_PROVIDERS.items():
        if provider == connection.provider:
            return channel
    return None


def _numbers(value: Any) -> list[str]:
    return [normalize_number(n) for n in str(value or "").split(",") if n.strip()]


def receiving_addresses(connection: Connection) -> list[str]:
    """Our addresses a provider's webhooks name for this connection: the WhatsApp phone-number id,
    the Twilio numbers (E.164), the mailbox (lower-case)."""
    channel, settings = channel_of(connection), connection.settings
    if channel == "whatsapp":
        return [str(settings["phone_number_id"])] if settings.get("phone_number_id") else []
    if channel == "sms":
        return _numbers(settings.get("numbers"))
    if channel == "email":
        mailbox = str(settings.get("from_address") or settings.get("username") or "").strip().lower()
        return [mailbox] if "@" in mailbox else []
    return []


async def register_routes(tenants: TenantDirectory, connection: Connection) -> list[str]:
    """Route the connection's receiving addresses to its tenant; returns the addresses routed.

    Call after a channel connection is created or changed. An address another tenant already owns
    is left with its owner (logged): an address is never silently moved between tenants.
    """
    channel = channel_of(connection)
    routed: list[str] = []
    if channel is None or connection.status != "active":
        return routed
    for address in receiving_addresses(connection):
        owner = await tenants.route(channel, address)
        if owner is not None and owner != connection.tenant_id:
            log.warning(
                "channel.route_taken",
                channel=channel,
                address=address,
                owner=owner,
                tenant=connection.tenant_id,
            )
            continue
        await tenants.set_route(channel, address, connection.tenant_id)
        routed.append(address)
    return routed


@dataclass(frozen=True, slots=True)
class _Config:
    version: str
    config: Mapping[str, Any] = field(default_factory=dict)


class ConnectionChannels:
    """:class:`app.messaging.directory.ChannelCredentials` over the vault: a tenant's active channel
    connection (the most recently updated one) as the channel's constructor arguments."""

    def __init__(self, *, repository: ConnectionRepository, vault: Vault, settings: Settings) -> None:
        self.repository = repository
        self.vault = vault
        self.settings = settings

    async def channel_config(self, tenant_id: str, channel: str) -> _Config | None:
        """See :class:`app.messaging.directory.ChannelCredentials`. A connection whose secrets do not
        decrypt is treated as absent (logged)."""
        provider = CHANNEL_PROVIDERS.get(channel)
        if provider is None:
            return None
        connections = [
            c
            for c in await self.repository.list_connections(tenant_id, limit=200)
            if c.provider == provider and c.status == "active"
        ]
        if not connections:
            return None
        connection = max(connections, key=lambda c: c.updated_at)
        try:
            config = self._config(channel, connection)
        except DecryptionError:
            log.error(
                "channel.connection_unreadable", tenant=tenant_id, channel=channel, connection=connection.id
            )
            return None
        return _Config(version=f"{connection.id}:{connection.version}", config=config)

    def _config(self, channel: str, connection: Connection) -> dict[str, Any]:
        values: dict[str, Any] = dict(connection.settings)
        for name in connection.secrets:
            secret = connection.secret(self.vault, name)
            if secret is not None:
                values[name] = secret.reveal()
        config = {arg: values.get(source) for arg, source in CONNECTION_FIELDS[channel].items()}
        if channel == "sms":
            numbers = _numbers(values.get("numbers"))
            config["from_number"] = numbers[0] if numbers else None
            config["public_base_url"] = self.settings.public_base_url
        if channel == "email":
            config["unsubscribe_base_url"] = self.settings.public_base_url
            config["unsubscribe_secret"] = (
                self.settings.email_unsubscribe_secret.get_secret_value()
                if self.settings.email_unsubscribe_secret
                else install_secret(self.settings)
            )
            config["tenant_id"] = connection.tenant_id
            if config.get("port"):
                config["port"] = int(str(config["port"]))
        return {k: v for k, v in config.items() if v not in (None, "")}
