"""The storage contract: one suite, every backend (see ``tests/store/conftest.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from app.store import SYSTEM_TENANT, ConflictError, DocumentExistsError, Order, Store, Transaction, where

pytestmark = pytest.mark.asyncio


async def test_set_get_roundtrip_keeps_json_types(store: Store) -> None:
    data = {"s": "é😀", "i": 3, "f": 1.5, "b": True, "n": None, "l": [1, "a"], "d": {"x": {"y": 2}}}
    await store.set("t1", "things", "a", data)
    assert await store.get("t1", "things", "a") == data
    assert await store.get("t1", "things", "missing") is None


async def test_tenants_are_isolated(store: Store) -> None:
    await store.set("t1", "leads", "same-id", {"name": "one"})
    await store.set("t2", "leads", "same-id", {"name": "two"})
    assert (await store.get("t1", "leads", "same-id")) == {"name": "one"}
    assert [d.data["name"] for d in await store.query("t2", "leads")] == ["two"]
    assert {"t1", "t2"} <= set(await store.list_tenants())


async def test_merge_changes_only_given_fields(store: Store) -> None:
    await store.set("t1", "leads", "l1", {"name": "Ana", "score": 1})
    await store.set("t1", "leads", "l1", {"score": 5}, merge=True)
    assert await store.get("t1", "leads", "l1") == {"name": "Ana", "score": 5}
    await store.set("t1", "leads", "l2", {"score": 7}, merge=True)
    assert await store.get("t1", "leads", "l2") == {"score": 7}


async def test_delete(store: Store) -> None:
    await store.set("t1", "leads", "l1", {"name": "Ana"})
    await store.delete("t1", "leads", "l1")
    await store.delete("t1", "leads", "never-existed")
    assert await store.get("t1", "leads", "l1") is None


async def test_query_filters_orders_and_limits(store: Store) -> None:
    for i in range(6):
        await store.set(
            "t1",
            "jobs",
            f"j{i}",
            {"status": "pending" if i % 2 == 0 else "done", "due_at": 100.0 - i, "n": i},
        )
    pending = await store.query(
        "t1", "jobs", filters=[where("status", "==", "pending")], order_by=[Order("due_at")]
    )
    assert [d.id for d in pending] == ["j4", "j2", "j0"]
    due = await store.query(
        "t1",
        "jobs",
        filters=[where("due_at", "<=", 97.0)],
        order_by=[Order("due_at", descending=True)],
        limit=2,
    )
    assert [d.id for d in due] == ["j3", "j4"]
    in_q = await store.query("t1", "jobs", filters=[where("n", "in", [1, 5])], order_by=[Order("n")])
    assert [d.data["n"] for d in in_q] == [1, 5]
    ne = await store.query("t1", "jobs", filters=[where("status", "!=", "pending")])
    assert sorted(d.id for d in ne) == ["j1", "j3", "j5"]


async def test_query_on_nested_field_bool_null_and_array(store: Store) -> None:
    await store.set("t1", "leads", "a", {"consent": {"sms": True}, "tags": ["vip", "fr"], "email": None})
    await store.set("t1", "leads", "b", {"consent": {"sms": False}, "tags": ["en"], "email": "b@x.io"})
    assert [d.id for d in await store.query("t1", "leads", filters=[where("consent.sms", "==", True)])] == [
        "a"
    ]
    assert [
        d.id for d in await store.query("t1", "leads", filters=[where("tags", "array_contains", "en")])
    ] == ["b"]
    assert [d.id for d in await store.query("t1", "leads", filters=[where("email", "==", None)])] == ["a"]


async def test_order_by_leaves_out_documents_without_the_field(store: Store) -> None:
    await store.set("t1", "msgs", "a", {"seq": 2})
    await store.set("t1", "msgs", "b", {"other": 1})
    await store.set("t1", "msgs", "c", {"seq": 1})
    assert [d.id for d in await store.query("t1", "msgs", order_by=[Order("seq")])] == ["c", "a"]


async def test_subcollections_are_separate(store: Store) -> None:
    await store.set("t1", "conversations/c1/messages", "m1", {"text": "hi"})
    await store.set("t1", "conversations/c2/messages", "m1", {"text": "yo"})
    got = await store.query("t1", "conversations/c1/messages")
    assert [(d.id, d.data["text"]) for d in got] == [("m1", "hi")]


async def test_query_group_spans_tenants(store: Store) -> None:
    await store.set("t1", "jobs", "a", {"status": "pending", "due_at": 2.0})
    await store.set("t2", "jobs", "b", {"status": "pending", "due_at": 1.0})
    await store.set("t2", "jobs", "c", {"status": "done", "due_at": 0.5})
    got = await store.query_group(
        "jobs", filters=[where("status", "==", "pending")], order_by=[Order("due_at")]
    )
    assert [(d.tenant_id, d.id) for d in got] == [("t2", "b"), ("t1", "a")]


async def test_transaction_commits_all_or_nothing(store: Store) -> None:
    await store.set("t1", "acc", "x", {"v": 1})

    async def fails(tx: Transaction) -> None:
        doc = await tx.get("acc", "x")
        assert doc is not None
        tx.set("acc", "x", {"v": doc["v"] + 1})
        tx.set("acc", "y", {"v": 1})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await store.run_transaction("t1", fails)
    assert await store.get("t1", "acc", "x") == {"v": 1}
    assert await store.get("t1", "acc", "y") is None

    async def works(tx: Transaction) -> int:
        doc = await tx.get("acc", "x")
        assert doc is not None
        tx.set("acc", "x", {"v": doc["v"] + 1})
        tx.delete("acc", "gone")
        return int(doc["v"])

    assert await store.run_transaction("t1", works) == 1
    assert await store.get("t1", "acc", "x") == {"v": 2}


async def test_create_refuses_existing_document(store: Store) -> None:
    async def create(tx: Transaction) -> None:
        tx.create("inbox", "wa:1", {"text": "hi"})

    await store.run_transaction("t1", create)
    with pytest.raises(DocumentExistsError):
        await store.run_transaction("t1", create)
    assert await store.get("t1", "inbox", "wa:1") == {"text": "hi"}


async def test_transaction_query_reads(store: Store) -> None:
    await store.set("t1", "jobs", "a", {"status": "pending", "due_at": 1.0})

    async def lease(tx: Transaction) -> list[str]:
        docs = await tx.query("jobs", filters=[where("status", "==", "pending")])
        for d in docs:
            tx.set("jobs", d.id, {"status": "leased"}, merge=True)
        return [d.id for d in docs]

    assert await store.run_transaction("t1", lease) == ["a"]
    assert await store.run_transaction("t1", lease) == []


async def test_concurrent_increments_lose_no_update(store: Store) -> None:
    await store.set("t1", "counters", "c", {"n": 0})

    async def incr(tx: Transaction) -> None:
        doc = await tx.get("counters", "c")
        assert doc is not None
        await asyncio.sleep(0)
        tx.set("counters", "c", {"n": doc["n"] + 1})

    await asyncio.gather(*(store.run_transaction("t1", incr, max_attempts=50) for _ in range(20)))
    assert await store.get("t1", "counters", "c") == {"n": 20}


async def test_conflict_error_is_a_store_error(store: Store) -> None:
    from app.store import StoreError

    assert issubclass(ConflictError, StoreError)


# --- Semantics both backends must share (added with the Firestore backend) ---------------------------


async def test_ints_stay_ints_and_floats_stay_floats(store: Store) -> None:
    await store.set("t1", "things", "a", {"i": 3, "f": 2.0, "nested": {"i": 4}, "l": [5, 6.0]})
    got = await store.get("t1", "things", "a")
    assert got is not None
    assert type(got["i"]) is int and type(got["nested"]["i"]) is int and type(got["l"][0]) is int
    assert type(got["f"]) is float and type(got["l"][1]) is float


async def test_merge_replaces_a_nested_map_as_a_whole(store: Store) -> None:
    await store.set("t1", "leads", "l1", {"consent": {"sms": True, "email": True}, "name": "Ana"})
    await store.set("t1", "leads", "l1", {"consent": {"sms": False}}, merge=True)
    assert await store.get("t1", "leads", "l1") == {"consent": {"sms": False}, "name": "Ana"}

    async def merge_in_tx(tx: Transaction) -> None:
        tx.set("leads", "l1", {"consent": {"email": False}, "score": 3}, merge=True)

    await store.run_transaction("t1", merge_in_tx)
    assert await store.get("t1", "leads", "l1") == {"consent": {"email": False}, "name": "Ana", "score": 3}


async def test_null_filter_and_not_equal_leave_out_missing_fields(store: Store) -> None:
    await store.set("t1", "leads", "null", {"email": None, "k": 1})
    await store.set("t1", "leads", "missing", {"k": 2})
    await store.set("t1", "leads", "set", {"email": "a@x.io", "k": 3})
    assert [d.id for d in await store.query("t1", "leads", filters=[where("email", "==", None)])] == ["null"]
    assert [d.id for d in await store.query("t1", "leads", filters=[where("email", "!=", "b@x.io")])] == [
        "set"
    ]


async def test_in_with_no_values_matches_nothing(store: Store) -> None:
    await store.set("t1", "jobs", "a", {"status": "pending"})
    assert await store.query("t1", "jobs", filters=[where("status", "in", [])]) == []
    assert await store.query_group("jobs", filters=[where("status", "in", [])]) == []


async def test_query_group_reads_subcollections_and_skips_the_system_tenant(store: Store) -> None:
    await store.set(SYSTEM_TENANT, "jobs", "sys", {"due_at": 0.0})
    await store.set("t1", "conversations/c1/jobs", "nested", {"due_at": 1.0})
    await store.set("t2", "jobs", "top", {"due_at": 2.0})
    await store.set("t2", "jobs_archive", "other", {"due_at": 0.5})
    got = await store.query_group("jobs", order_by=[Order("due_at")], limit=2)
    assert [(d.tenant_id, d.collection, d.id) for d in got] == [
        ("t1", "conversations/c1/jobs", "nested"),
        ("t2", "jobs", "top"),
    ]
    assert [d.id for d in await store.query_group("jobs", order_by=[Order("due_at")], limit=1)] == ["nested"]


async def test_list_tenants_skips_the_system_tenant(store: Store) -> None:
    await store.set(SYSTEM_TENANT, "api_keys", "k", {"tenant_id": "t9"})
    assert await store.list_tenants() == []

    async def write(tx: Transaction) -> None:
        tx.set("leads", "l1", {"name": "Ana"})

    await store.run_transaction("t9", write)
    await store.set("t3", "conversations/c1/messages", "m1", {"text": "hi"})
    assert await store.list_tenants() == ["t3", "t9"]


async def test_list_collections_names_every_path_holding_documents(store: Store) -> None:
    assert await store.list_collections("t1") == []
    await store.set("t1", "leads", "l1", {"name": "Ana"})
    await store.set("t1", "conversations", "c1", {"lead_id": "l1"})
    await store.set("t1", "conversations/c1/messages", "m1", {"seq": 1})
    await store.set("t1", "conversations/orphan/messages", "m1", {"seq": 1})  # parent never written
    await store.set("t2", "other", "x", {})
    await store.set(SYSTEM_TENANT, "api_keys", "h", {"tenant_id": "t1"})
    await store.set("t1", "emptied", "gone", {})
    await store.delete("t1", "emptied", "gone")
    assert await store.list_collections("t1") == [
        "conversations",
        "conversations/c1/messages",
        "conversations/orphan/messages",
        "leads",
    ]
    assert await store.list_collections(SYSTEM_TENANT) == ["api_keys"]


async def test_an_error_in_the_function_propagates_unchanged(store: Store) -> None:
    class BoomError(Exception):
        pass

    raised = BoomError("boom")

    async def fails(tx: Transaction) -> None:
        await tx.get("acc", "x")
        tx.create("acc", "x", {"v": 1})
        raise raised

    with pytest.raises(BoomError) as info:
        await store.run_transaction("t1", fails)
    assert info.value is raised
    assert await store.get("t1", "acc", "x") is None


async def test_a_failed_create_discards_the_other_writes(store: Store) -> None:
    await store.set("t1", "inbox", "wa:1", {"text": "first"})

    async def store_twice(tx: Transaction) -> None:
        tx.set("conversations", "c1", {"last": "second"})
        tx.create("inbox", "wa:1", {"text": "second"})

    with pytest.raises(DocumentExistsError):
        await store.run_transaction("t1", store_twice)
    assert await store.get("t1", "conversations", "c1") is None
    assert await store.get("t1", "inbox", "wa:1") == {"text": "first"}


async def test_concurrent_leases_take_each_job_once(store: Store) -> None:
    for i in range(5):
        await store.set("t1", "jobs", f"j{i}", {"status": "pending", "due_at": float(i)})

    async def lease_one(tx: Transaction) -> str | None:
        docs = await tx.query(
            "jobs", filters=[where("status", "==", "pending")], order_by=[Order("due_at")], limit=1
        )
        if not docs:
            return None
        tx.set("jobs", docs[0].id, {"status": "leased"}, merge=True)
        return docs[0].id

    leased = await asyncio.gather(
        *(store.run_transaction("t1", lease_one, max_attempts=50) for _ in range(7))
    )
    taken = [job for job in leased if job is not None]
    assert sorted(taken) == [f"j{i}" for i in range(5)]
    assert {d.data["status"] for d in await store.query("t1", "jobs")} == {"leased"}


async def test_two_processes_lose_no_update(open_store: Callable[[], Store]) -> None:
    first, second = open_store(), open_store()
    await first.set("t1", "counters", "c", {"n": 0})

    async def incr(tx: Transaction) -> None:
        doc = await tx.get("counters", "c")
        assert doc is not None
        tx.set("counters", "c", {"n": doc["n"] + 1})

    await asyncio.gather(
        *(
            backend.run_transaction("t1", incr, max_attempts=50)
            for backend in (first, second)
            for _ in range(4)
        )
    )
    assert await second.get("t1", "counters", "c") == {"n": 8}
