"""Four ``leadwarm serve`` processes on one Firestore emulator against one: the same conversations of
one tenant, nothing lost, nothing sent twice, and the throughput of each printed
(``tests/scale/cluster.py``; ``benchmarks/firestore_scale.py`` runs it with 1,000 conversations)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scale.cluster import run_cluster
from tests.support.firestore_emulator import FirestoreEmulator

pytestmark = pytest.mark.timeout(480)

LEADS = 20


async def test_four_processes_share_one_tenants_conversations_exactly_once(
    firestore_emulator: FirestoreEmulator, tmp_path: Path
) -> None:
    one = await run_cluster(firestore_emulator, tmp_path / "one", processes=1, leads=LEADS)
    print(f"\n[scale] {one.line()}", flush=True)
    four = await run_cluster(firestore_emulator, tmp_path / "four", processes=4, leads=LEADS)
    print(f"[scale] {four.line()}", flush=True)
    print(f"[scale] four processes / one: {four.turns_per_s / one.turns_per_s:.2f}x")
    assert one.sends == four.sends  # the same script, once per lead, whatever the process count
