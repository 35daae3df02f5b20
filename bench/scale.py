"""Benchmarks at scale, each beside the bare Starlette endpoint of the same shape in the same run:
`python -m bench.scale [--db sqlite|postgres] [--leads N] [--quick]`.

Each figure, the console's and then its bare twin's (`bench/ceiling.py`):

- inbox: a secretary's inbox page, 50 rows of 10 of 1,000 businesses among N leads (in-process,
  as `bench.inbox`) / 50 rows from a query-less list rendered into a page;
- lead: the page of one of her open leads (script, history, the audited view) / a lead page
  rendered from query-less data;
- intake: web-form posts flat out against `mazkira serve` on a fresh database (`bench.intake`)
  / a JSON body parsed and answered 201 with JSON;
- fanout: a lead's row from commit to the last of `--clients` consoles (`bench.fanout`) / a
  stamped row offered to every socket's outbox;
- sla: one sweep raising 1,000 due alerts among N leads (`bench.sla`) / the same rows found,
  inserted and cleared in bare SQL.

The in-process pages are timed in turns (console, bare, console at 10,000 leads, ...) so a busy
machine slows all of them alike. Every ratio is the console's time over the bare one's (how many
times slower; intake's is per request at maximum throughput). `growth` is the inbox page's time
at N leads over its time at 10,000 (target < 1.5), the secretary's page alike in both: the
small set keeps each business's size (10 businesses of 1,000 leads beside 1,000 of them), so
only the rest of the database shrinks. The first run seeds its databases and keeps
them (`bench.inbox`). The last line is one JSON object with `growth` and a key per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import websockets
from sqlalchemy import delete, insert, select, text
from starlette.applications import Starlette

from bench import ceiling, fanout, intake, loop_factory, sla
from bench.inbox import bench_app, prepare, sign_in
from console.base.db import Database
from models import Alert, Lead, LeadAlarm

SMALL = 10_000
LEAD_ID = re.compile(r'id="lead-([0-9a-f-]{36})"')


def p50(times: list[float]) -> float:
    return round(statistics.median(times), 2)


def p99(times: list[float]) -> float:
    ordered = sorted(times)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2)


def ratio(console: float, bare: float) -> float:
    return round(console / bare, 2) if bare > 0 else 0.0


async def timed(client: httpx.AsyncClient, path: str) -> float:
    started = time.perf_counter()
    answer = await client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    assert answer.status_code == 200, (answer.status_code, answer.text[:300])
    return elapsed


async def pages(big: Database, small: Database, requests: int) -> dict[str, Any]:
    """The inbox and lead pages at N and at 10,000 leads and the bare pages, in turns."""
    times: dict[str, list[float]] = {n: [] for n in ("inbox", "bare", "small", "lead", "lead_bare")}
    async with contextlib.AsyncExitStack() as stack:

        async def client_of(app: Starlette, base_url: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app)
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url=base_url)
            )

        console_app = bench_app(big)
        await stack.enter_async_context(console_app.router.lifespan_context(console_app))
        console = small_console = await client_of(console_app, "http://bench")
        await sign_in(console)
        if small is not big:
            small_app = bench_app(small)
            await stack.enter_async_context(small_app.router.lifespan_context(small_app))
            small_console = await client_of(small_app, "http://bench")
            await sign_in(small_console)
        bare = await client_of(ceiling.app, "http://bare")
        inbox_page = (await console.get("/inbox")).text
        lead_id = LEAD_ID.search(inbox_page).group(1)  # type: ignore[union-attr]
        rows = {
            len(set(LEAD_ID.findall((await c.get("/inbox")).text)))
            for c in (console, small_console)
        }
        assert len(rows) == 1, f"the two inbox pages differ in rows: {rows}"
        turns = (
            ("inbox", console, "/inbox"),
            ("bare", bare, "/inbox"),
            ("small", small_console, "/inbox"),
            ("lead", console, f"/leads/{lead_id}"),
            ("lead_bare", bare, f"/leads/{lead_id}"),
        )
        for n in range(5 + requests):  # five to warm caches and the session's last-seen stamp
            for name, client, path in turns:
                elapsed = await timed(client, path)
                if n >= 5:
                    times[name].append(elapsed)
    inbox, lead = p50(times["inbox"]), p50(times["lead"])
    return {
        "inbox_ms": inbox,
        "inbox_p99_ms": p99(times["inbox"]),
        "inbox_bare_ms": p50(times["bare"]),
        "inbox_ratio": ratio(inbox, p50(times["bare"])),
        "inbox_small_ms": p50(times["small"]),
        "growth": ratio(inbox, p50(times["small"])),
        "lead_ms": lead,
        "lead_p99_ms": p99(times["lead"]),
        "lead_bare_ms": p50(times["lead_bare"]),
        "lead_ratio": ratio(lead, p50(times["lead_bare"])),
    }


async def sweeps(db: Database, runs: int) -> dict[str, Any]:
    """`bench.sla`'s sweep of 1,000 due leads, and the same rows found and written in bare SQL."""
    await sla.make_due(db, sla.DUE)
    async with db.engine.begin() as connection:
        await connection.execute(text("ANALYZE"))
    console = await sla.time_sweeps(db, runs)
    bare = await bare_sweeps(db, runs)
    return {
        "sla_ms": p50(console),
        "sla_bare_ms": p50(bare),
        "sla_ratio": ratio(p50(console), p50(bare)),
    }


