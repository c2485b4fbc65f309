"""The dashboard's words in English and French, and the reader's language.

The language is the ``lw_lang`` cookie the reader chose, else the first of ``Accept-Language`` we
speak, else English. Pages get :func:`strings` for their templates and hand the same table to the
page's script (a JSON data block), so server and browser say the same thing.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection

from app.dashboard.strings_inbox import INBOX_STRINGS

__all__ = ["LANGUAGES", "LANG_COOKIE", "STRINGS", "language_of", "refusal", "strings"]

LANGUAGES = ("en", "fr")
LANG_COOKIE = "lw_lang"

STRINGS: dict[str, dict[str, str]] = {
    "app_name": {"en": "LeadWarm", "fr": "LeadWarm"},
    "skip": {"en": "Skip to content", "fr": "Aller au contenu"},
    "nav": {"en": "Main navigation", "fr": "Navigation principale"},
    "inbox": {"en": "Inbox", "fr": "Boîte de réception"},
    "leads": {"en": "Leads", "fr": "Prospects"},
    "analytics": {"en": "Analytics", "fr": "Statistiques"},
    "people": {"en": "People", "fr": "Équipe"},
    "sign_in": {"en": "Sign in", "fr": "Se connecter"},
    "sign_out": {"en": "Sign out", "fr": "Se déconnecter"},
    "workspace": {"en": "Workspace", "fr": "Espace de travail"},
    "email": {"en": "Email", "fr": "E-mail"},
    "phone": {"en": "Phone", "fr": "Téléphone"},
    "password": {"en": "Password", "fr": "Mot de passe"},
    "name": {"en": "Name", "fr": "Nom"},
    "bad_credentials": {
        "en": "Wrong workspace, email or password.",
        "fr": "Espace de travail, e-mail ou mot de passe incorrect.",
    },
    "language": {"en": "Language", "fr": "Langue"},
    "apply": {"en": "Apply", "fr": "Appliquer"},
    "change_language": {"en": "Change language", "fr": "Changer de langue"},
    "status": {"en": "Status", "fr": "Statut"},
    "channel": {"en": "Channel", "fr": "Canal"},
    "playbook": {"en": "Playbook", "fr": "Scénario"},
    "min_score": {"en": "Minimum score", "fr": "Score minimum"},
    "any": {"en": "Any", "fr": "Tous"},
    "filters": {"en": "Filters", "fr": "Filtres"},
    "lead": {"en": "Lead", "fr": "Prospect"},
    "score": {"en": "Score", "fr": "Score"},
    "stage": {"en": "Stage", "fr": "Étape"},
    "step": {"en": "Step", "fr": "Étape du scénario"},
    "source": {"en": "Source", "fr": "Source"},
    "waiting": {"en": "Waiting", "fr": "En attente depuis"},
    "updated": {"en": "Updated", "fr": "Mis à jour"},
    "messages": {"en": "Messages", "fr": "Messages"},
    "no_conversations": {"en": "No conversation matches.", "fr": "Aucune conversation ne correspond."},
    "handoffs_waiting": {"en": "Handoffs waiting", "fr": "Transferts en attente"},
    "call_back_requested": {"en": "call-back requested", "fr": "rappel demandé"},
    "st_active": {"en": "active", "fr": "en cours"},
    "st_scheduled": {"en": "scheduled", "fr": "programmée"},
    "st_handoff": {"en": "handoff", "fr": "transfert"},
    "st_closed": {"en": "closed", "fr": "terminée"},
    "conversation": {"en": "Conversation", "fr": "Conversation"},
    "transcript": {"en": "Transcript", "fr": "Échanges"},
    "slots": {"en": "Answers", "fr": "Réponses"},
    "score_reasons": {"en": "Score and reasons", "fr": "Score et raisons"},
    "decisions": {"en": "Outbound decisions", "fr": "Décisions d'envoi"},
    "reply": {"en": "Reply as yourself", "fr": "Répondre en personne"},
    "send": {"en": "Send", "fr": "Envoyer"},
    "hand_back": {"en": "Hand back to the bot", "fr": "Rendre la main au bot"},
    "reply_unavailable": {
        "en": "Replying and handing back arrive with the handoff feature.",
        "fr": "Répondre et rendre la main arrivent avec la fonction de transfert.",
    },
    "from_contact": {"en": "Lead", "fr": "Prospect"},
    "from_bot": {"en": "Bot", "fr": "Bot"},
    "from_agent": {"en": "Agent", "fr": "Conseiller"},
    "nothing": {"en": "Nothing yet.", "fr": "Rien pour l'instant."},
    "search": {"en": "Search (name, email, phone)", "fr": "Rechercher (nom, e-mail, téléphone)"},
    "export_csv": {"en": "Export CSV", "fr": "Exporter en CSV"},
    "leads_found": {"en": "leads", "fr": "prospects"},
    "no_leads": {"en": "No lead matches.", "fr": "Aucun prospect ne correspond."},
    "channels": {"en": "Channels", "fr": "Canaux"},
    "created": {"en": "Created", "fr": "Créé le"},
    "conversations_started": {"en": "Conversations started", "fr": "Conversations démarrées"},
    "qualification_rate": {"en": "Qualification rate", "fr": "Taux de qualification"},
    "average_score": {"en": "Average score", "fr": "Score moyen"},
    "handoffs": {"en": "Handoffs", "fr": "Transferts"},
    "model_cost": {"en": "Model cost", "fr": "Coût du modèle"},
    "per_conversation": {"en": "per conversation", "fr": "par conversation"},
    "per_qualified": {"en": "per qualified lead", "fr": "par prospect qualifié"},
    "funnel": {"en": "Funnel", "fr": "Entonnoir"},
    "reached": {"en": "Reached", "fr": "Atteinte"},
    "drop_off": {"en": "Drop-off", "fr": "Abandons"},
    "no_playbooks": {"en": "No playbook yet.", "fr": "Aucun scénario pour l'instant."},
    "role": {"en": "Role", "fr": "Rôle"},
    "role_owner": {"en": "owner", "fr": "propriétaire"},
    "role_marketer": {"en": "marketer", "fr": "marketeur"},
    "role_agent": {"en": "agent", "fr": "conseiller"},
    "invite": {"en": "Invite a colleague", "fr": "Inviter un collègue"},
    "invite_sent": {"en": "Invitation sent to", "fr": "Invitation envoyée à"},
    "invite_link": {
        "en": "No email channel could send it: pass on this single-use link (valid 7 days)",
        "fr": "Aucun canal e-mail n'a pu l'envoyer : transmettez ce lien à usage unique (valable 7 jours)",
    },
    "accept_invite": {"en": "Join the team", "fr": "Rejoindre l'équipe"},
    "choose_password": {
        "en": "Choose a password (at least 10 characters)",
        "fr": "Choisissez un mot de passe (10 caractères au moins)",
    },
    "invite_invalid": {
        "en": "This invitation link is not valid any more.",
        "fr": "Ce lien d'invitation n'est plus valable.",
    },
    "error": {"en": "Something went wrong", "fr": "Une erreur est survenue"},
    # the separator between a label and its value: French typography puts a no-break space before ":"
    "colon": {"en": ": ", "fr": "\u00a0: "},
    "live": {"en": "Updates live", "fr": "Mise à jour en direct"},
}
STRINGS.update(INBOX_STRINGS)


def language_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """``en`` or ``fr``: the ``lw_lang`` cookie, else ``Accept-Language`` (by q-value), else ``en``."""
    chosen = connection.cookies.get(LANG_COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    header = connection.headers.get("accept-language", "")[:500]
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, index, tag.strip().split("-")[0].lower()))
    for neg_q, _, lang in sorted(ranked):
        if lang in LANGUAGES and neg_q < 0:
            return lang
    return "en"


def strings(language: str) -> dict[str, str]:
    """Every dashboard string in ``language`` (English where a French text is missing)."""
    return {key: texts.get(language) or texts["en"] for key, texts in STRINGS.items()}


def refusal(language: str, code: str | None, params: dict[str, Any], english: str) -> str:
    """A refusal's words in ``language``: ``err_<code>`` filled with ``params`` (see
    :mod:`app.dashboard.i18n_errors`; lw.js's ``refusal`` does the same in the browser), else
    ``english`` (no code, no words for it, or a parameter missing)."""
    texts = STRINGS.get(f"err_{code}") if code else None
    if texts is None:
        return english
    try:
        return (texts.get(language) or texts["en"]).format_map(params)
    except (KeyError, IndexError, ValueError):
        return english


from app.dashboard.i18n_playbooks import PLAYBOOK_STRINGS  # noqa: E402 - the playbook pages' words

STRINGS.update(PLAYBOOK_STRINGS)
from app.dashboard.i18n_admin import ADMIN_STRINGS  # noqa: E402 - dash-admin's strings

STRINGS.update(ADMIN_STRINGS)
from app.dashboard.i18n_values import VALUE_STRINGS  # noqa: E402 - the words for API codes

STRINGS.update(VALUE_STRINGS)
from app.dashboard.i18n_events import EVENT_STRINGS  # noqa: E402 - score reasons, decisions, timeline

STRINGS.update(EVENT_STRINGS)
from app.dashboard.i18n_errors import ERROR_STRINGS  # noqa: E402 - the API's refusal codes

STRINGS.update(ERROR_STRINGS)
