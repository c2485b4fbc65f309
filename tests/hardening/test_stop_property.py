"""STOP against pending follow-ups on SMS and e-mail, over random timings (hypothesis).

A playbook greets the lead, then sends a follow-up every 10 minutes of silence. The lead's first
message is stored, then a random schedule runs: clock advances, the dispatcher, the lead's turn,
the whole worker, with the lead's STOP accepted at a random point of it. However they interleave,
nothing reaches the lead (Twilio's Messages resource, the SMTP server) after the STOP was
accepted, even after a day more of timers. WhatsApp's version is ``tests/app/test_stop_race.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from app.composition import Runtime
from app.jobs.queue import Job, RetryLater
from app.store import where
from app.store.collections import CONVERSATIONS, JOBS
from app.store.ids import compound_id
from app.tenancy.bootstrap import bootstrap
from channels.base import InboundMessage
from kernel.clock import ManualClock
from tests.app.conftest import make_settings, no_quiet_hours
from tests.fixtures.twilio.fake_twilio import FakeTwilio
from tests.support.recording import RecordingServer
from tests.support.smtp_server import SmtpRecorder, running_smtp_server

T = TypeVar("T")
T0 = 1_764_500_000.0
TWILIO_NUMBER = "+15005550006"
MAILBOX = "bot@leadwarm.test"
FOLLOWUPS = """\
id: stop-followups
name: Follow-ups every ten minutes
version: 1
language: en
triggers: [inbound_unknown_lead, lead_created]
channels: [sms, email]
steps:
  - id: hello
    type: message
    text: {en: "Hello! A few questions soon."}
  - id: wait1
    type: wait
    until_reply: true
    duration: 10m
    on_reply: done
    on_timeout: f1
  - id: f1
    type: message
    text: {en: "Follow-up one"}
  - id: wait2
    type: wait
    until_reply: true
    duration: 10m
    on_reply: done
    on_timeout: f2
  - id: f2
    type: message
    text: {en: "Follow-up two"}
  - id: done
    type: end
    outcome: nurture
