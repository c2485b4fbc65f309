"""The client's limit for a long window (Salesforce's rolling 24 h allowance, any window over 60 s)
is a sliding window: a burst is allowed, but no rolling window ever holds more than the limit, so
a vendor that counts a rolling window (the Salesforce fake) refuses nothing."""

from __future__ import annotations

import time

import httpx
import pytest

from crm_sync import client as client_module
from crm_sync.base import ProviderError
from crm_sync.catalog import RateLimit, RateLimitHeaders
from crm_sync.client import RateGate, SlidingWindow
from kernel.clock import ManualClock, SystemClock
from tests.crm_sync.fakes import SalesforceFake
from tests.crm_sync.support import TEST_TOKEN


def test_no_rolling_window_ever_holds_more_than_the_limit() -> None:
    clock = ManualClock(1_000.0)
    window = SlidingWindow(5, 100.0, clock=clock, slots=10)
    taken: list[float] = []
    for _ in range(4000):  # greedy callers every 0.25 s for 1,000 s
        if window.try_acquire() == 0.0:
            taken.append(clock.now())
        clock.advance(0.25)
    assert len(taken) >= 5 * 9  # the burst and then about the limit per window
    for i, start in enumerate(taken):  # every rolling window (start - 100, start]
        assert sum(1 for t in taken[: i + 1] if t > start - 100.0) <= 5
    assert taken[:5] == [1000.0, 1000.25, 1000.5, 1000.75, 1001.0]  # the burst goes through at once


def test_a_full_window_says_how_long_to_wait_and_takes_nothing() -> None:
    clock = ManualClock(0.0)
    window = SlidingWindow(2, 60.0, clock=clock, slots=60)
    assert window.try_acquire() == 0.0 and window.try_acquire() == 0.0
    wait = window.try_acquire()
    assert 60.0 <= wait <= 61.0
    clock.advance(wait)  # the first sub-window left: both its requests are free again
    assert window.try_acquire() == 0.0 and window.try_acquire() == 0.0
    assert window.try_acquire() > 0
    with pytest.raises(ValueError):
        SlidingWindow(0, 10.0, clock=clock)


async def test_a_spent_window_raises_a_quota_error_rather_than_waiting_forever(monkeypatch) -> None:
    monkeypatch.setattr(client_module, "_MAX_PAUSE_S", 0.01)
    window = SlidingWindow(1, 3600.0, clock=SystemClock())
    await window.acquire()
    with pytest.raises(ProviderError) as spent:
        await window.acquire()
    assert spent.value.quota and spent.value.retry_after_s and spent.value.retry_after_s > 3500


async def test_the_gate_never_exceeds_a_rolling_allowance(monkeypatch) -> None:
    # a 1.5 s window stands for the 24 h one: windows over 0.5 s count as long here
    monkeypatch.setattr(client_module, "_PACED_WINDOW_S", 0.5)
    # the gate's window is the fake's plus 0.5 s: the fake counts a request when it arrives, the
    # gate when it lets it go, and on a loaded machine the hop between them can take hundreds of ms
    # (a 24 h window makes that nothing; a 1.5 s one does not). With 0.2 s, one hop of 0.2 s (the
    # event loop descheduled on a busy 2-core machine) let a clean-clone CI run see a 429: the
    # first request of a window arrived late, the seventh on time, both inside the fake's 1.5 s.
    # Still, a gate that let a 7th request go within 2 s (a fixed window's burst at its edge) is
    # refused here.
    fake = await SalesforceFake(allowance=6, window_s=1.5).start()
    gate = RateGate(
        (RateLimit(requests=6, per_s=2.0, scope="test", doc="test"),), RateLimitHeaders(), clock=SystemClock()
    )
    statuses: list[int] = []
    try:
        async with httpx.AsyncClient(base_url=fake.base_url, trust_env=False) as http:
            stop = time.monotonic() + 3.8
            while time.monotonic() < stop:
                async with gate.slot():
                    resp = await http.get(
                        "/services/data/v61.0/limits", headers={"Authorization": f"Bearer {TEST_TOKEN}"}
                    )
                statuses.append(resp.status_code)
    finally:
        await fake.stop()
    assert len(statuses) >= 12  # the allowance was used: two windows' worth and more
    assert fake.rejected_429 == 0 and 403 not in statuses
