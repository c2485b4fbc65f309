"""The :class:`crm_sync.base.ApiClient` of an outgoing-webhook connection.

The catalog's ``webhook`` entry has no HTTP API (the receiver is any URL the tenant gives), so
:class:`crm_sync.client.ConnectionClients` cannot make its client; this one posts to the
connection's ``url`` over the process's shared ``httpx.AsyncClient`` and maps answers as the
authorised client does: 401 -> :class:`AuthError`, 429/5xx/network -> retryable
:class:`ProviderError` (with ``Retry-After``), other 4xx -> :class:`ProviderError`. The
signature is the adapter's (:class:`crm_sync.crm.WebhookAdapter`); retries are the sync queue's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from crm_sync.base import ApiClient, AuthError, ProviderError
from kernel.http import parse_retry_after

__all__ = ["WebhookClient"]


class WebhookClient(ApiClient):
    """See the module docstring. ``url`` is the receiver (``account["url"]`` for the adapter)."""

    def __init__(self, http: httpx.AsyncClient, *, url: str) -> None:
        self.provider = "webhook"
        self.account: Mapping[str, Any] = {"url": url}
        self._http = http

    def __repr__(self) -> str:
        return "WebhookClient(provider='webhook')"

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
        """Send to ``path`` (a full URL: the adapter passes the receiver's)."""
        url = path if path.startswith(("http://", "https://")) else str(self.account["url"])
        try:
            if data is not None:
                resp = await self._http.request(method, url, params=params, data=data, headers=headers)
            else:
                resp = await self._http.request(method, url, params=params, json=json, headers=headers)
        except httpx.HTTPError as exc:
            raise ProviderError(f"webhook: request failed ({type(exc).__name__})", retryable=True) from None
        if resp.status_code == 401:
            raise AuthError("webhook: the receiver answered 401")
        if resp.status_code >= 400:
            raise ProviderError(
                f"webhook: HTTP {resp.status_code}",
                status=resp.status_code,
                retryable=resp.status_code == 429 or resp.status_code >= 500,
                retry_after_s=parse_retry_after(resp.headers),
                body=resp.text,
            )
        return resp
