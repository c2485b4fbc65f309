"""The production store: the storage port on Cloud Firestore (native mode), async client.

Layout: the document ``(tenant, "conversations/c1/messages", "m1")`` lives at
``tenants/{tenant}/conversations/c1/messages/m1``; :data:`SYSTEM_TENANT` is ``tenants/_system``.
Each tenant that ever received a write also gets a marker document ``tenants/{tenant}`` (field
``tenant_id``), written once per process and tenant, so that :meth:`FirestoreStore.list_tenants` is
one small query; ``ListDocuments(show_missing=true)`` would scan every descendant document
(googleapis/nodejs-firestore#825).

Semantics kept identical to :class:`app.store.sqlite.SQLiteStore` (``tests/store/test_contract.py``):

- ``set(merge=True)`` replaces only the given *top-level* fields, a nested map as a whole: the write
  uses an explicit field mask of the top-level keys (Firestore's ``merge=True`` would deep-merge maps).
- ``== None`` matches explicit nulls (Firestore ``IS_NULL``); documents missing a filtered or ordered
  field are left out (Firestore does this natively); an empty ``in`` list matches nothing.
- Transactions follow Firestore's model (reads before writes; pessimistic locks; ``ABORTED`` under
  contention). :meth:`FirestoreStore.run_transaction` retries ``ABORTED`` (on reads or on commit)
  with jittered backoff plus as long as the aborted call waited for locks, keeping its place in
  line (``retry_transaction``, and its in-process locks through the backoff), and raises
  :class:`ConflictError` after ``max_attempts``. An exception raised by the function rolls back and
  propagates unchanged. Every RPC of a transaction has a deadline (:data:`_RPC_TIMEOUT_S`), and so
  does every read and write outside one (retries included; :class:`StoreError` when unanswered).
- Serialisation is per document, not per tenant. Within one process, a transaction takes an
  in-process lock on every document it reads (before the read) or writes (before the commit), held
  until its commit or rollback; a query locks the documents it returned. Two transactions that read
  a document and then both write it would otherwise hold each other's read lock: production
  Firestore aborts the younger at once (wound-wait), but Google's emulator waits for a lock timeout
  (about 2 s, measured) and aborts then. Lock conflicts are resolved by *wait-die* on the attempt's
  age (the first attempt's start, kept across retries): an older transaction, or one holding no lock
  yet, waits for the holder; a younger one holding locks rolls back, waits for the older to finish
  and starts again, so there is no
  in-process deadlock and transactions on different documents (different conversations of one
  tenant) run concurrently. A query in a transaction also locks its collection (the emulator locks
  a transactional query's range). Contention between processes goes through Firestore's own
  concurrency control and the retry loop.

Firestore limits that SQLite does not have (the port leaves them undefined): integers are 64-bit,
a document is at most 1 MiB, ``in`` takes at most 30 values, ids may not contain ``/`` nor be ``.``,
``..`` or ``__x__`` (https://firebase.google.com/docs/firestore/quotas#limits).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud.firestore import AsyncClient, AsyncQuery, AsyncTransaction
from google.cloud.firestore_v1 import FieldFilter
from google.cloud.firestore_v1.async_collection import AsyncCollectionReference
from google.cloud.firestore_v1.async_document import AsyncDocumentReference
from google.cloud.firestore_v1.base_document import DocumentSnapshot
from google.cloud.firestore_v1.field_path import FieldPath
from google.cloud.firestore_v1.transforms import Increment

from app.core.logs import get_logger
from app.store.base import (
    JSON,
    SYSTEM_TENANT,
    ConflictError,
    Document,
    DocumentExistsError,
    Filter,
    Order,
    Store,
    StoreError,
    Transaction,
    check_cursor,
    check_deltas,
)

__all__ = ["FirestoreStore", "TransactionStats", "open_firestore_store"]

T = TypeVar("T")

log = get_logger("leadwarm.store")

#: Root collection holding one sub-tree per tenant.
TENANTS = "tenants"
#: Firestore's cap on the values of one ``in`` filter (quotas page, "Queries").
MAX_IN_VALUES = 30
#: Backoff between transaction attempts, seconds: ``base * 2**attempt``, capped, full jitter, plus
#: 1 to 1.5 times how long the aborted call waited (see :func:`_backoff`).
_BACKOFF_BASE_S = 0.01
_BACKOFF_CAP_S = 0.5
#: Deadline of one RPC of a transaction (begin, read, query, commit), seconds. The client's own
#: defaults are 60 s (commit) and 300 s with retries (reads), longer than any caller waits; a read
#: past the deadline is retried as contention, a commit past it is reported (its outcome is unknown).
_RPC_TIMEOUT_S = 30.0
#: Deadline of a rollback, seconds (sent without waiting; the server also expires the transaction).
_ROLLBACK_TIMEOUT_S = 10.0
#: Most of an aborted call's wait that :func:`_backoff` adds, seconds (the emulator's lock timeout
#: is 2 s; a read that hit its 30 s deadline must not park its transaction's locks for as long).
_WAIT_BACKOFF_CAP_S = 4.0

# The port's operators in the Python client's spelling (google.cloud.firestore_v1.base_query).
_OPS: dict[str, str] = {
    "==": "==",
    "!=": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "in": "in",
    "array_contains": "array_contains",
}


def _check_segment(segment: str, what: str) -> str:
    """Return ``segment`` if Firestore accepts it as an id, else raise :class:`StoreError`."""
    if (
        not segment
        or "/" in segment
        or segment in (".", "..")
        or (segment.startswith("__") and segment.endswith("__"))
    ):
        raise StoreError(f"invalid {what} for Firestore: {segment!r}")
    return segment


def _collection_segments(tenant_id: str, collection: str) -> tuple[str, ...]:
    """Path segments of a tenant's collection: ``("tenants", tenant, *collection.split("/"))``."""
    parts = collection.split("/")
    if len(parts) % 2 == 0:
        raise StoreError(f"collection path must have an odd number of segments: {collection!r}")
    for part in parts:
        _check_segment(part, "collection path segment")
    return (TENANTS, _check_segment(tenant_id, "tenant id"), *parts)


