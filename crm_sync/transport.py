"""The authorised clients' HTTP transport: httpx's API over aiohttp's connection pool.

httpx's own transport (httpcore over anyio, h11 in pure Python) cost about 2-3 ms of CPU per
request on the CRM benchmark (``benchmarks/crm_sync.py``): per request five ``httpx.Request``-
sized header objects, h11's header validation, and for every pooled connection a readiness check
that builds anyio's socket attribute table (a ``getpeername`` system call each). GoHighLevel and
Pipedrive take 4-5 requests per lead, so the client was most of a lead's CPU. aiohttp parses
HTTP in C and keeps its sockets on asyncio protocols, so the same request costs about half; the
``httpx-aiohttp`` package (kept by an httpx maintainer) adapts it to httpx's transport interface,
so adapters, the authorised client and the tests keep httpx's ``Request``/``Response``.

:class:`PooledTransport` adds what the shared pool of every tenant needs: no cookie jar (a CRM
account's cookies never ride along with another's requests), no proxy or certificate settings
from the environment, every connection kept alive up to ``max_connections``, and one aiohttp
session per event loop (an aiohttp session belongs to the loop it was made on). aiohttp errors
that ``httpx-aiohttp`` does not translate come out as :class:`httpx.TransportError`, so callers
catch ``httpx.HTTPError`` alone.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["PooledTransport"]


class PooledTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one aiohttp pool of ``max_connections`` connections (all kept
    alive for ``keepalive_s`` seconds once idle) per event loop, without cookies or environment
    proxies. Certificates are checked with httpx's default context (certifi), as before.

    Raises from :meth:`handle_async_request` only :class:`httpx.HTTPError` subclasses for
    network failures (connect, read, timeouts, a server that closed the connection)."""

    def __init__(self, *, max_connections: int = 32, keepalive_s: float = 5.0) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = max_connections
        self.keepalive_s = keepalive_s
        self._ssl: ssl.SSLContext = httpx.create_ssl_context(trust_env=False)
        self._bound: tuple[asyncio.AbstractEventLoop, AiohttpTransport] | None = None

    def __repr__(self) -> str:
        return f"PooledTransport(max_connections={self.max_connections})"

    def _transport(self) -> AiohttpTransport:
        loop = asyncio.get_running_loop()
        if self._bound is None or self._bound[0] is not loop:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.max_connections,
                    keepalive_timeout=self.keepalive_s,
                    ssl=self._ssl,
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
            self._bound = (loop, AiohttpTransport(verify=self._ssl, trust_env=False, client=session))
        return self._bound[1]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through this loop's aiohttp pool (see the class docstring)."""
        try:
            return await self._transport().handle_async_request(request)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise httpx.TransportError(f"{type(exc).__name__}: the request failed") from exc

    async def aclose(self) -> None:
        """Close this loop's pool (a pool of a loop that has ended is left to the collector)."""
        bound, self._bound = self._bound, None
        if bound is not None and bound[0] is asyncio.get_running_loop():
            await bound[1].aclose()
