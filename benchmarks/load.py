"""A lean HTTP/1.1 load generator for the ingest benchmark (benchmarks/run.py).

The benchmark's server and its load generator share the machine's cores, so the generator's own
CPU per request is part of what the figures measure. aiohttp's client spent 280-440 us of CPU per
request here (measured with ``time.process_time``), more than the bare Litestar endpoint it
loads (about 230 us): on two shared cores, the client then set much of the pace of both targets,
and the throughput ratio drifted towards 1 whatever the servers cost. This client keeps
connections alive, writes each request as one pre-encoded buffer (``POST`` with
``Content-Length``) and reads the answer's status, ``Content-Length`` and body with no more
parsing than that: a few tens of microseconds a request. It speaks only to the benchmark's own
servers (uvicorn on 127.0.0.1, answers with ``Content-Length``, no chunked bodies).

:func:`closed_loop` keeps ``concurrency`` requests in flight (each connection sends its next
request when the last one is answered); :func:`open_loop` sends at a fixed rate whatever the
answers take, and measures latency from each request's scheduled start (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import cast
from urllib.parse import urlsplit

__all__ = ["LoadError", "closed_loop", "encode_requests", "open_loop"]

#: Answers larger than this (bytes of head or body) are refused: the targets answer a few bytes.
MAX_ANSWER_BYTES = 1 << 20


class LoadError(RuntimeError):
    """The target answered something this client does not read, or closed the connection."""


def encode_requests(url: str, requests: Sequence[tuple[bytes, dict[str, str]]]) -> list[bytes]:
    """Each ``(body, headers)`` as the bytes of one HTTP/1.1 ``POST`` to ``url`` (keep-alive)."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    encoded = []
    for body, headers in requests:
        lines = [f"POST {path} HTTP/1.1", f"host: {parts.netloc}", f"content-length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        encoded.append(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    return encoded


class _Connection(asyncio.Protocol):
    """One keep-alive connection: :meth:`send` writes a request and waits for its answer."""

    def __init__(self) -> None:
        self.transport: asyncio.WriteTransport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)  # uvloop's subclasses neither

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        try:
            answer = self._answer()
        except LoadError as exc:
            self.waiter.set_exception(exc)
            return
        if answer is not None:
            self.waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(LoadError(f"connection closed: {exc!r}"))

    def _answer(self) -> tuple[int, bytes] | None:
        """``(status, body)`` once a whole answer is buffered, else ``None``."""
        end = self.buffer.find(b"\r\n\r\n", 0, MAX_ANSWER_BYTES)
        if end < 0:
            if len(self.buffer) > MAX_ANSWER_BYTES:
                raise LoadError("answer head too large")
            return None
        lines = bytes(self.buffer[:end]).split(b"\r\n")
        status_line = lines[0].split(b" ", 2)
        if len(status_line) < 2 or not status_line[1].isdigit():
            raise LoadError(f"not an HTTP answer: {lines[0][:80]!r}")
        length = -1
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip()) if value.strip().isdigit() else -1
        if not 0 <= length <= MAX_ANSWER_BYTES:
            raise LoadError("answer without a Content-Length this client reads")
        total = end + 4 + length
        if len(self.buffer) < total:
            return None
        body = bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        return int(status_line[1]), body

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Write ``request``; returns the answer's ``(status, body)``. Raises :class:`LoadError`."""
        if self.transport is None:
            raise LoadError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


async def _connect(host: str, port: int) -> _Connection:
    _, connection = await asyncio.get_running_loop().create_connection(_Connection, host, port)
    return connection


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


async def closed_loop(url: str, requests: list[bytes], concurrency: int) -> tuple[float, list[float], float]:
    """Send every request over ``concurrency`` keep-alive connections, each its next request when
    the last is answered; returns (requests/s, latencies in seconds, this process's CPU seconds per
    request). Raises :class:`LoadError` on any answer other than 200."""
    host, port = _address(url)
    connections = [await _connect(host, port) for _ in range(concurrency)]
    queue = list(reversed(requests))
    latencies: list[float] = []

    async def worker(connection: _Connection) -> None:
        while queue:
            request = queue.pop()
            start = time.perf_counter()
            status, body = await connection.send(request)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                raise LoadError(f"{url} answered {status}: {body[:200]!r}")

    cpu, start = time.process_time(), time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in connections))
    finally:
        for connection in connections:
            if connection.transport is not None:
                connection.transport.close()
    elapsed = time.perf_counter() - start
    return len(requests) / elapsed, latencies, (time.process_time() - cpu) / len(requests)


async def open_loop(
    url: str, requests: list[bytes], rate: float, *, connections: int = 64
) -> tuple[float, list[float]]:
    """Send ``requests`` at ``rate`` per second whatever the answers take; returns (achieved
    requests/s, latencies in seconds from each request's SCHEDULED start, ``inf`` for a failed
    one). ``connections`` keep-alive connections are opened before the first request; a request
    finding none idle opens another (its connect time counts in its latency)."""
    host, port = _address(url)
    idle = [await _connect(host, port) for _ in range(connections)]
    opened = list(idle)
    latencies: list[float] = []

    async def one(scheduled: float, request: bytes) -> None:
        try:
            connection = idle.pop() if idle else await _connect(host, port)
            if connection not in opened:
                opened.append(connection)
            status, _ = await connection.send(request)
            idle.append(connection)
            ok = status == 200
        except (LoadError, OSError):
            ok = False
        # perf_counter, not loop.time(): uvloop's clock counts whole milliseconds
        latencies.append(time.perf_counter() - scheduled if ok else float("inf"))

    # one dispatcher starts each request at its time (creating every task up front took longer
    # than the head start on a loaded machine, and the first requests were charged for it)
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter() + 0.01
    try:
        for i, request in enumerate(requests):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(scheduled, request)))
        await asyncio.gather(*tasks)
    finally:
        for connection in opened:
            if connection.transport is not None:
                connection.transport.close()
    return len(requests) / (time.perf_counter() - start), latencies
