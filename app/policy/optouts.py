"""The opt-out ledger: who said STOP (or clicked unsubscribe), on which channel, when, and how.

One document per ``(channel, address)`` in ``optouts``: the current state and a capped history
of changes (source and time). An address that bounced is marked ``undeliverable`` in the same
document. Whether an opt-out covers every channel of the lead is a tenant setting, applied by
:meth:`OptOutLedger.blocks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.store import Store, Transaction
from app.store import collections as col
from app.store.ids import compound_id
from kernel.clock import Clock

__all__ = ["OptOutLedger"]

COLLECTION = col.OPTOUTS
HISTORY_KEPT = 50


def _doc_id(channel: str, address: str) -> str:
    return compound_id(channel, address.strip().lower())


class OptOutLedger:
    """Records and answers opt-outs; times are epoch seconds (UTC)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def record(
        self, tenant_id: str, *, channel: str, address: str, source: str, opted_out: bool = True
    ) -> None:
        """Opt ``address`` out of (or, with ``opted_out=False``, back into) ``channel``."""
        await self._change(tenant_id, channel, address, {"opted_out": opted_out}, source)

    async def mark_undeliverable(self, tenant_id: str, *, channel: str, address: str, source: str) -> None:
        """Remember that messages to ``address`` bounce (a DSN, WhatsApp 131026, Twilio 30003...)."""
        await self._change(tenant_id, channel, address, {"undeliverable": True}, source)

    async def _change(
        self, tenant_id: str, channel: str, address: str, fields: dict[str, Any], source: str
    ) -> None:
        async def fn(tx: Transaction) -> None:
            current = await self.read(tx, channel, address)
            self.write(tx, current, channel=channel, address=address, fields=fields, source=source)

        await self.store.run_transaction(tenant_id, fn)

    @staticmethod
    async def read(tx: Transaction, channel: str, address: str) -> dict[str, Any] | None:
        """The ledger entry inside ``tx`` (read it before the transaction's first write)."""
        return await tx.get(COLLECTION, _doc_id(channel, address))

    def write(
        self,
        tx: Transaction,
        current: dict[str, Any] | None,
        *,
        channel: str,
        address: str,
        fields: dict[str, Any],
        source: str,
    ) -> None:
        """Change the entry :meth:`read` returned, in ``tx``: ``fields`` (``opted_out``,
        ``undeliverable``) with an entry in its history naming ``source`` and the time."""
        now = self.clock.now()
        doc: dict[str, Any] = (
            dict(current)
            if current
            else {
                "channel": channel,
                "address": address.strip().lower(),
                "opted_out": False,
                "undeliverable": False,
                "history": [],
            }
        )
        doc.update(fields)
        doc["updated_at"] = now
        doc["history"] = [*doc.get("history", []), {"at": now, "source": source, **fields}][-HISTORY_KEPT:]
        tx.set(COLLECTION, _doc_id(channel, address), doc)

    async def get(self, tenant_id: str, channel: str, address: str) -> dict[str, Any] | None:
        """The ledger entry of ``address`` on ``channel``, or ``None``."""
        return await self.store.get(tenant_id, COLLECTION, _doc_id(channel, address))

    async def is_opted_out(self, tenant_id: str, channel: str, address: str) -> bool:
        """Whether ``address`` opted out of ``channel`` (and has not opted back in)."""
        entry = await self.get(tenant_id, channel, address)
        return bool(entry and entry.get("opted_out"))

    async def blocks(
        self,
        tenant_id: str,
        *,
        channel: str,
        address: str,
        lead_addresses: dict[str, str],
        all_channels: bool,
    ) -> tuple[bool, bool]:
        """``(opted_out, undeliverable)`` for a send to ``address`` on ``channel``.

        With ``all_channels``, an opt-out of any of the lead's addresses (``{channel: address}``)
        counts; undeliverable is always specific to the address.
        """
        refs = self.block_refs(
            channel=channel, address=address, lead_addresses=lead_addresses, all_channels=all_channels
        )
        return self.judge(await self.store.get_many(tenant_id, refs))

    @staticmethod
    def block_refs(
        *, channel: str, address: str, lead_addresses: dict[str, str], all_channels: bool
    ) -> list[tuple[str, str]]:
        """The ledger entries :meth:`blocks` reads, as ``(collection, id)`` refs, the entry of
        ``address`` on ``channel`` first: a caller may read them in a batch of its own (the gate
        reads them with the lead's daily counter) and hand the result to :meth:`judge`."""
        own = _doc_id(channel, address)
        ids = [own]
        if all_channels:  # every entry in one batch read
            ids += [_doc_id(c, a) for c, a in lead_addresses.items() if a and _doc_id(c, a) != own]
        return [(COLLECTION, i) for i in ids]

    @staticmethod
    def judge(entries: Sequence[dict[str, Any] | None]) -> tuple[bool, bool]:
        """``(opted_out, undeliverable)`` from the entries of :meth:`block_refs`, in their order."""
        entry = entries[0] or {}
        opted_out = any(e is not None and e.get("opted_out") for e in entries)
        return opted_out, bool(entry.get("undeliverable"))
