"""The routing decision under load: `python -m bench.voice [--db sqlite|postgres|both]
[--rate 100] [--seconds 20]`.

An agency of 50 businesses and 20 secretaries (each business has two usual secretaries and a
backup; each secretary serves about seven businesses), all available at the start. New calls
arrive at `--rate` a second, open loop, to businesses picked at random, and each lives as the
SIP plumbing would make it live, in this process on the app's own `Database`: its row in
`calls` is written and `routing.decide` asked in one writing transaction that also sets the
chosen secretary ringing and the call's state (`calls.route_call` writes the call's lead in
that same transaction too);
she answers after a moment (four calls in five)
or lets it ring out (the call asks again with attempt+1); an answered call talks 2-5 s, then
wrap-up (2 s) ends by itself; a call nobody is free for waits as told and asks again, and
overflows past the business's limit (10 s). The clock is compressed so the 20 secretaries keep
cycling through every state.

Measured: `decide` itself (route_p50_ms, route_p99_ms: inside its open transaction), and the
whole decision as the SIP server waits for it (decision_p99_ms: the write lock, `decide`,
`set_state`, the commit); what the machine's load moves less: this process's CPU and the SQL
statements run (transaction control left out) per question (cpu_ms_per_question,
statements_per_question; the calls' rows and state changes included, the load generator's CPU
too). A waiting call's question is asked in a read transaction first and
"still nobody free" answered there, as `calls.route_call` does.

`--via http` (and `both`, the default) also measures the whole question as Kamailio asks it:
against a `mazkira serve` of its own (the same agency, a phone line per business, SIP_SECRET
set), each call POSTs `/sip/route` signed as Kamailio signs (`X-Mazkira-Timestamp`,
HMAC-SHA256) for its first question and again after every wait or ring-out (attempt+1), and
`/sip/events` answered and ended, at most 64 at a time, each signed as it is sent (as
Kamailio's workers do); its figures (`http`: route p50/p99 over every question,
`new_*` for a new call's first question, which writes its lead and row, `again_*` for the
waiting calls' questions) come from the load generator's side, waits for a connection included;
`server_cpu_ms_per_request` is the server process's CPU per question and event.
The load generator, the server and the database share this machine.

`ring_to_pop_ms` (when Kamailio, rtpengine, baresip and Chromium are installed; `--pop-calls`,
0 to leave it out): from Kamailio receiving a carrier's INVITE to the ringing banner shown in a
signed-in secretary's console, the median of `--pop-calls` calls through the real stack
(bench/ring_to_pop.py).

The last line is one JSON object per run, or one holding both (the slower database's in-process
figures at top level, the slower HTTP ones as `http_*`), with `ring_to_pop_ms` beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from asgi import warm_up
from bench import intake_env, loop_factory, ring_to_pop
from bench.inbox import POSTGRES, create_database
from bench.intake import Served
from console.base.config import normalise_database_url
from console.base.db import Database
from console.base.migrate import upgrade
from console.channels.lines import add_line
from console.voice import roster, routing
from console.voice.signatures import sign
from console.voice.states import AgentState, set_state
from models import Business, SecretaryAssignment, User
from models.agents import CallSettings
from models.voice import Call

BUSINESSES = 50
SECRETARIES = 20
SIP_SECRET = "bench-voice-shared-with-kamailio"
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
# Kamailio's HTTP workers each ask one question at a time on a connection of their own.
HTTP_WORKERS = 64


def now() -> datetime:
    return datetime.now(UTC)


async def fresh_database(kind: str) -> Database:
    if kind == "sqlite":
        folder = Path(os.environ.get("BENCH_DIR", "/tmp"))
        path = folder / f"mazkira-bench-voice-{os.getpid()}-{uuid.uuid4().hex[:6]}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        db = Database(f"sqlite+aiosqlite:///{path}")
    else:
        url = make_url(normalise_database_url(POSTGRES)).set(database="mazkira_bench_voice")
        rendered = url.render_as_string(hide_password=False)
        await create_database(rendered)
        db = Database(rendered)
        async with db.engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    await upgrade(db)
    return db


async def seed(db: Database, rng: random.Random) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """The agency: the businesses' and the secretaries' ids. Every secretary starts available."""
    async with db.transaction() as session:
        people = [
            User(
                email=f"s{n}@bench.test", name=f"Secretary {n}", role="secretary", password_hash="-"
            )
            for n in range(SECRETARIES)
        ]
        shops = [
            Business(slug=f"b{n}", name=f"Business {n}", intake_key=uuid.uuid4().hex)
            for n in range(BUSINESSES)
        ]
        session.add_all([*people, *shops])
        await session.flush()
        for shop in shops:
            session.add(
                CallSettings(
                    business_id=shop.id, ring_seconds=5, wait_limit_seconds=10, wrap_up_seconds=2
                )
            )
            chosen = rng.sample(people, 3)
            for k, person in enumerate(chosen):
                session.add(
                    SecretaryAssignment(user_id=person.id, business_id=shop.id, is_backup=k == 2)
                )
        await session.flush()
        for person in people:
            await set_state(session, person.id, AgentState.AVAILABLE, now=now())
        ids = [shop.id for shop in shops], [person.id for person in people]
    async with db.engine.begin() as connection:
        await connection.execute(text("ANALYZE"))
    return ids


class Load:
    def __init__(self, db: Database, rng: random.Random) -> None:
        self.db = db
        self.rng = rng
        self.route_ms: list[float] = []
        self.route_ms_by_action: dict[str, list[float]] = {}
        self.decision_ms: list[float] = []
        self.actions: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.errors = 0
        self.statements = 0  # SQL statements run (transaction control left out)

    def count_statements(self) -> None:
        @event.listens_for(self.db.engine.sync_engine, "before_cursor_execute")
        def counted(*args: Any) -> None:
            if not str(args[2]).lstrip().upper().startswith(TRANSACTION_CONTROL):
                self.statements += 1

    async def ask(
        self,
        call: Call,
        attempt: int,
        rung: Sequence[uuid.UUID],
        *,
        waiting: bool = False,
        first: bool = False,
    ) -> routing.RouteDecision:
        """One routing question, as the SIP endpoint answers it: the call's row kept as the
        plumbing keeps it (waiting calls are what keeps the queue's order). A waiting call's
        question is asked in a read transaction first, and "still nobody free" answered there
        (calls.route_call does the same); a writing one only to ring someone or overflow."""
        asked = time.perf_counter()
        if waiting:
            async with self.db.transaction(write=False) as session:
                await session.connection()
                decision, took_ms, _ = await _decide(session, call, attempt, rung, take=False)
                if decision.action == "wait":
                    self.timed(decision, took_ms)
            if decision.action == "wait":
                self.decision_ms.append((time.perf_counter() - asked) * 1000)
                self.actions["wait"] += 1
                return decision
        async with self.db.transaction() as session:
            await session.connection()  # the pool's wait counts in the decision, not in decide
            if first:  # the call's row and its first decision in one transaction, as route_call
                session.add(call)
                await session.flush()
            # `decide` sets the secretary it rings ringing (a conditional write), so its time
            # holds that write too.
            decision, took_ms, _ = await _decide(session, call, attempt, rung, take=True)
            self.timed(decision, took_ms)
            state = {"ring": "ringing", "wait": "waiting"}.get(decision.action, "missed")
            await keep_state(session, call, state)
        self.decision_ms.append((time.perf_counter() - asked) * 1000)
        self.actions[decision.action] += 1
        return decision

    def timed(self, decision: routing.RouteDecision, took_ms: float) -> None:
        self.route_ms.append(took_ms)
        self.route_ms_by_action.setdefault(decision.action, []).append(took_ms)

    async def _call_once(self, business: uuid.UUID) -> None:
        """A question about a new call, to warm the statements up."""
        call = Call(
            business_id=business,
            sip_call_id=uuid.uuid4().hex,
            direction="in",
            state="waiting",
            arrived_at=now(),
        )
        await self.ask(call, 1, [], first=True)

    async def move(self, user_id: uuid.UUID, state: AgentState, business: uuid.UUID) -> None:
        async with self.db.transaction() as session:
            await set_state(session, user_id, state, now=now(), business_id=business)

    async def call(self, business: uuid.UUID) -> None:
        try:
            await self._call(business)
        except Exception:
            self.errors += 1
            raise

    async def _call(self, business: uuid.UUID) -> None:
        attempt, rung = 1, list[uuid.UUID]()
        call = Call(
            business_id=business,
            sip_call_id=uuid.uuid4().hex,
            direction="in",
            state="waiting",
            arrived_at=now(),
        )
        waiting = False
        while True:
            decision = await self.ask(call, attempt, rung, waiting=waiting, first=attempt == 1)
            waiting = decision.action == "wait"
            if decision.action == "overflow":
                self.outcomes["overflow"] += 1
                return
            if decision.action == "wait":
                await asyncio.sleep(decision.wait_seconds)
                attempt += 1
                continue
            secretary = decision.ring[0]
            rung.append(secretary)
            await asyncio.sleep(self.rng.uniform(0.2, 1.0))
            if self.rng.random() < 0.2:  # she let it ring out: free again, ask again
                await self.move(secretary, AgentState.AVAILABLE, business)
                attempt += 1
                continue
            await self.move(secretary, AgentState.ON_CALL, business)
            async with self.db.transaction() as session:
                await keep_state(session, call, "answered")
            await asyncio.sleep(self.rng.uniform(2, 5))
            await self.move(secretary, AgentState.WRAP_UP, business)
            self.outcomes["answered"] += 1
            return


async def keep_state(session: AsyncSession, call: Call, state: str) -> None:
    """The call's row keeps its state, and the roster follows it, as it follows the ORM's flush
    of the row in `calls.route_call` (here one UPDATE, without reading the row first)."""
    await session.execute(
        update(Call)
        .where(Call.id == call.id)
        .values(state=state)
        .execution_options(roster_follows=True)
    )
    waiting = state == "waiting"
    roster.queue(
        session, roster.CallMoved(call.business_id, call.sip_call_id, waiting, call.arrived_at)
    )


async def _decide(
    session: AsyncSession, call: Call, attempt: int, rung: Sequence[uuid.UUID], *, take: bool
) -> tuple[routing.RouteDecision, float, datetime]:
    """`decide` for this call now, as route_call asks it; how long it took (ms), and when."""
    moment = now()
    started = time.perf_counter()
    decision = await routing.decide(
        session,
        business_id=call.business_id,
        attempt=attempt,
        rung=rung,
        waited_seconds=(moment - call.arrived_at).total_seconds(),
        now=moment,
        take=take,
    )
    return decision, (time.perf_counter() - started) * 1000, moment


async def loop_lag(lags: list[float]) -> None:
    while True:
        before = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append((time.perf_counter() - before - 0.01) * 1000)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def run(kind: str, rate: float, seconds: float) -> dict[str, Any]:
    rng = random.Random(20)
    db = await fresh_database(kind)
    try:
        businesses, secretaries = await seed(db, rng)
        load = Load(db, rng)
        for _ in range(20):  # warm the statements' caches before measuring
            await load._call_once(rng.choice(businesses))
        async with db.transaction() as session:
            for person in secretaries:
                await set_state(session, person, AgentState.AVAILABLE, now=now())
        load = Load(db, rng)
        load.count_statements()
        loads_before = roster.roster_of_database(db).loads
        warm_up()  # the garbage collector tuned as `mazkira serve` tunes it
        lags: list[float] = []
        ticking = asyncio.create_task(loop_lag(lags))
        calls: list[asyncio.Task[None]] = []
        started = time.perf_counter()
        cpu_started = time.process_time()
        late = 0.0
        for n in range(int(rate * seconds)):
            due = started + n / rate
            pause = due - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
            else:
                late = max(late, -pause)
            calls.append(asyncio.create_task(load.call(rng.choice(businesses))))
        arrived = time.perf_counter() - started
        results = await asyncio.gather(*calls, return_exceptions=True)
        cpu_s = time.process_time() - cpu_started
        loads = roster.roster_of_database(db).loads - loads_before
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures[:3]:
            print(f"{kind}: {type(failure).__name__}: {str(failure)[:200]}", flush=True)
        ticking.cancel()
    finally:
        await db.dispose()
        if kind == "sqlite":  # a file of this run's own, made afresh each time
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db.url.split('///', 1)[1]}{suffix}").unlink(missing_ok=True)
    return {
        "db": kind,
        "route_p50_ms": round(statistics.median(load.route_ms), 2),
        "route_p99_ms": round(percentile(load.route_ms, 0.99), 2),
        "decision_p50_ms": round(statistics.median(load.decision_ms), 2),
        "decision_p99_ms": round(percentile(load.decision_ms, 0.99), 2),
        "calls_per_s": round(len(calls) / arrived, 1),
        "decisions": len(load.route_ms),
        # `decide`'s p99 by its answer: a "ring" holds the conditional write that takes her.
        "route_p99_ms_by_action": {
            action: round(percentile(took, 0.99), 2)
            for action, took in sorted(load.route_ms_by_action.items())
        },
        # The roster's loads in the run (at most one a second; each in a question's time).
        "roster_loads": loads,
        "decisions_per_s": round(len(load.route_ms) / arrived, 1),
        "actions": dict(load.actions),
        "outcomes": dict(load.outcomes),
        "errors": len(failures),
        # This process's CPU (the load generator's included; PostgreSQL's own is not) and the
        # SQL statements its questions, state changes and calls' rows ran, per question asked:
        # what the machine's load moves less than the times.
        "cpu_ms_per_question": round(cpu_s * 1000 / max(1, len(load.decision_ms)), 2),
        "statements_per_question": round(load.statements / max(1, len(load.decision_ms)), 2),
        # How late the event loop ran a 10 ms timer: the load generator shares the loop, so a
        # busy machine shows here and in every figure above.
        "loop_lag_p99_ms": round(percentile(lags, 0.99), 1),
        "arrivals_late_max_ms": round(late * 1000, 1),
        "businesses": BUSINESSES,
        "secretaries": SECRETARIES,
    }


# --- the whole question over HTTP, as Kamailio asks it ------------------------------------------


class HttpLoad:
    """Calls living as Kamailio makes them live (deploy/sip/kamailio.cfg): POST /sip/route signed
    with the shared secret for the new call and after every wait or ring-out (attempt+1), the
    answered and ended events on /sip/events; against a `mazkira serve` of its own."""

    def __init__(self, client: httpx.AsyncClient, rng: random.Random) -> None:
        self.client = client
        self.rng = rng
        self.new_ms: list[float] = []  # a new call's first question (the lead and its row)
        self.again_ms: list[float] = []  # a waiting or rung-out call asking again
        self.actions: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.refused = 0
        self.events = 0
        self.workers = asyncio.Semaphore(HTTP_WORKERS)

    async def post(self, path: str, fields: dict[str, str]) -> str:
        """Signed as a Kamailio worker signs: when it sends, on a connection it holds (signed
        earlier and queued behind the client's pool, a question could reach the server past the
        signature's minute, which no Kamailio would do)."""
        data = str(httpx.QueryParams(fields)).encode()
        async with self.workers:
            stamp = str(int(time.time()))
            answer = await self.client.post(
                path,
                content=data,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Mazkira-Timestamp": stamp,
                    "X-Mazkira-Signature": sign(SIP_SECRET, stamp, data),
                },
            )
        if answer.status_code != 200:
            self.refused += 1
            raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:200]}")
        return answer.text

    async def route(self, call_id: str, caller: str, number: str, attempt: int) -> dict[str, str]:
        asked = time.perf_counter()
        text = await self.post(
            "/sip/route",
            {
                "direction": "in",
                "call_id": call_id,
                "caller": caller,
                "caller_name": "",
                "dialled": number,
                "attempt": str(attempt),
            },
        )
        (self.new_ms if attempt == 1 else self.again_ms).append(
            (time.perf_counter() - asked) * 1000
        )
        fields = dict(part.split("=", 1) for part in text.split(";"))
        self.actions[fields["action"]] += 1
        return fields

    async def call(self, number: str) -> None:
        call_id = f"{uuid.uuid4().hex}@bench"
        caller = f"+97250{self.rng.randrange(10**7):07d}"
        attempt = 1
        while True:
            answer = await self.route(call_id, caller, number, attempt)
            if answer["action"] == "overflow":
                self.outcomes["overflow"] += 1
                return
            attempt += 1
            if answer["action"] == "wait":
                await asyncio.sleep(int(answer["seconds"]))
                continue
            user = answer["users"].split(".")[0]
            await asyncio.sleep(self.rng.uniform(0.2, 1.0))
            if self.rng.random() < 0.2:  # rung out: Kamailio's failure route asks again
                continue
            await self.post("/sip/events", {"event": "answered", "call_id": call_id, "user": user})
            await asyncio.sleep(self.rng.uniform(2, 5))
            ended = {"event": "ended", "call_id": call_id, "reason": "caller_hangup"}
            await self.post("/sip/events", ended)
            self.events += 2
            self.outcomes["answered"] += 1
            return


