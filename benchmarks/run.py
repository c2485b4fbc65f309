"""LeadWarm benchmarks. Prints one figure a line: ``name: value unit``.

1. Signed WhatsApp and Twilio SMS webhook ingest (``leadwarm serve --no-worker``: verify, parse,
   append to the ingest log, answer) against a bare Litestar endpoint served the same way, in the
   same run, by the same load generator (benchmarks/load.py, whose own CPU per request is printed
   too): requests/s, their ratio to the bare endpoint (same
   round), p50 and p99 latency, min and median of 3 rounds; WhatsApp with DURABILITY=process and
   DURABILITY=power side by side; then open-loop latency at ``--rate`` requests/s (default 500).
2. Per-turn processing cost from inbox to outbox, network left out (web chat channel, SQLite):
   the worker's wall time per turn for first messages and for answers.
3. Prompt tokens per lead turn and the share that is a cacheable static prefix (benchmarks/llm.py).
4. With ``--crm [N]``: CRM sync of N qualified leads per adapter (default 10,000) against fakes that
   enforce the vendors' limits, windows scaled down (benchmarks/crm_sync.py; it runs alone too).
5. Answer turns/s at 1,000 and 100,000 stored messages with transactions and statements per turn,
   100,000 pending timers with 1,000 due at once (lateness, memory), and a 10,000-lead campaign
   paced on WhatsApp and SMS (benchmarks/turns.py; it runs alone too). ``--no-scale`` skips them.
6. With ``--firestore [N]``: N concurrent conversations of one tenant (default 1,000) on one
   Firestore emulator, one ``leadwarm serve`` process then four: answered, lost, sent twice, answer
   turns/s and their ratio, transaction aborts, emulator CPU (benchmarks/firestore_scale.py; it
   runs alone too). ``--firestore-only`` runs only that.

Usage: ``python benchmarks/run.py [--requests N] [--concurrency C] [--rate R] [--ingest-only]
[--leads L] [--crm [N]] [--firestore [N]] [--firestore-only]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.runner import run  # noqa: E402 - the service's own loop (uvloop when installed)
from benchmarks.load import closed_loop, encode_requests, open_loop  # noqa: E402

SECRET = "bench-secret"
PHONE_ID = "106540352242922"
TWILIO_NUMBER = "+15005550006"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(cmd: list[str], env: dict[str, str], health: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(health, timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError(f"{cmd} did not start")


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) the process ``pid`` has used so far (Linux
    ``/proc/<pid>/stat`` fields 14 and 15, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def _webhook(i: int) -> bytes:
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID},
                            "contacts": [{"profile": {"name": "Bench"}, "wa_id": f"3361{i:07d}"}],
                            "messages": [
                                {
                                    "from": f"3361{i:07d}",
                                    "id": f"wamid.bench.{i}",
                                    "timestamp": "1763000000",
                                    "type": "text",
                                    "text": {"body": "Hello, I'd like a quote"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(body).encode()


def _sign(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def _twilio(i: int, url: str) -> tuple[bytes, dict[str, str]]:
    """A signed Twilio inbound-SMS webhook (form body, X-Twilio-Signature over URL + params)."""
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator

    params = {
        "MessageSid": f"SM{i:032d}",
        "AccountSid": "AC" + "0" * 32,
        "From": f"+3361{i:07d}",
        "To": TWILIO_NUMBER,
        "Body": "Hello, I'd like a quote",
        "NumMedia": "0",
    }
    signature = RequestValidator(SECRET).compute_signature(url, params)
    return urlencode(params).encode(), {
        "X-Twilio-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _print_closed_loop(
    results: dict[str, list[tuple[float, list[float]]]],
    targets: dict[str, str],
    cpu: dict[str, list[float]] | None = None,
) -> None:
    """Closed-loop figures: requests/s and latencies (min and median of the rounds), and each
    target's ratio to the bare endpoint measured in the same round; with ``cpu`` (server CPU
    seconds per request, per round), the CPU per request and its ratio to the bare endpoint's."""
    for name, runs in results.items():
        label = name if name == "bare" else f"{name}_webhook"
        rps = [r[0] for r in runs]
        print(f"{label}_requests_per_s: min {min(rps):.0f} median {_median(rps):.0f} req/s")
        p50 = [_pct(r[1], 0.50) * 1000 for r in runs]
        p99 = [_pct(r[1], 0.99) * 1000 for r in runs]
        print(f"{label}_p50_latency: min {min(p50):.2f} median {_median(p50):.2f} ms")
        print(f"{label}_p99_latency: min {min(p99):.2f} median {_median(p99):.2f} ms")
    bare_rps = [r[0] for r in results["bare"]]
    for name in [n for n in targets if n != "bare"]:
        ratios = [r[0] / b for r, b in zip(results[name], bare_rps, strict=True)]  # same round
        print(
            f"{name}_webhook_to_bare_throughput_ratio: min {min(ratios):.2f} median {_median(ratios):.2f} x"
        )
    if cpu is None:
        return
    for name, per_request in cpu.items():
        label = name if name == "bare" else f"{name}_webhook"
        us = [c * 1e6 for c in per_request]
        print(f"{label}_server_cpu_per_request: min {min(us):.0f} median {_median(us):.0f} us")
    for name in [n for n in targets if n != "bare"]:
        # bare CPU / ours: the throughput ratio CPU-bound servers would reach (1.0 = as cheap)
        ratios = [b / c for c, b in zip(cpu[name], cpu["bare"], strict=True)]
        print(
            f"{name}_webhook_to_bare_cpu_ratio: min {min(ratios):.2f} median {_median(ratios):.2f} x"
            " (bare CPU per request / ours)"
        )


