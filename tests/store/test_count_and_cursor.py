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


#: Ordered values of mixed types: JSON null (present), a missing field, integers and floats with
#: ties, equal numbers of both types (1 and 1.0). Firestore orders null before every number
#: ("Ordering of value types", https://firebase.google.com/docs/firestore/manual/data-types) and
#: leaves a document without the field out of a query ordered on it.
_MIXED: dict[str, object] = {
    "n0": None,
    "n1": None,
    "n2": None,
    "a0": 1,
    "a1": 1.0,
    "a2": -2,
    "a3": 3.5,
    "a4": 0,
    "a5": 3.5,
    "m0": "missing",
    "m1": "missing",
}


async def _seed_mixed(store: Store) -> None:
    for doc_id, value in _MIXED.items():
        data: dict[str, object] = {"stage": "new"}
        if value != "missing":
            data["created_at"] = value  # a column of leads
            data["rank"] = value  # not a column: read from the JSON
        await store.set("t1", "leads", doc_id, data)  # type: ignore[arg-type]


async def _paged(store: Store, order: list[Order], limit: int) -> list[str]:
    """The ids of t1's leads in ``order``, read ``limit`` at a time, each page after the last."""
    seen: list[str] = []
    cursor = None
    while page := await store.query("t1", "leads", order_by=order, limit=limit, start_after=cursor):
        seen += [d.id for d in page]
        cursor = cursor_of(page[-1], order)
    return seen


@pytest.mark.parametrize("field", ["created_at", "rank"])
@pytest.mark.parametrize("descending", [False, True])
async def test_pages_over_nulls_and_numbers_return_every_row_once_nulls_first(
    store: Store, field: str, descending: bool
) -> None:
    """A cursor whose value is null still pages on (SQL's ``NULL > x`` is never true, and a
    descending page skipped the nulls after the last number)."""
    await _seed_mixed(store)
    order = [Order(field, descending=descending)]
    whole = [d.id for d in await store.query("t1", "leads", order_by=order)]
    nulls, numbers = ["n0", "n1", "n2"], ["a2", "a4", "a0", "a1", "a3", "a5"]
    expected = nulls + numbers if not descending else numbers[::-1] + nulls[::-1]
    assert whole == expected  # null first ascending, last descending; ties by id; no missing
    for limit in (1, 2, 3):
        assert await _paged(store, order, limit) == whole, limit


@pytest.mark.parametrize("directions", [(False, False), (True, True), (False, True), (True, False)])
async def test_pages_over_two_orders_with_nulls_return_every_row_once(
    store: Store, directions: tuple[bool, bool]
) -> None:
    """Two ordered fields, nulls in both: each page starts where the last one ended."""
    values = [None, 1, 2]
    n = 0
    for stage in values:
        for created in values:
            for _ in range(2):
                data: dict[str, object] = {"stage_rank": stage, "created_at": created}
                await store.set("t1", "leads", f"l{n}", data)  # type: ignore[arg-type]
                n += 1
    order = [Order("stage_rank", descending=directions[0]), Order("created_at", descending=directions[1])]
    whole = [d.id for d in await store.query("t1", "leads", order_by=order)]
    assert len(whole) == n
    for limit in (1, 2, 3):
        assert await _paged(store, order, limit) == whole, limit
