"""15,000 fuzzed webhook deliveries (signed and forged, WhatsApp, Twilio SMS and e-mail) against a
served instance (``leadwarm serve`` on SQLite, fakes for the providers on 127.0.0.1); prints the
counts by status, the 5xx (must be 0) and the forged deliveries that did not get 401 (must be 0).

With ``--schemathesis N``, Schemathesis then runs over the same instance's OpenAPI document (examples,
coverage and fuzzing phases, N examples per operation) and its summary is printed.

Usage: ``python benchmarks/fuzz_webhooks.py [--count N] [--seed S] [--concurrency C] [--schemathesis N]``.
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
from tests.hardening.test_schemathesis import run_schemathesis  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=15_000)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--schemathesis", type=int, default=0, metavar="N")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, serving(Path(tmp)) as start:
        served = start(WORKER_CONCURRENCY="2", LOG_LEVEL="ERROR", RATE_LIMIT_PUBLIC_PER_MINUTE="100000")
        started = time.monotonic()
        result = asyncio.run(
            send_all(
                served.base, cases(SECRETS, count=args.count, seed=args.seed), concurrency=args.concurrency
            )
        )
        elapsed = time.monotonic() - started
        schema_ok = True
        if args.schemathesis:
            phases = "examples,coverage,fuzzing"
            run = run_schemathesis(served.base, examples=args.schemathesis, phases=phases)
            schema_ok = run.returncode == 0
            print("schemathesis:", run.stdout.split("Test cases:")[-1].strip().splitlines()[0])
        alive = served.service.proc.poll() is None
    forged = sum(1 for case in cases(SECRETS, count=args.count, seed=args.seed) if case.forged)
    print(f"fuzz_sent: {result.sent} deliveries in {elapsed:.1f} s")
    print(f"fuzz_statuses: {dict(sorted(result.statuses.items()))}")
    print(f"fuzz_5xx: {len(result.server_errors)} (connections dropped and retried once: {result.retried})")
    print(f"fuzz_forged: {forged} (not 401: {len(result.forged_not_401)})")
    print(f"fuzz_service_alive: {alive}")
    for case, code, text in (result.server_errors + result.forged_not_401)[:10]:
        print(f"  {case.kind} {case.path} -> {code}: {text[:200]} | {case.body[:120]!r}")
    return 0 if not result.server_errors and not result.forged_not_401 and alive and schema_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
