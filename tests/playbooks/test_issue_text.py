"""Playbook issues in the marketer's language: every issue the loader and the schema raise has
French words, keeps its line and path, and falls back to English where the catalogue is silent."""

from __future__ import annotations

import pytest

from playbooks import PlaybookError, load_playbook_text
from playbooks.issue_text import issue_text
from playbooks.loader import PlaybookIssue

GOOD = """\
id: visite-fr
name: Visite
version: 1
language: fr
steps:
  - id: budget
    type: ask
    slot: budget
    kind: number
    question: {fr: "Votre budget ?", en: "Your budget?"}
  - id: fin
    type: end
    outcome: qualified
"""

END = "    type: end\n    outcome: qualified\n"

#: (how to break GOOD, the issue's code, words the French message must hold)
BROKEN = [
    (("id: visite-fr", "id: Visite_FR"), "string_pattern_mismatch", "mots en minuscules"),
    (("version: 1", "version: 0"), "greater_than_equal", "supérieur ou égal à 1 (reçu 0)"),
    (("name: Visite", "name: ''"), "string_too_short", "au moins 1 caractère"),
    (("language: fr", "language: fra"), "string_pattern_mismatch", "code de langue"),
    (("version: 1", "version: 1\nextra: 2"), "extra_forbidden", "clé inconnue « extra »"),
    (("    slot: budget\n", ""), "missing", "clé obligatoire « slot » manquante"),
    (("kind: number", "kind: nombre"), "literal_error", "ou 'choice' (reçu 'nombre')"),
    (("type: end", "type: fin"), "union_tag_invalid", "type d'étape inconnu « fin »"),
    ((END, ""), "union_tag_not_found", "book ou sync"),
    (("  - id: fin", "  - id: budget"), "duplicate_step", "déjà pris par steps[0]"),
    ((END, "    type: wait\n    duration: bientôt\n"), "duration", "durée illisible"),
    ((END, "    type: wait\n    duration: 0m\n"), "duration_zero", "plus longue que zéro"),
    ((END, "    type: wait\n"), "wait_forever", "une attente a besoin"),
    (("kind: number", "kind: number\n    min: 9\n    max: 1"), "min_max_order", "« min » est plus grand"),
    (("kind: number", "kind: text\n    min: 1"), "min_max_kind", "ne s'emploient qu'avec kind: number"),
    (("kind: number", "kind: choice"), "choices_missing", "a besoin d'une liste « choices »"),
    (('{fr: "Votre budget ?", en: "Your budget?"}', '{fr: "{{ x"}'), "template", None),
    (('{fr: "Votre budget ?", en: "Your budget?"}', "{}"), "localized_empty", "est vide"),
    (('en: "Your budget?"', 'eng: "Your budget?"'), "language_code", "« eng » n'est pas un code"),
    (('{fr: "Votre budget ?", en: "Your budget?"}', "[1, 2]"), "localized_text", "{fr: Bonjour, en: Hi}"),
    (('{fr: "Votre budget ?", en: "Your budget?"}', '"{{ oops"'), "template_syntax", None),
    (("version: 1", "version: [1"), "yaml_syntax", "erreur de syntaxe YAML"),
    (("version: 1", "version: 1\nversion: 2"), "yaml_duplicate", "clé en double"),
]


def _issues(source: str) -> list[PlaybookIssue]:
    with pytest.raises(PlaybookError) as caught:
        load_playbook_text(source, source="draft.yaml")
    return caught.value.issues


@pytest.mark.parametrize(
    ("change", "code", "words"), BROKEN, ids=[f"{b[1]}-{i}" for i, b in enumerate(BROKEN)]
)
def test_each_issue_is_said_in_french_at_its_own_line(
    change: tuple[str, str], code: str, words: str | None
) -> None:
    assert change[0] in GOOD
    issues = [i for i in _issues(GOOD.replace(change[0], change[1], 1)) if i.code == code]
    assert issues, f"no {code} issue"
    issue = issues[0]
    french = issue.text("fr")
    if words is not None:
        assert words in french, french
    if code != "template_syntax" and code != "template":  # Jinja's own detail stays English
        assert french != issue.message
    assert issue.text("en") == issue.message
    assert issue.line >= 1
    if issue.path:
        assert french.startswith(issue.path + ": ") and issue.message.startswith(issue.path + ": ")


def test_an_issue_the_catalogue_does_not_know_keeps_its_english() -> None:
    unknown = PlaybookIssue("f.yaml", 3, 1, "steps[0]: something new", code="brand_new", path="steps[0]")
    assert unknown.text("fr") == "steps[0]: something new"
    assert unknown.text("de") == "steps[0]: something new"
    # A known code whose context lacks a field of the template: English, not a KeyError.
    partial = PlaybookIssue("f.yaml", 3, 1, "steps[0].x: no step has the id 'x'", code="unknown_step")
    assert partial.text("fr") == partial.message
    assert issue_text("string_pattern_mismatch", {"pattern": "^new$"}, "fr") is None


def test_a_value_already_in_the_message_is_not_repeated() -> None:
    duration = _issues(GOOD.replace(END, "    type: wait\n    duration: 5 minutes\n"))
    assert [i.message.count("'5 minutes'") for i in duration] == [1]
    assert [i.text("fr").count("'5 minutes'") for i in duration] == [1]
    dangling = _issues(GOOD.replace("    type: end\n", "    type: end\n    next: nulle-part\n"))
    french = [i.text("fr") for i in dangling if i.code == "unknown_step"]
    assert french == [
        "steps[1].next: aucune étape n'a l'identifiant 'nulle-part' (les étapes sont : budget, fin)"
    ]
