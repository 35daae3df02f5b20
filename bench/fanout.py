"""Live fan-out: `python -m bench.fanout [--clients N] [--processes 1|2] [--leads K]`.

Starts `mazkira serve` (one process on SQLite, or two on PostgreSQL + Redis), opens N websocket
consoles across 20 businesses (one secretary each), creates K leads through the HTTP API of the
console, and measures for each lead the time from its commit (stamped by the hub) to the last
console's receipt. Prints p50/p99/max and the servers' memory; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import ClientConnection

from bench.inbox import create_database
from console.base.config import normalise_database_url
from console.base.db import Database
from console.base.migrate import upgrade
from console.people import accounts
from tests.live_client import Console, meta
from tests.servers import Server

BUSINESSES = 20
PASSWORD = "fanout-password"
POSTGRES = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/mazkira_fanout"
)
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")


def rss_mb(server: Server) -> float:
    assert server.process is not None
    return pid_rss_mb(server.process.pid)


def pid_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def fresh_postgres(url: str = POSTGRES) -> str:
    """An empty PostgreSQL database (made when missing); its URL as `mazkira serve` reads it."""
    url = normalise_database_url(url)
    await create_database(url)
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    return make_url(url).render_as_string(hide_password=False)


async def add_people(
    url: str, *, businesses: int, password: str, serves: int = 1, prefix: str = "b"
) -> list[tuple[str, str]]:
    """Migrate, then an admin and `businesses` businesses, each with its secretary `s{n}`, who
    also serves the next `serves - 1` businesses; returns each business's (slug, intake key)."""
    db = Database(normalise_database_url(url))
    await upgrade(db)
    made = []
    async with db.transaction() as session:
        await accounts.create_user(
            session, email="admin@bench.test", password=password, role="admin"
        )
        for n in range(businesses):
            business = await accounts.create_business(session, slug=f"{prefix}{n}", name=f"עסק {n}")
            made.append((business.slug, business.intake_key))
        for n in range(businesses):
            await accounts.create_user(
                session,
                email=f"s{n}@bench.test",
                password=password,
                role="secretary",
                name=f"מזכירה {n}",
                businesses=[made[(n + k) % businesses][0] for k in range(serves)],
            )
    await db.dispose()
    return made


async def listen(ws: ClientConnection, received: dict[str, list[float]]) -> None:
    """Each row fragment's delay from its stamp, under `business:seq`."""
    async for message in ws:
        stamp = meta(str(message))
        if stamp.get("t") and "lead-row" in str(message):
            received.setdefault(f"{stamp['b']}:{stamp['s']}", []).append(
                time.time() - float(stamp["t"])
            )


async def collect(
    sockets: Iterable[ClientConnection],
    make_event: Callable[[int], Awaitable[None]],
    events: int,
    per_event: int,
) -> dict[str, float | int]:
    """Make `events` events 50 ms apart while every socket listens; each one's time to its last
    console, once `per_event` consoles have it (or 5 s after the last event)."""
    received: dict[str, list[float]] = {}
    listeners = [asyncio.create_task(listen(ws, received)) for ws in sockets]
    await asyncio.sleep(1)
    for n in range(events):
        await make_event(n)
        await asyncio.sleep(0.05)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if len(received) >= events and all(len(t) >= per_event for t in received.values()):
            break
        await asyncio.sleep(0.1)
    for task in listeners:
        task.cancel()
    return spread(received, per_event)


def spread(received: dict[str, list[float]], per_event: int) -> dict[str, float | int]:
    per_event_ms = sorted(max(times) * 1000 for times in received.values()) or [0.0]
    at99 = min(len(per_event_ms) - 1, int(len(per_event_ms) * 0.99))
    return {
        "events": len(received),
        "complete_events": sum(1 for times in received.values() if len(times) >= per_event),
        "p50_ms": round(statistics.median(per_event_ms), 1),
        "p99_ms": round(per_event_ms[at99], 1),
        "max_ms": round(per_event_ms[-1], 1),
    }


async def start(processes: int, work: Path, *, postgres: bool = False) -> list[Server]:
    """One `mazkira serve` on SQLite (or PostgreSQL), or two on PostgreSQL + Redis, with the
    people in place."""
    env = {"SECRET_KEY": "fanout-" + "k" * 40}
    if processes == 2 or postgres:
        env["DATABASE_URL"] = await fresh_postgres()
    if processes == 2:
        env["REDIS_URL"] = REDIS
    servers = [Server(work / f"p{n}", env) for n in range(processes)]
    for server in servers:
        server.log.parent.mkdir(parents=True, exist_ok=True)
    await add_people(servers[0].env["DATABASE_URL"], businesses=BUSINESSES, password=PASSWORD)
    for server in servers:
        server.start()
    return servers


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--processes", type=int, choices=[1, 2], default=1)
    parser.add_argument("--leads", type=int, default=150)
    args = parser.parse_args()
    servers = await start(args.processes, Path(tempfile.mkdtemp(prefix="mazkira-fanout-")))
    try:
        result = await measure(servers, args.clients, args.leads)
    finally:
        for server in servers:
            server.stop()
    print(json.dumps({"processes": args.processes, **result}))


async def measure(servers: list[Server], clients: int, leads: int) -> dict[str, Any]:
    consoles = [
        await Console(servers[n % len(servers)]).sign_in(f"s{n}@bench.test", PASSWORD)
        for n in range(BUSINESSES)
    ]
    admin = await Console(servers[0]).sign_in("admin@bench.test", PASSWORD)
    new_call = (await admin.http.get("/leads/new")).text
    business_ids = re.findall(r'<option value="([0-9a-f-]{36})"', new_call)
    sockets = [await consoles[n % BUSINESSES].socket() for n in range(clients)]
    print(f"{len(sockets)} consoles connected", flush=True)

    async def new_lead(n: int) -> None:
        business = business_ids[n % len(business_ids)]
        answer = await admin.post(
            "/leads", business_id=business, phone=f"052-7{n:06d}", subject="bench"
        )
        assert answer.status_code == 303, answer.status_code

    figures = await collect(sockets, new_lead, leads, clients // BUSINESSES)
    for ws in sockets:
        await ws.close()
    for console in [*consoles, admin]:
        await console.close()
    return {
        "clients": clients,
        **figures,
        "rss_mb": round(sum(rss_mb(s) for s in servers), 1),
    }


if __name__ == "__main__":
    asyncio.run(main())
