"""The admin pages' words (CSV import, integrations, settings, charts), in English and French.

Merged into :data:`app.dashboard.i18n.STRINGS` (one line at its end), so the pages and their script
read them like every other dashboard string.
"""

from __future__ import annotations

__all__ = ["ADMIN_STRINGS"]

ADMIN_STRINGS: dict[str, dict[str, str]] = {
    # navigation
    "import_leads": {"en": "Import leads", "fr": "Importer des prospects"},
    "nav_import": {"en": "CSV import", "fr": "Import CSV"},
    "integrations": {"en": "Integrations", "fr": "Intégrations"},
    "settings": {"en": "Settings", "fr": "Paramètres"},
    # CSV import
    "import_help": {
        "en": "A CSV file (UTF-8, comma or semicolon) with a header row: name, email, phone (E.164 or your"
        " region's format), consent (yes/no, required), optionally language and source.",
        "fr": "Un fichier CSV (UTF-8, virgule ou point-virgule) avec une ligne d'en-tête : nom, e-mail,"
        " téléphone (E.164 ou format de votre pays), consentement (oui/non, obligatoire), et en option"
        " langue et source.",
    },
    "csv_file": {"en": "CSV file", "fr": "Fichier CSV"},
    "choose_file": {"en": "Choose a file", "fr": "Choisir un fichier"},
    "no_file": {"en": "No file chosen", "fr": "Aucun fichier choisi"},
    "start_on_playbook": {"en": "Start each new lead on", "fr": "Démarrer chaque nouveau prospect sur"},
    "no_playbook_start": {"en": "(do not start a playbook)", "fr": "(ne pas démarrer de scénario)"},
    "start_channel": {"en": "Channel to start on", "fr": "Canal de démarrage"},
    "channel_auto": {"en": "(the lead's first address)", "fr": "(la première adresse du prospect)"},
    "upload": {"en": "Import", "fr": "Importer"},
    "import_progress": {"en": "Import progress", "fr": "Progression de l'import"},
    "rows_handled": {"en": "rows handled", "fr": "lignes traitées"},
    "imported": {"en": "Imported", "fr": "Importés"},
    "refused": {"en": "Refused", "fr": "Refusés"},
    "started": {"en": "Started on the playbook", "fr": "Démarrés sur le scénario"},
    "not_started": {"en": "Not started", "fr": "Non démarrés"},
    "import_done": {"en": "Import finished", "fr": "Import terminé"},
    "import_running": {"en": "Importing…", "fr": "Import en cours…"},
    "report": {"en": "Refused rows", "fr": "Lignes refusées"},
    "line": {"en": "Line", "fr": "Ligne"},
    "field": {"en": "Field", "fr": "Champ"},
    "reason": {"en": "Reason", "fr": "Raison"},
    "value": {"en": "Value", "fr": "Valeur"},
    "no_refused": {"en": "Every row was imported.", "fr": "Toutes les lignes ont été importées."},
    "recent_imports": {"en": "Recent imports", "fr": "Imports récents"},
    "file": {"en": "File", "fr": "Fichier"},
    "code_bad_phone": {"en": "invalid phone number", "fr": "numéro de téléphone invalide"},
    "code_bad_email": {"en": "invalid email", "fr": "e-mail invalide"},
    "code_no_address": {"en": "no phone or email", "fr": "ni téléphone ni e-mail"},
    "code_bad_consent": {"en": "consent missing or unclear", "fr": "consentement absent ou illisible"},
    "code_duplicate_in_file": {"en": "duplicate in the file", "fr": "doublon dans le fichier"},
    "code_duplicate_existing": {"en": "lead exists already", "fr": "prospect déjà existant"},
    "code_not_started": {"en": "imported, not started", "fr": "importé, non démarré"},
    # integrations
    "catalog": {"en": "Available integrations", "fr": "Intégrations disponibles"},
    "connected": {"en": "Connected accounts", "fr": "Comptes connectés"},
    "now_connected": {"en": "Connected", "fr": "Connecté"},
    "provider": {"en": "Provider", "fr": "Fournisseur"},
    "kind": {"en": "Kind", "fr": "Type"},
    "auth": {"en": "Authorisation", "fr": "Autorisation"},
    "connect": {"en": "Connect", "fr": "Connecter"},
    "connect_with_key": {"en": "Connect with a key", "fr": "Connecter avec une clé"},
    "set_oauth_app": {"en": "Set the OAuth app", "fr": "Renseigner l'application OAuth"},
    "oauth_app_missing": {
        "en": "Set this provider's OAuth app first (client id and secret).",
        "fr": "Renseignez d'abord l'application OAuth de ce fournisseur (client id et secret).",
    },
    "account": {"en": "Account", "fr": "Compte"},
    "actions": {"en": "Actions", "fr": "Actions"},
    "test": {"en": "Test", "fr": "Tester"},
    "disconnect": {"en": "Disconnect", "fr": "Déconnecter"},
    "confirm_disconnect": {
        "en": "Disconnect this account? Its tokens are revoked and deleted.",
        "fr": "Déconnecter ce compte ? Ses jetons sont révoqués et supprimés.",
    },
    "test_ok": {"en": "Connection works", "fr": "La connexion fonctionne"},
    "test_failed": {"en": "Connection failed", "fr": "La connexion a échoué"},
    "no_connections": {"en": "No account connected yet.", "fr": "Aucun compte connecté pour l'instant."},
    "crm_sync": {"en": "CRM sync", "fr": "Synchronisation CRM"},
    "field_mappings": {"en": "Field mappings", "fr": "Correspondance des champs"},
    "mapping_help": {
        "en": "One row per field: our field → the CRM property, with a transform (text, e164, date...).",
        "fr": "Une ligne par champ : notre champ → la propriété du CRM, avec une transformation"
        " (text, e164, date...).",
    },
    "our_field": {"en": "Our field", "fr": "Notre champ"},
    "crm_property": {"en": "CRM property", "fr": "Propriété CRM"},
    "transform": {"en": "Transform", "fr": "Transformation"},
    "add_row": {"en": "Add a row", "fr": "Ajouter une ligne"},
    "remove": {"en": "Remove", "fr": "Retirer"},
    "save": {"en": "Save", "fr": "Enregistrer"},
    "saved": {"en": "Saved", "fr": "Enregistré"},
    "sync_logs": {"en": "Sync logs", "fr": "Journal de synchronisation"},
    "when": {"en": "When", "fr": "Quand"},
    "duration": {"en": "Duration", "fr": "Durée"},
    "dead_letter": {"en": "Dead letter", "fr": "Lettres mortes"},
    "replay": {"en": "Replay the dead letter", "fr": "Rejouer les lettres mortes"},
    "replayed": {"en": "queued again", "fr": "remis en file"},
    "attempts": {"en": "Attempts", "fr": "Tentatives"},
    "last_error": {"en": "Last error", "fr": "Dernière erreur"},
    # settings
    "general": {"en": "General", "fr": "Général"},
    "workspace_name": {"en": "Workspace name", "fr": "Nom de l'espace"},
    "timezone": {"en": "Time zone", "fr": "Fuseau horaire"},
    "default_language": {"en": "Default language", "fr": "Langue par défaut"},
    "languages_spoken": {"en": "Languages (comma separated)", "fr": "Langues (séparées par des virgules)"},
    "default_region": {"en": "Phone region (ISO code)", "fr": "Pays des numéros (code ISO)"},
    "hours": {"en": "Hours", "fr": "Horaires"},
    "quiet_start": {"en": "Quiet hours start", "fr": "Début des heures calmes"},
    "quiet_end": {"en": "Quiet hours end", "fr": "Fin des heures calmes"},
    "office_start": {"en": "Office hours start", "fr": "Début des heures de bureau"},
    "office_end": {"en": "Office hours end", "fr": "Fin des heures de bureau"},
    "time_placeholder": {"en": "HH:MM", "fr": "HH:MM"},
    "time_help": {
        "en": "Times on the 24-hour clock, HH:MM (e.g. 09:00 or 18:30); 6:30 pm is read as 18:30.",
        "fr": "Heures sur 24 heures, HH:MM (ex. 09:00 ou 18:30) ; 18h30 est lu comme 18:30.",
    },
    "bad_time": {
        "en": "enter a time on the 24-hour clock, HH:MM (e.g. 18:30)",
        "fr": "saisissez une heure sur 24 heures, HH:MM (ex. 18:30)",
    },
    "notifications": {"en": "Notifications", "fr": "Notifications"},
    "handoff_emails": {
        "en": "Handoff notification addresses (comma separated)",
        "fr": "Adresses notifiées des transferts (séparées par des virgules)",
    },
    "handoff_minutes": {
        "en": "Answer a handoff within (minutes)",
        "fr": "Répondre à un transfert sous (minutes)",
    },
    "daily_cap": {
        "en": "Messages per lead per day (cap)",
        "fr": "Messages par prospect et par jour (plafond)",
    },
    "budget": {"en": "Model budget", "fr": "Budget du modèle"},
    "budget_month": {"en": "This month", "fr": "Ce mois-ci"},
    "spent": {"en": "spent", "fr": "dépensé"},
    "of_budget": {"en": "of a budget of", "fr": "sur un budget de"},
    "no_budget": {"en": "no budget set", "fr": "aucun budget défini"},
    "budget_limit": {"en": "Monthly budget (USD)", "fr": "Budget mensuel (USD)"},
    "budget_help": {
        "en": "Past it, the bot answers without the model until next month. "
        "Empty: the service default; 0: never call the model.",
        "fr": "Au-delà, le bot répond sans le modèle jusqu'au mois suivant. "
        "Vide : la valeur du service ; 0 : jamais le modèle.",
    },
    "branding": {"en": "Branding and web chat", "fr": "Marque et chat web"},
    "brand_color": {"en": "Brand colour", "fr": "Couleur de la marque"},
    "brand_text_color": {"en": "Text colour on the brand colour", "fr": "Couleur du texte sur la marque"},
    "logo_url": {"en": "Logo URL", "fr": "URL du logo"},
    "greeting_en": {"en": "Greeting (English)", "fr": "Message d'accueil (anglais)"},
    "greeting_fr": {"en": "Greeting (French)", "fr": "Message d'accueil (français)"},
    "allowed_origins": {
        "en": "Sites allowed to embed the widget (one origin per line, e.g. https://www.example.com)",
        "fr": "Sites autorisés à intégrer le widget (une origine par ligne, ex. https://www.example.com)",
    },
    "embed_snippet": {"en": "Embed snippet", "fr": "Code d'intégration"},
    "embed_help": {
        "en": "Paste this before </body> on each page of your site.",
        "fr": "Collez ceci avant </body> sur chaque page de votre site.",
    },
    "copy_snippet": {"en": "Copy the snippet", "fr": "Copier le code"},
    "copied": {"en": "Copied", "fr": "Copié"},
    "preview": {"en": "Live preview", "fr": "Aperçu en direct"},
    "preview_help": {
        "en": "The widget as your visitors will see it, as you type (nothing is sent).",
        "fr": "Le widget tel que vos visiteurs le verront, pendant la saisie (rien n'est envoyé).",
    },
    "open_chat": {"en": "Open the real chat", "fr": "Ouvrir le vrai chat"},
    "online": {"en": "Online", "fr": "En ligne"},
    "write_message": {"en": "Write a message", "fr": "Écrivez un message"},
    "templates": {"en": "WhatsApp templates", "fr": "Modèles WhatsApp"},
    "templates_help": {
        "en": "Approved templates open a conversation outside WhatsApp's 24-hour window. JSON list of"
        " {name, language, parameters}.",
        "fr": "Les modèles approuvés ouvrent une conversation hors de la fenêtre de 24 heures de WhatsApp."
        " Liste JSON de {name, language, parameters}.",
    },
    "bad_json": {"en": "not valid JSON", "fr": "JSON invalide"},
    # charts
    "funnel_chart": {"en": "Funnel chart", "fr": "Graphique de l'entonnoir"},
    "funnel_chart_alt": {
        "en": "Bar chart: conversations that reached each step, and the drop-off."
        " The same numbers are in the table.",
        "fr": "Graphique en barres : conversations arrivées à chaque étape, et les abandons."
        " Les mêmes chiffres sont dans le tableau.",
    },
}
