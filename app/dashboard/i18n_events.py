"""The words for what the conversation and lead pages list as codes: the built-in scorer's reasons,
the outbound policy's decisions, and the timeline's handoff, booking and CRM sync entries, in English
and French.

Merged into :data:`app.dashboard.i18n.STRINGS`. Prefixes (``LW.word(prefix, code)`` in lw.js shows
the code itself when a code has no entry):

- ``sr_<code>`` / ``se_<code>``: a score reason / its evidence, with ``{param}`` placeholders
  (:mod:`app.conversations.score_reasons`); ``sp_<param>_<value>``: a parameter's own words;
- ``ob_`` an outbox item's status, ``act_`` the policy's action, ``why_`` its reason
  (:func:`app.policy.rules.decide`, :mod:`app.policy.gate`, :mod:`app.messaging.dispatcher`);
- ``hev_`` a handoff event, ``by_`` who asked for it, ``hr_`` the fixed reasons the engine and the
  handoff service write (an author's reason stays as written);
- ``sty_`` a playbook step's type, ``sst_`` a conversation's state in the simulator;
- ``bk_`` a booking's status, ``bkr_`` its fixed reasons, ``cal_`` the built-in calendar;
- ``crm_`` a CRM link's status, ``sys_`` a sync attempt's status, ``syt_`` its type, ``sye_`` its
  fixed errors.
"""

from __future__ import annotations

from app.core.record_words import HANDOFF_REASON_WORDS, REQUESTER_WORDS

__all__ = ["EVENT_STRINGS"]

_NB = "\u00a0"  # French puts a no-break space before ":" and inside « »

