"""The dashboard's people: users per tenant with a role, their sign-in sessions, and invitations.

- Users live in the tenant's ``users`` collection, one document per email (id ``us_`` + 20 hex of the
  SHA-256 of the lower-cased email); the password is kept only as an argon2id hash (``argon2-cffi``,
  RFC 9106 parameters of its default ``PasswordHasher``).
- Sessions live under ``SYSTEM_TENANT`` in ``dashboard_sessions``, keyed by the SHA-256 of the
  cookie's random token (the token itself is never stored), with the tenant, the user, a CSRF token
  (the synchronizer token every unsafe request must echo) and an absolute expiry.
- Invitations live under ``SYSTEM_TENANT`` in ``dashboard_invitations``, keyed by the SHA-256 of the
  link's random token; accepting one consumes it in a transaction (single use) and creates the user.

Times are UTC epoch seconds (floats) from the runtime's clock.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal, get_args

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.core.coded_errors import CodedError
from app.store import SYSTEM_TENANT, Store, Transaction
from app.store.collections import DASHBOARD_INVITATIONS, DASHBOARD_SESSIONS, USERS
from kernel.clock import Clock

__all__ = [
    "INVITATION_TTL_S",
    "LOCKOUT_S",
    "MAX_FAILURES",
    "MIN_PASSWORD_CHARS",
    "ROLES",
    "SESSION_TTL_S",
    "Invitation",
    "PeopleDirectory",
    "PeopleError",
    "Role",
    "Session",
    "User",
    "user_id_for",
]

Role = Literal["owner", "marketer", "agent"]
ROLES: tuple[Role, ...] = get_args(Role)
#: Lifetime of a sign-in session, in seconds (absolute, from sign-in): 12 hours.
SESSION_TTL_S = 12 * 3600.0
#: Lifetime of an invitation link, in seconds: 7 days.
INVITATION_TTL_S = 7 * 86400.0
#: Wrong passwords in a row that lock an account, and for how long (seconds): OWASP's
#: "Authentication Cheat Sheet", account lockout.
MAX_FAILURES = 5
LOCKOUT_S = 15 * 60.0
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,60}$")
_HASHER = PasswordHasher()
# A hash to verify against when the email is unknown, so both cases take the same time.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


class PeopleError(CodedError):
    """A user, password, session or invitation request that cannot be honoured; ``str()`` is safe
    to show (it never holds a password or token); ``code`` names the case for translations."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    """The email lower-cased and stripped. Raises :class:`PeopleError` when it is not an address."""
    value = email.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise PeopleError("not an email address", "not_email_address")
    return value


def user_id_for(email: str) -> str:
    """The user id of ``email`` (``us_`` + 20 hex characters of its SHA-256)."""
    return "us_" + _digest(normalise_email(email))[:20]


def check_password(password: str) -> None:
    """Raises :class:`PeopleError` when ``password`` is shorter than 10 or longer than 256 characters."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise PeopleError(
            f"a password has at least {MIN_PASSWORD_CHARS} characters",
            "password_too_short",
            min=MIN_PASSWORD_CHARS,
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise PeopleError(
            f"a password has at most {MAX_PASSWORD_CHARS} characters",
            "password_too_long",
            max=MAX_PASSWORD_CHARS,
        )


@dataclass(frozen=True, slots=True)
class User:
    """One person of a tenant. ``password_hash`` is the argon2 hash (never shown: not in ``repr``)."""

    id: str
    tenant_id: str
    email: str
    role: Role
    name: str
    created_at: float
    password_hash: str = ""

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, tenant_id={self.tenant_id!r}, role={self.role!r})"

    def public(self) -> dict[str, Any]:
        """The fields an API may show: id, email, name, role, created_at."""
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "created_at": self.created_at,
        }

    @classmethod
    def from_doc(cls, tenant_id: str, data: dict[str, Any]) -> User:
        """The user stored as ``data``."""
        return cls(
            id=str(data["id"]),
            tenant_id=tenant_id,
            email=str(data["email"]),
            role=data["role"] if data.get("role") in ROLES else "agent",
            name=str(data.get("name") or ""),
            created_at=float(data.get("created_at") or 0.0),
            password_hash=str(data.get("password_hash") or ""),
        )


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in user's session. ``csrf`` is the token unsafe requests must send back."""

    key: str
    tenant_id: str
    user: User
    csrf: str
    expires_at: float

    def __repr__(self) -> str:
        return f"Session(tenant_id={self.tenant_id!r}, user={self.user.id!r}, expires_at={self.expires_at})"


