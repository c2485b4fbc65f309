"""Several worker processes spend one tenant's CRM allowance: each process's gate takes its share
of the window (``RateGate(processes=N)``, ``WORKER_PROCESSES``), so together they stay within the
vendor's limit. Two gates stand for two processes (a gate's state is all a process has), each
with its own HTTP client, against the GoHighLevel fake counting 10 requests per 0.5 s."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from app.connections.config import build_services
from app.core.settings import Settings
from app.store.sqlite import SQLiteStore
from crm_sync.catalog import RateLimit, RateLimitHeaders, load_catalog
from crm_sync.client import RateGate, RollingWindow
from kernel.clock import SystemClock
from tests.crm_sync.fakes import TEST_TOKEN, GoHighLevelFake

_LIMIT = RateLimit(requests=10, per_s=0.5, scope="test", doc="test")


async def _two_processes(processes: int) -> tuple[int, int]:
    """(requests answered, refused with a 429) when two processes' gates share the allowance."""
    fake = await GoHighLevelFake(limit=10, window_s=0.5, daily=10**9).start()
    gates = [
        RateGate((_LIMIT,), RateLimitHeaders(), clock=SystemClock(), processes=processes) for _ in range(2)
    ]
    statuses: list[int] = []

    async def caller(gate: RateGate, http: httpx.AsyncClient, stop: float) -> None:
        while time.monotonic() < stop:
            async with gate.slot():
                resp = await http.get(
                    "/contacts/search/duplicate",
                    params={"locationId": "loc_1", "email": "a@example.com"},
                    headers={"Authorization": f"Bearer {TEST_TOKEN}", "Version": "2021-07-28"},
                )
            statuses.append(resp.status_code)

    try:
        async with (
            httpx.AsyncClient(base_url=fake.base_url, trust_env=False) as one,
            httpx.AsyncClient(base_url=fake.base_url, trust_env=False) as two,
        ):
            stop = time.monotonic() + 1.6
            await asyncio.gather(
                *(caller(gates[0], one, stop) for _ in range(8)),
                *(caller(gates[1], two, stop) for _ in range(8)),
            )
    finally:
        await fake.stop()
    # the fake has no such contact (404): an answer all the same, counted in its window
    assert set(statuses) <= {404, 429}, set(statuses)
    assert fake.rejected_429 == statuses.count(429)
    return statuses.count(404), statuses.count(429)


async def test_two_processes_with_their_share_never_exceed_the_vendor_limit() -> None:
    ok, rejected = await _two_processes(2)
    assert rejected == 0
    assert ok >= 15  # 1.6 s is 3-4 windows of 10 (5 per process), less a round trip per window


async def test_two_processes_each_spending_the_whole_allowance_are_refused() -> None:
    # the failure the share prevents: each process alone keeps within the limit, together not
    _ok, rejected = await _two_processes(1)
    assert rejected > 0


async def test_a_window_resized_from_the_headers_is_shared_too() -> None:
    headers = RateLimitHeaders(limit="X-Max", remaining="X-Remaining", interval_ms="X-Interval")
    gate = RateGate((_LIMIT,), headers, clock=SystemClock(), processes=4)
    assert isinstance(gate.limiter, RollingWindow) and gate.limiter.requests == 2  # 10 // 4
    gate.observe({"X-Max": "100", "X-Interval": "10000", "X-Remaining": "99"})
    assert isinstance(gate.limiter, RollingWindow) and gate.limiter.requests == 25
    small = RateGate(
        (RateLimit(requests=3, per_s=1.0, scope="t", doc="t"),), headers, clock=SystemClock(), processes=8
    )
    assert isinstance(small.limiter, RollingWindow) and small.limiter.requests == 1  # never 0
    with pytest.raises(ValueError):
        RateGate((_LIMIT,), headers, clock=SystemClock(), processes=0)


async def test_worker_processes_reaches_the_connections_rate_gates(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        leadwarm_data_dir=tmp_path,
        worker_processes=3,
        encryption_key=None,
    )
    store = SQLiteStore(settings.sqlite_path)
    try:
        services, _config = build_services(settings, store)
        provider = load_catalog().providers["gohighlevel"]
        gate = services.clients.gate("t1", provider)
        assert gate.processes == 3
        documented = min(provider.rate_limits, key=lambda lim: lim.per_s)
        assert isinstance(gate.limiter, RollingWindow)
        assert gate.limiter.requests == int(documented.requests) // 3
        await services.clients.aclose()
    finally:
        await store.close()
