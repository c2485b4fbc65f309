"""The authorised clients' shared HTTP pool keeps every connection it opens alive, so a burst as
wide as the worker's concurrency reuses its connections instead of opening new TCP (and TLS)
connections per request (httpx's default keeps only 20 of 100)."""

from __future__ import annotations

import asyncio
import contextlib

from app.composition import Runtime


class CountingServer:
    """A keep-alive HTTP/1.1 server on 127.0.0.1 that counts the connections it accepted and
    holds each answer until ``width`` requests are in (so a burst of ``width`` requests needs
    ``width`` connections at once; 5 s at most)."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.connections = 0
        self._waiting = 0
        self._all_in = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    return
                self._waiting += 1
                if self._waiting >= self.width:
                    self._all_in.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._all_in.wait(), timeout=5.0)
                self._waiting -= 1
                if self._waiting == 0:
                    self._all_in.clear()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


async def test_a_burst_as_wide_as_the_pool_reuses_its_connections(rt: Runtime) -> None:
    assert rt.connections is not None
    http = rt.connections.clients.http
    width = 30  # above httpx's default 20 kept-alive connections, within our pool of 32
    server = CountingServer(width)
    url = await server.start()
    try:

        async def burst() -> None:
            answers = await asyncio.gather(*(http.get(f"{url}/ping") for _ in range(width)))
            assert all(a.status_code == 200 for a in answers)

        await burst()
        opened = server.connections
        assert opened == width
        await burst()
        await burst()
        assert server.connections == opened  # every connection was kept and reused
    finally:
        await server.stop()
