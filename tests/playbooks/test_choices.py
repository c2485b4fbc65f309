"""Choices that understand people: stems, prefixes, typos, ordinals, periods, "other", close options."""

from __future__ import annotations

import pytest

from playbooks.choices import match_choice, months_ahead

from .conftest import MONDAY_10AM, PARIS

ROOF = {
    "pitched_tiles": ["Pitched – tiles", "En pente – tuiles", "tile", "tiles", "pitched", "tuile", "tuiles"],
    "pitched_slate": ["Pitched – slate", "En pente – ardoise", "slate", "ardoise"],
    "flat": ["Flat roof", "Toit plat", "toit terrasse"],
    "metal": ["Metal", "Métal", "bac acier"],
    "not_sure": ["Not sure", "Je ne sais pas", "no idea"],
}
WORKS = {
    "isolation_combles": ["Isolation des combles", "combles", "grenier", "toiture"],
    "isolation_murs": ["Isolation des murs", "murs", "ite"],
    "pompe_a_chaleur": ["Pompe à chaleur", "pac", "chauffage"],
    "renovation_globale": ["Rénovation globale", "tout", "global", "complète"],
}
PERIODS = {
    "asap": ["Within 3 months", "D'ici 3 mois", "asap"],
    "three_to_six_months": ["In 3 to 6 months", "Dans 3 à 6 mois"],
    "later": ["Later than 6 months", "Dans plus de 6 mois", "next year"],
    "researching": ["Just researching", "Je me renseigne"],
}
FR_PERIODS = {  # "Plus tard" names no number: it takes what lies beyond the other options
    "moins_3_mois": ["D'ici 3 mois"],
    "trois_six_mois": ["Dans 3 à 6 mois"],
    "plus_tard": ["Plus tard"],
    "renseignement": ["Je me renseigne"],
}


def pick(text: str, choices: dict[str, list[str]], **options: object) -> str | None:
    return match_choice(text, choices, now=MONDAY_10AM, timezone=PARIS, **options).value  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tiled", "pitched_tiles"), ("it's a tiled roof", "pitched_tiles"), ("slates", "pitched_slate"),
        ("pitched with slates", "pitched_slate"), ("slat", "pitched_slate"), ("metl", "metal"),
        ("the second one", "pitched_slate"), ("3", "flat"), ("option 4", "metal"), ("le dernier", "not_sure"),
        ("dunno", "not_sure"), ("TOIT PLAT", "flat"), ("tuilé", "pitched_tiles"),
    ],
)  # fmt: skip
def test_roof_words(text: str, expected: str) -> None:
    assert pick(text, ROOF) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("isoler le grenier", "isolation_combles"), ("isoler les murs par l'exterieur", "isolation_murs"),
        ("une PAC", "pompe_a_chaleur"), ("pompe a chaluer", "pompe_a_chaleur"), ("reno globale", "renovation_globale"),
        ("tout", "renovation_globale"), ("la 3", "pompe_a_chaleur"),
    ],
)  # fmt: skip
def test_works_words(text: str, expected: str) -> None:
    assert pick(text, WORKS) == expected


def test_a_kitchen_is_not_a_global_renovation() -> None:
    found = match_choice("on veut tout refaire dans la cuisine", WORKS)
    assert found.value is None and found.other and found.evidence == "on veut tout refaire dans la cuisine"
    none = match_choice("aucun de ceux-là, c'est pour la toiture terrasse", WORKS)
    assert none.value is None and none.other


def test_other_option_is_chosen_when_the_question_has_one() -> None:
    choices = {"a": ["Heat pump"], "b": ["Insulation"], "autre": ["Other", "Autre"]}
    found = match_choice("a new kitchen actually", choices)
    assert found.value == "autre" and found.other


def test_close_options_are_returned_as_candidates() -> None:
    found = match_choice("isolation", WORKS)
    assert found.value is None and found.candidates == ("isolation_combles", "isolation_murs")


def test_question_words_do_not_pick_an_option() -> None:
    found = match_choice("green roof with sedum", ROOF, question="What kind of roof do you have?")
    assert found.value is None and found.other


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in five months", "three_to_six_months"), ("in 5 months", "three_to_six_months"),
        ("after the winter", "three_to_six_months"), ("before summer", "three_to_six_months"),
        ("hopefully before summer, so in the next couple of months", "asap"), ("dans deux mois", "asap"),
        ("in a year", "later"), ("by christmas", "asap"), ("next year", "later"), ("in march", "three_to_six_months"),
        ("dans 2-3 mois", "asap"), ("not until next summer", "later"),
    ],
)  # fmt: skip
def test_relative_periods_map_onto_period_options(text: str, expected: str) -> None:
    assert pick(text, PERIODS) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("dans 8 mois", "plus_tard"), ("dans 4 mois", "trois_six_mois"), ("d'ici un mois", "moins_3_mois")],
)
def test_an_open_ended_later_option_takes_the_rest(text: str, expected: str) -> None:
    assert pick(text, FR_PERIODS) == expected


def test_months_ahead() -> None:
    found = months_ahead("we want it done in six months", now=MONDAY_10AM, timezone=PARIS)
    assert found is not None and found[0] == 6.0 and found[1] == "in six months"
    assert months_ahead("about 180 a month", now=MONDAY_10AM, timezone=PARIS) is None
    assert months_ahead("blah " * 10_000, now=MONDAY_10AM, timezone=PARIS) is None


def test_strict_mode_takes_whole_labels_only() -> None:
    assert match_choice("2", ROOF, strict=True).value is None
    assert match_choice("I'm not sure what you mean", ROOF, strict=True).value is None
    assert match_choice("our roof is slate", ROOF, strict=True).value == "pitched_slate"


def test_tapped_button_and_empty_input() -> None:
    assert match_choice("", ROOF, choice_id="metal").value == "metal"
    assert match_choice("", ROOF).value is None
    assert match_choice("anything", {}).value is None


DELAY = {
    "moins_3_mois": ["D'ici 3 mois", "urgent", "pressé"],
    "plus_tard": ["Plus tard", "l'année prochaine", "pas pressé"],
    "renseignement": ["Je me renseigne", "pas encore décidé"],
}


@pytest.mark.parametrize(
    ("text", "choices", "expected"),
    [
        ("je suis pressé", DELAY, "moins_3_mois"),  # not "pas pressé" without its "pas"
        ("pas pressé du tout", DELAY, "plus_tard"),
        ("je ne sais pas", DELAY, None),  # "pas" alone is not "pas pressé" nor "pas encore décidé"
        ("no wait", ROOF, None),  # "no" alone is not "no idea"
        ("next tuesday", PERIODS, None),  # "next" alone is not "next year"
        ("je ne veux pas de pac, plutôt les combles", WORKS, "isolation_combles"),  # "pas de pac"
    ],
)
def test_negations_and_qualifiers_alone_choose_nothing(
    text: str, choices: dict[str, list[str]], expected: str | None
) -> None:
    assert pick(text, choices) == expected


def test_a_negated_option_is_not_chosen_and_none_of_these_is_declined() -> None:
    found = match_choice("not this year", {"soon": ["this year"], "later": ["Later"]})
    assert found.value is None
    declined = match_choice("none of these", ROOF)
    assert declined.other and declined.declined
    merely_other = match_choice("a thatched one", ROOF)
    assert merely_other.other and not merely_other.declined
