"""Tenants: their profile, admin API keys, channel routes, and the demo seed.

Admin keys are stored as SHA-256 hashes in the routing namespace (``SYSTEM_TENANT``), since the
key must be resolved before the tenant is known; the clear key is shown once, when generated.
Channel routes map a provider's receiving address (a WhatsApp phone-number id) to its tenant.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from pathlib import Path

from app.core.logs import get_logger
from app.store import SYSTEM_TENANT, Store
from app.store import collections as col
from app.store.ids import compound_id
from app.tenancy.records import TenantProfile
from kernel.clock import Clock

__all__ = [
    "TenantDirectory",
    "hash_api_key",
    "new_api_key",
]

log = get_logger("leadwarm.tenants")

#: Seconds a channel route read from the store is trusted by this process. A route changed by THIS
#: process is seen at once (:meth:`TenantDirectory.set_route` updates the cache); one changed by
#: another process within this delay.
ROUTE_CACHE_S = 30.0
#: Cached routes at most (addresses are attacker-chosen in unsigned bodies: the cache stays bounded).
_MAX_ROUTES = 10_000

API_KEYS = col.API_KEYS
ROUTES = col.CHANNEL_ROUTES
PROFILE = (col.CONFIG, "tenant")


def _route_id(channel: str, address: str) -> str:
    return compound_id(channel, address.strip().lower())


def hash_api_key(key: str) -> str:
    """Hex SHA-256 of an API key (keys are 32 random bytes, so no salt or KDF is needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    """A fresh admin API key: ``lw_`` + 43 URL-safe characters (256 bits)."""
    return "lw_" + secrets.token_urlsafe(32)


class TenantDirectory:
    """Reads and writes tenant-level records; caches profiles per process (short-lived data)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._profiles: dict[str, TenantProfile] = {}
        self._routes: dict[str, tuple[str | None, float]] = {}
        """route id -> (owning tenant or None, monotonic expiry): webhooks route without a read."""

    async def profile(self, tenant_id: str) -> TenantProfile:
        """The tenant's profile; a default one if none was saved."""
        cached = self._profiles.get(tenant_id)
        if cached is not None:
            return cached
        data = await self.store.get(tenant_id, *PROFILE)
        profile = TenantProfile.from_doc(data) if data else TenantProfile(id=tenant_id, name=tenant_id)
        self._profiles[tenant_id] = profile
        return profile

    async def save_profile(self, profile: TenantProfile) -> None:
        """Write the profile (and refresh this process's cache)."""
        await self.store.set(profile.id, *PROFILE, profile.to_doc())
        self._profiles[profile.id] = profile

    async def exists(self, tenant_id: str) -> bool:
        """Whether the tenant has a saved profile."""
        return await self.store.get(tenant_id, *PROFILE) is not None

    # ------------------------------------------------------------------ API keys
    async def add_api_key(self, tenant_id: str, key: str, *, label: str = "admin") -> None:
        """Register ``key`` (stored hashed) for ``tenant_id``."""
        await self.store.set(
            SYSTEM_TENANT,
            API_KEYS,
            hash_api_key(key),
            {"tenant_id": tenant_id, "label": label, "created_at": self.clock.now()},
        )

    async def tenant_for_key(self, key: str) -> str | None:
        """The tenant an admin key belongs to, or ``None``.

        Keys are looked up by their SHA-256 digest: an attacker who times the lookup learns about
        the digest of their guess, never about a stored key (256 random bits, preimage-resistant),
        so no constant-time compare is needed (and comparing a digest with itself proved nothing)."""
        doc = await self.store.get(SYSTEM_TENANT, API_KEYS, hash_api_key(key))
        return str(doc["tenant_id"]) if doc is not None and doc.get("tenant_id") else None

    async def has_api_key(self, tenant_id: str) -> bool:
        """Whether any admin key is registered for the tenant."""
        docs = await self.store.query(SYSTEM_TENANT, API_KEYS)
        return any(d.data.get("tenant_id") == tenant_id for d in docs)

    # ------------------------------------------------------------------ routes
    async def set_route(self, channel: str, address: str, tenant_id: str) -> None:
        """Route webhooks addressed to ``address`` on ``channel`` to ``tenant_id`` (addresses compare
        case-insensitively)."""
        route_id = _route_id(channel, address)
        self._routes.pop(route_id, None)
        await self.store.set(SYSTEM_TENANT, ROUTES, route_id, {"tenant_id": tenant_id})
        self._routes[route_id] = (tenant_id, time.monotonic() + ROUTE_CACHE_S)

    async def route(self, channel: str, address: str) -> str | None:
        """The tenant that owns ``address`` on ``channel``, or ``None``.

        Answers from this process's cache (:data:`ROUTE_CACHE_S`, kept small: one entry per
        receiving address asked about, the unrouted ones included, at most ``_MAX_ROUTES``)."""
        if not address:
            return None
        route_id = _route_id(channel, address)
        cached = self._routes.get(route_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        doc = await self.store.get(SYSTEM_TENANT, ROUTES, route_id)
        tenant = str(doc["tenant_id"]) if doc else None
        if len(self._routes) >= _MAX_ROUTES:
            self._routes.clear()
        self._routes[route_id] = (tenant, time.monotonic() + ROUTE_CACHE_S)
        return tenant

    def forget_routes(self) -> None:
        """Drop this process's cached routes (the next lookups read the store)."""
        self._routes.clear()


def write_key_file(data_dir: Path, tenant_id: str, key: str) -> Path:
    """Keep a generated key where its owner can find it again (mode 0600)."""
    path = data_dir / f"admin-api-key.{tenant_id}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return path
