"""Fuzzed webhook bodies over HTTP against a served instance (``tests/hardening/fuzzing.py``):
signed and forged, every channel. Zero 5xx, every forged delivery 401. The test sends
:data:`COUNT` deliveries; ``benchmarks/fuzz_webhooks.py`` sends the full 15,000."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.hardening.fuzzing import Case, cases, send_all
from tests.hardening.serving import SECRETS, Served

COUNT = 600


def _describe(found: list[tuple[Case, int, str]]) -> str:
    return "\n".join(f"{c.kind} {c.path} -> {code}: {text} | {c.body[:200]!r}" for c, code, text in found[:5])


def test_fuzzed_webhooks_never_get_a_5xx_and_forged_ones_get_401(serve: Callable[..., Served]) -> None:
    served = serve(WORKER_CONCURRENCY="2")
    result = asyncio.run(send_all(served.base, cases(SECRETS, count=COUNT, seed=1616), concurrency=8))
    print(f"fuzzed {result.sent}: {dict(sorted(result.statuses.items()))}")
    assert result.sent == COUNT
    assert not result.server_errors, _describe(result.server_errors)
    assert not result.forged_not_401, _describe(result.forged_not_401)
    assert result.statuses[200] > COUNT // 4  # the signed, well-formed majority is accepted
    assert result.statuses[401] >= COUNT // 5
    assert (served.service.proc.poll()) is None  # still serving
