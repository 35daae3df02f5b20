"""Web-form intake under load: `python -m bench.intake [--db sqlite|postgres] [--rate R]`.

Two servers run side by side, each a uvicorn subprocess with the options of `mazkira serve`:
the console itself (`mazkira serve` on a fresh database: a SQLite file, or the PostgreSQL
database `mazkira_bench_intake`, made when missing) and a bare Starlette app whose one route
parses a JSON body and answers 201 with JSON (`bench/ceiling.py`, the framework's ceiling).
They are loaded one at a time, the same way:

- at a fixed offered rate (`--rate`, 500/s; open loop): requests leave on a schedule whatever the
  answers, over a pool of keep-alive connections, and each latency counts from the moment its
  request was due, so a stalled server cannot hide behind a waiting client;
- at maximum throughput (closed loop): `--connections` keep-alive connections each send the next
  request as soon as the answer to the last one is in.

The load is made in this process by a raw asyncio HTTP/1.1 client (uvloop when installed) that
writes each request in one call and reads back only the status, the headers and the body's
length: a few percent of the server's cost per request, so the figures are the server's (the
client's own CPU share is printed as `client_cpu`). Every request is what a business's site
sends: `POST /intake/{slug}/form` with its `X-Intake-Key`, a unique `external_id`, a Hebrew name,
a valid Israeli mobile number written the ways people write them (one caller in ten writes
again), sometimes an e-mail, and a message; ten businesses with their default hours. The tables
start empty, or with `--existing N` month-old leads (closed; a contact per two leads), to show
that a form's cost does not grow with what the agency has gathered.
On PostgreSQL the tables are analyzed after the warm-up, as autovacuum would have done them in
the first minute of a real deployment (`analyze`).

The last line is one JSON object: `db`, `existing`, `intake_rps` and `ceiling_rps` at maximum
throughput, their `ratio`, and intake's `p50_ms` / `p99_ms` at the fixed rate (targets: ratio ≥
0.25, p99 < 50 ms at 500/s).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import phonenumbers
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import make_url

from bench import intake_env, loop_factory
from bench.inbox import create_database
from console.base.config import normalise_database_url
from console.base.db import Database
from console.base.migrate import upgrade
from console.intake import arrivals
from console.intake.web_forms import form_arrival
from console.people import accounts
from models import Lead, LeadAlarm

ROOT = Path(__file__).resolve().parent.parent
clock = time.perf_counter  # uvloop's loop.time() counts whole milliseconds
POSTGRES = os.environ.get(
    "BENCH_INTAKE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/mazkira_bench_intake"
)
BUSINESSES = 10
FIRST_NAMES = (
    "דנה", "יוסי", "מיכל", "אבי", "נועה", "משה", "שירה", "דוד", "רחל", "איתי",
    "תמר", "עומר", "יעל", "אורי", "רונית", "חיים", "ליאור", "שרה", "עידן", "מאיה",
)  # fmt: skip
LAST_NAMES = (
    "כהן", "לוי", "מזרחי", "פרץ", "ביטון", "דהן", "אברהם", "פרידמן", "אזולאי", "מלכה",
    "גבאי", "שפירא", "חדד", "קצב", "אוחיון", "בן דוד", "אלון", "רוזנברג",
)  # fmt: skip
MESSAGES = (
    "נזילה במטבח, אפשר לחזור אליי היום?",
    "מבקש הצעת מחיר להתקנת מזגן בסלון",
    "רציתי לקבוע תור לשבוע הבא, עדיף בבוקר",
    "האם אתם עובדים גם ביום שישי?",
    "צריך טכנאי דחוף, אין מים חמים בכלל",
    "ראיתי את המודעה שלכם באינטרנט ואשמח לפרטים",
)
MOBILE_PREFIXES = ("050", "052", "053", "054", "055", "058")


# --- what the sites send ----------------------------------------------------------------------


def mobile_numbers(count: int, rng: random.Random) -> list[str]:
    """Valid Israeli mobile numbers (an assigned range, as the console requires), national form."""
    found: list[str] = []
    while len(found) < count:
        national = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(2_000_000, 10_000_000):07d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(national, "IL")):
            found.append(national)
    return found


def written(national: str, n: int) -> str:
    """The ways people type a number: 054-2345678, 0542345678, +972 54-234-5678."""
    style = n % 3
    if style == 0:
        return f"{national[:3]}-{national[3:]}"
    if style == 1:
        return national
    return f"+972 {national[1:3]}-{national[3:6]}-{national[6:]}"


@dataclass
class Forms:
    """Request n, as bytes on the wire: one business's form, unique by external_id."""

    businesses: list[tuple[str, str]]  # (slug, intake key)
    host: str
    run: str = field(default_factory=lambda: f"{time.time_ns():x}")
    phones: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(5)
        self.phones = self.phones or mobile_numbers(20_000, rng)
        self.heads = [
            (
                f"POST /intake/{slug}/form HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Content-Type: application/json\r\nX-Intake-Key: {key}\r\n"
            ).encode()
            for slug, key in self.businesses
        ]

    def __call__(self, n: int) -> bytes:
        business = n % len(self.businesses)
        caller = n - 10 * len(self.businesses) if n % 10 == 9 and n >= 100 else n  # writes again
        name = f"{FIRST_NAMES[caller % 20]} {LAST_NAMES[caller % 17]}"
        form: dict[str, str] = {
            "name": name,
            "phone": written(self.phones[caller % len(self.phones)], caller),
            "message": MESSAGES[n % len(MESSAGES)],
            "source": "אתר",
            "external_id": f"{self.run}-{n}",
        }
        if n % 4 == 0:
            form["email"] = f"lead{caller}@example.co.il"
        body = json.dumps(form, ensure_ascii=False).encode()
        return b"%sContent-Length: %d\r\n\r\n%s" % (self.heads[business], len(body), body)


