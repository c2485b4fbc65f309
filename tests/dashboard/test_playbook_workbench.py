"""The playbook workbench API behind the editor: live validation with the loader's lines, a stored
version's source, the schema, and the sandboxed simulator (French, a wait fired by advancing the
simulated clock, slots and score as it goes; nothing stored, nothing sent)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.store import collections as col
from playbooks import LIBRARY_DIR
from tests.dashboard.conftest import AGENT, AUTH, MARKETER, T0, sign_in

DRAFT_FR = """\
id: visite-fr
name: Visite – qualification
version: 1
language: fr
triggers: [inbound_unknown_lead, lead_created]
qualification_threshold: 40
steps:
  - id: bonjour
    type: message
    text: {fr: "Bonjour ! Deux questions rapides.", en: "Hello! Two quick questions."}
  - id: budget
    type: ask
    slot: budget
    kind: number
    question: {fr: "Quel est votre budget, en euros ?", en: "What is your budget, in euros?"}
  - id: score-budget
    type: score
    if: (slots.budget or 0) >= 1000
    points: 50
    reason: Budget confortable
  - id: attente
    type: wait
    duration: 1h
  - id: relance
    type: message
    text: {fr: "Petit rappel : un conseiller vous écrit bientôt.", en: "A reminder: an adviser writes soon."}
  - id: fin
    type: end
    outcome: qualified
    message: {fr: "Merci, à bientôt !", en: "Thanks, see you soon!"}
