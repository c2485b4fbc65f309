"""The base of every stored record: ``to_doc`` / ``from_doc`` to and from store documents.

Times are floats, seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict

__all__ = ["Record"]


class Record(BaseModel):
    """Base of every stored record: ``to_doc`` / ``from_doc`` convert to and from store documents."""

    model_config = ConfigDict(extra="ignore")

    def to_doc(self) -> dict[str, Any]:
        """JSON-compatible dict for :class:`app.store.Store`."""
        return self.model_dump(mode="json")

    @classmethod
    def from_doc(cls, data: dict[str, Any]) -> Self:
        """Build from a stored document (unknown keys are ignored, so old code reads new docs)."""
        return cls.model_validate(data)
