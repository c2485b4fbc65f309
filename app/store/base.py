"""The storage port: tenant-scoped collections of JSON documents, shaped like Firestore.

Every document lives at ``(tenant_id, collection, doc_id)``. A collection is a slash-separated path
such as ``"leads"`` or ``"conversations/c_123/messages"`` (Firestore sub-collections). Values are
JSON-compatible: ``str``, ``int``, ``float``, ``bool``, ``None``, lists and dicts. Times are stored
as floats, seconds since the Unix epoch (UTC), so that they compare and sort the same way on every
backend.

Reads and writes that must be atomic go through :meth:`Store.run_transaction`, which, like
Firestore's ``transactional`` decorator, calls the given coroutine function with a
:class:`Transaction` and may call it again when a concurrent writer touched what it read. The
function must therefore be free of side effects outside the transaction (no network calls).

Backends: :class:`app.store.sqlite.SQLiteStore` (embedded default, one file) and the Firestore
backend. ``tests/store/test_contract.py`` runs the same suite against each.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from kernel.errors import LeadWarmError

__all__ = [
    "LOG_COLLECTION",
    "SYSTEM_TENANT",
    "ConflictError",
    "Document",
    "DocumentExistsError",
    "Filter",
    "LogRecord",
    "Order",
    "Store",
    "StoreError",
    "Transaction",
    "check_cursor",
    "check_deltas",
    "cursor_of",
]

JSON = Any
Op = Literal["==", "!=", "<", "<=", ">", ">=", "in", "array_contains"]
T = TypeVar("T")

#: Namespace for routing indexes that must be looked up before the tenant is known
#: (admin API key hashes, a WhatsApp phone-number id -> tenant). Never holds tenant data.
SYSTEM_TENANT = "_system"


class StoreError(LeadWarmError):
    """Base error of the storage layer."""


class DocumentExistsError(StoreError):
    """Raised by :meth:`Transaction.create` when the document already exists."""


class ConflictError(StoreError):
    """Raised by :meth:`Store.run_transaction` when contention outlasted every attempt."""


@dataclass(frozen=True, slots=True)
class Filter:
    """One ``where`` clause: ``field op value``; ``field`` may be dotted (``"timer.due_at"``)."""

    field: str
    op: Op
    value: JSON


@dataclass(frozen=True, slots=True)
class Order:
    """One ``order_by`` clause."""

    field: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Document:
    """A stored document: where it lives and its data (a fresh dict, safe to mutate)."""

    tenant_id: str
    collection: str
    id: str
    data: dict[str, JSON] = field(default_factory=dict)


def check_deltas(deltas: Mapping[str, int | float]) -> None:
    """Validate :meth:`Store.increment`'s deltas (for backends overriding it); raises :class:`StoreError`."""
    for key, delta in deltas.items():
        if key.count(".") > 1 or not all(key.split(".")):
            raise StoreError(f"increment takes a field or a 'map.field', got {key!r}")
        if isinstance(delta, bool) or not isinstance(delta, int | float):
            raise StoreError(f"increment of {key!r} must be a number, got {delta!r}")


def where(field_: str, op: Op, value: JSON) -> Filter:
    """Shorthand for :class:`Filter`."""
    return Filter(field_, op, value)


def cursor_of(doc: Document, order_by: Sequence[Order]) -> list[JSON]:
    """The :meth:`Store.query` ``start_after`` cursor of ``doc`` (the last document of a page):
    the values of the ``order_by`` fields (dotted paths read through maps), then ``doc.id``."""
    values: list[JSON] = []
    for o in order_by:
        value: JSON = doc.data
        for part in o.field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        values.append(value)
    return [*values, doc.id]


def check_cursor(start_after: Sequence[JSON] | None, order_by: Sequence[Order]) -> None:
    """Validate a ``start_after`` cursor against ``order_by``; raises :class:`StoreError`."""
    if start_after is None:
        return
    if not order_by:
        raise StoreError("start_after needs an order_by")
    if len(start_after) != len(order_by) + 1 or not isinstance(start_after[-1], str):
        raise StoreError("start_after takes one value per order_by field, then the document id")


