"""The playbook pages and the editor's workbench API with a tenant of many playbooks (SQLite,
in-process test client, so the network is left out). Prints ``name: value unit`` lines: the median
and worst of N calls of each endpoint the playbook pages call (the list, the routes, a version's
source, live validation of the shipped French playbook, one simulator turn of it).

Usage: ``python benchmarks/playbook_workbench.py [--playbooks N] [--versions V] [--calls C]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
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
from app.tenancy.bootstrap import bootstrap  # noqa: E402
from playbooks import LIBRARY_DIR  # noqa: E402

KEY = "lw_bench_admin_key"
FRENCH = (LIBRARY_DIR / "renovation-qualification-fr.yaml").read_text(encoding="utf-8")


async def _timed(calls: int, fn: Any) -> tuple[float, float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


async def main(playbooks: int, versions: int, calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None, leadwarm_data_dir=Path(tmp), admin_api_key=SecretStr(KEY), log_level="WARNING"
        )
        rt = Runtime.build(settings)
        await bootstrap(rt)
        for i in range(playbooks):
            for v in range(1, versions + 1):
                source = FRENCH.replace("id: renovation-qualification-fr", f"id: bench-{i:04d}").replace(
                    "version: 1", f"version: {v}"
                )
                await rt.playbooks.save("demo", source, origin="bench.yaml")
        auth = {"Authorization": f"Bearer {KEY}"}
        app = create_app(runtime=rt, start_worker=False)
        async with AsyncTestClient(app=app, base_url="http://127.0.0.1") as client:
            started = (
                await client.post(
                    "/api/v1/playbooks/simulate",
                    json={"source": FRENCH, "session_language": "fr", "action": {"kind": "start"}},
                    headers=auth,
                )
            ).json()

            async def check(response: Any) -> None:
                assert response.status_code == 200, response.text

            edits = itertools.count()
            cases = {
                "playbooks_list": lambda: client.get("/api/v1/playbooks", headers=auth),
                "playbook_routes": lambda: client.get("/api/v1/playbook-routes", headers=auth),
                "version_source": lambda: client.get("/api/v1/playbooks/bench-0000/versions/1", headers=auth),
                # A new text each call (as each keystroke makes one): the loader really runs.
                "validate_fr_playbook": lambda: client.post(
                    "/api/v1/playbooks/validate",
                    json={"source": f"{FRENCH}\n# {next(edits)}\n"},
                    headers=auth,
                ),
                "simulate_turn": lambda: client.post(
                    "/api/v1/playbooks/simulate",
                    json={
                        "source": FRENCH,
                        "session": started["session"],
                        "action": {"kind": "say", "text": "oui"},
                    },
                    headers=auth,
                ),
                "simulate_advance_1d": lambda: client.post(
                    "/api/v1/playbooks/simulate",
                    json={
                        "source": FRENCH,
                        "session": started["session"],
                        "action": {"kind": "advance", "seconds": 86400},
                    },
                    headers=auth,
                ),
            }
            print(f"playbooks: {playbooks * versions} versions ({playbooks} playbooks)")
            for name, call in cases.items():

                async def run(call: Any = call) -> None:
                    await check(await call())

                median, worst = await _timed(calls, run)
                print(f"{name}_median: {median:.1f} ms")
                print(f"{name}_worst: {worst:.1f} ms")
        await rt.store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--playbooks", type=int, default=50)
    parser.add_argument("--versions", type=int, default=4)
    parser.add_argument("--calls", type=int, default=9)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(main(args.playbooks, args.versions, args.calls))
