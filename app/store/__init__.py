"""Storage: the Firestore-shaped port and its backends."""

from app.store.base import (
    SYSTEM_TENANT,
    ConflictError,
    Document,
    DocumentExistsError,
    Filter,
    LogRecord,
    Order,
    Store,
    StoreError,
    Transaction,
    cursor_of,
    where,
)

__all__ = [
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
    "cursor_of",
    "where",
]
