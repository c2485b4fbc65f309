"""The API the dashboard's pages read: inbox (handoffs first, waiting time, filters), leads (search,
filters, CSV) and per-playbook analytics, over conversations the test runs through the worker."""

from __future__ import annotations

import csv
import io

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from kernel.clock import ManualClock
from tests.dashboard.conftest import AGENT, AUTH, lead_says, sign_in, start_webchat_lead


async def _three_leads(runtime: Runtime, client: AsyncTestClient[Litestar]) -> dict[str, str]:
    """Ana (hands off: big budget), Ben (small budget: ends), Chloé (not answered yet)."""
    ids = {}
    for name, answer in (("Ana Hot", "5000"), ("Ben Small", "100"), ("Chloé Quiet", None)):
        started = await start_webchat_lead(runtime, client, name)
        ids[name] = started["conversation_id"]
        if answer is not None:
            await lead_says(runtime, started["lead"]["webchat_id"], answer)
    return ids


async def test_inbox_puts_handoffs_first_with_their_waiting_time(
    runtime: Runtime, client: AsyncTestClient[Litestar]
) -> None:
    ids = await _three_leads(runtime, client)
    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    clock.advance(90)
    await sign_in(client, *AGENT)
    inbox = (await client.get("/api/v1/inbox")).json()
    rows = inbox["conversations"]
    assert rows[0]["lead_name"] == "Ana Hot"
    assert rows[0]["status"] == "handoff" and rows[0]["waiting_s"] == 90.0
    ana = (await client.get(f"/api/v1/leads/{rows[0]['lead_id']}")).json()
    assert rows[0]["score"] == ana["score"] >= 60 and rows[0]["id"] == ids["Ana Hot"]
    assert inbox["handoffs"] == 1
    assert {r["lead_name"] for r in rows} == {"Ana Hot", "Ben Small", "Chloé Quiet"}
    assert all(r["waiting_s"] is None for r in rows[1:])

    only_open = (await client.get("/api/v1/inbox", params={"status": "active"})).json()["conversations"]
    assert [r["lead_name"] for r in only_open] == ["Chloé Quiet"]
    hot = (await client.get("/api/v1/inbox", params={"min_score": 50})).json()["conversations"]
    assert [r["lead_name"] for r in hot] == ["Ana Hot"]
    other = await client.get("/api/v1/inbox", params={"playbook": "solar-qualification-en"})
    assert other.json()["conversations"] == []
    assert (await client.get("/api/v1/inbox", params={"min_score": 500})).status_code == 400

    # The conversation view has the transcript, the answer, the score's reason and the decisions.
    conv = (await client.get(f"/api/v1/conversations/{ids['Ana Hot']}")).json()
    assert conv["slots"]["budget"] == 5000
    assert any(r.get("reason") == "Big budget" for r in conv["score_reasons"])
    assert [m["sender"] for m in conv["messages"]][:3] == ["bot", "bot", "contact"]


async def test_leads_search_filters_and_csv(runtime: Runtime, client: AsyncTestClient[Litestar]) -> None:
    await _three_leads(runtime, client)
    everyone = (await client.get("/api/v1/leads", headers=AUTH)).json()
    assert everyone["total"] == 3
    assert {lead["channels"][0] for lead in everyone["leads"]} == {"webchat"}
    found = (await client.get("/api/v1/leads", params={"q": "chlo"}, headers=AUTH)).json()
    assert [lead["name"] for lead in found["leads"]] == ["Chloé Quiet"]
    hot = (await client.get("/api/v1/leads", params={"min_score": 60}, headers=AUTH)).json()
    assert [lead["name"] for lead in hot["leads"]] == ["Ana Hot"]
    stages = {lead["name"]: lead["stage"] for lead in everyone["leads"]}
    assert stages["Ana Hot"] != stages["Chloé Quiet"]
    by_stage = (await client.get("/api/v1/leads", params={"stage": stages["Ana Hot"]}, headers=AUTH)).json()
    assert "Ana Hot" in {lead["name"] for lead in by_stage["leads"]}
    assert {lead["stage"] for lead in by_stage["leads"]} == {stages["Ana Hot"]}
    none = (await client.get("/api/v1/leads", params={"channel": "sms"}, headers=AUTH)).json()
    assert none["total"] == 0

    exported = await client.get("/api/v1/leads.csv", params={"source": "test"}, headers=AUTH)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(r["name"] for r in rows) == ["Ana Hot", "Ben Small", "Chloé Quiet"]
    scores = {lead["name"]: str(lead["score"]) for lead in everyone["leads"]}
    assert {r["name"]: r["score"] for r in rows} == scores


async def test_csv_cells_that_spreadsheets_would_run_are_quoted(
    runtime: Runtime, client: AsyncTestClient[Litestar]
) -> None:
    await start_webchat_lead(runtime, client, '=HYPERLINK("http://evil")')
    exported = await client.get("/api/v1/leads.csv", headers=AUTH)
    row = next(csv.DictReader(io.StringIO(exported.text)))
    assert row["name"].startswith("'=")


async def test_analytics_funnel_counts_the_conversations_run(
    runtime: Runtime, client: AsyncTestClient[Litestar]
) -> None:
    await _three_leads(runtime, client)
    data = (await client.get("/api/v1/analytics/playbooks", headers=AUTH)).json()
    report = next(p for p in data["playbooks"] if p["playbook_id"] == "handoff-demo")
    assert report["conversations"] == 3
    assert [(s["step_id"], s["reached"], s["drop_off"]) for s in report["funnel"]] == [
        ("hello", 3, 0),
        ("budget", 3, 0),
    ]
    assert report["handoffs"] == 1
    assert report["qualified"] == 1 and abs(report["qualification_rate"] - 1 / 3) < 1e-9
    leads = (await client.get("/api/v1/leads", headers=AUTH)).json()["leads"]
    assert abs(report["average_score"] - sum(lead["score"] for lead in leads) / 3) < 1e-9
    assert report["cost_usd"] == 0.0
    solar = next(p for p in data["playbooks"] if p["playbook_id"] != "handoff-demo")
    assert solar["conversations"] == 0 and solar["qualification_rate"] is None
