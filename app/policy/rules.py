"""The outbound decision, as a pure function of the facts about one message.

Order of the checks (the first that applies decides): opted out -> block; address known
undeliverable -> block; a newer message from the lead arrived after this reply was decided ->
drop as stale; quiet hours in the lead's zone -> defer (a direct answer to a lead who just wrote
may go out, per the tenant's setting); per-lead daily cap -> defer to the next local day;
WhatsApp outside the customer-service window (24 h after the lead's last message, Meta's
"Customer service windows" rule) -> an approved template, else block (the gate may then fall back
to another channel). A message with a ``not_after`` instant (a meeting reminder: pointless once
the meeting starts) that would go out at or after it, now or deferred, is dropped as stale
(reason ``expired``) instead. Times are floats, seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from app.policy.quiet_hours import next_allowed_time
from channels.registry import channel_class

__all__ = ["DIRECT_REPLY_SECONDS", "Decision", "OutboundFacts", "decide"]

#: A reply counts as "direct" while the lead's last message is at most this old.
DIRECT_REPLY_SECONDS = 15 * 60

Trigger = Literal["inbound", "start", "timer", "agent"]
Action = Literal["send", "send_template", "defer", "block", "drop_stale"]


@dataclass(frozen=True, slots=True)
class OutboundFacts:
    """Everything the decision depends on. ``last_inbound_at`` is the lead's last message on
    ``channel``; ``sent_today`` counts messages already sent to the lead this local day."""

    channel: str
    trigger: Trigger
    now: float
    zone: ZoneInfo
    quiet_start: time
    quiet_end: time
    allow_direct_replies: bool
    opted_out: bool = False
    undeliverable: bool = False
    stale: bool = False
    last_inbound_at: float | None = None
    window_seconds: float = 24 * 3600
    """Length of the channel's customer-service window, when it has one."""
    session_window: bool | None = None
    """Whether the channel has a customer-service window; ``None``: as its traits say
    (``ChannelTraits.session_window_s``, WhatsApp's 24 hours)."""
    has_template: bool = False
    sent_today: int = 0
    daily_cap: int = 20
    not_after: float | None = None
    """The message is pointless from this instant on (a reminder, its meeting's start)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """``action`` and why; ``until`` is when to try again for ``defer``."""

    action: Action
    reason: str
    until: float | None = None


def _next_local_day(now: float, zone: ZoneInfo) -> float:
    local = datetime.fromtimestamp(now, zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0, 0), tzinfo=zone)
    return midnight.timestamp()


def decide(facts: OutboundFacts) -> Decision:
    """The decision for one message; see the module docstring for the order of checks."""
    decision = _decide(facts)
    if facts.not_after is None or decision.action in ("block", "drop_stale"):
        return decision
    at = decision.until if decision.action == "defer" and decision.until is not None else facts.now
    if at >= facts.not_after:
        return Decision("drop_stale", "expired")
    return decision


def _decide(facts: OutboundFacts) -> Decision:
    if facts.opted_out:
        return Decision("block", "opted_out")
    if facts.undeliverable:
        return Decision("block", "undeliverable_address")
    if facts.stale:
        return Decision("drop_stale", "newer_inbound_message")
    direct = (
        facts.trigger in ("inbound", "agent")  # the bot's or a person's answer to the lead
        and facts.last_inbound_at is not None
        and facts.now - facts.last_inbound_at <= DIRECT_REPLY_SECONDS
    )
    quiet_until = next_allowed_time(facts.now, facts.zone, facts.quiet_start, facts.quiet_end)
    if quiet_until is not None and not (direct and facts.allow_direct_replies):
        return Decision("defer", "quiet_hours", until=quiet_until)
    if facts.sent_today >= facts.daily_cap:
        return Decision("defer", "daily_cap", until=_next_local_day(facts.now, facts.zone))
    has_window = facts.session_window
    if has_window is None:
        has_window = channel_class(facts.channel).traits.session_window_s is not None
    if has_window:
        in_window = (
            facts.last_inbound_at is not None and facts.now - facts.last_inbound_at < facts.window_seconds
        )
        if not in_window:
            if facts.has_template:
                return Decision("send_template", "outside_customer_service_window")
            return Decision("block", "outside_customer_service_window_no_template")
    return Decision("send", "allowed")
