"""Every screen and every API call over HTTP under load: `python -m bench.http [--db postgres]
[--leads N] [--seconds S] [--path NAME]...`.

The console is served as `mazkira serve` serves it (a uvicorn subprocess, one process) beside the
bare Starlette app (`bench/ceiling.py`: a page of 50 rows, and 50 rows as JSON), and loaded with
wrk (Debian's `wrk`, which `.ci/run` installs): for each path one run at 50 connections (requests
a second, p50 and p99 from wrk's latency distribution) and one at a single connection (p50), each
`--seconds` long (5). The ceiling is measured in the same run, so a busy machine slows both alike.

The data (`bench.seed`, kept between runs as `bench.inbox` keeps it): N leads (10,000) across
`--businesses` businesses (1,000); a secretary serving 10 of them sees 7,000 open leads whatever
N is (fewer when N is small: 70% of N), and an owner has the first of them. Each run works on a
copy (a SQLite file, a PostgreSQL database made from the seeded one as its template), so what
the POSTs write never reaches the next run. On the copy, through the console's own services:
an SMS line for each of her businesses (so a reply has a channel), the owner's API token, and
her open calls (drafts) for autosave and wrap-up.

Signed in as the real users over HTTP (the login form's CSRF token, then the session cookie and
the session's CSRF token, sent as `X-CSRF-Token`); the API with the owner's token; the web form
with its business's key. Each POST is valid and distinct (a Lua script picks its ids from a file
written here): claim cycles through her open leads, stage moves them between two open stages,
autosave types into her open calls, wrap-up ends each open call once (the 50-connection run and
the single one have calls of their own), reply and hand-off carry a key of their own, and each
web form an `external_id` of its own. Every answer must be 2xx or 3xx: the others (and socket
errors) are counted per path, printed, and make the run exit with status 1.

Paths: inbox, lead (her open leads' pages in turn), contact, portal and kpis (the owner's),
tasks, alerts, api_list, api_show, claim, autosave, wrap_up, reply, hand_off, stage, web_form.

The last line is one JSON object: `db`, `leads`, `ceiling` (`page` and `json`: `rps`,
`p50_c1_ms`) and `paths` (each: `rps`, `p50_ms`, `p99_ms`, `p50_c1_ms`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench import intake_env
from bench.inbox import postgres_url, prepare
from bench.intake import Served, mobile_numbers
from bench.seed import PASSWORD
from console.base.db import Database
from console.channels import lines
from console.leads import calls
from console.people import api_tokens
from models import Business, Contact, Lead, OwnerMembership, SecretaryAssignment, User

WRK = shutil.which("wrk") or "/usr/bin/wrk"
SECRETARY_OPEN = 7_000
PATHS = (
    "inbox", "lead", "contact", "portal", "kpis", "tasks", "alerts", "api_list", "api_show",
    "claim", "autosave", "wrap_up", "reply", "hand_off", "stage", "web_form",
)  # fmt: skip
DRAFTS_PER_SECOND = 500  # open calls made for wrap-up, per second of its runs (each ends once)
C50_SHARE = 0.5  # of them, for the run at 50 connections (one connection is as fast here)

LUA = """
local items = {}
for line in io.lines("%(items)s") do items[#items + 1] = line end
local cycle = {%(cycle)s}
local path, body = "%(path)s", "%(body)s"
local n = 0
wrk.method = "%(method)s"
%(headers)s
request = function()
  n = n + 1
  if #items == 0 then return wrk.format(nil, path, nil, body) end
  local item = items[(n - 1) %% #items + 1]
  local turn = cycle[math.floor((n - 1) / #items) %% #cycle + 1]
  local p = path:gsub("{id}", item)
  local b = body:gsub("{id}", item):gsub("{n}", "%(run)s-" .. n):gsub("{cycle}", turn)
  return wrk.format(nil, p, nil, b)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "status_errors": %%d, "socket_errors": %%d, '
    .. '"p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def lua_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass(frozen=True)
class Load:
    """One path as wrk sends it: `{id}` in the path or body is the next item, `{n}` a number
    of this run's own, `{cycle}` the next value of `cycle` after each pass over the items."""

    path: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    items: tuple[str, ...] = ()
    c1_items: tuple[str, ...] | None = None  # items of their own for the single connection
    cycle: tuple[str, ...] = ("",)

    def script(self, work: Path, name: str, single: bool) -> Path:
        items = self.c1_items if single and self.c1_items is not None else self.items
        item_file = work / f"{name}-{'c1' if single else 'c50'}.items"
        item_file.write_text("".join(f"{item}\n" for item in items))
        headers = "\n".join(
            f'wrk.headers["{key}"] = "{lua_string(value)}"' for key, value in self.headers
        )
        source = LUA % {
            "items": item_file,
            "cycle": ", ".join(f'"{lua_string(value)}"' for value in self.cycle),
            "path": lua_string(self.path),
            "body": lua_string(self.body),
            "method": self.method,
            "headers": headers,
            "run": f"{name}-{'c1' if single else 'c50'}-{uuid.uuid4().hex[:8]}",
        }
        script = work / f"{name}-{'c1' if single else 'c50'}.lua"
        script.write_text(source)
        return script


def wrk(port: int, load: Load, *, connections: int, seconds: float, script: Path) -> dict[str, Any]:
    """One wrk run; its figures as the script's `done()` prints them."""
    command = [
        WRK, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
        "-s", str(script), f"http://127.0.0.1:{port}{load.path.replace('{id}', 'x')}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    line = [row for row in done.stdout.splitlines() if row.startswith("{")][-1]
    figures = json.loads(line)
    seconds_run = figures["duration_us"] / 1e6
    answered = figures["requests"] > 0  # else no percentile (wrk would say 0)
    return {
        "rps": round(figures["requests"] / seconds_run, 1),
        "p50_ms": round(figures["p50_us"] / 1000, 2) if answered else None,
        "p99_ms": round(figures["p99_us"] / 1000, 2) if answered else None,
        "requests": figures["requests"],
        "failed": figures["status_errors"] + figures["socket_errors"],
    }


async def wrk_settled(
    port: int, load: Load, connections: int, seconds: float, script: Path
) -> dict[str, Any]:
    """A wrk run once the server has answered what the last one left in flight (wrk stops
    waiting at its deadline, the server does not): a request to it must come back quickly."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            started = time.perf_counter()
            await client.get("/healthz")  # a 404 on the ceiling, as quick
            if time.perf_counter() - started < 0.05:
                break
            await asyncio.sleep(0.2)
    return await asyncio.to_thread(
        wrk, port, load, connections=connections, seconds=seconds, script=script
    )


# --- the data ---------------------------------------------------------------------------------


async def copy_database(
    kind: str, seeded: Database, leads: int, businesses: int, work: Path
) -> str:
    """A copy of the seeded database for this run; its URL as `mazkira serve` reads it."""
    await seeded.dispose()
    if kind == "sqlite":
        source = Path(make_url(seeded.url).database or "")
        target = work / "http.db"
        shutil.copyfile(source, target)
        return f"sqlite:///{target}"
    template = make_url(postgres_url(leads, businesses, secretary_open=SECRETARY_OPEN))
    name = f"mazkira_bench_http_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(template.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"'))
    await engine.dispose()
    return template.set(database=name).render_as_string(hide_password=False)


async def drop_copy(url: str) -> None:
    if url.startswith("sqlite"):
        return
    target = make_url(url)
    engine = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    await engine.dispose()


@dataclass
class World:
    secretary_id: str
    owner_id: str
    form_slug: str
    form_key: str
    api_token: str
    open_leads: list[str]  # hers
    owner_leads: list[str]
    owner_open: list[str]
    contacts: list[str]  # of her businesses
    drafts: list[str]  # her open calls, for autosave
    wrap_ups: list[str]  # her open calls, each wrapped up once


async def arrange(url: str, drafts: int) -> World:
    """What the run needs on the copy, made through the console's services."""
    from console.base.config import normalise_database_url

    db = Database(normalise_database_url(url))
    now = datetime.now(UTC)
    async with db.transaction() as session:
        secretary = await session.scalar(select(User).where(User.role == "secretary"))
        owner = await session.scalar(select(User).where(User.role == "owner"))
        assert secretary is not None and owner is not None
        served = list(
            await session.scalars(
                select(SecretaryAssignment.business_id).where(
                    SecretaryAssignment.user_id == secretary.id
                )
            )
        )
        owned = await session.scalar(
            select(OwnerMembership.business_id).where(OwnerMembership.user_id == owner.id)
        )
        for n, business in enumerate(
            await session.scalars(select(Business).where(Business.id.in_(served)))
        ):
            await lines.add_line(session, business, "sms", f"+9723556{1000 + n}")
        form = await session.get(Business, owned)
        assert form is not None
        token = await api_tokens.create_token(session, owner, "bench", now=now)
        open_leads = [
            str(i)
            for i in await session.scalars(
                select(Lead.id)
                .where(Lead.business_id.in_(served), Lead.closed_at.is_(None))
                .order_by(Lead.id)
            )
        ]
        owner_leads = [
            str(i)
            for i in await session.scalars(
                select(Lead.id).where(Lead.business_id == owned).order_by(Lead.id).limit(5_000)
            )
        ]
        contacts = [
            str(i)
            for i in await session.scalars(
                select(Contact.id).where(Contact.business_id.in_(served)).order_by(Contact.id)
            )
        ]
        owner_set = set(owner_leads)
        owner_open = [lead for lead in open_leads if lead in owner_set]  # hand-offs go to her
        rng = random.Random(23)
        picked = rng.sample(open_leads, min(len(open_leads), drafts + 100))
        made = []
        for lead_id in picked:
            call = await calls.start_interaction(
                session, secretary, lead_id, kind="inbound_call", now=now
            )
            made.append(str(call.id))
    await db.dispose()
    return World(
        secretary_id=str(secretary.id),
        owner_id=str(owner.id),
        form_slug=form.slug,
        form_key=form.intake_key,
        api_token=token.secret,
        open_leads=open_leads,
        owner_leads=owner_leads,
        owner_open=owner_open,
        contacts=contacts,
        drafts=made[:100],
        wrap_ups=made[100:],
    )


# --- signing in -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    cookie: str
    csrf: str


async def sign_in(port: int, email: str, page: str) -> Signed:
    """The login form's token, the password, then the session's own token from a page."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        login = await client.get("/login")
        token = login.text.split('name="csrf_token" value="')[1].split('"')[0]
        signed = await client.post(
            "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
        )
        assert signed.status_code == 303, signed.text
        shown = await client.get(page)
        assert shown.status_code == 200, (page, shown.status_code)
        csrf = shown.text.split('name="csrf_token" value="')[1].split('"')[0]
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    return Signed(cookie, csrf)


def loads(world: World, secretary: Signed, owner: Signed, seconds: float) -> dict[str, Load]:
    her = (("Cookie", secretary.cookie),)
    hers = tuple(world.open_leads)
    posting = (
        *her,
        ("X-CSRF-Token", secretary.csrf),
        ("Content-Type", "application/x-www-form-urlencoded"),
    )
    api = (("Authorization", f"Bearer {world.api_token}"), ("Accept", "application/json"))
    cut = int(len(world.wrap_ups) * C50_SHARE)
    phones = tuple(mobile_numbers(2_000, random.Random(23)))
    form = json.dumps(
        {"name": "דנה כהן", "phone": "{id}", "message": "נזילה במטבח", "external_id": "{n}"},
        ensure_ascii=False,
    )
    return {
        "inbox": Load("/inbox", headers=her),
        "lead": Load("/leads/{id}", headers=her, items=hers),
        "contact": Load("/contacts/{id}", headers=her, items=tuple(world.contacts)),
        "portal": Load("/portal", headers=(("Cookie", owner.cookie),)),
        "kpis": Load("/portal/kpis", headers=(("Cookie", owner.cookie),)),
        "tasks": Load("/tasks", headers=her),
        "alerts": Load("/alerts", headers=her),
        "api_list": Load("/api/v1/leads", headers=api),
        "api_show": Load("/api/v1/leads/{id}", headers=api, items=tuple(world.owner_leads)),
        "claim": Load("/leads/{id}/claim", "POST", posting, items=hers),
        "autosave": Load(
            "/calls/{id}/autosave",
            "POST",
            (*posting, ("HX-Request", "true")),
            "notes=%D7%94%D7%9C%D7%A7%D7%95%D7%97%D7%94+%D7%90%D7%95%D7%9E%D7%A8%D7%AA+{n}",
            items=tuple(world.drafts),
        ),
        "wrap_up": Load(
            "/calls/{id}/wrap-up",
            "POST",
            posting,
            "notes=done&summary=called+back&outcome=answered",
            items=tuple(world.wrap_ups[:cut]),
            c1_items=tuple(world.wrap_ups[cut:]),
        ),
        "reply": Load(
            "/leads/{id}/replies",
            "POST",
            posting,
            "channel=sms&text=%D7%A0%D7%97%D7%96%D7%95%D7%A8+%D7%90%D7%9C%D7%99%D7%9A&request_key={n}",
            items=hers,
        ),
        "hand_off": Load(
            "/leads/{id}/tasks",
            "POST",
            posting,
            f"assignee_id={world.owner_id}&title=call+back&due=2027-06-01T10%3A00"
            "&details=&priority=normal&request_key={n}",
            items=tuple(world.owner_open),
        ),
        "stage": Load(
            "/leads/{id}/stage",
            "POST",
            posting,
            "stage={cycle}",
            items=hers,
            cycle=("contacted", "meeting"),
        ),
        "web_form": Load(
            f"/intake/{world.form_slug}/form",
            "POST",
            (("Content-Type", "application/json"), ("X-Intake-Key", world.form_key)),
            form,
            items=phones,
        ),
    }


async def first_answer(port: int, load: Load) -> None:
    """One request of the path before it is loaded: a refusal stops the run with its body."""
    item = (load.c1_items or load.items or ("",))[-1]
    path = load.path.replace("{id}", item)
    body = (
        load.body.replace("{id}", item)
        .replace("{n}", uuid.uuid4().hex)
        .replace("{cycle}", load.cycle[-1])
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        answer = await client.request(
            load.method, path, headers=dict(load.headers), content=body.encode() or None
        )
    if answer.status_code >= 400:
        raise RuntimeError(f"{load.method} {path}: {answer.status_code} {answer.text[:500]}")


# --- the run ----------------------------------------------------------------------------------


async def run(
    kind: str,
    *,
    leads: int,
    seconds: float,
    work: Path,
    businesses: int = 1_000,
    paths: tuple[str, ...] = PATHS,
) -> dict[str, Any]:
    secretary_open = min(SECRETARY_OPEN, int(leads * 0.7))
    seeded = await prepare(kind, leads, businesses, secretary_open=secretary_open)
    url = await copy_database(kind, seeded, leads, businesses, work)
    try:
        drafts = int(DRAFTS_PER_SECOND * seconds * 2) if "wrap_up" in paths else 0
        world = await arrange(url, drafts)
        console = Served(
            "console.cli", ["serve"], intake_env(url, secret="bench-http"), work / "console.log"
        )
        ceiling = Served("bench.ceiling", [], {}, work / "ceiling.log")
        try:
            for server in (console, ceiling):
                server.start()
            for server in (console, ceiling):
                await server.ready()
            return await measure(console.port, ceiling.port, world, seconds, work, paths)
        except Exception:
            log = console.log.read_text(errors="replace").splitlines()
            print("\n".join(log[-80:]), file=sys.stderr)
            raise
        finally:
            console.stop()
            ceiling.stop()
    finally:
        await drop_copy(url)


async def measure(
    port: int, ceiling_port: int, world: World, seconds: float, work: Path, paths: tuple[str, ...]
) -> dict[str, Any]:
    secretary = await sign_in(port, "secretary@bench.test", "/inbox")
    owner = await sign_in(port, "owner@bench.test", "/portal")
    chosen = loads(world, secretary, owner, seconds)
    result: dict[str, Any] = {"ceiling": {}, "paths": {}, "failed": {}, "requests": {}}
    bare = {"page": Load("/inbox"), "json": Load("/api/leads")}
    for name, load in bare.items():
        one = await wrk_settled(
            ceiling_port, load, 1, seconds, load.script(work, f"c-{name}", True)
        )
        many = await wrk_settled(
            ceiling_port, load, 50, seconds, load.script(work, f"c-{name}", False)
        )
        result["ceiling"][name] = {"rps": many["rps"], "p50_c1_ms": one["p50_ms"]}
        print(
            f"ceiling {name}: {many['rps']:,.0f}/s, p50 at 1 connection {one['p50_ms']} ms",
            flush=True,
        )
    for name in paths:
        load = chosen[name]
        await first_answer(port, load)
        one = await wrk_settled(port, load, 1, seconds, load.script(work, name, True))
        many = await wrk_settled(port, load, 50, seconds, load.script(work, name, False))
        result["paths"][name] = {
            "rps": many["rps"],
            "p50_ms": many["p50_ms"],
            "p99_ms": many["p99_ms"],
            "p50_c1_ms": one["p50_ms"],
        }
        result["failed"][name] = many["failed"] + one["failed"]
        result["requests"][name] = many["requests"] + one["requests"]
        print(
            f"{name}: {many['rps']:,.0f}/s at 50 connections (p50 {many['p50_ms']} ms, "
            f"p99 {many['p99_ms']} ms), p50 at 1 connection {one['p50_ms']} ms; "
            f"{many['requests'] + one['requests']} requests, {result['failed'][name]} failed",
            flush=True,
        )
    return result


def report(kind: str, leads: int, result: dict[str, Any]) -> int:
    """The last line; the exit status (1 when any request failed)."""
    failed = {name: count for name, count in result["failed"].items() if count}
    if failed:
        print(f"failed requests (not 2xx/3xx, or no answer): {failed}", flush=True)
    print(
        json.dumps(
            {"db": kind, "leads": leads, "ceiling": result["ceiling"], "paths": result["paths"]}
        )
    )
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--businesses", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="per path and connection count")
    parser.add_argument("--path", action="append", choices=PATHS, help="only these (repeatable)")
    args = parser.parse_args()
    paths = tuple(p for p in PATHS if args.path is None or p in args.path)
    with tempfile.TemporaryDirectory(prefix="mazkira-bench-http-") as work:
        started = time.perf_counter()
        result = asyncio.run(
            run(
                args.db,
                leads=args.leads,
                seconds=args.seconds,
                work=Path(work),
                businesses=args.businesses,
                paths=paths,
            )
        )
        print(f"run took {time.perf_counter() - started:.0f} s", flush=True)
    return report(args.db, args.leads, result)


if __name__ == "__main__":
    sys.exit(main())
