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
    status: Literal["active", "draft"] = "active"
    updated_at: float = 0.0