def _field_path(field: str) -> str:
    """A dotted port field (``"timer.due_at"``) as a quoted Firestore field path."""
    parts = field.split(".")
    if not all(parts):
        raise StoreError(f"invalid field name {field!r}")
    return FieldPath(*parts).to_api_repr()


def _set_kwargs(data: dict[str, JSON], merge: bool) -> dict[str, Any]:
    """``set()`` options giving the port's merge semantics (top-level fields replaced whole)."""
    if not merge:
        return {}
    if not data:  # nothing to change; still creates an empty document when missing
        return {"merge": True}
    return {"merge": [FieldPath(key) for key in data]}


def _matches_nothing(filters: Sequence[Filter]) -> bool:
    """True when an ``in`` filter has no values (Firestore rejects such a query)."""
    for f in filters:
        if f.op == "in":
            values = list(f.value)
            if not values:
                return True
            if len(values) > MAX_IN_VALUES:
                raise StoreError(f"'in' takes at most {MAX_IN_VALUES} values on Firestore, got {len(values)}")
    return False


def _build_query(
    base: AsyncQuery | AsyncCollectionReference,
    filters: Sequence[Filter],
    order_by: Sequence[Order],
    limit: int | None,
) -> AsyncQuery:
    query: Any = base
    for f in filters:
        if f.op not in _OPS:
            raise StoreError(f"unsupported operator {f.op!r}")
        value = list(f.value) if f.op == "in" else f.value
        query = query.where(filter=FieldFilter(_field_path(f.field), _OPS[f.op], value))
    for o in order_by:
        direction = AsyncQuery.DESCENDING if o.descending else AsyncQuery.ASCENDING
        query = query.order_by(_field_path(o.field), direction=direction)
    if limit is not None:
        query = query.limit(limit)
    result: AsyncQuery = query
    return result


def _answers_nothing(filters: Sequence[Filter], limit: int | None) -> bool:
    """Validate ``limit``; True when the query cannot return anything (``limit`` 0, an empty ``in``),
    which Firestore would refuse to run. Raises :class:`StoreError` on a negative limit."""
    if limit is not None and limit < 0:
        raise StoreError(f"limit must be >= 0, got {limit}")
    return limit == 0 or _matches_nothing(filters)


def _data(snapshot: DocumentSnapshot) -> dict[str, JSON]:
    return snapshot.to_dict() or {}


#: Most distinct document paths :class:`TransactionStats` counts waits for (the rest are not named).
_MAX_HOT_PATHS = 4096


@dataclass(slots=True)
class _KindStats:
    transactions: int = 0
    attempts: int = 0
    aborted: int = 0
    died: int = 0
    seconds: float = 0.0


class TransactionStats:
    """What this process's transactions cost since the store opened: per transaction kind (the
    qualified name of the function given to :meth:`FirestoreStore.run_transaction`, e.g.
    ``JobQueue._try_lease``), how many ran, their attempts, the attempts Firestore aborted
    (``ABORTED``: lock contention, between processes on one database), the attempts that lost an
    in-process wait-die conflict, and their wall time in seconds; plus the in-process lock waits
    and the documents waited for most (the hot documents of this process).

    Counters only: no document data and no tenant secret is kept, only paths.
    """

    def __init__(self) -> None:
        self.kinds: dict[str, _KindStats] = {}
        self.lock_waits = 0
        self.lock_wait_s = 0.0
        self.waited_on: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()
        """Calls of the store's methods outside transactions (``get``, ``query``, ...): with the
        transactions, the requests this process sent to Firestore."""

    def kind(self, fn: Callable[..., object]) -> _KindStats:
        """The counters of ``fn``'s kind (created on first use)."""
        name = getattr(fn, "__qualname__", type(fn).__name__).replace(".<locals>", "")
        name = name.removesuffix(".fn")
        stats = self.kinds.get(name)
        if stats is None:
            stats = self.kinds[name] = _KindStats()
        return stats

    def waited(self, path: str, seconds: float) -> None:
        """Count one in-process wait of ``seconds`` for the document (or range) ``path``."""
        self.lock_waits += 1
        self.lock_wait_s += seconds
        if path in self.waited_on or len(self.waited_on) < _MAX_HOT_PATHS:
            self.waited_on[path] += 1

    def summary(self, *, top: int = 5) -> dict[str, Any]:
        """A JSON-able summary: totals, per kind (most attempts first) and the ``top`` documents
        waited for. Shape: ``{"transactions", "attempts", "aborted", "died", "lock_waits",
        "lock_wait_s", "kinds": {name: {...}}, "hot": [[path, waits], ...], "calls": {method: n}}``."""
        kinds = sorted(self.kinds.items(), key=lambda item: -item[1].attempts)
        return {
            "transactions": sum(k.transactions for k in self.kinds.values()),
            "attempts": sum(k.attempts for k in self.kinds.values()),
            "aborted": sum(k.aborted for k in self.kinds.values()),
            "died": sum(k.died for k in self.kinds.values()),
            "lock_waits": self.lock_waits,
            "lock_wait_s": round(self.lock_wait_s, 3),
            "kinds": {
                name: {
                    "transactions": k.transactions,
                    "attempts": k.attempts,
                    "aborted": k.aborted,
                    "died": k.died,
                    "seconds": round(k.seconds, 3),
                }
                for name, k in kinds
            },
            "hot": [[path, n] for path, n in self.waited_on.most_common(top)],
            "calls": dict(self.calls.most_common()),
        }


