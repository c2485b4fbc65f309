"""What a document write costs the embedded store, counted: the index entries it enters and the
statements it prepares (issue 15: CPU per answer turn)."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from app.store import Order, Transaction, where
from app.store.sqlite import SQLiteStore, _dump, _load


def _entries(store: SQLiteStore, index: str, condition: str) -> int:
    """Entries of ``index`` (its own partial condition repeated, so SQLite reads the index)."""
    sql = f"SELECT COUNT(*) FROM docs INDEXED BY {index} WHERE {condition}"
    return int(store._writer.execute(sql).fetchone()[0])


async def test_a_lead_enters_only_the_address_indexes_of_the_addresses_it_has(tmp_path: Path) -> None:
    """A web chat lead (``phone`` and ``email`` stored as ``null``) holds no entry in the phone and
    email indexes, and is still found by each address it has through its index."""
    store = SQLiteStore(tmp_path / "leads.db")
    try:
        base = {"name": None, "stage": "new", "source": "webchat", "created_at": 1.0}
        await store.set(
            "demo", "leads", "l1", {**base, "id": "l1", "phone": None, "email": None, "webchat_id": "s1"}
        )
        await store.set("demo", "leads", "l2", {**base, "id": "l2", "phone": "+33600000000", "email": None})
        await store.set(
            "demo", "leads", "l3", {**base, "id": "l3", "email": "a@b.fr", "phone": "+33611111111"}
        )

        def count(field: str) -> int:
            cond = f"coll = 'leads' AND f_{field} IS NOT NULL"
            return _entries(store, f"ix_t_{field}_created_at", cond)

        assert (count("phone"), count("email"), count("webchat_id")) == (2, 1, 1)
        for field, value, lead in [
            ("phone", "+33600000000", "l2"),
            ("email", "a@b.fr", "l3"),
            ("webchat_id", "s1", "l1"),
        ]:
            found = await store.query("demo", "leads", filters=[where(field, "==", value)])
            assert [d.id for d in found] == [lead]
        # no address: no lead (and no scan needed to say so)
        assert await store.query("demo", "leads", filters=[where("phone", "==", "+1555")]) == []
        # a null filter still answers (through the primary key: the index holds no null)
        nulls = await store.query("demo", "leads", filters=[where("phone", "==", None)])
        assert [d.id for d in nulls] == ["l1"]
    finally:
        await store.close()


async def test_a_file_with_the_collection_group_index_has_it_dropped_on_open(tmp_path: Path) -> None:
    """``docs_group`` (one more entry for every document created or deleted) is no longer kept:
    a file written with it loses it when opened, and group queries still answer."""
    path = tmp_path / "old.db"
    first = SQLiteStore(path)
    await first.set("t1", "jobs", "j1", {"id": "j1", "status": "pending", "due_at": 1.0, "shard": 0})
    await first.close()
    raw = sqlite3.connect(path)
    raw.execute("CREATE INDEX docs_group ON docs (coll, tenant)")
    raw.commit()
    raw.close()
    store = SQLiteStore(path)
    try:
        names = {r[0] for r in store._writer.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "docs_group" not in names
        assert any(n.startswith("ix_g_") for n in names)
        found = await store.query_group("jobs", filters=[where("status", "==", "pending")])
        assert [(d.tenant_id, d.id) for d in found] == [("t1", "j1")]
    finally:
        await store.close()


def test_documents_are_stored_as_the_json_they_were() -> None:
    """The msgspec codec writes compact JSON that :func:`json.loads` reads back equal (unicode,
    nesting, key order, floats, big integers through the fallback), and reads what ``json.dumps``
    wrote, ``NaN`` included."""
    doc = {"b": 1, "a": "élan ✓", "n": None, "f": 0.1, "e": 1e-05, "l": [1, {"x": [True, False]}], "i": 2**70}
    text = _dump(doc)
    assert json.loads(text) == doc
    assert list(json.loads(text)) == list(doc)
    assert "élan ✓" in text and ", " not in text
    assert _load(text) == doc
    assert _load(json.dumps(doc)) == doc
    assert math.isnan(_load('{"x": NaN}')["x"])


async def test_point_reads_then_a_query_are_one_hand_off(tmp_path: Path) -> None:
    """``get_many_then_query`` answers as ``get_many`` then ``query`` would, in one hand-off to
    the reader thread."""
    store = SQLiteStore(tmp_path / "batch.db")
    try:
        await store.set("demo", "jobs", "inbound:a", {"id": "inbound:a", "generation": 3})
        for i in range(3):
            status = "pending" if i != 1 else "processed"
            await store.set("demo", "inbox", f"m{i}", {"address_key": "sms:a", "status": status, "seq": i})
        await store.set("acme", "inbox", "m9", {"address_key": "sms:a", "status": "pending", "seq": 0})
        handoffs = 0
        read_op = store._read_op

        async def counted(fn: Any) -> Any:
            nonlocal handoffs
            handoffs += 1
            return await read_op(fn)

        store._read_op = counted  # type: ignore[method-assign]
        filters = [where("address_key", "==", "sms:a"), where("status", "==", "pending")]
        docs, found = await store.get_many_then_query(
            "demo",
            [("jobs", "inbound:a"), ("jobs", "none")],
            "inbox",
            filters=filters,
            order_by=[Order("seq")],
        )
        assert handoffs == 1
        assert docs == [{"id": "inbound:a", "generation": 3}, None]
        assert [d.id for d in found] == ["m0", "m2"]
        assert found == await store.query("demo", "inbox", filters=filters, order_by=[Order("seq")])
    finally:
        await store.close()


@pytest.mark.parametrize("inline", [False, True])
async def test_a_merge_into_a_document_the_transaction_read_reads_no_row_again(
    tmp_path: Path, inline: bool
) -> None:
    """A merge applies to the text the transaction read (a turn merges into the lead and the inbox
    items it read): no second ``SELECT`` of that row; a document written earlier in the same
    transaction (set, then merge; delete, then merge) merges onto what that write left, and a
    merge into a document the transaction did not read still reads it."""
    store = SQLiteStore(tmp_path / "merge.db")
    try:
        await store.set("demo", "leads", "l1", {"id": "l1", "slots": {"a": 1}, "stage": "new"})
        await store.set("demo", "leads", "l2", {"id": "l2", "stage": "new"})
        await store.set("demo", "leads", "l3", {"id": "l3", "stage": "new", "keep": True})
        await store.set("demo", "inbox", "m1", {"id": "m1", "status": "pending"})

        async def fn(tx: Transaction) -> None:
            lead, item = await tx.get_many([("leads", "l1"), ("inbox", "m1")])
            assert lead is not None and item is not None
            assert await tx.get("leads", "l2") is not None
            tx.set("leads", "l1", {"stage": "qualified"}, merge=True)
            tx.set("inbox", "m1", {"status": "processed"}, merge=True)
            tx.set("leads", "l2", {"id": "l2", "stage": "booked", "score": 5})
            tx.set("leads", "l2", {"score": 9}, merge=True)  # onto the set above
            tx.delete("inbox", "m1")
            tx.set("inbox", "m1", {"status": "again"}, merge=True)  # onto nothing: a new document
            tx.set("leads", "l3", {"stage": "lost"}, merge=True)  # never read: read here

        statements: list[str] = []
        store._writer.set_trace_callback(statements.append)
        await store.run_transaction("demo", fn, inline=inline)
        store._writer.set_trace_callback(None)
        selects = [s for s in statements if s.startswith("SELECT")]
        assert len(selects) == 3, statements  # fn's two reads (a batch, a get), and l3's for its merge
        assert sum("'l3'" in s for s in selects) == 1
        assert await store.get("demo", "leads", "l1") == {"id": "l1", "slots": {"a": 1}, "stage": "qualified"}
        assert await store.get("demo", "leads", "l2") == {"id": "l2", "stage": "booked", "score": 9}
        assert await store.get("demo", "inbox", "m1") == {"status": "again"}
        assert await store.get("demo", "leads", "l3") == {"id": "l3", "stage": "lost", "keep": True}
    finally:
        await store.close()


@pytest.mark.parametrize("in_transaction", [False, True])
async def test_a_batch_of_point_reads_is_one_statement_seeking_the_primary_key(
    tmp_path: Path, in_transaction: bool
) -> None:
    """``get_many`` (outside and inside a transaction) reads its documents in one statement, in
    the order asked, absent ones ``None``, a ref named twice answered twice; the statement seeks
    the primary key for each ref."""
    store = SQLiteStore(tmp_path / "points.db")
    try:
        for i in range(20):
            await store.set("demo", "jobs", f"j{i}", {"i": i})
            await store.set("acme", "jobs", f"j{i}", {"i": -i})
        await store.set("demo", "leads", "l1", {"id": "l1"})
        refs = [("jobs", "j3"), ("leads", "l1"), ("jobs", "nope"), ("jobs", "j3"), ("leads", "j3")]
        expected = [{"i": 3}, {"id": "l1"}, None, {"i": 3}, None]
        statements: list[str] = []
        conn = store._writer if in_transaction else store._reader
        conn.set_trace_callback(statements.append)
        if in_transaction:

            async def fn(tx: Transaction) -> list[Any]:
                return await tx.get_many(refs)

            got = await store.run_transaction("demo", fn)
        else:
            got = await store.get_many("demo", refs)
        conn.set_trace_callback(None)
        assert got == expected
        reads = [s for s in statements if s.startswith("SELECT")]
        assert len(reads) == 1, statements
        plan = " ".join(
            str(row[3])
            for row in store._reader.execute(
                "EXPLAIN QUERY PLAN " + reads[0].replace("'demo'", "?"), ("demo",)
            ).fetchall()
        )
        assert "SEARCH d USING PRIMARY KEY (tenant=? AND coll=? AND id=?)" in plan, plan
        assert await store.get_many("demo", []) == []
        assert await store.get_many("demo", [("jobs", "j1")]) == [{"i": 1}]
    finally:
        await store.close()


async def test_a_file_store_reads_through_a_memory_map_and_a_larger_page_cache(tmp_path: Path) -> None:
    """The writer's and the reader's connections read the database file through a memory map and
    keep a 32 MiB page cache (the turns benchmark at 100,000 stored messages: 34 -> 14 ``pread``
    calls an answer turn); an in-memory store opens as before."""
    from app.store.sqlite import CACHE_KIB, MMAP_BYTES

    store = SQLiteStore(tmp_path / "mapped.db")
    try:
        await store.set("demo", "leads", "l1", {"id": "l1", "created_at": 1.0})
        for conn in (store._writer, store._reader):
            assert conn.execute("PRAGMA mmap_size").fetchone()[0] == MMAP_BYTES
            assert conn.execute("PRAGMA cache_size").fetchone()[0] == -CACHE_KIB
        assert await store.get("demo", "leads", "l1") == {"id": "l1", "created_at": 1.0}
    finally:
        await store.close()
    memory = SQLiteStore(":memory:")
    try:
        await memory.set("demo", "leads", "l1", {"id": "l1"})
        assert await memory.get("demo", "leads", "l1") == {"id": "l1"}
    finally:
        await memory.close()
