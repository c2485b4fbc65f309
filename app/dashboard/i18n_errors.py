"""The words for the API's refusal codes (``code`` and ``params`` beside the English ``detail`` or
``reason``, see :mod:`app.core.coded_errors`), in English and French.

Merged into :data:`app.dashboard.i18n.STRINGS` as ``err_<code>`` with ``{param}`` placeholders;
lw.js's ``api()`` and the settings page use them, and show the API's English for a code without
words here. Codes: the settings API's own (:mod:`app.tenancy.settings_api`), pydantic's error types
for ranges and sizes, the CSV import's (:class:`app.dashboard.imports.ImportFileError`), the
people API's (:class:`app.dashboard.people.PeopleError`) and the integrations API's
(:mod:`app.connections.routes`, :class:`crm_sync.credentials.CredentialError`). A ``field``
parameter is a credential field's name (its words: ``cf_<name>``), a ``status`` a connection's
(``cst_<status>``).
"""

from __future__ import annotations

__all__ = ["ERROR_STRINGS"]

_NB = "\u00a0"

ERROR_STRINGS: dict[str, dict[str, str]] = {
    # app.connections.routes and crm_sync.credentials.CredentialError
    "err_credential_required": {"en": "{field} is required", "fr": f"«{_NB}{{field}}{_NB}» est obligatoire"},
    "err_credential_too_long": {
        "en": "{field} is too long",
        "fr": f"«{_NB}{{field}}{_NB}» est trop long",
    },
    "err_credential_unknown": {
        "en": "unknown field(s): {fields}",
        "fr": f"champ(s) inconnu(s){_NB}: {{fields}}",
    },
    "err_provider_unknown": {
        "en": "unknown integration '{provider}'",
        "fr": f"intégration inconnue «{_NB}{{provider}}{_NB}»",
    },
    "err_provider_oauth_only": {
        "en": "this integration connects through its sign-in page: use its Connect button",
        "fr": f"cette intégration se connecte par sa page de connexion{_NB}: utilisez son bouton Connecter",
    },
    "err_auth_mode_not_offered": {
        "en": "this integration does not offer this way of signing in",
        "fr": "cette intégration ne propose pas ce mode de connexion",
    },
    "err_integration_exists": {
        "en": "an integration named '{id}' already exists",
        "fr": f"une intégration nommée «{_NB}{{id}}{_NB}» existe déjà",
    },
    "err_oauth_renewed_by_connecting": {
        "en": "a connection made through a sign-in page is renewed by connecting again",
        "fr": "une connexion faite par une page de connexion se renouvelle en se connectant de nouveau",
    },
    "err_oauth_host_fixed": {
        "en": "the API address of a connection made through a sign-in page comes from the service",
        "fr": "l'adresse d'API d'une connexion faite par une page de connexion vient du service",
    },
    "err_secrets_needed_again": {
        "en": "a new API address needs these secret fields entered again: {fields}",
        "fr": f"une nouvelle adresse d'API demande de saisir de nouveau ces champs secrets{_NB}: {{fields}}",
    },
    "err_needs_reauthorisation": {
        "en": "the connection must be authorised again",
        "fr": "la connexion doit être autorisée de nouveau",
    },
    "err_connection_not_active": {
        "en": "the connection is {status}",
        "fr": "la connexion est {status}",
    },
    # app.tenancy.settings_api
    "err_unknown_time_zone": {
        "en": "unknown time zone '{value}' (an IANA name such as Europe/Paris)",
        "fr": f"fuseau horaire inconnu «{_NB}{{value}}{_NB}» (un nom IANA comme Europe/Paris)",
    },
    "err_not_time": {
        "en": "enter a time on the 24-hour clock, HH:MM (e.g. 18:30)",
        "fr": "saisissez une heure sur 24 heures, HH:MM (ex. 18:30)",
    },
    "err_not_color": {
        "en": "a colour as #RRGGBB (e.g. #1f6feb)",
        "fr": "une couleur au format #RRGGBB (ex. #1f6feb)",
    },
    "err_not_language_code": {
        "en": "'{value}' is not a language code (two lower-case letters, e.g. en, fr)",
        "fr": f"«{_NB}{{value}}{_NB}» n'est pas un code de langue (deux lettres minuscules, ex. en, fr)",
    },
    "err_languages_repeated": {"en": "a language is listed twice", "fr": "une langue figure deux fois"},
    "err_language_not_listed": {
        "en": "must be one of the languages",
        "fr": "doit faire partie des langues",
    },
    "err_not_region_code": {
        "en": "'{value}' is not a region code (ISO 3166, e.g. FR, US)",
        "fr": f"«{_NB}{{value}}{_NB}» n'est pas un code de pays (ISO 3166, ex. FR, US)",
    },
    "err_not_email": {
        "en": "'{value}' is not a valid email address",
        "fr": f"«{_NB}{{value}}{_NB}» n'est pas une adresse e-mail valide",
    },
    "err_not_http_url": {
        "en": "must be an address starting with http:// or https://",
        "fr": "doit être une adresse commençant par http:// ou https://",
    },
    "err_unknown_channel": {
        "en": "unknown channel '{value}'",
        "fr": f"canal inconnu «{_NB}{{value}}{_NB}»",
    },
    "err_text_too_long": {
        "en": "the {language} text is longer than {max} characters",
        "fr": f"le texte «{_NB}{{language}}{_NB}» dépasse {{max}}{_NB}caractères",
    },
    "err_not_origin": {
        "en": "'{value}' is not a site address (scheme://host[:port], no path)",
        "fr": f"«{_NB}{{value}}{_NB}» n'est pas une adresse de site (schéma://hôte[:port], sans chemin)",
    },
    "err_office_hours_order": {
        "en": "office hours must start before they end",
        "fr": "les heures de bureau doivent commencer avant de finir",
    },
    "err_unknown_setting": {"en": "unknown setting", "fr": "réglage inconnu"},
    "err_no_such_playbook": {
        "en": "no playbook '{value}'",
        "fr": f"aucun scénario «{_NB}{{value}}{_NB}»",
    },
    "err_template_name": {
        "en": "a template name is lower-case letters, digits and underscores",
        "fr": "un nom de modèle ne contient que des minuscules, des chiffres et des tirets bas",
    },
    "err_template_language": {
        "en": "a template language is like 'en', 'fr' or 'en_US'",
        "fr": "une langue de modèle s'écrit comme « en », « fr » ou « en_US »",
    },
    # pydantic's error types
    "err_greater_than_equal": {"en": "must be {ge} or more", "fr": "doit valoir au moins {ge}"},
    "err_less_than_equal": {"en": "must be {le} or less", "fr": "doit valoir au plus {le}"},
    "err_greater_than": {"en": "must be more than {gt}", "fr": "doit être supérieur à {gt}"},
    "err_less_than": {"en": "must be less than {lt}", "fr": "doit être inférieur à {lt}"},
    "err_int_parsing": {"en": "must be a whole number", "fr": "doit être un nombre entier"},
    "err_int_from_float": {"en": "must be a whole number", "fr": "doit être un nombre entier"},
    "err_float_parsing": {"en": "must be a number", "fr": "doit être un nombre"},
    "err_finite_number": {"en": "must be a number", "fr": "doit être un nombre"},
    "err_bool_parsing": {"en": "must be yes or no", "fr": "doit valoir oui ou non"},
    "err_string_too_short": {
        "en": "at least {min_length} characters",
        "fr": f"au moins {{min_length}}{_NB}caractères",
    },
    "err_string_too_long": {
        "en": "at most {max_length} characters",
        "fr": f"au plus {{max_length}}{_NB}caractères",
    },
    "err_too_short": {"en": "at least {min_length} items", "fr": f"au moins {{min_length}}{_NB}éléments"},
    "err_too_long": {"en": "at most {max_length} items", "fr": f"au plus {{max_length}}{_NB}éléments"},
    # app.dashboard.imports.ImportFileError
    "err_file_not_text": {
        "en": "the file is not text (UTF-8 or Windows-1252)",
        "fr": "le fichier n'est pas du texte (UTF-8 ou Windows-1252)",
    },
    "err_file_too_big": {"en": "the file is larger than {mb} MB", "fr": f"le fichier dépasse {{mb}}{_NB}Mo"},
    "err_file_empty": {"en": "the file is empty", "fr": "le fichier est vide"},
    "err_no_consent_column": {
        "en": "the file needs a 'consent' column (yes/no for each lead)",
        "fr": f"le fichier doit avoir une colonne «{_NB}consent{_NB}» (yes/no pour chaque prospect)",
    },
    "err_no_address_column": {
        "en": "the file needs an 'email' or a 'phone' column",
        "fr": f"le fichier doit avoir une colonne «{_NB}email{_NB}» ou «{_NB}phone{_NB}»",
    },
    "err_too_many_rows": {
        "en": "the file has more than {max} rows",
        "fr": f"le fichier a plus de {{max}}{_NB}lignes",
    },
    "err_bad_csv": {"en": "line {line}: not valid CSV", "fr": f"ligne {{line}}{_NB}: CSV invalide"},
    "err_not_lead_created": {
        "en": "the playbook '{value}' does not start when a lead is created",
        "fr": f"le scénario «{_NB}{{value}}{_NB}» ne démarre pas à la création d'un prospect",
    },
    # app.dashboard.people.PeopleError
    "err_not_email_address": {"en": "not an email address", "fr": "ce n'est pas une adresse e-mail"},
    "err_password_too_short": {
        "en": "a password has at least {min} characters",
        "fr": f"un mot de passe compte au moins {{min}}{_NB}caractères",
    },
    "err_password_too_long": {
        "en": "a password has at most {max} characters",
        "fr": f"un mot de passe compte au plus {{max}}{_NB}caractères",
    },
    "err_unknown_role": {"en": "unknown role", "fr": "rôle inconnu"},
    "err_account_exists": {
        "en": "this email already has an account here",
        "fr": "cette adresse e-mail a déjà un compte ici",
    },
    "err_invite_invalid": {
        "en": "this invitation link is not valid any more",
        "fr": "ce lien d'invitation n'est plus valable",
    },
}
