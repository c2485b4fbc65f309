"""Move one tenant's data between stores (SQLite <-> Firestore), as JSON-serialisable records.

A record is one document::

    {"tenant": "acme", "collection": "conversations/c1/messages", "id": "00000001", "data": {...}}

``tenant`` is the tenant id for the tenant's own documents, or :data:`app.store.SYSTEM_TENANT` for
its routing entries in the system namespace (``api_keys`` and ``channel_routes`` documents whose
``tenant_id`` is the tenant). An export holds every collection and sub-collection of the tenant
(:meth:`app.store.Store.list_collections`), then those routing entries; written one record per
line, it is JSON Lines (``leadwarm store export``).

Import writes documents as they are (``set``, replacing a document with the same id; documents of
the target that the export does not hold are left alone). It is not one transaction: run it while
no service works on the tenant, and run it again if it was interrupted (it is idempotent).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

from app.store.base import SYSTEM_TENANT, Store, StoreError

__all__ = ["ROUTING_COLLECTIONS", "TransferError", "export_tenant", "import_tenant"]

#: System-namespace collections whose documents belong to the tenant named in their ``tenant_id``.
ROUTING_COLLECTIONS = ("api_keys", "channel_routes")
#: Writes in flight during an import (Firestore: one RPC each; SQLite serialises them anyway).
_CONCURRENT_WRITES = 16


class TransferError(StoreError):
    """A record is malformed or belongs to another tenant."""


async def export_tenant(store: Store, tenant_id: str) -> AsyncIterator[dict[str, Any]]:
    """Yield every document of ``tenant_id`` as a record (see the module docstring).

    Order: collections sorted by path, documents as the store returns them, routing entries last.

    Raises:
        StoreError: the store failed, or ``tenant_id`` is the system namespace.
    """
    if tenant_id == SYSTEM_TENANT:
        raise TransferError("the system namespace is not a tenant")
    for collection in await store.list_collections(tenant_id):
        for doc in await store.query(tenant_id, collection):
            yield {"tenant": tenant_id, "collection": collection, "id": doc.id, "data": doc.data}
    for collection in ROUTING_COLLECTIONS:
        for doc in await store.query(SYSTEM_TENANT, collection):
            if doc.data.get("tenant_id") == tenant_id:
                yield {"tenant": SYSTEM_TENANT, "collection": collection, "id": doc.id, "data": doc.data}


def _check(record: Any, tenant_id: str) -> tuple[str, str, str, dict[str, Any]]:
    """Validate one record for an import into ``tenant_id``; returns ``(namespace, collection, id, data)``."""
    if not isinstance(record, dict):
        raise TransferError(f"a record must be an object, got {type(record).__name__}")
    missing = [k for k in ("tenant", "collection", "id", "data") if k not in record]
    if missing:
        raise TransferError(f"record lacks {', '.join(missing)}: {str(record)[:200]}")
    namespace, collection, doc_id, data = record["tenant"], record["collection"], record["id"], record["data"]
    if not (isinstance(collection, str) and collection and isinstance(doc_id, str) and doc_id):
        raise TransferError(f"record has no valid collection and id: {str(record)[:200]}")
    if not isinstance(data, dict):
        raise TransferError(f"record {collection}/{doc_id}: data must be an object")
    if namespace == SYSTEM_TENANT:
        if collection not in ROUTING_COLLECTIONS or data.get("tenant_id") != tenant_id:
            raise TransferError(
                f"record {collection}/{doc_id} of the system namespace is not a routing entry "
                f"of tenant {tenant_id!r}"
            )
    elif namespace != tenant_id:
        raise TransferError(
            f"record {collection}/{doc_id} belongs to tenant {namespace!r}, not {tenant_id!r}"
        )
    return namespace, collection, doc_id, data


async def import_tenant(store: Store, tenant_id: str, records: Iterable[dict[str, Any]]) -> int:
    """Write ``records`` (from :func:`export_tenant`) into ``store``; returns how many were written.

    Every record is checked before the first write, so a file meant for another tenant writes
    nothing. Records are written by up to 16 concurrent ``set`` calls.

    Raises:
        TransferError: a record is malformed, belongs to another tenant, or is a system-namespace
            document other than the tenant's own routing entries.
        StoreError: the store failed (some records may have been written: import again).
    """
    if tenant_id == SYSTEM_TENANT:
        raise TransferError("the system namespace is not a tenant")
    checked = [_check(record, tenant_id) for record in records]
    slots = asyncio.Semaphore(_CONCURRENT_WRITES)

    async def write(namespace: str, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        async with slots:
            await store.set(namespace, collection, doc_id, data)

    await asyncio.gather(*(write(*item) for item in checked))
    return len(checked)
