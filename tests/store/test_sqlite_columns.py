"""The embedded store's indexed fields are real columns (issue 15: a write no longer runs
``json_extract`` once per expression index): each column holds what ``json_extract`` read from
the document, queries on them answer as the JSON expressions did, a write sets only the columns
it changes, and a file written with the expression indexes is migrated when opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from app.store import Filter, Order, Transaction, where
from app.store.sqlite import _COLL_PARAM, SQLiteStore, _compile
from app.store.sqlite_schema import COLUMNS, column_values, leaf_of, sql_value_of


def _mismatches(store: SQLiteStore) -> list[tuple[Any, ...]]:
    """Rows whose column (or its presence) differs from what the JSON says, for every declared
    ``(collection, field)``: value and storage class of ``json_extract``, ``json_type`` presence."""
    bad: list[tuple[Any, ...]] = []
    for leaf, fields in COLUMNS.items():
        for field in fields:
            sql = (
                f"SELECT coll, id, f_{field}, nulls, data FROM docs WHERE leaf = ? AND NOT ("
                f"f_{field} IS json_extract(data, '$.{field}') "
                f"AND typeof(f_{field}) = typeof(json_extract(data, '$.{field}')) "
                f"AND (f_{field} IS NOT NULL OR instr(nulls, ',{field},') > 0) "
                f"= (json_type(data, '$.{field}') IS NOT NULL))"
            )
            bad += [(field, *row) for row in store._reader.execute(sql, (leaf,)).fetchall()]
    return bad


#: Values of one field across documents: every JSON type, ints and floats that compare equal,
#: a big integer, missing (no key) and null.
VALUES: list[Any] = [
    1,
    1.0,
    2,
    2.5,
    -3,
    0,
    True,
    False,
    "1",
    "a",
    "b",
    "",
    None,
    {"k": [1, "é"]},
    [2, 1],
    2**70,
]
MISSING = object()


async def _seed(store: SQLiteStore) -> None:
    for i, value in enumerate([*VALUES, MISSING]):
        doc: dict[str, Any] = {"id": f"cv{i:02d}", "lead_id": "ld_1", "created_at": float(i % 5)}
        if value is not MISSING:
            doc["status"] = value
            doc["updated_at"] = value
        await store.set("demo", "conversations", doc["id"], doc)


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    store = SQLiteStore(tmp_path / "columns.db")
    try:
        yield store
    finally:
        await store.close()


async def test_columns_hold_what_json_extract_reads(store: SQLiteStore) -> None:
    """Every write path (set, create, merge, a transaction's write of what it read, delete and
    write again) leaves each column equal to ``json_extract`` of the text, storage class
    included, and ``nulls`` naming the fields present as ``null``."""
    await _seed(store)
    await store.set("demo", "conversations", "cv00", {"status": None, "lead_id": 7}, merge=True)

    runs = iter(range(2))

    async def fn(tx: Transaction) -> None:
        run = next(runs)
        first = await tx.get("conversations", "cv01")
        assert first is not None
        (second,) = await tx.get_many([("conversations", "cv02")])
        assert second is not None
        tx.set("conversations", "cv01", {**first, "status": "handoff", "channel": None})
        tx.set("conversations", "cv02", {"updated_at": 2**64, "created_at": float("nan")}, merge=True)
        tx.create(
            "conversations/cv01/messages", f"m{run}", {"seq": run, "direction": "inbound", "channel": None}
        )
        tx.delete("conversations", "cv03")
        tx.set("conversations", "cv03", {"status": "x"}, merge=True)

    await store.run_transaction("demo", fn)
    await store.run_transaction("demo", fn, inline=True)
    assert _mismatches(store) == []
    row = store._reader.execute("SELECT nulls FROM docs WHERE id='cv01' AND coll='conversations'").fetchone()
    assert row == (",channel,",)


def test_a_value_is_stored_as_sqlite_reads_it_from_json() -> None:
    conn = sqlite3.connect(":memory:")
    for value in [*VALUES, float("inf"), 2**63 - 1, -(2**63) - 1]:
        from app.store.sqlite_schema import dump

        got = conn.execute(
            "SELECT json_extract(?, '$.v'), typeof(json_extract(?, '$.v'))", [dump({"v": value})] * 2
        ).fetchone()
        mine = sql_value_of(value)
        assert (mine, type(mine).__name__) == (got[0], type(got[0]).__name__), value
    assert column_values(("a", "b", "c"), {"a": None, "c": float("nan")}) == (",a,c,", None, None, None)
    assert column_values(("a",), {}) == (None, None)


QUERIES: list[tuple[list[Filter], list[Order]]] = [
    ([where("status", "==", 1)], []),
    ([where("status", "==", "1")], []),
    ([where("status", "==", True)], []),
    ([where("status", "==", None)], []),
    ([where("status", "!=", 1)], []),
    ([where("status", "<", 2)], []),
    ([where("status", ">=", "a")], []),
    ([where("status", "in", [1, "a", 2.5, None])], []),
    ([where("status", "==", {"k": [1, "é"]})], []),
    ([], [Order("status")]),
    ([], [Order("status", descending=True)]),
    ([where("lead_id", "==", "ld_1")], [Order("updated_at", descending=True)]),
    ([where("updated_at", ">", 0)], [Order("updated_at")]),
    ([where("status", "==", 2), where("created_at", "<=", 3.0)], [Order("created_at")]),
]


@pytest.mark.parametrize(("filters", "order_by"), QUERIES)
async def test_queries_on_columns_answer_as_the_json_expressions_did(
    store: SQLiteStore, filters: list[Filter], order_by: list[Order]
) -> None:
    """The same query read from the columns (as the store runs it) and from ``json_extract``
    (the SQL of a collection declaring no column) finds the same documents in the same order,
    and the store's own query and count agree; a cursor's next page is the rest of the query."""
    await _seed(store)

    def ids(sql: str, params: list[Any]) -> list[str]:
        head = f"SELECT id FROM docs WHERE tenant=? AND coll={_COLL_PARAM}"
        return [
            r[0] for r in store._reader.execute(head + sql, ["demo", "conversations", *params]).fetchall()
        ]

    from_json = ids(*_compile(filters, order_by, None))
    from_columns = ids(*_compile(filters, order_by, None, collection="conversations"))
    assert "json_" not in _compile(filters, order_by, None, collection="conversations")[0] or any(
        f.field not in COLUMNS["conversations"] for f in filters
    )
    assert from_columns == from_json
    found = await store.query("demo", "conversations", filters=filters, order_by=order_by)
    assert [d.id for d in found] == from_json
    if not order_by:
        assert await store.count("demo", "conversations", filters=filters) == len(from_json)
    if order_by and len(found) > 2:
        cursor = [found[1].data.get(o.field) for o in order_by] + [found[1].id]
        page = await store.query(
            "demo", "conversations", filters=filters, order_by=order_by, start_after=cursor
        )
        assert [d.id for d in page] == [d.id for d in found[2:]]  # nulls too, last descending


async def test_a_write_of_a_document_read_sets_only_the_columns_it_changes(store: SQLiteStore) -> None:
    """A turn's write of the conversation it read is an ``UPDATE`` of its text and of the
    columns whose values changed: the indexes on the others (lead, channel, playbook, created)
    are not touched. A write of a document not read rewrites every column (an upsert)."""
    base = {
        "id": "cv1",
        "lead_id": "ld_1",
        "channel": "sms",
        "status": "active",
        "playbook_id": "solar",
        "created_at": 1.0,
        "updated_at": 1.0,
    }
    await store.set("demo", "conversations", "cv1", base)
    statements: list[str] = []

    async def fn(tx: Transaction) -> None:
        current = await tx.get("conversations", "cv1")
        assert current is not None
        tx.set("conversations", "cv1", {**current, "updated_at": 2.0, "state": {"step": 3}})

    store._writer.set_trace_callback(statements.append)
    try:
        await store.run_transaction("demo", fn, inline=True)
        await store.run_transaction("demo", fn)
    finally:
        store._writer.set_trace_callback(None)
    writes = [s for s in statements if s.startswith(("UPDATE", "INSERT"))]
    assert len(writes) == 2, statements
    assert writes[0].startswith("UPDATE docs SET data=") and ", f_updated_at=2.0 WHERE" in writes[0], writes[
        0
    ]
    assert writes[1].startswith("UPDATE docs SET data=") and " WHERE tenant=" in writes[1], writes[1]
    assert ", f_" not in writes[1] and ", nulls=" not in writes[1], writes[1]
    doc = await store.get("demo", "conversations", "cv1")
    assert doc == {**base, "updated_at": 2.0, "state": {"step": 3}}
    found = await store.query("demo", "conversations", filters=[where("updated_at", "==", 2.0)])
    assert [d.id for d in found] == ["cv1"]
    assert _mismatches(store) == []


def test_every_index_is_on_columns(store: SQLiteStore) -> None:
    """No declared index reads the JSON text: a write enters them by its columns."""
    rows = store._reader.execute("SELECT name, sql FROM sqlite_master WHERE name LIKE 'ix_%'").fetchall()
    assert len(rows) >= 20
    assert [name for name, sql in rows if "data" in sql or "json" in sql] == []


# ----------------------------------------------------------------------- migration
#: The schema as the version before the columns wrote it: the documents table with the generated
#: leaf, and expression indexes partial on the collection (a sample of the 26, of each kind).
OLD_SCHEMA = """
CREATE TABLE docs (tenant TEXT NOT NULL, coll TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (tenant, coll, id)) WITHOUT ROWID;
ALTER TABLE docs ADD COLUMN leaf TEXT
    GENERATED ALWAYS AS (substr(coll, length(rtrim(coll, replace(coll, '/', ''))) + 1)) VIRTUAL;