# --- the client -------------------------------------------------------------------------------


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: a request at a time, answered with its status."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        _, connection = await asyncio.get_running_loop().create_connection(cls, host, port)
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None:
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        length, at = 0, head.find(b"\r\ncontent-length:")
        if at >= 0:
            line_end = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
        if len(self.buffer) < end + 4 + length:
            return
        del self.buffer[: end + 4 + length]
        waiter, self.waiter = self.waiter, None
        waiter.set_result(int(head[9:12]))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    async def request(self, data: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class Phase:
    requests: int
    seconds: float
    latencies_ms: list[float]
    statuses: Counter[int]
    client_cpu: float  # share of one core the client used

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)

        def at(share: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 2)

        return {
            "rps": round(self.requests / self.seconds, 1),
            "p50_ms": at(0.5),
            "p99_ms": at(0.99),
            "max_ms": round(ordered[-1], 2),
            "statuses": dict(self.statuses),
            "client_cpu": round(self.client_cpu, 2),
        }


class Load:
    """Requests numbered from 0 on, made by `make`, against one server."""

    def __init__(self, port: int, make: Callable[[int], bytes]) -> None:
        self.port = port
        self.make = make
        self.sent = 0

    def next_request(self) -> bytes:
        self.sent += 1
        return self.make(self.sent - 1)

    async def at_rate(self, rate: float, seconds: float, connections: int = 64) -> Phase:
        """Open loop: request i is due at start + i/rate; its latency counts from then."""
        idle: asyncio.Queue[Connection] = asyncio.Queue()
        for _ in range(connections):
            idle.put_nowait(await Connection.open("127.0.0.1", self.port))
        latencies: list[float] = []
        statuses: Counter[int] = Counter()

        async def one(data: bytes, due: float) -> None:
            connection = await idle.get()
            statuses[await connection.request(data)] += 1
            latencies.append((clock() - due) * 1000)
            idle.put_nowait(connection)

        total = max(1, int(rate * seconds))
        tasks = []
        cpu, start = time.process_time(), clock() + 0.01
        for i in range(total):
            due = start + i / rate
            if (wait := due - clock()) > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one(self.next_request(), due)))
        await asyncio.gather(*tasks)
        elapsed = clock() - start
        cpu = time.process_time() - cpu
        while not idle.empty():
            idle.get_nowait().close()
        return Phase(total, elapsed, latencies, statuses, cpu / elapsed)

    async def flat_out(self, seconds: float, connections: int) -> Phase:
        """Closed loop: each connection sends its next request when its answer is in."""
        pool = [await Connection.open("127.0.0.1", self.port) for _ in range(connections)]
        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        cpu, start = time.process_time(), clock()
        stop = start + seconds

        async def keep_sending(connection: Connection) -> None:
            while clock() < stop:
                data = self.next_request()
                sent = clock()
                statuses[await connection.request(data)] += 1
                latencies.append((clock() - sent) * 1000)

        await asyncio.gather(*(keep_sending(c) for c in pool))
        elapsed = clock() - start
        cpu = time.process_time() - cpu
        for connection in pool:
            connection.close()
        return Phase(len(latencies), elapsed, latencies, statuses, cpu / elapsed)


