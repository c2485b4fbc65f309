"""The lead list and the score-filtered inbox over many records: the lead list counts every match
and pages by cursor (``next``), the inbox reads further back page by page; results equal what a
plain read of the whole collection says."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.store import Transaction
from app.store.collections import CONVERSATIONS, LEADS
from tests.dashboard.conftest import AUTH


async def _seed(runtime: Runtime, count: int) -> None:
    async def fn(tx: Transaction) -> None:
        for i in range(count):
            at = 1_000.0 + i // 2  # two per instant: the cursor must break ties by id
            lead_id, conv_id = f"ld_{i:03d}", f"cv_{i:03d}"
            lead: dict[str, Any] = {
                "id": lead_id,
                "name": f"Lead {i}",
                "phone": f"+3361000{i:04d}",
                "score": i % 10 * 10,
            }
            tx.set(LEADS, lead_id, {**lead, "stage": "new" if i % 3 else "won", "created_at": at})
            conv = {"id": conv_id, "lead_id": lead_id, "channel": "whatsapp", "status": "active"}
            tx.set(CONVERSATIONS, conv_id, {**conv, "created_at": at, "updated_at": at})

    await runtime.store.run_transaction("demo", fn)


async def test_lead_pages_by_cursor_cover_every_lead_once(
    runtime: Runtime, client: AsyncTestClient[Litestar]
) -> None:
    await _seed(runtime, 25)
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 4, "stage": "new"}
    while True:
        page = (await client.get("/api/v1/leads", params=params, headers=AUTH)).json()
        assert page["total"] == 16 and page["total_exact"]  # every match, not only this page's
        seen += [lead["id"] for lead in page["leads"]]
        if page["next"] is None:
            break
        params["after"] = page["next"]
    expected = [f"ld_{i:03d}" for i in range(24, -1, -1) if i % 3]
    # newest first; ties (same created_at) by id, newest id first
    assert seen == sorted(expected, key=lambda i: (-(1_000 + int(i[3:]) // 2), -int(i[3:])))
    assert len(seen) == len(set(seen)) == 16
    bad = await client.get("/api/v1/leads", params={"after": "yesterday"}, headers=AUTH)
    assert bad.status_code == 400


async def test_a_search_total_past_the_scan_is_a_lower_bound(
    runtime: Runtime, client: AsyncTestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A text search is matched over the newest SCAN_LIMIT leads: with older ones unread, the
    total says it is a lower bound; within the scan it is exact."""
    from app.dashboard import api_routes

    await _seed(runtime, 25)
    monkeypatch.setattr(api_routes, "SCAN_LIMIT", 10)
    page = (await client.get("/api/v1/leads", params={"q": "lead"}, headers=AUTH)).json()
    assert (page["total"], page["total_exact"]) == (10, False)
    monkeypatch.setattr(api_routes, "SCAN_LIMIT", 100)
    page = (await client.get("/api/v1/leads", params={"q": "lead"}, headers=AUTH)).json()
    assert (page["total"], page["total_exact"]) == (25, True)


async def test_inbox_min_score_reads_further_back_by_cursor(
    runtime: Runtime, client: AsyncTestClient[Litestar]
) -> None:
    await _seed(runtime, 60)
    # the first read is the newest 25 conversations (3 with a lead scoring 90); then the next page
    body = (await client.get("/api/v1/inbox", params={"min_score": 90, "limit": 5}, headers=AUTH)).json()
    ids = [row["id"] for row in body["conversations"]]
    assert ids == ["cv_059", "cv_049", "cv_039", "cv_029", "cv_019"]
    assert all(row["score"] >= 90 for row in body["conversations"])


async def test_analytics_are_warm_after_start(runtime: Runtime) -> None:
    """The app starts a background warm-up: once it is done, the first analytics request reads no
    conversation's messages (every conversation's steps are cached) and matches a fresh compute."""
    from app.dashboard.plugin import DashboardFeature
    from app.dashboard.speed import reports, steps_reached
    from app.main import create_app

    await _seed(runtime, 30)
    for i in range(30):  # on the tenant's playbook, so that analytics reads them
        doc = await runtime.store.get("demo", CONVERSATIONS, f"cv_{i:03d}")
        assert doc is not None
        await runtime.store.set("demo", CONVERSATIONS, doc["id"], {**doc, "playbook_id": "handoff-demo"})
    feature = next(f for f in runtime.features if isinstance(f, DashboardFeature))
    before = steps_reached.misses
    async with AsyncTestClient(app=create_app(runtime=runtime, start_worker=False)) as client:
        for _ in range(500):
            if feature.warmup is not None and feature.warmup.done():
                break
            await asyncio.sleep(0.01)
        assert feature.warmup is not None and feature.warmup.result() >= 1
        warmed = steps_reached.misses
        assert warmed - before == 30  # the warm-up read every conversation once
        body = (await client.get("/api/v1/analytics/playbooks", headers=AUTH)).json()
        assert steps_reached.misses == warmed  # served from the warm caches
        report = next(p for p in body["playbooks"] if p["playbook_id"] == "handoff-demo")
        assert report["conversations"] == 30
        reports._data.clear()
        steps_reached._data.clear()
        fresh = (await client.get("/api/v1/analytics/playbooks", headers=AUTH)).json()
        assert fresh == body
