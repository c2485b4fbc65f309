"""Firestore at scale: one tenant's concurrent conversations on one process, then on four, one emulator.

Starts Google's Firestore emulator on 127.0.0.1 (``tests/support/firestore_emulator.py``: needs gcloud
and Java) and a recording stand-in for WhatsApp's Graph API, then runs the scenario of
``tests/scale/cluster.py`` (every lead writes twice, a fifth of the deliveries duplicated on another
process) with ``--processes`` services, and once with one service for the reference. It checks that
nothing was lost and nothing sent twice, and prints one figure a line::

    firestore.1p.messages_per_s: ...
    firestore.4p.messages_per_s: ...
    firestore.4p_vs_1p: ...x

Usage: ``python benchmarks/firestore_scale.py [--leads 1000] [--processes 4] [--deadline 900]``.
The emulator is a single Java process: on a small machine it, not LeadWarm, is often the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import EMULATOR_PROJECT, RULES  # noqa: E402
from tests.scale.cluster import ClusterResult, run_cluster  # noqa: E402
from tests.support.firestore_emulator import running_firestore_emulator  # noqa: E402
from tests.support.recording import RecordingServer  # noqa: E402


async def bench(leads: int, processes: int, deadline_s: float) -> list[ClusterResult]:
    """Run the scenario with one process, then with ``processes``; return both results."""
    results = []
    with (
        running_firestore_emulator(project=EMULATOR_PROJECT, rules=RULES) as emulator,
        tempfile.TemporaryDirectory(prefix="leadwarm-fs-bench-") as tmp,
    ):
        for count in dict.fromkeys((1, processes)):
            graph = RecordingServer()
            try:
                result = await run_cluster(
                    emulator,
                    graph,
                    Path(tmp) / f"p{count}",
                    processes=count,
                    leads=leads,
                    phase_deadline_s=deadline_s,
                )
            finally:
                graph.close()
            print(f"# {result.line()}", flush=True)
            results.append(result)
    return results


def main() -> None:
    """Parse the options, run, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1000, help="concurrent conversations of one tenant")
    parser.add_argument("--processes", type=int, default=4, help="leadwarm serve processes")
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds allowed per phase")
    args = parser.parse_args()
    if args.leads < 1 or args.processes < 1:
        parser.error("--leads and --processes must be >= 1")
    results = asyncio.run(bench(args.leads, args.processes, args.deadline))
    for result in results:
        print(f"firestore.{result.processes}p.messages_per_s: {result.messages_per_s:.1f} msg/s")
        print(f"firestore.{result.processes}p.wall: {result.wall_s:.1f} s")
    if len(results) == 2:
        ratio = results[1].messages_per_s / results[0].messages_per_s
        print(f"firestore.{args.processes}p_vs_1p: {ratio:.2f}x")


if __name__ == "__main__":
    main()
