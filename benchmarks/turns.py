"""Turn, timer and campaign benchmarks (issue 15, points 2, 3 and 5). Each function returns the
lines it prints (``name: value unit``); ``python benchmarks/turns.py`` runs them all.

1. :func:`bench_turn_scaling`: answer turns per second on SQLite (web chat, network left out; on uvloop,
   the loop `leadwarm serve` runs on: :mod:`app.core.runner`) in a
   store already holding 1,000 and 100,000 stored messages (seeded by direct inserts: inbox
   items, conversation messages, outbox items, leads and conversations), min and median of 3
   rounds, with the transactions and statements per answer turn (SQLite's own trace, in one more
   round of the same turns that is not timed: the trace callback costs a turn about 4 %).
2. :func:`bench_timers`: 100,000 pending timers, 1,000 of them falling due at the same instant;
   a worker (default concurrency) runs them with a handler shaped like a timer turn's commit (one
   transaction that writes and completes the job, no playbook): the lateness (handler start -
   due_at) p50/p99/max, and the process's peak memory (VmHWM).
3. :func:`bench_campaign`: 10,000 leads started at once on WhatsApp (one number) and on SMS (a US
   long code and a toll-free number), spread over four time zones. Simulated on a ManualClock
   through the real outbound rules (``app.policy.rules.decide``: quiet hours) and the real
   :class:`app.messaging.pacing.SendPacer`, in the dispatcher's order (gate, then pacer; a paced
   or deferred send is rescheduled for its time): real time would take hours at 1 SMS/s. Prints
   the time to the last first touch, the busiest second per sender against its limit, and the
   sends that fell in a lead's quiet hours (must be 0).
"""

from __future__ import annotations

import asyncio
import heapq
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.runner import run  # noqa: E402 - the service's own loop (uvloop when installed)


# --------------------------------------------------------------------------- profiling
def _profiler() -> Any:
    """A running ``cProfile.Profile`` of the event loop's thread when ``LEADWARM_BENCH_PROFILE``
    names a folder (the stats go there, :func:`_dump_profile`), else ``None``."""
    import os

    if not os.environ.get("LEADWARM_BENCH_PROFILE"):
        return None
    import cProfile

    profile = cProfile.Profile()
    profile.enable()
    return profile


def _dump_profile(profile: Any, name: str) -> None:
    """Stop ``profile`` (from :func:`_profiler`) and write ``{name}.prof`` to the folder."""
    import os

    if profile is None:
        return
    profile.disable()
    folder = Path(os.environ["LEADWARM_BENCH_PROFILE"])
    folder.mkdir(parents=True, exist_ok=True)
    profile.dump_stats(str(folder / f"{name}.prof"))