CREATE TABLE colls (tenant TEXT NOT NULL, coll TEXT NOT NULL, leaf TEXT NOT NULL,
    PRIMARY KEY (tenant, coll)) WITHOUT ROWID;
CREATE INDEX colls_leaf ON colls (leaf, coll);
CREATE TABLE ingest_log (tenant TEXT NOT NULL, id TEXT NOT NULL, at REAL NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (tenant, id)) WITHOUT ROWID;
CREATE INDEX ix_t_conversation_id_seq ON docs (coll, tenant, json_extract(data, '$.conversation_id'),
    json_extract(data, '$.seq')) WHERE (coll = 'outbox' OR coll = 'inbox' OR coll = 'qaUsage');
CREATE INDEX ix_t_seq ON docs (coll, tenant, json_extract(data, '$.seq')) WHERE leaf = 'messages';
CREATE INDEX ix_t_phone_created_at ON docs (coll, tenant, json_extract(data, '$.phone'),
    json_extract(data, '$.created_at')) WHERE coll = 'leads' AND json_extract(data, '$.phone') IS NOT NULL;
CREATE INDEX ix_g_status_lease_until ON docs (coll, json_extract(data, '$.status'),
    json_extract(data, '$.lease_until')) WHERE leaf = 'jobs' AND json_type(data, '$.lease_until') IS NOT NULL;
