"""A tenant's playbooks: stored as validated YAML source, one document per version.

Document id ``{playbook_id}@{version}`` in ``playbooks``; a conversation pins the version it
started on, so editing a playbook never changes a conversation under way. Versions are immutable:
storing an existing ``id@version`` again raises :class:`PlaybookVersionExistsError`. The first
version of a playbook is ``active`` at once; a later one is a ``draft`` until :meth:`activate`
(which retires the version that was active). New conversations start the active version their
routing (:mod:`app.authoring.routing`) chooses.
"""

from __future__ import annotations

from app.authoring.records import StoredPlaybook
from app.authoring.routing import PlaybookRoutes, RouteContext
from app.store import Order, Store, Transaction, where
from app.store import collections as col
from app.tenancy.records import TenantProfile
from kernel.clock import Clock
from kernel.errors import LeadWarmError
from playbooks import Playbook, load_playbook_text

__all__ = ["PlaybookNotFoundError", "PlaybookRepository", "PlaybookVersionExistsError"]

COLLECTION = col.PLAYBOOKS
ROUTES_DOC = (col.CONFIG, "playbook_routes")


class PlaybookNotFoundError(LeadWarmError, LookupError):
    """No such playbook (or version) for the tenant."""


class PlaybookVersionExistsError(LeadWarmError):
    """That playbook version is already stored (versions are immutable: publish a new one)."""


class PlaybookRepository:
    """Load and save a tenant's playbooks; parsed playbooks are cached by (tenant, id, version)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._cache: dict[tuple[str, str, int], Playbook] = {}

    async def save(
        self, tenant_id: str, source: str, *, origin: str = "<api>", status: str | None = None
    ) -> StoredPlaybook:
        """Validate ``source`` and store it as the playbook's version it declares: ``active`` when
        it is the playbook's first version, else a ``draft`` (``status`` forces one or the other).

        Raises :class:`playbooks.PlaybookError` (file:line: reason) when it is invalid and
        :class:`PlaybookVersionExistsError` when that version is already stored.
        """
        playbook = load_playbook_text(source, source=origin)
        others = await self.versions(tenant_id, playbook.id)
        stored = StoredPlaybook(
            id=playbook.id,
            version=playbook.version,
            name=playbook.name,
            language=playbook.language,
            source=source,
            status=status or ("draft" if others else "active"),  # type: ignore[arg-type]
            updated_at=self.clock.now(),
        )
        doc_id = f"{playbook.id}@{playbook.version}"

        async def fn(tx: Transaction) -> bool:
            if await tx.get(COLLECTION, doc_id) is not None:
                return False
            tx.set(COLLECTION, doc_id, stored.to_doc())
            return True

        if not await self.store.run_transaction(tenant_id, fn):
            raise PlaybookVersionExistsError(
                f"playbook {playbook.id!r} version {playbook.version} already exists; "
                "versions are immutable: raise `version` to publish a change"
            )
        self._cache[(tenant_id, playbook.id, playbook.version)] = playbook
        return stored

    async def versions(self, tenant_id: str, playbook_id: str) -> list[StoredPlaybook]:
        """Every stored version of one playbook, oldest first."""
        docs = await self.store.query(tenant_id, COLLECTION, filters=[where("id", "==", playbook_id)])
        return sorted((StoredPlaybook.from_doc(d.data) for d in docs), key=lambda p: p.version)

    async def activate(self, tenant_id: str, playbook_id: str, version: int) -> StoredPlaybook:
        """Make ``version`` the one new conversations start; the previously active version is
        retired (conversations under way keep theirs). Raises :class:`PlaybookNotFoundError`."""
        others = [p for p in await self.versions(tenant_id, playbook_id) if p.version != version]
        now = self.clock.now()

        async def fn(tx: Transaction) -> StoredPlaybook | None:
            data = await tx.get(COLLECTION, f"{playbook_id}@{version}")
            if data is None:
                return None
            current = [await tx.get(COLLECTION, f"{playbook_id}@{p.version}") for p in others]
            chosen = StoredPlaybook.from_doc(data).model_copy(update={"status": "active", "updated_at": now})
            tx.set(COLLECTION, f"{playbook_id}@{version}", chosen.to_doc())
            for doc in current:
                if doc is not None and doc.get("status") == "active":
                    retired = {**doc, "status": "retired", "updated_at": now}
                    tx.set(COLLECTION, f"{playbook_id}@{doc['version']}", retired)
            return chosen

        activated = await self.store.run_transaction(tenant_id, fn)
        if activated is None:
            raise PlaybookNotFoundError(f"playbook {playbook_id!r} version {version} not found")
        return activated

    # ------------------------------------------------------------------ routing
    async def routes(self, tenant_id: str) -> PlaybookRoutes:
        """The tenant's routing rules (none stored: no rules)."""
        data = await self.store.get(tenant_id, *ROUTES_DOC)
        return PlaybookRoutes.model_validate({k: v for k, v in (data or {}).items() if k != "updated_at"})

    async def save_routes(self, tenant_id: str, routes: PlaybookRoutes) -> None:
        """Replace the tenant's routing rules."""
        await self.store.set(
            tenant_id, *ROUTES_DOC, {**routes.model_dump(mode="json"), "updated_at": self.clock.now()}
        )

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

    async def choose(
        self,
        profile: TenantProfile,
        language: str | None,
        *,
        trigger: str,
        context: RouteContext | None = None,
    ) -> Playbook:
        """The playbook a new conversation starts (its active version): the first matching routing
        rule's, else by the lead's language (``playbooks_by_language``), else the routes' default,
        else the profile's ``default_playbook``; a candidate without an active version or not meant
        for ``trigger`` is skipped. ``context`` says what else is known (channel, first message,
        source, ad referral, UTM parameters).

        Raises :class:`PlaybookNotFoundError` when no candidate fits.
        """
        ctx = context or RouteContext(trigger=trigger, language=language)
        routes = await self.routes(profile.id)
        candidates: list[str] = routes.candidates(ctx)
        if language and language in profile.playbooks_by_language:
            candidates.append(profile.playbooks_by_language[language])
        if routes.default_playbook:
            candidates.append(routes.default_playbook)
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
