"""Two ``leadwarm serve`` processes against one Firestore (Google's emulator), one tenant, many leads
writing at once: every inbound message is processed exactly once, every lead gets its replies once,
and no job is left behind.

The scenario is :func:`tests.scale.cluster.run_cluster` with two processes: each lead sends a first
message and, once answered, a second one; deliveries alternate between the processes and every fifth
is delivered again to the other one (a provider retry landing on another instance). WhatsApp is a
recording server on 127.0.0.1 that answers every send with a fresh message id, as Meta does
(:class:`tests.scale.cluster.MetaGraph`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scale.cluster import run_cluster
from tests.support.firestore_emulator import FirestoreEmulator

pytestmark = pytest.mark.timeout(290)

LEADS = 40


async def test_two_processes_share_one_tenants_conversations_exactly_once(
    firestore_emulator: FirestoreEmulator, tmp_path: Path
) -> None:
    result = await run_cluster(firestore_emulator, tmp_path, processes=2, leads=LEADS)
    print(f"\n[scale] {result.line()}", flush=True)
    assert (result.inbound, result.answered, result.lost, result.sent_twice) == (2 * LEADS, 2 * LEADS, 0, 0)
    assert result.deliveries == 2 * (LEADS + LEADS // 5)  # every fifth delivered twice, in both rounds
    assert result.sends == 3 * LEADS  # the script: greeting, first question, second question
    assert result.job_failures == [0, 0]
    # both processes ran transactions, and their statistics reached the log
    assert result.transactions["transactions"] > 0