async def measure(
    load: Load,
    *,
    rate: float,
    seconds: float,
    connections: int,
    warmup: float,
    warmed: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Warm up, then the fixed rate, then maximum throughput; the collector stays out of it."""
    await load.at_rate(rate, warmup)
    if warmed is not None:
        await warmed()
    gc.collect()
    gc.disable()
    try:
        fixed = await load.at_rate(rate, seconds)
        flat = await load.flat_out(seconds, connections)
    finally:
        gc.enable()
    return {"fixed": fixed.summary(), "max": flat.summary()}


# --- the servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """A uvicorn subprocess (`mazkira serve` or the ceiling), stopped with SIGTERM."""

    def __init__(self, module: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.command = [sys.executable, "-m", module, *args, "--port", str(self.port)]
        self.env = {**os.environ, **env}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    async def ready(self) -> None:
        """uvicorn binds its socket once the app's start-up is done."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                break
            try:
                (await Connection.open("127.0.0.1", self.port)).close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.command} did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


# --- the run ----------------------------------------------------------------------------------


async def fresh_database(kind: str, work: Path) -> str:
    """An empty, migrated database for this run; its URL as `mazkira serve` reads it."""
    if kind == "sqlite":
        url = f"sqlite:///{work / 'web_forms.db'}"
    else:
        url = make_url(POSTGRES).render_as_string(hide_password=False)
        await create_database(normalise_database_url(url))
        db = Database(normalise_database_url(url))
        async with db.engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        await db.dispose()
    db = Database(normalise_database_url(url))
    await upgrade(db)
    await db.dispose()
    return url


async def add_businesses(url: str, count: int) -> list[tuple[str, str]]:
    db = Database(normalise_database_url(url))
    made = []
    async with db.transaction() as session:
        for n in range(count):
            business = await accounts.create_business(session, slug=f"intake-{n}", name=f"עסק {n}")
            made.append((business.slug, business.intake_key))
    await db.dispose()
    return made


