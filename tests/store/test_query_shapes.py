"""The SQLite store builds a query's SQL once per shape (issue 15: CPU per answer turn): the
cached SQL and the parameters bound to it are exactly what building it afresh gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.store import Filter, Order, StoreError, where
from app.store.sqlite import SQLiteStore, _compile, _index_hint, _query_sql, _shaped_sql

HEAD = "SELECT tenant, coll, id, data FROM docs{hint} WHERE tenant=? AND coll=+?"

SHAPES: list[tuple[str, list[Filter], list[Order], int | None, list[object] | None]] = [
    (
        "inbox",
        [where("address_key", "==", "sms:+1"), where("status", "==", "pending")],
        [Order("seq")],
        None,
        None,
    ),
    (
        "inbox",
        [where("address_key", "==", "sms:+2"), where("status", "==", "pending")],
        [Order("seq")],
        1,
        None,
    ),
    ("leads", [where("phone", "==", None)], [], None, None),
    ("leads", [where("webchat_id", "==", "s1")], [Order("created_at", descending=True)], 5, None),
    ("jobs", [where("shard", "in", [1, 2, 3]), where("due_at", "<=", 9.5)], [Order("due_at")], 16, None),
    ("jobs", [where("shard", "in", []), where("status", "!=", "dead")], [], None, None),
    ("playbooks", [where("tags", "array_contains", "x"), where("ok", "==", True)], [], None, None),
    ("conversations/cv_1/messages", [], [Order("seq", descending=True)], 2, [7.5, "m9"]),
    ("conversations/cv_2/messages", [where("direction", "==", "inbound")], [Order("seq")], 3, [1, "m1"]),
    ("conversations", [], [Order("status"), Order("created_at", descending=True)], 10, ["a", 2.0, "cv"]),
]


@pytest.mark.parametrize(("collection", "filters", "order_by", "limit", "cursor"), SHAPES)
def test_cached_sql_and_parameters_are_those_built_afresh(
    collection: str,
    filters: list[Filter],
    order_by: list[Order],
    limit: int | None,
    cursor: list[object] | None,
) -> None:
    sql, params = _shaped_sql(HEAD, collection, filters, order_by, limit, cursor)
    tail, expected = _compile(filters, order_by, limit, cursor, collection=collection)
    assert sql == HEAD.replace("{hint}", _index_hint(collection, filters, order_by)) + tail
    assert params == expected
    again, _ = _shaped_sql(HEAD, collection, filters, order_by, limit, cursor)
    assert again is sql  # from the cache


def test_a_shape_is_built_once() -> None:
    _query_sql.cache_clear()
    for value in ("a", "b", "c"):
        _shaped_sql(HEAD, "inbox", [where("address_key", "==", value)], [Order("seq")], 1)
    _shaped_sql(HEAD, "inbox", [where("address_key", "==", None)], [Order("seq")], 1)  # another shape
    info = _query_sql.cache_info()
    assert (info.misses, info.hits) == (2, 2)


def test_bad_cursors_and_fields_still_raise() -> None:
    with pytest.raises(StoreError):
        _shaped_sql(HEAD, "inbox", [], [Order("seq")], 1, [1.0])  # no document id
    with pytest.raises(StoreError):
        _shaped_sql(HEAD, "inbox", [], [], 1, ["x"])  # a cursor without an order
    with pytest.raises(StoreError):
        _shaped_sql(HEAD, "inbox", [where("a'b", "==", 1)], [], None)


async def test_queries_of_one_shape_answer_for_their_own_values(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "shapes.db")
    try:
        for i in range(4):
            await store.set(
                "demo", "inbox", f"m{i}", {"address_key": f"k{i % 2}", "status": "pending", "seq": i}
            )
        for key, ids in (("k0", ["m0", "m2"]), ("k1", ["m1", "m3"])):
            found = await store.query(
                "demo", "inbox", filters=[where("address_key", "==", key)], order_by=[Order("seq")]
            )
            assert [d.id for d in found] == ids
        page = await store.query("demo", "inbox", order_by=[Order("seq")], start_after=[1, "m1"], limit=2)
        assert [d.id for d in page] == ["m2", "m3"]
        group = await store.query_group("inbox", filters=[where("address_key", "==", "k1")], limit=1)
        assert [d.id for d in group] == ["m1"]
    finally:
        await store.close()
