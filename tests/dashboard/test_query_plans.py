"""The dashboard's list queries seek an index on SQLite (never a sort of the whole collection):
the inbox, its handoffs, the leads list, analytics and its freshness token, with 10,000 leads and
100,000 messages in mind (see :mod:`app.dashboard.speed`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.dashboard.speed import RECENT
from app.store import Filter, Order, where
from app.store.sqlite import SQLiteStore, _compile

QUERIES: list[tuple[str, str, list[Filter], list[Order], str]] = [
    ("inbox", "conversations", [RECENT], [Order("created_at", descending=True)], "ix_t_created_at"),
    (
        "inbox handoffs",
        "conversations",
        [RECENT, where("status", "==", "handoff")],
        [Order("created_at")],
        "ix_t_status_created_at",
    ),
    (
        "inbox by playbook",
        "conversations",
        [where("playbook_id", "==", "solar"), RECENT],
        [Order("created_at", descending=True)],
        "ix_t_playbook_id_created_at",
    ),
    ("leads", "leads", [RECENT], [Order("created_at", descending=True)], "ix_t_created_at"),
    (
        "analytics freshness",
        "conversations",
        [where("playbook_id", "==", "solar"), where("updated_at", ">", 0)],
        [Order("updated_at", descending=True)],
        "ix_t_playbook_id_updated_at",
    ),
    (
        "lead page",
        "conversations",
        [where("lead_id", "==", "ld_1")],
        [Order("created_at", descending=True)],
        "ix_t_lead_id_created_at",
    ),
]


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "plans.db")


@pytest.mark.parametrize(
    ("name", "collection", "filters", "order", "index"), QUERIES, ids=[q[0] for q in QUERIES]
)
def test_dashboard_queries_seek_their_index(
    store: SQLiteStore, name: str, collection: str, filters: list[Filter], order: list[Order], index: str
) -> None:
    tail, params = _compile(filters, order, 50, collection=collection)
    sql = "SELECT tenant, coll, id, data FROM docs WHERE tenant=? AND coll=?" + tail
    rows = store._reader.execute("EXPLAIN QUERY PLAN " + sql, ["demo", collection, *params]).fetchall()
    plan = " | ".join(str(r[3]) for r in rows)
    assert f"USING INDEX {index}" in plan, plan
    # Sorting only the index's ties (tenant, id), not the whole collection.
    assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan
