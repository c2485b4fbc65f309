"""The short-window gate (:class:`crm_sync.client.RollingWindow`): never more than the limit in
any rolling window *as the vendor counts it* (on arrival, whatever the latency), allowance banked
while the event loop was busy, waiters served in order, and a ``remaining: 0`` header that the
gate's own count explains does not stop it for a whole window."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
from aiohttp import web

from crm_sync.catalog import RateLimit, RateLimitHeaders
from crm_sync.client import RateGate, RollingWindow
from kernel.clock import SystemClock
from tests.crm_sync.fakes import TEST_TOKEN, GoHighLevelFake


class _FarGoHighLevel(GoHighLevelFake):
    """A GoHighLevel fake the requests reach after a random 0-60 ms (counted on arrival)."""

    def __init__(self, *, seed: int, limit: int, window_s: float) -> None:
        super().__init__(limit=limit, window_s=window_s, daily=10**9)
        self.rng = random.Random(seed)

    async def _handle(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.rng.uniform(0.0, 0.06))
        return await super()._handle(request)


async def test_the_vendor_never_sees_more_than_the_limit_however_uneven_the_latency() -> None:
    # 10 per 0.4 s on the fake, which counts a request when it arrives, 0 to 60 ms after it left:
    # a gate counting when it lets requests go would overrun the fake's window
    fake = await _FarGoHighLevel(seed=7, limit=10, window_s=0.4).start()
    path = "/contacts/search/duplicate"
    gate = RateGate(
        (RateLimit(requests=10, per_s=0.4, scope="test", doc="test"),),
        RateLimitHeaders(),  # no headers read: the window alone keeps the count
        clock=SystemClock(),
    )
    statuses: list[int] = []

    async def caller(http: httpx.AsyncClient, stop: float) -> None:
        while time.monotonic() < stop:
            async with gate.slot():
                resp = await http.get(
                    path,
                    params={"locationId": "loc_1", "email": "a@example.com"},
                    headers={"Authorization": f"Bearer {TEST_TOKEN}", "Version": "2021-07-28"},
                )
            statuses.append(resp.status_code)

    try:
        async with httpx.AsyncClient(base_url=fake.base_url, trust_env=False) as http:
            stop = time.monotonic() + 2.0
            await asyncio.gather(*(caller(http, stop) for _ in range(25)))
    finally:
        await fake.stop()
    assert fake.rejected_429 == 0 and 429 not in statuses
    # 2 s is 5 windows of 10, less a round trip per window: most of the allowance was used
    assert len(statuses) >= 35, len(statuses)


async def test_places_left_free_while_the_loop_was_busy_are_used_later_in_the_window() -> None:
    window = RollingWindow(10, 1.0, clock=SystemClock())
    await window.acquire()
    window.release()
    time.sleep(0.3)  # the event loop is busy (a batch being built): nothing can go out
    started = time.monotonic()
    for _ in range(9):  # the nine places of the window are still there, at once
        await window.acquire()
        window.release()
    assert time.monotonic() - started < 0.1
    assert window.used() == 10
    # the eleventh waits for the first place to leave the window (answered 1 s earlier)
    await asyncio.wait_for(window.acquire(), timeout=2.0)
    assert time.monotonic() - started >= 0.6


async def test_a_place_is_held_until_the_answer_and_waiters_go_in_order() -> None:
    window = RollingWindow(2, 0.2, clock=SystemClock())
    await window.acquire()
    await window.acquire()  # both places in flight: nobody can go until an answer comes back
    order: list[int] = []

    async def waiter(n: int) -> None:
        await window.acquire()
        order.append(n)
        window.release()

    waiters = [asyncio.create_task(waiter(n)) for n in range(4)]
    await asyncio.sleep(0.4)  # longer than the window: still nobody, no answer has come back
    assert order == []
    answered = time.monotonic()
    window.release()
    window.release()
    await asyncio.wait_for(asyncio.gather(*waiters), timeout=3.0)
    assert order == [0, 1, 2, 3]
    # the first two waited a window after the answers; the next two a window after theirs
    assert time.monotonic() - answered >= 0.4


async def test_remaining_zero_pauses_only_when_someone_else_spends_the_allowance() -> None:
    headers = RateLimitHeaders(limit="X-Max", remaining="X-Remaining", interval_ms="X-Interval")
    gate = RateGate((RateLimit(requests=3, per_s=5.0, scope="t", doc="t"),), headers, clock=SystemClock())
    advertised = {"X-Max": "3", "X-Interval": "5000"}
    for _ in range(3):
        async with gate.slot():
            pass
    gate.observe({**advertised, "X-Remaining": "0"})  # our own three: the window holds them
    assert gate.paused_until == 0.0
    shared = RateGate((RateLimit(requests=3, per_s=5.0, scope="t", doc="t"),), headers, clock=SystemClock())
    async with shared.slot():
        pass
    shared.observe({**advertised, "X-Remaining": "0"})  # one of ours: another client spent the rest
    assert shared.paused_until > time.time() + 4.0
    assert shared.wait_s() > 4.0


def test_a_rolling_window_refuses_a_nonsense_limit() -> None:
    import pytest

    with pytest.raises(ValueError):
        RollingWindow(0, 1.0, clock=SystemClock())
    with pytest.raises(ValueError):
        RollingWindow(5, 0.0, clock=SystemClock())


async def test_a_long_window_our_own_requests_filled_is_not_paused_for_a_whole_window() -> None:
    from crm_sync.client import SlidingWindow

    headers = RateLimitHeaders(limit="X-Max", remaining="X-Remaining", interval_ms="X-Interval")
    advertised = {"X-Max": "3", "X-Interval": "160000", "X-Remaining": "0"}
    gate = RateGate((RateLimit(requests=3, per_s=160.0, scope="t", doc="t"),), headers, clock=SystemClock())
    assert isinstance(gate.limiter, SlidingWindow)
    for _ in range(3):
        async with gate.slot():
            pass
    gate.observe(advertised)
    assert gate.paused_until == 0.0  # the window itself waits for the first request to leave
    assert gate.wait_s() > 150.0
    other = RateGate((RateLimit(requests=3, per_s=160.0, scope="t", doc="t"),), headers, clock=SystemClock())
    async with other.slot():
        pass
    other.observe(advertised)  # one of ours: someone else spent the rest
    assert other.paused_until > time.time() + 150.0
