"""The words for the values the API returns as codes (a lead's stage, a message's delivery state, a
CSV import's status, an integration's category and sign-in mode, a channel), in English and French.

Merged into :data:`app.dashboard.i18n.STRINGS`; the pages look a code up as ``T["stage_" + code]``
(``ms_``, ``imp_``, ``cat_``, ``auth_``; ``prov_`` a provider's name; ``chn_`` a channel's name,
one per :data:`channels.registry.CHANNELS`; ``cst_`` a connection's status, ``tst_`` why its test
failed) and show the code itself when it has no entry.
"""

from __future__ import annotations

from app.core.record_words import STAGE_WORDS

__all__ = ["VALUE_STRINGS"]

VALUE_STRINGS: dict[str, dict[str, str]] = {
    # crm_sync.models.ConnectionStatus
    "cst_active": {"en": "active", "fr": "active"},
    "cst_needs_reauth": {"en": "to authorise again", "fr": "à autoriser de nouveau"},
    "cst_disabled": {"en": "disabled", "fr": "désactivée"},
    # a connection test's failure (POST /api/v1/integrations/{id}/test: ``error``)
    "tst_auth_failed": {"en": "the credentials were refused", "fr": "identifiants refusés"},
    "tst_provider_error": {
        "en": "the service answered with an error",
        "fr": "le service a répondu par une erreur",
    },
    # channels.registry.CHANNELS
    "chn_whatsapp": {"en": "WhatsApp", "fr": "WhatsApp"},
    "chn_sms": {"en": "SMS", "fr": "SMS"},
    "chn_email": {"en": "Email", "fr": "E-mail"},
    "chn_webchat": {"en": "Web chat", "fr": "Chat web"},
    # app.conversations.records.LeadStage (app.core.record_words)
    **{f"stage_{code}": words for code, words in STAGE_WORDS.items()},
    # app.conversations.records.DeliveryState
    "ms_received": {"en": "received", "fr": "reçu"},
    "ms_queued": {"en": "queued", "fr": "en file d'attente"},
    "ms_sent": {"en": "sent", "fr": "envoyé"},
    "ms_delivered": {"en": "delivered", "fr": "remis"},
    "ms_read": {"en": "read", "fr": "lu"},
    "ms_failed": {"en": "failed", "fr": "échec"},
    "ms_undeliverable": {"en": "undeliverable", "fr": "impossible à remettre"},
    "ms_blocked": {"en": "blocked", "fr": "bloqué"},
    "ms_stale": {"en": "stale", "fr": "périmé"},
    # app.dashboard.imports.Status
    "imp_queued": {"en": "queued", "fr": "en attente"},
    "imp_running": {"en": "running", "fr": "en cours"},
    "imp_done": {"en": "done", "fr": "terminé"},
    "imp_failed": {"en": "failed", "fr": "échoué"},
    # crm_sync/catalog.yaml: categories and auth_modes
    "cat_crm": {"en": "CRM", "fr": "CRM"},
    "cat_calendar": {"en": "calendar", "fr": "agenda"},
    "cat_channel": {"en": "channel", "fr": "canal"},
    "cat_webhook": {"en": "webhook", "fr": "webhook"},
    "auth_oauth2": {"en": "OAuth", "fr": "OAuth"},
    "auth_api_key": {"en": "API key", "fr": "clé d'API"},
    "auth_basic": {"en": "user and password", "fr": "identifiant et mot de passe"},
    # crm_sync/catalog.yaml: the credential fields of "connect with a key" (cf_<name>)
    "optional": {"en": "(optional)", "fr": "(facultatif)"},
    "api_base_url": {"en": "API base URL", "fr": "URL de base de l'API"},
    "cf_access_token": {"en": "Access token", "fr": "Jeton d'accès"},
    "cf_account_sid": {"en": "Account SID", "fr": "Identifiant du compte (SID)"},
    "cf_api_key": {"en": "API key", "fr": "Clé d'API"},
    "cf_api_token": {"en": "API token", "fr": "Jeton d'API"},
    "cf_app_secret": {"en": "App secret", "fr": "Secret de l'application"},
    "cf_auth_token": {"en": "Auth token", "fr": "Jeton d'authentification"},
    "cf_company_domain": {"en": "Company domain", "fr": "Domaine de l'entreprise"},
    "cf_friendly_name": {"en": "Display name", "fr": "Nom affiché"},
    "cf_from_address": {"en": "Sender address", "fr": "Adresse d'expédition"},
    "cf_imap_host": {"en": "IMAP server", "fr": "Serveur IMAP"},
    "cf_imap_port": {"en": "IMAP port", "fr": "Port IMAP"},
    "cf_imap_security": {"en": "IMAP security", "fr": "Sécurité IMAP"},
    "cf_location": {"en": "Location", "fr": "Emplacement (location)"},
    "cf_numbers": {"en": "Phone numbers", "fr": "Numéros de téléphone"},
    "cf_password": {"en": "Password", "fr": "Mot de passe"},
    "cf_phone_number_id": {"en": "Phone number ID", "fr": "Identifiant du numéro"},
    "cf_signing_secret": {"en": "Signing secret", "fr": "Secret de signature"},
    "cf_smtp_host": {"en": "SMTP server", "fr": "Serveur SMTP"},
    "cf_smtp_port": {"en": "SMTP port", "fr": "Port SMTP"},
    "cf_smtp_security": {"en": "SMTP security", "fr": "Sécurité SMTP"},
    "cf_url": {"en": "URL", "fr": "URL"},
    "cf_username": {"en": "Username", "fr": "Identifiant"},
    "cf_verify_token": {"en": "Verify token", "fr": "Jeton de vérification"},
    # crm_sync/catalog.yaml: the display names that describe rather than name a brand
    "prov_smtp_imap": {"en": "Mailbox (SMTP / IMAP)", "fr": "Boîte mail (SMTP / IMAP)"},
    "prov_webhook": {"en": "Outgoing webhook", "fr": "Webhook sortant"},
}
