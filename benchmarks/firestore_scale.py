"""Firestore at scale: one tenant's concurrent conversations on one process, then on four, one emulator.

Starts Google's Firestore emulator on 127.0.0.1 (``tests/support/firestore_emulator.py``: needs gcloud
and Java) and a recording stand-in for WhatsApp's Graph API, then runs the scenario of
``tests/scale/cluster.py`` (every lead writes twice, a fifth of the deliveries duplicated on another
process) with one service for the reference, then with ``--processes`` services. It checks that
nothing was lost and nothing sent twice, and prints one figure a line for each: conversations,
messages, answered, lost, sent twice, answer turns/s, transactions (attempts, ``ABORTED`` by
Firestore, wait-die retries, in-process lock waits), CPU of the emulator and of the services, and
the ratio::

    firestore.1p.turns_per_s: ... answer turns/s
    firestore.4p.turns_per_s: ... answer turns/s
    firestore.4p_vs_1p: ...x

Usage: ``python benchmarks/firestore_scale.py [--leads 1000] [--processes 4] [--deadline 1500] [--no-single]``
(``python benchmarks/run.py --firestore`` runs it with the defaults). The emulator is a single
Java process: on a small machine it, not LeadWarm, is often the limit (see its CPU line).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import EMULATOR_PROJECT, RULES  # noqa: E402
from tests.scale.cluster import ClusterResult, run_cluster  # noqa: E402
from tests.support.firestore_emulator import running_firestore_emulator  # noqa: E402


async def bench(leads: int, processes: int, deadline_s: float, *, single: bool = True) -> list[ClusterResult]:
    """Run the scenario with one process (unless ``single`` is false), then with ``processes``;
    return the results."""
    results = []
    with (
        running_firestore_emulator(project=EMULATOR_PROJECT, rules=RULES) as emulator,
        tempfile.TemporaryDirectory(prefix="leadwarm-fs-bench-") as tmp,
    ):
        for count in dict.fromkeys((1, processes) if single else (processes,)):
            result = await run_cluster(
                emulator, Path(tmp) / f"p{count}", processes=count, leads=leads, phase_deadline_s=deadline_s
            )
            print(f"# {result.line()}", flush=True)
            results.append(result)
    return results


def report(results: list[ClusterResult], processes: int) -> list[str]:
    """The printed figures: per process count, what was done and what it cost; then the ratio."""
    lines = []
    for r in results:
        p = f"firestore.{r.processes}p"
        tx = r.transactions
        lines += [
            f"{p}.conversations: {r.leads}",
            f"{p}.messages: {r.inbound} inbound ({r.deliveries} deliveries), {r.sends} sent",
            f"{p}.answered: {r.answered}",
            f"{p}.lost: {r.lost}",
            f"{p}.sent_twice: {r.sent_twice}",
            f"{p}.turns_per_s: {r.turns_per_s:.1f} answer turns/s ({r.wall_s:.1f} s wall)",
            f"{p}.transactions: {tx.get('transactions', 0)} ({tx.get('attempts', 0)} attempts, "
            f"{tx.get('aborted', 0)} aborted by Firestore, {tx.get('died', 0)} wait-die retries, "
            f"{tx.get('lock_waits', 0)} in-process lock waits, {tx.get('lock_wait_s', 0)} s waited)",
            f"{p}.cpu: emulator {r.cpu_s.get('emulator', 0):.1f} s "
            f"({r.cpu_s.get('emulator', 0) / r.wall_s:.2f} cores), services "
            f"{r.cpu_s.get('services', 0):.1f} s ({r.cpu_s.get('services', 0) / r.wall_s:.2f} cores), "
            f"machine busy {r.machine_busy:.0%} of {os.cpu_count()} cores",
        ]
        for name, k in list(tx.get("kinds", {}).items())[:8]:
            lines.append(
                f"# {p} tx {name}: {k['transactions']} tx, {k['attempts']} attempts, "
                f"{k['aborted']} aborted, {k['died']} died, {k['seconds']:.1f} s"
            )
        calls = tx.get("calls", {})
        requests = sum(calls.values()) + sum(k["attempts"] for k in tx.get("kinds", {}).values())
        lines.append(
            f"{p}.store_calls: {requests / max(1, r.answered):.1f} per answer turn (transaction "
            f"attempts and {', '.join(f'{n} {m}' for m, n in calls.items())})"
        )
        for path, waits in tx.get("hot", []):
            lines.append(f"# {p} hot document: {path} ({waits} waits)")
    if len(results) == 2:
        ratio = results[1].turns_per_s / results[0].turns_per_s
        lines.append(f"firestore.{processes}p_vs_1p: {ratio:.2f}x")
    return lines


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1000, help="concurrent conversations of one tenant")
    parser.add_argument("--processes", type=int, default=4, help="leadwarm serve processes")
    parser.add_argument("--deadline", type=float, default=1500.0, help="seconds allowed per phase")
    parser.add_argument("--no-single", action="store_true", help="skip the one-process reference run")
    args = parser.parse_args(argv)
    if args.leads < 1 or args.processes < 1:
        parser.error("--leads and --processes must be >= 1")
    print(f"# load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    results = asyncio.run(bench(args.leads, args.processes, args.deadline, single=not args.no_single))
    print(f"# load average after: {os.getloadavg()[0]:.1f}")
    for line in report(results, args.processes):
        print(line)


if __name__ == "__main__":
    main()