"""


async def _sim(
    client: AsyncTestClient[Litestar], source: str, session: Any, action: dict[str, Any], **extra: Any
) -> Any:
    body = {"source": source, "session": session, "action": action, **extra}
    return await client.post("/api/v1/playbooks/simulate", json=body, headers=AUTH)


async def test_validate_returns_the_loaders_lines(client: AsyncTestClient[Litestar]) -> None:
    ok = await client.post("/api/v1/playbooks/validate", json={"source": DRAFT_FR}, headers=AUTH)
    assert ok.status_code == 200
    assert ok.json() == {
        "valid": True,
        "issues": [],
        "playbook": {"id": "visite-fr", "version": 1, "name": "Visite – qualification", "language": "fr"},
    }
    broken = DRAFT_FR.replace("    kind: number\n", "    kind: nombre\n")
    bad = (await client.post("/api/v1/playbooks/validate", json={"source": broken}, headers=AUTH)).json()
    assert bad["valid"] is False and bad["playbook"] is None
    line = broken.splitlines().index("    kind: nombre") + 1
    assert [i["line"] for i in bad["issues"]] == [line], bad
    assert "kind" in bad["issues"][0]["message"]
    # A YAML syntax error, a missing `then` target: each at its own line.
    syntax = (
        await client.post("/api/v1/playbooks/validate", json={"source": "id: [x\n"}, headers=AUTH)
    ).json()
    assert syntax["valid"] is False and syntax["issues"][0]["line"] >= 1
    dangling = DRAFT_FR.replace("outcome: qualified", "outcome: qualified\n    next: nowhere")
    issues = (await client.post("/api/v1/playbooks/validate", json={"source": dangling}, headers=AUTH)).json()
    assert any("nowhere" in i["message"] for i in issues["issues"])
    # The French editor asks for its page's language: the same issue, same line, in French; a
    # language without words for it keeps the English.
    fr = (
        await client.post(
            "/api/v1/playbooks/validate", json={"source": broken, "language": "fr"}, headers=AUTH
        )
    ).json()
    assert [i["line"] for i in fr["issues"]] == [line]
    assert fr["issues"][0]["message"].startswith("steps[1].kind: doit valoir 'text', ")
    assert "ou 'choice' (reçu 'nombre')" in fr["issues"][0]["message"]
    other = (
        await client.post(
            "/api/v1/playbooks/validate", json={"source": broken, "language": "xx"}, headers=AUTH
        )
    ).json()
    assert other["issues"] == bad["issues"]
    sim = await _sim(client, broken, None, {"kind": "start"}, language="fr")
    assert sim.status_code == 400 and sim.json()["issues"] == fr["issues"]
    # Too large, or not a JSON object: a clear 400, never a crash.
    huge = await client.post("/api/v1/playbooks/validate", json={"source": "x" * 200_001}, headers=AUTH)
    assert huge.status_code == 400
    assert (await client.post("/api/v1/playbooks/validate", json=["x"], headers=AUTH)).status_code == 400


async def test_schema_and_a_versions_source(client: AsyncTestClient[Litestar]) -> None:
    schema = (await client.get("/api/v1/playbooks/schema", headers=AUTH)).json()
    assert "steps" in schema["properties"] and "AskStep" in schema["$defs"]
    stored = (await client.get("/api/v1/playbooks/handoff-demo/versions/1", headers=AUTH)).json()
    assert stored["status"] == "active" and stored["source"].startswith("id: handoff-demo")
    assert (await client.get("/api/v1/playbooks/handoff-demo/versions/9", headers=AUTH)).status_code == 404
    assert (await client.get("/api/v1/playbooks/schema")).status_code == 401


async def test_a_french_simulation_with_a_wait_fired_by_the_clock(
    runtime: Runtime, client: AsyncTestClient[Litestar]
) -> None:
    before = {
        name: len(await runtime.store.query("demo", name))
        for name in (col.LEADS, col.CONVERSATIONS, col.INBOX, col.OUTBOX, col.JOBS)
    }
    started = await _sim(client, DRAFT_FR, None, {"kind": "start"}, session_language="fr")
    assert started.status_code == 200, started.text
    r = started.json()
    assert [e["text"] for e in r["events"] if e["kind"] == "bot"] == [
        "Bonjour ! Deux questions rapides.",
        "Quel est votre budget, en euros ?",
    ]
    assert r["session"]["now"] == T0 and r["current_step"] == "budget" and r["score"] == 0

    r = (await _sim(client, DRAFT_FR, r["session"], {"kind": "say", "text": "environ 2 500 €"})).json()
    kinds = [e["kind"] for e in r["events"]]
    assert kinds[:1] == ["lead"] and "slot" in kinds and "score" in kinds and "timer" in kinds
    # The playbook's score step, and the engagement rule the conversation worker applies too.
    scores = [(e["points"], e["reason"]) for e in r["events"] if e["kind"] == "score"]
    assert scores == [(5, "Engagement: replied within 5 minutes"), (50, "Budget confortable")], scores
    assert r["slots"] == {"budget": 2500} and r["score"] == 55 and r["qualified"] is True
    assert r["status"] == "waiting" and r["timer_due_at"] == T0 + 3600

    # Half an hour: nothing fires. Another hour: the wait's timer fires at its due time.
    r = (await _sim(client, DRAFT_FR, r["session"], {"kind": "advance", "seconds": 1800})).json()
    assert [e["kind"] for e in r["events"]] == ["clock"] and r["status"] == "waiting"
    r = (await _sim(client, DRAFT_FR, r["session"], {"kind": "advance", "seconds": 3600})).json()
    fired = r["events"][0]
    assert fired["kind"] == "timer_fired" and fired["at"] == T0 + 3600
    assert [e["text"] for e in r["events"] if e["kind"] == "bot"] == [
        "Petit rappel : un conseiller vous écrit bientôt.",
        "Merci, à bientôt !",
    ]
    assert r["status"] == "ended" and r["session"]["now"] == T0 + 5400
    assert any(e["kind"] == "ended" and e["outcome"] == "qualified" for e in r["events"])

    # The sandbox wrote nothing to the tenant's store and sent nothing.
    after = {name: len(await runtime.store.query("demo", name)) for name in before}
    assert after == before


async def test_an_english_simulation_and_a_session_that_no_longer_fits(
    client: AsyncTestClient[Litestar],
) -> None:
    r = (await _sim(client, DRAFT_FR, None, {"kind": "start"}, session_language="en")).json()
    assert r["events"][1]["text"] == "What is your budget, in euros?"
    # Ten minutes before answering: too slow for the engagement points.
    r = (await _sim(client, DRAFT_FR, r["session"], {"kind": "advance", "seconds": 600})).json()
    r = (await _sim(client, DRAFT_FR, r["session"], {"kind": "say", "text": "300"})).json()
    assert r["slots"] == {"budget": 300} and r["score"] == 0 and r["qualified"] is False
    assert r["timer_due_at"] == T0 + 600 + 3600

    renamed = DRAFT_FR.replace("id: attente", "id: pause")
    stale = await _sim(client, renamed, r["session"], {"kind": "advance", "seconds": 3600})
    assert stale.status_code == 400 and "attente" in stale.json()["detail"]
    other = await _sim(
        client, DRAFT_FR.replace("id: visite-fr", "id: autre"), r["session"], {"kind": "say", "text": "x"}
    )
    assert other.status_code == 400 and "restart" in other.json()["detail"]
    broken = await _sim(client, DRAFT_FR.replace("kind: number", "kind: nombre"), None, {"kind": "start"})
    assert broken.status_code == 400 and broken.json()["issues"][0]["line"] == 14
    before_start = await _sim(client, DRAFT_FR, None, {"kind": "say", "text": "hello"})
    assert before_start.status_code == 400
    too_far = await _sim(client, DRAFT_FR, r["session"], {"kind": "advance", "seconds": 10**9})
    assert too_far.status_code == 400
    tampered = {**r["session"], "state": {"playbook_id": "visite-fr", "status": "nope"}}
    assert (await _sim(client, DRAFT_FR, tampered, {"kind": "say", "text": "x"})).status_code == 400


async def test_roles_marketers_simulate_agents_do_not(client: AsyncTestClient[Litestar]) -> None:
    csrf = await sign_in(client, *MARKETER)
    ok = await client.post(
        "/api/v1/playbooks/simulate",
        json={"source": DRAFT_FR, "action": {"kind": "start"}},
        headers={"X-CSRF-Token": csrf},
    )
    assert ok.status_code == 200
    no_csrf = await client.post("/api/v1/playbooks/validate", json={"source": DRAFT_FR})
    assert no_csrf.status_code == 403
    await client.post("/app/signout", data={"csrf_token": csrf})
    agent_csrf = await sign_in(client, *AGENT)
    refused = await client.post(
        "/api/v1/playbooks/validate", json={"source": DRAFT_FR}, headers={"X-CSRF-Token": agent_csrf}
    )
    assert refused.status_code == 403


async def test_the_shipped_french_playbook_books_on_the_sandbox_calendar(
    client: AsyncTestClient[Litestar],
) -> None:
    source = (LIBRARY_DIR / "renovation-qualification-fr.yaml").read_text(encoding="utf-8")
    r = (await _sim(client, source, None, {"kind": "start"}, session_language="fr")).json()
    answers = [
        "oui",
        "une maison",
        "une pompe à chaleur",
        "120 m2",
        "au plus vite",
        "oui",
        "75011",
        "marie@example.com",
        "06 12 34 56 78",
    ]
    for text in answers:
        r = (await _sim(client, source, r["session"], {"kind": "say", "text": text})).json()
    offer = [e for e in r["events"] if e["kind"] == "bot"][-1]
    assert r["current_step"] == "rappel" and len(offer["choices"]) == 3, r["events"]
    r = (await _sim(client, source, r["session"], {"kind": "say", "text": "1"})).json()
    booked = [e for e in r["events"] if e["kind"] == "booked"]
    assert booked and booked[0]["value"]["provider"] == "simulator", r["events"]
    assert booked[0]["value"]["start"] > T0
    assert r["slots"]["proprietaire"] is True and r["slots"]["type_logement"] == "maison"
    assert r["score"] >= 75 and r["status"] == "handoff", (r["score"], r["status"], r["events"])


async def test_the_playbook_pages_need_a_session_and_send_their_assets(
    client: AsyncTestClient[Litestar],
) -> None:
    for path in ("/app/playbooks", "/app/playbooks/editor?id=handoff-demo&version=1"):
        response = await client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/app/signin")
    await sign_in(client, *MARKETER)
    page = await client.get("/app/playbooks/editor?id=handoff-demo&version=1")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert 'data-playbook="handoff-demo" data-version="1"' in page.text
    assert '<a href="/app/playbooks" aria-current="page">' in page.text
    odd = await client.get('/app/playbooks/editor?id="><script>x</script>&version=1x')
    assert "<script>x</script>" not in odd.text and 'data-version=""' in odd.text
    js = await client.get("/app/static/playbooks.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    css = await client.get("/app/static/playbooks.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_a_lead_who_writes_first_fills_slots_from_that_message(
    client: AsyncTestClient[Litestar],
) -> None:
    action = {"kind": "start", "text": "Bonjour, j'ai un budget de 3000 euros"}
    r = (await _sim(client, DRAFT_FR, None, action, session_language="fr")).json()
    assert r["events"][0] == {**r["events"][0], "kind": "lead", "text": action["text"]}
    assert r["slots"] == {"budget": 3000} and r["score"] == 50
    assert r["session"]["inbound_count"] == 1 and r["status"] == "waiting"
    assert "Quel est votre budget, en euros ?" not in [e["text"] for e in r["events"] if e["kind"] == "bot"]


DIRECT_FR = """\
id: direct-fr
name: Réponse directe
version: 1
language: fr
triggers: [inbound_unknown_lead, lead_created]
steps:
  - id: question
    type: ask
    slot: budget
    kind: number
    question: {fr: "Quel est votre budget, en euros ?", en: "What is your budget, in euros?"}
  - id: merci
    type: message
    text: {fr: "Merci, c'est noté.", en: "Thanks, noted."}
  - id: attente
    type: wait
    duration: 1h
  - id: fin
    type: end
    outcome: qualified
    message: {fr: "Un conseiller vous écrit demain.", en: "An adviser writes tomorrow."}
