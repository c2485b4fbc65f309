"""The CSV import of leads (SQLite, in-process test client): a file of N rows (default 10,000, 2%
bad) against a tenant that already has M leads (default 10,000). Prints ``name: value unit`` lines:
the upload (parse and check of every row), the job (batches of 100 rows, each one transaction),
the rows per second, the slowest batch (how long one job run holds a worker slot), the progress
poll and the report.

Usage: ``python benchmarks/lead_import.py [--rows N] [--existing M]``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from litestar.testing import AsyncTestClient  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from app.composition import Runtime  # noqa: E402
from app.core.settings import Settings  # noqa: E402
from app.main import create_app  # noqa: E402
from app.store import Transaction  # noqa: E402
from app.store.collections import LEADS  # noqa: E402
from app.tenancy.bootstrap import bootstrap  # noqa: E402

KEY = "lw_bench_admin_key"


def _file(rows: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["name", "email", "phone", "consent"])
    for i in range(rows):
        phone = "12345" if i % 50 == 0 else f"+336{i:08d}"
        writer.writerow([f"Imported {i}", f"imp{i}@example.com", phone, "yes"])
    return buffer.getvalue().encode()


async def _seed(rt: Runtime, existing: int) -> None:
    for start in range(0, existing, 500):

        async def fn(tx: Transaction, start: int = start) -> None:
            for i in range(start, min(existing, start + 500)):
                tx.set(
                    LEADS,
                    f"ld_{i:08d}",
                    {
                        "id": f"ld_{i:08d}",
                        "tenant_id": "demo",
                        "email": f"old{i}@example.com",
                        "phone": f"+337{i:08d}",
                        "created_at": float(i),
                        "updated_at": float(i),
                    },
                )

        await rt.store.run_transaction("demo", fn)


async def main() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--existing", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,
            leadwarm_data_dir=Path(tmp),
            admin_api_key=SecretStr(KEY),
            log_level="WARNING",
        )
        rt = Runtime.build(settings)
        await bootstrap(rt)
        await _seed(rt, args.existing)
        app = create_app(runtime=rt, start_worker=False)
        auth = {"Authorization": f"Bearer {KEY}"}
        body = _file(args.rows)
        async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
            t0 = time.perf_counter()
            response = await client.post(
                "/api/v1/leads/imports", files={"file": ("leads.csv", body, "text/csv")}, headers=auth
            )
            upload_s = time.perf_counter() - t0
            assert response.status_code == 202, response.text[:300]
            imp = response.json()
            print(f"upload ({args.rows} rows, {len(body) // 1024} KiB): {upload_s * 1000:.0f} ms", flush=True)
            batches: list[float] = []
            t0 = time.perf_counter()
            while True:
                b0 = time.perf_counter()
                started = await rt.worker.run_once()
                for task in list(rt.worker._running):
                    await task
                if not started:
                    break
                batches.append(time.perf_counter() - b0)
            job_s = time.perf_counter() - t0
            state = (await client.get(f"/api/v1/leads/imports/{imp['id']}", headers=auth)).json()
            assert state["status"] == "done", state
            print(f"job: {job_s:.1f} s, {args.rows / job_s:.0f} rows/s, {len(batches)} runs", flush=True)
            median_ms, worst_ms = statistics.median(batches) * 1000, max(batches) * 1000
            print(f"batch: median {median_ms:.0f} ms, worst {worst_ms:.0f} ms")
            print(f"imported: {state['imported']}, refused: {state['refused']}")
            for name, url in (
                ("progress_poll", f"/api/v1/leads/imports/{imp['id']}"),
                ("report", f"/api/v1/leads/imports/{imp['id']}/report"),
                ("page_import_shell", "/app/signin"),
            ):
                times = []
                for _ in range(5):
                    t1 = time.perf_counter()
                    assert (await client.get(url, headers=auth)).status_code == 200
                    times.append((time.perf_counter() - t1) * 1000)
                print(
                    f"{name}: median {statistics.median(times):.0f} ms, worst {max(times):.0f} ms", flush=True
                )
        await rt.channels.aclose()
        await rt.store.close()


if __name__ == "__main__":
    asyncio.run(main())
