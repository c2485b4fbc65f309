"""When a flush may start a vendor batch of several requests (:meth:`CrmSync._window`): as soon
as one request fits and the whole batch will within ``_BATCH_SPREAD_S``, so a window of 10
requests carries 10, not the 9 that three whole batches of 3 would leave; never when the last
request of the batch would wait for a long window to refill (the batch would be held half-sent)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

import app.crm.sync as sync_module
from app.crm.sync import CrmSync, batch_requests
from app.jobs.queue import RetryLater
from crm_sync.catalog import Catalog, Provider, RateLimit, RateLimitHeaders, load_catalog
from crm_sync.client import RateGate, SlidingWindow
from kernel.clock import ManualClock


@dataclass
class _Clients:
    """The two things ``_window`` asks of :class:`crm_sync.client.ConnectionClients`."""

    gate_: RateGate
    catalog: Catalog
    asked: list[str] = field(default_factory=list)

    def gate(self, tenant_id: str, provider: Provider) -> RateGate:
        self.asked.append(tenant_id)
        return self.gate_


def _clients(clock: ManualClock) -> _Clients:
    gate = RateGate(
        (RateLimit(requests=10, per_s=100.0, scope="org", doc="test"),), RateLimitHeaders(), clock=clock
    )
    assert isinstance(gate.limiter, SlidingWindow)
    return _Clients(gate, load_catalog())


def _spend(window: SlidingWindow, times: list[float]) -> None:
    """The requests of earlier batches, taken at these times (UTC epoch seconds)."""
    for at in times:
        assert window.try_acquire(at) == 0.0


async def test_a_batch_starts_when_its_last_request_will_fit_soon() -> None:
    assert batch_requests("salesforce") == 3
    clock = ManualClock(0.0)
    clients = _clients(clock)
    window = clients.gate_.limiter
    assert isinstance(window, SlidingWindow)
    # three batches of 3 at 0, 30 and 60 s: one place left; the first batch leaves at 100 s
    _spend(window, [0, 0, 0, 30, 30, 30, 60, 60, 60])
    clock.advance(80.0)
    assert clients.gate_.wait_s(3) > 0  # the whole batch does not fit now...
    sync = CrmSync.__new__(CrmSync)
    await sync._window(clients, "t1", "salesforce")  # type: ignore[arg-type]  # ...but it starts now
    assert clients.asked == ["t1"]


async def test_a_batch_whose_last_request_would_wait_long_does_not_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = ManualClock(0.0)
    clients = _clients(clock)
    window = clients.gate_.limiter
    assert isinstance(window, SlidingWindow)
    _spend(window, [0, 0, 0, 30, 30, 30, 60, 60, 60])
    clock.advance(61.0)  # one place left; the first batch leaves in 39 s
    sync = CrmSync.__new__(CrmSync)
    with pytest.raises(RetryLater) as caught:
        await sync._window(clients, "t1", "salesforce")  # type: ignore[arg-type]
    # deferred until the last request would wait no more than the spread
    expected = clients.gate_.wait_s(3) - sync_module._BATCH_SPREAD_S
    assert caught.value.delay_s == pytest.approx(expected, abs=1.0) and caught.value.delay_s > 5.0
    # with no place at all, it waits for one place whatever the spread
    assert window.try_acquire() == 0.0  # the last place
    monkeypatch.setattr(sync_module, "_BATCH_SPREAD_S", 1000.0)
    with pytest.raises(RetryLater) as caught:
        await sync._window(clients, "t1", "salesforce")  # type: ignore[arg-type]
    assert caught.value.delay_s == pytest.approx(clients.gate_.wait_s(1))
