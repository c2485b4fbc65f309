"""Number agreement for an option's title said inside a sentence: is "Les fenêtres" plural?

Titles are short labels an author wrote ("Solar panels", "Home battery", "Les fenêtres", "Pompe à
chaleur"); the engine says them in "Yes — {title} is/are one of our services." and "Oui — {title}
fait/font partie de nos services.", and with the lead's verb when the title names things ("Yes, we
install solar panels.", "Oui, nous installons des panneaux solaires."). Two readings:

* :func:`names_things`: the title's noun is in the plural (English: its last word; French: its
  first), so it can follow "we install" / "nous installons des";
* :func:`is_plural`: the title takes a plural verb: it names things, or opens with a plural
  determiner ("Les fenêtres", "These panels").

Pure functions over the title's words (no regex); a word of the title's language that looks plural
but is not (:data:`INVARIABLE`: "devis", "gaz", "glass", "bus") is read as singular.
"""

from __future__ import annotations

__all__ = ["INVARIABLE", "PLURAL_DETERMINERS", "is_plural", "names_things"]

PLURAL_DETERMINERS: dict[str, frozenset[str]] = {
    "fr": frozenset({"les", "des", "mes", "tes", "ses", "nos", "vos", "ces", "leurs", "aux", "plusieurs"}),
    "en": frozenset({"these", "those", "several"}),
}
"""Lower-cased words opening a title in the plural ("Les fenêtres"), per language."""

_NOT_NOUNS = PLURAL_DETERMINERS["fr"] | {"this", "its", "is"}
"""Plural-looking words that are no noun: a title opening with one is not said after "des"."""

INVARIABLE: dict[str, frozenset[str]] = {
    "fr": frozenset(
        {
            "accès", "acces", "bois", "bus", "cas", "châssis", "chassis", "choix", "colis", "corps",
            "devis", "dos", "faux", "flux", "gaz", "jus", "mas", "paix", "permis", "poids", "prix",
            "puits", "relais", "repas", "taux", "tapis", "temps", "vernis", "virus", "voix",
        }
    ),
    "en": frozenset({"gas", "news", "series", "species", "lens", "canvas", "chassis", "atlas"}),
}  # fmt: skip
"""Lower-cased singular words ending like a plural, per language ("Devis gratuit" is one quote)."""


def _head(words: list[str], language: str) -> str:
    """The word that carries the title's number: the last of an English title, the first of a
    French one (the noun comes first: "Panneaux solaires", "Pompe à chaleur")."""
    return words[-1 if language == "en" else 0].lower()


def names_things(title: str, language: str) -> bool:
    """Whether ``title``'s noun is in the plural, so that the title can follow a verb ("Yes, we
    install solar panels."; French: after "des"). ``language``: ISO 639-1 ("en" reads the last
    word, any other language the first). False for an empty title, a title opening with a
    determiner ("Les fenêtres": not said after "des"), and :data:`INVARIABLE` words."""
    words = title.split()
    if not words:
        return False
    head = _head(words, language)
    if len(head) <= 2 or head in _NOT_NOUNS or head in INVARIABLE.get(language, frozenset()):
        return False
    if language == "en":
        return head.endswith("s") and not head.endswith(("ss", "us", "is"))
    return (head.endswith("s") and not head.endswith("ss")) or head.endswith(("aux", "eux", "oux"))


def is_plural(title: str, language: str) -> bool:
    """Whether ``title`` takes a plural verb: it names things (:func:`names_things`) or opens with
    a :data:`PLURAL_DETERMINERS` word of ``language`` ("Les fenêtres font partie de nos
    services", "Windows are one of our services"; "Home battery is ...")."""
    words = title.split()
    if not words:
        return False
    return words[0].lower() in PLURAL_DETERMINERS.get(language, frozenset()) or names_things(title, language)
