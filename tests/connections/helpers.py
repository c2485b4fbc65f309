"""Driving the authorize step the way a browser would (the test server approves at once)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from crm_sync.models import Connection
from crm_sync.oauth import OAuthService


async def authorize(url: str) -> tuple[str, str]:
    """Follow the authorize URL to its redirect; returns ``(state, code)``."""
    async with httpx.AsyncClient(trust_env=False) as http:
        resp = await http.get(url, follow_redirects=False)
    assert resp.status_code == 302, resp.text
    query = parse_qs(urlsplit(resp.headers["location"]).query)
    return query["state"][0], query["code"][0]


async def connect(oauth: OAuthService, tenant_id: str, redirect_uri: str) -> Connection:
    """The whole connect step: begin, authorize, complete."""
    url = await oauth.begin(tenant_id, "gohighlevel", redirect_uri)
    state, code = await authorize(url)
    return await oauth.complete(state, code, provider="gohighlevel")
