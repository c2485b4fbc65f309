"""The dashboard's API with a large tenant: 10,000 leads, 10,000 conversations, 100,000 messages
(SQLite, in-process test client, so the network is left out). Prints ``name: value unit`` lines:
the median and worst of 5 calls of each endpoint a dashboard page reads.

The first call of each endpoint is a cold one (the analytics' per-conversation step cache is empty):
it is the "worst". CPU time is printed beside wall time, since on a shared machine wall time
mostly measures the neighbours.

Usage: ``python benchmarks/dashboard.py [--leads N] [--messages-per-conversation M] [--data-dir D]``
(``--data-dir`` keeps the seeded store and reuses it on the next run).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from litestar.testing import AsyncTestClient  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from app.composition import Runtime  # noqa: E402
from app.core.settings import Settings  # noqa: E402
from app.main import create_app  # noqa: E402
from app.store import Transaction  # noqa: E402
from app.store.collections import CONVERSATIONS, LEADS, messages_collection  # noqa: E402
from app.tenancy.bootstrap import bootstrap  # noqa: E402

KEY = "lw_bench_admin_key"
STEPS = ("greeting", "homeowner", "bill", "roof", "timeline")


async def _seed(rt: Runtime, leads: int, per_conversation: int) -> None:
    now = time.time() - leads
    batch: list[tuple[str, str, dict[str, Any]]] = []

    async def flush() -> None:
        items = list(batch)
        batch.clear()

        async def fn(tx: Transaction) -> None:
            for collection, doc_id, data in items:
                tx.set(collection, doc_id, data)

        await rt.store.run_transaction("demo", fn)

    for i in range(leads):
        lead_id, conv_id = f"ld_{i:08d}", f"cv_{i:08d}"
        at = now + i
        status = ("active", "handoff", "closed", "scheduled")[i % 4]
        batch.append(
            (
                LEADS,
                lead_id,
                {
                    "id": lead_id,
                    "tenant_id": "demo",
                    "name": f"Lead {i}",
                    "phone": f"+3361{i:07d}",
                    "score": i % 101,
                    "stage": ("new", "engaged", "qualified", "handoff")[i % 4],
                    "source": ("api", "inbound", "csv")[i % 3],
                    "created_at": at,
                    "updated_at": at,
                },
            )
        )
        batch.append(
            (
                CONVERSATIONS,
                conv_id,
                {
                    "id": conv_id,
                    "tenant_id": "demo",
                    "lead_id": lead_id,
                    "channel": "whatsapp",
                    "address": f"+3361{i:07d}",
                    "status": status,
                    "playbook_id": "solar-qualification-en",
                    "playbook_version": 1,
                    "current_step": STEPS[i % len(STEPS)],
                    "state": {"score": i % 101, "qualified": i % 3 == 0},
                    "events": [{"at": at, "type": "handoff", "detail": {}}] if status == "handoff" else [],
                    "llm_usage": {"cost_micro_usd": 1200},
                    "created_at": at,
                    "updated_at": at,
                },
            )
        )
        for seq in range(per_conversation):
            batch.append(
                (
                    messages_collection(conv_id),
                    f"m{seq}",
                    {
                        "id": f"m{seq}",
                        "conversation_id": conv_id,
                        "lead_id": lead_id,
                        "seq": seq,
                        "direction": "outbound" if seq % 2 == 0 else "inbound",
                        "sender": "bot" if seq % 2 == 0 else "contact",
                        "channel": "whatsapp",
                        "text": f"message {seq}",
                        "step_id": STEPS[min(seq // 2, len(STEPS) - 1)] if seq % 2 == 0 else None,
                        "created_at": at + seq,
                    },
                )
            )
        if len(batch) >= 2000:
            await flush()
    if batch:
        await flush()


async def main() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--messages-per-conversation", type=int, default=10)
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the seeded store here (reused)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp)
        seeded = (data_dir / ".seeded").exists()
        settings = Settings(
            _env_file=None, leadwarm_data_dir=data_dir, admin_api_key=SecretStr(KEY), log_level="WARNING"
        )
        rt = Runtime.build(settings)
        await bootstrap(rt)
        if not seeded:
            started = time.perf_counter()
            await _seed(rt, args.leads, args.messages_per_conversation)
            print(f"seed: {time.perf_counter() - started:.1f} s", flush=True)
            (data_dir / ".seeded").touch()
        app = create_app(runtime=rt, start_worker=False)
        auth = {"Authorization": f"Bearer {KEY}"}
        async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
            for name, url in (
                ("inbox", "/api/v1/inbox"),
                ("inbox_handoffs", "/api/v1/inbox?status=handoff"),
                ("inbox_min_score", "/api/v1/inbox?min_score=90"),
                ("leads", "/api/v1/leads"),
                ("leads_search", "/api/v1/leads?q=lead%209999"),
                ("leads_csv", "/api/v1/leads.csv"),
                ("conversation", "/api/v1/conversations/cv_00000042"),
                ("conversation_handling", "/api/v1/conversations/cv_00000042/handling"),
                ("lead_overview", "/api/v1/leads/ld_00000042/overview"),
                ("analytics", "/api/v1/analytics/playbooks"),
                ("page_inbox_shell", "/app/signin"),
            ):
                times, cpu = [], []
                for _ in range(5):
                    t0, c0 = time.perf_counter(), time.process_time()
                    response = await client.get(url, headers=auth)
                    times.append((time.perf_counter() - t0) * 1000)
                    cpu.append((time.process_time() - c0) * 1000)
                    assert response.status_code == 200, (url, response.status_code, response.text[:200])
                median, worst = statistics.median(times), max(times)
                # CPU time too: on a shared, loaded machine wall time mostly measures the neighbours.
                print(
                    f"{name}: median {median:.0f} ms, worst {worst:.0f} ms"
                    f" (cpu median {statistics.median(cpu):.0f} ms, worst {max(cpu):.0f} ms)",
                    flush=True,
                )
        await rt.channels.aclose()
        await rt.store.close()


if __name__ == "__main__":
    asyncio.run(main())
