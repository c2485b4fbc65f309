"""The dashboard's pages at ``/app`` (server-rendered Jinja2 shells; their data comes from ``/api/v1``).

- ``GET /app``: the inbox when signed in, else the sign-in page.
- ``GET/POST /app/signin``, ``POST /app/signout``: password sign-in (double-submit CSRF before the
  session exists, the session's token after); the session cookie is HTTP-only and SameSite=Lax.
- ``GET /app/inbox``, ``/app/conversations/{id}``, ``/app/leads``, ``/app/analytics``, ``/app/people``:
  page shells (signed-in only; otherwise a redirect to the sign-in page). Their script reads the API
  with the session cookie and sends ``X-CSRF-Token`` on writes.
- ``GET/POST /app/invite/{token}``: accept an invitation (choose a password; single use).
- ``POST /app/language``: remember the reader's language (``en`` or ``fr``).
- ``GET /app/static/{name}``: the pages' script and style sheet.

Every page answers with a strict Content-Security-Policy (scripts and styles from this origin only;
no inline script runs) and ``X-Frame-Options: DENY``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath
from litestar.response import Redirect
from litestar.status_codes import HTTP_200_OK, HTTP_303_SEE_OTHER, HTTP_401_UNAUTHORIZED

from app.composition import Runtime
from app.dashboard.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    check_form_csrf,
    cookie,
    new_csrf_token,
    request_session,
)
from app.dashboard.i18n import LANG_COOKIE, LANGUAGES, language_of, refusal, strings
from app.dashboard.people import PeopleDirectory, PeopleError, Session

__all__ = ["ROUTES", "SECURITY_HEADERS"]

_HERE = Path(__file__).parent
_STATIC = {
    "lw.js": "text/javascript; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "inbox.js": "text/javascript; charset=utf-8",
    "admin.js": "text/javascript; charset=utf-8",  # dash-admin
    "admin.css": "text/css; charset=utf-8",  # dash-admin
}
_ENV = Environment(
    loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html"]), enable_async=False
)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _render(
    request: Request[Any, Any, Any],
    template: str,
    *,
    session: Session | None,
    status_code: int = HTTP_200_OK,
    cookies: list[Cookie] | None = None,
    **context: Any,
) -> Response[str]:
    lang = language_of(request)
    t = strings(lang)
    html = _ENV.get_template(template).render(
        t=t,
        lang=lang,
        languages=LANGUAGES,
        session=session,
        user=session.user if session else None,
        csrf=session.csrf if session else context.pop("form_csrf", ""),
        strings_json=json.dumps(t, ensure_ascii=False),
        path=request.url.path,
        **context,
    )
    return Response(
        html,
        media_type="text/html; charset=utf-8",
        status_code=status_code,
        headers=SECURITY_HEADERS,
        cookies=cookies or [],
    )


def _to_signin(request: Request[Any, Any, Any]) -> Redirect:
    return Redirect(f"/app/signin?next={quote(request.url.path)}", status_code=HTTP_303_SEE_OTHER)


def _safe_next(value: str | None) -> str:
    """A local dashboard path to go to after sign-in (never another site)."""
    if value and value.startswith("/app/") and not value.startswith("//") and "\\" not in value:
        return value[:300]
    return "/app/inbox"


@get("/app", include_in_schema=False)
async def app_root(request: Request[Any, Any, Any], people: NamedDependency[PeopleDirectory]) -> Redirect:
    """To the inbox, or to the sign-in page."""
    session = await request_session(request, people)
    return Redirect("/app/inbox" if session else "/app/signin", status_code=HTTP_303_SEE_OTHER)


def _signin_page(
    request: Request[Any, Any, Any],
    runtime: Runtime,
    *,
    error: str = "",
    status_code: int = HTTP_200_OK,
    tenant: str = "",
    email: str = "",
    next_path: str | None = None,
) -> Response[str]:
    token = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
    return _render(
        request,
        "signin.html",
        session=None,
        status_code=status_code,
        cookies=[cookie(request, CSRF_COOKIE, token, max_age=3600, same_site="strict")],
        form_csrf=token,
        error=error,
        next=_safe_next(next_path or request.query_params.get("next")),
        tenant=tenant or runtime.settings.default_tenant_id,
        email=email,
    )


@get("/app/signin", include_in_schema=False)
async def signin_page(request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]) -> Response[str]:
    """The sign-in form (sets the double-submit CSRF cookie)."""
    return _signin_page(request, runtime)


@post("/app/signin", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def signin(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    people: NamedDependency[PeopleDirectory],
    data: Form,
) -> Response[Any]:
    """Check the password; on success open a session and go to ``next``. 401 with the form again
    on a wrong workspace, email or password; 403 without the CSRF token."""
    check_form_csrf(request, str(data.get("csrf_token", "")), None)
    tenant_id = str(data.get("tenant", "")).strip()[:64]
    user = await people.authenticate(tenant_id, str(data.get("email", "")), str(data.get("password", "")))
    if user is None:
        return _signin_page(
            request,
            runtime,
            error=strings(language_of(request))["bad_credentials"],
            status_code=HTTP_401_UNAUTHORIZED,
            tenant=tenant_id,
            email=str(data.get("email", ""))[:254],
            next_path=data.get("next"),
        )
    token, _session = await people.open_session(user)
    return Redirect(
        _safe_next(data.get("next")),
        status_code=HTTP_303_SEE_OTHER,
        cookies=[cookie(request, SESSION_COOKIE, token, max_age=int(people.session_ttl_s))],
    )


@post("/app/signout", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def signout(
    request: Request[Any, Any, Any], people: NamedDependency[PeopleDirectory], data: Form
) -> Redirect:
    """Close the session (CSRF-checked) and go to the sign-in page."""
    session = await request_session(request, people)
    if session is not None:
        check_form_csrf(request, str(data.get("csrf_token", "")), session)
        await people.close_session(request.cookies.get(SESSION_COOKIE, ""))
    return Redirect(
        "/app/signin",
        status_code=HTTP_303_SEE_OTHER,
        cookies=[cookie(request, SESSION_COOKIE, "", max_age=0)],
    )


@post("/app/language", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def choose_language(
    request: Request[Any, Any, Any], people: NamedDependency[PeopleDirectory], data: Form
) -> Redirect:
    """Remember ``lang`` (``en``/``fr``) for a year and go back to ``next``."""
    session = await request_session(request, people)
    check_form_csrf(request, str(data.get("csrf_token", "")), session)
    lang = data.get("lang", "en")
    target = _safe_next(data.get("next")) if session else "/app/signin"
    return Redirect(
        target,
        status_code=HTTP_303_SEE_OTHER,
        cookies=[cookie(request, LANG_COOKIE, lang if lang in LANGUAGES else "en", max_age=365 * 86400)],
    )


async def _page(
    request: Request[Any, Any, Any], people: PeopleDirectory, template: str, **context: Any
) -> Response[Any]:
    session = await request_session(request, people)
    if session is None:
        return _to_signin(request)
    return _render(request, template, session=session, **context)


@get("/app/inbox", include_in_schema=False)
async def inbox_page(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    people: NamedDependency[PeopleDirectory],
) -> Response[Any]:
    """The inbox: conversations, handoffs first, live."""
    return await _page(request, people, "inbox.html", channels=runtime.channels.names())


def _handoff_api(request: Request[Any, Any, Any]) -> bool:
    """Whether the human-handoff endpoints (reply as a person, hand back) are served."""
    paths = {route.path for route in request.app.routes}
    return any(p.startswith("/api/v1/conversations/") and p.endswith("/handback") for p in paths)


@get("/app/conversations/{conversation_id:str}", include_in_schema=False)
async def conversation_page(
    request: Request[Any, Any, Any], people: NamedDependency[PeopleDirectory], conversation_id: FromPath[str]
) -> Response[Any]:
    """One conversation: transcript, answers, score with reasons, outbound decisions, reply."""
    return await _page(
        request,
        people,
        "conversation.html",
        conversation_id=conversation_id[:100],
        can_reply=_handoff_api(request),
    )


@get("/app/leads", include_in_schema=False)
async def leads_page(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    people: NamedDependency[PeopleDirectory],
) -> Response[Any]:
    """The searchable list of leads, with CSV export."""
    return await _page(request, people, "leads.html", channels=runtime.channels.names())


@get("/app/analytics", include_in_schema=False)
async def analytics_page(
    request: Request[Any, Any, Any], people: NamedDependency[PeopleDirectory]
) -> Response[Any]:
    """Per-playbook funnel, qualification, score and cost."""
    return await _page(request, people, "analytics.html")


@get("/app/people", include_in_schema=False)
async def people_page(
    request: Request[Any, Any, Any], people: NamedDependency[PeopleDirectory]
) -> Response[Any]:
    """The team and (owners) the invitation form."""
    return await _page(request, people, "people.html")


@get("/app/invite/{token:str}", include_in_schema=False)
async def invite_page(
    request: Request[Any, Any, Any], people: NamedDependency[PeopleDirectory], token: FromPath[str]
) -> Response[str]:
    """The invitation's form (choose a password), or a notice when the link is not valid."""
    invitation = await people.invitation(token)
    csrf = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
    return _render(
        request,
        "invite.html",
        session=None,
        status_code=HTTP_200_OK if invitation else 404,
        cookies=[cookie(request, CSRF_COOKIE, csrf, max_age=3600, same_site="strict")],
        form_csrf=csrf,
        invitation=invitation,
        token=token,
        error="",
    )