@dataclass(frozen=True, slots=True)
class Invitation:
    """A pending invitation; ``token`` is only known when it was just created (for the link)."""

    tenant_id: str
    email: str
    role: Role
    expires_at: float
    token: str = ""

    def __repr__(self) -> str:
        return f"Invitation(tenant_id={self.tenant_id!r}, role={self.role!r}, expires_at={self.expires_at})"


class PeopleDirectory:
    """Users, sessions and invitations of every tenant, in the store."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        session_ttl_s: float = SESSION_TTL_S,
        invitation_ttl_s: float = INVITATION_TTL_S,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.store = store
        self.hasher = hasher or _HASHER
        """The argon2 hasher (tests may set a cheaper one); hashing runs in a worker thread."""
        self.clock = clock
        self.session_ttl_s = session_ttl_s
        self.invitation_ttl_s = invitation_ttl_s

    # ------------------------------------------------------------------ users

    async def create_user(
        self, tenant_id: str, email: str, password: str, *, role: Role, name: str = ""
    ) -> User:
        """Create a user. Raises :class:`PeopleError` on a bad email, role or password, or when the
        email already has a user in this tenant."""
        if role not in ROLES:
            raise PeopleError(f"role is one of {', '.join(ROLES)}", "unknown_role")
        address = normalise_email(email)
        check_password(password)
        user = User(
            id=user_id_for(address),
            tenant_id=tenant_id,
            email=address,
            role=role,
            name=name.strip()[:200],
            created_at=self.clock.now(),
            password_hash=await self._hash(password),
        )

        async def fn(tx: Transaction) -> None:
            if await tx.get(USERS, user.id) is not None:
                raise PeopleError("this email already has an account here", "account_exists")
            tx.set(USERS, user.id, _user_doc(user))

        await self.store.run_transaction(tenant_id, fn)
        return user

    async def get_user(self, tenant_id: str, user_id: str) -> User | None:
        """The user, or ``None``."""
        data = await self.store.get(tenant_id, USERS, user_id)
        return User.from_doc(tenant_id, data) if data else None

    async def users(self, tenant_id: str) -> list[User]:
        """Every user of the tenant, by email."""
        docs = await self.store.query(tenant_id, USERS, limit=1000)
        return sorted((User.from_doc(tenant_id, d.data) for d in docs), key=lambda u: u.email)

    async def authenticate(self, tenant_id: str, email: str, password: str) -> User | None:
        """The user whose email and password these are, else ``None`` (same work either way).

        After :data:`MAX_FAILURES` wrong passwords in a row the account refuses every password for
        :data:`LOCKOUT_S` seconds. A hash made with older argon2 parameters is upgraded on success."""
        try:
            user_id = user_id_for(email)
        except PeopleError:
            return None
        data = await self.store.get(tenant_id, USERS, user_id) if tenant_id else None
        user = User.from_doc(tenant_id, data) if data else None
        stored = user.password_hash if user else _DUMMY_HASH
        ok = await anyio.to_thread.run_sync(self._verify, stored, password[:MAX_PASSWORD_CHARS])
        if user is None or data is None:
            return None
        now = self.clock.now()
        if float(data.get("locked_until") or 0.0) > now:
            return None
        if not ok:
            failures = int(data.get("failures") or 0) + 1
            update: dict[str, Any] = {"failures": 0 if failures >= MAX_FAILURES else failures}
            if failures >= MAX_FAILURES:
                update["locked_until"] = now + LOCKOUT_S
            await self.store.set(tenant_id, USERS, user.id, update, merge=True)
            return None
        if data.get("failures") or data.get("locked_until"):
            await self.store.set(tenant_id, USERS, user.id, {"failures": 0, "locked_until": None}, merge=True)
        if self.hasher.check_needs_rehash(user.password_hash):
            new_hash = await self._hash(password)
            await self.store.set(tenant_id, USERS, user.id, {"password_hash": new_hash}, merge=True)
        return user

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(stored, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def _hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self.hasher.hash, password)

    # ------------------------------------------------------------------ sessions

    async def open_session(self, user: User) -> tuple[str, Session]:
        """A new session for ``user``: ``(cookie token, session)``. Only the token's hash is stored."""
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        session = Session(
            key=_digest(token),
            tenant_id=user.tenant_id,
            user=user,
            csrf=secrets.token_urlsafe(32),
            expires_at=now + self.session_ttl_s,
        )
        await self.store.set(
            SYSTEM_TENANT,
            DASHBOARD_SESSIONS,
            session.key,
            {
                "tenant_id": user.tenant_id,
                "user_id": user.id,
                "csrf": session.csrf,
                "created_at": now,
                "expires_at": session.expires_at,
            },
        )
        return token, session

    async def session(self, token: str) -> Session | None:
        """The live session of a cookie token, else ``None`` (unknown, expired, or its user gone).

        An expired session is deleted when seen."""
        if not token or len(token) > 200:
            return None
        key = _digest(token)
        data = await self.store.get(SYSTEM_TENANT, DASHBOARD_SESSIONS, key)
        if data is None:
            return None
        if float(data.get("expires_at") or 0.0) <= self.clock.now():
            await self.store.delete(SYSTEM_TENANT, DASHBOARD_SESSIONS, key)
            return None
        tenant_id = str(data["tenant_id"])
        user = await self.get_user(tenant_id, str(data["user_id"]))
        if user is None:
            return None
        return Session(
            key=key,
            tenant_id=tenant_id,
            user=user,
            csrf=str(data["csrf"]),
            expires_at=float(data["expires_at"]),
        )

    async def close_session(self, token: str) -> None:
        """Forget the session of this cookie token (sign-out); no error when it is unknown."""
        if token and len(token) <= 200:
            await self.store.delete(SYSTEM_TENANT, DASHBOARD_SESSIONS, _digest(token))

    # ------------------------------------------------------------------ invitations

    async def invite(self, tenant_id: str, email: str, *, role: Role, invited_by: str) -> Invitation:
        """A new invitation (its ``token`` goes into the link). Raises :class:`PeopleError` on a bad
        email or role, or when the email already has a user here."""
        if role not in ROLES:
            raise PeopleError(f"role is one of {', '.join(ROLES)}", "unknown_role")
        address = normalise_email(email)
        if await self.get_user(tenant_id, user_id_for(address)) is not None:
            raise PeopleError("this email already has an account here", "account_exists")
        token = secrets.token_urlsafe(32)
        invitation = Invitation(
            tenant_id=tenant_id,
            email=address,
            role=role,
            expires_at=self.clock.now() + self.invitation_ttl_s,
            token=token,
        )
        await self.store.set(
            SYSTEM_TENANT,
            DASHBOARD_INVITATIONS,
            _digest(token),
            {
                "tenant_id": tenant_id,
                "email": address,
                "role": role,
                "invited_by": invited_by,
                "created_at": self.clock.now(),
                "expires_at": invitation.expires_at,
            },
        )
        return invitation

    async def invitation(self, token: str) -> Invitation | None:
        """The pending invitation of a link's token, else ``None`` (unknown, used or expired)."""
        if not token or len(token) > 200:
            return None
        data = await self.store.get(SYSTEM_TENANT, DASHBOARD_INVITATIONS, _digest(token))
        if data is None or float(data.get("expires_at") or 0.0) <= self.clock.now():
            return None
        role = data.get("role")
        return Invitation(
            tenant_id=str(data["tenant_id"]),
            email=str(data["email"]),
            role=role if role in ROLES else "agent",
            expires_at=float(data["expires_at"]),
        )

    async def accept(self, token: str, password: str, *, name: str = "") -> User:
        """Consume the invitation (once) and create its user with ``password``.

        Raises :class:`PeopleError` when the link is unknown, used or expired, or the password is bad."""
        check_password(password)
        invitation = await self.invitation(token)
        if invitation is None:
            raise PeopleError("this invitation link is not valid any more", "invite_invalid")
        key = _digest(token)

        async def consume(tx: Transaction) -> None:
            if await tx.get(DASHBOARD_INVITATIONS, key) is None:
                raise PeopleError("this invitation link is not valid any more", "invite_invalid")
            tx.delete(DASHBOARD_INVITATIONS, key)

        await self.store.run_transaction(SYSTEM_TENANT, consume)
        return await self.create_user(
            invitation.tenant_id, invitation.email, password, role=invitation.role, name=name
        )


def _user_doc(user: User) -> dict[str, Any]:
    return {**user.public(), "password_hash": user.password_hash}
