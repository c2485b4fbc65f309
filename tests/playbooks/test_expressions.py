"""Sandboxed Jinja2: rendering, conditions, and what the sandbox refuses."""

from __future__ import annotations

import pytest

from playbooks.expressions import ExpressionSyntaxError, check_expression, check_template, evaluate, render

CTX = {
    "lead": {"first_name": "Ann"},
    "slots": {"budget": 12000, "homeowner": True},
    "score": 40,
    "language": "en",
}


def test_render_with_context_and_undefined_is_empty() -> None:
    assert render("Hi {{ lead.first_name }}{{ lead.last_name }}!", CTX) == "Hi Ann!"
    assert render("{{ slots.nothing.deeper }}x", CTX) == "x"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("slots.budget >= 10000 and slots.homeowner", True),
        ("slots.budget >= 20000", False),
        ("slots.missing", False),
        ("not slots.missing", True),
        ("score > 30 and language == 'en'", True),
        ("(slots.missing or 0) >= 5", False),
    ],
)
def test_evaluate(expression: str, expected: bool) -> None:
    assert evaluate(expression, CTX) is expected


def test_runtime_errors_are_false_and_noted() -> None:
    notes: list[str] = []
    assert evaluate("slots.missing >= 3", CTX, notes=notes) is False
    assert evaluate("1 / 0", CTX, notes=notes) is False
    assert len(notes) == 2 and "treated as false" in notes[0]


def test_sandbox_blocks_python_internals() -> None:
    notes: list[str] = []
    text = render("a{{ ''.__class__.__mro__[1].__subclasses__() }}b", CTX, notes=notes)
    assert "class" not in text and notes
    assert evaluate("lead.__class__.__init__.__globals__", CTX, notes=notes) is False


def test_syntax_errors() -> None:
    with pytest.raises(ExpressionSyntaxError, match="template syntax error"):
        check_template("Hello {{ name }")
    with pytest.raises(ExpressionSyntaxError, match="expression syntax error"):
        check_expression("slots.a ==")
    with pytest.raises(ExpressionSyntaxError, match="empty"):
        check_expression("  ")
    check_template("Hi {% if lead.name %}{{ lead.name }}{% endif %}")
    check_expression("slots.a in ['x', 'y']")