#: In-process lock conflicts one transaction may lose (wait-die) before :class:`ConflictError`; each loss
#: means an older transaction held a document, and their number is finite, so this is a safety net.
_MAX_DIES = 64
_ages = itertools.count()


class _Die(Exception):  # noqa: N818 - a signal, not an error
    """Wait-die: a younger attempt asked for a document an older one holds; it must roll back."""

    def __init__(self, holder: _Attempt) -> None:
        super().__init__("in-process lock held by an older transaction")
        self.holder = holder


class _Attempt:
    """One attempt of a transaction as the lock table sees it: its age (smaller is older, kept
    across the retries of one transaction), the paths it holds, and an event set when it ends."""

    __slots__ = ("age", "done", "held")

    def __init__(self, age: tuple[float, int]) -> None:
        self.age = age
        self.held: list[str] = []
        self.done = asyncio.Event()


class _LockTable:
    """Exclusive in-process document locks of one event loop, with wait-die conflict resolution.

    Not Firestore's locks: a process-local discipline that keeps two of our own transactions from
    holding each other's Firestore read lock (see the module docstring).
    """

    def __init__(self, stats: TransactionStats | None = None) -> None:
        self._holders: dict[str, _Attempt] = {}
        self._stats = stats

    async def acquire(self, path: str, attempt: _Attempt) -> None:
        """Hold ``path`` for ``attempt``: wait while a younger attempt holds it, or any attempt when
        ``attempt`` holds nothing yet.

        Raises:
            _Die: an older attempt holds it (the caller rolls back and retries).
        """
        while True:
            holder = self._holders.get(path)
            if holder is None:
                self._holders[path] = attempt
                attempt.held.append(path)
                return
            if holder is attempt:
                return
            if holder.age < attempt.age and attempt.held:
                # an attempt holding nothing can wait for anyone: nobody waits for it
                raise _Die(holder)
            started = time.monotonic()
            await holder.done.wait()
            if self._stats is not None:
                self._stats.waited(path, time.monotonic() - started)

    def release(self, attempt: _Attempt) -> None:
        """Free every path of ``attempt`` and wake its waiters."""
        for path in attempt.held:
            if self._holders.get(path) is attempt:
                del self._holders[path]
        attempt.held.clear()
        attempt.done.set()

    def __len__(self) -> int:
        return len(self._holders)