async def bare_sweeps(db: Database, runs: int) -> list[float]:
    """The sweep's floor: select the due alarms by their index, insert an alert per lead and
    drop the alarms, in one transaction (rolled back, so the run can repeat)."""
    times = []
    for _ in range(runs):
        async with db.engine.connect() as connection:
            transaction = await connection.begin()
            now = datetime.now(UTC)
            started = time.perf_counter()
            due = (
                await connection.execute(
                    select(LeadAlarm.lead_id, Lead.business_id, LeadAlarm.due_at)
                    .join(Lead, Lead.id == LeadAlarm.lead_id)
                    .where(LeadAlarm.due_at <= now)
                    .order_by(LeadAlarm.due_at)
                    .limit(sla.DUE)
                )
            ).all()
            rows = [
                {
                    "id": uuid.uuid4(),
                    "key": f"bare:{lead_id}",
                    "business_id": business_id,
                    "lead_id": lead_id,
                    "kind": "first_response",
                    "level": "breach",
                    "percent": 100,
                    "due_at": due_at,
                    "raised_at": now,
                }
                for lead_id, business_id, due_at in due
            ]
            await connection.execute(insert(Alert), rows)
            await connection.execute(
                delete(LeadAlarm).where(LeadAlarm.lead_id.in_([row[0] for row in due]))
            )
            times.append((time.perf_counter() - started) * 1000)
            assert len(due) == sla.DUE, len(due)
            await transaction.rollback()
    return times


async def intake_figures(kind: str, *, seconds: float, rate: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mazkira-scale-intake-") as work:
        result = await intake.run(
            kind, rate=rate, seconds=seconds, connections=64, warmup=1, work=Path(work)
        )
    console_ms, bare_ms = 1000 / result["intake_rps"], 1000 / result["ceiling_rps"]
    return {
        "intake_ms": round(console_ms, 3),
        "intake_bare_ms": round(bare_ms, 3),
        "intake_ratio": ratio(console_ms, bare_ms),
        "intake_rps": result["intake_rps"],
        "intake_bare_rps": result["ceiling_rps"],
        "intake_p99_ms": result["p99_ms"],
    }


async def fanout_figures(kind: str, *, clients: int, events: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="mazkira-scale-fanout-"))
    servers = await fanout.start(1, work, postgres=kind == "postgres")
    try:
        console = await fanout.measure(servers, clients, events)
    finally:
        for server in servers:
            server.stop()
    served = intake.Served("bench.ceiling", [], {}, work / "ceiling.log")
    served.start()
    try:
        await served.ready()
        bare = await bare_fanout(served.port, clients, events)
    finally:
        served.stop()
    assert console["complete_events"] == console["events"], console
    assert bare["complete_events"] == events, bare
    shutil.rmtree(work)  # kept, with the servers' logs, when something failed
    return {
        "fanout_ms": console["p50_ms"],
        "fanout_p99_ms": console["p99_ms"],
        "fanout_bare_ms": bare["p50_ms"],
        "fanout_ratio": ratio(console["p50_ms"], bare["p50_ms"]),
        "fanout_clients": clients,
    }


