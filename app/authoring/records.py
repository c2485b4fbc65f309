"""A tenant's stored playbook versions."""

from __future__ import annotations

from typing import Literal

from app.core.records import Record

__all__ = ["StoredPlaybook"]


class StoredPlaybook(Record):
    """A tenant's playbook: its YAML source (validated on write) and the version it declares."""

    id: str
    version: int
    name: str
    language: str
    source: str
    status: Literal["active", "draft", "retired"] = "active"
    """``active``: new conversations start it; ``draft``: published, not yet activated;
    ``retired``: replaced by a newer active version (conversations under way keep it)."""
    updated_at: float = 0.0
