"""SMS shorthands leads type, written out before anything else reads the message: French and
English tables, whole words only, one pass over a bounded text."""

from __future__ import annotations

import time

import pytest

from playbooks.interpret import MAX_CHARS, expand_shorthand


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("une msn", "une maison"),
        ("msn.", "maison."),
        ("(msn)", "(maison)"),
        ("jsais pas, pk ?", "je sais pas, pourquoi ?"),
        ("jsp", "je ne sais pas"),
        ("pq ?", "pourquoi ?"),
        ("tkt", "sans souci"),
        ("bcp de questions", "beaucoup de questions"),
        ("stp", "s'il te plaît"),
        ("svp", "s'il vous plaît"),
        ("dsl", "désolé"),
        ("mtn c urgent", "maintenant c'est urgent"),
        ("qd vs voulez", "quand vous voulez"),
        ("ds 2 mois", "dans 2 mois"),
        ("pr un devis", "pour un devis"),
        ("ac ma femme", "avec ma femme"),
        ("avc mon mari", "avec mon mari"),
        ("vrmt pas pressé", "vraiment pas pressé"),
        ("trkl", "tranquille"),
        ("cb ca coute", "combien ca coute"),
        ("jai un appt", "j'ai un appartement"),
        ("ya des aides ?", "il y a des aides ?"),
        ("MSN", "maison"),
    ],
)
def test_french_shorthands(text: str, expected: str) -> None:
    assert expand_shorthand(text, language="fr") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("can u call me", "can you call me"),
        ("ur team", "your team"),
        ("pls", "please"),
        ("thx!", "thanks!"),
        ("idk", "i don't know"),
        ("tmrw pm", "tomorrow afternoon"),
        ("tmrw at 3 pm", "tomorrow at 3 pm"),
        ("wanna know", "want to know"),
        ("gonna be soon", "going to be soon"),
        ("dunno", "don't know"),
        ("can someone 2 call me", "can someone to call me"),
        ("in 2 monhts", "in 2 months"),
    ],
)
def test_english_shorthands(text: str, expected: str) -> None:
    assert expand_shorthand(text, language="en") == expected


def test_a_word_one_language_spells_differently_is_read_in_that_language_only() -> None:
    # "ac" is "avec" in French, air conditioning in English; "2 call" is English only
    assert expand_shorthand("do u do ac units", language="en") == "do you do ac units"
    assert expand_shorthand("ac ma femme", language="fr") == "avec ma femme"
    assert expand_shorthand("j'ai 2 call", language="fr") == "j'ai 2 call"
    # no language known: both tables
    assert expand_shorthand("u r in a msn") == "you are in a maison"


@pytest.mark.parametrize(
    "text",
    [
        "zoe@u.com",  # an address
        "U.K.",  # dots inside
        "c'est",  # an apostrophe inside: "c" stands for "c'est" only alone
        "pk-12",  # a reference
        "maison",  # already a word
        "pkg",  # a longer word that starts like a shorthand
    ],
)
def test_words_that_only_contain_a_shorthand_are_left_alone(text: str) -> None:
    assert expand_shorthand(text, language="fr") == text
    assert expand_shorthand(text) == text


def test_white_space_and_unknown_words_are_kept_as_written() -> None:
    text = "Bonjour,\n\nje  cherche\tune msn  svp"
    assert expand_shorthand(text, language="fr") == "Bonjour,\n\nje  cherche\tune maison  s'il vous plaît"


def test_a_long_message_is_read_in_bounded_time() -> None:
    # the worst case for a scanner: shorthands and punctuation everywhere, far past the bound
    text = "msn, pk? " * 200_000
    start = time.process_time()
    expanded = expand_shorthand(text, language="fr")
    spent = time.process_time() - start
    assert expanded.startswith("maison, pourquoi? maison")
    assert len(expanded) <= 4 * MAX_CHARS  # only the first MAX_CHARS characters are read
    assert spent < 0.05
