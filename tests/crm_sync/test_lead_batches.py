"""Many leads per call for the CRMs without batch endpoints (GoHighLevel, Pipedrive): the leads of
one ``upsert_leads`` call run concurrently against the stateful fakes, each lead's answer in its
own slot; a batch that failed as a whole (an outage) is raised as one error. And the client's
pieces that keep the CPU per request low: no cookies kept across tenants, a bounded number of
requests inside the HTTP pool (exercised by the benchmark), and a window that says how long until a whole batch fits."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from crm_sync.base import IntegrationError, LeadSnapshot, ProviderError, RemoteIds
from crm_sync.catalog import RateLimit, RateLimitHeaders
from crm_sync.client import RateGate, SlidingWindow, http_pool
from crm_sync.crm import AdapterConfigError, GoHighLevelAdapter, PipedriveAdapter
from crm_sync.crm._common import upsert_each
from kernel.clock import ManualClock
from tests.crm_sync.leads import qualified_lead
from tests.crm_sync.support import Route, TestApiClient

LOCATION = "ve9EPM428h8vShlRW1KT"
GHL_OPTIONS = {"pipeline_id": "VDm7RPYC2GLUvdpKmBfC", "stage_id": "7915dedc-8f18-44d5-8bc3-77c04e994a10"}
PIPEDRIVE_OPTIONS = {"pipeline_id": 1, "stage_id": 2}


def leads(n: int, options: Mapping[str, object]) -> list[LeadSnapshot]:
    return [
        qualified_lead(
            lead_id=f"lead-{i:04d}", email=f"lead{i}@example.com", phone=f"+3361234{i:04d}", options=options
        )
        for i in range(n)
    ]


async def test_gohighlevel_batch_writes_each_lead_once_and_keeps_each_answer_in_its_slot(ghl_fake):
    client = TestApiClient(
        "gohighlevel",
        routes=[Route("/", ghl_fake.base_url)],
        account={"locationId": LOCATION},
        headers={"Version": "2021-07-28"},
    )
    batch = leads(12, GHL_OPTIONS)
    batch[5] = qualified_lead(lead_id="lead-nobody", email=None, phone=None, options=GHL_OPTIONS)
    try:
        results = await GoHighLevelAdapter(client).upsert_leads(batch)
        assert isinstance(results[5], AdapterConfigError)
        ok = [r for r in results if isinstance(r, RemoteIds)]
        assert len(ok) == 11 and len({r.contact for r in ok}) == 11
        assert (len(ghl_fake.contacts), len(ghl_fake.opportunities), len(ghl_fake.notes)) == (11, 11, 11)
        for lead, result in zip(batch, results, strict=True):  # answers in the leads' order
            if isinstance(result, RemoteIds):
                assert ghl_fake.contacts[result.contact]["email"] == lead.email
        with pytest.raises(ValueError):
            await GoHighLevelAdapter(client).upsert_leads(leads(51, GHL_OPTIONS))
    finally:
        await client.aclose()


async def test_pipedrive_batch_outage_is_raised_once_and_a_retry_writes_each_lead_once(pipedrive_fake):
    client = TestApiClient("pipedrive", routes=[Route("/", pipedrive_fake.base_url)])
    batch = leads(6, PIPEDRIVE_OPTIONS)
    adapter = PipedriveAdapter(client)
    try:
        pipedrive_fake.fail_paths["/api/v2/persons"] = [503] * 100  # every lead stops at its person
        with pytest.raises(ProviderError) as caught:
            await adapter.upsert_leads(batch)
        assert caught.value.retryable
        pipedrive_fake.fail_paths.clear()
        results = await adapter.upsert_leads(batch)
        assert all(isinstance(r, RemoteIds) for r in results)
        assert (len(pipedrive_fake.persons), len(pipedrive_fake.deals), len(pipedrive_fake.notes)) == (
            6,
            6,
            6,
        )
    finally:
        await client.aclose()


async def test_upsert_each_caps_the_leads_in_flight_and_raises_what_is_not_an_integration_error():
    running = peak = 0

    async def upsert(lead) -> RemoteIds:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        if lead.lead_id == "lead-0003":
            raise ProviderError("refused", status=400)
        return RemoteIds(contact=lead.lead_id)

    results = await upsert_each(upsert, leads(10, {}), concurrency=3)
    assert peak == 3
    assert isinstance(results[3], IntegrationError) and results[0] == RemoteIds(contact="lead-0000")

    async def broken(lead) -> RemoteIds:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        await upsert_each(broken, leads(2, {}), concurrency=2)
    with pytest.raises(ValueError):
        await upsert_each(upsert, [], concurrency=0)


async def test_the_shared_pool_keeps_no_cookie_between_tenants():
    seen: list[str | None] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        cookie = next((line for line in head.split("\r\n") if line.lower().startswith("cookie:")), None)
        seen.append(cookie)
        writer.write(
            b"HTTP/1.1 200 OK\r\nSet-Cookie: session=tenant-a; Path=/\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\n{}"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    http = http_pool(max_connections=2, timeout_s=5.0, allow_private=True)
    try:
        first = await http.get(f"http://127.0.0.1:{port}/a")
        assert first.headers["set-cookie"].startswith("session=")
        await http.get(f"http://127.0.0.1:{port}/b")
        assert seen == [None, None] and len(http.cookies) == 0
    finally:
        await http.aclose()
        server.close()
        await server.wait_closed()


def test_a_sliding_window_says_when_a_whole_batch_of_requests_fits():
    clock = ManualClock(0.0)
    window = SlidingWindow(5, 60.0, clock=clock, slots=60)
    for _ in range(3):
        assert window.try_acquire() == 0.0
        clock.advance(10.0)
    # 3 taken at 0, 10, 20 s; now 30 s: 2 left
    assert window.wait_s(clock.now(), 2) == 0.0
    assert 30.0 <= window.wait_s(clock.now(), 3) <= 31.0  # the request of 0 s must leave
    assert 40.0 <= window.wait_s(clock.now(), 4) <= 41.0  # and the one of 10 s
    assert window.wait_s(clock.now(), 50) == window.wait_s(clock.now(), 5)  # at most the window
    gate = RateGate(
        (RateLimit(requests=5, per_s=86400.0, scope="org", doc="test"),), RateLimitHeaders(), clock=clock
    )
    gate.limiter = window
    assert 30.0 <= gate.wait_s(3) <= 31.0
    paced = RateGate(
        (RateLimit(requests=100, per_s=10.0, scope="account", doc="test"),), RateLimitHeaders(), clock=clock
    )
    assert paced.wait_s(100) == 0.0  # a short window only paces: nothing to wait for up front
    paced.pause(7.0)
    assert paced.wait_s(1) == 7.0
