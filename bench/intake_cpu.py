"""Where a web-form post's CPU goes: `python -m bench.intake_cpu [--db sqlite|postgres]
[--seconds 8] [--connections 64]`.

Starts `mazkira serve` and the ceiling as `bench.intake` does, loads each flat out (closed loop,
keep-alive connections) after a 2-second warm-up (PostgreSQL's tables analyzed after it, as in
`bench.intake`), and reads every thread's CPU time from
`/proc/PID/task/*/stat` before and after: the event loop's thread (the process's first), and the
rest (SQLite's driver threads, one per pooled connection; none on PostgreSQL). PostgreSQL's own
processes are counted apart (every process named `postgres` on this machine: the server shares
the two cores with the console and the load). It prints, per server, requests per second, CPU
per request in ms, how many cores each kind of thread kept busy, and whether the loop was the
bottleneck (busy ≥ 0.95 of a core) or waited. The last line is one JSON object.

Linux only (it reads /proc). `bench.intake` gives the figures the issue asks for; this one says
why they are what they are (intake_cpu_ms against ceiling_cpu_ms, loop_cores under 1 when the
loop waits on the database).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import intake_env, loop_factory
from bench.intake import (
    BUSINESSES,
    Forms,
    Load,
    Served,
    add_businesses,
    analyze,
    fresh_database,
)

TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of the process."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            found[int(tid)] = (int(fields[11]) + int(fields[12])) / TICKS
    return found


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process on this machine (the server is local here)."""
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            with open(f"/proc/{pid}/stat") as stat:
                head, _, rest = stat.read().rpartition(")")
            if head.endswith("(postgres"):
                fields = rest.split()
                total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


async def split(
    server: Served,
    load: Load,
    *,
    seconds: float,
    connections: int,
    warmup: float,
    warmed: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    assert server.process is not None
    pid = server.process.pid
    await load.flat_out(warmup, connections)  # pools filled, caches and clocks built
    if warmed is not None:
        await warmed()
    before, database_before = thread_cpu(pid), postgres_cpu()
    phase = await load.flat_out(seconds, connections)
    after, database = thread_cpu(pid), postgres_cpu() - database_before
    used = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    loop = used.get(pid, 0.0)
    others = sum(cpu for tid, cpu in used.items() if tid != pid)
    return {
        "rps": round(phase.requests / phase.seconds, 1),
        "cpu_ms": round((loop + others) / phase.requests * 1000, 3),
        "loop_ms": round(loop / phase.requests * 1000, 3),
        "threads_ms": round(others / phase.requests * 1000, 3),
        "loop_cores": round(loop / phase.seconds, 2),
        "threads_cores": round(others / phase.seconds, 2),
        "postgres_ms": round(database / phase.requests * 1000, 3),
        "statuses": dict(phase.statuses),
    }


async def run(
    kind: str, *, seconds: float, connections: int, work: Path, warmup: float = 2
) -> dict[str, Any]:
    url = await fresh_database(kind, work)
    forms = Forms(await add_businesses(url, BUSINESSES), host="127.0.0.1")
    env = intake_env(url, secret="bench-intake")
    figures = {}
    for name, server in (
        ("intake", Served("console.cli", ["serve"], env, work / "console.log")),
        ("ceiling", Served("bench.ceiling", [], {}, work / "ceiling.log")),
    ):
        server.start()
        try:
            await server.ready()
            load = Load(server.port, forms)
            figures[name] = await split(
                server,
                load,
                seconds=seconds,
                connections=connections,
                warmup=warmup,
                warmed=(lambda: analyze(url)) if name == "intake" else None,
            )
        finally:
            server.stop()
    intake, ceiling = figures["intake"], figures["ceiling"]
    return {
        "db": kind,
        "intake_rps": intake["rps"],
        "intake_cpu_ms": intake["cpu_ms"],
        "intake_loop_ms": intake["loop_ms"],
        "intake_threads_ms": intake["threads_ms"],
        "intake_loop_cores": intake["loop_cores"],
        "intake_postgres_ms": intake["postgres_ms"],
        "ceiling_rps": ceiling["rps"],
        "ceiling_cpu_ms": ceiling["cpu_ms"],
        "detail": figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="mazkira-intake-cpu-") as work,
        asyncio.Runner(loop_factory=loop_factory()) as runner,
    ):
        result = runner.run(
            run(args.db, seconds=args.seconds, connections=args.connections, work=Path(work))
        )
    for name, figures in result["detail"].items():
        waited = "waits" if figures["loop_cores"] < 0.95 else "saturated"
        print(
            f"{name:8} {figures['rps']:8.1f} req/s  cpu {figures['cpu_ms']:.3f} ms/req"
            f" (loop {figures['loop_ms']:.3f}, other threads {figures['threads_ms']:.3f})"
            f"  loop {figures['loop_cores']:.2f} cores ({waited}),"
            f" threads {figures['threads_cores']:.2f}, PostgreSQL's processes"
            f" {figures['postgres_ms']:.3f} ms/req  statuses {figures['statuses']}"
        )
    print(json.dumps({key: value for key, value in result.items() if key != "detail"}))


if __name__ == "__main__":
    main()
