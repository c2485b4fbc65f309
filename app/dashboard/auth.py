"""Who is calling: the admin key (machines) or a dashboard session (people), CSRF and roles.

The dashboard's pages call the same ``/api/v1`` as machines do, with the session cookie instead of
the Bearer key. :func:`tenant_from_key_or_session` replaces the ``tenant_id`` dependency every
``/api/v1`` handler declares:

- ``Authorization: Bearer <admin key>``: exactly as before (:func:`app.tenancy.auth.tenant_from_bearer`);
- otherwise the ``lw_session`` cookie: the session's tenant. An unsafe method (POST, PUT, PATCH,
  DELETE) must carry the session's CSRF token in ``X-CSRF-Token`` (synchronizer token, OWASP CSRF
  cheat sheet), else 403; and the user's role must allow the path (:func:`role_allows`), else 403.

Forms posted before a session exists (sign-in, accepting an invitation) use a double-submit token:
the ``lw_csrf`` cookie and the form's ``csrf_token`` field must be equal.

Cookies are HTTP-only, ``SameSite=Lax`` (the session) or ``Strict`` (the CSRF cookie), and
``Secure`` except over plain HTTP to a loopback host (a developer's machine and the tests).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from app.dashboard.people import PeopleDirectory, Role, Session
from app.tenancy.auth import tenant_from_bearer
from app.tenancy.directory import TenantDirectory

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "UNSAFE_METHODS",
    "check_form_csrf",
    "cookie",
    "request_session",
    "role_allows",
    "tenant_from_key_or_session",
]

SESSION_COOKIE = "lw_session"
CSRF_COOKIE = "lw_csrf"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
_PEOPLE_PATHS = ("/api/v1/users", "/api/v1/invitations")
_AGENT_PATHS = ("/api/v1/conversations/",)


def _secure(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return not (connection.url.scheme == "http" and (connection.url.hostname or "") in _LOOPBACK)


def cookie(
    connection: ASGIConnection[Any, Any, Any, Any],
    key: str,
    value: str,
    *,
    max_age: int | None,
    same_site: str = "lax",
) -> Cookie:
    """An HTTP-only cookie for the whole site; ``Secure`` unless plain HTTP to a loopback host."""
    return Cookie(
        key=key,
        value=value,
        path="/",
        max_age=max_age,
        httponly=True,
        secure=_secure(connection),
        samesite=same_site,  # type: ignore[arg-type]
    )


def role_allows(role: Role, method: str, path: str) -> bool:
    """Whether a signed-in ``role`` may call ``method path`` on ``/api/v1``.

    Reading is open to every role. Writing: owners may do anything; marketers anything but people
    (``/api/v1/users``, ``/api/v1/invitations``); agents only conversations (reply, hand back)."""
    if method.upper() not in UNSAFE_METHODS or role == "owner":
        return True
    if path.startswith(_PEOPLE_PATHS):
        return False
    if role == "marketer":
        return True
    return path.startswith(_AGENT_PATHS)


async def request_session(
    connection: ASGIConnection[Any, Any, Any, Any], people: PeopleDirectory
) -> Session | None:
    """The live session of the request's cookie, cached on the request's state; else ``None``."""
    state = connection.scope.setdefault("state", {})
    if "lw_session" not in state:
        token = connection.cookies.get(SESSION_COOKIE, "")
        state["lw_session"] = await people.session(token) if token else None
    session: Session | None = state["lw_session"]
    return session


def _same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


async def tenant_from_key_or_session(
    request: Request[Any, Any, Any],
    tenants: NamedDependency[TenantDirectory],
    people: NamedDependency[PeopleDirectory],
) -> str:
    """Litestar dependency ``tenant_id``: the admin key's tenant, else the session's (see the module).

    Raises ``NotAuthorizedException`` (401) with neither; ``PermissionDeniedException`` (403) when a
    session's unsafe request lacks the CSRF token or its role does not allow it."""
    if request.headers.get("authorization"):
        return await tenant_from_bearer(request, tenants)
    session = await request_session(request, people)
    if session is None:
        raise NotAuthorizedException(
            "missing Authorization: Bearer <admin API key> (or a dashboard session)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if request.method in UNSAFE_METHODS:
        if not _same(request.headers.get(CSRF_HEADER, ""), session.csrf):
            raise PermissionDeniedException("missing or wrong CSRF token")
        if not role_allows(session.user.role, request.method, request.url.path):
            raise PermissionDeniedException(f"the {session.user.role} role may not do this")
    return session.tenant_id


def check_form_csrf(
    connection: ASGIConnection[Any, Any, Any, Any], form_token: str, session: Session | None
) -> None:
    """A posted form's CSRF check: the session's token when signed in, else the ``lw_csrf`` cookie's
    (double submit). Raises ``PermissionDeniedException`` (403) when it does not match."""
    expected = session.csrf if session is not None else connection.cookies.get(CSRF_COOKIE, "")
    if not _same(form_token, expected):
        raise PermissionDeniedException("missing or wrong CSRF token")


def new_csrf_token() -> str:
    """A fresh random token for the double-submit cookie."""
    return secrets.token_urlsafe(32)


__all__ += ["new_csrf_token"]
