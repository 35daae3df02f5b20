"""The routing decision under load: `python -m bench.voice [--db sqlite|postgres|both]
[--rate 100] [--seconds 20]`.

An agency of 50 businesses and 20 secretaries (each business has two usual secretaries and a
backup; each secretary serves about seven businesses), all available at the start. New calls
arrive at `--rate` a second, open loop, to businesses picked at random, and each lives as the
SIP plumbing would make it live, in this process on the app's own `Database`: its row in
`calls` is written, then it asks `routing.decide` in a writing transaction that also sets the
chosen secretary ringing and the call's state; she answers after a moment (four calls in five)
or lets it ring out (the call asks again with attempt+1); an answered call talks 2-5 s, then
wrap-up (2 s) ends by itself; a call nobody is free for waits as told and asks again, and
overflows past the business's limit (10 s). The clock is compressed so the 20 secretaries keep
cycling through every state.

Measured: `decide` itself (route_p50_ms, route_p99_ms: inside its open transaction), and the
whole decision as the SIP server waits for it (decision_p99_ms: the write lock, `decide`,
`set_state`, the commit). The last line is one JSON object per run, or one holding both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.engine import make_url

from bench import loop_factory
from bench.inbox import POSTGRES, create_database
from console.base.config import normalise_database_url
from console.base.db import Database
from console.base.migrate import upgrade
from console.voice import routing
from console.voice.states import AgentState, set_state
from models import Business, SecretaryAssignment, User
from models.agents import CallSettings
from models.voice import Call

BUSINESSES = 50
SECRETARIES = 20


def now() -> datetime:
    return datetime.now(UTC)


async def fresh_database(kind: str) -> Database:
    if kind == "sqlite":
        path = Path(os.environ.get("BENCH_DIR", "/tmp")) / f"mazkira-bench-voice-{os.getpid()}.db"
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
        self.decision_ms: list[float] = []
        self.actions: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.errors = 0

    async def ask(
        self, call: Call, attempt: int, rung: Sequence[uuid.UUID]
    ) -> routing.RouteDecision:
        """One routing question, as the SIP endpoint answers it: the call's row kept as the
        plumbing keeps it (waiting calls are what keeps the queue's order)."""
        asked = time.perf_counter()
        async with self.db.transaction() as session:
            await session.connection()  # the pool's wait counts in the decision, not in decide
            moment = now()
            started = time.perf_counter()
            decision = await routing.decide(
                session,
                business_id=call.business_id,
                attempt=attempt,
                rung=rung,
                waited_seconds=(moment - call.arrived_at).total_seconds(),
                now=moment,
            )
            self.route_ms.append((time.perf_counter() - started) * 1000)
            for user_id in decision.ring:
                await set_state(
                    session, user_id, AgentState.RINGING, now=moment, business_id=call.business_id
                )
            state = {"ring": "ringing", "wait": "waiting"}.get(decision.action, "missed")
            await session.execute(update(Call).where(Call.id == call.id).values(state=state))
        self.decision_ms.append((time.perf_counter() - asked) * 1000)
        self.actions[decision.action] += 1
        return decision

    async def _call_once(self, business: uuid.UUID) -> None:
        """A question about a new call, to warm the statements up."""
        call = Call(
            business_id=business,
            sip_call_id=uuid.uuid4().hex,
            direction="in",
            state="waiting",
            arrived_at=now(),
        )
        async with self.db.transaction() as session:
            session.add(call)
        await self.ask(call, 1, [])

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
        async with self.db.transaction() as session:
            session.add(call)
        while True:
            decision = await self.ask(call, attempt, rung)
            if decision.action == "overflow":
                self.outcomes["overflow"] += 1
                return
            if decision.action == "wait":
                await asyncio.sleep(decision.wait_seconds)
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
                await session.execute(
                    update(Call).where(Call.id == call.id).values(state="answered")
                )
            await asyncio.sleep(self.rng.uniform(2, 5))
            await self.move(secretary, AgentState.WRAP_UP, business)
            self.outcomes["answered"] += 1
            return


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
        lags: list[float] = []
        ticking = asyncio.create_task(loop_lag(lags))
        calls: list[asyncio.Task[None]] = []
        started = time.perf_counter()
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
        "decisions_per_s": round(len(load.route_ms) / arrived, 1),
        "actions": dict(load.actions),
        "outcomes": dict(load.outcomes),
        "errors": len(failures),
        # How late the event loop ran a 10 ms timer: the load generator shares the loop, so a
        # busy machine shows here and in every figure above.
        "loop_lag_p99_ms": round(percentile(lags, 0.99), 1),
        "arrivals_late_max_ms": round(late * 1000, 1),
        "businesses": BUSINESSES,
        "secretaries": SECRETARIES,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rate", type=float, default=100.0, help="new calls a second")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    found = {}
    for kind in kinds:
        found[kind] = await run(kind, args.rate, args.seconds)
        print(json.dumps(found[kind]), flush=True)
    if len(found) == 1:
        return
    # The last line: the slower database's figures at top level, each database's beside them.
    worst = max(found.values(), key=lambda figures: figures["route_p99_ms"])
    summary = {key: worst[key] for key in ("route_p50_ms", "route_p99_ms", "calls_per_s")}
    print(json.dumps({**summary, "worst_db": worst["db"], "runs": found}))


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main())
