"""Email routes: the inbound webhook and the signed unsubscribe page.

- ``POST /api/webhooks/email/inbound``: a raw RFC 5322 message (``message/rfc822`` or
  ``text/plain``) or SendGrid Inbound Parse's form, authenticated by EMAIL_INBOUND_SECRET (``?key=``,
  ``X-LeadWarm-Inbound-Key`` or Basic auth; :mod:`channels.email`), then the common pipeline
  (:mod:`app.messaging.webhooks.ingest`). The tenant is the one routed for the To address
  (``tenants.route("email", to)``), else the default tenant.
- ``GET /api/unsubscribe/{token}``: a small confirmation page in the lead's language (fr/en) with
  one button. GET never unsubscribes: link scanners and previews fetch URLs (RFC 8058 §4).
- ``POST /api/unsubscribe/{token}``: records the opt-out. Mail clients POST
  ``List-Unsubscribe=One-Click`` here (RFC 8058 §3.2); the page's button POSTs the same body.
  Idempotent; answers 200 with a confirmation page. A bad token gets 404 (nothing revealed).
"""

from __future__ import annotations

import html
from typing import Any

from litestar import MediaType, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK, HTTP_404_NOT_FOUND

from app.composition import Runtime
from app.core.logs import get_logger
from app.messaging.webhooks.ingest import ingest_request
from channels.email import EmailChannel, UnsubscribeTokenError

__all__ = ["ROUTES", "unsubscribe_page"]

log = get_logger("leadwarm.email")

UNSUBSCRIBE_SOURCE = "unsubscribe_link"

_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Unsubscribe",
        "ask": "Stop receiving emails from {company} at {address}?",
        "button": "Unsubscribe",
        "done_title": "You are unsubscribed",
        "done": "{address} will not receive any more emails from {company}.",
        "invalid_title": "Link not valid",
        "invalid": "This unsubscribe link is not valid. Reply STOP to any of our emails instead.",
    },
    "fr": {
        "title": "Désabonnement",
        "ask": "Ne plus recevoir d'e-mails de {company} à l'adresse {address} ?",
        "button": "Me désabonner",
        "done_title": "Vous êtes désabonné(e)",
        "done": "{address} ne recevra plus d'e-mails de {company}.",
        "invalid_title": "Lien non valide",
        "invalid": "Ce lien de désabonnement n'est pas valide. Répondez STOP à l'un de nos e-mails.",
    },
}


def unsubscribe_page(
    language: str, state: str, *, company: str = "", address: str = "", action: str = ""
) -> str:
    """The HTML of the page: ``state`` is ``ask`` (with a button POSTing to ``action``), ``done`` or
    ``invalid``. ``language`` is ``fr`` or anything else (English). Every value is HTML-escaped."""
    texts = _TEXTS["fr" if language.lower().startswith("fr") else "en"]
    values = {"company": html.escape(company or ""), "address": html.escape(address)}
    lang = "fr" if texts is _TEXTS["fr"] else "en"
    if state == "ask":
        title = texts["title"]
        body = (
            f"<p>{texts['ask'].format(**values)}</p>\n"
            f'<form method="post" action="{html.escape(action)}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            f'<button type="submit">{html.escape(texts["button"])}</button></form>'
        )
    else:
        title = texts[f"{state}_title"]
        body = f"<p>{texts[state].format(**values)}</p>"
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>\n"
        f'<body style="font-family:sans-serif;max-width:32rem;margin:3rem auto">'
        f"<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def _email_channel(runtime: NamedDependency[Runtime]) -> EmailChannel | None:
    try:
        channel = runtime.channels.get("", "email")
    except KeyError:
        return None
    return channel if isinstance(channel, EmailChannel) else None


async def _read(runtime: NamedDependency[Runtime], token: str) -> tuple[str, str] | None:
    channel = _email_channel(runtime)
    if channel is None:
        return None
    try:
        return channel.read_unsubscribe_token(token)
    except UnsubscribeTokenError:
        log.warning("unsubscribe.bad_token")
        return None


async def _language(
    runtime: NamedDependency[Runtime], tenant_id: str, address: str, request: Request[Any, Any, Any]
) -> str:
    """The lead's language, else the browser's first choice among fr/en, else the tenant's."""
    lead = await runtime.conversations.find_lead(tenant_id, "email", address)
    if lead is not None and lead.language:
        return lead.language
    accept = request.headers.get("accept-language", "")
    first = accept.split(",")[0].strip().lower()[:2]
    if first in _TEXTS:
        return first
    return (await runtime.tenants.profile(tenant_id)).default_language


def _html(body: str, status_code: int = HTTP_200_OK) -> Response[str]:
    return Response(
        body,
        status_code=status_code,
        media_type=MediaType.HTML,
        headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"},
    )


@post(
    "/api/webhooks/email/inbound",
    status_code=200,
    summary="Inbound email (raw RFC 5322 or SendGrid form)",
    request_max_body_size=EmailChannel.traits.max_body_bytes,
)
async def email_inbound(request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]) -> Response[Any]:
    """Verify the shared key, parse and store; 200 once stored (see :mod:`app.messaging.webhooks.ingest`)."""
    return await ingest_request(request, runtime, "email")


def _invalid_link() -> Response[str]:
    return _html(unsubscribe_page("en", "invalid"), HTTP_404_NOT_FOUND)


@get("/api/unsubscribe/{token:str}", include_in_schema=False)
async def unsubscribe_confirm(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], token: FromPath[str]
) -> Response[str]:
    """The confirmation page (nothing is recorded on GET)."""
    found = await _read(runtime, token)
    if found is None:
        return _invalid_link()
    tenant_id, address = found
    profile = await runtime.tenants.profile(tenant_id)
    language = await _language(runtime, tenant_id, address, request)
    page = unsubscribe_page(
        language, "ask", company=profile.name, address=address, action=str(request.url.path)
    )
    return _html(page)


@post("/api/unsubscribe/{token:str}", status_code=200, include_in_schema=False)
async def unsubscribe_one_click(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], token: FromPath[str]
) -> Response[str]:
    """Record the opt-out (RFC 8058 one-click, or the page's button)."""
    found = await _read(runtime, token)
    if found is None:
        return _invalid_link()
    tenant_id, address = found
    await runtime.optouts.record(tenant_id, channel="email", address=address, source=UNSUBSCRIBE_SOURCE)
    body = (await request.body()).decode("utf-8", "replace")
    log.info("unsubscribe.recorded", tenant=tenant_id, one_click="List-Unsubscribe=One-Click" in body)
    profile = await runtime.tenants.profile(tenant_id)
    language = await _language(runtime, tenant_id, address, request)
    return _html(unsubscribe_page(language, "done", company=profile.name, address=address))


#: The routes this module serves (registered by its capability's feature plugin).
ROUTES = (
    email_inbound,
    unsubscribe_confirm,
    unsubscribe_one_click,
)
