"""Render the Jinja2 prompt templates of ``prompts/templates/``.

The environment is sandboxed (:class:`jinja2.sandbox.SandboxedEnvironment`: templates cannot reach
Python internals) and strict (:class:`jinja2.StrictUndefined`: a missing variable raises instead of
rendering as an empty string). No HTML autoescaping: prompts are plain text. Text written by a lead
goes through the ``json_text`` filter, which JSON-encodes it and escapes ``<``, ``>`` and ``&`` as
``\\u003c``-style sequences, so a message can never close the delimiters that surround it.

A leaf package: imports nothing from ``app``, ``channels``, ``playbooks`` or ``crm_sync``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["TEMPLATES_DIR", "environment", "json_text", "render"]

#: Where the templates live (``<name>.j2``).
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def json_text(value: Any) -> str:
    """``value`` as JSON (UTF-8 kept), with ``<``, ``>`` and ``&`` escaped so it cannot forge a tag."""
    encoded = json.dumps(value, ensure_ascii=False)
    return encoded.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def environment() -> SandboxedEnvironment:
    """The shared sandboxed, strict environment over :data:`TEMPLATES_DIR`."""
    env = SandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["json_text"] = json_text
    return env


def render(name: str, **context: Any) -> str:
    """Render template ``name`` (``prompts/templates/<name>.j2``) with ``context``.

    Raises :class:`jinja2.TemplateNotFound` for an unknown name and :class:`jinja2.UndefinedError`
    when the template uses a variable the context lacks. The result is stripped of outer blank lines.
    """
    return environment().get_template(f"{name}.j2").render(**context).strip("\n") + "\n"