@post("/app/invite/{token:str}", include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def accept_invite(
    request: Request[Any, Any, Any],
    people: NamedDependency[PeopleDirectory],
    token: FromPath[str],
    data: Form,
) -> Response[Any]:
    """Consume the invitation, create the user, sign them in and go to the inbox."""
    check_form_csrf(request, str(data.get("csrf_token", "")), None)
    try:
        user = await people.accept(token, str(data.get("password", "")), name=str(data.get("name", "")))
    except PeopleError as exc:
        invitation = await people.invitation(token)
        return _render(
            request,
            "invite.html",
            session=None,
            status_code=400,
            form_csrf=request.cookies.get(CSRF_COOKIE, ""),
            invitation=invitation,
            token=token,
            error=refusal(language_of(request), exc.code, exc.params, str(exc)),
        )
    session_token, _ = await people.open_session(user)
    return Redirect(
        "/app/inbox",
        status_code=HTTP_303_SEE_OTHER,
        cookies=[cookie(request, SESSION_COOKIE, session_token, max_age=int(people.session_ttl_s))],
    )


@get("/app/static/{name:str}", include_in_schema=False)
async def static_file(name: FromPath[str]) -> Response[bytes]:
    """The dashboard's own script and style sheet (a fixed list; anything else is 404)."""
    media_type = _STATIC.get(name)
    if media_type is None:
        raise NotFoundException("no such file")
    return Response(
        (_HERE / "static" / name).read_bytes(),
        media_type=media_type,
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


#: The routes this module serves (registered by :class:`app.dashboard.plugin.DashboardFeature`).
ROUTES = (
    app_root,
    signin_page,
    signin,
    signout,
    choose_language,
    inbox_page,
    conversation_page,
    leads_page,
    analytics_page,
    people_page,
    invite_page,
    accept_invite,
    static_file,
)
