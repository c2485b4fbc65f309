"""French typography of the bot's texts (:mod:`app.conversations.typography`): no-break spaces
before ``? ! ; :`` and inside « », never inside a URL, an e-mail address or a time."""

from __future__ import annotations

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