class _FirestoreTransaction(Transaction):
    """One attempt of :meth:`FirestoreStore.run_transaction`; writes are buffered in ``tx``."""

    def __init__(
        self,
        store: FirestoreStore,
        tx: AsyncTransaction,
        tenant_id: str,
        *,
        locks: _LockTable,
        attempt: _Attempt,
    ) -> None:
        self.tenant_id = tenant_id
        self._store = store
        self._tx = tx
        self._locks = locks
        self._attempt = attempt
        self.written: list[str] = []
        self.rpc_started = time.monotonic()
        """When the last read RPC was sent (``time.monotonic()``): an abort's wait is measured from it."""

    async def get(self, collection: str, doc_id: str) -> dict[str, JSON] | None:
        ref = self._store._doc(self.tenant_id, collection, doc_id)
        await self._locks.acquire(ref.path, self._attempt)
        # AsyncTransaction.get(ref) awaits an async generator (TypeError in google-cloud-firestore
        # 2.34); the client's get_all with ``transaction=`` is what it means to call.
        self.rpc_started = time.monotonic()
        found = await _get_all(self._store._client, [ref], transaction=self._tx)
        return found[0]

    async def get_many(self, refs: Sequence[tuple[str, str]]) -> list[dict[str, JSON] | None]:
        """One ``BatchGetDocuments`` in the transaction for every document of ``refs``."""
        docs = [self._store._doc(self.tenant_id, collection, doc_id) for collection, doc_id in refs]
        for ref in docs:
            await self._locks.acquire(ref.path, self._attempt)
        self.rpc_started = time.monotonic()
        return await _get_all(self._store._client, docs, transaction=self._tx)

    async def query(
        self,
        collection: str,
        *,
        filters: Sequence[Filter] = (),
        order_by: Sequence[Order] = (),
        limit: int | None = None,
    ) -> list[Document]:
        if _answers_nothing(filters, limit):
            return []
        base = self._store._collection(self.tenant_id, collection)
        # The emulator locks a transactional query's whole range: two transactions that query one
        # collection and write into it wait for each other's lock timeout, so such queries of one
        # process take turns per collection (production Firestore locks the returned documents).
        await self._locks.acquire(f"range:{'/'.join(base._path)}", self._attempt)
        query = _build_query(base, filters, order_by, limit)
        self.rpc_started = time.monotonic()
        snapshots = [
            snap async for snap in query.stream(transaction=self._tx, retry=None, timeout=_RPC_TIMEOUT_S)
        ]
        for snap in snapshots:
            await self._locks.acquire(snap.reference.path, self._attempt)
        return [Document(self.tenant_id, collection, snap.id, _data(snap)) for snap in snapshots]

    def set(self, collection: str, doc_id: str, data: dict[str, JSON], *, merge: bool = False) -> None:
        ref = self._store._doc(self.tenant_id, collection, doc_id)
        self._tx.set(ref, dict(data), **_set_kwargs(data, merge))
        self.written.append(ref.path)

    def create(self, collection: str, doc_id: str, data: dict[str, JSON]) -> None:
        ref = self._store._doc(self.tenant_id, collection, doc_id)
        self._tx.create(ref, dict(data))
        self.written.append(ref.path)

    def delete(self, collection: str, doc_id: str) -> None:
        ref = self._store._doc(self.tenant_id, collection, doc_id)
        self._tx.delete(ref)
        self.written.append(ref.path)


