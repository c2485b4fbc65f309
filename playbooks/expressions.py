"""Sandboxed Jinja2: render a playbook's texts and evaluate its conditions.

Texts and conditions come from marketers' YAML, so they run in Jinja2's
``ImmutableSandboxedEnvironment`` (no attribute writes, no access to private attributes or to
Python internals; see https://jinja.palletsprojects.com/en/3.1.x/sandbox/). Nothing here calls
``eval()``. Undefined variables render as an empty string and are falsy (``ChainableUndefined``),
so ``{{ lead.first_name }}`` is simply empty when the lead has no first name.

The template context is ``{lead, slots, score, language}`` (see :func:`template_context`).
Rendering and evaluation never raise: a runtime error becomes a note for the caller.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateSyntaxError
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from kernel.errors import LeadWarmError

__all__ = [
    "ExpressionSyntaxError",
    "check_expression",
    "check_template",
    "evaluate",
    "render",
    "template_context",
]


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, whose templates hold their globals in a plain dict (a snapshot of the
    environment's, which never change after this module is imported)."""

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """Jinja2 chains the environment's globals under the template's (a ``ChainMap``, so that
        later changes to the environment show through), and copies them into every render's and
        evaluation's context: walking the chain took about 45 us of a condition's 70-90."""
        return {**self.globals, **(d or {})}


_ENV = _Environment(autoescape=False, undefined=ChainableUndefined, keep_trailing_newline=False)
_MARKUP = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


class ExpressionSyntaxError(LeadWarmError, ValueError):
    """A template or expression does not compile. ``lineno`` is the 1-based line inside the source."""

    def __init__(self, message: str, *, lineno: int | None = None) -> None:
        super().__init__(message)
        self.lineno = lineno


def _syntax_error(kind: str, exc: TemplateSyntaxError) -> ExpressionSyntaxError:
    where = f" (line {exc.lineno} of the {kind})" if exc.lineno and exc.lineno > 1 else ""
    return ExpressionSyntaxError(f"Jinja2 {kind} syntax error: {exc.message}{where}", lineno=exc.lineno)


@lru_cache(maxsize=1024)
def _template(source: str) -> Template:
    return _ENV.from_string(source)


@lru_cache(maxsize=1024)
def _expression(source: str) -> Any:
    return _ENV.compile_expression(source, undefined_to_none=False)


def check_template(source: str) -> None:
    """Compile a Jinja2 template; raise :class:`ExpressionSyntaxError` when it does not compile."""
    try:
        _template(source)
    except TemplateSyntaxError as exc:
        raise _syntax_error("template", exc) from exc


def check_expression(source: str) -> None:
    """Compile a Jinja2 expression (``slots.budget >= 10000``); raise :class:`ExpressionSyntaxError`."""
    if not source.strip():
        raise ExpressionSyntaxError("the expression is empty")
    try:
        _expression(source)
    except TemplateSyntaxError as exc:
        raise _syntax_error("expression", exc) from exc


def template_context(
    *, lead: Mapping[str, Any], slots: Mapping[str, Any], score: int, language: str
) -> dict[str, Any]:
    """The variables every template and condition sees."""
    return {"lead": dict(lead), "slots": dict(slots), "score": score, "language": language}


def render(source: str, context: Mapping[str, Any], *, notes: list[str] | None = None) -> str:
    """Render ``source`` with ``context``; never raises.

    On a runtime error the Jinja2 markup is dropped from the text (the lead never sees ``{{ }}``)
    and a note is appended to ``notes``.
    """
    if "{" not in source:
        return source
    try:
        return _template(source).render(**context)
    except Exception as exc:
        if notes is not None:
            notes.append(f"template {source!r} failed: {type(exc).__name__}: {exc}")
        return re.sub(r"\s{2,}", " ", _MARKUP.sub("", source)).strip()


def evaluate(source: str, context: Mapping[str, Any], *, notes: list[str] | None = None) -> bool:
    """Evaluate a condition to a bool; never raises.

    Undefined values are falsy. A runtime error (e.g. comparing a missing slot with a number)
    makes the condition false and appends a note to ``notes``.
    """
    try:
        value = _expression(source)(**context)
        if isinstance(value, Undefined):
            return False
        return bool(value)
    except Exception as exc:
        if notes is not None:
            notes.append(f"condition {source!r} treated as false: {type(exc).__name__}: {exc}")
        return False
