"""A conversation's human handoff, as stored (collection ``handoffs``, one document per
conversation: its current or latest handoff).

Life of a handoff::

    open --a person answers--> answered --handback--> handed_back
      |                            '--lead says STOP / conversation closed--> closed
      '--nobody answers in time--> timed_out (call-back offered, tenant reminded) --answer--> answered

``seq`` counts the handoffs of the conversation: the jobs of an older one see that they are
stale. Times are floats, seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.core.records import Record

__all__ = ["NOTES_KEPT", "Handoff", "HandoffStatus", "Requester"]

NOTES_KEPT = 10
"""How many of the lead's words :attr:`Handoff.call_back_notes` keeps (the newest)."""

HandoffStatus = Literal["open", "answered", "timed_out", "handed_back", "closed"]
Requester = Literal["lead", "playbook", "bot", "agent"]


class Handoff(Record):
    """One handoff. ``requested_by``: the lead asked (their words or the model's reading of them),
    a playbook ``handoff`` step ran, the bot gave up (a playbook loop), or a person took over.
    ``resume_step`` is where the bot resumes on a handback that names no step (``None``: the
    playbook's end). ``notified`` maps ``"{seq}:{event}:{target}"`` to when that notification went
    out, so that a retried job never sends it twice."""

    id: str
    conversation_id: str
    lead_id: str
    channel: str
    seq: int = 1
    status: HandoffStatus = "open"
    reason: str = ""
    call_back: bool = False
    """The lead asked to be called back on the phone (``reason``: the engine's ``CALL_BACK_REASON``)."""
    call_back_phone: str | None = None
    """The number (E.164) to call back, ``None`` while the lead has not given one."""
    call_back_when: str | None = None
    """When the lead would like to be called, in their words ("plutôt demain matin"), from a
    message of theirs while the call-back waited for their number (the latest such words)."""
    call_back_notes: list[str] = Field(default_factory=list)
    """The lead's replies that gave no number while the call-back waited for it, in their words
    (at most :data:`NOTES_KEPT`, each at most 500 characters): for the person who calls."""
    requested_by: Requester = "lead"
    step_id: str | None = None
    resume_step: str | None = None
    language: str = "en"
    requested_at: float = 0.0
    due_at: float | None = None
    """When the call-back offer goes out if nobody answered."""
    answered_at: float | None = None
    answered_by: str | None = None
    timed_out_at: float | None = None
    handed_back_at: float | None = None
    handed_back_by: str | None = None
    note: str | None = None
    notified: dict[str, float] = Field(default_factory=dict)
