"""A bounded soak of mixed traffic against the real console:
`python -m bench.soak [--minutes 10] [--rate 200] [--consoles 200] [--db sqlite|postgres]
[--redis redis://127.0.0.1:6379/9]`.

Starts `mazkira serve` on a fresh database (a SQLite file, or the PostgreSQL database
`mazkira_bench_soak`); with `--redis`, two `mazkira serve` processes and a `mazkira worker`, so
the jobs run in arq and the live events cross Redis pub/sub. Twenty businesses, each with a
secretary who also serves the next one. Then, for the whole run:

- `--consoles` websocket consoles, signed in as the secretaries in turn, show the queue;
- web-form intake at `--rate` leads/s (open loop, signed with each business's `X-Intake-Key`,
  unique `external_id`s, shared among the processes);
- each secretary claims a new lead of her own business and adds a note to it, `--actions`
  claims per second in all;
- the servers' RSS is sampled every `--sample` seconds (60).

At the end it checks that every lead sent is in the database exactly once (counted by
`external_id`), that every console received every lead event of its businesses (by their
sequence numbers, against the events table), that every claim and note is there, that no request
failed and no server logged an error, that memory stayed flat (the last sample within 10% of the
first, taken after a minute's warm-up), and that the console kept the rate (answered at least 95%
of the offered leads per second over the run). It prints the figures; the last line is one JSON
object, with a key per check and `ok`. The exit status is 1 when a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bench import intake_env, loop_factory
from bench.fanout import add_people, fresh_postgres, pid_rss_mb
from bench.intake import Forms, Load
from console.base.config import normalise_database_url
from console.base.db import Database
from models import Business, Event, Interaction, Lead
from routes.live import LEAD_EVENTS
from tests.live_client import Console, meta
from tests.servers import ROOT, Server

PASSWORD = "soak-password"
POSTGRES = os.environ.get(
    "BENCH_SOAK_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/mazkira_bench_soak"
)
LEAD_ID = re.compile(r'<tr id="lead-([0-9a-f-]{36})"')
ERROR_LINE = re.compile(r'Traceback|\bERROR\b|" 5\d\d\b')
MEMORY_GROWTH = 0.10  # the last RSS sample may be this much above the first
CHECKS = (
    "leads_exactly_once",
    "consoles_complete",
    "claims_and_notes",
    "no_errors",
    "memory_flat",
    "kept_rate",
)
KEPT_RATE = 0.95  # the leads answered per second over the run, as a share of the offered rate


@dataclass
class Tally:
    """What the client saw: each console's sequence numbers per business, and every failure."""

    seen: list[dict[str, set[int]]]
    fresh: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    known: set[str] = field(default_factory=set)
    errors: Counter[str] = field(default_factory=Counter)
    claims: int = 0
    notes: int = 0
    messages: int = 0


async def listen(ws: ClientConnection, seen: dict[str, set[int]], tally: Tally) -> None:
    try:
        async for message in ws:
            text = str(message)
            stamp = meta(text)
            tally.messages += 1
            if not stamp.get("s"):
                continue
            business = str(stamp["b"])
            seen[business].add(int(stamp["s"]))
            for lead_id in LEAD_ID.findall(text):
                if lead_id not in tally.known:  # a new lead, for its business's secretary
                    tally.known.add(lead_id)
                    tally.fresh[business].append(lead_id)
    except ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd else None
        if code != 1000:
            tally.errors[f"socket closed {code}"] += 1


async def work_leads(
    console: Console, business: str, every: float, stop: float, tally: Tally
) -> None:
    """Claim the oldest new lead of her own business and note on it, every `every` seconds.

    She claims at least once whatever the clock says (up to half a minute longer), so that a
    short run on a busy machine still exercises claims and notes."""
    claimed_any = False
    while time.monotonic() < stop or (not claimed_any and time.monotonic() < stop + 30):
        await asyncio.sleep(every)
        if not tally.fresh[business]:
            continue
        claimed_any = True
        lead_id = tally.fresh[business].pop(0)
        claimed = await console.post(f"/leads/{lead_id}/claim")
        if claimed.status_code != 303:
            tally.errors[f"claim {claimed.status_code}"] += 1
            continue
        tally.claims += 1
        noted = await console.post(
            f"/leads/{lead_id}/notes",
            notes="חזרתי ללקוח, ממתין לתשובה",
            request_key=uuid.uuid4().hex,
        )
        if noted.status_code != 303:
            tally.errors[f"note {noted.status_code}"] += 1
            continue
        tally.notes += 1


async def sample_memory(
    pids: list[int], every: float, done: asyncio.Event, samples: list[float]
) -> None:
    """The servers' RSS every `every` seconds, and once more when the traffic is done."""
    while not done.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), every)
        samples.append(round(sum(pid_rss_mb(pid) for pid in pids), 1))