CREATE INDEX ix_g_status_due_at ON docs (coll, json_extract(data, '$.status'),
    json_extract(data, '$.due_at')) WHERE leaf = 'jobs';
"""

OLD_DOCS: list[tuple[str, str, str, str]] = [
    ("demo", "outbox", "o1", '{"conversation_id":"cv_1","seq":2,"status":"pending"}'),
    ("demo", "outbox", "o2", '{"conversation_id":"cv_1","seq":1.5,"status":"sent"}'),
    ("demo", "outbox", "o3", '{"conversation_id":null,"seq":1}'),
    ("demo", "conversations/cv_1/messages", "m1", '{"seq":2,"direction":"inbound","channel":"sms"}'),
    ("demo", "conversations/cv_1/messages", "m2", '{"seq":1,"direction":"outbound","channel":null}'),
    ("demo", "leads", "l1", '{"phone":"+33600000000","email":null,"created_at":1.0,"stage":"new"}'),
    ("demo", "leads", "l2", '{"phone":null,"webchat_id":"s1","created_at":2,"stage":true}'),
    ("demo", "jobs", "j1", '{"status":"pending","due_at":5.0,"shard":3}'),
    ("demo", "jobs", "j2", '{"status":"leased","due_at":4.0,"lease_until":9.0,"shard":3}'),
    ("acme", "jobs", "j3", '{"status":"leased","due_at":4.0,"lease_until":null}'),
    ("demo", "config", "tenant", '{"status":"on"}'),
]


def _old_file(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    conn.executemany("INSERT INTO docs VALUES (?,?,?,?)", OLD_DOCS)
    conn.executemany(
        "INSERT OR IGNORE INTO colls VALUES (?,?,?)", [(t, c, leaf_of(c)) for t, c, _, _ in OLD_DOCS]
    )
    conn.commit()
    conn.close()


async def test_a_file_with_the_expression_indexes_is_migrated_on_open(tmp_path: Path) -> None:
    """A file the previous version wrote gets its columns, filled from the JSON, the expression
    indexes replaced by column ones; its documents answer every query as before, through the
    indexes; a second open changes nothing; writes after it keep the columns in step."""
    path = tmp_path / "old.db"
    _old_file(path)
    store = SQLiteStore(path)
    try:
        indexes = dict(
            store._reader.execute("SELECT name, sql FROM sqlite_master WHERE type='index'").fetchall()
        )
        assert [n for n, sql in indexes.items() if sql and "json_" in sql] == []
        assert indexes["ix_t_conversation_id_seq"].startswith(
            "CREATE INDEX ix_t_conversation_id_seq ON docs (coll, tenant, f_conversation_id, f_seq)"
        )
        assert _mismatches(store) == []
        filled = set(store._reader.execute("SELECT leaf, field FROM doc_columns").fetchall())
        assert filled == {(leaf, f) for leaf, fields in COLUMNS.items() for f in fields}

        async def ids(collection: str, filters: list[Filter], order_by: list[Order]) -> list[str]:
            return [d.id for d in await store.query("demo", collection, filters=filters, order_by=order_by)]

        assert await ids("outbox", [where("conversation_id", "==", "cv_1")], [Order("seq")]) == ["o2", "o1"]
        assert await ids("outbox", [where("conversation_id", "==", None)], []) == ["o3"]
        assert await ids("outbox", [], [Order("conversation_id")]) == ["o3", "o1", "o2"]
        assert await ids("conversations/cv_1/messages", [], [Order("seq")]) == ["m2", "m1"]
        assert await ids("conversations/cv_1/messages", [where("channel", "==", None)], []) == ["m2"]
        assert await ids("leads", [where("phone", "==", "+33600000000")], []) == ["l1"]
        assert await ids("leads", [where("phone", "==", None)], []) == ["l2"]
        assert await ids("leads", [where("stage", "==", 1)], []) == ["l2"]  # true reads as 1, as before
        assert await ids("leads", [where("email", "==", None)], [Order("created_at")]) == ["l1"]
        assert await ids("config", [where("status", "==", "on")], []) == ["tenant"]  # no column: the JSON
        leased = await store.query_group(
            "jobs", filters=[where("status", "==", "leased"), where("lease_until", "<=", 10.0)]
        )
        assert [(d.tenant_id, d.id) for d in leased] == [("demo", "j2")]
        present = await store.query_group("jobs", filters=[where("lease_until", "==", None)])
        assert [(d.tenant_id, d.id) for d in present] == [("acme", "j3")]
        tail, params = _compile(
            [where("conversation_id", "==", "cv_1")], [Order("seq")], 5, collection="outbox"
        )
        plan = " ".join(
            str(r[3])
            for r in store._reader.execute(
                f"EXPLAIN QUERY PLAN SELECT data FROM docs WHERE tenant=? AND coll={_COLL_PARAM}" + tail,
                ["demo", "outbox", *params],
            ).fetchall()
        )
        assert "USING INDEX ix_t_conversation_id_seq (coll=? AND tenant=? AND f_conversation_id=?)" in plan, (
            plan
        )
        await store.set("demo", "outbox", "o3", {"conversation_id": "cv_2"}, merge=True)
        assert await ids("outbox", [where("conversation_id", "==", "cv_2")], []) == ["o3"]
        assert _mismatches(store) == []
    finally:
        await store.close()
    again = SQLiteStore(path)
    try:
        from app.store.sqlite_schema import migrate

        assert migrate(again._writer) == {"filled": 0, "cleared": 0, "dropped": 0, "created": 0}
        assert [d.id for d in await again.query("demo", "outbox", order_by=[Order("seq")])] == [
            "o3",
            "o2",
            "o1",
        ]
    finally:
        await again.close()


async def test_a_column_no_longer_declared_is_cleared_and_a_new_one_filled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Declarations drive the columns: a field dropped from a collection's indexes is emptied for
    its documents (its queries read the JSON again), one added is filled at the next open."""
    from app.store import sqlite_schema

    path = tmp_path / "decl.db"
    store = SQLiteStore(path)
    await store.set(
        "demo", "outbox", "o1", {"conversation_id": None, "seq": 1, "status": "x", "channel": "sms"}
    )
    await store.close()
    monkeypatch.setitem(sqlite_schema.COLUMNS, "outbox", ("seq", "channel"))
    counts = sqlite_schema.migrate(sqlite3.connect(path, isolation_level=None))
    assert (counts["cleared"], counts["filled"]) == (1, 1)
    conn = sqlite3.connect(path)
    row = conn.execute(
        "SELECT f_conversation_id, f_status, nulls, f_seq, f_channel FROM docs WHERE id='o1'"
    ).fetchone()
    assert row == (None, None, None, 1, "sms")
    assert set(conn.execute("SELECT field FROM doc_columns WHERE leaf='outbox'").fetchall()) == {
        ("seq",),
        ("channel",),
    }
    conn.close()


