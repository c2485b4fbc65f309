"""CPU per signed WhatsApp webhook, in process, against the bare Litestar endpoint.

Both ASGI apps are driven directly (no socket, no server): ``concurrency`` tasks each send
requests one after the other, so the group commit sees concurrent requests as it does when served.
Prints, per app, process CPU time per request (``time.process_time``: the event loop AND the
SQLite writer thread, so the ratio holds on a loaded machine) and their ratio. ``--profile``
writes a cProfile of LeadWarm's run to ``PATH`` (read it with ``python -m pstats PATH``).

On a shared machine CPU time still varies by +-30 % from run to run (other processes' load on the
same cores and caches). ``--callgrind`` counts instructions instead, which do not vary: run under
``valgrind --tool=callgrind --instr-atstart=no``, it switches counting on (``callgrind_control``)
for the measured requests only, then valgrind prints ``Collected : N`` (all threads); divide by
``--requests`` (the figures of issue 15: 570k instructions a WhatsApp webhook before, 495k after
its second round of cuts; 400 requests, concurrency 16, about 4 minutes under valgrind).

``--channel twilio`` sends signed Twilio inbound SMS (form bodies, ``X-Twilio-Signature`` over
PUBLIC_BASE_URL + path) to ``/api/webhooks/twilio/sms`` instead of WhatsApp's JSON.

Usage: ``python benchmarks/ingest_cpu.py [--requests N] [--concurrency C] [--durability process|power]
[--channel whatsapp|twilio] [--profile PATH] [--callgrind] [--bare-only|--ours-only]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run import PHONE_ID, SECRET, TWILIO_NUMBER, _sign, _twilio, _webhook  # noqa: E402

__all__ = ["LOOP_CPU", "drive", "main"]

#: The public base URL the app is told (PUBLIC_BASE_URL): Twilio signs it with the path.
_BASE_URL = "http://127.0.0.1:8000"
#: The webhook path of each channel this harness sends.
_PATHS = {"whatsapp": "/api/webhooks/whatsapp", "twilio": "/api/webhooks/twilio/sms"}

#: CPU seconds of the event loop's thread alone, one entry per :func:`drive` call.
LOOP_CPU: list[float] = []


async def drive(app: Any, path: str, bodies: list[tuple[bytes, dict[str, str]]], concurrency: int) -> float:
    """Send every ``(body, headers)`` as a POST to ``path`` through the ASGI ``app`` with
    ``concurrency`` tasks; returns the process CPU seconds spent. Raises ``RuntimeError`` on any
    answer other than 200."""
    queue = list(reversed(bodies))

    async def one(body: bytes, headers: dict[str, str]) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
            + [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        if status != [200]:
            raise RuntimeError(f"{path} answered {status}")

    async def worker() -> None:
        while queue:
            body, headers = queue.pop()
            await one(body, headers)

    start, loop_start = time.process_time(), time.thread_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    LOOP_CPU.append(time.thread_time() - loop_start)
    return time.process_time() - start


def _signed(channel: str, numbers: range) -> list[tuple[bytes, dict[str, str]]]:
    """Signed webhook ``(body, headers)`` of ``channel``, one per number (each its own message)."""
    if channel == "twilio":
        return [_twilio(i, _BASE_URL + _PATHS["twilio"]) for i in numbers]
    return [(b, _sign(b)) for b in (_webhook(i) for i in numbers)]


async def _lifespan(app: Any, run: Callable[[], Any]) -> Any:
    """Run ``run()`` inside the app's lifespan (startup, then shutdown)."""
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    done: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await events.put({"type": "lifespan.startup"})

    async def send(message: dict[str, Any]) -> None:
        await done.put(message)

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, events.get, send))
    started = await done.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"startup failed: {started}")
    try:
        return await run()
    finally:
        await events.put({"type": "lifespan.shutdown"})
        await done.get()
        await task


def main() -> None:
    """Parse the options, run bare then LeadWarm, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--durability", default="process")
    parser.add_argument("--channel", choices=("whatsapp", "twilio"), default="whatsapp")
    parser.add_argument("--profile", default="")
    parser.add_argument("--callgrind", action="store_true", help="count instructions (see the docstring)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--bare-only", action="store_true")
    which.add_argument("--ours-only", action="store_true")
    args = parser.parse_args()

    def counting(on: bool) -> None:
        if args.callgrind:  # valgrind's own switch for this process (instructions counted or not)
            subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())], check=True)

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(
            {
                "WHATSAPP_APP_SECRET": SECRET,
                "WHATSAPP_TOKEN": "x",
                "WHATSAPP_PHONE_ID": PHONE_ID,
                "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
                "TWILIO_AUTH_TOKEN": SECRET,
                "TWILIO_PHONE_NUMBER": TWILIO_NUMBER,
                "PUBLIC_BASE_URL": _BASE_URL,
                "ADMIN_API_KEY": "lw_bench",
                "LOG_LEVEL": "WARNING",
                "RATE_LIMIT_WEBHOOKS_PER_SECOND": "1000000",
                "LEADWARM_DATA_DIR": tmp,
                "DURABILITY": args.durability,
            }
        )
        from app.main import create_app
        from benchmarks.bare_app import app as bare

        ours = create_app(start_worker=False)
        n = args.requests
        path = _PATHS[args.channel]
        warm = _signed(args.channel, range(10_000_000, 10_000_200))
        bodies = _signed(args.channel, range(n))

        async def run_bare() -> float:
            await drive(bare, "/bare", warm, args.concurrency)
            counting(True)
            cpu = await drive(bare, "/bare", bodies, args.concurrency)
            counting(False)
            return cpu

        async def run_ours() -> float:
            await drive(ours, path, warm, args.concurrency)
            profiler = cProfile.Profile() if args.profile else None
            if profiler:
                profiler.enable()
            counting(True)
            cpu = await drive(ours, path, bodies, args.concurrency)
            counting(False)
            if profiler:
                profiler.disable()
                profiler.dump_stats(args.profile)
            return cpu

        bare_cpu = 0.0 if args.ours_only else asyncio.run(_lifespan(bare, run_bare))
        ours_cpu = 0.0 if args.bare_only else asyncio.run(_lifespan(ours, run_ours))
    if bare_cpu:
        print(f"bare_cpu_per_request: {bare_cpu / n * 1e6:.0f} us")
    if ours_cpu:
        print(f"{args.channel}_{args.durability}_cpu_per_request: {ours_cpu / n * 1e6:.0f} us")
        print(f"{args.channel}_{args.durability}_event_loop_cpu_per_request: {LOOP_CPU[-1] / n * 1e6:.0f} us")
    if bare_cpu and ours_cpu:
        print(f"{args.channel}_{args.durability}_to_bare_cpu_ratio: {ours_cpu / bare_cpu:.2f} x")


if __name__ == "__main__":
    main()