class FirestoreStore(Store):
    """The storage port on Cloud Firestore through the async client of ``google-cloud-firestore``.

    ``firebase_admin.firestore_async.client()`` returns the same :class:`AsyncClient`; building it here
    avoids firebase-admin's global app registry.
    """

    def __init__(
        self,
        *,
        project_id: str,
        credentials: Credentials | None = None,
        emulator_host: str | None = None,
        database: str = "(default)",
    ) -> None:
        """Connect lazily (first call) to ``database`` of ``project_id``.

        Args:
            project_id: the Google Cloud / Firebase project id.
            credentials: ``google.auth`` credentials; ``None`` means Application Default Credentials
                (``GOOGLE_APPLICATION_CREDENTIALS``), or anonymous ones against an emulator.
            emulator_host: ``"host:port"`` of a Firestore emulator; defaults to the
                ``FIRESTORE_EMULATOR_HOST`` environment variable, read by the client.
            database: the Firestore database id.
        """
        if emulator_host is not None and credentials is None:
            credentials = AnonymousCredentials()
        self._project_id = project_id
        self._credentials = credentials
        self._database = database
        self._emulator_host = emulator_host
        self._clients: dict[asyncio.AbstractEventLoop, AsyncClient] = {}
        self._known_tenants: set[str] = set()
        self._lock_tables: dict[asyncio.AbstractEventLoop, _LockTable] = {}
        self.stats = TransactionStats()
        """What the transactions of this store cost so far (logged by :meth:`close`)."""

    def __repr__(self) -> str:
        return f"FirestoreStore(project_id={self._project_id!r})"

    @property
    def _client(self) -> AsyncClient:
        """The client of the running event loop, made on first use.

        A gRPC ``aio`` channel belongs to the loop that opened it, and one store may serve several
        loops (Litestar's test client runs the lifespan in a portal thread; ``asyncio.run`` twice in
        a CLI), so each loop gets its own client. Clients of closed loops are dropped.
        """
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            for stale in [other for other in self._clients if other.is_closed()]:
                del self._clients[stale]
            client = AsyncClient(
                project=self._project_id, credentials=self._credentials, database=self._database
            )
            if self._emulator_host is not None:
                # The client reads FIRESTORE_EMULATOR_HOST only in __init__; setting the attribute
                # before the first call gives the same insecure channel and "Bearer owner" metadata
                # without mutating the process environment.
                client._emulator_host = self._emulator_host
            self._clients[loop] = client
        return client

    # -- paths -------------------------------------------------------------------------------------

    def _collection(self, tenant_id: str, collection: str) -> AsyncCollectionReference:
        return self._client.collection(*_collection_segments(tenant_id, collection))

    def _doc(self, tenant_id: str, collection: str, doc_id: str) -> AsyncDocumentReference:
        return self._collection(tenant_id, collection).document(_check_segment(doc_id, "document id"))

    async def _ensure_tenant(self, tenant_id: str) -> None:
        """Write the ``tenants/{tenant}`` marker once per process (see the module docstring)."""
        if tenant_id == SYSTEM_TENANT or tenant_id in self._known_tenants:
            return
        marker = self._client.collection(TENANTS).document(_check_segment(tenant_id, "tenant id"))
        with _answered("a write"):
            await marker.set({"tenant_id": tenant_id}, **_write_options())
        self._known_tenants.add(tenant_id)

    # -- single documents --------------------------------------------------------------------------

    async def get(self, tenant_id: str, collection: str, doc_id: str) -> dict[str, JSON] | None:
        self.stats.calls["get"] += 1
        with _answered("a read"):
            snapshot = await self._doc(tenant_id, collection, doc_id).get(**_read_options())
        return _data(snapshot) if snapshot.exists else None

    async def set(
        self, tenant_id: str, collection: str, doc_id: str, data: dict[str, JSON], *, merge: bool = False
    ) -> None:
        ref = self._doc(tenant_id, collection, doc_id)
        self.stats.calls["set"] += 1
        await self._ensure_tenant(tenant_id)
        with _answered("a write"):
            await ref.set(dict(data), **_set_kwargs(data, merge), **_write_options())

    async def delete(self, tenant_id: str, collection: str, doc_id: str) -> None:
        self.stats.calls["delete"] += 1
        with _answered("a write"):
            await self._doc(tenant_id, collection, doc_id).delete(**_write_options())

    async def get_many(self, tenant_id: str, refs: Sequence[tuple[str, str]]) -> list[dict[str, JSON] | None]:
        """One ``BatchGetDocuments`` call for every document of ``refs``."""
        self.stats.calls["get_many"] += 1
        docs = [self._doc(tenant_id, collection, doc_id) for collection, doc_id in refs]
        return await _get_all(self._client, docs)

    async def increment(
        self,
        tenant_id: str,
        collection: str,
        doc_id: str,
        deltas: Mapping[str, int | float],
        *,
        fields: Mapping[str, JSON] | None = None,
    ) -> None:
        """One write with ``FieldValue.increment`` transforms and a field mask (no read, no lock);
        see :meth:`Store.increment`. Firestore sustains about one write per second on one document
        ("Best practices", "Updates to a single document"): spread a hot counter over shard
        documents and sum them on read."""
        check_deltas(deltas)
        self.stats.calls["increment"] += 1
        ref = self._doc(tenant_id, collection, doc_id)
        await self._ensure_tenant(tenant_id)
        data: dict[str, Any] = {key: value for key, value in (fields or {}).items()}
        paths = [FieldPath(key) for key in data]
        for key, delta in deltas.items():
            parts = key.split(".")
            if len(parts) == 2:
                data.setdefault(parts[0], {})[parts[1]] = Increment(delta)
            else:
                data[key] = Increment(delta)
            paths.append(FieldPath(*parts))
        options: dict[str, Any] = {"merge": paths}  # the client types merge as bool; it takes paths
        with _answered("a write"):
            await ref.set(data, **options, **_write_options())

    # -- queries -----------------------------------------------------------------------------------

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
        """See :meth:`Store.query`; a cursor orders by ``__name__`` last (explicitly, in the last
        order's direction, as Firestore does implicitly) and passes the values to ``start_after``."""
        check_cursor(start_after, order_by)
        self.stats.calls["query"] += 1
        if _answers_nothing(filters, limit):
            return []
        query: Any = _build_query(self._collection(tenant_id, collection), filters, order_by, limit)
        if start_after is not None:
            direction = AsyncQuery.DESCENDING if order_by[-1].descending else AsyncQuery.ASCENDING
            query = query.order_by("__name__", direction=direction)
            values = {_field_path(o.field): v for o, v in zip(order_by, start_after, strict=False)}
            query = query.start_after({**values, "__name__": str(start_after[-1])})
        with _answered("a query"):
            return [
                Document(tenant_id, collection, snap.id, _data(snap))
                async for snap in query.stream(**_read_options())
            ]

    async def count(self, tenant_id: str, collection: str, *, filters: Sequence[Filter] = ()) -> int:
        """Firestore's ``count()`` aggregation ("Count documents with aggregation queries"): the
        server counts index entries, no document is sent."""
        self.stats.calls["count"] += 1
        if _answers_nothing(filters, None):
            return 0
        query: Any = _build_query(self._collection(tenant_id, collection), filters, (), None)
        with _answered("a count"):
            result = await query.count(alias="n").get(**_read_options())
        return int(result[0][0].value)

    async def query_group(
        self,
        collection: str,
        *,
        filters: Sequence[Filter] = (),
        order_by: Sequence[Order] = (),
        limit: int | None = None,
    ) -> list[Document]:
        """Collection-group query over ``tenants/*``, ``SYSTEM_TENANT`` and stray paths left out.

        Those are dropped client-side, so with a ``limit`` the query pages on (``start_after``) until
        ``limit`` tenant documents are found or the group is exhausted.
        """
        if "/" in collection:
            raise StoreError("query_group takes a collection id, not a path")
        _check_segment(collection, "collection id")
        self.stats.calls["query_group"] += 1
        if _answers_nothing(filters, limit):
            return []
        base = _build_query(self._client.collection_group(collection), filters, order_by, None)
        found: list[Document] = []
        last: DocumentSnapshot | None = None
        while True:
            want = None if limit is None else limit - len(found)
            page: Any = base if last is None else base.start_after(last)
            if want is not None:
                page = page.limit(want)
            count = 0
            with _answered("a query"):
                async for snap in page.stream(**_read_options()):
                    count += 1
                    last = snap
                    doc = _group_document(snap)
                    if doc is not None:
                        found.append(doc)
            if want is None or count < want or len(found) == limit:
                return found

    async def list_collections(self, tenant_id: str) -> list[str]:
        """Collection paths under ``tenants/{tenant}``, from one recursive, id-only query per top-level
        collection (``ListCollectionIds`` on the tenant document, then ``Query.recursive()``, as the
        client's own ``recursive_delete`` does): one billed read per document of the tenant.
        """
        root = self._client.collection(TENANTS).document(_check_segment(tenant_id, "tenant id"))
        found: set[str] = set()
        async for top in root.collections():
            query = top.recursive().select([FieldPath.document_id()])
            async for snap in query.stream():
                found.add("/".join(snap.reference._path[2:-1]))
        return sorted(found)

    async def list_tenants(self) -> list[str]:
        """Tenant ids with a marker document, sorted, ``SYSTEM_TENANT`` excluded.

        A tenant whose documents were all deleted keeps its marker and is still listed.
        """
        ids = [snap.id async for snap in self._client.collection(TENANTS).select(["tenant_id"]).stream()]
        return sorted(i for i in ids if i != SYSTEM_TENANT)

    # -- transactions ------------------------------------------------------------------------------

    async def run_transaction(
        self,
        tenant_id: str,
        fn: Callable[[Transaction], Awaitable[T]],
        *,
        max_attempts: int = 5,
        inline: bool = False,
    ) -> T:
        """Run ``fn`` in a read-write Firestore transaction; see :meth:`Store.run_transaction`
        (``inline`` changes nothing here: the reads are network round trips on the event loop).

        ``ABORTED`` (contention: Firestore's lock wait or wound-wait) on a read or on the commit
        starts another attempt that keeps its place in line (``BeginTransaction.retry_transaction``,
        as ``google.cloud.firestore.async_transactional`` does). Unlike that decorator, an abort
        during ``fn``'s reads is retried too, and errors map to the port's.

        Raises:
            ConflictError: still aborted after ``max_attempts`` attempts.
            DocumentExistsError: ``fn`` created a document that exists (commit ``ALREADY_EXISTS``).
            Any exception ``fn`` raises, unchanged, after rolling back.
        """
        _check_segment(tenant_id, "tenant id")
        await self._ensure_tenant(tenant_id)
        return await self._attempts(tenant_id, fn, max_attempts)

    def _locks(self) -> _LockTable:
        """The running loop's lock table (tables of closed loops are dropped)."""
        loop = asyncio.get_running_loop()
        table = self._lock_tables.get(loop)
        if table is None:
            for stale in [other for other in self._lock_tables if other.is_closed()]:
                del self._lock_tables[stale]
            table = self._lock_tables[loop] = _LockTable(self.stats)
        return table

    async def _attempts(
        self, tenant_id: str, fn: Callable[[Transaction], Awaitable[T]], max_attempts: int
    ) -> T:
        """The retry loop of :meth:`run_transaction`.

        An attempt aborted by Firestore (or a read past its deadline) is rolled back and started
        again after :func:`_backoff`, *keeping its in-process locks* meanwhile: the documents it
        contended for stay out of reach of this process's other transactions until it has
        committed. Without that, Google's emulator livelocks on a hot document (a booking race's
        day document): transactions of several processes each hold a read lock on it and wait for
        the write lock at commit, the emulator ends that wait only by its lock timeout (2 s,
        aborting the waiter), and the aborted transaction, or the next one of its process, read
        the document again at once, so the remaining waiter never got the lock either (observed:
        66 of 73 attempts aborted, the test hanging). Staying off the document for as long as the
        aborted call waited lets the last waiter commit. Production Firestore aborts the younger
        transaction at once (wound-wait), so there the wait, and the backoff, are short.
        """
        locks = self._locks()
        age = (time.monotonic(), next(_ages))
        kind = self.stats.kind(fn)
        kind.transactions += 1
        retry_id: bytes | None = None
        last: Exception | None = None
        attempt_no = dies = 0
        attempt = _Attempt(age)
        try:
            while attempt_no < max(1, max_attempts):
                tx = self._client.transaction()
                kind.attempts += 1
                started = time.monotonic()
                try:
                    await _begin(tx, retry_id=retry_id)
                    retry_id = retry_id or tx._id
                    view = _FirestoreTransaction(self, tx, tenant_id, locks=locks, attempt=attempt)
                    try:
                        result = await fn(view)
                        for path in sorted(set(view.written)):
                            await locks.acquire(path, attempt)
                    except _Die as die:
                        _quiet_rollback(tx)
                        locks.release(attempt)
                        dies += 1
                        kind.died += 1
                        if dies > _MAX_DIES:
                            lost = f"transaction lost {dies} in-process lock conflicts"
                            raise ConflictError(lost) from None
                        await die.holder.done.wait()  # no point starting again before the older one ends
                        attempt = _Attempt(age)
                        continue
                    except (gexc.Aborted, gexc.DeadlineExceeded) as exc:
                        last = exc
                        kind.aborted += 1
                        _quiet_rollback(tx)
                        attempt_no += 1
                        if attempt_no < max_attempts:
                            await _backoff(attempt_no, waited_s=time.monotonic() - view.rpc_started)
                        continue
                    except BaseException:
                        _quiet_rollback(tx)
                        raise
                    commit_started = time.monotonic()
                    try:
                        await _commit(tx)
                    except gexc.Aborted as exc:
                        last = exc
                        kind.aborted += 1
                        attempt_no += 1
                        if attempt_no < max_attempts:
                            await _backoff(attempt_no, waited_s=time.monotonic() - commit_started)
                        continue
                    except gexc.AlreadyExists as exc:
                        raise DocumentExistsError(f"create() of an existing document: {exc.message}") from exc
                    except (gexc.DeadlineExceeded, gexc.RetryError) as exc:
                        raise StoreError(
                            f"commit unanswered after {_RPC_TIMEOUT_S} s; whether it applied is unknown"
                        ) from exc
                    return result
                finally:
                    kind.seconds += time.monotonic() - started
        finally:
            locks.release(attempt)
        raise ConflictError(f"transaction aborted {max_attempts} times by contention: {last}")

    async def close(self) -> None:
        """Close the running loop's gRPC channel, if one was opened (other loops' are dropped),
        once the rollbacks still under way on this loop have ended (each has a deadline).

        Logs :attr:`stats` (``firestore.transactions``): at WARNING when an attempt was aborted by
        Firestore or lost a wait-die conflict (contention worth a look), else at INFO.
        """
        summary = self.stats.summary()
        if summary["transactions"]:
            level = log.warning if summary["aborted"] or summary["died"] else log.info
            level("firestore.transactions", **summary)
        loop = asyncio.get_running_loop()
        rollbacks = [task for task in _ROLLBACKS if task.get_loop() is loop]
        if rollbacks:  # each has a deadline: let them reach the server before the channel closes
            await asyncio.wait(rollbacks, timeout=_ROLLBACK_TIMEOUT_S)
        client = self._clients.pop(loop, None)
        self._clients.clear()
        api = client._firestore_api_internal if client is not None else None
        if api is not None:
            await api.transport.close()


