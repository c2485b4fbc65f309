"""The admin API of the dashboard: CSV import of leads (parse rules, the durable job in batches,
progress, the report, dedupe, starting on a playbook) and the funnel chart."""

from __future__ import annotations

import csv
import io
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.dashboard.imports import BATCH_ROWS, parse_consent, parse_csv
from kernel.clock import ManualClock
from tests.dashboard.conftest import AUTH, MARKETER, sign_in, start_webchat_lead


def make_csv(rows: list[dict[str, str]], *, delimiter: str = ",") -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), delimiter=delimiter)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def good_rows(n: int, *, start: int = 0) -> list[dict[str, str]]:
    return [
        {
            "name": f"Lead {i}",
            "email": f"lead{i}@example.com",
            "phone": f"+3361234{i:04d}",
            "consent": "yes" if i % 2 else "oui",
        }
        for i in range(start, start + n)
    ]


async def upload(
    client: AsyncTestClient[Litestar], body: bytes, *, headers: dict[str, str] | None = None, **fields: str
) -> Any:
    return await client.post(
        "/api/v1/leads/imports",
        files={"file": ("leads.csv", body, "text/csv")},
        data=fields,
        headers=AUTH if headers is None else headers,
    )


def test_parse_rules() -> None:
    rows = [
        {"name": "Ok", "email": "ok@example.com", "phone": "06 12 34 56 78", "consent": "Oui"},
        {"name": "Bad phone", "email": "bp@example.com", "phone": "12", "consent": "yes"},
        {"name": "Bad email", "email": "not-an-email", "phone": "", "consent": "yes"},
        {"name": "No address", "email": "", "phone": "", "consent": "yes"},
        {"name": "No consent", "email": "nc@example.com", "phone": "", "consent": ""},
        {"name": "Odd consent", "email": "oc@example.com", "phone": "", "consent": "maybe"},
        {"name": "Dup email", "email": "OK@example.com", "phone": "", "consent": "no"},
        {"name": "Dup phone", "email": "dp@example.com", "phone": "+33612345678", "consent": "no"},
    ]
    parsed = parse_csv(make_csv(rows, delimiter=";"), region="FR")
    assert parsed.total == 8
    assert [r["name"] for r in parsed.rows] == ["Ok"]
    assert parsed.rows[0]["phone"] == "+33612345678" and parsed.rows[0]["consent"] is True
    assert [(r.line, r.field, r.code) for r in parsed.refused] == [
        (3, "phone", "bad_phone"),
        (4, "email", "bad_email"),
        (5, "row", "no_address"),
        (6, "consent", "bad_consent"),
        (7, "consent", "bad_consent"),
        (8, "email", "duplicate_in_file"),
        (9, "phone", "duplicate_in_file"),
    ]
    assert "line 2" in parsed.refused[-1].reason
    assert parse_consent(" TRUE ") is True and parse_consent("non") is False and parse_consent("?") is None


async def test_a_file_without_consent_column_is_refused_whole(client: AsyncTestClient[Litestar]) -> None:
    response = await upload(client, b"name,email\nA,a@example.com\n")
    assert response.status_code == 400
    assert "consent" in response.json()["detail"]
    response = await upload(client, b"\xff\xfe\x00garbage" * 3)
    assert response.status_code == 400
    unknown = await upload(client, make_csv(good_rows(1)), playbook_id="no-such-playbook")
    assert unknown.status_code == 400


