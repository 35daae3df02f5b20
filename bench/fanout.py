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
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench.inbox import create_database
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
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def fresh_postgres() -> str:
    await create_database(POSTGRES)
    engine = create_async_engine(POSTGRES)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    return make_url(POSTGRES).render_as_string(hide_password=False)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--processes", type=int, choices=[1, 2], default=1)
    parser.add_argument("--leads", type=int, default=150)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mazkira-fanout-"))
    env = {"SECRET_KEY": "fanout-" + "k" * 40}
    if args.processes == 2:
        env |= {"DATABASE_URL": await fresh_postgres(), "REDIS_URL": REDIS}
    servers = [Server(work / f"p{n}", env) for n in range(args.processes)]
    for server in servers:
        server.log.parent.mkdir(parents=True, exist_ok=True)
    first = servers[0]
    first.run("migrate")
    first.run(
        "create-user", "--email", "admin@bench.test", "--password", PASSWORD, "--role", "admin"
    )
    for n in range(BUSINESSES):
        first.run("create-business", "--slug", f"b{n}", "--name", f"עסק {n}")
        first.run(
            "create-user",
            "--email",
            f"s{n}@bench.test",
            "--password",
            PASSWORD,
            "--role",
            "secretary",
            "--business",
            f"b{n}",
        )
    for server in servers:
        server.start()
    try:
        result = await measure(servers, args.clients, args.leads)
    finally:
        for server in servers:
            server.stop()
    print(json.dumps({"processes": args.processes, **result}))


async def measure(servers: list[Server], clients: int, leads: int) -> dict[str, float | int]:
    consoles = [
        await Console(servers[n % len(servers)]).sign_in(f"s{n}@bench.test", PASSWORD)
        for n in range(BUSINESSES)
    ]
    admin = await Console(servers[0]).sign_in("admin@bench.test", PASSWORD)
    new_call = (await admin.http.get("/leads/new")).text
    business_ids = re.findall(r'<option value="([0-9a-f-]{36})"', new_call)
    received: dict[str, list[float]] = {}
    sockets = []
    for n in range(clients):
        console = consoles[n % BUSINESSES]
        sockets.append(await console.socket())
    print(f"{len(sockets)} consoles connected", flush=True)

    async def listen(ws: object) -> None:
        async for message in ws:  # type: ignore[attr-defined]
            stamp = meta(str(message))
            if stamp.get("t") and "lead-row" in str(message):
                received.setdefault(f"{stamp['b']}:{stamp['s']}", []).append(
                    time.time() - float(stamp["t"])
                )

    listeners = [asyncio.create_task(listen(ws)) for ws in sockets]
    await asyncio.sleep(1)
    for n in range(leads):
        business = business_ids[n % len(business_ids)]
        answer = await admin.post(
            "/leads", business_id=business, phone=f"052-7{n:06d}", subject="bench"
        )
        assert answer.status_code == 303, answer.status_code
        await asyncio.sleep(0.05)
    await asyncio.sleep(2)
    per_event = sorted(max(times) * 1000 for times in received.values())
    complete = sum(1 for times in received.values() if len(times) >= clients // BUSINESSES)
    for task in listeners:
        task.cancel()
    for ws in sockets:
        await ws.close()
    for console in [*consoles, admin]:
        await console.close()
    return {
        "clients": clients,
        "events": len(per_event),
        "complete_events": complete,
        "p50_ms": round(statistics.median(per_event), 1),
        "p99_ms": round(per_event[min(len(per_event) - 1, int(len(per_event) * 0.99))], 1),
        "max_ms": round(per_event[-1], 1),
        "rss_mb": round(sum(rss_mb(s) for s in servers), 1),
    }


if __name__ == "__main__":
    asyncio.run(main())
