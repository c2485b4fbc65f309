"""The ingest benchmark's load generator (benchmarks/load.py) against a real server on loopback:
every request answered and timed, keep-alive connections reused, a non-200 answer an error."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import uvicorn
from litestar import Litestar, Request, post

from benchmarks.load import LoadError, closed_loop, encode_requests, open_loop

SEEN: list[tuple[bytes, str | None]] = []


@post("/echo", status_code=200)
async def echo(request: Request) -> dict[str, int]:
    """Record the body and the header the generator sent; answer with the body's length."""
    body = await request.body()
    SEEN.append((body, request.headers.get("x-test")))
    return {"n": len(body)}


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    SEEN.clear()
    server = uvicorn.Server(
        uvicorn.Config(Litestar(route_handlers=[echo]), host="127.0.0.1", port=0, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


async def test_closed_loop_sends_every_request_and_times_each(base_url: str) -> None:
    bodies = [(json.dumps({"i": i}).encode(), {"x-test": f"t{i}"}) for i in range(40)]
    rps, latencies, cpu = await closed_loop(
        f"{base_url}/echo", encode_requests(f"{base_url}/echo", bodies), 4
    )
    assert len(latencies) == 40 and all(0 < s < 5 for s in latencies)
    assert rps > 0 and cpu > 0
    assert sorted(SEEN) == sorted((b, h["x-test"]) for b, h in bodies)  # bodies and headers intact


async def test_open_loop_keeps_its_rate_and_reports_failures(base_url: str) -> None:
    bodies: list[tuple[bytes, dict[str, str]]] = [(b"{}", {}) for _ in range(20)]
    achieved, latencies = await open_loop(
        f"{base_url}/echo", encode_requests(f"{base_url}/echo", bodies), 200.0
    )
    assert len(latencies) == 20 and all(s != float("inf") for s in latencies)
    assert 100 < achieved <= 210  # 20 requests scheduled over 0.1 s
    missing = encode_requests(f"{base_url}/nowhere", bodies[:3])
    _, failed = await open_loop(f"{base_url}/nowhere", missing, 200.0)
    assert failed == [float("inf")] * 3  # a 404 is a failed request


async def test_closed_loop_refuses_an_answer_other_than_200(base_url: str) -> None:
    requests = encode_requests(f"{base_url}/nowhere", [(b"{}", {})])
    with pytest.raises(LoadError, match="answered 404"):
        await closed_loop(f"{base_url}/nowhere", requests, 1)
