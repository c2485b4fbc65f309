"""Code the catalog names for what its data cannot say: the ``test`` actions of providers without an
HTTP identity call. ``HOOKS`` is the registry :func:`crm_sync.catalog.check_catalog` checks."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiosmtplib
import httpx

from crm_sync.base import AuthError, IntegrationError, ProviderError
from crm_sync.models import Connection
from crm_sync.vault import Secret, Vault

__all__ = ["HOOKS", "HookContext", "sign_webhook", "smtp_imap_login", "webhook_ping"]


@dataclass(frozen=True, slots=True)
class HookContext:
    """What a hook gets: the connection, the vault to open its secrets, and an HTTP client."""

    connection: Connection
    vault: Vault
    http: httpx.AsyncClient

    def value(self, name: str) -> str | None:
        """A credential field in clear (secret or setting), or ``None``."""
        secret = self.connection.secret(self.vault, name)
        if secret is not None:
            return secret.reveal()
        raw = self.connection.settings.get(name)
        return None if raw is None else str(raw)


Hook = Callable[[HookContext], Awaitable[dict[str, Any]]]


async def smtp_imap_login(ctx: HookContext) -> dict[str, Any]:
    """Log in to the mailbox's SMTP server (and IMAP server when ``imap_host`` is set) with its
    username and password; sends nothing. ``smtp_security``: ``ssl`` (default on port 465),
    ``starttls`` (default otherwise) or ``none``; ``imap_security``: ``ssl`` (default) or ``none``.
    Returns ``{"smtp": "ok", "imap": "ok"|"skipped"}``.

    Raises:
        AuthError: a server refused the login. ProviderError: a server could not be reached.
    """
    user, password = ctx.value("username"), ctx.value("password")
    host = ctx.value("smtp_host")
    if not user or not password or not host:
        raise IntegrationError("smtp_imap needs username, password and smtp_host")
    port = int(ctx.value("smtp_port") or 587)
    security = ctx.value("smtp_security") or ("ssl" if port == 465 else "starttls")
    smtp = aiosmtplib.SMTP(
        hostname=host,
        port=port,
        use_tls=security == "ssl",
        start_tls=security == "starttls",
        timeout=15,
    )
    try:
        await smtp.connect()
        await smtp.login(user, password)
    except aiosmtplib.SMTPAuthenticationError:
        raise AuthError("smtp_imap: the SMTP server refused the login") from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise ProviderError(f"smtp_imap: SMTP failed ({type(exc).__name__})", retryable=True) from None
    finally:
        if smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()
    result: dict[str, Any] = {"smtp": "ok", "imap": "skipped"}
    imap_host = ctx.value("imap_host")
    if imap_host:
        await _imap_login(imap_host, ctx, user, password)
        result["imap"] = "ok"
    return result


async def _imap_login(host: str, ctx: HookContext, user: str, password: str) -> None:
    import aioimaplib

    ssl = (ctx.value("imap_security") or "ssl") == "ssl"
    port = int(ctx.value("imap_port") or (993 if ssl else 143))
    client = (
        aioimaplib.IMAP4_SSL(host=host, port=port, timeout=15)
        if ssl
        else aioimaplib.IMAP4(host, port, timeout=15)
    )
    try:
        await client.wait_hello_from_server()
        response = await client.login(user, password)
    except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
        raise ProviderError(f"smtp_imap: IMAP failed ({type(exc).__name__})", retryable=True) from None
    if response.result != "OK":
        raise AuthError("smtp_imap: the IMAP server refused the login")
    with contextlib.suppress(OSError, TimeoutError, aioimaplib.AioImapException):
        await client.logout()


def sign_webhook(secret: Secret | str, body: bytes, *, timestamp: int) -> str:
    """The ``X-LeadWarm-Signature`` header: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of
    "<t>.<body>">`` (RFC 2104), so a receiver can reject replays older than it accepts."""
    key = (secret.reveal() if isinstance(secret, Secret) else secret).encode()
    mac = hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


async def webhook_ping(ctx: HookContext) -> dict[str, Any]:
    """POST a signed ``{"type": "ping"}`` to the webhook's ``url``; any 2xx passes.
    Returns ``{"status": <HTTP status>}``. Raises :class:`ProviderError` otherwise."""
    url, secret = ctx.value("url"), ctx.value("signing_secret")
    if not url or not secret or not url.startswith(("https://", "http://")):
        raise IntegrationError("webhook needs an http(s) url and a signing_secret")
    body = json.dumps({"type": "ping", "connection_id": ctx.connection.id}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-LeadWarm-Signature": sign_webhook(secret, body, timestamp=int(time.time())),
    }
    try:
        resp = await ctx.http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise ProviderError(f"webhook: ping failed ({type(exc).__name__})", retryable=True) from None
    if resp.status_code >= 300:
        raise ProviderError(f"webhook: ping answered HTTP {resp.status_code}", status=resp.status_code)
    return {"status": resp.status_code}


#: Every hook the catalog may name.
HOOKS: dict[str, Hook] = {"smtp_imap_login": smtp_imap_login, "webhook_ping": webhook_ping}