#: Collection of the append-only ingest log on backends without a table of their own for it.
LOG_COLLECTION = "ingest_log"


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One entry of a tenant's append-only ingest log (:meth:`Store.append_log`).

    ``id`` is the idempotency key (a provider message id); ``at`` is when it arrived (UTC epoch
    seconds), the order in which :meth:`Store.consume_log` hands entries over; ``data`` is JSON.
    ``seen`` names a document ``(collection, doc_id)`` whose existence means the entry was already
    consumed (a redelivery after its log entry was turned into an inbox item): it is then a
    duplicate too.
    """

    tenant_id: str
    id: str
    at: float
    data: dict[str, JSON]
    seen: tuple[str, str] | None = None


class Transaction(abc.ABC):
    """Reads and buffered writes that commit together, scoped to one tenant.

    As in Firestore, all reads come before the first write. Writes become visible when the
    function passed to :meth:`Store.run_transaction` returns.
    """

    tenant_id: str

    @abc.abstractmethod
    async def get(self, collection: str, doc_id: str) -> dict[str, JSON] | None:
        """Return the document's data, or ``None`` when it does not exist."""

    async def get_many(self, refs: Sequence[tuple[str, str]]) -> list[dict[str, JSON] | None]:
        """Several documents, given as ``(collection, doc_id)`` pairs, in one round trip where the
        backend has one (Firestore ``BatchGetDocuments``); the result follows ``refs``' order, with
        ``None`` for a missing document. The default reads them one by one."""
        return [await self.get(collection, doc_id) for collection, doc_id in refs]

    @abc.abstractmethod
    async def query(
        self,
        collection: str,
        *,
        filters: Sequence[Filter] = (),
        order_by: Sequence[Order] = (),
        limit: int | None = None,
    ) -> list[Document]:
        """Query inside the transaction (the result joins its read set)."""

    @abc.abstractmethod
    def set(self, collection: str, doc_id: str, data: dict[str, JSON], *, merge: bool = False) -> None:
        """Write the document; with ``merge`` only the given top-level fields change."""

    @abc.abstractmethod
    def create(self, collection: str, doc_id: str, data: dict[str, JSON]) -> None:
        """Write a new document; the commit raises :class:`DocumentExistsError` if it exists."""

    @abc.abstractmethod
    def delete(self, collection: str, doc_id: str) -> None:
        """Delete the document (no error when it is absent)."""


