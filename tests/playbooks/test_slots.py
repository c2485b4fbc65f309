"""Slot parsing and normalisation, French and English, with a fixed clock (Mon 23 Nov 2026 10:00 Paris)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from playbooks.slots import DEFAULT_HOUR, normalise, parse_slot

from .conftest import MONDAY_10AM, PARIS

ROOFS = {
    "tile": ["Tiles", "Tuiles", "tiled roof"],
    "slate": ["Slate", "Ardoise"],
    "flat": ["Flat roof", "Toit plat", "terrasse"],
    "metal": ["Metal", "Bac acier", "tin"],
}


def parse(kind: str, text: str, **options: Any) -> Any:
    options.setdefault("now", MONDAY_10AM)
    options.setdefault("timezone", PARIS)
    parsed = parse_slot(kind, text, **options)
    return None if parsed is None else parsed.value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Oui !", True), ("ouais", True), ("Bien sûr", True), ("bien sur", True), ("d'accord", True),
        ("D’accord", True), ("Exactement.", True), ("tout à fait", True), ("yes", True), ("Yeah!!", True),
        ("yep", True), ("sure", True), ("Of course", True), ("absolutely", True), ("👍", True),
        ("no problem", True),
        ("Non", False), ("non merci", False), ("pas du tout", False), ("Nope", False), ("no.", False),
        ("not really", False), ("nah", False), ("👎", False), ("of course not", False), ("No, I rent", False),
        ("je ne suis pas propriétaire", False), ("I'm not the owner", False), ("I don't", False),
        ("maybe", None), ("je ne sais pas", None), ("I don't know", None), ("oui et non", None),
        ("hello", None), ("", None), ("yes and no", None),
    ],
)  # fmt: skip
def test_yes_no(text: str, expected: bool | None) -> None:
    assert parse("yes_no", text) is expected


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("12", "en", 12.0), ("12 500", "fr", 12500.0), ("12,5", "fr", 12.5), ("12,5", "en", 12.5),
        ("10k", "en", 10000.0), ("1.2M", "en", 1_200_000.0), ("€3000", "en", 3000.0), ("3 000 €",
        "fr", 3000.0),
        ("about 40", "en", 40.0), ("environ 150 euros par mois", "fr", 150.0), ("1,200", "en", 1200.0),
        ("1,200", "fr", 1.2), ("2.500", "fr", 2500.0), ("1 200,50 €", "fr", 1200.5), ("1,234,567",
        "en", 1234567.0),
        ("-5", "en", -5.0), ("vingt-cinq", "fr", 25.0), ("quatre-vingt-dix-neuf", "fr", 99.0),
        ("soixante-dix", "fr", 70.0), ("twenty five", "en", 25.0), ("a hundred", "en", 100.0),
        ("deux mille cinq cents", "fr", 2500.0), ("twelve", "en", 12.0), ("zero", "en", 0.0),
        ("120 m²", "fr", 120.0), ("pas d'idée", "fr", None), ("je veux parler à un conseiller", "fr", None),
        ("un", "fr", 1.0), ("", "en", None),
    ],
)  # fmt: skip
def test_number(text: str, language: str, expected: float | None) -> None:
    assert parse("number", text, language=language) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("john@example.com", "john@example.com"),
        ("my email is John.Doe@Example.COM.", "John.Doe@example.com"),
        ("écrivez-moi à marie+devis@Orange.FR svp", "marie+devis@orange.fr"),
        ("john at example dot com", "john@example.com"),  # said in words: written back
        ("@example.com", None),
    ],
)
def test_email(text: str, expected: str | None) -> None:
    assert parse("email", text) == expected


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("appelez-moi au 0612345678 svp", "FR", "+33612345678"),
        ("+33 6 12 34 56 78", None, "+33612345678"),
        ("call me on +44 20 7946 0958", "US", "+442079460958"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("06 12 34 56 78", None, None),  # no country code and no default region
        ("12 34", "FR", None),
        ("no phone", "FR", None),
    ],
)
def test_phone(text: str, region: str | None, expected: str | None) -> None:
    assert parse("phone", text, default_region=region) == expected


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("mardi prochain à 14h", "fr", "2026-11-24T14:00:00+01:00"),
        ("demain 10h30", "fr", "2026-11-24T10:30:00+01:00"),
        ("next tuesday at 2pm", "en", "2026-11-24T14:00:00+01:00"),
        ("tomorrow at 9am", "en", "2026-11-24T09:00:00+01:00"),
        ("le 3 décembre à 15h", "fr", "2026-12-03T15:00:00+01:00"),
        ("mardi 14h", "fr", "2026-11-24T14:00:00+01:00"),
        ("plutôt demain vers 10h30 si possible", "fr", "2026-11-24T10:30:00+01:00"),
        ("après-demain à midi", "fr", "2026-11-25T12:00:00+01:00"),
        ("jeudi matin", "fr", "2026-11-26T09:00:00+01:00"),
        ("lundi prochain 9h", "fr", "2026-11-30T09:00:00+01:00"),  # today is Monday: next week
        ("Friday at 3", "en", "2026-11-27T15:00:00+01:00"),
        ("today at 4:30 pm", "en", "2026-11-23T16:30:00+01:00"),
        ("à 9h", "fr", "2026-11-24T09:00:00+01:00"),  # 9:00 has passed today: tomorrow
        ("at 14:00", "en", "2026-11-23T14:00:00+01:00"),
        ("in 2 hours", "en", "2026-11-23T12:00:00+01:00"),
        ("December 3rd at 3pm", "en", "2026-12-03T15:00:00+01:00"),
        ("3 décembre", "fr", f"2026-12-03T{DEFAULT_HOUR:02d}:00:00+01:00"),
        ("tomorrow", "en", f"2026-11-24T{DEFAULT_HOUR:02d}:00:00+01:00"),
        ("whenever", "en", None),
        ("je ne sais pas", "fr", None),
    ],
)
def test_datetime(text: str, language: str, expected: str | None) -> None:
    assert parse("datetime", text, language=language) == expected


def test_datetime_uses_the_lead_timezone() -> None:
    value = parse("datetime", "tomorrow at 9am", timezone="America/New_York")
    assert value == "2026-11-24T09:00:00-05:00"
    assert datetime.fromisoformat(value).utcoffset() is not None


def test_datetime_evidence_and_missing_clock() -> None:
    parsed = parse_slot("datetime", "ok, plutôt demain vers 10h30 merci", now=MONDAY_10AM, timezone=PARIS)
    assert parsed is not None and parsed.evidence == "demain vers 10h30"
    with pytest.raises(ValueError, match="now"):
        parse_slot("datetime", "demain", timezone=PARIS)


@pytest.mark.parametrize(
    ("text", "choice_id", "expected"),
    [
        ("", "slate", "slate"), ("whatever", "flat", "flat"), ("2", None, "slate"), ("option 3", None,
        "flat"),
        ("9", None, None), ("tuiles", None, "tile"), ("TUILE", None, "tile"), ("slatte", None, "slate"),
        ("It's a flat roof", None, "flat"), ("toit plat", None, "flat"), ("Toit Plat !", None, "flat"),
        ("the third one", None, "flat"), ("la première", None, "tile"), ("bac acier", None, "metal"),
        ("ardoise naturelle", None, "slate"), ("tile or slate", None, None), ("dunno", None, None),
        ("", "unknown-id", None),
    ],
)  # fmt: skip
def test_choice(text: str, choice_id: str | None, expected: str | None) -> None:
    assert parse("choice", text, choices=ROOFS, choice_id=choice_id) == expected


def test_text() -> None:
    assert parse("text", "  75011 Paris ") == "75011 Paris"
    assert parse("text", "   ") is None


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("text", " hi ", "hi"), ("text", 75011, "75011"), ("text", "", None), ("text", ["x"], None),
        ("yes_no", True, True), ("yes_no", "oui", True), ("yes_no", "peut-être", None), ("yes_no", 1, None),
        ("number", 12, 12.0), ("number", "12 500", 12500.0), ("number", True, None),
        ("number", float("nan"), None),
        ("email", "A@B.COM", "A@b.com"), ("email", "write to a@b.com", None), ("email", 3, None),
        ("phone", "+33612345678", "+33612345678"), ("phone", "0612345678", "+33612345678"), ("phone",
        "123", None),
        ("datetime", "2026-11-24T14:00:00+01:00", "2026-11-24T14:00:00+01:00"),
        ("datetime", "2026-11-24T13:00:00Z", "2026-11-24T14:00:00+01:00"),
        ("datetime", "2026-11-24T14:00", "2026-11-24T14:00:00+01:00"),
        ("datetime", "demain 10h30", "2026-11-24T10:30:00+01:00"), ("datetime", "nope", None),
        ("choice", "flat", "flat"), ("choice", "Ardoise", "slate"), ("choice", "purple", None),
        ("unknown", "x", None), ("text", None, None),
    ],
)  # fmt: skip
def test_normalise(kind: str, value: Any, expected: Any) -> None:
    result = normalise(
        kind, value, language="fr", choices=ROOFS, now=MONDAY_10AM, timezone=PARIS, default_region="FR"
    )
    assert result == expected


def test_normalise_accepts_datetime_objects() -> None:
    naive = datetime(2026, 11, 24, 14, 0)
    assert normalise("datetime", naive, timezone=PARIS) == "2026-11-24T14:00:00+01:00"


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown slot kind"):
        parse_slot("colour", "red")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("zoe@gmail,com", "zoe@gmail.com"),
        ("zoe @ gmail.com", "zoe@gmail.com"),
        ("c'est jean.dupont@ orange.fr merci", "jean.dupont@orange.fr"),
        ("zoe@gmail,com, merci", "zoe@gmail.com"),
        ("zoe @gmail", None),  # no domain to mend
        ("x" * 1000 + "@" + "y," * 500, None),  # long and broken: nothing, quickly
    ],
)
def test_slips_of_the_thumb_in_an_email_address_are_mended(text: str, expected: str | None) -> None:
    found = parse_slot("email", text)
    assert (found.value if found else None) == expected


@pytest.mark.parametrize(
    "text",
    ["Êtes-vous propriétaire ?", "l’été prochain", "ÉCOLE ß ﬁ", "Ａｂｃ １２", "𝔸 ça", "Ⅻ ẞ Ω İ"],
)
def test_fold_by_table_equals_folding_each_character_and_keeps_the_length(text: str) -> None:
    from playbooks.slots import _fold_char, fold

    assert fold(text) == "".join(_fold_char(c) for c in text)
    assert len(fold(text)) == len(text)


def test_the_fold_table_keeps_a_bounded_number_of_characters() -> None:
    from playbooks import slots

    rare = "".join(chr(c) for c in range(0x4E00, 0x4E00 + slots._FOLD_TABLE_MAX + 500))  # CJK ideographs
    assert slots.fold(rare) == rare  # folded all the same (nothing to fold in them)
    assert len(slots._FOLD_TABLE) <= slots._FOLD_TABLE_MAX


def test_a_message_with_too_few_digits_reads_no_phone_number_whatever_the_regions() -> None:
    assert parse("phone", "call me on 06 12 34", default_region="FR") is None
    assert parse("phone", "call me on 06 12 34 56 78", default_region="FR") == "+33612345678"
    assert parse("phone", "mon numéro : ０６ １２ ３４ ５６ ７８", default_region="FR") == "+33612345678"
