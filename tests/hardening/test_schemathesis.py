"""Schemathesis over the OpenAPI document of a served instance (over HTTP, not ASGI: its ASGI mode
runs the lifespan per call): no operation answers 5xx. The test runs the examples and fuzzing
phases with 3 examples per operation; the full run (coverage phase too, 10 examples, about 2,400
cases) is ``benchmarks/fuzz_webhooks.py --schemathesis``."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.app.conftest import ADMIN_KEY
from tests.hardening.serving import Served

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")


def run_schemathesis(base: str, *, examples: int, phases: str) -> subprocess.CompletedProcess[str]:
    """``schemathesis run`` against ``base``'s OpenAPI document with the admin key, checking only
    ``not_a_server_error`` (the API's own 4xx answers to invalid input are its business)."""
    return subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{base}/schema/openapi.json",
            "--checks",
            "not_a_server_error",
            "-n",
            str(examples),
            "--phases",
            phases,
            "-H",
            f"Authorization: Bearer {ADMIN_KEY}",
            "--seed",
            "16",
            "--request-timeout",
            "30",
            "--continue-on-failure",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=tempfile.gettempdir(),  # its cache directory (.schemathesis/) stays out of the repository
    )


def test_no_operation_of_the_api_answers_5xx(serve: Callable[..., Served]) -> None:
    served = serve(WORKER_CONCURRENCY="2", RATE_LIMIT_PUBLIC_PER_MINUTE="100000")
    result = run_schemathesis(served.base, examples=3, phases="examples,fuzzing")
    summary = result.stdout[-4000:]
    assert result.returncode == 0, summary
    assert " passed" in summary and "failed" not in summary.split("Test cases:")[-1], summary
    assert "Server error" not in result.stdout, summary