async def _backoff(attempt: int, *, waited_s: float = 0.0) -> None:
    """Sleep before attempt ``attempt`` + 1: full jitter over ``base * 2**attempt`` (capped), plus
    1 to 1.5 times ``waited_s`` (at most :data:`_WAIT_BACKOFF_CAP_S`), how long the aborted call
    waited for its locks. An abort after a long lock wait (the emulator's 2 s lock timeout) means
    another transaction was waiting for the same document too: staying away that long lets it
    take the lock and commit. Production Firestore aborts at once (wound-wait): a short wait."""
    jitter = random.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt))
    waited = min(_WAIT_BACKOFF_CAP_S, max(0.0, waited_s))
    await asyncio.sleep(jitter + random.uniform(1.0, 1.5) * waited)


#: Errors a ``BeginTransaction`` is retried on (the generated transport's list).
_BEGIN_TRANSIENT = (
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.ResourceExhausted,
    gexc.ServiceUnavailable,
)


def _call_retry(*transient: type[Exception]) -> gretry.AsyncRetry:
    """The client's retry of one call (its predicate, as in the generated transport) bounded by
    :data:`_RPC_TIMEOUT_S` in all, instead of its 60 s."""
    return gretry.AsyncRetry(
        predicate=gretry.if_exception_type(*transient),
        initial=0.1,
        maximum=2.0,
        multiplier=1.3,
        timeout=_RPC_TIMEOUT_S,
    )