# --------------------------------------------------------------------------- turns
def _seed_messages(store: Any, tenant: str, count: int) -> None:
    """Insert ``count`` stored messages (and their inbox, outbox, lead and conversation
    documents) straight into the SQLite table, with their indexed columns, in one transaction."""
    from app.store.sqlite_schema import insert_documents

    rows: list[tuple[str, str, str, str]] = []
    colls: set[str] = set()
    now = time.time() - 86_400
    per_conv = 10
    for c in range(max(1, count // per_conv)):
        cid = f"cv_seed{c:07d}"
        lid = f"ld_seed{c:07d}"
        session = f"seed_session_{c:07d}"
        rows.append(
            (
                "leads",
                lid,
                json.dumps(
                    {
                        "id": lid,
                        "tenant_id": tenant,
                        "webchat_id": session,
                        "created_at": now + c,
                        "slots": {},
                    }
                ),
                "",
            )
        )
        rows.append(
            (
                "conversations",
                cid,
                json.dumps(
                    {
                        "id": cid,
                        "tenant_id": tenant,
                        "lead_id": lid,
                        "channel": "webchat",
                        "address": session,
                        "created_at": now + c,
                        "status": "active",
                        "version": 3,
                    }
                ),
                "",
            )
        )
        for m in range(per_conv):
            seq = now + c + m / 100
            mid = f"{cid}:{m:08d}"
            inbound = m % 2 == 0
            coll = f"conversations/{cid}/messages"
            colls.add(coll)
            rows.append(
                (
                    coll,
                    mid,
                    json.dumps(
                        {
                            "id": mid,
                            "conversation_id": cid,
                            "direction": "inbound" if inbound else "outbound",
                            "channel": "webchat",
                            "text": "seeded message " * 4,
                            "seq": seq,
                            "status": "received" if inbound else "sent",
                        }
                    ),
                    "",
                )
            )
            if inbound:
                iid = f"webchat:seed-{c}-{m}"
                rows.append(
                    (
                        "inbox",
                        iid,
                        json.dumps(
                            {
                                "id": iid,
                                "channel": "webchat",
                                "address_key": f"webchat:{session}",
                                "sender": session,
                                "recipient": "",
                                "provider_message_id": f"seed-{c}-{m}",
                                "text": "seeded message",
                                "status": "processed",
                                "seq": seq,
                                "received_at": seq,
                                "conversation_id": cid,
                            }
                        ),
                        "",
                    )
                )
            else:
                rows.append(
                    (
                        "outbox",
                        mid,
                        json.dumps(
                            {
                                "id": mid,
                                "conversation_id": cid,
                                "message_id": mid,
                                "channel": "webchat",
                                "status": "sent",
                                "seq": seq,
                                "created_at": seq,
                            }
                        ),
                        "",
                    )
                )
    conn = store._writer
    conn.execute("BEGIN IMMEDIATE")
    insert_documents(conn, [(tenant, c, i, d) for c, i, d, _ in rows], replace=True)
    conn.executemany(
        "INSERT OR IGNORE INTO colls VALUES (?,?,?)", [(tenant, c, c.rsplit("/", 1)[-1]) for c in colls]
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")


async def _turns_at(stored: int, leads: int, rounds: int) -> dict[str, Any]:
    from app.composition import Runtime
    from app.core.settings import Settings
    from app.ops.heap import freeze_startup_heap
    from app.tenancy.bootstrap import bootstrap
    from channels.webchat import WebChatChannel

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(  # burst window 0: this measures processing, not waiting
            _env_file=None,
            leadwarm_data_dir=Path(tmp),
            admin_api_key="lw_bench",  # type: ignore[arg-type]
            log_level="ERROR",
            burst_window_seconds=0.0,
        )
        runtime = Runtime.build(settings, channels={"webchat": WebChatChannel()})
        await bootstrap(runtime)
        _seed_messages(runtime.store, "demo", stored)
        freeze_startup_heap()  # as the serving process and `leadwarm worker` do once started
        channel = runtime.webchat()
        store: Any = runtime.store
        rates: list[float] = []
        cpu_rates: list[float] = []
        main_cpu: list[float] = []

        async def say(
            round_: int, tag: str, text: str, *, timed: bool = False, trace: list[str] | None = None
        ) -> tuple[float, float]:
            """Every lead writes ``text`` (ingest, not timed), then the worker drains: returns the
            wall and CPU seconds of the drain (``timed``: its event-loop CPU is kept, and a profile
            taken when asked); ``trace`` collects its SQL statements (a traced drain is not timed:
            SQLite expands every statement's parameters for the trace callback, about 4 % of a
            turn's instructions under callgrind)."""
            for i in range(leads):
                frame = json.dumps({"type": "message", "id": f"{round_}-{tag}-{i}", "text": text}).encode()
                for message in channel.parse({"x-session-id": f"bench_{round_}_{i:05d}"}, frame).messages:
                    await runtime.accept("demo", message)
            if trace is not None:
                store._writer.set_trace_callback(trace.append)
                store._reader.set_trace_callback(trace.append)
            profile = _profiler() if timed else None
            start, cpu, main = time.perf_counter(), time.process_time(), time.thread_time()
            await runtime.worker.drain()
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            if timed:
                main_cpu.append(time.thread_time() - main)
            _dump_profile(profile, f"turns_{stored}_{round_}")
            store._writer.set_trace_callback(None)
            store._reader.set_trace_callback(None)
            return elapsed, cpu

        for r in range(rounds):
            await say(r, "a", "Hi, I'd like a quote for solar panels")  # first messages: not timed
            elapsed, cpu = await say(r, "b", "yes I own it", timed=True)
            rates.append(leads / elapsed)
            cpu_rates.append(leads / cpu)
        # one more round of the same turns, traced (not timed): its transactions and statements
        trace: list[str] = []
        await say(rounds, "a", "Hi, I'd like a quote for solar panels")
        await say(rounds, "b", "yes I own it", trace=trace)
        tx = sum(s.startswith("BEGIN") for s in trace)
        statements = len(trace)
        await runtime.store.close()
    return {
        "rates": rates,
        "cpu_rates": cpu_rates,
        "tx": tx / leads,
        "statements": statements / leads,
        "main_ms": statistics.median(main_cpu) / leads * 1000,
        "cpu_ms": 1000 / statistics.median(cpu_rates),
    }


def bench_turn_scaling(
    *, sizes: tuple[int, ...] = (1_000, 100_000), leads: int = 200, rounds: int = 3
) -> list[str]:
    """Answer turns/s at each stored-message count (min and median of ``rounds``)."""
    from app.core.logs import configure_logging

    configure_logging(level="ERROR")
    lines: list[str] = []
    medians: dict[int, float] = {}
    for size in sizes:
        result = run(_turns_at(size, leads, rounds))  # on uvloop, as `leadwarm serve`
        rates, cpu_rates = result["rates"], result["cpu_rates"]
        medians[size] = statistics.median(cpu_rates)
        wall = statistics.median(rates)
        lines += [
            f"answer_turns_per_s_at_{size}_messages: min {min(rates):.0f} median {wall:.0f}"
            " turns/s (wall clock, shared machine)",
            f"answer_turns_per_cpu_s_at_{size}_messages: min {min(cpu_rates):.0f} median {medians[size]:.0f}"
            " turns per CPU-second (one core)",
            f"answer_turn_transactions_at_{size}_messages: {result['tx']:.2f} tx/turn",
            f"answer_turn_statements_at_{size}_messages: {result['statements']:.1f} statements/turn",
            f"answer_turn_cpu_at_{size}_messages: {result['cpu_ms']:.2f} ms/turn, of which event loop"
            f" {result['main_ms']:.2f} ms (the rest: SQLite threads)",
        ]
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        lines.append(
            f"answer_turns_flatness_{hi}_vs_{lo}: {medians[hi] / medians[lo]:.2f} x (per CPU-second)"
        )
    return lines


# --------------------------------------------------------------------------- timers
async def _timers(
    pending: int, due: int, lead_s: float, leases: list[int] | None = None
) -> tuple[list[float], float, float, float]:
    """Run the timers benchmark; returns (lateness per timer in seconds, peak memory MB, process
    CPU seconds and event-loop thread CPU seconds from the due instant to the last timer).
    ``leases`` (when given) receives the number of jobs each of the worker's leases took."""
    from app.jobs.queue import Job, JobQueue
    from app.jobs.worker import Worker
    from app.store import Transaction
    from app.store.sqlite import SQLiteStore
    from app.store.sqlite_schema import insert_documents
    from kernel.clock import SystemClock

    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "timers.db")
        clock = SystemClock()
        jobs = JobQueue(store, clock, owner="bench")
        far = clock.now() + 86_400
        rows = []
        for i in range(pending):
            doc = Job(
                id=f"timer:cv_{i:07d}",
                tenant_id=f"t{i % 20}",
                kind="timer",
                key=f"cv_{i:07d}",
                due_at=far + i,
            )
            rows.append((doc.tenant_id, "jobs", doc.id, json.dumps(doc.to_doc())))
        store._writer.execute("BEGIN IMMEDIATE")
        insert_documents(store._writer, rows)
        store._writer.executemany(
            "INSERT OR IGNORE INTO colls VALUES (?,?,?)", [(f"t{i}", "jobs", "jobs") for i in range(20)]
        )
        store._writer.execute("COMMIT")
        del rows
        # the worker starts, then `due` of the timers are moved to one instant `lead_s` ahead
        lateness: list[float] = []
        done = asyncio.Event()

        async def handler(job: Job) -> None:
            # a timer turn's shape: one transaction that writes and completes the job in it
            lateness.append(clock.now() - job.due_at)

            async def fn(tx: Transaction) -> None:
                current = await jobs.read_job(tx, job)
                tx.set("fired", job.key, {"at": clock.now()})
                jobs.complete_in(tx, job, current)

            await store.run_transaction(job.tenant_id, fn, inline=True)
            job.mark_completed()
            if len(lateness) >= due:
                done.set()

        if leases is not None:
            lease_due = jobs.lease_due

            async def counted(*, limit: int = 16) -> list[Job]:
                taken = await lease_due(limit=limit)
                if taken:
                    leases.append(len(taken))
                return taken

            jobs.lease_due = counted  # type: ignore[method-assign]
        worker = Worker(jobs, {"timer": handler})
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0.2)
        due_at = clock.now() + lead_s
        store._writer.execute("BEGIN IMMEDIATE")
        store._writer.execute(
            "UPDATE docs SET data = json_set(data, '$.due_at', ?1), f_due_at = ?1 "
            "WHERE coll = 'jobs' AND id <= ?2",
            (due_at, f"timer:cv_{due - 1:07d}"),
        )
        store._writer.execute("COMMIT")
        jobs.notify(due_at=due_at)  # as an in-process enqueue of these timers would
        await asyncio.sleep(max(0.0, due_at - clock.now() - 0.05))
        profile = _profiler()
        cpu_start, main_start = time.process_time(), time.thread_time()
        await asyncio.wait_for(done.wait(), timeout=lead_s + 300)
        cpu = time.process_time() - cpu_start
        main_cpu = time.thread_time() - main_start
        _dump_profile(profile, "timers")
        stop.set()
        jobs.notify()
        await task
        await store.close()
    return lateness, _peak_memory_mb(), cpu, main_cpu


def _peak_memory_mb() -> float:
    """This process's peak resident memory in MB: ``VmHWM`` of ``/proc/self/status`` (the high-water
    mark of this program's own memory, reset at ``exec``), else ``ru_maxrss``, which Linux carries
    over from the parent across ``fork`` + ``exec`` (a child started by a 400 MB benchmark said 416 MB)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_timers(*, pending: int = 100_000, due: int = 1_000) -> list[str]:
    """Lateness of ``due`` timers falling due at once among ``pending``, and peak memory."""
    leases: list[int] = []
    lateness, peak_mb, cpu, main_cpu = run(_timers(pending, due, lead_s=2.0, leases=leases))
    ordered = sorted(lateness)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return [
        f"timers_pending: {pending} jobs, {due} due at once",
        f"timer_lateness_min: {ordered[0] * 1000:.0f} ms (how soon the worker picked the batch up)",
        f"timer_lateness_p50: {pct(0.5) * 1000:.0f} ms",
        f"timer_lateness_p99: {pct(0.99) * 1000:.0f} ms",
        f"timer_lateness_max: {ordered[-1] * 1000:.0f} ms",
        f"timer_process_peak_memory: {peak_mb:.0f} MB",
        # CPU the process spent from the due instant to the last timer: what the lateness would
        # be on a core of its own (the wall-clock figures above include other processes' load)
        f"timer_cpu_to_handle_all_due: {cpu * 1000:.0f} ms ({cpu / due * 1e6:.0f} us/timer)",
        f"timer_cpu_event_loop_thread: {main_cpu * 1000:.0f} ms (the rest: SQLite threads)",
        # the worker's lease batch adapts to handler durations (app/jobs/worker.py, lease_limit)
        f"timer_leases: {len(leases)} leases took {sum(leases)} jobs, largest {max(leases, default=0)}",
    ]


def bench_timers_alone(*, pending: int = 100_000) -> list[str]:
    """:func:`bench_timers` in a fresh interpreter (``benchmarks/turns.py --only timers``), so that
    its peak memory (a process's high-water mark) is the timers' own and not what an
    earlier benchmark of the same process (the 100,000-message store) left. Returns its lines;
    raises ``subprocess.CalledProcessError`` if it fails."""
    import subprocess

    done = subprocess.run(
        [sys.executable, str(Path(__file__)), "--only", "timers", "--timers", str(pending)],
        check=True,
        capture_output=True,
        text=True,
    )
    return [line for line in done.stdout.splitlines() if line.startswith("timer")]


# --------------------------------------------------------------------------- campaign
ZONES = ("America/New_York", "America/Los_Angeles", "Europe/Paris", "Asia/Tokyo")


def _campaign(channel: str, sender: str, leads: int, start: float) -> dict[str, Any]:
    from app.messaging.pacing import SendPacer
    from app.policy.quiet_hours import next_allowed_time, parse_hhmm
    from app.policy.rules import OutboundFacts, decide
    from kernel.clock import ManualClock

    clock = ManualClock(start)
    pacer = SendPacer(clock=clock)
    quiet_start, quiet_end = parse_hhmm("21:00"), parse_hhmm("08:00")
    rng = random.Random(7)
    zones = [ZoneInfo(rng.choice(ZONES)) for _ in range(leads)]
    heap: list[tuple[float, int]] = [(start, i) for i in range(leads)]
    heapq.heapify(heap)
    sent: list[tuple[float, int]] = []
    events = 0
    while heap:
        at, lead = heapq.heappop(heap)
        events += 1
        clock.set(at)
        facts = OutboundFacts(
            channel=channel,
            trigger="start",
            now=at,
            zone=zones[lead],
            quiet_start=quiet_start,
            quiet_end=quiet_end,
            allow_direct_replies=True,
            has_template=True,
        )
        decision = decide(facts)
        if decision.action == "defer":
            assert decision.until is not None
            heapq.heappush(heap, (decision.until, lead))
            continue
        slot = pacer.reserve(
            channel=channel, sender=sender, to=f"+1555{lead:07d}", key=f"o{lead}", text="Hi!"
        )
        if slot > at:
            heapq.heappush(heap, (slot, lead))
            continue
        sent.append((at, lead))
    quiet = sum(
        1 for at, lead in sent if next_allowed_time(at, zones[lead], quiet_start, quiet_end) is not None
    )
    times = sorted(at for at, _ in sent)
    busiest = 0  # most sends in any window of one second, [t, t + 1)
    j = 0
    for i, t in enumerate(times):
        while times[j] <= t - 1.0 + 1e-6:
            j += 1
        busiest = max(busiest, i - j + 1)
    last_by_zone: dict[str, float] = {}
    for at, lead in sent:
        name = str(zones[lead])
        last_by_zone[name] = max(last_by_zone.get(name, 0.0), at - start)
    return {
        "sent": len(sent),
        "last": times[-1] - start,
        "busiest_second": busiest,
        "quiet": quiet,
        "events": events,
        "last_by_zone": last_by_zone,
    }


def bench_campaign(*, leads: int = 10_000) -> list[str]:
    """Time to the last first touch of ``leads`` leads started at once, per channel/sender. The
    busiest second is printed beside the provider's limit and the pacer's rate: a Twilio sender's
    burst goes into Twilio's own queue, which sends it at the number's rate (Twilio, "Understanding
    Twilio Rate Limits and Message Queues"), so a second may hold more sends than the limit."""
    from app.messaging.pacing import DEFAULT_RULES

    start = datetime(2026, 11, 30, 15, 0, tzinfo=ZoneInfo("UTC")).timestamp()  # Tokyo asleep
    lines = [f"campaign_start: 2026-11-30 15:00 UTC, {leads} leads, zones {', '.join(ZONES)}"]
    for label, channel, sender, limit in (
        ("whatsapp", "whatsapp", "106540352242922", 80),
        ("sms_long_code", "sms", "+15017122661", 1),
        ("sms_toll_free", "sms", "+18885550123", 3),
    ):
        pace = DEFAULT_RULES[channel](sender, "Hi!").sender  # the rule the pacer applies
        queued = "" if channel == "whatsapp" else ", which Twilio's per-sender queue absorbs"
        wall = time.perf_counter()
        r = _campaign(channel, sender, leads, start)
        wall = time.perf_counter() - wall
        lines += [
            f"campaign_{label}_first_touches: {r['sent']} of {leads}",
            f"campaign_{label}_time_to_last_first_touch: {r['last'] / 3600:.2f} h ({r['last']:.0f} s)",
            f"campaign_{label}_busiest_second: {r['busiest_second']} sends (provider limit {limit}/s;"
            f" paced at {pace.per_s:g}/s with bursts of {pace.burst}{queued})",
            f"campaign_{label}_last_first_touch_by_zone: "
            + ", ".join(f"{z} {t / 3600:.2f} h" for z, t in sorted(r["last_by_zone"].items())),
            f"campaign_{label}_sends_in_quiet_hours: {r['quiet']}",
            f"campaign_{label}_simulation: {r['events']} scheduling events in {wall:.1f} s",
        ]
    return lines


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--leads", type=int, default=200)
    parser.add_argument("--timers", type=int, default=100_000)
    parser.add_argument("--campaign", type=int, default=10_000)
    parser.add_argument("--only", choices=["turns", "timers", "campaign"], default=None)
    args = parser.parse_args()
    if args.only in (None, "turns"):
        for line in bench_turn_scaling(sizes=tuple(args.sizes), leads=args.leads):
            print(line, flush=True)
    if args.only == "timers":
        for line in bench_timers(pending=args.timers):
            print(line, flush=True)
    elif args.only is None:  # after the turns: in a process of its own, for its peak memory
        for line in bench_timers_alone(pending=args.timers):
            print(line, flush=True)
    if args.only in (None, "campaign"):
        for line in bench_campaign(leads=args.campaign):
            print(line, flush=True)


if __name__ == "__main__":
    main()