async def test_an_import_runs_in_batches_with_progress_and_a_report(
    runtime: Runtime, client: AsyncTestClient[Litestar]
) -> None:
    existing = await client.post(
        "/api/v1/leads",
        json={"name": "Known", "email": "lead3@example.com", "channel": "webchat", "source": "test"},
        headers=AUTH,
    )
    assert existing.status_code == 201, existing.text
    await runtime.worker.drain()
    rows = good_rows(2 * BATCH_ROWS + 50)
    rows[10]["phone"] = "not a phone"
    rows[20]["consent"] = ""
    rows[30]["email"] = rows[29]["email"]
    rows[150]["phone"] = rows[40]["phone"]  # a duplicate across batches (line 152 repeats line 42)
    response = await upload(client, make_csv(rows))
    assert response.status_code == 202, response.text
    imp = response.json()
    assert imp["status"] == "queued" and imp["total_rows"] == 250 and imp["processed"] == 0
    assert imp["batches"] == 3 and imp["progress"] == 0.0

    seen: list[float] = []
    for _ in range(10):
        await runtime.worker.run_once()
        for task in list(runtime.worker._running):
            await task  # one job run: one batch
        state = (await client.get(f"/api/v1/leads/imports/{imp['id']}", headers=AUTH)).json()
        seen.append(state["progress"])
        if state["status"] == "done":
            break
    assert seen == sorted(seen), seen
    assert len({p for p in seen if 0 < p < 1}) >= 2, seen  # it moved in steps, batch by batch
    assert state["status"] == "done" and state["progress"] == 1.0
    assert state["imported"] == 245 and state["refused"] == 5

    report = (await client.get(f"/api/v1/leads/imports/{imp['id']}/report", headers=AUTH)).json()
    assert [(r["line"], r["code"]) for r in report["refused"]] == [
        (5, "duplicate_existing"),
        (12, "bad_phone"),
        (22, "bad_consent"),
        (32, "duplicate_in_file"),
        (152, "duplicate_in_file"),
    ]
    assert report["refused"][-1]["reason"] == "same phone as line 42"
    leads = (await client.get("/api/v1/leads", params={"q": "lead7@example.com"}, headers=AUTH)).json()
    assert leads["total"] == 1
    lead = leads["leads"][0]
    assert lead["phone"] == "+33612340007" and lead["source"] == "csv-import"
    assert set(lead["channels"]) >= {"email"}

    assert isinstance(runtime.clock, ManualClock)
    runtime.clock.advance(1)
    # The same file again: every row is now a duplicate of an existing lead; nothing is written twice.
    again = await upload(client, make_csv(rows))
    await runtime.worker.drain()
    state = (await client.get(f"/api/v1/leads/imports/{again.json()['id']}", headers=AUTH)).json()
    assert state["imported"] == 0 and state["refused"] == 250
    listed = (await client.get("/api/v1/leads/imports", headers=AUTH)).json()["imports"]
    assert [i["id"] for i in listed] == [again.json()["id"], imp["id"]]


async def test_imported_leads_start_on_a_playbook_through_the_policy(
    runtime: Runtime, client: AsyncTestClient[Litestar]
) -> None:
    rows = [
        {"name": "Yes", "email": "yes@example.com", "consent": "yes"},
        {"name": "No", "email": "no@example.com", "consent": "no"},
    ]
    csrf = await sign_in(client, *MARKETER)
    response = await upload(
        client, make_csv(rows), headers={"X-CSRF-Token": csrf}, playbook_id="handoff-demo", channel="email"
    )
    assert response.status_code == 202, response.text
    assert response.json()["created_by"] == MARKETER[0]
    await runtime.worker.drain()
    imp_id = response.json()["id"]
    state = (await client.get(f"/api/v1/leads/imports/{imp_id}")).json()
    assert state["status"] == "done" and state["imported"] == 2
    leads = (await client.get("/api/v1/leads", params={"q": "@example.com"})).json()["leads"]
    by_email = {lead["email"]: lead["id"] for lead in leads}
    convs = (await client.get("/api/v1/conversations", headers=AUTH)).json()["conversations"]
    by_lead = {c["lead_id"]: c for c in convs}
    # Consent given: started on the playbook by email. Consent refused: imported, never contacted,
    # and the report says why.
    assert by_lead[by_email["yes@example.com"]]["playbook_id"] == "handoff-demo"
    assert by_lead[by_email["yes@example.com"]]["channel"] == "email"
    report = (await client.get(f"/api/v1/leads/imports/{imp_id}/report")).json()["refused"]
    assert state["started"] == 1 and state["not_started"] == 1
    assert [(r["line"], r["code"]) for r in report] == [(3, "not_started")]
    assert "consent" in report[0]["reason"]
    assert by_email["no@example.com"] not in by_lead


async def test_an_agent_cannot_import_and_a_stranger_cannot_read(
    runtime: Runtime, client: AsyncTestClient[Litestar]
) -> None:
    from tests.dashboard.conftest import AGENT

    csrf = await sign_in(client, *AGENT)
    response = await upload(client, make_csv(good_rows(1)), headers={"X-CSRF-Token": csrf})
    assert response.status_code == 403
    no_csrf = await upload(client, make_csv(good_rows(1)), headers={})
    assert no_csrf.status_code == 403
    client.cookies.clear()
    assert (await client.get("/api/v1/leads/imports")).status_code == 401


async def test_the_funnel_chart_is_an_svg_with_the_numbers(
    runtime: Runtime, client: AsyncTestClient[Litestar]
) -> None:
    await start_webchat_lead(runtime, client, "Ana")
    await start_webchat_lead(runtime, client, "Ben")
    response = await client.get("/api/v1/analytics/playbooks/handoff-demo/funnel.svg?lang=fr", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    svg = response.text
    assert svg.lstrip().startswith("<svg") and "Entonnoir" in svg and "Atteinte" in svg
    assert "<script" not in svg
    missing = await client.get("/api/v1/analytics/playbooks/nope/funnel.svg", headers=AUTH)
    assert missing.status_code == 404