"""
_numbers = itertools.count(1)

Op = tuple[str, float]
OPS = st.one_of(
    st.tuples(st.just("advance"), st.floats(min_value=0, max_value=1500)),
    st.tuples(st.sampled_from(["dispatch", "turn", "drain", "timer"]), st.just(0.0)),
)


class World:
    """One runtime (shared by the examples: each uses a new lead) and its fakes."""

    def __init__(self, tmp: Path, twilio: FakeTwilio, smtp: SmtpRecorder, smtp_port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock(T0)
        self.twilio, self.smtp = twilio, smtp
        graph = RecordingServer()
        self.graph = graph
        settings_ = make_settings(
            tmp / "data",
            graph.base_url,
            twilio_account_sid="AC" + "0" * 32,
            twilio_auth_token="token",
            twilio_phone_number=TWILIO_NUMBER,
            twilio_api_base_url=twilio.base_url,
            email_host="127.0.0.1",
            email_port=smtp_port,
            email_from=MAILBOX,
            email_starttls=False,
        )
        self.rt = Runtime.build(settings_, clock=self.clock)
        self.run(self._setup())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    async def _setup(self) -> None:
        await bootstrap(self.rt)
        await no_quiet_hours(self.rt)
        await self.rt.playbooks.save("demo", FOLLOWUPS, origin="stop-followups.yaml")
        profile = await self.rt.tenants.profile("demo")
        await self.rt.tenants.save_profile(
            profile.model_copy(
                update={
                    "default_playbook": "stop-followups",
                    "playbooks_by_language": {"en": "stop-followups", "fr": "stop-followups"},
                    "daily_cap_per_lead": 1000,
                }
            )
        )

    def sends_to(self, address: str) -> int:
        """Messages the providers received for ``address``."""
        sms = sum(1 for r in self.twilio.requests if r.form.get("To") == address)
        mail = sum(1 for m in self.smtp.messages() if address in m.rcpt_tos)
        return sms + mail

    def close(self) -> None:
        async def shut() -> None:
            await self.rt.channels.aclose()
            await self.rt.store.close()

        self.run(shut())
        self.loop.close()
        self.graph.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    twilio = FakeTwilio(account_sid="AC" + "0" * 32, auth_token="token")
    with running_smtp_server() as (controller, smtp):
        w = World(tmp_path_factory.mktemp("stop"), twilio, smtp, controller.port)
        try:
            yield w
        finally:
            w.close()
            twilio.close()


async def _run_job(rt: Runtime, kind: str, key: str) -> None:
    doc = await rt.store.get("demo", JOBS, compound_id(kind, key))
    if doc is None or doc.get("status") != "pending" or float(doc.get("due_at") or 0) > rt.clock.now():
        return
    with contextlib.suppress(RetryLater):
        await rt.worker.handlers[kind](Job.from_doc(doc))


async def _conversation_of(rt: Runtime, channel: str, address: str) -> str | None:
    docs = await rt.store.query(
        "demo", CONVERSATIONS, filters=[where("channel", "==", channel), where("address", "==", address)]
    )
    return docs[0].id if docs else None


def _message(channel: str, address: str, text: str, n: int, at: float) -> InboundMessage:
    recipient = TWILIO_NUMBER if channel == "sms" else MAILBOX
    pid = f"SM{n:032x}" if channel == "sms" else f"<m{n}@example.com>"
    return InboundMessage(channel, pid, address, recipient, text, timestamp=at)


async def _scenario(w: World, channel: str, ops: list[Op], stop_at: int, stop_text: str) -> tuple[int, int]:
    rt = w.rt
    n = next(_numbers)
    address = f"+3361{n:07d}" if channel == "sms" else f"lead{n}@example.com"
    inbound_key = f"{channel}:{address}"
    await rt.accept("demo", _message(channel, address, "Hi, tell me more", n * 10, rt.clock.now()))
    await rt.worker.drain()  # the greeting goes out; the first follow-up timer is pending
    conversation = await _conversation_of(rt, channel, address)
    assert conversation is not None
    sends_at_stop = -1
    for index, (op, seconds) in enumerate([*ops[:stop_at], ("STOP", 0.0), *ops[stop_at:]]):
        if op == "STOP":
            stored = await rt.accept(
                "demo", _message(channel, address, stop_text, n * 10 + 1, rt.clock.now())
            )
            assert stored
            sends_at_stop = w.sends_to(address)
        elif op == "advance":
            w.clock.advance(seconds)
        elif op == "dispatch":
            await _run_job(rt, "dispatch", conversation)
        elif op == "turn":
            await _run_job(rt, "inbound", inbound_key)
        elif op == "timer":
            await _run_job(rt, "timer", conversation)
        else:
            await rt.worker.drain()
        del index
    for _ in range(3):  # a day of timers later
        w.clock.advance(8 * 3600)
        await rt.worker.drain()
    opted_out, _ = await rt.optouts.blocks(
        "demo", channel=channel, address=address, lead_addresses={}, all_channels=False
    )
    assert opted_out, "the STOP's turn never recorded the opt-out"
    return sends_at_stop, w.sends_to(address)


@pytest.mark.parametrize("channel", ["sms", "email"])
def test_nothing_leaves_after_a_stop_whatever_the_timing(world: World, channel: str) -> None:
    stop_words = ["STOP", "stop", "Unsubscribe", "STOPALL"] if channel == "sms" else ["STOP", "unsubscribe"]
    seen_followups_before_stop = []

    @settings(
        max_examples=6,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        ops=st.lists(OPS, min_size=1, max_size=8),
        stop_at=st.integers(min_value=0, max_value=8),
        stop_text=st.sampled_from(stop_words),
    )
    # a follow-up goes out, the next one's timer is due when the STOP arrives, and the timer's turn
    # runs before the STOP's (it commits a follow-up after the STOP was received)
    @example(
        ops=[("advance", 700.0), ("drain", 0.0), ("advance", 700.0), ("timer", 0.0), ("drain", 0.0)],
        stop_at=3,
        stop_text="STOP",
    )
    @example(
        ops=[("advance", 700.0), ("drain", 0.0), ("dispatch", 0.0), ("turn", 0.0)],
        stop_at=2,
        stop_text=stop_words[-1],
    )
    def check(ops: list[Op], stop_at: int, stop_text: str) -> None:
        stop_at = min(stop_at, len(ops))
        at_stop, after = world.run(_scenario(world, channel, ops, stop_at, stop_text))
        seen_followups_before_stop.append(at_stop)
        assert after == at_stop, f"{after - at_stop} sends after the STOP ({ops}, STOP at {stop_at})"

    check()
    # the schedules did reach follow-ups before some STOPs (the greeting is 1 send)
    assert max(seen_followups_before_stop) >= 2, seen_followups_before_stop
