"""The dashboard's playbook pages (server-rendered shells; their data comes from ``/api/v1``):

- ``GET /app/playbooks``: every playbook with its versions (which is active, drafts to activate)
  and the routing rules that start it; the routing rules' editor.
- ``GET /app/playbooks/editor`` (``?id=&version=`` to open a stored version, else a starter): the
  YAML editor with live validation (the loader's ``line: message`` shown at the line), schema
  completion (Ctrl+Space), publish and activate, and the simulator panel (a sandboxed conversation
  with the text being edited, in English or French, with a clock to advance).
- ``GET /app/static/playbooks.js``, ``/app/static/playbooks.css``: the pages' script and style.

The editor is a plain ``<textarea>`` with a line-number gutter and an error layer behind the text,
written here (no editor library): the README's run command installs Python packages only, and no
maintained code editor (CodeMirror, Monaco) is published on PyPI; an npm bundle would make the run
command need Node. Signed-in only; a page never reads the store (the script calls the API).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency

from app.dashboard.pages import _page
from app.dashboard.people import PeopleDirectory

__all__ = ["ROUTES", "STARTER"]

_STATIC = Path(__file__).parent / "static"

#: What a new playbook starts from, per language (a question, a score, a wait, a follow-up, an end).
STARTER = {
    "en": """\
id: my-playbook
name: My playbook
version: 1
language: en
triggers: [inbound_unknown_lead, lead_created]
qualification_threshold: 50
steps:
  - id: hello
    type: message
    text: Hello! Two quick questions.
  - id: budget
    type: ask
    slot: budget
    kind: number
    question: What is your budget?
  - id: score-budget
    type: score
    if: (slots.budget or 0) >= 1000
    points: 50
    reason: Comfortable budget
  - id: pause
    type: wait
    duration: 1d
  - id: follow-up
    type: message
    text: A quick follow-up - an adviser will write to you soon.
  - id: done
    type: end
    outcome: qualified
    message: Thank you, speak soon!
""",
    "fr": """\
id: mon-scenario
name: Mon scénario
version: 1
language: fr
triggers: [inbound_unknown_lead, lead_created]
qualification_threshold: 50
steps:
  - id: bonjour
    type: message
    text: Bonjour ! Deux questions rapides.
  - id: budget
    type: ask
    slot: budget
    kind: number
    question: Quel est votre budget ?
  - id: score-budget
    type: score
    if: (slots.budget or 0) >= 1000
    points: 50
    reason: Budget confortable
  - id: pause
    type: wait
    duration: 1d
  - id: relance
    type: message
    text: Petit message de suivi - un conseiller vous écrit bientôt.
  - id: fin
    type: end
    outcome: qualified
    message: Merci, à bientôt !
""",
}


@get("/app/playbooks", include_in_schema=False)
async def playbooks_page(
    request: Request[Any, Any, Any], people: NamedDependency[PeopleDirectory]
) -> Response[Any]:
    """Playbooks with their versions and routing rules; the routing editor."""
    return await _page(request, people, "playbooks.html")


@get("/app/playbooks/editor", include_in_schema=False)
async def editor_page(
    request: Request[Any, Any, Any], people: NamedDependency[PeopleDirectory]
) -> Response[Any]:
    """The YAML editor and the simulator (``?id=&version=`` opens a stored version)."""
    playbook_id = request.query_params.get("id", "")[:200]
    version = request.query_params.get("version", "")[:9]
    return await _page(
        request,
        people,
        "playbook_editor.html",
        playbook_id=playbook_id,
        version=version if version.isdigit() else "",
        starters=STARTER,
    )


def _static(name: str, media_type: str) -> Response[bytes]:
    return Response(
        (_STATIC / name).read_bytes(),
        media_type=media_type,
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


@get("/app/static/playbooks.js", include_in_schema=False)
async def playbooks_js() -> Response[bytes]:
    """The playbook pages' script."""
    return _static("playbooks.js", "text/javascript; charset=utf-8")


@get("/app/static/playbooks.css", include_in_schema=False)
async def playbooks_css() -> Response[bytes]:
    """The playbook pages' style sheet."""
    return _static("playbooks.css", "text/css; charset=utf-8")


#: Registered by :class:`app.dashboard.plugin.DashboardFeature`.
ROUTES = (playbooks_page, editor_page, playbooks_js, playbooks_css)
