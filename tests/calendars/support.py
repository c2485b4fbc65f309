"""Test-only helpers for the calendar providers: a plain :class:`~crm_sync.base.ApiClient` over
httpx (fixed bearer token, fixed base URL) and a threaded JSON server for stateful fakes."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from crm_sync.base import AuthError, ProviderError
from kernel.http import parse_retry_after

__all__ = ["FakeRequest", "FakeServer", "TestApiClient"]


class TestApiClient:
    """An :class:`ApiClient` with a fixed bearer token and base URL (``routes`` sends a path prefix
    to another base URL); no refresh, no retries.

    4xx/5xx become :class:`ProviderError` (401 :class:`AuthError`), a network error
    :class:`ProviderError` with status 0 and ``retryable``; ``extra_headers`` go on every request
    (a provider's version header, Prism's ``Prefer``)."""

    __test__ = False

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        token: str = "test-token",  # noqa: S107 - a test token
        account: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        routes: Mapping[str, str] | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self.provider = provider
        self.account: Mapping[str, Any] = dict(account or {})
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.extra_headers = dict(extra_headers or {})
        self._timeout = timeout_s
        self.routes = dict(routes or {})
        self.sent: list[tuple[str, str]] = []
        #: ``(method, path prefix)`` -> extra headers for matching requests only (Prism's ``Prefer``)
        self.headers_for: dict[tuple[str, str], dict[str, str]] = {}
        #: ``(method, path prefix)`` -> how many matching requests fail with a network error
        self.down: dict[tuple[str, str], int] = {}

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
        base = next((b for prefix, b in self.routes.items() if path.startswith(prefix)), self.base_url)
        url = path if path.startswith(("http://", "https://")) else base.rstrip("/") + path
        all_headers = {"authorization": f"Bearer {self._token}", **self.extra_headers, **dict(headers or {})}
        for (m, prefix), extra in self.headers_for.items():
            if m == method and path.startswith(prefix):
                all_headers.update(extra)
        self.sent.append((method, url))
        for key, count in self.down.items():
            if count > 0 and key[0] == method and path.startswith(key[1]):
                self.down[key] = count - 1
                raise ProviderError(f"{self.provider}: network error ConnectError", retryable=True)
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.request(
                    method, url, params=params, json=json, data=data, headers=all_headers
                )
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"{self.provider}: network error {type(exc).__name__}", retryable=True
            ) from exc
        if response.status_code == 401:
            raise AuthError(f"{self.provider}: 401")
        if response.status_code >= 400:
            raise ProviderError(
                f"{self.provider}: HTTP {response.status_code}",
                status=response.status_code,
                retryable=response.status_code == 429 or response.status_code >= 500,
                retry_after_s=parse_retry_after(response.headers),
                body=response.text,
            )
        return response


@dataclass
class FakeRequest:
    """What a fake's handler sees: method, path (no query), query (first values), headers (lower
    case), parsed JSON body (or ``None``)."""

    method: str
    path: str
    query: dict[str, str]
    query_all: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


Handler = Callable[[FakeRequest], tuple[int, Any]]


@dataclass
class FakeServer:
    """A threaded HTTP server on 127.0.0.1:0 that hands each request to ``handle`` and answers its
    ``(status, json_body)``; records every request in ``requests``. ``fail_next`` makes the next
    matching requests answer 503 (``(method, path_prefix)`` -> count)."""

    handle: Handler
    requests: list[FakeRequest] = field(default_factory=list)
    fail_next: dict[tuple[str, str], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        outer = self

        class _H(BaseHTTPRequestHandler):
            def _do(self) -> None:
                split = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("content-length", "0") or 0))
                query_all = parse_qs(split.query)
                req = FakeRequest(
                    method=self.command,
                    path=split.path,
                    query={k: v[0] for k, v in query_all.items()},
                    query_all=query_all,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=json.loads(raw) if raw else None,
                )
                with outer.lock:
                    outer.requests.append(req)
                    status, body = 0, None
                    for (method, prefix), count in list(outer.fail_next.items()):
                        if count > 0 and method == req.method and req.path.startswith(prefix):
                            outer.fail_next[(method, prefix)] = count - 1
                            status, body = 503, {"error": "unavailable"}
                            break
                    if not status:
                        status, body = outer.handle(req)
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _do  # noqa: N815 - http.server names

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop the server and its thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
