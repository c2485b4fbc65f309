"""Send pacing: every outbound message takes a slot from its sender's rate, and on WhatsApp from
the (sender, recipient) pair's rate, so a campaign never earns a provider block.

The limits, from the vendors' documentation:

- **WhatsApp Cloud API**, "Throughput" (developers.facebook.com/documentation/business-messaging/
  whatsapp/throughput): each registered business phone number handles up to 80 messages per
  second by default (1,000 after Meta's automatic upgrade), inbound and outbound together;
  beyond it the API answers error 130429. Same page and the error-code table: a business number
  may send about 1 message every 6 seconds to the same WhatsApp user (0.17 msg/s); beyond it the
  API answers error 131056 ("pair rate limit hit"). Meta allows a burst of up to 45 messages in
  6 seconds to one user, borrowed against the following time at the base rate.
- **Twilio Programmable Messaging**, "Understanding Twilio Rate Limits and Message Queues" and
  "Toll-Free SMS and MMS messaging throughput (MPS)": a US/Canada long code sends 1 message
  segment per second, a toll-free number 3 segments/s by default, a short code 100 messages/s;
  faster requests wait in a per-sender queue that holds at most 10 hours of segments (36,000 for a
  long code), after which Twilio refuses them. Pacing here keeps that queue short (a burst of 10
  segments, at most 10 s of a long code's queue), so quiet hours and opt-outs are still checked
  near the real send time and a turn's two or three messages are not rescheduled one by one.

The pacer is a GCRA ("virtual scheduling") over the :class:`kernel.clock.Clock`: a slot is a time,
not a sleep, so :meth:`SendPacer.admit` never holds a worker. A send whose slot is in the future
raises :class:`app.jobs.queue.RetryLater` (not counted as a failure): the dispatch job is
rescheduled for that slot, which stays booked for the outbox item, and the send goes out when the
job runs again. Pacing delays, it never drops. Slots are kept per process; a deployment that runs
``processes`` workers gives each its share of every rate (``SendPacer(processes=N)``).
Times are UTC epoch floats, rates messages (Twilio: segments) per second.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import phonenumbers

from app.jobs.queue import RetryLater
from channels.base import Channel
from channels.sms import sms_segments
from kernel.clock import Clock

__all__ = [
    "DEFAULT_RULES",
    "PAIR_WHATSAPP",
    "Rate",
    "SendPacer",
    "SendRule",
    "twilio_rule",
    "twilio_sender_rate",
    "whatsapp_rule",
]


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_s`` units (messages or segments) a second on average, up to ``burst`` back to back.

    Raises ``ValueError`` when ``per_s`` is not positive or ``burst`` is below 1."""

    per_s: float
    burst: int = 1

    def __post_init__(self) -> None:
        if not self.per_s > 0 or self.burst < 1:
            raise ValueError(f"invalid rate {self.per_s}/s burst {self.burst}")


@dataclass(frozen=True, slots=True)
class SendRule:
    """What paces one message: the sender's rate, the pair's rate (``None``: none) and what the
    message costs against them (Twilio counts segments)."""

    sender: Rate
    pair: Rate | None = None
    cost: int = 1


#: Meta's pair rate: 1 message every 6 seconds to one user. A lively conversation's replies go
#: at once (a burst of 10, well inside Meta's 45); the long-run pace stays one per 6 s.
PAIR_WHATSAPP = Rate(per_s=1 / 6, burst=10)
#: Meta's default Cloud API throughput per business number: 70/s with bursts of 10, so that no
#: one-second window holds more than 80 (GCRA: burst + rate x window).
WHATSAPP_NUMBER = Rate(per_s=70.0, burst=10)
#: Twilio's per-sender rates (segments/s); the burst is what Twilio's own queue absorbs.
_TOLL_FREE = Rate(per_s=3.0, burst=10)
_LONG_CODE = Rate(per_s=1.0, burst=10)
_SHORT_CODE = Rate(per_s=90.0, burst=10)  # at most 100 in any second


def twilio_sender_rate(number: str) -> Rate:
    """The Twilio sending rate of ``number`` by its type: a short code (5-6 digits, no ``+``)
    100/s, a North-American toll-free number 3/s, any other number (a long code) 1/s, in segments
    per second (Twilio, "Understanding Twilio Rate Limits and Message Queues")."""
    digits = number.strip()
    if digits.isdigit() and 5 <= len(digits) <= 6:
        return _SHORT_CODE
    try:
        parsed = phonenumbers.parse(digits, "US")
    except phonenumbers.NumberParseException:
        return _LONG_CODE
    if (
        parsed.country_code == 1
        and phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.TOLL_FREE
    ):
        return _TOLL_FREE
    return _LONG_CODE


def whatsapp_rule(sender: str, text: str) -> SendRule:
    """WhatsApp Cloud API: 80 msg/s per business number, the 131056 pair rate per recipient."""
    return SendRule(sender=WHATSAPP_NUMBER, pair=PAIR_WHATSAPP)