async def test_a_collection_with_json_sqlite_rejects_is_filled_document_by_document(tmp_path: Path) -> None:
    """A ``NaN`` an older version wrote (in a collection no expression index read, or before it
    had one) makes ``json_extract`` refuse the text: that collection's columns are computed in
    Python (the ``NaN`` as the ``null`` it is written as today), the others' still by SQL."""
    path = tmp_path / "nan.db"
    _old_file(path)
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO docs VALUES ('demo', 'crm_batch', 'b9', '{\"connection_id\":\"cn_1\",\"shard\":NaN}')"
    )
    conn.commit()
    conn.close()
    store = SQLiteStore(path)
    try:
        row = store._reader.execute(
            "SELECT f_connection_id, f_shard, nulls FROM docs WHERE id='b9'"
        ).fetchone()
        assert row == ("cn_1", None, ",shard,")
        found = await store.query("demo", "crm_batch", filters=[where("connection_id", "==", "cn_1")])
        assert [d.id for d in found] == ["b9"]
        assert await store.count("demo", "crm_batch", filters=[where("shard", "==", None)]) == 1
        by_conv = await store.query("demo", "outbox", filters=[where("conversation_id", "==", "cv_1")])
        assert sorted(d.id for d in by_conv) == ["o1", "o2"]
        leads = await store.query("demo", "leads", filters=[where("phone", "==", None)])
        assert [d.id for d in leads] == ["l2"]
    finally:
        await store.close()
