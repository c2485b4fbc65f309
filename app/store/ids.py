"""Document ids built from several parts."""

from __future__ import annotations

import zlib

__all__ = ["compound_id", "shard_of"]


def compound_id(*parts: str) -> str:
    """``parts`` joined by ``:``, with ``/`` escaped as ``%2F`` (Firestore ids cannot hold a slash).

    Example: ``compound_id("whatsapp", "wamid.X/1") == "whatsapp:wamid.X%2F1"``. Used for every
    id derived from a provider's or a contact's identifiers (dedupe keys, job ids, indexes).
    """
    return ":".join(parts).replace("/", "%2F")


def shard_of(key: str, shards: int) -> int:
    """A stable shard number in ``range(shards)`` for ``key`` (CRC-32 of its UTF-8 bytes).

    Used as the first field of an index whose other fields grow with time (``shard, status,
    due_at``), so that writes spread over ``shards`` key ranges instead of one: Firestore sustains
    about 500 writes/s on an index range of sequential values ("Best practices", "Index fields with
    monotonically increasing values"). Stable across processes and Python versions (no ``hash()``).

    Raises:
        ValueError: ``shards`` < 1.
    """
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    return zlib.crc32(key.encode("utf-8")) % shards
