"""Where the vendors' OpenAPI specs are: ``LEADWARM_SPECS_DIR``, else ``shared/specs`` beside the clone."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SPECS_DIR"]

_REPO = Path(__file__).resolve().parents[2]
SPECS_DIR = Path(os.environ.get("LEADWARM_SPECS_DIR", str(_REPO.parent / "shared" / "specs")))