"""

#: 2025-11-30 in Paris (UTC+1): 22:30, then 08:00 and midnight the next day.
PARIS_2230, PARIS_0800_NEXT, PARIS_MIDNIGHT = 1_764_538_200.0, 1_764_572_400.0, 1_764_543_600.0


async def test_the_simulator_holds_what_the_outbound_rules_would_hold(
    runtime: Runtime, client: AsyncTestClient[Litestar]
) -> None:
    """The tenant's quiet hours (21:00-08:00, Paris) and daily cap apply to simulated sends as to
    real ones: a first message at 22:30 and a follow-up at 23:30 are held until 08:00, a direct
    answer to a lead who just wrote goes out, and past the cap a message waits for the next day."""
    profile = await runtime.tenants.profile("demo")
    await runtime.tenants.save_profile(
        profile.model_copy(
            update={
                "timezone": "Europe/Paris",
                "quiet_hours_start": "21:00",
                "quiet_hours_end": "08:00",
                "quiet_hours_allow_direct_replies": True,
                "daily_cap_per_lead": 2,
            }
        )
    )
    night = {"now": PARIS_2230, "language": "fr"}

    def bots(r: Any) -> list[tuple[str, str | None, float | None]]:
        return [(e["text"], e["policy"], e["held_until"]) for e in r["events"] if e["kind"] == "bot"]

    r = (await _sim(client, DIRECT_FR, night, {"kind": "start"})).json()
    assert bots(r) == [("Quel est votre budget, en euros ?", "quiet_hours", PARIS_0800_NEXT)]
    r = (await _sim(client, DIRECT_FR, r["session"], {"kind": "say", "text": "3000"})).json()
    assert bots(r) == [("Merci, c'est noté.", None, None)]  # a direct answer: it goes out at once
    r = (await _sim(client, DIRECT_FR, r["session"], {"kind": "advance", "seconds": 3600})).json()
    assert bots(r) == [("Un conseiller vous écrit demain.", "quiet_hours", PARIS_0800_NEXT)]

    # By day, the lead writing first: two answers out, the third past the cap of 2 a day.
    day = {"now": PARIS_2230 - 10 * 3600, "language": "fr"}  # 12:30
    r = (await _sim(client, DIRECT_FR, day, {"kind": "start", "text": "bonjour"})).json()
    r = (await _sim(client, DIRECT_FR, r["session"], {"kind": "say", "text": "3000"})).json()
    r = (await _sim(client, DIRECT_FR, r["session"], {"kind": "advance", "seconds": 3600})).json()
    assert bots(r) == [("Un conseiller vous écrit demain.", "daily_cap", PARIS_MIDNIGHT)]
