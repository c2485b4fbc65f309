"""Language detection: table tests over short chat messages, uninformative texts and ties."""

from __future__ import annotations

import threading
import time

import pytest

from app.ai.language import detect_language

FRENCH = [
    "Bonjour, je voudrais un devis",
    "oui",
    "non merci",
    "Combien ça coûte ?",
    "mardi prochain à 14h",
    "merci",
    "salut",
    "d'accord",
    "ok merci",
    "parfait",
    "Je suis intéressé par vos panneaux solaires",
    "Pouvez-vous me rappeler demain matin ?",
]
ENGLISH = [
    "Hi, I'd like a quote",
    "yes",
    "How much does it cost?",
    "tomorrow at 2pm",
    "no",
    "thanks",
    "ok thanks",
    "maybe",
    "I would like to know more about your solar panels",
    "Can you call me back on Monday morning?",
    "non actually its 200",  # a slip of French 'non' in an English correction
    "no wait its more like 200 a month",
    "sorry i meant 200",
]
NO_EVIDENCE = [
    "",
    "   ",
    "ok",
    "OK",
    "👍",
    "🙏🙏",
    "12345",
    "42 !",
    "jean.dupont@example.fr",
    "+33 6 12 34 56 78",
    "https://example.com/a/b",
    "cool",
    "?",
]


@pytest.mark.parametrize("text", FRENCH)
@pytest.mark.parametrize("previous", [None, "en", "fr"])
def test_french_texts(text: str, previous: str | None) -> None:
    assert detect_language(text, previous=previous) == "fr"


@pytest.mark.parametrize("text", ENGLISH)
@pytest.mark.parametrize("previous", [None, "en", "fr"])
def test_english_texts(text: str, previous: str | None) -> None:
    assert detect_language(text, previous=previous) == "en"


@pytest.mark.parametrize("text", NO_EVIDENCE)
@pytest.mark.parametrize("previous", [None, "en", "fr"])
def test_texts_without_language_evidence_give_none(text: str, previous: str | None) -> None:
    assert detect_language(text, previous=previous) is None


@pytest.mark.parametrize("text", ["yes merci", "Jean Dupont"])
def test_previous_language_wins_ties(text: str) -> None:
    assert detect_language(text) is None
    assert detect_language(text, previous="fr") == "fr"
    assert detect_language(text, previous="en") == "en"


def test_previous_outside_supported_is_ignored() -> None:
    assert detect_language("yes merci", previous="de") is None


def test_result_is_always_a_supported_language() -> None:
    assert detect_language("Hola, quiero un presupuesto", supported=("en", "fr")) in ("en", "fr", None)
    assert detect_language("Hola, quiero un presupuesto para paneles solares", supported=("en", "es")) == "es"
    assert detect_language("Bonjour, je voudrais un devis", supported=("en", "es")) != "fr"


def test_single_supported_language() -> None:
    assert detect_language("anything at all", supported=("fr",)) == "fr"
    assert detect_language("👍", supported=("fr",)) is None


def test_email_and_url_do_not_sway_the_language() -> None:
    assert detect_language("Voici mon adresse : john.smith@thanks.com") == "fr"
    assert detect_language("My email is jean.dupont@bonjour.fr") == "en"


@pytest.mark.parametrize("supported", [(), ("en", "xx")])
def test_invalid_supported_raises(supported: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        detect_language("Bonjour, je voudrais un devis pour mon toit", supported=supported)


def test_concurrent_callers_get_consistent_answers() -> None:
    cases = [*(("fr", t) for t in FRENCH), *(("en", t) for t in ENGLISH)]
    errors: list[str] = []

    def worker(supported: tuple[str, ...]) -> None:
        for expected, text in cases:
            got = detect_language(text, supported=supported)
            if got != expected:
                errors.append(f"{text!r}: {got} != {expected}")

    threads = [threading.Thread(target=worker, args=(s,)) for s in [("en", "fr"), ("fr", "en", "es")] * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.parametrize(
    "text",
    [
        "a" * 65_536,  # WhatsApp's longest text, no space: backtracked quadratically before
        "!" * 65_536 + "a",
        "x@y " * 20_000,
    ],
)
def test_worst_case_texts_are_read_in_linear_time(text: str) -> None:
    """The detector and the question test read untrusted text without backtracking patterns: the
    quadratic versions took 13 s on 64 KB; a bounded, linear pass takes milliseconds."""
    from app.ai.knowledge.retrieval import looks_like_question

    detect_language("warm up the model")
    started = time.perf_counter()
    detect_language(text)
    looks_like_question(text, None)
    assert time.perf_counter() - started < 1.0
