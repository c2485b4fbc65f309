"""A test-only :class:`~crm_sync.base.ApiClient`: httpx with a fixed bearer token and base URL(s).

It does what the real client's contract says and nothing more: resolves ``path`` against a base
URL (several routes by path prefix, since Prism serves one spec per process and without the
spec's server prefix), adds ``Authorization: Bearer`` and any fixed headers (GoHighLevel's
``Version``), and turns an answer of 400 or more into :class:`AuthError` (401) or
:class:`ProviderError` (``retryable`` for 429, 5xx and network errors, ``retry_after_s`` from
``Retry-After``). No refresh, no retries, no rate limiting. Every exchange is kept in ``calls``.

``stubs`` answer chosen ``(method, path)`` pairs locally with a fixed JSON body (status 200, marked
``stubbed`` in ``calls``): Prism always answers a search with the spec's example (a hit), so a test
that needs the "nothing found" branch stubs that one read while every write still goes to Prism.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from crm_sync.base import AuthError, ProviderError
from kernel.http import parse_retry_after

__all__ = ["TEST_TOKEN", "Call", "Route", "TestApiClient"]

TEST_TOKEN = "test-token"


@dataclass(frozen=True)
class Route:
    """Paths starting with ``prefix`` go to ``base_url``; ``strip`` removes the prefix first."""

    prefix: str
    base_url: str
    strip: bool = False


@dataclass
class Call:
    method: str
    path: str
    params: Mapping[str, Any] | None
    json: Any
    status: int
    response: Any
    stubbed: bool = False


class TestApiClient:
    """See the module docstring. ``routes`` are tried in order; the first whose prefix matches wins."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        provider: str,
        *,
        routes: Sequence[Route],
        token: str = TEST_TOKEN,
        account: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        stubs: Mapping[tuple[str, str], Any] | None = None,
    ) -> None:
        self.provider = provider
        self.account: Mapping[str, Any] = dict(account or {})
        self._routes = list(routes)
        self._token = token
        self._headers = dict(headers or {})
        self._http = httpx.AsyncClient(timeout=timeout_s)
        self.calls: list[Call] = []
        self.stubs: dict[tuple[str, str], Any] = dict(stubs or {})

    def __repr__(self) -> str:
        return f"TestApiClient(provider={self.provider!r}, token=<redacted>)"

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        for route in self._routes:
            if path.startswith(route.prefix):
                rest = path[len(route.prefix) :] if route.strip else path
                return route.base_url.rstrip("/") + "/" + rest.lstrip("/")
        raise AssertionError(f"no route for {path}")

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        if (method, path) in self.stubs:
            payload = self.stubs[(method, path)]
            self.calls.append(Call(method, path, params, json, 200, payload, stubbed=True))
            return httpx.Response(200, json=payload)
        merged = {"Authorization": f"Bearer {self._token}", "Accept": "application/json", **self._headers}
        merged.update(headers or {})
        try:
            response = await self._http.request(
                method, self._url(path), params=params, json=json, data=data, headers=merged
            )
        except httpx.HTTPError as exc:
            raise ProviderError(f"network error: {type(exc).__name__}", retryable=True) from None
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        self.calls.append(Call(method, path, params, json, response.status_code, body))
        if response.status_code == 401:
            raise AuthError(f"{self.provider} answered 401")
        if response.status_code >= 400:
            raise ProviderError(
                f"{self.provider} answered {response.status_code} to {method} {path}",
                status=response.status_code,
                retryable=response.status_code == 429 or response.status_code >= 500,
                retry_after_s=parse_retry_after(response.headers),
                body=response.text,
            )
        return response

    def methods(self) -> list[str]:
        """``["POST /contacts/upsert", ...]`` for every call so far (query strings left out)."""
        return [f"{c.method} {c.path}" for c in self.calls]

    async def aclose(self) -> None:
        await self._http.aclose()
