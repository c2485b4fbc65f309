"""100 worst-case messages (WhatsApp texts of 65,536 characters without a space, 5 MB e-mails,
JSON nested 200,000 deep, 60 KB SMS) through a served instance while ``/health`` is polled every
20 ms; prints the ``/health`` p50/p99/max, the answers by status and how many accepted messages
were answered. The messages are ``tests/hardening/worst_case.py``.

By default turns run in a ``leadwarm worker`` process beside ``leadwarm serve --no-worker`` (the
layout SECURITY.md names for this promise); ``--in-process`` runs them in the web process instead.

Usage: ``python benchmarks/worst_case.py [--count N] [--in-process] [--worker-nice N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hardening.serving import serving  # noqa: E402
from tests.hardening.worst_case import deliveries, run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--worker-nice", type=int, default=0, help="niceness of the worker process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, serving(Path(tmp)) as start:
        served = start(
            worker_apart=not args.in_process,
            worker_nice=args.worker_nice,
            WORKER_CONCURRENCY="2",
            LOG_LEVEL="ERROR",
        )
        # the same poller with no traffic first: what this machine's load alone costs /health
        baseline = asyncio.run(run(served, [], min_duration_s=10))
        result = asyncio.run(run(served, deliveries(args.count), answer_timeout_s=600))
    p99 = result.percentile(0.99)
    where = "in process" if args.in_process else "apart"
    print(f"worst_case_messages: {args.count} in {result.elapsed_s:.1f} s (worker {where})")
    print(f"worst_case_statuses: {dict(sorted(result.statuses.items()))}")
    print(f"worst_case_answered: {result.answered}/{len(result.accepted)} accepted")
    print(f"worst_case_quarantined: {result.quarantined} deliveries")
    print(
        f"health_latency: p50 {result.percentile(0.5) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"max {max(result.health_s) * 1000:.1f} ms over {len(result.health_s)} polls, "
        f"{result.health_failures} failed"
    )
    print(
        f"health_latency_idle: p50 {baseline.percentile(0.5) * 1000:.1f} ms, "
        f"p99 {baseline.percentile(0.99) * 1000:.1f} ms over {len(baseline.health_s)} polls (no traffic)"
    )
    ok = p99 < 0.1 and result.answered == len(result.accepted) and not result.health_failures
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
