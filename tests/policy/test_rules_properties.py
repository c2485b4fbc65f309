"""Properties of the outbound decision, over time zones, DST changes and every input."""

from __future__ import annotations

import dataclasses
from datetime import datetime, time
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from app.policy.quiet_hours import next_allowed_time
from app.policy.rules import DIRECT_REPLY_SECONDS, OutboundFacts, decide

ZONES = [
    "Europe/Paris",
    "America/New_York",
    "America/Sao_Paulo",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Europe/London",
    "America/St_Johns",
    "UTC",
    "Asia/Tokyo",
]
# 2026-01-01 .. 2028-01-01: two years, every DST change of these zones included.
INSTANTS = st.floats(min_value=1_767_225_600, max_value=1_830_297_600, allow_nan=False)
HOURS = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))


@st.composite
def facts(draw: st.DrawFn) -> OutboundFacts:
    now = draw(INSTANTS)
    last_inbound = draw(st.one_of(st.none(), st.floats(min_value=now - 3 * 86400, max_value=now)))
    return OutboundFacts(
        channel=draw(st.sampled_from(["whatsapp", "sms", "email", "webchat"])),
        trigger=draw(st.sampled_from(["inbound", "start", "timer", "agent"])),
        now=now,
        zone=ZoneInfo(draw(st.sampled_from(ZONES))),
        quiet_start=draw(HOURS),
        quiet_end=draw(HOURS),
        allow_direct_replies=draw(st.booleans()),
        opted_out=draw(st.booleans()),
        undeliverable=draw(st.booleans()),
        stale=draw(st.booleans()),
        last_inbound_at=last_inbound,
        has_template=draw(st.booleans()),
        sent_today=draw(st.integers(0, 30)),
        daily_cap=draw(st.integers(1, 30)),
    )


def _in_quiet_hours(f: OutboundFacts, at: float) -> bool:
    return next_allowed_time(at, f.zone, f.quiet_start, f.quiet_end) is not None


@settings(max_examples=800, deadline=None)
@given(facts())
def test_nothing_ever_goes_to_an_opted_out_address(f: OutboundFacts) -> None:
    if f.opted_out:
        assert decide(f).action == "block"


@settings(max_examples=800, deadline=None)
@given(facts())
def test_no_first_touch_or_follow_up_leaves_inside_quiet_hours(f: OutboundFacts) -> None:
    decision = decide(f)
    if f.trigger in ("start", "timer") and decision.action in ("send", "send_template"):
        local = datetime.fromtimestamp(f.now, f.zone)
        assert not _in_quiet_hours(f, f.now), (local, f.quiet_start, f.quiet_end)


@settings(max_examples=800, deadline=None)
@given(facts())
def test_a_deferral_for_quiet_hours_ends_outside_them_and_in_the_future(f: OutboundFacts) -> None:
    decision = decide(f)
    if decision.reason == "quiet_hours":
        assert decision.until is not None and decision.until > f.now
        assert not _in_quiet_hours(f, decision.until)
        assert _in_quiet_hours(f, decision.until - 1)  # and not later than needed


@settings(max_examples=800, deadline=None)
@given(facts())
def test_no_free_text_on_whatsapp_outside_the_customer_service_window(f: OutboundFacts) -> None:
    decision = decide(f)
    outside = f.last_inbound_at is None or f.now - f.last_inbound_at >= f.window_seconds
    if f.channel == "whatsapp" and outside:
        assert decision.action != "send"
        if decision.action == "send_template":
            assert f.has_template


@settings(max_examples=600, deadline=None)
@given(facts())
def test_only_direct_replies_may_use_the_quiet_hours_exception(f: OutboundFacts) -> None:
    decision = decide(f)
    if decision.action in ("send", "send_template") and _in_quiet_hours(f, f.now):
        # a direct answer to a lead who just wrote: the bot's, or a person's (issue 11)
        assert f.trigger in ("inbound", "agent") and f.allow_direct_replies
        assert f.last_inbound_at is not None and f.now - f.last_inbound_at <= DIRECT_REPLY_SECONDS


@settings(max_examples=600, deadline=None)
@given(facts())
def test_the_daily_cap_is_never_exceeded(f: OutboundFacts) -> None:
    if f.sent_today >= f.daily_cap:
        assert decide(f).action not in ("send", "send_template")


@settings(max_examples=800, deadline=None)
@given(facts(), st.floats(min_value=-2 * 86400, max_value=2 * 86400, allow_nan=False))
def test_nothing_goes_out_or_waits_past_its_not_after(f: OutboundFacts, offset: float) -> None:
    """A message with ``not_after`` (a reminder) is sent before it, deferred to before it, or
    dropped as expired; without it the decision is unchanged."""
    bounded = dataclasses.replace(f, not_after=f.now + offset)
    plain, decision = decide(f), decide(bounded)
    if decision.action in ("send", "send_template"):
        assert f.now < f.now + offset and decision == plain
    elif decision.action == "defer":
        assert decision.until is not None and decision.until < f.now + offset and decision == plain
    elif decision == plain:
        assert decision.action in ("block", "drop_stale")
    else:
        assert decision.reason == "expired" and plain.action in ("send", "send_template", "defer")