async def _begin(tx: AsyncTransaction, *, retry_id: bytes | None) -> None:
    """``AsyncTransaction._begin`` with a deadline (:data:`_RPC_TIMEOUT_S` per call, retries of
    unavailable / deadline exceeded within about as long again).

    Raises:
        StoreError: Firestore did not answer in time.
    """
    client = tx._client
    try:
        response = await client._firestore_api.begin_transaction(
            request={"database": client._database_string, "options": tx._options_protobuf(retry_id)},
            metadata=client._rpc_metadata,
            retry=_call_retry(*_BEGIN_TRANSIENT),
            timeout=_RPC_TIMEOUT_S,
        )
    except (gexc.DeadlineExceeded, gexc.RetryError) as exc:
        raise StoreError(f"Firestore did not begin a transaction within {_RPC_TIMEOUT_S} s") from exc
    tx._id = response.transaction


async def _commit(tx: AsyncTransaction) -> None:
    """``AsyncTransaction._commit`` with a deadline (:data:`_RPC_TIMEOUT_S`) and the client's retry
    (resource exhausted, unavailable: safe, the server did not apply the commit).

    Raises:
        google.api_core.exceptions.Aborted: contention; ``AlreadyExists``: a created document
            exists; ``DeadlineExceeded``: no answer in time (outcome unknown).
    """
    client = tx._client
    await client._firestore_api.commit(
        request={"database": client._database_string, "writes": tx._write_pbs, "transaction": tx._id},
        metadata=client._rpc_metadata,
        retry=_call_retry(gexc.ResourceExhausted, gexc.ServiceUnavailable),
        timeout=_RPC_TIMEOUT_S,
    )
    tx._clean_up()