def bench_ingest(requests: int, concurrency: int, *, rate: float = 500.0, rounds: int = 3) -> None:
    """Webhook ingest vs the bare endpoint, alternating rounds in one run: closed-loop throughput
    (min and median of ``rounds``), then open-loop latency at ``rate`` requests/s. LeadWarm runs
    twice side by side: DURABILITY=process (a kill-safe 200) and DURABILITY=power (fsync)."""
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        bare_port = _free_port()
        ports = {"process": _free_port(), "power": _free_port()}
        base_env = {
            **os.environ,
            "WHATSAPP_APP_SECRET": SECRET,
            "WHATSAPP_TOKEN": "x",
            "WHATSAPP_PHONE_ID": PHONE_ID,
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": SECRET,
            "TWILIO_PHONE_NUMBER": TWILIO_NUMBER,
            "ADMIN_API_KEY": "lw_bench",
            "LOG_LEVEL": "WARNING",
            # one load generator on one address: the per-address abuse limit would measure itself
            "RATE_LIMIT_WEBHOOKS_PER_SECOND": "1000000",
        }
        bare = _start(
            [
                str(bin_dir / "uvicorn"),
                "benchmarks.bare_app:app",
                "--port",
                str(bare_port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            base_env,
            f"http://127.0.0.1:{bare_port}/",
        )
        servers = [bare]
        targets = {"bare": f"http://127.0.0.1:{bare_port}/bare"}
        pids = {"bare": bare.pid}
        try:
            for durability, port in ports.items():
                env = {
                    **base_env,
                    "LEADWARM_DATA_DIR": f"{tmp}/{durability}",
                    "DURABILITY": durability,
                    "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
                }
                servers.append(
                    _start(
                        [str(bin_dir / "leadwarm"), "serve", "--no-worker", "--port", str(port)],
                        env,
                        f"http://127.0.0.1:{port}/health",
                    )
                )
                suffix = "" if durability == "process" else "_power"
                targets[f"whatsapp{suffix}"] = f"http://127.0.0.1:{port}/api/webhooks/whatsapp"
                pids[f"whatsapp{suffix}"] = servers[-1].pid
                if durability == "process":
                    targets["twilio"] = f"http://127.0.0.1:{port}/api/webhooks/twilio/sms"
                    pids["twilio"] = servers[-1].pid
            results: dict[str, list[tuple[float, list[float]]]] = {name: [] for name in targets}
            open_loop_runs: dict[str, list[tuple[float, list[float]]]] = {name: [] for name in targets}
            counter = 0

            def batch(name: str, n: int) -> list[tuple[bytes, dict[str, str]]]:
                nonlocal counter
                counter += n
                if name == "twilio":
                    return [_twilio(counter + i, targets["twilio"]) for i in range(n)]
                return [(b, _sign(b)) for b in (_webhook(counter + i) for i in range(n))]

            cpu: dict[str, list[float]] = {name: [] for name in targets}
            client_cpu: list[float] = []
            for _round in range(rounds):
                for name, url in targets.items():
                    load = encode_requests(url, batch(name, requests))
                    used = _cpu_s(pids[name])
                    rps, latencies, client = run(
                        closed_loop(url, load, concurrency)
                    )  # uvloop, as the servers
                    results[name].append((rps, latencies))
                    cpu[name].append((_cpu_s(pids[name]) - used) / requests)
                    client_cpu.append(client)
            _print_closed_loop(results, targets, cpu)
            print(
                f"load_generator_cpu_per_request: min {min(client_cpu) * 1e6:.0f} "
                f"median {_median(client_cpu) * 1e6:.0f} us (benchmarks/load.py)"
            )
            for _round in range(rounds):
                for name, url in targets.items():
                    if name == "twilio":
                        continue
                    n = int(rate * 2)  # two seconds at the rate
                    load = encode_requests(url, batch(name, n))
                    # asyncio's loop, not uvloop's: its timers keep whole milliseconds, which would
                    # start each request up to 1 ms late (and charge that to its latency)
                    open_loop_runs[name].append(asyncio.run(open_loop(url, load, rate)))
        finally:
            for proc in servers:
                _stop(proc)
    for name, runs in open_loop_runs.items():
        if not runs:
            continue
        label = name if name == "bare" else f"{name}_webhook"
        p50 = [_pct(r[1], 0.50) * 1000 for r in runs]
        p99 = [_pct(r[1], 0.99) * 1000 for r in runs]
        achieved = [r[0] for r in runs]
        lost = sum(1 for r in runs for v in r[1] if v == float("inf"))
        print(
            f"{label}_open_loop_{rate:.0f}_per_s: achieved median {_median(achieved):.0f} req/s, "
            f"p50 min {min(p50):.2f} median {_median(p50):.2f} ms, "
            f"p99 min {min(p99):.2f} median {_median(p99):.2f} ms, failed {lost}"
        )
    print(f"ingest_concurrency: {concurrency} connections; rounds: {rounds}")


async def _turns(leads: int) -> None:
    from pydantic import SecretStr

    from app.composition import Runtime
    from app.core.logs import configure_logging
    from app.core.settings import Settings
    from app.tenancy.bootstrap import bootstrap
    from channels.webchat import WebChatChannel

    configure_logging(level="ERROR")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(  # burst window 0: this measures processing, not waiting
            _env_file=None,
            leadwarm_data_dir=Path(tmp),
            admin_api_key=SecretStr("lw_bench"),
            log_level="ERROR",
            burst_window_seconds=0.0,
        )
        runtime = Runtime.build(settings, channels={"webchat": WebChatChannel()})
        await bootstrap(runtime)
        channel = runtime.webchat()

        async def round_(text: str, tag: str) -> float:
            for i in range(leads):
                frame = json.dumps({"type": "message", "id": f"{tag}-{i}", "text": text}).encode()
                for message in channel.parse({"x-session-id": f"bench_session_{i:05d}"}, frame).messages:
                    await runtime.accept("demo", message)
            start = time.perf_counter()
            await runtime.worker.drain()
            return time.perf_counter() - start

        first = await round_("Hi, I'd like a quote for solar panels", "a")
        answer = await round_("yes I own it", "b")
        await runtime.store.close()
    print(f"turn_first_message_cost: {first / leads * 1000:.2f} ms/turn")
    print(f"turn_answer_cost: {answer / leads * 1000:.2f} ms/turn")
    print(f"turn_throughput: {2 * leads / (first + answer):.0f} turns/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--leads", type=int, default=200)
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop webhook rate, requests/s")
    parser.add_argument("--ingest-only", action="store_true", help="only the webhook ingest figures")
    parser.add_argument(
        "--crm", type=int, nargs="?", const=10_000, default=0, help="CRM sync leads per adapter"
    )
    parser.add_argument("--no-scale", action="store_true", help="skip benchmarks/turns.py")
    parser.add_argument(
        "--firestore", type=int, nargs="?", const=1000, default=0, help="Firestore emulator conversations"
    )
    parser.add_argument("--firestore-only", action="store_true", help="only the Firestore figures")
    args = parser.parse_args()
    if args.firestore_only:
        _firestore(args.firestore or 1000)
        return
    bench_ingest(args.requests, args.concurrency, rate=args.rate)
    if args.ingest_only:
        return
    run(_turns(args.leads))
    from benchmarks.llm import bench_prompt_tokens

    for line in bench_prompt_tokens():
        print(line)
    if not args.no_scale:
        from benchmarks.turns import bench_campaign, bench_timers_alone, bench_turn_scaling

        for line in [*bench_turn_scaling(leads=args.leads), *bench_timers_alone(), *bench_campaign()]:
            print(line)
    if args.crm:
        from benchmarks.crm_sync import bench_crm_sync

        for line in bench_crm_sync(args.crm, seconds=max(60.0, args.crm / 8)):
            print(line)
    if args.firestore:
        _firestore(args.firestore)


def _firestore(leads: int) -> None:
    """Section 6: benchmarks/firestore_scale.py with ``leads`` conversations, 1 then 4 processes."""
    from benchmarks.firestore_scale import main as firestore_main

    firestore_main(["--leads", str(leads), "--processes", "4"])


if __name__ == "__main__":
    main()
