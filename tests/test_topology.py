"""The deployment of deploy/, on loopback: Debian's nginx with a self-signed certificate, serving
deploy/nginx/mazkira.conf (ports and paths replaced), in front of two `mazkira serve` processes
on a private PostgreSQL database and a private Redis, and one `mazkira worker`.

Web forms go through nginx while consoles (sockets through nginx too) watch: a form taken by
one process reaches consoles held by the other; a breach the worker raises reaches consoles on
both; one web process killed with SIGKILL mid-load loses nothing (every lead stored once, every
console reconnects through nginx and replays); then a rolling restart of both, one at a time,
under load. At the end every console has shown every event of its businesses once, in order."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from console.base.db import Database
from console.base.migrate import upgrade
from models import Event, Lead
from tests.base.test_worker_faults import alert_keys, breach_keys, due_leads, make_businesses
from tests.conftest import IN_CI
from tests.factories import PASSWORD, make_user
from tests.fault_tools import FormSender, LiveView, eventually, phone
from tests.live_client import Console
from tests.redis_server import PrivateRedis
from tests.servers import ROOT, Server, free_port

SENDERS = 4
SECRET = "topology-" + "k" * 48
UPSTREAM = re.compile(r"^\s*server 127\.0\.0\.1:800[12] .*$", re.M)


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        message = "nginx is not installed (apt-get install nginx-light)"
        if IN_CI:
            pytest.fail(f"{message}, and CI=true requires it")
        pytest.skip(message)
    return found


class Nginx:
    """deploy/nginx/mazkira.conf on a free port, with a certificate made for 127.0.0.1."""

    def __init__(self, workdir: Path, upstreams: list[int]) -> None:
        self.binary = nginx_binary()
        self.workdir = workdir
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.cert, key = workdir / "cert.pem", workdir / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(self.cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        site = (ROOT / "deploy" / "nginx" / "mazkira.conf").read_text()
        servers = "\n".join(
            f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=3s;" for port in upstreams
        )
        site = UPSTREAM.sub("", site, count=2).replace(
            "keepalive 32;", servers + "\n    keepalive 32;"
        )
        site = site.replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
        site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{self.port} ssl http2;")
        site = re.sub(r"^\s*listen \[::\].*$", "", site, flags=re.M)
        site = site.replace("/etc/ssl/mazkira/fullchain.pem", str(self.cert))
        site = site.replace("/etc/ssl/mazkira/privkey.pem", str(key))
        # which process answered: for the test to see that the two processes shared the work
        site = site.replace(
            "client_max_body_size 2m;",
            "client_max_body_size 2m;\n    add_header X-Upstream $upstream_addr always;",
        )
        temp = "".join(
            f"    {kind}_temp_path {workdir / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.conf = workdir / "nginx.conf"
        self.conf.write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {workdir / 'nginx.pid'};\n"
            f"error_log {workdir / 'error.log'} info;\nevents {{ worker_connections 1024; }}\n"
            f"http {{\n    access_log {workdir / 'access.log'};\n{temp}{site}\n}}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        checked = subprocess.run(
            [self.binary, "-t", "-c", str(self.conf), "-p", str(self.workdir), "-e", "stderr"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stderr  # the shipped file is valid nginx
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.conf), "-p", str(self.workdir), "-e", "stderr"],
            stdout=subprocess.DEVNULL, stderr=(self.workdir / "nginx.out").open("wb"),
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", verify=self.trusted(), timeout=1).is_success:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("nginx did not start: " + (self.workdir / "nginx.out").read_text())

    def trusted(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "console.cli", "worker"],
                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()


async def test_nginx_two_web_processes_and_a_worker_lose_nothing(
    tmp_path: Path, private_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    db = Database(private_postgres_url)
    await upgrade(db)
    cohen, levi = await make_businesses(db, 2, minutes=60)  # only the backdated lead is late
    businesses = {"cohen": cohen, "levi": levi}
    async with db.transaction() as session:
        await make_user(session, "secretary", cohen, email="michal@example.test")
        await make_user(session, "secretary", levi, email="dana@example.test")
        await make_user(session, "admin", email="admin@example.test")
    env = {
        "DATABASE_URL": private_postgres_url,
        "REDIS_URL": redis.url,
        "SECRET_KEY": SECRET,
        "HTTPS": "true",
        "TRUSTED_PROXIES": "127.0.0.1/32",
        "INTAKE_RATE_PER_ADDRESS": "0",
    }
    web = [Server(tmp_path / name, env) for name in ("web-a", "web-b")]
    for server in web:
        server.log.parent.mkdir()
        server.start()
    worker = Worker({**os.environ, **env}, tmp_path / "worker.log")
    proxy = Nginx(tmp_path, [server.port for server in web])
    proxy.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(proxy.cert))  # httpx and websockets trust it
    front: Any = type("Front", (), {"url": proxy.url})()
    views: dict[str, LiveView] = {}
    consoles: list[Console] = []
    try:
        sees = {"michal": {"cohen"}, "dana": {"levi"}, "admin": {"cohen", "levi"}}
        for name in sees:
            console = await Console(front).sign_in(f"{name}@example.test", PASSWORD)
            consoles.append(console)
            for tab in (1, 2):  # round robin: the tabs' sockets land on both processes
                views[f"{name}-{tab}"] = LiveView(console)
        await eventually(lambda: all(v.connects for v in views.values()), "every page connected")

        def on_processes(names: list[str]) -> set[str]:
            found = {u.split(",")[-1].strip() for n in names for u in views[n].upstreams}
            return found - {""}

        # Cohen's consoles on both processes (more of Michal's tabs until the round robin
        # has put one on each), so the worker's breach must cross to both
        tabs = 2
        while len(on_processes([n for n in views if not n.startswith("dana")])) < 2 and tabs < 8:
            tabs += 1
            views[f"michal-{tabs}"] = LiveView(consoles[0])
            await eventually(lambda: all(v.connects for v in views.values()), "the new tab")
        assert len(on_processes([n for n in views if not n.startswith("dana")])) == 2

        # a breach the worker raises reaches every console of the business, on both processes
        late = await due_leads(
            db, [cohen], 1, created_at=datetime.now(UTC) - timedelta(hours=2), caller_each=True
        )

        async def breached() -> bool:
            return breach_keys(late) <= set(await alert_keys(db))

        await eventually(breached, "the worker raised the breach")

        # behind nginx a process that is gone answers 502 (or 504): the sender tries again
        sender = FormSender(proxy.url, retry_on=(502, 503, 504))
        made: dict[str, str] = {}
        numbers = itertools.count()
        slugs = itertools.cycle(businesses)
        restarted = asyncio.Event()

        async def send() -> None:  # a steady stream, until the restarts are over
            while not restarted.is_set():
                n, slug = next(numbers), next(slugs)
                key = businesses[slug].intake_key
                lead = await sender.post(businesses[slug].slug, key, f"topo-{n}", phone(n))
                made[lead] = slug
                await asyncio.sleep(0.4)

        senders = [asyncio.create_task(send()) for _ in range(SENDERS)]
        await eventually(lambda: len(made) >= 12, "leads before the kill")
        web[0].process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        web[0].process.wait(timeout=10)  # type: ignore[union-attr]
        taken = len(made)
        await eventually(lambda: len(made) >= taken + 12, "leads while one process is dead")
        await asyncio.to_thread(web[0].start)
        for server in web:  # the rolling restart, one at a time, under load
            assert await asyncio.to_thread(server.stop) in (0, -15)
            await asyncio.to_thread(server.start)
        restarted.set()
        await asyncio.gather(*senders)

        for name, view in views.items():
            user = name.split("-")[0]
            wanted = {lead for lead, slug in made.items() if slug in sees[user]}
            await eventually(partial(view.has, wanted), f"{name} saw every lead")
        async with db.transaction(write=False) as session:
            rows = list(
                await session.execute(
                    select(Lead.external_id, func.count())
                    .where(Lead.external_id.is_not(None))
                    .group_by(Lead.external_id)
                )
            )
            seqs: dict[str, list[int]] = {}
            kinds: dict[tuple[str, int], str] = {}
            for owner, seq, kind in await session.execute(
                select(Event.business_id, Event.seq, Event.kind).order_by(Event.seq)
            ):
                seqs.setdefault(str(owner), []).append(seq)
                kinds[(str(owner), seq)] = kind
    finally:
        for view in views.values():
            await view.stop()
        for console in consoles:
            await console.close()
        proxy.stop()
        worker.stop()
        for server in web:
            server.stop()
        redis.stop()
        await db.dispose()

    assert len(rows) == len(made) and {n for _, n in rows} == {1}  # every lead once
    assert set(sender.answers) <= {200, 201, *sender.retry_on}, sender.bodies
    assert len(sender.upstreams) == 2, sender.upstreams  # both processes took forms
    # the process that answered the handshake (nginx lists the ones it tried before it)
    sockets = {u.split(",")[-1].strip() for v in views.values() for u in v.upstreams} - {""}
    assert len(sockets) == 2, sockets  # and held consoles' sockets
    for name, view in views.items():
        assert view.connects >= 2, (name, view.connects, view.closes)
        for slug, business in businesses.items():
            key = str(business.id)
            expected = seqs.get(key, []) if slug in sees[name.split("-")[0]] else []
            assert view.shown.get(key, []) == expected, (name, slug, view.dropped)
    alert_seqs = {
        seq
        for (owner, seq), kind in kinds.items()
        if kind == "alert.raised" and owner == str(cohen.id)
    }
    assert alert_seqs, kinds
    for name, view in views.items():
        if "cohen" in sees[name.split("-")[0]]:
            assert alert_seqs <= set(view.shown.get(str(cohen.id), [])), name  # the breach
