"""The authorised clients' HTTP transport: httpx's API over aiohttp's connection pool.

httpx's own transport (httpcore over anyio, h11 in pure Python) cost about 2-3 ms of CPU per
request on the CRM benchmark (``benchmarks/crm_sync.py``): per request five ``httpx.Request``-
sized header objects, h11's header validation, and for every pooled connection a readiness check
that builds anyio's socket attribute table (a ``getpeername`` system call each). GoHighLevel and
Pipedrive take 4-5 requests per lead, so the client was most of a lead's CPU. aiohttp parses
HTTP in C and keeps its sockets on asyncio protocols, so the same request costs about half; the
``httpx-aiohttp`` package (kept by an httpx maintainer) adapts it to httpx's transport interface,
so adapters, the authorised client and the tests keep httpx's ``Request``/``Response``.

The pool is guarded like the client for URLs a tenant types in (``kernel/egress.py``): a
connection's ``base_url`` is the tenant's to set, so a request may not reach link-local (cloud
metadata), multicast or reserved addresses, nor private and loopback ones unless the install
allows them (``EGRESS_ALLOW_PRIVATE``). The check runs on the addresses the connection dials:
host names go through :class:`GuardedResolver` (aiohttp connects to what it returns, so a DNS
answer cannot change between the check and the connection), IP literals (which aiohttp does not
resolve) are checked before the request.

:class:`PooledTransport` adds what the shared pool of every tenant needs: no cookie jar (a CRM
account's cookies never ride along with another's requests), no proxy or certificate settings
from the environment, every connection kept alive up to ``max_connections``, and one aiohttp
session per event loop (an aiohttp session belongs to the loop it was made on). aiohttp errors
that ``httpx-aiohttp`` does not translate come out as :class:`httpx.TransportError`, so callers
catch ``httpx.HTTPError`` alone.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from httpx_aiohttp import AiohttpTransport

from kernel.egress import check_addresses

__all__ = ["GuardedResolver", "PooledTransport"]


def _check(host: str, address: str, *, allow_private: bool) -> None:
    """Raise :class:`EgressRefusedError` when ``address`` (of ``host``) may not be dialled."""
    check_addresses(host, [ipaddress.ip_address(address.split("%", 1)[0])], allow_private=allow_private)


class GuardedResolver(AbstractResolver):
    """aiohttp's default resolver, refusing a host any of whose addresses
    :func:`kernel.egress.refusal` refuses (raises :class:`EgressRefusedError`; OS resolution
    errors pass through as aiohttp turns them into connection errors)."""

    def __init__(self, *, allow_private: bool) -> None:
        self._inner = DefaultResolver()
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The addresses of ``host`` (aiohttp's ``ResolveResult`` dicts), all of them allowed."""
        results = await self._inner.resolve(host, port, family)
        for result in results:
            _check(host, result["host"], allow_private=self.allow_private)
        return results

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()


class PooledTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one aiohttp pool of ``max_connections`` connections (all kept
    alive for ``keepalive_s`` seconds once idle) per event loop, without cookies or environment
    proxies. Certificates are checked with httpx's default context (certifi), as before. Private
    and loopback addresses are dialled only when ``allow_private`` (see the module docstring).

    Raises from :meth:`handle_async_request` :class:`EgressRefusedError` for a refused address
    (before anything is sent), else only :class:`httpx.HTTPError` subclasses for network
    failures (connect, read, timeouts, a server that closed the connection)."""

    def __init__(
        self, *, max_connections: int = 32, keepalive_s: float = 5.0, allow_private: bool = False
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = max_connections
        self.keepalive_s = keepalive_s
        self.allow_private = allow_private
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
                    resolver=GuardedResolver(allow_private=self.allow_private),
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
            self._bound = (loop, AiohttpTransport(verify=self._ssl, trust_env=False, client=session))
        return self._bound[1]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through this loop's aiohttp pool (see the class docstring)."""
        host = request.url.host
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            pass  # a name: checked by the resolver
        else:
            _check(host, host, allow_private=self.allow_private)
        try:
            return await self._transport().handle_async_request(request)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise httpx.TransportError(f"{type(exc).__name__}: the request failed") from exc

    async def aclose(self) -> None:
        """Close this loop's pool (a pool of a loop that has ended is left to the collector)."""
        bound, self._bound = self._bound, None
        if bound is not None and bound[0] is asyncio.get_running_loop():
            await bound[1].aclose()
