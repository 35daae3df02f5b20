"""What every request pays before its own work, in-process: `python -m bench.floor [--leads N]
[--requests R] [--path NAME]... [--profile NAME]`.

On `bench.http`'s data (a copy of its seeded SQLite file: N leads, 10,000, the secretary seeing
7,000 open ones), the whole app (middleware, session, queries, templates) called as an ASGI app,
so no client's work is in the figures (signed in first through httpx), as the seeded secretary,
the API with the owner's token. For each path, after 20 warm-up requests, R requests (300) one
after another: CPU time a request (`time.process_time`, every thread of the process, the SQLite
driver's included; mean and median), wall time, and statements a request (BEGIN, COMMIT and
ROLLBACK left out). The paths: `nothing` (a 404 signed in: every layer and `base.html`, no
handler), tasks, alerts, api_show, autosave (a POST with htmx into one of her open calls).
`--profile NAME` prints cProfile's figures (CPU time of the event loop's thread) for that path
instead. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import event
from sqlalchemy.engine import make_url

from bench.http import SECRETARY_OPEN, World, arrange
from bench.inbox import bench_app, prepare, sign_in
from console.base.db import Database

PATHS = ("nothing", "tasks", "alerts", "api_show", "autosave")


async def measure(
    leads: int, requests: int, paths: tuple[str, ...], profile: str | None
) -> dict[str, Any]:
    seeded = await prepare(
        "sqlite", leads, 1_000, secretary_open=min(SECRETARY_OPEN, leads * 7 // 10)
    )
    source = Path(make_url(seeded.url).database or "")
    await seeded.dispose()
    with tempfile.TemporaryDirectory() as work:
        target = Path(work) / "floor.db"
        shutil.copyfile(source, target)
        world = await arrange(f"sqlite:///{target}", 0)
        db = Database(f"sqlite+aiosqlite:///{target}")
        try:
            return await _measure(db, world, requests, paths, profile)
        finally:
            await db.dispose()


async def _measure(
    db: Database, world: World, requests: int, paths: tuple[str, ...], profile: str | None
) -> dict[str, Any]:
    app = bench_app(db)
    statements: list[str] = []

    def record(*args: object) -> None:
        if not str(args[2]).startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(str(args[2]))

    result: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await sign_in(client)
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
            page = await client.get("/tasks")
            csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
            api = {"Authorization": f"Bearer {world.api_token}", "Accept": "application/json"}
            calls = {
                "nothing": Call("GET", "/nothing-here", status=404),
                "tasks": Call("GET", "/tasks"),
                "alerts": Call("GET", "/alerts"),
                "api_show": Call("GET", f"/api/v1/leads/{world.owner_leads[0]}", api),
                "autosave": Call(
                    "POST",
                    f"/calls/{world.drafts[0]}/autosave",
                    {"X-CSRF-Token": csrf, "HX-Request": "true"},
                    {"notes": "הלקוחה אומרת"},
                ),
            }
            for name in paths:
                call = calls[name]

                async def one(n: int, call: Call = call) -> None:
                    await call.send(app, cookie, n)

                for n in range(20):
                    await one(n)
                if name == profile:
                    profiler = cProfile.Profile(time.thread_time)
                    profiler.enable()
                    for n in range(requests):
                        await one(n)
                    profiler.disable()
                    stats = pstats.Stats(profiler).strip_dirs()
                    stats.sort_stats("tottime").print_stats(45)
                    stats.sort_stats("cumulative").print_stats(90)
                    continue
                cpu, wall, counted = [], [], []
                event.listen(db.engine.sync_engine, "before_cursor_execute", record)
                for n in range(requests):
                    statements.clear()
                    started_cpu, started = time.process_time(), time.perf_counter()
                    await one(n)
                    cpu.append((time.process_time() - started_cpu) * 1000)
                    wall.append((time.perf_counter() - started) * 1000)
                    counted.append(len(statements))
                event.remove(db.engine.sync_engine, "before_cursor_execute", record)
                result[name] = {
                    "cpu_ms": round(sum(cpu) / len(cpu), 2),
                    "cpu_p50_ms": round(statistics.median(cpu), 2),
                    "wall_p50_ms": round(statistics.median(wall), 2),
                    "wall_min_ms": round(min(wall), 2),
                    "statements": statistics.mode(counted),
                }
                print(name, result[name], flush=True)
    return result


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] | None = None  # each request's values end with its number
    status: int = 200

    async def send(self, app: Any, cookie: str, n: int) -> None:
        headers, body = dict(self.headers), b""
        if self.form:
            body = urlencode({key: f"{value} {n}" for key, value in self.form.items()}).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        status = await asgi_call(app, self.method, self.url, headers, cookie, body)
        assert status == self.status, (self.url, status)


async def asgi_call(
    app: Any, method: str, url: str, headers: dict[str, str], cookie: str, body: bytes
) -> int:
    """One request straight into the app (no client's own work in the figures): its status."""
    path, _, query = url.partition("?")
    raw = [(b"host", b"bench"), (b"cookie", cookie.encode())]
    raw += [(key.lower().encode(), value.encode()) for key, value in headers.items()]
    if body:
        raw.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
        "state": {},
    }
    status = 0
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--path", action="append", choices=PATHS)
    parser.add_argument("--profile", choices=PATHS)
    args = parser.parse_args()
    paths = tuple(args.path or PATHS)
    result = asyncio.run(measure(args.leads, args.requests, paths, args.profile))
    print(json.dumps({"leads": args.leads, "requests": args.requests, "paths": result}))


if __name__ == "__main__":
    main()
