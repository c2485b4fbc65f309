"""A few worst-case messages (``tests/hardening/worst_case.py``) through a served instance:
``/health`` stays within 100 ms at p99, every message is refused with a 4xx before acceptance or
stored and answered. ``benchmarks/worst_case.py`` sends 100."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.hardening.serving import Served
from tests.hardening.worst_case import deliveries, run

COUNT = 10


def test_worst_case_messages_keep_health_fast_and_are_answered(serve: Callable[..., Served]) -> None:
    # Turns run in the worker process (the production layout SECURITY.md names): the web process
    # verifies, parses (in a thread) and stores, so /health never waits behind a turn.
    served = serve(worker_apart=True, WORKER_CONCURRENCY="2")
    items = deliveries(COUNT)
    result = asyncio.run(run(served, items))
    p99 = result.percentile(0.99)
    print(
        f"health p50 {result.percentile(0.5) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms over {len(result.health_s)}; "
        f"{dict(result.statuses)}; answered {result.answered}/{len(result.accepted)}"
    )
    assert result.health_failures == 0
    assert all(status == 200 or 400 <= status < 500 for status in result.statuses.elements())
    assert result.statuses[200] >= COUNT * 0.6  # WhatsApp, e-mail and SMS are accepted (cut, noted)
    assert result.answered == len(result.accepted)
    assert p99 < 0.100, f"/health p99 {p99 * 1000:.0f} ms"