async def phone_lines(db: Database, businesses: Sequence[uuid.UUID]) -> list[str]:
    """A phone number for each business (what the carrier's INVITE is addressed to)."""
    numbers = []
    async with db.transaction() as session:
        for n, business_id in enumerate(businesses):
            number = f"+9723555{n:04d}"
            await add_line(session, await session.get_one(Business, business_id), "phone", number)
            numbers.append(number)
    return numbers


async def run_http(kind: str, rate: float, seconds: float) -> dict[str, Any]:
    rng = random.Random(20)
    db = await fresh_database(kind)
    work = Path(tempfile.mkdtemp(prefix="mazkira-bench-voice-"))
    server: Served | None = None
    try:
        businesses, secretaries = await seed(db, rng)
        numbers = await phone_lines(db, businesses)
        env = {
            **intake_env(db.url, secret="bench-voice"),
            "SIP_SECRET": SIP_SECRET,
            "SIP_WS_URL": "ws://127.0.0.1:9/",
        }
        server = Served("console.cli", ["serve"], env, work / "console.log")
        server.start()
        await server.ready()
        # Kamailio's http_client asks from each of its worker processes, one request at a time.
        limits = httpx.Limits(max_connections=HTTP_WORKERS, max_keepalive_connections=HTTP_WORKERS)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{server.port}", limits=limits, timeout=60
        ) as client:
            warm = HttpLoad(client, rng)
            await asyncio.gather(*(warm.call(rng.choice(numbers)) for _ in range(20)))
            async with db.transaction() as session:
                for person in secretaries:
                    await set_state(session, person, AgentState.AVAILABLE, now=now())
            load = HttpLoad(client, rng)
            lags: list[float] = []
            ticking = asyncio.create_task(loop_lag(lags))
            calls: list[asyncio.Task[None]] = []
            started = time.perf_counter()
            served_cpu = cpu_seconds(server)
            for n in range(int(rate * seconds)):
                pause = started + n / rate - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
                calls.append(asyncio.create_task(load.call(rng.choice(numbers))))
            arrived = time.perf_counter() - started
            results = await asyncio.gather(*calls, return_exceptions=True)
            served_cpu = cpu_seconds(server) - served_cpu
            ticking.cancel()
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures[:3]:
            print(f"{kind} http: {type(failure).__name__}: {str(failure)[:200]}", flush=True)
    finally:
        if server is not None:
            server.stop()
        await db.dispose()
        if kind == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db.url.split('///', 1)[1]}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    every = load.new_ms + load.again_ms
    return {
        "db": kind,
        "route_p50_ms": round(statistics.median(every), 1),
        "route_p99_ms": round(percentile(every, 0.99), 1),
        "new_p50_ms": round(statistics.median(load.new_ms), 1),
        "new_p99_ms": round(percentile(load.new_ms, 0.99), 1),
        "again_p50_ms": round(statistics.median(load.again_ms), 1) if load.again_ms else None,
        "again_p99_ms": round(percentile(load.again_ms, 0.99), 1) if load.again_ms else None,
        "calls_per_s": round(len(calls) / arrived, 1),
        "questions_per_s": round(len(every) / arrived, 1),
        "actions": dict(load.actions),
        "outcomes": dict(load.outcomes),
        "errors": len(failures),
        # The server's CPU (its process, not the database's) per question and event it answered.
        "server_cpu_ms_per_request": round(served_cpu * 1000 / max(1, len(every) + load.events), 2),
        "loop_lag_p99_ms": round(percentile(lags, 0.99), 1),
    }