async def expected_events(url: str, start: dict[str, int]) -> dict[str, set[int]]:
    """The lead events written after the consoles connected, by business: what each should get."""
    db = Database(normalise_database_url(url))
    async with db.transaction(write=False) as session:
        rows = await session.execute(
            select(Event.business_id, Event.seq).where(Event.kind.in_(LEAD_EVENTS))
        )
        wanted: dict[str, set[int]] = defaultdict(set)
        for business, seq in rows:
            if seq > start.get(str(business), 0):
                wanted[str(business)].add(seq)
    await db.dispose()
    return wanted


async def database_counts(url: str, prefixes: list[str]) -> dict[str, Any]:
    db = Database(normalise_database_url(url))
    async with db.transaction(write=False) as session:
        ids = Counter(
            external_id
            for (external_id,) in await session.execute(
                select(Lead.external_id).where(Lead.external_id.is_not(None))
            )
            if external_id and external_id.startswith(tuple(prefixes))
        )
        claimed = await session.scalar(
            select(func.count()).select_from(Lead).where(Lead.claimed_by_id.is_not(None))
        )
        notes = await session.scalar(
            select(func.count()).select_from(Interaction).where(Interaction.kind == "note")
        )
    await db.dispose()
    return {"external_ids": ids, "claimed": int(claimed or 0), "notes": int(notes or 0)}


async def business_ids(url: str) -> dict[str, str]:
    db = Database(normalise_database_url(url))
    async with db.transaction(write=False) as session:
        found = {
            slug: str(b) for b, slug in await session.execute(select(Business.id, Business.slug))
        }
    await db.dispose()
    return found


async def latest_seqs(url: str) -> dict[str, int]:
    db = Database(normalise_database_url(url))
    async with db.transaction(write=False) as session:
        rows = await session.execute(
            select(Event.business_id, func.max(Event.seq)).group_by(Event.business_id)
        )
        found = {str(b): int(seq) for b, seq in rows}
    await db.dispose()
    return found


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`mazkira worker`: the jobs in arq, their events through Redis."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "console.cli", "worker"],
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def log_errors(logs: list[Path]) -> list[str]:
    lines = []
    for log in logs:
        if log.exists():
            lines += [
                line
                for line in log.read_text(errors="replace").splitlines()
                if ERROR_LINE.search(line)
            ]
    return lines