EVENT_STRINGS: dict[str, dict[str, str]] = {
    # app.conversations.score_reasons
    "sr_signal": {
        "en": "{signal}: {level} (quoted: '{quote}')",
        "fr": f"{{signal}}{_NB}: {{level}} (cité{_NB}: «{_NB}{{quote}}{_NB}»)",
    },
    "sr_engagement.fast_reply": {
        "en": "Engagement: replied within {minutes} minutes",
        "fr": f"Engagement{_NB}: réponse en moins de {{minutes}}{_NB}minutes",
    },
    "se_engagement.fast_reply": {"en": "replied after {seconds} s", "fr": f"réponse après {{seconds}}{_NB}s"},
    "sr_engagement.messages": {
        "en": "Engagement: {min} or more messages",
        "fr": f"Engagement{_NB}: {{min}}{_NB}messages ou plus",
    },
    "se_engagement.messages": {"en": "{count} messages", "fr": f"{{count}}{_NB}messages"},
    "sr_step.corrected": {"en": "{text} (corrected)", "fr": "{text} (réponse corrigée)"},
    "sr_step.no_longer": {
        "en": "{text} (no longer: corrected)",
        "fr": f"{{text}} (ne s'applique plus{_NB}: réponse corrigée)",
    },
    "quote_open": {"en": "\u201c", "fr": f"«{_NB}"},
    "quote_close": {"en": "\u201d", "fr": f"{_NB}»"},
    "sr_was": {"en": " (was {was})", "fr": f" (avant{_NB}: {{was}})"},
    "sp_signal_budget": {"en": "Budget", "fr": "Budget"},
    "sp_signal_authority": {"en": "Authority", "fr": "Pouvoir de décision"},
    "sp_signal_need": {"en": "Need", "fr": "Besoin"},
    "sp_signal_timeline": {"en": "Timeline", "fr": "Échéance"},
    "sp_level_high": {"en": "high", "fr": "élevé"},
    "sp_level_medium": {"en": "medium", "fr": "moyen"},
    "sp_level_low": {"en": "low", "fr": "faible"},
    "sp_level_none": {"en": "none", "fr": "aucun"},
    # app.messaging.records.OutboxItem.status
    "ob_pending": {"en": "waiting to be sent", "fr": "en attente d'envoi"},
    "ob_sent": {"en": "sent", "fr": "envoyé"},
    "ob_failed": {"en": "failed", "fr": "échec"},
    "ob_dead": {"en": "given up after retries", "fr": "abandonné après plusieurs essais"},
    "ob_blocked": {"en": "blocked", "fr": "bloqué"},
    "ob_stale": {"en": "dropped (out of date)", "fr": "abandonné (périmé)"},
    # app.policy.rules.Action
    "act_send": {"en": "send", "fr": "envoyer"},
    "act_send_template": {"en": "send an approved template", "fr": "envoyer un modèle approuvé"},
    "act_defer": {"en": "send later", "fr": "envoyer plus tard"},
    "act_block": {"en": "do not send", "fr": "ne pas envoyer"},
    "act_drop_stale": {"en": "drop", "fr": "abandonner"},
    # app.policy.rules / gate / dispatcher reasons
    "why_allowed": {"en": "allowed", "fr": "autorisé"},
    "why_opted_out": {"en": "the lead opted out", "fr": "le prospect s'est désinscrit"},
    "why_undeliverable_address": {"en": "the address cannot be reached", "fr": "adresse injoignable"},
    "why_newer_inbound_message": {
        "en": "the lead wrote again since",
        "fr": "le prospect a réécrit entre-temps",
    },
    "why_newer_inbound_pending": {
        "en": "a newer message from the lead is being read",
        "fr": "un message plus récent du prospect est en cours de lecture",
    },
    "why_quiet_hours": {"en": "quiet hours", "fr": "heures calmes"},
    "why_daily_cap": {
        "en": "daily limit for this lead reached",
        "fr": "limite quotidienne atteinte pour ce prospect",
    },
    "why_outside_customer_service_window": {
        "en": "outside the 24-hour reply window",
        "fr": "hors de la fenêtre de réponse de 24 heures",
    },
    "why_outside_customer_service_window_no_template": {
        "en": "outside the 24-hour reply window, no approved template",
        "fr": "hors de la fenêtre de réponse de 24 heures, sans modèle approuvé",
    },
    "why_expired": {"en": "too late (the moment has passed)", "fr": "trop tard (le moment est passé)"},
    "why_replaced_by_template": {
        "en": "replaced by an approved template",
        "fr": "remplacé par un modèle approuvé",
    },
    "until": {"en": "until", "fr": "jusqu'au"},
    "rerouted_from": {"en": "instead of", "fr": "au lieu de"},
    # conversation events of app.conversations.planning and app.handoff.service
    "hev_handoff": {"en": "the bot hands over", "fr": "le bot passe la main"},
    "hev_handoff.requested": {"en": "handoff requested", "fr": "transfert demandé"},
    "hev_handoff.notified": {"en": "team notified", "fr": "équipe prévenue"},
    "hev_handoff.notify_failed": {"en": "team notification failed", "fr": "échec de l'alerte à l'équipe"},
    "hev_handoff.notify_retry": {"en": "team notification retried", "fr": "nouvel essai d'alerte à l'équipe"},
    "hev_handoff.answered": {"en": "answered by a person", "fr": "pris en charge par une personne"},
    "hev_handoff.taken_over": {"en": "taken over", "fr": "main prise"},
    "hev_handoff.agent_message": {"en": "a person replied", "fr": "réponse d'une personne"},
    "hev_handoff.handed_back": {"en": "handed back to the bot", "fr": "rendu au bot"},
    "hev_handoff.timed_out": {"en": "nobody answered in time", "fr": "personne n'a répondu à temps"},
    "hev_handoff.closed": {"en": "handoff closed", "fr": "transfert clos"},
    # app.handoff.records.Requester and the worker; the fixed handoff reasons (app.core.record_words)
    **{f"by_{code}": words for code, words in REQUESTER_WORDS.items()},
    **{f"hr_{code}": words for code, words in HANDOFF_REASON_WORDS.items()},
    # playbooks.runtime.ConversationState.status (the simulator's state)
    "sst_active": {"en": "active", "fr": "en cours"},
    "sst_waiting": {"en": "waiting", "fr": "en attente"},
    "sst_handoff": {"en": "handoff", "fr": "transfert"},
    "sst_ended": {"en": "ended", "fr": "terminée"},
    # playbooks/schema.py: a step's type (the hand-back step picker)
    "sty_message": {"en": "message", "fr": "message"},
    "sty_ask": {"en": "question", "fr": "question"},
    "sty_condition": {"en": "condition", "fr": "condition"},
    "sty_score": {"en": "score", "fr": "score"},
    "sty_wait": {"en": "wait", "fr": "attente"},
    "sty_book": {"en": "booking", "fr": "rendez-vous"},
    "sty_handoff": {"en": "handoff", "fr": "transfert"},
    "sty_sync": {"en": "CRM sync", "fr": "synchro CRM"},
    "sty_end": {"en": "end", "fr": "fin"},
    # app/booking: statuses and fixed reasons; the built-in calendar (app.booking.calendar)
    "cal_builtin": {"en": "built-in calendar", "fr": "agenda intégré"},
    "bk_confirmed": {"en": "confirmed", "fr": "confirmé"},
    "bk_cancelled": {"en": "cancelled", "fr": "annulé"},
    "bk_rescheduled": {"en": "rescheduled", "fr": "déplacé"},
    "bk_moved": {"en": "moved", "fr": "déplacé"},
    "bk_taken": {"en": "slot already taken", "fr": "créneau déjà pris"},
    "bk_failed": {"en": "failed", "fr": "échec"},
    "bkr_slot taken": {"en": "slot taken", "fr": "créneau pris"},
    "bkr_cancelled by the lead": {"en": "cancelled by the lead", "fr": "annulé par le prospect"},
    "bkr_cancelled outside": {"en": "cancelled in the calendar", "fr": "annulé dans l'agenda"},
    # app.crm.records: a CRM link's status, a sync attempt's status, type and fixed errors
    "crm_pending": {"en": "waiting to sync", "fr": "en attente de synchro"},
    "crm_synced": {"en": "synced", "fr": "synchronisé"},
    "crm_dead": {"en": "gave up", "fr": "abandonné"},
    "sys_ok": {"en": "ok", "fr": "réussi"},
    "sys_skipped": {"en": "skipped", "fr": "ignoré"},
    "sys_retry": {"en": "will retry", "fr": "nouvel essai prévu"},
    "sys_deferred": {"en": "postponed", "fr": "reporté"},
    "sys_dead": {"en": "gave up", "fr": "abandonné"},
    "sys_error": {"en": "error", "fr": "erreur"},
    "syt_upsert": {"en": "write", "fr": "écriture"},
    "sye_lead gone or sync disabled": {
        "en": "lead gone or sync disabled",
        "fr": "prospect supprimé ou synchro désactivée",
    },
    "sye_lead gone": {"en": "lead gone", "fr": "prospect supprimé"},
    "sye_sync disabled": {"en": "sync disabled", "fr": "synchro désactivée"},
    "sye_circuit open": {"en": "paused after repeated errors", "fr": "en pause après des erreurs répétées"},
    "sye_no email or phone yet": {"en": "no email or phone yet", "fr": "pas encore d'e-mail ni de téléphone"},
}