async def bare_fanout(port: int, clients: int, events: int) -> dict[str, float | int]:
    """The same shape as `bench.fanout`: sockets in 20 groups, each event to one group."""
    groups = fanout.BUSINESSES
    sockets = []
    for n in range(clients):
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws")
        await ws.send(json.dumps({"type": "hello", "page": "queue", "business": str(n % groups)}))
        sockets.append(ws)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

        async def broadcast(n: int) -> None:
            answer = await http.post("/broadcast", params={"business": str(n % groups)})
            assert answer.status_code == 204, answer.status_code

        figures = await fanout.collect(sockets, broadcast, events, clients // groups)
    for ws in sockets:
        await ws.close()
    return figures


def report(figures: dict[str, Any]) -> None:
    print(f"{'figure':8} {'console':>10} {'bare':>10} {'ratio':>7}")
    for name, unit in (("inbox", "ms"), ("lead", "ms"), ("intake", "ms"), ("fanout", "ms")):
        console, bare = figures[f"{name}_ms"], figures[f"{name}_bare_ms"]
        print(
            f"{name:8} {console:>8.2f}{unit} {bare:>8.2f}{unit} {figures[f'{name}_ratio']:>6.1f}x"
        )
    print(
        f"{'sla':8} {figures['sla_ms']:>8.1f}ms {figures['sla_bare_ms']:>8.1f}ms"
        f" {figures['sla_ratio']:>6.1f}x"
    )
    print(
        f"growth   inbox {figures['inbox_small_ms']:.2f} ms at {SMALL:,} leads ->"
        f" {figures['inbox_ms']:.2f} ms at {figures['leads']:,}: {figures['growth']:.2f}x"
        " (target < 1.5)"
    )
    print(json.dumps(figures))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    leads = args.leads or (50_000 if quick else 1_000_000)
    requests = args.requests or (30 if quick else 200)
    clients = args.clients or (100 if quick else 1000)
    figures: dict[str, Any] = {"db": args.db, "leads": leads, "quick": quick}
    big = await prepare(args.db, leads, args.businesses)
    # The small set keeps the businesses' size (leads per business) and so the secretary's page:
    # the same 10 businesses, the same 50 rows of the same open share; only the other
    # businesses' data is 100 times smaller. Growth is then the cost of the database's size.
    small_businesses = max(10, args.businesses * SMALL // leads)
    small = big if leads == SMALL else await prepare(args.db, SMALL, small_businesses)
    try:
        figures |= await pages(big, small, requests)
    finally:
        if small is not big:
            await small.dispose()
    try:
        figures |= await sweeps(big, 3 if quick else 5)
    finally:
        await big.dispose()
    print("pages and sweep done", flush=True)
    figures |= await intake_figures(args.db, seconds=2 if quick else 10, rate=200 if quick else 500)
    print("intake done", flush=True)
    figures |= await fanout_figures(args.db, clients=clients, events=20 if quick else 100)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--leads", type=int, help="1,000,000 (50,000 with --quick)")
    parser.add_argument("--businesses", type=int, default=1_000)
    parser.add_argument("--requests", type=int, help="per page: 200 (30 with --quick)")
    parser.add_argument("--clients", type=int, help="fan-out consoles: 1,000 (100 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a small run, for trying it out")
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        figures = runner.run(run(args))
    report(figures)


if __name__ == "__main__":
    main()