async def soak(
    *,
    seconds: float,
    rate: float,
    consoles: int,
    kind: str = "sqlite",
    redis: str | None = None,
    businesses: int = 20,
    actions: float = 10,
    sample_every: float = 60,
    work: Path,
) -> dict[str, Any]:
    url = f"sqlite:///{work / 'soak.db'}" if kind == "sqlite" else await fresh_postgres(POSTGRES)
    made = await add_people(url, businesses=businesses, password=PASSWORD, serves=2, prefix="soak-")
    slugs = await business_ids(url)
    own = [slugs[slug] for slug, _key in made]  # secretary n's own business
    env = intake_env(url, secret="soak", redis=redis)
    servers = [Server(work / f"p{n}", env) for n in range(2 if redis else 1)]
    worker: subprocess.Popen[bytes] | None = None
    forms: list[Forms] = []
    loads: list[Load] = []
    opened: list[Console] = []
    sockets: list[ClientConnection] = []
    try:
        for server in servers:
            server.log.parent.mkdir(parents=True, exist_ok=True)
            server.start()
        if redis:
            worker = start_worker(env, work / "worker.log")
        secretaries = [
            await Console(servers[n % len(servers)]).sign_in(f"s{n}@bench.test", PASSWORD)
            for n in range(businesses)
        ]
        opened += secretaries
        tally = Tally(seen=[defaultdict(set) for _ in range(consoles)])
        for k in range(consoles):
            sockets.append(await secretaries[k % businesses].socket(page="queue"))
        listeners = [
            asyncio.create_task(listen(ws, tally.seen[k], tally)) for k, ws in enumerate(sockets)
        ]
        await asyncio.sleep(0.5)  # the hellos are in
        start = await latest_seqs(url)
        print(
            f"{len(servers)} server(s), {consoles} consoles connected; soaking {seconds:g} s",
            flush=True,
        )

        began, cpu = time.monotonic(), time.process_time()
        stop = began + seconds
        forms = [
            Forms(made, host="127.0.0.1", run=f"soak{n}x{time.time_ns():x}")
            for n in range(len(servers))
        ]
        loads = [Load(server.port, form) for server, form in zip(servers, forms, strict=True)]
        pids = [s.process.pid for s in servers if s.process] + ([worker.pid] if worker else [])
        samples: list[float] = [round(sum(pid_rss_mb(pid) for pid in pids), 1)]
        every = businesses / actions if actions > 0 else seconds * 2
        others = [work_leads(secretaries[n], own[n], every, stop, tally) for n in range(businesses)]
        done = asyncio.Event()
        others.append(sample_memory(pids, sample_every, done, samples))
        side = asyncio.gather(*others)
        phases = await asyncio.gather(
            *(load.at_rate(rate / len(loads), seconds, connections=32) for load in loads)
        )
        elapsed = time.monotonic() - began
        client_cpu = (time.process_time() - cpu) / elapsed
        # From the first request's due time to the last answer: the offered time, and as long
        # again as the answers lagged.
        answering = max(phase.seconds for phase in phases)
        done.set()
        await side

        # Every lead event of her businesses reaches every console (give the last ones a moment).
        wanted = await expected_events(url, start)
        serves = [{own[n], own[(n + 1) % businesses]} for n in range(businesses)]
        deadline = time.monotonic() + 30
        while True:
            missing = [
                sum(len(wanted[b] - tally.seen[k][b]) for b in serves[k % businesses])
                for k in range(consoles)
            ]
            if not any(missing) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        for task in listeners:
            task.cancel()
    finally:
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.close()
        for console in opened:
            await console.close()
        if worker is not None:
            worker.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=30)
        for server in servers:
            server.stop()

    sent = {
        f"{form.run}-{n}" for form, load in zip(forms, loads, strict=True) for n in range(load.sent)
    }
    counts = await database_counts(url, [form.run for form in forms])
    stored: Counter[str] = counts["external_ids"]
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    for phase in phases:
        statuses.update(phase.statuses)
        latencies += phase.latencies_ms
    for status, number in statuses.items():
        if status != 201:
            tally.errors[f"intake {status}"] += number
    server_errors = log_errors([s.log for s in servers] + ([work / "worker.log"] if redis else []))
    latencies.sort()
    first, last = samples[min(1, len(samples) - 1)], samples[-1]
    checks = {
        "leads_exactly_once": set(stored) == sent and all(n == 1 for n in stored.values()),
        "consoles_complete": not any(missing),
        "claims_and_notes": counts["claimed"] == tally.claims and counts["notes"] == tally.notes,
        "no_errors": not tally.errors and not server_errors,
        "memory_flat": last <= first * (1 + MEMORY_GROWTH),
        "kept_rate": len(sent) / answering >= rate * KEPT_RATE,
    }
    delivered = sum(len(wanted[b]) for k in range(consoles) for b in serves[k % businesses])
    return {
        "db": kind,
        "processes": len(servers),
        "redis": bool(redis),
        "seconds": round(elapsed, 1),
        "rate": rate,
        "consoles": consoles,
        "leads_sent": len(sent),
        "leads_stored": sum(stored.values()),
        "intake_rps": round(len(sent) / answering, 1),
        "intake_p50_ms": round(latencies[len(latencies) // 2], 1) if latencies else 0,
        "intake_p99_ms": round(latencies[int(len(latencies) * 0.99)], 1) if latencies else 0,
        "lead_events": sum(len(seqs) for seqs in wanted.values()),
        "deliveries_expected": delivered,
        "deliveries_missing": sum(missing),
        "messages": tally.messages,
        "client_cpu": round(client_cpu, 2),  # of one core: this process shares the machine
        "claims": tally.claims,
        "notes": tally.notes,
        "errors": dict(tally.errors),
        "server_errors": server_errors[:10],
        "rss_mb": samples,
        "rss_growth": round(last / first - 1, 3) if first else 0,
        **checks,
        "ok": all(checks.values()),
    }


def report(result: dict[str, Any]) -> None:
    print(
        f"{result['seconds']:.0f} s, {result['processes']} process(es), {result['db']}"
        f"{' + redis' if result['redis'] else ''}: {result['leads_sent']} leads sent"
        f" ({result['intake_rps']}/s answered of {result['rate']:g}/s offered,"
        f" p50 {result['intake_p50_ms']} ms, p99 {result['intake_p99_ms']} ms),"
        f" {result['leads_stored']} stored"
    )
    print(
        f"{result['consoles']} consoles: {result['lead_events']} lead events,"
        f" {result['deliveries_expected']} deliveries due, {result['deliveries_missing']} missing"
        f" ({result['messages']} messages in all);"
        f" {result['claims']} claims, {result['notes']} notes"
    )
    print(f"errors {result['errors']} server {result['server_errors']}")
    print(f"the client (intake, consoles, claims) used {result['client_cpu']:.0%} of a core")
    print(f"RSS MB by sample: {result['rss_mb']} (growth {result['rss_growth']:.1%})")
    for check in CHECKS:
        print(f"  {'ok  ' if result[check] else 'FAIL'} {check}")
    print(json.dumps(result, ensure_ascii=False))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=200, help="intake leads per second")
    parser.add_argument("--consoles", type=int, default=200)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--redis", help="e.g. redis://127.0.0.1:6379/9: two servers and a worker")
    parser.add_argument("--businesses", type=int, default=20)
    parser.add_argument(
        "--actions", type=float, default=10, help="claims (each with a note) per second"
    )
    parser.add_argument("--sample", type=float, default=60, help="seconds between RSS samples")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="mazkira-soak-") as work,
        asyncio.Runner(loop_factory=loop_factory()) as runner,
    ):
        result = runner.run(
            soak(
                seconds=args.minutes * 60,
                rate=args.rate,
                consoles=args.consoles,
                kind=args.db,
                redis=args.redis,
                businesses=args.businesses,
                actions=args.actions,
                sample_every=min(args.sample, args.minutes * 60 / 2),
                work=Path(work),
            )
        )
    report(result)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