def cpu_seconds(server: Served) -> float:
    """The server process's CPU time so far (user and system), from /proc."""
    assert server.process is not None
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rate", type=float, default=100.0, help="new calls a second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--via",
        choices=["process", "http", "both"],
        default="both",
        help="decide in-process, the whole question over HTTP against mazkira serve, or both",
    )
    parser.add_argument(
        "--pop-calls",
        type=int,
        default=5,
        help="calls through the real SIP stack and a browser for ring_to_pop_ms (0: none)",
    )
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    found: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        if args.via in ("process", "both"):
            found[kind] = await run(kind, args.rate, args.seconds)
        else:
            found[kind] = {"db": kind, "route_p50_ms": None, "route_p99_ms": None}
        if args.via in ("http", "both"):
            found[kind]["http"] = await run_http(kind, args.rate, args.seconds)
        print(json.dumps(found[kind]), flush=True)
    # The last line: the slower database's figures at top level (in-process `decide`, and the
    # whole question over HTTP as http_*), each database's beside them.
    summary: dict[str, Any] = {}
    timed = [figures for figures in found.values() if figures["route_p99_ms"] is not None]
    if timed:
        worst = max(timed, key=lambda figures: figures["route_p99_ms"])
        summary = {key: worst[key] for key in ("route_p50_ms", "route_p99_ms", "calls_per_s")}
        summary["worst_db"] = worst["db"]
    served = [figures["http"] for figures in found.values() if "http" in figures]
    if served:
        slowest = max(served, key=lambda figures: figures["route_p99_ms"])
        for key in ("route_p50_ms", "route_p99_ms", "calls_per_s"):
            summary[f"http_{key}"] = slowest[key]
        summary["http_worst_db"] = slowest["db"]
    if args.pop_calls > 0 and ring_to_pop.available():
        popped = await ring_to_pop.measure(args.pop_calls)
        summary["ring_to_pop_ms"] = popped["ring_to_pop_ms"]
        found["ring_to_pop"] = popped
    print(json.dumps({**summary, "runs": found}))


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main())
