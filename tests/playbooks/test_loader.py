"""Loader: shipped playbooks load; broken files report the right file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbooks import (
    LIBRARY_DIR,
    PlaybookError,
    load_library,
    load_playbook,
    load_playbook_text,
    validate_file,
)
from playbooks.schema import AskStep, ConditionStep, WaitStep

GOOD = """\
id: test-playbook
name: Test
version: 1
steps:
  - type: message
    text: "Hello {{ lead.first_name }}"
  - id: owner
    type: ask
    slot: owner
    kind: yes_no
    question: Do you own it?
  - id: check
    type: condition
    if: slots.owner
    then: done
  - id: pause
    type: wait
    duration: 1h30m
  - id: done
    type: end
    outcome: qualified
"""


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) >= occurrence, f"{needle!r} not in text"
    return hits[occurrence - 1]


def issues_for(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    return [str(issue) for issue in validate_file(path)]


def test_library_loads_every_file() -> None:
    files = sorted(LIBRARY_DIR.glob("*.yaml"))
    library = load_library()
    assert len(library) == len(files) >= 2
    assert {"solar-qualification-en", "renovation-qualification-fr"} <= set(library)
    for path in files:
        assert validate_file(path) == []
        assert path.read_text(encoding="utf-8").startswith(
            "# yaml-language-server: $schema=../schema/playbook.schema.json"
        )


def test_library_playbooks_have_required_shape() -> None:
    for playbook in load_library().values():
        assert playbook.qualification_threshold is not None and 50 <= playbook.qualification_threshold <= 70
        assert set(playbook.triggers) == {"inbound_unknown_lead", "lead_created"}
        kinds = set(playbook.slot_kinds().values())
        assert {"yes_no", "number", "choice", "text", "email", "datetime"} <= kinds
        assert any(isinstance(s, WaitStep) and s.until_reply and s.on_timeout for s in playbook.steps)
        assert {s.type for s in playbook.steps} == {
            "message",
            "ask",
            "book",
            "condition",
            "score",
            "wait",
            "handoff",
            "end",
        }


def test_good_text_loads_with_default_ids_and_parsed_fields() -> None:
    playbook = load_playbook_text(GOOD)
    assert playbook.steps[0].id == "step-0"
    assert isinstance(playbook.steps[1], AskStep) and playbook.steps[1].retries == 2
    assert isinstance(playbook.steps[2], ConditionStep) and playbook.steps[2].then == "done"
    wait = playbook.steps[3]
    assert isinstance(wait, WaitStep) and wait.seconds == 5400
    assert playbook.language == "en"


@pytest.mark.parametrize(
    ("old", "new", "needle", "expected"),
    [
        # duplicate key: reported at the second occurrence
        ("    kind: yes_no\n", "    kind: yes_no\n    kind: text\n", "kind: text", "duplicate key"),
        ("  - type: message\n", "  - type: mesage\n", "type: mesage", "unknown step type 'mesage'"),
        ("    kind: yes_no\n", "    kind: colour\n", "kind: colour", "steps[1].kind: Input should be 'text'"),
        ("    then: done\n", "    then: dnoe\n", "then: dnoe", "steps[2].then: no step has the id 'dnoe'"),
        (
            "    duration: 1h30m\n",
            "    duration: 90 minutes\n",
            "duration: 90",
            "steps[3].duration: not a duration",
        ),
        (
            '    text: "Hello {{ lead.first_name }}"\n',
            '    text: "Hello {{ lead.first_name }"\n',
            "text:",
            "steps[0].text",
        ),
        (
            "    if: slots.owner\n",
            "    if: slots.owner ==\n",
            "if: slots.owner",
            "steps[2].if: Jinja2 expression syntax error",
        ),
        (
            "    question: Do you own it?\n",
            "    question: [Do you own it?\n",
            "question:",
            "YAML syntax error",
        ),
        (
            "    outcome: qualified\n",
            "    outcome: qualified\n    colour: blue\n",
            "colour: blue",
            "unknown key 'colour'",
        ),
    ],
)
def test_broken_playbook_reports_line(tmp_path: Path, old: str, new: str, needle: str, expected: str) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    issues = issues_for(tmp_path, text)
    assert issues, "expected at least one issue"
    line = line_of(text, needle)
    prefix = f"{tmp_path / 'broken.yaml'}:"
    matching = [i for i in issues if expected in i]
    assert matching, issues
    if "YAML syntax error" not in expected:
        assert matching[0].startswith(f"{prefix}{line}: "), (matching, line)
    else:
        # the parser notices the unclosed flow sequence at or after the line that opens it
        reported = int(matching[0][len(prefix) :].split(":", 1)[0])
        assert line <= reported <= line + 3


def test_dangling_next_and_on_fail(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    question: Do you own it?\n", "    question: Do you own it?\n    on_fail: nowhere\n"
    )
    text = text.replace("  - id: pause\n", "  - id: pause\n    next: elsewhere\n")
    issues = issues_for(tmp_path, text)
    assert any(f":{line_of(text, 'on_fail: nowhere')}: steps[1].on_fail" in i for i in issues), issues
    assert any(f":{line_of(text, 'next: elsewhere')}: steps[3].next" in i for i in issues), issues


def test_missing_field_points_at_the_step(tmp_path: Path) -> None:
    text = GOOD.replace("    question: Do you own it?\n", "")
    issues = issues_for(tmp_path, text)
    assert any(
        f":{line_of(text, 'id: owner')}: steps[1].question: missing required key 'question'" in i
        for i in issues
    )


def test_semantic_errors(tmp_path: Path) -> None:
    text = GOOD.replace(
        "  - id: done\n",
        "  - id: owner\n    type: ask\n    slot: owner\n    kind: text\n    question: Again?\n  - id: done\n",
    )
    issues = issues_for(tmp_path, text)
    assert any("already used by steps[1]" in i for i in issues), issues
    assert any("a slot has one kind only" in i for i in issues), issues


def test_choice_question_needs_choices(tmp_path: Path) -> None:
    text = GOOD.replace("    kind: yes_no\n", "    kind: choice\n")
    issues = issues_for(tmp_path, text)
    assert any(f":{line_of(text, 'id: owner')}: steps[1]: a 'choice' question needs" in i for i in issues), (
        issues
    )


def test_bad_slot_name_and_localized_text(tmp_path: Path) -> None:
    text = GOOD.replace("    slot: owner\n", "    slot: 2owner\n").replace(
        "    question: Do you own it?\n", "    question: {english: Hi}\n"
    )
    issues = issues_for(tmp_path, text)
    assert any(f":{line_of(text, 'slot: 2owner')}: steps[1].slot: must be a name" in i for i in issues), (
        issues
    )
    assert any(
        f":{line_of(text, 'question:')}: steps[1].question: 'english' is not a two-letter" in i
        for i in issues
    )


def test_load_raises_playbook_error_listing_every_issue(tmp_path: Path) -> None:
    text = GOOD.replace("    kind: yes_no\n", "    kind: colour\n").replace("version: 1", "version: zero")
    path = tmp_path / "two.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path)
    assert len(caught.value.issues) == 2
    message = str(caught.value)
    assert f"{path}:{line_of(text, 'kind: colour')}: " in message
    assert f"{path}:{line_of(text, 'version: zero')}: version: " in message
    assert "(got 'colour')" in message


def test_graph_checks_run_once_fields_are_valid(tmp_path: Path) -> None:
    """Step references are checked after the fields validate; fixing one error reveals the next."""
    text = GOOD.replace("    then: done\n", "    then: dnoe\n").replace(
        "    kind: yes_no\n", "    kind: colour\n"
    )
    assert [i for i in issues_for(tmp_path, text) if "kind" in i]
    fixed = text.replace("kind: colour", "kind: yes_no")
    assert issues_for(tmp_path, fixed) == [
        f"{tmp_path / 'broken.yaml'}:{line_of(fixed, 'then: dnoe')}: "
        "steps[2].then: no step has the id 'dnoe' (steps are: step-0, owner, check, pause, done)"
    ]


def test_not_a_mapping_and_unreadable(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match="must be a YAML mapping"):
        load_playbook_text("- just\n- a list\n")
    assert "cannot read" in str(validate_file(tmp_path / "missing.yaml")[0])


def test_load_library_reports_broken_files(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "bad.yaml").write_text(GOOD.replace("version: 1", "version: 0"), encoding="utf-8")
    with pytest.raises(PlaybookError) as caught:
        load_library(tmp_path)
    assert [issue.line for issue in caught.value.issues] == [3]
    assert "bad.yaml" in caught.value.issues[0].file
