"""Outbound HTTP to addresses a tenant typed in (a handoff webhook, a generic CRM webhook): an
``httpx`` transport that refuses to connect where a request forged through LeadWarm could do harm.

Server-side request forgery (OWASP's SSRF prevention cheat sheet, "Application layer: case 2"):
a tenant's URL could name the cloud metadata service (``169.254.169.254``), another internal
host or LeadWarm itself. The check runs when the socket is opened, on the address actually
connected to (the host is resolved once, checked, then that very address is dialled), so a DNS
answer that changes between a check and the connection (DNS rebinding) cannot slip through. TLS
still verifies the certificate against the URL's host name (httpcore passes it as the SNI).

Always refused: link-local (the metadata services), multicast, unspecified and reserved
addresses. Private and loopback addresses are refused unless ``allow_private`` (an install whose
receivers live on its own network, or tests on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from kernel.errors import LeadWarmError

__all__ = ["EgressRefusedError", "check_addresses", "guarded_transport", "refusal"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class EgressRefusedError(LeadWarmError):
    """A connection LeadWarm will not open: the host resolves to a refused address (the message
    names the host and why, never a credential)."""


def refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why ``address`` may not be dialled, or ``None`` when it may. IPv4-mapped IPv6 addresses
    are judged as the IPv4 address they carry."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_link_local:
        return "link-local (cloud metadata) address"
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "multicast, unspecified or reserved address"
    if not allow_private and (address.is_loopback or address.is_private or not address.is_global):
        return "private or loopback address"
    return None


def check_addresses(host: str, addresses: Iterable[IPAddress], *, allow_private: bool) -> None:
    """Raise :class:`EgressRefusedError` (naming ``host`` and why) when :func:`refusal` refuses
    any of the addresses ``host`` resolved to; the one rule of every guarded client."""
    for address in addresses:
        why = refusal(address, allow_private=allow_private)
        if why is not None:
            raise EgressRefusedError(f"refused to connect to {host!r}: {why}")


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the check above at ``connect_tcp``."""

    def __init__(self, *, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve ``host``, refuse it if any of its addresses is refused, dial the first one.

        Raises :class:`EgressRefusedError` (refused address), ``httpcore.ConnectError``
        (unresolvable host)."""
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
            )
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {type(exc).__name__}") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host!r}")
        check_addresses(host, addresses, allow_private=self._allow_private)
        dial = str(addresses[0])
        return await self._inner.connect_tcp(
            dial, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Unix sockets are never dialled for a tenant's URL. Raises :class:`EgressRefusedError`."""
        raise EgressRefusedError("refused to connect to a unix socket")

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` (httpcore's retry pauses)."""
        await self._inner.sleep(seconds)


def guarded_transport(*, allow_private: bool, limits: httpx.Limits | None = None) -> httpx.AsyncHTTPTransport:
    """An ``httpx`` transport whose connections pass :func:`refusal` (module docstring).

    Use it for URLs a tenant supplies; ``trust_env`` is off (no proxy from the environment would
    bypass the check). A refused connection raises :class:`EgressRefusedError` from the request."""
    limits = limits or httpx.Limits(max_connections=32, max_keepalive_connections=8)
    transport = httpx.AsyncHTTPTransport(trust_env=False, limits=limits)
    # httpx builds its pool without a network-backend option; this is the same pool with ours.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_GuardedBackend(allow_private=allow_private),
    )
    return transport
