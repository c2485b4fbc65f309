"""The authorised HTTP client: one :class:`~crm_sync.base.ApiClient` per connection.

:class:`ConnectionClients` (one per process) hands out :class:`AuthorizedClient` objects. A
request:

1. refreshes an OAuth access token that expires within ``refresh_margin_s`` first. The refresh is
   single-flight per connection *across processes*: an ``asyncio.Lock`` inside the process, and a
   lease document in the store (owner, expiry) between processes. The holder re-reads the
   connection after taking the lease, so when another process refreshed meanwhile nobody spends
   the (possibly rotating, single-use) refresh token again. ``invalid_grant`` marks the connection
   ``needs_reauth`` and records an audit event;
2. waits for the (tenant, provider) rate gate, sized from the catalog's documented burst limit
   (a :class:`RollingWindow` for windows up to a minute, a :class:`SlidingWindow` beyond) and fed
   by the provider's rate-limit headers (``remaining`` at 0 that the gate's own count does not
   explain pauses it until the window resets; a 429's ``Retry-After`` pauses it too);
3. adds the credential (bearer, header, query or HTTP Basic, as the catalog says) and the
   provider's version headers;
4. retries :class:`~crm_sync.base.ProviderError` marked ``retryable`` (429, 5xx, network) with
   stamina, waiting exactly what ``Retry-After`` asks (``kernel.http.parse_retry_after``).

Rate buckets are per process: N processes may together send up to N times the bucket; the
providers' headers and 429s bring each back in line.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
import os
import secrets
import socket
from collections import deque
from collections.abc import AsyncIterator, Mapping
from http.cookiejar import Cookie, CookieJar
from typing import Any, Protocol

import httpx
import stamina

from crm_sync.audit import AuditEvent
from crm_sync.base import ApiClient, AuthError, IntegrationError, ProviderError
from crm_sync.catalog import Catalog, Provider, RateLimit, RateLimitHeaders
from crm_sync.models import Connection
from crm_sync.oauth import OAuthService, TokenSet
from crm_sync.redact import redacting, scrub
from crm_sync.repository import ConnectionRepository
from crm_sync.transport import PooledTransport
from crm_sync.vault import Secret, Vault
from kernel.clock import Clock, SystemClock
from kernel.egress import EgressRefusedError
from kernel.http import parse_retry_after

__all__ = [
    "AuthorizedClient",
    "ConnectionClients",
    "RateGate",
    "RollingWindow",
    "SlidingWindow",
    "fetch_identity",
    "http_pool",
    "resolve_base_url",
]

log = logging.getLogger(__name__)

_MAX_PAUSE_S = 300.0
#: A caller waits for a sliding window at most this many times (each up to ``_MAX_PAUSE_S``)
#: before it gets a quota error (its job is deferred rather than holding a worker for a day).
_MAX_WINDOW_WAITS = 2


class _Bucket(Protocol):
    """What a rate gate waits on: ``acquire`` before a request, ``release`` once it was answered
    (or failed), on the same object."""

    async def acquire(self) -> None: ...

    def release(self) -> None: ...


class RollingWindow:
    """At most ``requests`` requests in any rolling ``per_s`` seconds, as the vendors count their
    short windows: a sliding log of arrivals (GoHighLevel "API rate limits": 100 requests per
    10 s per location; Pipedrive "Rate limiting": the token budget per 2 s window; HubSpot
    "API usage guidelines": 100 per 10 s).

    The vendor counts a request when it *arrives*, somewhere between the moment it is let go and
    the moment its answer is back. So a request holds a place from :meth:`acquire` until
    ``per_s`` seconds after :meth:`release` (its answer): however uneven the latency, the vendor
    never sees more than ``requests`` in a window, and the price is one round trip per window.

    Unlike a token bucket paced at ``requests / per_s`` (which cannot bank allowance: the tokens
    of a moment when the event loop was busy are lost), the places of a busy moment stay free and
    are used later in the same window, in a burst. Waiters are served first come, first served;
    one of them at a time waits on the clock. aiolimiter's leaky bucket cannot express a rolling
    count of answered requests, hence this class. Memory O(``requests``). ``clock`` gives UTC
    epoch seconds; the waits are ``asyncio.sleep``. Belongs to one event loop (its lock)."""

    def __init__(self, requests: float, per_s: float, *, clock: Clock) -> None:
        if per_s <= 0 or requests < 1:
            raise ValueError("a rolling window needs requests >= 1 and per_s > 0")
        self.requests = int(requests)
        self.per_s = float(per_s)
        self.clock = clock
        # when answered requests leave the window (answer + per_s), sorted; kept _HISTORY_S
        # longer, so that a rate-limit header can be checked against the requests it counted
        self._frees_at: list[float] = []
        self._in_flight = 0
        self._turn = asyncio.Lock()  # FIFO: the first waiter is served first
        self._answered = asyncio.Event()

    def _prune(self, now: float) -> None:
        cut = bisect.bisect_right(self._frees_at, now - _HISTORY_S)
        if cut > 64 or cut == len(self._frees_at):  # amortised: one slice per many answers
            del self._frees_at[:cut]

    def used(self, now: float | None = None) -> int:
        """Places taken at ``now`` (default: the clock's): requests in flight plus those answered
        less than ``per_s`` seconds ago."""
        return self.used_since((self.clock.now() if now is None else now) - self.per_s)

    def used_since(self, at: float) -> int:
        """Requests in flight plus those answered after ``at`` (UTC epoch seconds): every request
        of ours the vendor may have counted in a window that ends after ``at + per_s``. Exact for
        ``at`` up to ``_HISTORY_S`` seconds in the past."""
        return self._in_flight + len(self._frees_at) - bisect.bisect_right(self._frees_at, at + self.per_s)

    async def acquire(self) -> None:
        """Wait until the window has a place, and take it. Never raises on its own."""
        async with self._turn:
            while True:
                now = self.clock.now()
                self._prune(now)
                if self.used(now) < self.requests:
                    self._in_flight += 1
                    return
                nxt = bisect.bisect_right(self._frees_at, now)
                if nxt < len(self._frees_at):
                    await asyncio.sleep(self._frees_at[nxt] - now)
                else:  # every place is in flight: the first answer starts a countdown
                    self._answered.clear()
                    await self._answered.wait()

    def release(self) -> None:
        """The request taken by :meth:`acquire` was answered (or failed) now: its place frees in
        ``per_s`` seconds."""
        self._in_flight = max(0, self._in_flight - 1)
        bisect.insort(self._frees_at, self.clock.now() + self.per_s)  # in order unless the clock stepped
        self._answered.set()


#: How long a :class:`RollingWindow` remembers answers past its window (seconds): a rate-limit
#: header answered this long after its request was sent can still be checked against our count.
_HISTORY_S = 30.0


class SlidingWindow:
    """At most ``requests`` acquisitions in any rolling ``per_s`` seconds, as vendors count a long
    allowance (Salesforce: "API Request Limits and Allocations", the org's requests over the last
    24 hours), where a token bucket would let a full burst through and then refill.

    A sliding-window counter: the window is cut into ``slots`` sub-windows of ``per_s / slots``
    seconds, each holding a count (memory O(slots), whatever ``requests`` is). A sub-window that
    overlaps the rolling window at all counts whole, so the limit is never exceeded; the price is
    at most one sub-window's wait. Times come from ``clock`` (UTC epoch seconds)."""

    def __init__(self, requests: float, per_s: float, *, clock: Clock, slots: int = 60) -> None:
        if per_s <= 0 or requests < 1:
            raise ValueError("a sliding window needs requests >= 1 and per_s > 0")
        self.requests = int(requests)
        self.per_s = float(per_s)
        self.slot_s = self.per_s / max(1, slots)
        self.clock = clock
        self._slots: deque[list[int]] = deque()  # [sub-window index, count], oldest first
        self._total = 0

    def _expire(self, now: float) -> None:
        while self._slots and (self._slots[0][0] + 1) * self.slot_s <= now - self.per_s:
            self._total -= self._slots.popleft()[1]

    def try_acquire(self, now: float | None = None) -> float:
        """Take one request at ``now`` (default: the clock's) if the window allows it: ``0.0``;
        else take nothing and return the seconds until the oldest sub-window leaves the window."""
        at = self.clock.now() if now is None else now
        wait = self.wait_s(at)
        if wait == 0.0:
            index = math.floor(at / self.slot_s)
            if self._slots and self._slots[-1][0] >= index:
                self._slots[-1][1] += 1
            else:
                self._slots.append([index, 1])
            self._total += 1
        return wait

    def wait_s(self, now: float, requests: int = 1) -> float:
        """Seconds from ``now`` until the window allows ``requests`` more requests (``0.0``: it
        does now); more than the window holds count as the whole window."""
        self._expire(now)
        needed = min(max(1, requests), self.requests)
        if self._total + needed <= self.requests:
            return 0.0
        left = self._total
        for index, count in self._slots:  # oldest first: when enough of them have left
            left -= count
            if left + needed <= self.requests:
                return max((index + 1) * self.slot_s + self.per_s - now, 1e-3)
        return self.per_s  # pragma: no cover - the slots hold _total

    async def acquire(self) -> None:
        """Wait (in steps of at most ``_MAX_PAUSE_S``) until the window allows one request. Raises
        :class:`ProviderError` (``quota``, ``retry_after_s`` set) after ``_MAX_WINDOW_WAITS`` waits."""
        for waits in range(_MAX_WINDOW_WAITS + 1):
            wait = self.try_acquire()
            if wait <= 0:
                return
            if waits == _MAX_WINDOW_WAITS:
                break
            await asyncio.sleep(min(wait, _MAX_PAUSE_S))
        raise ProviderError(
            f"the {self.requests} per {self.per_s:.0f} s allowance stays spent",
            retryable=True,
            quota=True,
            retry_after_s=self.wait_s(self.clock.now()),
        )

    def release(self) -> None:
        """Nothing to do: a place is counted when it is taken (a long window makes the latency
        between the client and the vendor nothing)."""


class RateGate:
    """A rate limit for one (tenant, provider): the catalog's shortest documented window (a
    :class:`RollingWindow` up to 60 s, a :class:`SlidingWindow` beyond), plus a pause set from
    the provider's headers (seconds, epoch-based). Use :meth:`slot` around each request.

    ``processes`` is how many worker processes spend the same allowance (the vendor counts per
    tenant account, not per process): each gate lets through its share, ``requests //
    processes`` per window (at least 1), so N processes together stay within the documented
    limit without talking to each other. A ``remaining: 0`` header that this process's own
    count does not explain (another process spent the window) still pauses the gate.
    Raises ``ValueError`` when ``processes`` is below 1."""

    def __init__(
        self,
        limits: tuple[RateLimit, ...],
        headers: RateLimitHeaders,
        *,
        clock: Clock,
        processes: int = 1,
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self.processes = processes
        burst = min(limits, key=lambda lim: lim.per_s) if limits else None
        self.window: tuple[float, float] | None = (burst.requests, burst.per_s) if burst else None
        self.clock = clock
        self.limiter: _Bucket | None = self._new_limiter(*self.window) if self.window else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.headers = headers
        self.paused_until = 0.0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Hold a place of the window for one request: wait for the pause and the window, run the
        body (the request, up to its answer), then free the place. Yields the time the request
        was let go (UTC epoch seconds), for :meth:`observe`. Raises :class:`ProviderError`
        (``quota``, ``retry_after_s`` the pause left) rather than wait out a pause over
        ``_MAX_INLINE_WAIT_S``, or when a long window stays spent."""
        wait = self.paused_until - self.clock.now()
        if wait > _MAX_INLINE_WAIT_S:
            # a long pause (a spent allowance): the caller defers its work instead of holding a
            # worker for minutes
            raise ProviderError(
                f"requests paused for {wait:.0f} s (rate limit or allowance)",
                retryable=True,
                quota=True,
                retry_after_s=wait,
            )
        if wait > 0:
            await asyncio.sleep(wait)
        limiter = self.limiter
        if limiter is None:
            yield self.clock.now()
            return
        loop = asyncio.get_running_loop()
        if self._loop is not loop and isinstance(limiter, RollingWindow):
            # a RollingWindow's lock belongs to the loop that first waited on it: another loop (a
            # test driving the app from outside, a second worker loop) gets a window of its own;
            # the first loop keeps the one built with the gate
            if self._loop is not None and self.window is not None:
                limiter = self.limiter = self._new_limiter(*self.window)
            self._loop = loop
        await limiter.acquire()
        try:
            yield self.clock.now()
        finally:
            limiter.release()  # the one it was taken from, even if the window was resized since

    def _new_limiter(self, requests: float, per_s: float) -> _Bucket:
        """This process's window: its share of ``requests`` per ``per_s`` seconds."""
        return _limiter(max(1, int(requests) // self.processes), per_s, self.clock)

    def wait_s(self, requests: int = 1) -> float:
        """Seconds until ``requests`` requests can start without waiting on a long window (the
        pause set from the headers, a :class:`SlidingWindow`'s spent allowance): ``0.0`` when
        they can now or when the bucket only paces them (short windows). Lets a caller that
        sends a batch of ``requests`` calls wait *before* it gathers the batch, so the batch is
        full and is not held half-sent while the window refills."""
        now = self.clock.now()
        wait = max(0.0, self.paused_until - now)
        if isinstance(self.limiter, SlidingWindow):
            wait = max(wait, self.limiter.wait_s(now, requests))
        return wait

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` (clamped to ``_MAX_PAUSE_S``)."""
        until = self.clock.now() + min(max(seconds, 0.0), _MAX_PAUSE_S)
        self.paused_until = max(self.paused_until, until)

    def observe(self, response_headers: Mapping[str, str], *, sent_at: float | None = None) -> None:
        """Feed the gate from the answer to a request let go at ``sent_at`` (UTC epoch seconds,
        what :meth:`slot` yielded): resize the window to the advertised limit and window, and
        pause it when ``remaining`` reaches 0, unless our own requests explain that 0. The vendor
        counted the window when the request *arrived*, after ``sent_at``: when the gate's
        :class:`RollingWindow` holds at least ``limit`` requests answered after ``sent_at -
        window`` (or in flight), the 0 is ours, already stale, and the window holds the next
        request back exactly as long as needed; a pause of a whole window from now would waste
        the places that free sooner. The same holds for a full :class:`SlidingWindow` (a long
        window: the latency is nothing next to it). A 0 our count does not explain (another
        client spends the allowance) pauses. Unreadable headers are ignored."""
        h = self.headers
        limit = _num(response_headers.get(h.limit)) if h.limit else None
        remaining = _num(response_headers.get(h.remaining)) if h.remaining else None
        window = _num(response_headers.get(h.interval_ms)) if h.interval_ms else None
        window_s = window / 1000 if window else None
        reset_s = _num(response_headers.get(h.reset_s)) if h.reset_s else None
        if (
            limit is not None
            and limit > 0
            and window_s is not None
            and window_s > 0
            and self.window != (limit, window_s)
        ):
            self.window = (limit, window_s)
            self.limiter = self._new_limiter(limit, window_s)
        if remaining is not None and remaining <= 0:
            own = self.limiter
            sent = self.clock.now() if sent_at is None else sent_at
            if isinstance(own, RollingWindow) and own.used_since(sent - own.per_s) >= own.requests:
                return  # our own requests spent it: the window knows when places free
            if isinstance(own, SlidingWindow) and own.wait_s(self.clock.now()) > 0:
                return  # a long window our own requests filled: it waits for its oldest to leave
            self.pause(reset_s if reset_s is not None else (window_s or 1.0))


#: Windows up to this long are enforced by the vendors as sliding windows (HubSpot's 10 s,
#: GoHighLevel's 10 s, Pipedrive's 2 s): a :class:`RollingWindow` counts them exactly.
_PACED_WINDOW_S = 60.0


def _limiter(requests: float, per_s: float, clock: Clock) -> _Bucket:
    """The gate's window for ``requests`` per ``per_s`` seconds: a :class:`RollingWindow` (exact,
    latency-safe, allowance banked within the window) up to :data:`_PACED_WINDOW_S`; beyond, a
    :class:`SlidingWindow` (a daily allowance: O(slots) memory whatever ``requests`` is, and a
    quota error rather than an hour's wait)."""
    if per_s <= _PACED_WINDOW_S:
        return RollingWindow(requests, per_s, clock=clock)
    return SlidingWindow(requests, per_s, clock=clock)


def _num(raw: str | None) -> float | None:
    if raw is None or len(raw) > 32:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value == value and abs(value) < 1e12 else None


def resolve_base_url(provider: Provider, connection: Connection) -> str:
    """The connection's API base URL: ``settings.base_url``, else the one the token response gave
    (``account.base_url``: Salesforce ``instance_url``, Pipedrive ``api_domain``), else the
    catalog's, with ``{placeholders}`` filled from the connection's account and settings.
    Raises :class:`IntegrationError` when a placeholder has no value."""
    base = connection.settings.get("base_url") or connection.account.get("base_url")
    if not base:
        if provider.api is None:
            raise IntegrationError(f"{provider.name} has no HTTP API")
        base = provider.api.base_url
    return _fill(str(base), connection).rstrip("/")


def _fill(template: str, connection: Connection) -> str:
    if "{" not in template:
        return template
    values = {**connection.account, **connection.settings}
    try:
        return template.format_map({k: str(v) for k, v in values.items()})
    except (KeyError, ValueError, IndexError) as exc:
        raise IntegrationError(f"{connection.provider}: no value for {exc} in {template!r}") from None


#: Decrypted credentials a :class:`ConnectionClients` keeps (see :class:`_OpenedSecrets`).
_OPENED_KEPT = 1024


class _OpenedSecrets:
    """Decrypted connection secrets kept in memory for as long as their sealed text is the
    connection's (a refresh seals a new token: a new key, so the old entry is never used again),
    so a request does not decrypt the token again (AES-GCM and the key schedule, per request).
    Keyed by (tenant, connection, field, sealed text); at most ``_OPENED_KEPT`` entries (the
    oldest go first). Values are :class:`Secret` (never shown by ``repr``); nothing here is logged."""

    __slots__ = ("_kept",)

    def __init__(self) -> None:
        self._kept: dict[tuple[str, str, str, str], Secret] = {}

    def __repr__(self) -> str:
        return f"_OpenedSecrets({len(self._kept)} kept)"

    def open(self, connection: Connection, vault: Vault, name: str) -> Secret | None:
        """``connection.secret(vault, name)``, decrypted once per sealed value. Raises as
        :meth:`Connection.secret`."""
        sealed = connection.secrets.get(name)
        if sealed is None:
            return None
        key = (connection.tenant_id, connection.id, name, sealed)
        found = self._kept.get(key)
        if found is None:
            found = connection.secret(vault, name)
            if found is None:  # pragma: no cover - the sealed value exists
                return None
            if len(self._kept) >= _OPENED_KEPT:
                del self._kept[next(iter(self._kept))]
            self._kept[key] = found
        return found


def _credential(
    connection: Connection, vault: Vault, name: str, opened: _OpenedSecrets | None = None
) -> Secret | None:
    secret = opened.open(connection, vault, name) if opened is not None else connection.secret(vault, name)
    if secret is not None:
        return secret
    value = connection.settings.get(name)
    return Secret(str(value)) if value is not None else None


def _prepare(
    provider: Provider,
    connection: Connection,
    vault: Vault,
    path: str,
    headers: Mapping[str, str] | None,
    params: Mapping[str, Any] | None,
    opened: _OpenedSecrets | None = None,
) -> tuple[str, dict[str, str], dict[str, Any], httpx.Auth | None, list[str]]:
    """URL, headers, params and auth for one call; the last item lists the secrets used (to scrub).
    ``opened`` keeps the decrypted credentials between calls."""
    if provider.api is None:
        raise IntegrationError(f"{provider.name} has no HTTP API")
    if path.startswith(("https://", "http://")):
        url = path
    else:
        url = resolve_base_url(provider, connection) + "/" + _fill(path, connection).lstrip("/")
    out_headers = {**provider.api.headers, **(headers or {})}
    out_params = dict(params or {})
    spec = provider.api.auth.get(connection.auth_mode)  # type: ignore[call-overload]
    if spec is None:
        raise IntegrationError(f"{provider.name}: no API auth for mode {connection.auth_mode}")
    cred = _credential(connection, vault, spec.field, opened)
    if cred is None:
        raise AuthError(f"{provider.name}: connection {connection.id} lacks {spec.field}")
    used = [cred.reveal()]
    auth: httpx.Auth | None = None
    if spec.type == "bearer":
        out_headers["Authorization"] = f"Bearer {cred.reveal()}"
    elif spec.type == "header":
        out_headers[str(spec.name)] = cred.reveal()
    elif spec.type == "query":
        out_params[str(spec.name)] = cred.reveal()
    else:
        user = _credential(connection, vault, str(spec.username_field), opened)
        if user is None:
            raise AuthError(f"{provider.name}: connection {connection.id} lacks {spec.username_field}")
        auth = httpx.BasicAuth(user.reveal(), cred.reveal())
        used.append(user.reveal())
    return url, out_headers, out_params, auth, used


def _dig(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


def _identity_fields(provider: Provider, body: Any) -> dict[str, Any]:
    assert provider.identity is not None
    out: dict[str, Any] = {}
    for key, dotted in provider.identity.fields.items():
        value = _dig(body, dotted)
        if isinstance(value, str | int | float | bool):
            out[key] = value
    return out


async def fetch_identity(
    connection: Connection,
    *,
    catalog: Catalog,
    vault: Vault,
    http: httpx.AsyncClient | None = None,
    timeout_s: float = 15.0,
) -> dict[str, Any]:
    """Ask the provider who ``connection`` is (the catalog's identity call), once, no refresh or
    retries; returns the account fields found (empty when the provider has no identity call).
    Raises :class:`AuthError` (401/403) or :class:`ProviderError`."""
    provider = catalog.get(connection.provider)
    if provider.identity is None:
        return {}
    url, headers, params, auth, used = _prepare(
        provider, connection, vault, provider.identity.path, None, provider.identity.params
    )
    own = http is None
    client = http or httpx.AsyncClient(timeout=timeout_s, trust_env=False)
    try:
        with redacting(used):
            resp = await client.request(
                provider.identity.method, url, headers=headers, params=params, auth=auth
            )
    except httpx.HTTPError as exc:
        raise ProviderError(
            f"{provider.name}: identity call failed ({type(exc).__name__})", retryable=True
        ) from None
    finally:
        if own:
            await client.aclose()
    _raise_for(provider, resp, used)
    try:
        return _identity_fields(provider, resp.json())
    except ValueError:
        return {}


def _raise_for(provider: Provider, resp: httpx.Response, used: list[str]) -> None:
    status = resp.status_code
    if status < 400:
        return
    body = scrub(resp.text[:2000], used)
    for quota in provider.quota_errors:
        if status == quota.status and quota.code in body:
            raise ProviderError(
                f"{provider.name}: HTTP {status} {quota.code} (the account's allowance is spent)",
                status=status,
                retryable=True,
                retry_after_s=parse_retry_after(resp.headers) or quota.retry_after_s,
                body=body,
                quota=True,
            )
    if status in (401, 403):
        raise AuthError(f"{provider.name}: HTTP {status} (credentials refused)")
    retryable = status == 429 or status >= 500
    raise ProviderError(
        f"{provider.name}: HTTP {status}",
        status=status,
        retryable=retryable,
        retry_after_s=parse_retry_after(resp.headers) if retryable else None,
        body=body,
    )


class _NoCookies(CookieJar):
    """A cookie jar that keeps nothing: the pool is shared by every tenant's connections, so a
    cookie one CRM account set (load-balancer or session cookies) must never ride along with
    another account's requests; it also spares the cookie parsing of every answer."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        """Keep no cookie from ``response``."""

    def set_cookie(self, cookie: Cookie) -> None:
        """Keep no cookie."""


def http_pool(
    *, max_connections: int = 32, timeout_s: float = 20.0, allow_private: bool = False
) -> httpx.AsyncClient:
    """The HTTP pool of the authorised clients: ``max_connections`` connections, all kept alive
    (httpx's default keeps 20 of 100, so a wider burst opened a new TCP+TLS connection per
    request), ``timeout_s`` seconds per operation, no proxy from the environment, and no cookies
    kept (:class:`_NoCookies`, and none in the transport). The transport is aiohttp's pool
    (:class:`crm_sync.transport.PooledTransport`): about half the CPU per request of httpx's own.
    It refuses private and loopback addresses unless ``allow_private`` (``EGRESS_ALLOW_PRIVATE``),
    and link-local (metadata) ones always: a connection's ``base_url`` is the tenant's to set."""
    return httpx.AsyncClient(
        timeout=timeout_s,
        trust_env=False,
        cookies=_NoCookies(),
        transport=PooledTransport(max_connections=max_connections, allow_private=allow_private),
    )


class ConnectionClients:
    """Per-process factory of :class:`AuthorizedClient` and owner of the refresh single-flight.

    ``owner`` names this process in leases (default: host, pid and a random suffix);
    ``refresh_margin_s`` refreshes tokens expiring that soon; ``lease_ttl_s`` bounds how long a
    crashed refresher blocks the others (it must exceed ``oauth.timeout_s``, else ``ValueError``);
    ``retry_*`` configure stamina (attempts, overall timeout and backoff, seconds). Authorised
    clients are cheap: make one per job, as a client keeps the connection it was made with until
    that token needs refreshing. ``max_connections`` sizes the shared HTTP pool (all kept alive;
    size it at least to the worker's concurrency) and ``allow_private`` lets it dial private and
    loopback addresses (:func:`http_pool`); both ignored when ``http`` is given.
    ``processes`` is how many worker processes share the tenants' vendor allowances: each
    (tenant, provider) :class:`RateGate` of this process takes its share of the window.
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        repository: ConnectionRepository,
        vault: Vault,
        oauth: OAuthService,
        clock: Clock | None = None,
        http: httpx.AsyncClient | None = None,
        owner: str | None = None,
        refresh_margin_s: float = 300.0,
        lease_ttl_s: float = 30.0,
        lease_poll_s: float = 0.05,
        timeout_s: float = 20.0,
        retry_attempts: int = 4,
        retry_timeout_s: float = 60.0,
        retry_wait_initial_s: float = 0.2,
        retry_wait_max_s: float = 10.0,
        max_connections: int = 32,
        allow_private: bool = False,
        processes: int = 1,
    ) -> None:
        if lease_ttl_s <= oauth.timeout_s:
            # a refresh outliving its lease could let another process spend the same refresh token
            raise ValueError("lease_ttl_s must exceed the OAuth token call's timeout_s")
        self.catalog = catalog
        self.repository = repository
        self.vault = vault
        self.oauth = oauth
        self.clock = clock or SystemClock()
        self.http = http or http_pool(
            max_connections=max_connections, timeout_s=timeout_s, allow_private=allow_private
        )
        #: Requests inside the HTTP pool at once (size it to the pool): the others wait (past
        #: their rate limit, in FIFO order) outside it, since httpx's pool looks over every
        #: queued request and every connection each time one starts or ends (CPU quadratic in
        #: the queue).
        self.max_in_flight = max(1, max_connections)
        self._in_flight: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._own_http = http is None
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.refresh_margin_s = refresh_margin_s
        self.lease_ttl_s = lease_ttl_s
        self.lease_poll_s = lease_poll_s
        self.retry_attempts = retry_attempts
        self.retry_timeout_s = retry_timeout_s
        self.retry_wait_initial_s = retry_wait_initial_s
        self.retry_wait_max_s = retry_wait_max_s
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._gates: dict[tuple[str, str], RateGate] = {}
        #: Worker processes spending the same vendor allowances: each gate takes its share.
        self.processes = processes
        self._opened = _OpenedSecrets()

    async def client(self, tenant_id: str, connection_id: str) -> AuthorizedClient:
        """The authorised client of one connection. Raises :class:`IntegrationError` when the
        connection does not exist, :class:`AuthError` when it needs re-authorisation."""
        connection = await self.repository.get_connection(tenant_id, connection_id)
        if connection is None:
            raise IntegrationError(f"no connection {connection_id!r} in tenant {tenant_id!r}")
        return AuthorizedClient(self, connection)

    def gate(self, tenant_id: str, provider: Provider) -> RateGate:
        """The (tenant, provider) rate gate of this process."""
        key = (tenant_id, provider.name)
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = RateGate(
                provider.rate_limits,
                provider.rate_limit_headers,
                clock=self.clock,
                processes=self.processes,
            )
        return gate

    def in_flight(self) -> asyncio.Semaphore:
        """The semaphore of requests inside the HTTP pool (``max_in_flight``), one per event loop."""
        loop = asyncio.get_running_loop()
        if self._in_flight is None or self._in_flight[0] is not loop:
            self._in_flight = (loop, asyncio.Semaphore(self.max_in_flight))
        return self._in_flight[1]

    async def aclose(self) -> None:
        """Close the HTTP client this factory made."""
        if self._own_http:
            await self.http.aclose()

    # the refresh single-flight -------------------------------------------------------------------
    def _fresh(self, connection: Connection) -> bool:
        return (
            connection.expires_at is None or connection.expires_at - self.refresh_margin_s > self.clock.now()
        )

    def _usable(self, connection: Connection, stale: str | None) -> bool:
        if stale is not None:
            return connection.secrets.get("access_token") != stale
        return self._fresh(connection)

    async def ensure_fresh(
        self, tenant_id: str, connection_id: str, *, stale: str | None = None
    ) -> Connection:
        """The connection with an access token that is not about to expire, refreshing it at most
        once across every process sharing the store. ``stale`` (the sealed access token a 401 came
        back for) forces a refresh unless another caller already replaced that token.

        Raises:
            AuthError: the connection is gone, needs re-authorisation, or the provider refused
                the refresh (``invalid_grant``: the connection is marked ``needs_reauth``).
            ProviderError: the token endpoint failed (``retryable``), or the lease holder did not
                finish within twice the lease lifetime.
        """
        key = (tenant_id, connection_id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            connection = await self._load(tenant_id, connection_id)
            if self._usable(connection, stale):
                return connection
            deadline = self.clock.now() + 2 * self.lease_ttl_s
            while True:
                taken = await self.repository.acquire_lease(
                    tenant_id, connection_id, owner=self.owner, ttl_s=self.lease_ttl_s, now=self.clock.now()
                )
                if taken:
                    try:
                        connection = await self._load(tenant_id, connection_id)  # re-read under the lease
                        if self._usable(connection, stale):
                            return connection
                        return await self._refresh(connection)
                    finally:
                        await self.repository.release_lease(tenant_id, connection_id, owner=self.owner)
                await asyncio.sleep(self.lease_poll_s)
                connection = await self._load(tenant_id, connection_id)
                if self._usable(connection, stale):
                    return connection
                if self.clock.now() > deadline:
                    raise ProviderError(
                        f"{connection.provider}: another process holds the refresh lease too long",
                        retryable=True,
                    )

    async def _load(self, tenant_id: str, connection_id: str) -> Connection:
        connection = await self.repository.get_connection(tenant_id, connection_id)
        if connection is None:
            raise AuthError(f"connection {connection_id!r} no longer exists")
        if connection.status != "active":
            raise AuthError(f"{connection.provider}: connection {connection_id} is {connection.status}")
        return connection

    async def _refresh(self, connection: Connection) -> Connection:
        try:
            tokens = await self.oauth.refresh(connection)
        except AuthError as exc:
            await self._mark_needs_reauth(connection, reason=str(exc))
            raise
        except ProviderError as exc:
            await self._audit(
                connection, "refresh_failed", {"status": exc.status, "retryable": exc.retryable}
            )
            raise
        stored = await self.repository.update_connection(
            connection.tenant_id, connection.id, lambda current: self._apply(current, tokens)
        )
        if stored is None:
            raise AuthError(f"connection {connection.id!r} was deleted during its refresh")
        await self._audit(stored, "refresh", {"expires_at": stored.expires_at})
        return stored

    def _apply(self, current: Connection, tokens: TokenSet) -> Connection:
        now = self.clock.now()
        account = {**current.account, **tokens.account}
        if tokens.base_url:
            account["base_url"] = tokens.base_url
        return current.replace(
            expires_at=tokens.expires_at,
            scopes=tokens.scopes if tokens.scopes is not None else current.scopes,
            account=account,
            refreshed_at=now,
            updated_at=now,
        ).with_secrets(
            self.vault, {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token}
        )

    async def _mark_needs_reauth(self, connection: Connection, *, reason: str) -> None:
        now = self.clock.now()
        await self.repository.update_connection(
            connection.tenant_id,
            connection.id,
            lambda c: c.replace(status="needs_reauth", updated_at=now) if c.status == "active" else None,
        )
        await self._audit(connection, "needs_reauth", {"reason": reason[:200]})

    async def _audit(
        self, connection: Connection, kind: str, detail: dict[str, Any], *, actor: str = "system"
    ) -> None:
        await self.repository.append_audit(
            AuditEvent.new(
                connection.tenant_id,
                kind,
                connection_id=connection.id,
                provider=connection.provider,
                actor=actor,
                detail=detail,
                at=self.clock.now(),
            )
        )

    # test ---------------------------------------------------------------------------------------------
    async def test(self, tenant_id: str, connection_id: str, *, actor: str = "system") -> dict[str, Any]:
        """The provider's ``test`` action: its hook (``smtp_imap_login``, ``webhook_ping``) or its
        identity call through the authorised client. Returns what it learned of the account
        (stored on the connection); records a ``test`` audit event with the outcome.

        Raises:
            AuthError, ProviderError, IntegrationError: the test failed (after being audited).
        """
        from crm_sync.hooks import HOOKS, HookContext

        connection = await self.repository.get_connection(tenant_id, connection_id)
        if connection is None:
            raise IntegrationError(f"no connection {connection_id!r} in tenant {tenant_id!r}")
        provider = self.catalog.get(connection.provider)
        try:
            if provider.test_hook:
                result = await HOOKS[provider.test_hook](HookContext(connection, self.vault, self.http))
            else:
                client = AuthorizedClient(self, connection)
                assert provider.identity is not None
                resp = await client.request(
                    provider.identity.method, provider.identity.path, params=provider.identity.params
                )
                try:
                    result = _identity_fields(provider, resp.json())
                except ValueError:
                    result = {}
        except IntegrationError as exc:
            await self._audit(
                connection, "test", {"ok": False, "error": type(exc).__name__}
            ) if actor else None
            raise
        if result:
            await self.repository.update_connection(
                tenant_id, connection_id, lambda c: c.replace(account={**c.account, **result})
            )
        await self._audit(connection, "test", {"ok": True}, actor=actor)
        return result


class AuthorizedClient(ApiClient):
    """An :class:`~crm_sync.base.ApiClient` bound to one connection (see the module docstring).
    Made by :meth:`ConnectionClients.client`."""

    def __init__(self, clients: ConnectionClients, connection: Connection) -> None:
        self._clients = clients
        self._connection = connection
        self._provider = clients.catalog.get(connection.provider)
        self.provider = connection.provider
        self.tenant_id = connection.tenant_id
        self.connection_id = connection.id
        self.account: Mapping[str, Any] = dict(connection.account)

    def __repr__(self) -> str:
        return f"AuthorizedClient(provider={self.provider!r}, connection={self.connection_id!r})"

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
        """See :class:`crm_sync.base.ApiClient`."""
        c = self._clients
        async for attempt in stamina.retry_context(
            on=_retry_hook,
            attempts=c.retry_attempts,
            timeout=c.retry_timeout_s,
            wait_initial=c.retry_wait_initial_s,
            wait_max=c.retry_wait_max_s,
        ):
            with attempt:
                return await self._once(method, path, params=params, json=json, data=data, headers=headers)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        c = self._clients
        refreshed_for_401 = False
        while True:
            connection = self._connection
            if connection.auth_mode == "oauth2" and not c._fresh(connection):
                connection = self._connection = await c.ensure_fresh(connection.tenant_id, connection.id)
            if connection.status != "active":
                raise AuthError(f"{connection.provider}: connection {connection.id} is {connection.status}")
            gate = c.gate(connection.tenant_id, self._provider)
            url, out_headers, out_params, auth, used = _prepare(
                self._provider, connection, c.vault, path, headers, params, c._opened
            )
            # the window's place is held until the answer is back (see RollingWindow); the pool's
            # after it: a long wait for the window holds no pool slot
            async with gate.slot() as sent_at, c.in_flight():
                try:
                    with redacting(used):
                        resp = await c.http.request(
                            method,
                            url,
                            params=out_params,
                            json=json,
                            data=data,
                            headers=out_headers,
                            auth=auth,
                        )
                except httpx.HTTPError as exc:
                    raise ProviderError(
                        f"{connection.provider}: request failed ({type(exc).__name__})", retryable=True
                    ) from None
                except EgressRefusedError as exc:  # the connection's base_url: trying again cannot help
                    raise ProviderError(f"{connection.provider}: {exc}", retryable=False) from None
            gate.observe(resp.headers, sent_at=sent_at)
            if resp.status_code == 401 and connection.auth_mode == "oauth2" and not refreshed_for_401:
                refreshed_for_401 = True
                self._connection = await c.ensure_fresh(
                    connection.tenant_id, connection.id, stale=connection.secrets.get("access_token")
                )
                continue
            if resp.status_code == 401:
                await c._mark_needs_reauth(connection, reason="HTTP 401 with fresh credentials")
            if resp.status_code == 429:
                gate.pause(parse_retry_after(resp.headers) or 1.0)
            try:
                _raise_for(self._provider, resp, used)
            except ProviderError as exc:
                if exc.quota and exc.retry_after_s:
                    gate.pause(exc.retry_after_s)  # every caller of this account would hit it too
                raise
            return resp


#: A wait longer than this is not slept through inside a request: the error goes to the caller
#: (the sync queue retries the job later, without holding a worker).
_MAX_INLINE_WAIT_S = 30.0


def _retry_hook(exc: Exception) -> bool | float:
    """stamina's ``on``: retry retryable provider errors, waiting what ``Retry-After`` asked,
    unless that is a spent allowance (``quota``) or longer than ``_MAX_INLINE_WAIT_S``."""
    if isinstance(exc, ProviderError) and exc.retryable and not exc.quota:
        if exc.retry_after_s is None:
            return True
        return exc.retry_after_s if exc.retry_after_s <= _MAX_INLINE_WAIT_S else False
    return False
