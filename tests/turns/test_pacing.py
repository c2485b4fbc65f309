"""Send pacing: slots at the providers' documented rates (WhatsApp 80/s per number and the 131056
pair rate, Twilio by number type and segments), a paced send rescheduled as a job and never
dropped, end to end through the dispatcher against a stand-in of api.twilio.com on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from app.composition import Runtime, build_channels
from app.jobs.queue import RetryLater
from app.messaging.pacing import SendPacer, twilio_sender_rate
from app.tenancy.bootstrap import bootstrap
from channels.base import InboundMessage
from channels.sms import TwilioSmsChannel, sms_segments
from kernel.clock import ManualClock
from tests.app.conftest import make_settings, no_quiet_hours
from tests.fixtures.twilio.fake_twilio import FakeTwilio

T0 = 1_764_000_000.0
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-auth-token-0123456789"
LONG_CODE = "+15017122661"


def conforms(times: list[float], costs: list[int], *, per_s: float, burst: int) -> bool:
    """No stretch of sends took more than ``burst`` units ahead of ``per_s`` (GCRA conformance)."""
    for i in range(len(times)):
        used = 0
        for j in range(i, len(times)):
            used += costs[j]
            if used - burst > (times[j] - times[i]) * per_s + 1e-6:
                return False
    return True


def busiest_second(times: list[float]) -> int:
    ordered = sorted(times)
    return max(sum(1 for u in ordered if t <= u < t + 1.0 - 1e-9) for t in ordered)


def test_twilio_rates_follow_the_number_type() -> None:
    assert twilio_sender_rate("+15017122661").per_s == 1.0  # US long code
    assert twilio_sender_rate("+18885550123").per_s == 3.0  # toll-free
    assert twilio_sender_rate("+18335550123").per_s == 3.0
    assert twilio_sender_rate("12345").per_s == 90.0  # short code: 100 in any second with its burst
    assert twilio_sender_rate("+33612345678").per_s == 1.0
    assert twilio_sender_rate("not a number").per_s == 1.0


def test_whatsapp_slots_keep_80_per_second_per_number_and_the_pair_rate() -> None:
    clock = ManualClock(T0)
    pacer = SendPacer(clock=clock)
    slots = [
        pacer.reserve(channel="whatsapp", sender="pn1", to=f"+3361000{i:04d}", key=f"o{i}")
        for i in range(800)
    ]
    assert slots == sorted(slots)
    assert busiest_second(slots) <= 80  # Meta's 80 messages/s per number, never more
    assert slots[-1] - slots[0] == pytest.approx((800 - 10) / 70, abs=1e-3)  # and not much less
    # another number has its own throughput
    assert pacer.reserve(channel="whatsapp", sender="pn2", to="+33610000000", key="x") == T0
    # one recipient: a burst of 10, then one message every 6 seconds (error 131056)
    pair = [pacer.reserve(channel="whatsapp", sender="pn3", to="+33699", key=f"p{i}") for i in range(12)]
    assert pair[:10] == pytest.approx([T0] * 10, abs=1e-3)
    assert pair[10] == pytest.approx(T0 + 6.0, abs=1e-3) and pair[11] == pytest.approx(T0 + 12.0, abs=1e-3)
    # email is not paced
    assert pacer.reserve(channel="email", sender="m", to="a@b.c", key="e") == T0


def test_a_booked_slot_is_kept_for_its_message_and_admit_reschedules() -> None:
    clock = ManualClock(T0)
    pacer = SendPacer(clock=clock)
    for i in range(10):  # the burst Twilio's queue absorbs
        pacer.admit(channel="sms", sender=LONG_CODE, to=f"+1415555{i:04d}", key=f"burst{i}", text="hi")
    with pytest.raises(RetryLater) as later:
        pacer.admit(channel="sms", sender=LONG_CODE, to="+14155550102", key="b", text="hi")
    assert later.value.delay_s == pytest.approx(1.0, abs=1e-3) and later.value.count is False
    # asking again before the slot books nothing new: the same slot comes back
    again = pacer.reserve(channel="sms", sender=LONG_CODE, to="+14155550102", key="b")
    assert again == pytest.approx(T0 + 1, abs=1e-3)
    assert pacer.reserve(channel="sms", sender=LONG_CODE, to="+14155550103", key="c") == pytest.approx(
        T0 + 2, abs=1e-3
    )
    clock.advance(1.0)
    pacer.admit(channel="sms", sender=LONG_CODE, to="+14155550102", key="b", text="hi")  # its slot came
    # a three-segment message costs three seconds of a long code
    long_text = "x" * 400
    assert sms_segments(long_text) == 3
    texts = [long_text if i % 3 == 0 else "hi" for i in range(12)]
    fresh = SendPacer(clock=ManualClock(T0))
    times = [
        fresh.reserve(channel="sms", sender=LONG_CODE, to=f"+1{i}", key=f"m{i}", text=t)
        for i, t in enumerate(texts)
    ]
    costs = [sms_segments(t) for t in texts]
    assert conforms(times, costs, per_s=1.0, burst=10)
    assert times[-1] - times[0] == pytest.approx(sum(costs) - 10, abs=1e-3)  # no slower than that
    # shared among processes: each takes its share of the rate
    shared = SendPacer(clock=clock, processes=2)
    times = [shared.reserve(channel="sms", sender=LONG_CODE, to=f"+{i}", key=f"s{i}") for i in range(30)]
    assert conforms(times, [1] * 30, per_s=0.5, burst=10)
    assert not conforms(times, [1] * 30, per_s=0.45, burst=10)  # and uses its share


def test_a_long_campaign_keeps_bounded_tables_and_linear_time() -> None:
    """Slots booked far ahead are kept; the sweeps stay amortised (no O(n^2) on the event loop)."""
    clock = ManualClock(T0)
    pacer = SendPacer(clock=clock)
    pacer.SWEEP_AT = 100
    pacer._sweep_at = 100
    for i in range(5_000):
        pacer.reserve(channel="sms", sender=LONG_CODE, to=f"+1{i}", key=f"k{i}")
        if i % 1000 == 999:
            clock.advance(2_000.0)  # 2,000 slots went by: their records carry no constraint
    # what remains: slots of the last hour never claimed (kept an hour past their time), or ahead
    assert len(pacer._booked) + len(pacer._tat) <= 3_600 + 10
    assert pacer._sweep_at <= 2 * (3_600 + 10) + 1_000


@pytest.fixture
def twilio_api() -> Iterator[FakeTwilio]:
    server = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def runtime(tmp_path: Path, twilio_api: FakeTwilio) -> AsyncIterator[tuple[Runtime, ManualClock]]:
    settings = make_settings(
        tmp_path / "data",
        "http://127.0.0.1:9",
        public_base_url="https://leads.example.com",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_phone_number=LONG_CODE,
        send_pacing=True,
    )
    sms = TwilioSmsChannel(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_number=LONG_CODE,
        public_base_url="https://leads.example.com",
        api_base_url=twilio_api.base_url,
    )
    clock = ManualClock(T0)
    rt = Runtime.build(settings, clock=clock, channels={**build_channels(settings), "sms": sms})
    await bootstrap(rt)
    await no_quiet_hours(rt)
    yield rt, clock
    await rt.channels.aclose()
    await rt.store.close()


async def test_replies_to_many_leads_leave_a_long_code_at_one_segment_a_second(
    runtime: tuple[Runtime, ManualClock], twilio_api: FakeTwilio
) -> None:
    rt, clock = runtime
    leads = [f"+1415555{i:04d}" for i in range(6)]
    for i, lead in enumerate(leads):
        message = InboundMessage(
            channel="sms", provider_message_id=f"SM{i:032d}", sender=lead, recipient=LONG_CODE, text="Hi"
        )
        assert await rt.accept("demo", message)
    sent_at: list[tuple[float, str]] = []
    for _ in range(400):  # move the manual clock on in small steps, noting when each send arrives
        await rt.worker.drain()
        for request in twilio_api.sent()[len(sent_at) :]:
            sent_at.append((clock.now(), request.form["Body"]))
        if len(sent_at) and not await rt.store.query("demo", "jobs"):
            break
        clock.advance(0.25)
    outbox = await rt.store.query("demo", "outbox")
    assert outbox and {d.data["status"] for d in outbox} == {"sent"}  # delayed, none dropped
    assert len(sent_at) == len(outbox) >= len(leads)
    times = [at for at, _ in sent_at]
    costs = [sms_segments(body) for _, body in sent_at]
    # 1 segment a second, past the 10-segment burst Twilio's queue absorbs (clock steps of 0.25 s)
    assert conforms(times, costs, per_s=1.0, burst=10)
    assert sum(costs) > 10 and times[-1] - times[0] >= sum(costs) - 10 - 1e-6
    assert not [j for j in await rt.jobs.dead_letters("demo")]
