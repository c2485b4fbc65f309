"""The bot's own strings: every key in every language, English fallback, placeholders."""

from __future__ import annotations

import pytest

from app.core.i18n import MESSAGES, MessageKey, supported_languages, text


def test_every_key_has_english_and_french() -> None:
    assert set(MESSAGES) == set(MessageKey)
    assert {"en", "fr"} <= set(supported_languages())


#: A value for every placeholder the bot's texts use.
PARAMS = {
    "company_name": "SunnyWatt",
    "delay": "2 h",
    "hours": "9:00-18:00",
    "reopen": "9:00",
    "callback": "10:00",
}


@pytest.mark.parametrize("key", [k for k in MessageKey if k is not MessageKey.REACTION_ACK])
def test_texts_differ_per_language_and_are_not_empty(key: MessageKey) -> None:
    english, french = text(key, "en", **PARAMS), text(key, "fr", **PARAMS)
    assert english and french and english != french


def test_reaction_ack_is_empty() -> None:
    assert text(MessageKey.REACTION_ACK, "fr") == ""


@pytest.mark.parametrize("language", [None, "de", "xx", ""])
def test_unknown_language_falls_back_to_english(language: str | None) -> None:
    assert text(MessageKey.FALLBACK, language) == text(MessageKey.FALLBACK, "en")


def test_region_and_case_are_ignored() -> None:
    assert text("fallback", "fr-CA") == text(MessageKey.FALLBACK, "FR") == MESSAGES[MessageKey.FALLBACK]["fr"]


def test_french_uses_vouvoiement() -> None:
    for key in MessageKey:
        french = text(key, "fr", **PARAMS).lower().replace("'", " ")
        assert " tu " not in f" {french} " and " te " not in f" {french} "


def test_placeholders() -> None:
    assert "SunnyWatt" in text(MessageKey.CHAT_WELCOME, "fr", company_name="SunnyWatt")
    with pytest.raises(KeyError):
        text(MessageKey.CHAT_WELCOME, "en")


def test_unknown_key_raises() -> None:
    with pytest.raises(ValueError):
        text("no_such_key", "en")
