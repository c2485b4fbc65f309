"""SMS segment counting (GSM-7 160/153 septets, UCS-2 70/67 code units) and the SMS body builder."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from channels.base import Choice, OutboundMessage
from channels.sms import MAX_BODY, build_body, sms_encoding, sms_segments

GSM_BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
GSM_EXTENSION = "^{}\\[~]|€\f"


def test_encoding() -> None:
    assert sms_encoding("Bonjour à tous, ça va ?") == "UCS-2"  # ç is not in GSM-7 (Ç is)
    assert sms_encoding("Bonjour à tous, Ça va ?") == "GSM-7"
    assert sms_encoding("Price: 20€ [approx]") == "GSM-7"
    assert sms_encoding("Great 👍") == "UCS-2"
    assert all(sms_encoding(ch) == "GSM-7" for ch in GSM_BASIC + GSM_EXTENSION)


def test_gsm7_boundaries() -> None:
    assert sms_segments("") == 0
    assert sms_segments("a") == 1
    assert sms_segments("a" * 160) == 1
    assert sms_segments("a" * 161) == 2
    assert sms_segments("a" * 306) == 2
    assert sms_segments("a" * 307) == 3


def test_extension_characters_count_twice_and_are_never_split() -> None:
    assert sms_segments("€" * 80) == 1  # 160 septets
    assert sms_segments("€" * 81) == 2
    # 306 septets would fit two segments, but the escape pair may not straddle them.
    assert sms_segments("a" * 152 + "€" + "a" * 152) == 3
    assert sms_segments("a" * 153 + "€" + "a" * 151) == 2


def test_ucs2_boundaries_and_surrogate_pairs() -> None:
    assert sms_segments("ç" * 70) == 1
    assert sms_segments("ç" * 71) == 2
    assert sms_segments("ç" * 134) == 2
    assert sms_segments("ç" * 135) == 3
    assert sms_segments("😀" * 35) == 1  # 70 UTF-16 code units
    assert sms_segments("😀" * 36) == 2
    assert sms_segments("a" * 66 + "😀" + "a" * 66) == 3  # the pair is not split at 67


def test_one_non_gsm_character_switches_the_whole_message_to_ucs2() -> None:
    assert sms_segments("a" * 100) == 1
    assert sms_segments("a" * 99 + "ç") == 2


@given(st.text(alphabet=GSM_BASIC + GSM_EXTENSION + "çë😀ł", max_size=800))
def test_segment_count_bounds(text: str) -> None:
    count = sms_segments(text)
    if sms_encoding(text) == "GSM-7":
        units = len(text.encode("gsm03.38"))
        single, multi, widest = 160, 153, 2
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, widest = 70, 67, 2
    if not text:
        assert count == 0
    elif units <= single:
        assert count == 1
    else:
        # at least the ideal packing, at most one unit wasted per segment boundary
        assert math.ceil(units / multi) <= count <= math.ceil(units / (multi - widest + 1))


@given(st.text(alphabet=GSM_BASIC + GSM_EXTENSION + "ç😀", max_size=400), st.sampled_from("a€ç😀"))
def test_appending_never_lowers_the_count(text: str, extra: str) -> None:
    before = sms_segments(text)
    after = sms_segments(text + extra)
    if sms_encoding(text) == sms_encoding(text + extra):
        assert after >= before


def test_body_numbers_choices() -> None:
    message = OutboundMessage(to="+1", text="Roof?", choices=(Choice("a", "Tiles"), Choice("b", "Flat")))
    assert build_body(message) == "Roof?\n\n1. Tiles\n2. Flat"
    assert build_body(OutboundMessage(to="+1", text="  Hello  ")) == "Hello"


def test_long_body_is_cut_but_keeps_its_choices() -> None:
    choices = (Choice("a", "Tiles"), Choice("b", "Flat"))
    body = build_body(OutboundMessage(to="+1", text="x" * 3000, choices=choices))
    assert len(body) <= MAX_BODY
    assert body.endswith("…\n\n1. Tiles\n2. Flat")
    plain = build_body(OutboundMessage(to="+1", text="y" * 3000))
    assert len(plain) == MAX_BODY and plain.endswith("…")
