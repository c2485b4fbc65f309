"""The authorised clients' pool (:func:`crm_sync.client.http_pool` over
:class:`crm_sync.transport.PooledTransport`): network failures come out as ``httpx.HTTPError`` (the
client turns those into retryable provider errors), a server's bytes come back as httpx responses,
and a pool outlives the event loop it was first used on."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest

from crm_sync.client import http_pool
from crm_sync.transport import PooledTransport
from kernel.egress import EgressRefusedError


async def _server(handler: Any) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            body = await reader.readexactly(length) if length else b""
            reply = b'{"echo": %d}' % len(body)
            writer.write(
                b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-RateLimit-Remaining: 7\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(reply), reply)
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def test_an_answer_comes_back_as_an_httpx_response_with_its_headers() -> None:
    server, url = await _server(_answer)
    http = http_pool(max_connections=2, timeout_s=5.0, allow_private=True)
    try:
        resp = await http.post(f"{url}/contacts/upsert", json={"email": "camille@example.com"})
        assert resp.status_code == 201
        assert resp.headers["x-ratelimit-remaining"] == "7"
        assert resp.json() == {"echo": len(b'{"email":"camille@example.com"}')}
        assert resp.request.headers["content-type"] == "application/json"
    finally:
        await http.aclose()
        server.close()
        await server.wait_closed()


async def test_a_refused_connection_is_an_httpx_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    http = http_pool(max_connections=2, timeout_s=5.0, allow_private=True)
    try:
        with pytest.raises(httpx.HTTPError):
            await http.get(f"http://127.0.0.1:{port}/ping")
    finally:
        await http.aclose()


async def test_a_server_that_hangs_up_or_stalls_is_an_httpx_error() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(2.0)
        writer.close()

    closing, closing_url = await _server(hang_up)
    stalling, stalling_url = await _server(stall)
    http = http_pool(max_connections=2, timeout_s=0.3, allow_private=True)
    try:
        with pytest.raises(httpx.HTTPError):
            await http.get(f"{closing_url}/ping")
        with pytest.raises(httpx.TimeoutException):
            await http.get(f"{stalling_url}/ping")
    finally:
        await http.aclose()
        for server in (closing, stalling):
            server.close()
            await server.wait_closed()


def test_one_pool_serves_one_event_loop_after_another() -> None:
    transport = PooledTransport(max_connections=1, allow_private=True)
    http = httpx.AsyncClient(transport=transport, trust_env=False, timeout=5.0)

    async def once() -> int:
        server, url = await _server(_answer)
        try:
            return (await http.get(f"{url}/ping")).status_code
        finally:
            await transport.aclose()
            server.close()
            await server.wait_closed()

    assert asyncio.run(once()) == 201
    assert asyncio.run(once()) == 201  # a new loop: a new aiohttp session, not the closed one's
    with pytest.raises(ValueError):
        PooledTransport(max_connections=0)


async def test_the_pool_dials_no_loopback_address_unless_allowed_and_no_metadata_address_ever() -> None:
    """By IP literal (aiohttp does not resolve those) and by name (the resolver checks what it
    returns, which is what aiohttp dials): refused before anything is sent."""
    reached: list[str] = []  # one entry per connection the server accepted

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reached.append(str(writer.get_extra_info("peername")))
        await _answer(reader, writer)

    server, url = await _server(record)
    guarded = http_pool(max_connections=2, timeout_s=5.0)
    allowed = http_pool(max_connections=2, timeout_s=5.0, allow_private=True)
    try:
        for target in (url, url.replace("127.0.0.1", "localhost")):
            with pytest.raises(EgressRefusedError, match="private or loopback"):
                await guarded.get(f"{target}/ping")
        assert reached == []
        with pytest.raises(EgressRefusedError, match="link-local"):
            await allowed.get("http://169.254.169.254/latest/meta-data/")
        assert (await allowed.get(f"{url}/ping")).status_code == 201
        assert len(reached) == 1
    finally:
        await guarded.aclose()
        await allowed.aclose()
        server.close()
        await server.wait_closed()
