"""The bot's own strings: every key in every language, English fallback, placeholders."""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo

import pytest

from app.core.i18n import MESSAGES, MessageKey, supported_languages, text
from app.handoff.hours import OfficeHours, describe_hours


def test_every_key_has_english_and_french() -> None:
    assert set(MESSAGES) == set(MessageKey)
    assert {"en", "fr"} <= set(supported_languages())


#: A value for every placeholder the bot's texts use.
PARAMS = {
    "company_name": "SunnyWatt",
    "delay": "2 h",
    "phone": "06 12 34 56 78",
    "hours": "9:00-18:00",
    "reopen": "9:00",
    "callback": "10:00",
    "when": "demain matin",
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


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("key", [MessageKey.HANDOFF_NEXT, MessageKey.HANDOFF_NEXT_CLOSED])
def test_handoff_notice_with_real_office_hours_has_balanced_brackets(language: str, key: MessageKey) -> None:
    # the office hours end with their time zone in brackets: "(Europe/Paris)"; a text that put them
    # inside its own brackets read "(Europe/Paris))" (found at /chat)
    hours = OfficeHours(
        zone=ZoneInfo("Europe/Paris"), start=time(9), end=time(18), days=frozenset(range(1, 6))
    )
    notice = text(key, language, **{**PARAMS, "hours": describe_hours(hours, language)})
    assert "(Europe/Paris)" in notice and "))" not in notice
    depth = 0
    for char in notice:
        depth += {"(": 1, ")": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
