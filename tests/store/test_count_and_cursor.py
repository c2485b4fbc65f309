"""``Store.count`` and cursor pagination (``start_after``), on every backend (the dashboard's lead
list counts its matches and pages through them without reading what came before)."""

from __future__ import annotations

import pytest

from app.store import Order, Store, StoreError, cursor_of, where

pytestmark = pytest.mark.asyncio


async def _seed(store: Store) -> None:
    # created_at ties (two leads per instant) so that the id tie-break is exercised.
    for i in range(9):
        data = {"created_at": float(i // 2), "stage": "new" if i % 3 else "won", "meta": {"rank": i % 4}}
        await store.set("t1", "leads", f"l{i}", data)
    await store.set("t1", "leads", "no-date", {"stage": "new"})
    await store.set("t2", "leads", "other", {"created_at": 1.0, "stage": "new"})


async def test_count_matches_query(store: Store) -> None:
    await _seed(store)
    assert await store.count("t1", "leads") == 10
    assert await store.count("t1", "leads", filters=[where("stage", "==", "new")]) == 7
    assert await store.count("t1", "leads", filters=[where("created_at", ">=", 2.0)]) == 5
    assert await store.count("t1", "leads", filters=[where("stage", "in", [])]) == 0
    assert await store.count("t1", "missing") == 0
    assert await store.count("t2", "leads") == 1


@pytest.mark.parametrize("descending", [False, True])
async def test_pages_by_cursor_cover_the_query_exactly_once(store: Store, descending: bool) -> None:
    await _seed(store)
    order = [Order("created_at", descending=descending)]
    whole = [d.id for d in await store.query("t1", "leads", order_by=order)]
    assert len(whole) == 9  # "no-date" lacks the ordered field
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.query("t1", "leads", order_by=order, limit=2, start_after=cursor)
        if not page:
            break
        seen += [d.id for d in page]
        cursor = cursor_of(page[-1], order)
    assert seen == whole
    # ties come by id, in the direction of the order
    assert whole[:2] == (["l8", "l7"] if descending else ["l0", "l1"])


async def test_cursor_with_filter_and_two_orders_of_mixed_direction(store: Store) -> None:
    await _seed(store)
    order = [Order("meta.rank"), Order("created_at", descending=True)]
    filters = [where("stage", "==", "new")]
    whole = await store.query("t1", "leads", filters=filters, order_by=order)
    first = await store.query("t1", "leads", filters=filters, order_by=order, limit=3)
    rest = await store.query(
        "t1", "leads", filters=filters, order_by=order, start_after=cursor_of(first[-1], order)
    )
    assert [d.id for d in first + rest] == [d.id for d in whole]
    assert len(whole) == 6


async def test_a_bad_cursor_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError):
        await store.query("t1", "leads", start_after=[1.0, "l1"])
    with pytest.raises(StoreError):
        await store.query("t1", "leads", order_by=[Order("created_at")], start_after=[1.0])
