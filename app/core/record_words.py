"""The words, in English and French, for codes that records store and people read in several
places (the dashboard's pages and the team's handoff e-mail): a lead's stage, who asked for a
handoff, and the fixed handoff reasons the engine and the handoff service write (in English).

One table per code family; :func:`record_word` picks the language. The dashboard merges them into
its strings under ``stage_``, ``by_`` and ``hr_`` (:mod:`app.dashboard.i18n_values`,
:mod:`app.dashboard.i18n_events`); a code without an entry is shown as it is (a reason a playbook
author wrote, for instance).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["HANDOFF_REASON_WORDS", "REQUESTER_WORDS", "STAGE_WORDS", "record_word"]

Words = dict[str, dict[str, str]]

#: app.conversations.records.LeadStage
STAGE_WORDS: Words = {
    "new": {"en": "new", "fr": "nouveau"},
    "engaged": {"en": "engaged", "fr": "engagé"},
    "qualified": {"en": "qualified", "fr": "qualifié"},
    "disqualified": {"en": "disqualified", "fr": "non qualifié"},
    "handoff": {"en": "handoff", "fr": "transfert"},
    "booked": {"en": "booked", "fr": "rendez-vous pris"},
    "nurture": {"en": "nurture", "fr": "à relancer"},
    "closed": {"en": "closed", "fr": "clos"},
}

#: app.handoff.records.Requester, and the worker ("system")
REQUESTER_WORDS: Words = {
    "playbook": {"en": "by the playbook", "fr": "par le scénario"},
    "bot": {"en": "by the bot", "fr": "par le bot"},
    "lead": {"en": "by the lead", "fr": "par le prospect"},
    "agent": {"en": "by an agent", "fr": "par un conseiller"},
    "system": {"en": "automatically", "fr": "automatiquement"},
}

#: The fixed reasons written by playbooks/engine.py (playbooks.runtime.HUMAN_REASON,
#: CALL_BACK_REASON, the loop guard) and app/handoff/service.py, in English.
HANDOFF_REASON_WORDS: Words = {
    "lead asked for a human": {
        "en": "the lead asked for a person",
        "fr": "le prospect a demandé une personne",
    },
    "lead asked to be called back": {
        "en": "the lead asked to be called back",
        "fr": "le prospect a demandé à être rappelé",
    },
    "playbook loop": {"en": "the playbook went round in circles", "fr": "le scénario tournait en rond"},
    "a person took over": {"en": "a person took over", "fr": "une personne a pris la main"},
    "handoff": {"en": "handoff", "fr": "transfert"},
}


def record_word(table: Mapping[str, Mapping[str, str]], code: str, language: str) -> str:
    """The word for ``code`` in ``table`` in ``language`` (French for any ``fr…`` code, else
    English); ``code`` itself when the table has no entry for it."""
    words = table.get(code)
    if words is None:
        return code
    return words["fr" if language.lower().startswith("fr") else "en"]
