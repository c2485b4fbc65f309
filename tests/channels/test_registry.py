"""The channel registry maps names to Channel classes."""

from __future__ import annotations

import pytest

from channels import CHANNELS, Channel, WhatsAppChannel, channel_class


def test_whatsapp_is_registered_under_its_name() -> None:
    assert channel_class("whatsapp") is WhatsAppChannel
    assert CHANNELS["whatsapp"] is WhatsAppChannel


def test_every_entry_is_a_channel_registered_under_its_own_name() -> None:
    for name, cls in CHANNELS.items():
        assert issubclass(cls, Channel)
        assert cls.name == name


def test_unknown_name_raises_key_error_naming_the_known_ones() -> None:
    with pytest.raises(KeyError, match="telegram") as info:
        channel_class("telegram")
    assert "whatsapp" in str(info.value)
