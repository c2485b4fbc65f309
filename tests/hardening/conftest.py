"""Fixtures of the hardening tests: ``serve`` starts served instances (see ``serving.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.hardening.serving import Served, serving


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """``serve(**SETTINGS)``: see :func:`tests.hardening.serving.serving`."""
    with serving(tmp_path) as start:
        yield start
