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
    "SYSTEM_TENANT",
    "ConflictError",
    "Document",
    "DocumentExistsError",
    "Filter",
    "Order",
    "Store",
    "StoreError",
    "Transaction",
    "check_deltas",
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
    ) -> list[Document]:
        """Documents of one tenant's collection matching every filter, ordered, at most ``limit``.

        Documents missing an ordered or filtered field are left out, as in Firestore.
        """

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
        self, tenant_id: str, fn: Callable[[Transaction], Awaitable[T]], *, max_attempts: int = 5
    ) -> T:
        """Run ``fn`` in a transaction and commit; retry on contention.

        Raises:
            ConflictError: contention lasted ``max_attempts`` attempts.
            DocumentExistsError: ``fn`` called :meth:`Transaction.create` on an existing document.
            Any exception ``fn`` raises, after rolling back.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
