"""Jinja2 templates for every LLM call, and the small loader that renders them.

A leaf package: it imports nothing from ``app``, ``channels``, ``playbooks`` or ``crm_sync``.
"""

from prompts.loader import TEMPLATES_DIR, json_text, render

__all__ = ["TEMPLATES_DIR", "json_text", "render"]
