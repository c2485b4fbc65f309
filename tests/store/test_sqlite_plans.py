"""The embedded store answers the queries the service runs on growing collections through an
index on the query's own fields, never by scanning (the inbox, leads, messages and outbox only grow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.store import Filter, Order, where
from app.store.sqlite import _COLL_PARAM, SQLiteStore, _compile, _index_hint, _null_tail

TENANT_QUERIES: list[tuple[str, list[Filter], list[Order]]] = [
    (
        "inbox",
        [where("address_key", "==", "whatsapp:+33600000000"), where("status", "==", "pending")],
        [Order("seq")],
    ),
    ("leads", [where("phone", "==", "+33600000000")], [Order("created_at")]),
    ("leads", [where("email", "==", "a@b.fr")], [Order("created_at")]),
    ("leads", [where("webchat_id", "==", "wc_1")], [Order("created_at")]),
    (
        "conversations",
        [where("lead_id", "==", "ld_1"), where("channel", "==", "sms")],
        [Order("created_at", descending=True)],
    ),
    ("conversations", [where("lead_id", "==", "ld_1")], [Order("created_at", descending=True)]),
    ("conversations", [], [Order("created_at", descending=True)]),
    ("outbox", [where("conversation_id", "==", "cv_1"), where("status", "==", "pending")], [Order("seq")]),
    ("outbox", [where("conversation_id", "==", "cv_1")], [Order("seq")]),
    ("outbox", [where("conversation_id", "==", "cv_1"), where("status", "==", "pending")], []),
    ("inbox", [where("address_key", "==", "sms:+1"), where("status", "==", "pending")], [Order("seq")]),
    ("conversations/cv_1/messages", [], [Order("seq")]),
    ("conversations/cv_1/messages", [where("seq", ">", 3)], [Order("seq")]),
    (
        "conversations/cv_1/messages",
        [where("direction", "==", "inbound"), where("channel", "==", "email")],
        [Order("seq", descending=True)],
    ),
    (
        "playbooks",
        [where("id", "==", "solar"), where("status", "==", "active")],
        [Order("version", descending=True)],
    ),
    ("leads", [where("stage", "==", "won")], [Order("created_at", descending=True)]),  # dashboard
    ("leads", [where("source", "==", "csv")], [Order("created_at", descending=True)]),
    # CRM sync and booking: logs, links, the queue in an outage, a booking by the calendar's id
    ("crm_sync_logs", [where("connection_id", "==", "cn_1")], [Order("at", descending=True)]),
    (
        "crm_sync_logs",
        [where("connection_id", "==", "cn_1"), where("status", "==", "dead")],
        [Order("at", descending=True)],
    ),
    ("crm_sync_logs", [where("lead_id", "==", "ld_1")], [Order("at", descending=True)]),
    ("crm_webhook_logs", [where("connection_id", "==", "cn_1")], [Order("at", descending=True)]),
    ("connection_audit", [where("connection_id", "==", "cn_1")], [Order("at", descending=True)]),
    ("crm_links", [where("lead_id", "==", "ld_1")], [Order("queued_at", descending=True)]),
    ("crm_links", [where("connection_id", "==", "cn_1"), where("status", "==", "dead")], []),
    ("crm_links", [where("connection_id", "==", "cn_1"), where("remote_contact", "==", "c_9")], []),
    ("crm_batch", [where("connection_id", "==", "cn_1"), where("shard", "==", 3)], []),
    ("crm_batch", [where("connection_id", "==", "cn_1")], []),
    ("bookings", [where("provider_key", "==", "cal_com:123")], []),
    ("crm_reviews", [where("status", "==", "open")], [Order("created_at")]),
]
# Not listed: queries on collections that stay small because their documents are deleted once
# handled (status_events, live jobs); the planner may read those through the primary key.


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "plans.db")


def _plan(store: SQLiteStore, sql: str, params: list[object]) -> str:
    rows = store._reader.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return " | ".join(str(r[3]) for r in rows)


@pytest.mark.parametrize(("collection", "filters", "order"), TENANT_QUERIES)
def test_tenant_queries_seek_an_index(
    store: SQLiteStore, collection: str, filters: list[Filter], order: list[Order]
) -> None:
    tail, params = _compile(filters, order, 10, collection=collection)
    hint = _index_hint(collection, filters, order)  # as the store's own query names it
    sql = f"SELECT tenant, coll, id, data FROM docs{hint} WHERE tenant=? AND coll={_COLL_PARAM}" + tail
    plan = _plan(store, sql, ["demo", collection, *params])
    if filters:  # equality on the query's fields, not just the (tenant, collection) prefix
        assert "USING INDEX ix_t_" in plan, plan
    else:
        assert "SEARCH docs USING" in plan, plan
    assert "SCAN docs" not in plan, plan


@pytest.mark.parametrize("field", ["due_at", "lease_until"])
def test_the_schedulers_group_queries_seek_the_group_indexes(store: SQLiteStore, field: str) -> None:
    tail, params = _compile(
        [where("status", "==", "pending"), where(field, "<=", 1.0)],
        [Order(field)],
        16,
        collection="jobs",
        group=True,
    )
    sql = (
        "SELECT tenant, coll, id, data FROM docs WHERE coll IN (SELECT coll FROM colls WHERE leaf=?) "
        "AND tenant != ?" + tail
    )
    plan = _plan(store, sql, ["jobs", "_system", *params])
    assert f"ix_g_status_{field}" in plan, plan
    assert "SCAN docs" not in plan, plan


@pytest.mark.parametrize(("status", "field"), [("pending", "due_at"), ("leased", "lease_until")])
def test_the_schedulers_shard_window_queries_read_columns_only(
    store: SQLiteStore, status: str, field: str
) -> None:
    """``JobQueue.lease_due``'s queries (a window of shards, a status, due or expired) seek their
    group index and check the shard from its column: no JSON is parsed to find due jobs."""
    tail, params = _compile(
        [where("shard", "in", [0, 1, 2, 3]), where("status", "==", status), where(field, "<=", 1.0)],
        [Order(field)],
        16,
        collection="jobs",
        group=True,
    )
    assert "json_" not in tail, tail
    sql = (
        "SELECT tenant, coll, id, data FROM docs WHERE coll IN (SELECT coll FROM colls WHERE leaf=?) "
        "AND tenant != ?" + tail
    )
    plan = _plan(store, sql, ["jobs", "_system", *params])
    assert f"USING INDEX ix_g_status_{field} (coll=? AND f_status=? AND f_{field}<?)" in plan, plan
    assert "SCAN docs" not in plan, plan


#: The collections an answer turn writes (issue 15): every field their queries name is a column.
HOT = ("inbox", "outbox", "conversations", "conversations/cv_1/messages", "jobs")


@pytest.mark.parametrize(
    ("collection", "filters", "order"), [q for q in TENANT_QUERIES if q[0] in HOT], ids=lambda v: str(v)[:40]
)
def test_the_hot_collections_queries_read_no_json(
    collection: str, filters: list[Filter], order: list[Order]
) -> None:
    tail, _ = _compile(filters, order, 10, collection=collection)
    assert "json_" not in tail, tail


def test_the_schedulers_next_due_query_seeks_the_group_index(store: SQLiteStore) -> None:
    """The worker's sleep-until-next-due look (``JobQueue.next_due_at``): one index seek bounded
    by the horizon (only the jobs due within it are sorted), not a scan of every pending timer."""
    tail, params = _compile(
        [where("status", "==", "pending"), where("due_at", "<=", 1.0)],
        [Order("due_at")],
        1,
        collection="jobs",
    )
    sql = (
        "SELECT tenant, coll, id, data FROM docs WHERE coll IN (SELECT coll FROM colls WHERE leaf=?) "
        "AND tenant != ?" + tail
    )
    plan = _plan(store, sql, ["jobs", "_system", *params])
    assert "ix_g_status_due_at" in plan, plan
    assert "SCAN docs" not in plan, plan
    assert "f_status=? AND f_due_at<?" in plan, plan  # the horizon bounds the seek


@pytest.mark.parametrize(
    ("collection", "order", "index"),
    [
        ("conversations", Order("created_at", descending=True), "ix_t_created_at"),
        ("leads", Order("created_at", descending=True), "ix_t_created_at"),
        ("conversations/cv_1/messages", Order("seq"), "ix_t_seq"),
    ],
)
def test_an_order_without_a_condition_reads_the_index_in_order(
    store: SQLiteStore, collection: str, order: Order, index: str
) -> None:
    """ "Newest first" with no filter on the ordered field walks the partial index in order (its
    condition is the query's own presence term), with no sort of the whole collection; so does
    the next page of a cursor."""
    for cursor in (None, [10.0, "x"]):
        tail, params = _compile([], [order], 50, cursor, collection=collection)
        sql = f"SELECT tenant, coll, id, data FROM docs WHERE tenant=? AND coll={_COLL_PARAM}" + tail
        plan = _plan(store, sql, ["demo", collection, *params])
        assert f"USING INDEX {index}" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
        assert "SCAN docs" not in plan, plan


@pytest.mark.parametrize(
    ("collection", "filters", "order", "index"),
    [
        ("conversations", [], Order("created_at", descending=True), "ix_t_created_at"),
        (
            "conversations",
            [where("lead_id", "==", "ld_1")],
            Order("created_at", descending=True),
            "ix_t_lead_id_created_at",
        ),
        ("conversations/cv_1/messages", [], Order("seq", descending=True), "ix_t_seq"),
    ],
)
def test_the_null_rows_after_a_descending_page_seek_the_index(
    store: SQLiteStore, collection: str, filters: list[Filter], order: Order, index: str
) -> None:
    """A descending page after a value reads the field's null rows (last, as in Firestore) with a
    second statement once the index's seek from the cursor runs out: that one seeks the same
    index on ``IS NULL`` (it walked the whole collection by primary key)."""
    tail = _null_tail(filters, [order], [10.0, "x"])
    assert tail is not None
    sql_tail, params = _compile([*filters, tail], [order], 50, collection=collection)
    hint = _index_hint(collection, [*filters, tail], [order])
    sql = f"SELECT tenant, coll, id, data FROM docs{hint} WHERE tenant=? AND coll={_COLL_PARAM}" + sql_tail
    plan = _plan(store, sql, ["demo", collection, *params])
    assert f"USING INDEX {index}" in plan and "f_" + order.field + "=?" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
    # a filter no null matches leaves nothing to read after the seek: no second statement
    assert _null_tail([where(order.field, ">", 0)], [order], [10.0, "x"]) is None
    assert _null_tail(filters, [order], [None, "x"]) is None


def test_count_searches_its_collection_never_the_whole_table(store: SQLiteStore) -> None:
    from app.store.sqlite import _where

    clauses, params = _where([where("status", "==", "handoff")], [])
    clauses.insert(0, "coll = 'conversations' AND leaf = 'conversations'")
    sql = f"SELECT COUNT(*) FROM docs WHERE tenant=? AND coll={_COLL_PARAM}" + "".join(
        " AND " + c for c in clauses
    )
    plan = _plan(store, sql, ["demo", "conversations", *params])
    assert "SEARCH docs USING" in plan, plan
    assert "SCAN docs" not in plan, plan


async def test_an_index_of_an_older_shape_is_rebuilt_on_open(tmp_path: Path) -> None:
    """A file written before the indexes were partial on the presence term gets them rebuilt
    (the older ``json_extract(...) IS NOT NULL`` condition never serves an unfiltered order)."""
    first = SQLiteStore(tmp_path / "old.db")
    await first.set("demo", "leads", "a", {"created_at": 1.0})
    first._writer.execute("DROP INDEX ix_t_created_at")
    first._writer.execute(
        "CREATE INDEX ix_t_created_at ON docs (coll, tenant, json_extract(data, '$.created_at')) "
        "WHERE json_extract(data, '$.created_at') IS NOT NULL"
    )
    await first.close()
    second = SQLiteStore(tmp_path / "old.db")
    try:
        (sql,) = second._reader.execute(
            "SELECT sql FROM sqlite_master WHERE name='ix_t_created_at'"
        ).fetchone()
        assert "WHERE (coll = 'conversations' OR coll = 'leads'" in sql
        tail, params = _compile([], [Order("created_at", descending=True)], 5, collection="leads")
        plan = _plan(
            second,
            f"SELECT tenant, coll, id, data FROM docs WHERE tenant=? AND coll={_COLL_PARAM}" + tail,
            ["demo", "leads", *params],
        )
        assert "USING INDEX ix_t_created_at" in plan, plan
        assert [d.id for d in await second.query("demo", "leads", order_by=[Order("created_at")])] == ["a"]
    finally:
        await second.close()


async def test_a_file_without_the_leaf_column_is_migrated_on_open(tmp_path: Path) -> None:
    """A database written before the ``leaf`` column (indexes partial on ``json_type`` of their
    first field) gets the column and the collection-scoped indexes at open, and its documents
    are found through them."""
    import sqlite3

    path = tmp_path / "older.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE docs (tenant TEXT NOT NULL, coll TEXT NOT NULL, id TEXT NOT NULL, "
        "data TEXT NOT NULL, PRIMARY KEY (tenant, coll, id)) WITHOUT ROWID;"
        "CREATE INDEX ix_t_seq ON docs (coll, tenant, json_extract(data, '$.seq')) "
        "WHERE json_type(data, '$.seq') IS NOT NULL;"
        "CREATE INDEX ix_t_gone ON docs (coll, tenant, json_extract(data, '$.gone')) "
        "WHERE json_type(data, '$.gone') IS NOT NULL;"
    )
    for seq in (2, 1):
        conn.execute(
            "INSERT INTO docs VALUES ('demo', 'conversations/cv_1/messages', ?, ?)",
            (f"m{seq}", f'{{"seq":{seq}}}'),
        )
    conn.commit()
    conn.close()
    store = SQLiteStore(path)
    try:
        indexes = dict(
            store._reader.execute("SELECT name, sql FROM sqlite_master WHERE type='index'").fetchall()
        )
        assert "ix_t_gone" not in indexes
        assert indexes["ix_t_seq"].endswith("WHERE leaf = 'messages'"), indexes["ix_t_seq"]
        assert store._reader.execute("SELECT DISTINCT leaf FROM docs").fetchall() == [("messages",)]
        docs = await store.query("demo", "conversations/cv_1/messages", order_by=[Order("seq")])
        assert [d.id for d in docs] == ["m1", "m2"]
        tail, params = _compile([], [Order("seq")], 5, collection="conversations/cv_1/messages")
        plan = _plan(
            store,
            f"SELECT data FROM docs WHERE tenant=? AND coll={_COLL_PARAM}" + tail,
            ["demo", "c", *params],
        )
        assert "USING INDEX ix_t_seq" in plan, plan
    finally:
        await store.close()


def test_a_write_enters_only_the_indexes_of_its_collection(store: SQLiteStore) -> None:
    """Every composite index is partial on its collections first (``coll``, or ``leaf`` for a
    subcollection or a group; plus a field where declared): none runs ``json_type`` for a
    document of another collection."""
    rows = store._reader.execute("SELECT name, sql FROM sqlite_master WHERE name LIKE 'ix_%'").fetchall()
    assert len(rows) >= 15
    for name, sql in rows:
        where_ = sql.split(" WHERE ", 1)[1]
        assert where_.startswith(("leaf = '", "(leaf = '", "coll = '", "(coll = '")), (name, sql)


@pytest.mark.parametrize(
    ("collection", "filters", "index"),
    [
        ("jobs", [where("status", "==", "dead")], "ix_g_status_due_at"),  # JobQueue.dead_letters
        ("inbox", [where("conversation_id", "==", "cv_1")], "ix_t_conversation_id_seq"),  # CRM snapshot
        ("qaUsage", [where("conversation_id", "==", "cv_1")], "ix_t_conversation_id_seq"),
        ("conversations/cv_1/messages", [where("direction", "==", "outbound")], "ix_t_direction_channel_seq"),
        ("status_events", [where("channel", "==", "sms"), where("provider_message_id", "==", "SM1")], None),
    ],
)
def test_filters_without_an_order_seek_their_index(
    store: SQLiteStore, collection: str, filters: list[Filter], index: str | None
) -> None:
    """A query with equality filters and no order (``JobQueue.dead_letters`` over a jobs collection
    holding every pending timer) seeks the index of its fields instead of walking the collection
    by primary key; the SQL is the store's own (:func:`_run_query`)."""
    from app.store.sqlite import _run_query

    statements: list[str] = []
    store._reader.set_trace_callback(statements.append)
    try:
        _run_query(store._reader, "demo", collection, filters, [], None)
    finally:
        store._reader.set_trace_callback(None)
    (sql,) = [s for s in statements if s.startswith("SELECT")]
    plan = " | ".join(str(r[3]) for r in store._reader.execute("EXPLAIN QUERY PLAN " + sql).fetchall())
    assert f"USING INDEX {index or 'ix_t_channel_provider_message_id'}" in plan, plan
    assert "PRIMARY KEY" not in plan, plan


async def test_dead_letters_come_back_through_the_index(tmp_path: Path) -> None:
    """The hinted query answers: dead jobs of the tenant only, none of its pending ones."""

    store = SQLiteStore(tmp_path / "dead.db")
    try:
        for i in range(5):
            status = "dead" if i % 2 else "pending"
            await store.set("t1", "jobs", f"j{i}", {"id": f"j{i}", "status": status, "due_at": float(i)})
        await store.set("t2", "jobs", "x", {"id": "x", "status": "dead", "due_at": 0.0})
        docs = await store.query("t1", "jobs", filters=[where("status", "==", "dead")])
        assert [d.id for d in docs] == ["j1", "j3"]
    finally:
        await store.close()


async def test_a_query_is_prepared_once_whatever_its_collection_and_values(store: SQLiteStore) -> None:
    """Running the same query shape again with other values reuses its prepared statement. SQLite
    prepares a statement again when a parameter it compared with a partial index's condition is
    bound anew (``coll = ?`` against ``WHERE coll = 'inbox'``): every execution then planned the
    query against all the indexes. The authorizer is called while a statement is prepared, so it
    counts preparations (a collection's name is in the query as a literal too, so each
    collection's query is a statement of its own)."""
    for i in range(3):
        await store.set(
            "demo", "inbox", f"m{i}", {"address_key": f"sms:+3361234567{i}", "status": "pending", "seq": i}
        )
    prepared: list[int] = []

    def authorizer(action: int, *args: object) -> int:
        prepared.append(action)
        return 0  # SQLITE_OK

    store._reader.set_authorizer(authorizer)
    try:
        for tenant, collection in [("demo", "inbox"), ("acme", "inbox"), ("demo", "outbox")]:
            for i in range(3):
                before = len(prepared)
                found = await store.query(
                    tenant,
                    collection,
                    filters=[
                        where("address_key", "==", f"sms:+3361234567{i}"),
                        where("status", "==", "pending"),
                    ],
                    order_by=[Order("seq")],
                )
                assert [d.id for d in found] == (
                    [f"m{i}"] if (tenant, collection) == ("demo", "inbox") else []
                )
                if (collection, i) not in {("inbox", 0), ("outbox", 0)}:  # each shape's first run prepares it
                    assert len(prepared) == before, f"prepared again for {tenant}/{collection} #{i}"
    finally:
        store._reader.set_authorizer(None)
