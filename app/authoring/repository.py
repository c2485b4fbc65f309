"""A tenant's playbooks: stored as validated YAML source, one document per version.

Document id ``{playbook_id}@{version}`` in ``playbooks``; a conversation pins the version it
started on, so editing a playbook never changes a conversation under way.
"""

from __future__ import annotations

from app.authoring.records import StoredPlaybook
from app.store import Order, Store, where
from app.store import collections as col
from app.tenancy.records import TenantProfile
from kernel.clock import Clock
from kernel.errors import LeadWarmError
from playbooks import Playbook, load_playbook_text

__all__ = ["PlaybookNotFoundError", "PlaybookRepository"]

COLLECTION = col.PLAYBOOKS


class PlaybookNotFoundError(LeadWarmError, LookupError):
    """No such playbook (or version) for the tenant."""


class PlaybookRepository:
    """Load and save a tenant's playbooks; parsed playbooks are cached by (tenant, id, version)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._cache: dict[tuple[str, str, int], Playbook] = {}

    async def save(self, tenant_id: str, source: str, *, origin: str = "<api>") -> StoredPlaybook:
        """Validate ``source`` and store it as the playbook's version it declares.

        Raises :class:`playbooks.PlaybookError` (file:line: reason) when it is invalid.
        """
        playbook = load_playbook_text(source, source=origin)
        stored = StoredPlaybook(
            id=playbook.id,
            version=playbook.version,
            name=playbook.name,
            language=playbook.language,
            source=source,
            updated_at=self.clock.now(),
        )
        await self.store.set(tenant_id, COLLECTION, f"{playbook.id}@{playbook.version}", stored.to_doc())
        self._cache[(tenant_id, playbook.id, playbook.version)] = playbook
        return stored

    async def get(self, tenant_id: str, playbook_id: str, version: int | None = None) -> Playbook:
        """The playbook at ``version`` (the newest active one when ``None``).

        Raises :class:`PlaybookNotFoundError`.
        """
        if version is not None:
            cached = self._cache.get((tenant_id, playbook_id, version))
            if cached is not None:
                return cached
            data = await self.store.get(tenant_id, COLLECTION, f"{playbook_id}@{version}")
        else:
            docs = await self.store.query(
                tenant_id,
                COLLECTION,
                filters=[where("id", "==", playbook_id), where("status", "==", "active")],
                order_by=[Order("version", descending=True)],
                limit=1,
            )
            data = docs[0].data if docs else None
        if data is None:
            raise PlaybookNotFoundError(f"playbook {playbook_id!r} (version {version}) not found")
        stored = StoredPlaybook.from_doc(data)
        key = (tenant_id, stored.id, stored.version)
        if key not in self._cache:
            self._cache[key] = load_playbook_text(stored.source, source=f"{stored.id}@{stored.version}")
        return self._cache[key]

    async def list(self, tenant_id: str) -> list[StoredPlaybook]:
        """Every stored version, by id then version."""
        docs = await self.store.query(tenant_id, COLLECTION)
        return sorted((StoredPlaybook.from_doc(d.data) for d in docs), key=lambda p: (p.id, p.version))

    async def choose(self, profile: TenantProfile, language: str | None, *, trigger: str) -> Playbook:
        """The playbook a new conversation starts: by the lead's language, else the default.

        Raises :class:`PlaybookNotFoundError` when the tenant has none configured.
        """
        candidates: list[str] = []
        if language and language in profile.playbooks_by_language:
            candidates.append(profile.playbooks_by_language[language])
        if profile.default_playbook:
            candidates.append(profile.default_playbook)
        for playbook_id in candidates:
            try:
                playbook = await self.get(profile.id, playbook_id)
            except PlaybookNotFoundError:
                continue
            if trigger in playbook.triggers:
                return playbook
        raise PlaybookNotFoundError(f"tenant {profile.id!r} has no playbook for trigger {trigger!r}")