#: Errors a write outside a transaction is retried on: the server did not apply it (a deadline
#: exceeded is not retried: an increment applied twice would count twice).
_WRITE_TRANSIENT = (gexc.ResourceExhausted, gexc.ServiceUnavailable)


def _read_options() -> dict[str, Any]:
    """``retry`` and ``timeout`` of a read outside a transaction: :data:`_RPC_TIMEOUT_S` per call
    and in all (the client's default retries reads for up to 300 s)."""
    return {"retry": _call_retry(*_BEGIN_TRANSIENT), "timeout": _RPC_TIMEOUT_S}


def _write_options() -> dict[str, Any]:
    """``retry`` and ``timeout`` of a write outside a transaction (see :data:`_WRITE_TRANSIENT`)."""
    return {"retry": _call_retry(*_WRITE_TRANSIENT), "timeout": _RPC_TIMEOUT_S}


@contextlib.contextmanager
def _answered(what: str) -> Iterator[None]:
    """Turn a call outside a transaction that Firestore did not answer in time into
    :class:`StoreError` ("Firestore did not answer <what> within 30.0 s"); other errors pass."""
    try:
        yield
    except (gexc.DeadlineExceeded, gexc.RetryError) as exc:
        raise StoreError(f"Firestore did not answer {what} within {_RPC_TIMEOUT_S} s") from exc


async def _get_all(
    client: AsyncClient, refs: list[AsyncDocumentReference], *, transaction: AsyncTransaction | None = None
) -> list[dict[str, JSON] | None]:
    """``client.get_all`` (answers come in any order) mapped back to ``refs``' order. In a
    transaction the call has a deadline (:data:`_RPC_TIMEOUT_S`) and no retry of its own: the
    transaction is what is retried; outside one, :func:`_read_options`.

    Raises:
        StoreError: outside a transaction, Firestore did not answer in time."""
    if not refs:
        return []
    found: dict[str, dict[str, JSON]] = {}
    answered: contextlib.AbstractContextManager[None]
    if transaction is None:
        options, answered = _read_options(), _answered("a read")
    else:  # a deadline exceeded is the transaction's to retry (run_transaction)
        options, answered = {"retry": None, "timeout": _RPC_TIMEOUT_S}, contextlib.nullcontext()
    with answered:
        async for snap in client.get_all(refs, transaction=transaction, **options):
            if snap.exists:
                found[snap.reference.path] = _data(snap)
    return [found.get(ref.path) for ref in refs]


def _group_document(snapshot: DocumentSnapshot) -> Document | None:
    """Map ``tenants/{t}/{collection...}/{id}`` to a :class:`Document`; ``None`` for other paths."""
    parts = snapshot.reference._path
    if len(parts) < 4 or parts[0] != TENANTS or parts[1] == SYSTEM_TENANT:
        return None
    return Document(parts[1], "/".join(parts[2:-1]), parts[-1], _data(snapshot))


#: Rollbacks sent and not answered yet (a strong reference, so that none is collected mid-call).
_ROLLBACKS: set[asyncio.Task[None]] = set()


async def _rollback(tx: AsyncTransaction, transaction_id: bytes) -> None:
    """One ``Rollback`` call with a deadline (:data:`_ROLLBACK_TIMEOUT_S`), no retry, errors ignored."""
    client = tx._client
    with contextlib.suppress(gexc.GoogleAPIError, ValueError, grpc.aio.UsageError):
        await client._firestore_api.rollback(
            request={"database": client._database_string, "transaction": transaction_id},
            metadata=client._rpc_metadata,
            retry=None,
            timeout=_ROLLBACK_TIMEOUT_S,
        )


def _quiet_rollback(tx: AsyncTransaction) -> None:
    """Send the rollback of ``tx`` without waiting for its answer, ignoring failures (the server
    also expires an abandoned transaction): the caller's next attempt does not depend on it, and
    under contention the emulator was seen answering late. The call has a deadline
    (:data:`_ROLLBACK_TIMEOUT_S`), so no task outlives it for long."""
    transaction_id = tx._id
    if transaction_id is not None:
        tx._clean_up()
        task = asyncio.ensure_future(_rollback(tx, transaction_id))
        _ROLLBACKS.add(task)
        task.add_done_callback(_ROLLBACKS.discard)


def open_firestore_store(
    project_id: str, credentials_path: str | None = None, *, database: str = "(default)"
) -> FirestoreStore:
    """Production factory: a :class:`FirestoreStore` with service-account credentials.

    ``credentials_path`` is a service-account JSON key file (the value of
    ``GOOGLE_APPLICATION_CREDENTIALS``); ``None`` uses Application Default Credentials (Cloud Run's
    metadata server, ``gcloud auth application-default login``). With ``FIRESTORE_EMULATOR_HOST`` set,
    the emulator is used with anonymous credentials and the key file is not read.

    Raises:
        google.auth.exceptions.DefaultCredentialsError / ValueError: unreadable key file.
    """
    from google.oauth2 import service_account

    credentials: Credentials | None = None
    if credentials_path and not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        credentials = service_account.Credentials.from_service_account_file(
            credentials_path, scopes=list(AsyncClient.SCOPE)
        )
    return FirestoreStore(project_id=project_id, credentials=credentials, database=database)
