"""The words of a playbook issue in the marketer's language (the editor's page language).

A :class:`playbooks.loader.PlaybookIssue` keeps its English ``message`` (the CLI, logs and the API's
default) and the error's ``code`` and ``params``; :func:`issue_text` renders the same issue from
the catalogue of another language. Codes are pydantic's error types
(https://docs.pydantic.dev/latest/errors/validation_errors/) and the playbook schema's own
(``PydanticCustomError`` types in :mod:`playbooks.schema`); a code, pattern or parameter the
catalogue does not know falls back to the English message, so an issue is never lost for want of a
translation.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

__all__ = ["ISSUE_LANGUAGES", "issue_text"]

#: pydantic's ``expected`` lists end "'a', 'b' or 'c'"; the catalogue says the last link in its words.
_OR = {"fr": " ou "}

#: Messages for the string patterns of the schema, by pattern (``string_pattern_mismatch``).
_PATTERNS: dict[str, dict[str, str]] = {
    "fr": {
        r"^[A-Za-z_][A-Za-z0-9_]*$": "doit être un nom fait de lettres, de chiffres et de « _ », "
        "qui ne commence pas par un chiffre",
        r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$": "doit être fait de lettres, de chiffres, de « _ », « - » et « . »",
        r"^[a-z0-9]+(?:-[a-z0-9]+)*$": "doit être fait de mots en minuscules reliés par « - », "
        "par ex. « renovation-qualification-fr »",
        r"^[a-z]{2}$": "doit être un code de langue ISO 639-1 à deux lettres, par ex. « fr » ou « en »",
    }
}

#: ``{name}`` fields come from the issue's ``params`` (pydantic's ``ctx``, plus ``key``: the last
#: element of the error's location).
_CATALOGUE: dict[str, dict[str, str]] = {
    "fr": {
        # pydantic's own error types
        "missing": "clé obligatoire « {key} » manquante",
        "extra_forbidden": "clé inconnue « {key} » (vérifiez l'orthographe : les clés inconnues "
        "ne sont pas acceptées)",
        "union_tag_invalid": "type d'étape inconnu « {tag} » (attendu : {expected_tags})",
        "union_tag_not_found": "clé obligatoire « type » manquante ({step_types})",
        "literal_error": "doit valoir {expected}",
        "string_too_short": "doit contenir au moins {min_length} caractère(s)",
        "string_too_long": "doit contenir au plus {max_length} caractères",
        "too_short": "doit contenir au moins {min_length} élément(s)",
        "too_long": "doit contenir au plus {max_length} éléments",
        "greater_than_equal": "doit être supérieur ou égal à {ge}",
        "greater_than": "doit être supérieur à {gt}",
        "less_than_equal": "doit être inférieur ou égal à {le}",
        "less_than": "doit être inférieur à {lt}",
        "string_type": "doit être un texte",
        "int_type": "doit être un nombre entier",
        "int_parsing": "doit être un nombre entier",
        "int_from_float": "doit être un nombre entier",
        "float_type": "doit être un nombre",
        "float_parsing": "doit être un nombre",
        "bool_type": "doit valoir true ou false",
        "bool_parsing": "doit valoir true ou false",
        "list_type": "doit être une liste (des lignes qui commencent par « - »)",
        "dict_type": "doit être un dictionnaire (des lignes « clé: valeur »)",
        "model_type": "doit être un dictionnaire (des lignes « clé: valeur »)",
        "model_attributes_type": "doit être un dictionnaire (des lignes « clé: valeur »)",
        # the playbook schema's own (playbooks.schema)
        "duration": "durée illisible : {text} (écrivez par ex. '90s', '30m', '2h', '1d' ou '1h30m')",
        "duration_zero": "la durée doit être plus longue que zéro (reçu {text})",
        "localized_text": "attendu : un texte, ou des textes par code de langue, par ex. "
        "{{fr: Bonjour, en: Hi}}",
        "localized_empty": "la liste des textes par langue est vide",
        "language_code": "« {lang} » n'est pas un code de langue ISO 639-1 à deux lettres (par ex. fr, en)",
        "template": "{lang} : {error}",
        "template_syntax": "{error}",
        "expression_syntax": "{error}",
        "choices_missing": "une question « choice » a besoin d'une liste « choices »",
        "choices_duplicate": "les identifiants des choix doivent être uniques (en double : {ids})",
        "choices_unexpected": "« choices » ne s'emploie qu'avec kind: choice (ici {kind})",
        "min_max_kind": "« min » et « max » ne s'emploient qu'avec kind: number",
        "min_max_order": "« min » est plus grand que « max »",
        "wait_forever": "une attente a besoin d'une durée « duration » (ou de until_reply: true)",
        "wait_on_reply": "« on_reply » ne s'emploie qu'avec until_reply: true",
        "duplicate_step": "l'identifiant d'étape {id} est déjà pris par steps[{first}]",
        "unknown_step": "aucune étape n'a l'identifiant {target} (les étapes sont : {known})",
        "slot_kind": "la donnée {slot} est demandée comme {first} dans steps[{index}] ; une donnée "
        "n'a qu'un seul type (reçu {kind})",
        "offer_step": "offer_step {id} doit être l'identifiant d'une étape ask de type « choice »",
        # the loader's own (playbooks.loader)
        "yaml_syntax": "erreur de syntaxe YAML : {detail}",
        "yaml_duplicate": "erreur YAML : clé en double ({detail})",
        "yaml": "erreur YAML : {detail}",
        "not_mapping": "un scénario doit être un dictionnaire YAML (id:, name:, steps: ...)",
        "unreadable": "fichier illisible : {detail}",
        "id_taken": "id : {id} est déjà pris par un autre scénario",
    }
}

#: How a value the marketer wrote is quoted after the message: "(got 'x')".
_GOT = {"fr": " (reçu {got})"}

ISSUE_LANGUAGES = ("en", *sorted(_CATALOGUE))
"""The languages an issue can be rendered in (English is the issue's own ``message``)."""


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def issue_text(code: str, params: Mapping[str, str], language: str) -> str | None:
    """The issue ``code`` with ``params`` in ``language``, without the location prefix; ``None``
    when the catalogue has no words for it (the caller keeps the English message). ``got``, when in
    ``params``, is the value the marketer wrote, already quoted, and is appended."""
    catalogue = _CATALOGUE.get(language)
    if catalogue is None:
        return None
    template = catalogue.get(code)
    if code == "string_pattern_mismatch":
        template = _PATTERNS[language].get(params.get("pattern", ""))
    if template is None or not _fields(template) <= params.keys():
        return None
    values = dict(params)
    for name in ("expected", "step_types"):  # English lists: "'a', 'b' or 'c'"
        if name in values and language in _OR:
            head, sep, last = values[name].rpartition(" or ")
            values[name] = head + _OR[language] + last if sep else values[name]
    text = template.format(**values)
    if "got" in params:
        text += _GOT[language].format(got=params["got"])
    return text
