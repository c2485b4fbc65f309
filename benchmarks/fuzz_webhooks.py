"""15,000 fuzzed webhook deliveries (signed and forged, WhatsApp, Twilio SMS and e-mail) against a
served instance (``leadwarm serve`` on SQLite, fakes for the providers on 127.0.0.1); prints the
counts by status, the 5xx (must be 0) and the forged deliveries that did not get 401 (must be 0).

Usage: ``python benchmarks/fuzz_webhooks.py [--count N] [--seed S] [--concurrency C]``.
The generator is ``tests/hardening/fuzzing.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hardening.fuzzing import cases, send_all  # noqa: E402
from tests.hardening.serving import SECRETS, serving  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=15_000)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, serving(Path(tmp)) as start:
        served = start(WORKER_CONCURRENCY="2", LOG_LEVEL="ERROR")
        started = time.monotonic()
        result = asyncio.run(
            send_all(
                served.base, cases(SECRETS, count=args.count, seed=args.seed), concurrency=args.concurrency
            )
        )
        elapsed = time.monotonic() - started
        alive = served.service.proc.poll() is None
    forged = sum(1 for case in cases(SECRETS, count=args.count, seed=args.seed) if case.forged)
    print(f"fuzz_sent: {result.sent} deliveries in {elapsed:.1f} s")
    print(f"fuzz_statuses: {dict(sorted(result.statuses.items()))}")
    print(f"fuzz_5xx: {len(result.server_errors)} (connections dropped and retried once: {result.retried})")
    print(f"fuzz_forged: {forged} (not 401: {len(result.forged_not_401)})")
    print(f"fuzz_service_alive: {alive}")
    for case, code, text in (result.server_errors + result.forged_not_401)[:10]:
        print(f"  {case.kind} {case.path} -> {code}: {text[:200]} | {case.body[:120]!r}")
    return 0 if not result.server_errors and not result.forged_not_401 and alive else 1


if __name__ == "__main__":
    raise SystemExit(main())
