"""The default tenant's channel settings, read from the environment (the names the seeds' users
already have in their ``.env`` files), and channels built from the registry.

Each channel class builds itself from a mapping of its constructor's keyword arguments
(:meth:`channels.base.Channel.from_config`); this module only says which environment setting feeds
which argument. A channel whose required settings are missing becomes an
:class:`~app.messaging.directory.UnconfiguredChannel` that says which environment names to set.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from app.core.settings import Settings
from app.messaging.directory import UnconfiguredChannel
from channels.base import Channel, ChannelConfigError
from channels.registry import CHANNELS

__all__ = ["ENV_SETTINGS", "build_channels", "env_channel_config", "install_secret"]

#: channel -> constructor argument -> the Settings field (environment name, lower-cased) feeding it.
ENV_SETTINGS: Mapping[str, Mapping[str, str]] = {
    "whatsapp": {
        "access_token": "whatsapp_token",
        "phone_number_id": "whatsapp_phone_id",
        "app_secret": "whatsapp_app_secret",
        "api_base_url": "whatsapp_api_base_url",
        "api_version": "whatsapp_api_version",
    },
    "sms": {
        "account_sid": "twilio_account_sid",
        "auth_token": "twilio_auth_token",
        "from_number": "twilio_phone_number",
        "api_base_url": "twilio_api_base_url",
        "public_base_url": "public_base_url",
        "default_region": "default_region",
    },
    "email": {
        "host": "email_host",
        "port": "email_port",
        "user": "email_user",
        "password": "email_password",
        "from_address": "email_from",
        "starttls": "email_starttls",
        "unsubscribe_base_url": "public_base_url",
        "unsubscribe_secret": "email_unsubscribe_secret",
        "unsubscribe_mailto": "email_unsubscribe_mailto",
        "tenant_id": "default_tenant_id",
        "inbound_secret": "email_inbound_secret",
    },
    "webchat": {},
}


def _plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def install_secret(settings: Settings) -> str:
    """A random secret kept in the data folder (mode 0600), so unsubscribe links survive restarts."""
    path = settings.leadwarm_data_dir / "unsubscribe.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def env_channel_config(settings: Settings, channel: str) -> dict[str, Any]:
    """The default tenant's settings for ``channel`` as constructor arguments (secrets in clear:
    they go straight into the channel object, never into a log)."""
    config = {arg: _plain(getattr(settings, field)) for arg, field in ENV_SETTINGS.get(channel, {}).items()}
    if channel == "email" and config.get("host"):
        config["unsubscribe_secret"] = (
            config.get("unsubscribe_secret") or _plain(settings.encryption_key) or install_secret(settings)
        )
    return config


def build_channels(settings: Settings) -> dict[str, Channel]:
    """One instance of every registered channel for the default tenant; a channel whose settings
    are missing refuses with the environment names to set."""
    built: dict[str, Channel] = {}
    for name, cls in CHANNELS.items():
        try:
            built[name] = cls.from_config(env_channel_config(settings, name))
        except ChannelConfigError as exc:
            env_names = [ENV_SETTINGS.get(name, {}).get(key, key).upper() for key in exc.missing]
            built[name] = UnconfiguredChannel(name, " and ".join(env_names))
    return built
