"""The labels of the team's handoff e-mail body, in the tenant's language (French or English): one
table for the whole body, the call-back lines included (the lead's words and the record's values
are shown as they are, never translated)."""

from __future__ import annotations

__all__ = ["MAIL_LABELS", "mail_label"]

MAIL_LABELS: dict[str, dict[str, str]] = {
    "open": {"en": "Open in LeadWarm: {url}", "fr": "Ouvrir dans LeadWarm : {url}"},
    "lead": {"en": "Lead: {who}", "fr": "Prospect : {who}"},
    "channel": {"en": "Channel: {channel}", "fr": "Canal : {channel}"},
    "reason": {"en": "Reason: {reason} ({by})", "fr": "Motif : {reason} ({by})"},
    "call_back_on": {"en": "Call back on: {number}", "fr": "Rappeler au : {number}"},
    "no_number": {"en": "not given yet (asked)", "fr": "pas encore donné (demandé)"},
    "score": {"en": "Score: {score}/100, stage: {stage}", "fr": "Score : {score}/100, étape : {stage}"},
    "answers": {"en": "Answers:", "fr": "Réponses :"},
    "latest": {"en": "Latest messages:", "fr": "Derniers messages :"},
    "api": {"en": "Through the API:", "fr": "Par l'API :"},
    "get": {"en": "Conversation: GET {url}", "fr": "Conversation : GET {url}"},
    "reply": {"en": "Answer the lead: POST {url} {body}", "fr": "Répondre au prospect : POST {url} {body}"},
    "handback": {
        "en": "Hand back to the bot: POST {url} {body}",
        "fr": "Rendre la main au bot : POST {url} {body}",
    },
    # the call-back lines (app.handoff.call_back.call_back_lines): ``when`` and ``words`` are the lead's
    "when": {"en": "Preferred moment: “{when}”", "fr": "Moment souhaité : « {when} »"},
    "notes": {
        "en": "The lead's words while we waited for their number:",
        "fr": "Les mots du lead en attendant son numéro :",
    },
    "note": {"en": "  “{words}”", "fr": "  « {words} »"},
}


def mail_label(key: str, language: str, **values: object) -> str:
    """The label ``key`` of :data:`MAIL_LABELS` in ``language`` (French for any ``fr…`` code, else
    English) with its placeholders filled from ``values``. Raises ``KeyError`` for an unknown key or
    a missing placeholder."""
    return MAIL_LABELS[key]["fr" if language.lower().startswith("fr") else "en"].format(**values)