def twilio_rule(sender: str, text: str) -> SendRule:
    """Twilio SMS: the sender's rate from its number type, each message costing its segments."""
    return SendRule(sender=twilio_sender_rate(sender), cost=sms_segments(text) if text else 1)


#: The rule of each paced channel (by registry name), given the sender address and the text.
#: Channels absent here (email, web chat) are not paced.
DEFAULT_RULES: Mapping[str, Callable[[str, str], SendRule]] = {"whatsapp": whatsapp_rule, "sms": twilio_rule}


class SendPacer:
    """Books send slots per sender and per (sender, recipient); see the module docstring.

    ``rules`` maps a channel name to its :class:`SendRule` factory; ``processes`` divides every
    rate among that many worker processes sharing the senders.
    """

    #: Pair and sender records whose schedule has caught up with the clock carry no constraint;
    #: they are swept when the tables grow past this size (bounded memory in a long campaign).
    SWEEP_AT = 50_000

    def __init__(
        self,
        *,
        clock: Clock,
        rules: Mapping[str, Callable[[str, str], SendRule]] | None = None,
        processes: int = 1,
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self.clock = clock
        self.rules = dict(DEFAULT_RULES if rules is None else rules)
        self.processes = processes
        self._tat: dict[tuple[str, ...], float] = {}
        """Theoretical arrival time (GCRA) of each sender and pair."""
        self._booked: dict[tuple[str, str, str], float] = {}
        """The slot booked for an outbox item ``(key, channel, sender)`` that was told to wait."""
        self._sweep_at = self.SWEEP_AT

    def paced(self, channel: str) -> bool:
        """Whether sends on ``channel`` are paced."""
        return channel in self.rules

    def reserve(self, *, channel: str, sender: str, to: str, key: str, text: str = "") -> float:
        """Book the earliest slot for one message and return it (UTC epoch seconds); a slot not
        later than now means "send now". ``key`` names the message (the outbox item id): asking
        again for the same key returns its booked slot instead of booking another, and consumes
        it once the slot has come."""
        now = self.clock.now()
        rule_for = self.rules.get(channel)
        if rule_for is None:
            return now
        booked_key = (key, channel, sender)
        booked = self._booked.get(booked_key)
        if booked is not None:
            if booked <= now + 1e-9:
                del self._booked[booked_key]
                return now
            return booked
        rule = rule_for(sender, text)
        sender_key = ("s", channel, sender)
        pair_key = ("p", channel, sender, to)
        slot = self._earliest(sender_key, rule.sender, rule.cost, now)
        if rule.pair is not None:
            slot = max(slot, self._earliest(pair_key, rule.pair, 1, now))
        self._book(sender_key, rule.sender, rule.cost, slot)
        if rule.pair is not None:
            self._book(pair_key, rule.pair, 1, slot)
        if slot > now:
            self._booked[booked_key] = slot
        if len(self._tat) + len(self._booked) > self._sweep_at:
            self._sweep(now)
        return max(slot, now)

    def admit(self, *, channel: str, sender: str, to: str, key: str, text: str = "") -> None:
        """Let the message go now, or raise :class:`app.jobs.queue.RetryLater` (not counted as a
        failure) with the delay in seconds until its booked slot: the worker reschedules the job
        instead of waiting."""
        slot = self.reserve(channel=channel, sender=sender, to=to, key=key, text=text)
        delay = slot - self.clock.now()
        if delay > 0:
            raise RetryLater(delay, f"paced: {channel} sender rate", count=False)

    @staticmethod
    def sender_of(channel: Channel, tenant_id: str) -> str:
        """The sending address that a provider's rate applies to: the channel's own number
        (WhatsApp phone-number id, Twilio number), else the tenant (one sender per tenant)."""
        addresses = channel.receiving_addresses()
        return addresses[0] if addresses else f"tenant:{tenant_id}"

    # ------------------------------------------------------------------ GCRA
    def _interval(self, rate: Rate, cost: int) -> float:
        return cost * self.processes / rate.per_s

    def _earliest(self, key: tuple[str, ...], rate: Rate, cost: int, now: float) -> float:
        # the whole message (``cost`` units) must fit in the burst: tat - (burst - cost) x T
        tat = self._tat.get(key, now)
        tolerance = (rate.burst - cost) * self._interval(rate, 1)
        return max(now, tat - tolerance)

    def _book(self, key: tuple[str, ...], rate: Rate, cost: int, slot: float) -> None:
        self._tat[key] = max(self._tat.get(key, slot), slot) + self._interval(rate, cost)

    def _sweep(self, now: float) -> None:
        self._tat = {k: t for k, t in self._tat.items() if t > now}
        self._booked = {k: t for k, t in self._booked.items() if t > now - 3600.0}
        # what is still booked lies ahead: sweep again only once the tables have doubled, so the
        # sweeps cost O(1) amortised per send however large the campaign
        self._sweep_at = max(self.SWEEP_AT, 2 * (len(self._tat) + len(self._booked)))