class Store(abc.ABC):
    """Tenant-scoped document store. All methods are coroutine-safe."""

    #: ``True`` when :meth:`append_log` is one cheap commit for any number of records (SQLite's
    #: unindexed log table). ``False`` (this default, Firestore): a log would put every webhook of a
    #: tenant on one hot document, so the ingest writes deliveries straight into the inbox instead.
    group_commit_log: bool = False
    #: ``True`` when a commit becomes durable only in :meth:`sync_commits` (SQLite with
    #: ``DURABILITY=power``): callers may overlap that sync with their next commit.
    syncs_commits_apart: bool = False

    @abc.abstractmethod
    async def get(self, tenant_id: str, collection: str, doc_id: str) -> dict[str, JSON] | None:
        """Return the document's data, or ``None``."""

    @abc.abstractmethod
    async def set(
        self, tenant_id: str, collection: str, doc_id: str, data: dict[str, JSON], *, merge: bool = False
    ) -> None:
        """Write one document outside any transaction."""

    @abc.abstractmethod
    async def delete(self, tenant_id: str, collection: str, doc_id: str) -> None:
        """Delete one document (no error when it is absent)."""

    async def get_many(self, tenant_id: str, refs: Sequence[tuple[str, str]]) -> list[dict[str, JSON] | None]:
        """Several documents of one tenant, given as ``(collection, doc_id)`` pairs, in one round trip
        where the backend has one; the result follows ``refs``' order (``None`` for a missing one).
        The default reads them one by one."""
        return [await self.get(tenant_id, collection, doc_id) for collection, doc_id in refs]

    async def get_many_then_query(
        self,
        tenant_id: str,
        refs: Sequence[tuple[str, str]],
        collection: str,
        *,
        filters: Sequence[Filter] = (),
        order_by: Sequence[Order] = (),
        limit: int | None = None,
    ) -> tuple[list[dict[str, JSON] | None], list[Document]]:
        """:meth:`get_many` of ``refs``, then :meth:`query` of ``collection``, read in that order
        (so a document the query finds was committed no later than those ``refs`` returned), in
        one round trip where the backend can (SQLite: one hand-off to its reader thread, about
        0.1 ms of CPU saved). Returns ``(documents, query result)``. The default makes both
        calls."""
        docs = await self.get_many(tenant_id, refs)
        found = await self.query(tenant_id, collection, filters=filters, order_by=order_by, limit=limit)
        return docs, found

    async def increment(
        self,
        tenant_id: str,
        collection: str,
        doc_id: str,
        deltas: Mapping[str, int | float],
        *,
        fields: Mapping[str, JSON] | None = None,
    ) -> None:
        """Add ``deltas`` to numeric fields of one document atomically, outside any transaction.

        A missing document or field counts as 0. A key ``"a.b"`` is field ``b`` of the map ``a`` (one
        level); other fields of that map are kept. ``fields`` are set as given (top-level). Meant for
        counter shards: on Firestore it is one write with ``FieldValue.increment`` (no read, no
        lock), so concurrent increments never contend; the default is a read-modify-write
        transaction.

        Raises:
            StoreError: a key of ``deltas`` has more than one dot, or a non-number delta.
        """
        check_deltas(deltas)

        async def fn(tx: Transaction) -> None:
            data = dict(await tx.get(collection, doc_id) or {})
            data.update(fields or {})
            for key, delta in deltas.items():
                if "." in key:
                    outer, inner = key.split(".")
                    nested = dict(data.get(outer) or {})
                    nested[inner] = nested.get(inner, 0) + delta
                    data[outer] = nested
                else:
                    data[key] = data.get(key, 0) + delta
            tx.set(collection, doc_id, data)

        await self.run_transaction(tenant_id, fn, max_attempts=20)

    @abc.abstractmethod
    async def query(
        self,
        tenant_id: str,
        collection: str,
        *,
        filters: Sequence[Filter] = (),
        order_by: Sequence[Order] = (),
        limit: int | None = None,
        start_after: Sequence[JSON] | None = None,
    ) -> list[Document]:
        """Documents of one tenant's collection matching every filter, ordered, at most ``limit``.

        Documents missing an ordered or filtered field are left out, as in Firestore. Documents
        whose ordered fields tie come by id, in the direction of the last ``order_by``.
        ``start_after`` (cursor pagination, Firestore's ``start_after``) is :func:`cursor_of` the
        last document of the previous page: the next page starts after it, however many
        documents came before (no offset is read and skipped).

        Raises:
            StoreError: ``start_after`` without ``order_by``, or not one value per ordered field
                plus the document id.
        """

    async def count(self, tenant_id: str, collection: str, *, filters: Sequence[Filter] = ()) -> int:
        """How many documents of one tenant's collection match every filter (as :meth:`query`
        would return them), without reading them where the backend can: SQLite ``COUNT(*)``,
        Firestore's ``count()`` aggregation (billed one read per 1,000 index entries). The
        default reads the matching documents."""
        return len(await self.query(tenant_id, collection, filters=filters))

    @abc.abstractmethod
    async def query_group(
        self,
        collection: str,
        *,
        filters: Sequence[Filter] = (),
        order_by: Sequence[Order] = (),
        limit: int | None = None,
    ) -> list[Document]:
        """Like :meth:`query` across every tenant (a Firestore collection-group query).

        Reserved for the job scheduler, which must find due work before it knows the tenant;
        ``collection`` is the last path segment (``"jobs"``).
        """

    @abc.abstractmethod
    async def list_collections(self, tenant_id: str) -> list[str]:
        """Every collection path of the tenant holding at least one document, sorted.

        Sub-collections are listed by their full path (``"conversations/c1/messages"``), whether or
        not their parent document exists. Meant for export and maintenance, not the hot path: on
        Firestore it reads every document id of the tenant.
        """

    @abc.abstractmethod
    async def list_tenants(self) -> list[str]:
        """Every tenant id that holds at least one document, ``SYSTEM_TENANT`` excluded."""

    @abc.abstractmethod
    async def run_transaction(
        self,
        tenant_id: str,
        fn: Callable[[Transaction], Awaitable[T]],
        *,
        max_attempts: int = 5,
        inline: bool = False,
    ) -> T:
        """Run ``fn`` in a transaction and commit; retry on contention.

        ``inline=True`` says that ``fn`` awaits nothing but its transaction's own reads and
        touches no state another thread may change: a backend whose store calls run on a thread of
        their own (SQLite) may then run ``fn`` on that thread, reads, writes and commit in one
        hand-off. If ``fn`` awaits anything else after all, that attempt is rolled back and ``fn``
        runs again the ordinary way (``fn`` must bear re-running, as every transaction function).
        Other backends ignore it.

        Raises:
            ConflictError: contention lasted ``max_attempts`` attempts.
            DocumentExistsError: ``fn`` called :meth:`Transaction.create` on an existing document.
            Any exception ``fn`` raises, after rolling back.
        """

    async def append_log(
        self,
        records: Sequence[LogRecord],
        *,
        on_new: Callable[[Transaction], Awaitable[None]] | None = None,
        defer_sync: bool = False,
    ) -> list[bool]:
        """Append ``records`` to their tenants' ingest logs, durably, in as few commits as the
        backend allows (SQLite: one; this default: one transaction per tenant).

        With ``defer_sync``, a store that syncs its commits apart (SQLite, ``DURABILITY=power``)
        may return once the commit is done but before it is synced: the caller awaits
        :meth:`sync_commits` before it answers for the records (group commit: the next group
        commits while this one's sync runs). Here every commit is durable when it returns.

        Returns, for each record in order, ``True`` when it was appended, ``False`` for a duplicate
        (its id already in the log, earlier in ``records``, or its ``seen`` document exists).
        ``on_new(tx)`` runs once per tenant that got a new record, inside the commit that appends
        them (it reads before it writes, as every transaction function): a job that will consume
        the log is enqueued atomically with what it consumes.

        Raises:
            StoreError: the store is unavailable; nothing of the call was written.
        """
        by_tenant: dict[str, list[int]] = {}
        for i, record in enumerate(records):
            by_tenant.setdefault(record.tenant_id, []).append(i)
        result = [False] * len(records)
        for tenant_id, indexes in by_tenant.items():

            async def fn(tx: Transaction, indexes: list[int] = indexes) -> list[int]:
                fresh: list[int] = []
                ids: set[str] = set()
                for i in indexes:
                    record = records[i]
                    if record.id in ids or await tx.get(LOG_COLLECTION, record.id) is not None:
                        continue
                    if record.seen is not None and await tx.get(*record.seen) is not None:
                        continue
                    ids.add(record.id)
                    fresh.append(i)
                if fresh and on_new is not None:
                    await on_new(tx)
                for i in fresh:
                    record = records[i]
                    tx.set(LOG_COLLECTION, record.id, {"at": record.at, "data": record.data})
                return fresh

            for i in await self.run_transaction(tenant_id, fn):
                result[i] = True
        return result

    async def has_log(self, tenant_id: str) -> bool:
        """Whether the tenant's ingest log holds any entry (a read outside any transaction)."""
        return bool(await self.query(tenant_id, LOG_COLLECTION, limit=1))

    async def consume_log(
        self,
        tenant_id: str,
        fn: Callable[[Transaction, list[LogRecord]], Awaitable[None]],
        *,
        limit: int = 256,
    ) -> int:
        """Hand the tenant's oldest ``limit`` log entries to ``fn`` and delete them, in ONE
        transaction: an entry is consumed exactly once, and a crash anywhere leaves it in the log.

        ``fn(tx, records)`` must do its reads before its writes. Returns how many entries were
        consumed (0 when the log is empty).
        """

        async def run(tx: Transaction) -> int:
            docs = await tx.query(LOG_COLLECTION, order_by=[Order("at")], limit=limit)
            if not docs:
                return 0
            batch = [LogRecord(tenant_id, d.id, float(d.data["at"]), dict(d.data["data"])) for d in docs]
            await fn(tx, batch)
            for d in docs:
                tx.delete(LOG_COLLECTION, d.id)
            return len(docs)

        return await self.run_transaction(tenant_id, run)

    async def sync_commits(self) -> None:  # noqa: B027 - optional hook
        """Return once every commit this store has returned from is as durable as it promises.
        Here (and on Firestore) a commit is durable when it returns: nothing to wait for. SQLite
        with ``DURABILITY=power`` syncs its WAL here, one sync for every commit made before it
        (:meth:`app.store.sqlite.SQLiteStore.sync_commits`). Raises :class:`StoreError` when the
        sync failed."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
