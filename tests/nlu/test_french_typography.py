"""French typography of the bot's texts (:mod:`app.conversations.typography`): no-break spaces
before ``? ! ; :`` and inside « », never inside a URL, an e-mail address or a time."""

from __future__ import annotations

import time

import pytest

from app.conversations.typography import NARROW_NBSP as NN
from app.conversations.typography import NBSP, french_spacing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bonjour ! Ça va ?", f"Bonjour{NN}! Ça va{NN}?"),
        (
            "Nos horaires : du lundi au vendredi ; merci",
            f"Nos horaires{NBSP}: du lundi au vendredi{NN}; merci",
        ),
        (
            "C'est noté : « Isolation des combles ».",
            f"C'est noté{NBSP}: «{NBSP}Isolation des combles{NBSP}».",
        ),
        # glued to the word (a model's reply): the space is added
        ("Vraiment?! Parfait!", f"Vraiment{NN}?! Parfait{NN}!"),
        # times, URLs and e-mail addresses are left as they are
        ("Rendez-vous à 10:30.", "Rendez-vous à 10:30."),
        ("Voir https://exemple.fr/page?id=3 : merci", f"Voir https://exemple.fr/page?id=3{NBSP}: merci"),
        ("Écrivez à jean@exemple.fr : merci", f"Écrivez à jean@exemple.fr{NBSP}: merci"),
        ("www.exemple.fr/a?b ok", "www.exemple.fr/a?b ok"),
        ("Merci pour votre message.", "Merci pour votre message."),
    ],
)
def test_french_spacing(text: str, expected: str) -> None:
    assert french_spacing(text) == expected
    assert french_spacing(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "a" * 40_000 + " ?",  # a word that never reaches an "@": every start scanned to the end before
        "a" * 40_000 + "@ ?",
        " " * 40_000 + "x ?",
        " " * 40_000 + "»",
        "« " + " " * 40_000 + "x",
    ],
)
def test_long_texts_are_spaced_in_linear_time(text: str) -> None:
    """A bot text runs through this on the event loop (an e-mail reply may be 20,000 characters):
    no run of the pattern is unbounded, so 40 KB takes milliseconds (unbounded runs took about
    7 s on these; the bound is that, not a speed target)."""
    started = time.perf_counter()
    spaced = french_spacing(text)
    assert time.perf_counter() - started < 1.0
    assert len(spaced) >= len(text.rstrip()) - 16  # at most the bounded run's spaces merged
