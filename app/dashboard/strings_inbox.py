"""The conversation view's actions and the lead page, in English and French (merged into
:data:`app.dashboard.i18n.STRINGS`)."""

from __future__ import annotations

__all__ = ["INBOX_STRINGS"]

INBOX_STRINGS: dict[str, dict[str, str]] = {
    "take_over": {"en": "Take over", "fr": "Prendre la main"},
    "taken_over_by": {"en": "A person has this conversation", "fr": "Une personne gère cette conversation"},
    "bot_running": {"en": "The bot is answering", "fr": "Le bot répond"},
    "hand_back_at": {"en": "Resume the bot at step", "fr": "Reprendre le bot à l'étape"},
    "notes": {"en": "Internal notes", "fr": "Notes internes"},
    "notes_hint": {
        "en": "Seen by the team only, never sent to the lead.",
        "fr": "Visibles par l'équipe seulement, jamais envoyées au prospect.",
    },
    "add_note": {"en": "Add a note", "fr": "Ajouter une note"},
    "note_text": {"en": "Note", "fr": "Note"},
    "actions": {"en": "Actions", "fr": "Actions"},
    "sent": {"en": "Sent", "fr": "Envoyé"},
    "saved": {"en": "Saved", "fr": "Enregistrée"},
    "handed_back": {"en": "Handed back to the bot", "fr": "Rendu au bot"},
    "taken_over": {"en": "You have the conversation", "fr": "Vous avez la main"},
    "lead_page": {"en": "Lead page", "fr": "Fiche prospect"},
    "timeline": {"en": "Timeline", "fr": "Chronologie"},
    "score_history": {"en": "Score history", "fr": "Historique du score"},
    "evidence": {"en": "Evidence", "fr": "Preuve"},
    "bookings": {"en": "Bookings", "fr": "Rendez-vous"},
    "crm_sync": {"en": "CRM sync", "fr": "Synchronisation CRM"},
    "conversations": {"en": "Conversations", "fr": "Conversations"},
    "k_message": {"en": "message", "fr": "message"},
    "k_handoff": {"en": "handoff", "fr": "transfert"},
    "k_score": {"en": "score", "fr": "score"},
    "k_booking": {"en": "booking", "fr": "rendez-vous"},
    "k_sync": {"en": "CRM sync", "fr": "synchro CRM"},
    "k_note": {"en": "note", "fr": "note"},
    "when": {"en": "When", "fr": "Quand"},
    "what": {"en": "What", "fr": "Quoi"},
    "detail": {"en": "Detail", "fr": "Détail"},
    "points": {"en": "Points", "fr": "Points"},
    "reason": {"en": "Reason", "fr": "Raison"},
    "start": {"en": "Start", "fr": "Début"},
    "title": {"en": "Title", "fr": "Titre"},
    "connection": {"en": "Connection", "fr": "Connexion"},
    "last_sync": {"en": "Last sync", "fr": "Dernière synchro"},
    "last_error": {"en": "Last error", "fr": "Dernière erreur"},
    "lead_of": {"en": "Lead", "fr": "Prospect"},
}
