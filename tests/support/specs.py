"""Where the vendors' OpenAPI specs are: ``LEADWARM_SPECS_DIR``; else ``shared/specs`` beside the
clone; else beside the local repository it was cloned from (a scratch clone made elsewhere, e.g.
``git clone . "$(mktemp -d)"``, still finds them)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["SPECS_DIR"]

_REPO = Path(__file__).resolve().parents[2]


def _origin_parent() -> Path | None:
    """The parent folder of the local repository this clone came from (``None``: no local origin)."""
    try:
        url = subprocess.run(
            ["git", "-C", str(_REPO), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    origin = Path(url.removeprefix("file://")) if url and "://" not in url.removeprefix("file://") else None
    return origin.resolve().parent if origin is not None and origin.is_dir() else None


def _find() -> Path:
    if os.environ.get("LEADWARM_SPECS_DIR"):
        return Path(os.environ["LEADWARM_SPECS_DIR"])
    beside = _REPO.parent / "shared" / "specs"
    if beside.is_dir():
        return beside
    parent = _origin_parent()
    if parent is not None and (parent / "shared" / "specs").is_dir():
        return parent / "shared" / "specs"
    return beside  # missing: the tests that need it say where they looked


SPECS_DIR = _find()