async def add_existing(url: str, businesses: list[tuple[str, str]], count: int) -> None:
    """`count` leads from a month ago, as a long-running agency's tables hold them (a contact
    per two leads), written by the web form's own group writer a thousand at a time, then
    answered and closed so that the SLA sweep has nothing to do during the run. A form's
    lookups must not grow with these tables."""
    if count <= 0:
        return
    db = Database(normalise_database_url(url))
    phones = mobile_numbers(max(1, count // 2), random.Random(11))
    then = datetime.now(UTC) - timedelta(days=30)
    for start in range(0, count, 1000):
        deliveries = [
            form_arrival(
                *businesses[n % len(businesses)],
                {
                    "name": FIRST_NAMES[n % 20],
                    "phone": phones[n % len(phones)],
                    "external_id": f"old-{n}",
                },
                then,
            )
            for n in range(start, min(count, start + 1000))
        ]
        async with db.transaction() as session:
            await arrivals.write(session, deliveries)
    async with db.transaction() as session:
        await session.execute(delete(LeadAlarm))
        await session.execute(
            update(Lead).values(stage="won", first_response_at=then, closed_at=then)
        )
    await db.dispose()
    await analyze(url)


async def analyze(url: str) -> None:
    """On PostgreSQL, the statistics autovacuum gathers within a minute of the first writes
    (its naptime), which a run of half a minute on fresh tables would not otherwise see.
    Without them each connection keeps the plans it made for its prepared statements while
    the tables were all but empty, some by the wrong index (costs tie on an empty table), and
    runs of the same code disagree. An ANALYZE invalidates those plans."""
    db = Database(normalise_database_url(url))
    if not db.is_sqlite:
        async with db.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("ANALYZE"))
    await db.dispose()


async def count_leads(url: str) -> int:
    db = Database(normalise_database_url(url))
    async with db.transaction(write=False) as session:
        found = int(await session.scalar(select(func.count()).select_from(Lead)) or 0)
    await db.dispose()
    return found


async def run(
    kind: str,
    *,
    rate: float,
    seconds: float,
    connections: int,
    warmup: float,
    work: Path,
    businesses: int = BUSINESSES,
    existing: int = 0,
) -> dict[str, Any]:
    url = await fresh_database(kind, work)
    made = await add_businesses(url, businesses)
    await add_existing(url, made, existing)
    forms = Forms(made, host="127.0.0.1")
    env = intake_env(url, secret="bench-intake")
    console = Served("console.cli", ["serve"], env, work / "console.log")
    ceiling = Served("bench.ceiling", [], {}, work / "ceiling.log")
    try:
        for server in (console, ceiling):
            server.start()
        for server in (console, ceiling):
            await server.ready()
        intake_load = Load(console.port, forms)
        intake = await measure(
            intake_load,
            rate=rate,
            seconds=seconds,
            connections=connections,
            warmup=warmup,
            warmed=lambda: analyze(url),
        )
        top = await measure(
            Load(ceiling.port, forms),
            rate=rate,
            seconds=seconds,
            connections=connections,
            warmup=warmup,
        )
    finally:
        for server in (console, ceiling):
            server.stop()
    created = intake["fixed"]["statuses"].get(201, 0) + intake["max"]["statuses"].get(201, 0)
    warmed = max(1, int(rate * warmup))
    leads = await count_leads(url) - existing
    assert leads == intake_load.sent, (leads, intake_load.sent)  # every form is one lead
    assert created == intake_load.sent - warmed, (created, intake_load.sent - warmed)
    return {
        "db": kind,
        "existing": existing,
        "intake_rps": intake["max"]["rps"],
        "ceiling_rps": top["max"]["rps"],
        "ratio": round(intake["max"]["rps"] / top["max"]["rps"], 3),
        "p50_ms": intake["fixed"]["p50_ms"],
        "p99_ms": intake["fixed"]["p99_ms"],
        "rate": rate,
        "intake": intake,
        "ceiling": top,
    }


def report(result: dict[str, Any]) -> None:
    for name in ("intake", "ceiling"):
        for phase, title in (("fixed", f"at {result['rate']:g}/s"), ("max", "flat out")):
            figures = result[name][phase]
            print(
                f"{name:8} {title:11} {figures['rps']:8.1f} req/s  p50 {figures['p50_ms']:6.2f} ms"
                f"  p99 {figures['p99_ms']:7.2f} ms  max {figures['max_ms']:7.2f} ms"
                f"  statuses {figures['statuses']}  client cpu {figures['client_cpu']:.0%}"
            )
    print(f"intake / ceiling: {result['ratio']:.1%}")
    keys = ("db", "existing", "intake_rps", "ceiling_rps", "ratio", "p50_ms", "p99_ms")
    print(json.dumps({key: result[key] for key in keys}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rate", type=float, default=500, help="offered requests/s for latency")
    parser.add_argument("--seconds", type=float, default=10, help="length of each phase")
    parser.add_argument("--connections", type=int, default=64, help="for maximum throughput")
    parser.add_argument("--warmup", type=float, default=2, help="seconds at the rate first")
    parser.add_argument(
        "--existing", type=int, default=0, help="leads in the tables before the run (a month old)"
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="mazkira-intake-") as work,
        asyncio.Runner(loop_factory=loop_factory()) as runner,
    ):
        result = runner.run(
            run(
                args.db,
                rate=args.rate,
                seconds=args.seconds,
                connections=args.connections,
                warmup=args.warmup,
                work=Path(work),
                existing=args.existing,
            )
        )
    report(result)


if __name__ == "__main__":
    main()
