"""What an operator watches: `/metrics` behind its token, `/readyz`, request ids in JSON log
lines (carried into the jobs a request asks for), and `mazkira check`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from console.base.logs import carrying
from console.base.metrics import counted
from console.channels.notify import SendReport
from tests.conftest import SECRET
from tests.factories import sign_in
from tests.servers import ROOT, Server, free_port

TOKEN = "metrics-token-for-the-tests-0123456789"


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of Prometheus's text format (read by its own parser), 0 when
    absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    return 0.0


async def test_metrics_only_for_its_token_and_count_by_route(db: Database) -> None:
    plain = create_app(Settings(database_url=db.url, secret_key=SECRET), db=db, run_jobs=False)
    async with plain.router.lifespan_context(plain):
        transport = httpx.ASGITransport(app=plain)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/metrics")).status_code == 404  # no token: no such page

    settings = Settings(database_url=db.url, secret_key=SECRET, metrics_token=TOKEN)
    app = create_app(settings, db=db, run_jobs=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                refused = await client.get("/metrics", headers=headers)
                assert refused.status_code == 401 and "METRICS_TOKEN" in refused.text
                assert refused.headers["www-authenticate"].startswith("Bearer")
            for _ in range(3):
                await client.get("/leads/01a2507e-e4ff-74ad-9a02-10fb7ed50eee")  # to sign-in
            await client.get("/no/such/page")
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            answer = await client.get("/metrics", headers=bearer)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    # by the route's pattern, never the raw path (one series per route, not per lead)
    assert _sample(text, "mazkira_http_requests_total", route="/leads/{lead_id}") == 3
    assert "01a2507e" not in text
    assert _sample(text, "mazkira_http_requests_total", route="unmatched", status="404") == 1
    assert (
        _sample(text, "mazkira_http_request_duration_seconds_count", route="/leads/{lead_id}") == 3
    )
    for name in (
        "mazkira_live_sockets_open",
        "mazkira_sla_alerts_open",
        "mazkira_calls_live",
        "mazkira_notifications_queued",
        "mazkira_db_pool_connections",
    ):
        assert f"# TYPE {name} gauge" in text, name


async def test_readyz_says_what_is_missing(tmp_path: Path) -> None:
    empty = Database(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")  # never migrated
    port = free_port()  # nothing listens there
    settings = Settings(
        database_url=empty.url, secret_key=SECRET, redis_url=f"redis://127.0.0.1:{port}/0"
    )
    app = create_app(settings, db=empty, run_jobs=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.get("/readyz")
            alive = await client.get("/healthz")
    await empty.dispose()
    assert answer.status_code == 503
    assert answer.json() == {"database": "ok", "redis": "down", "migrations": "behind"}
    assert alive.status_code == 200  # alive all the same: a restart would not help


async def test_readyz_ok_when_everything_answers(client: httpx.AsyncClient) -> None:
    answer = await client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {"database": "ok", "redis": "disabled", "migrations": "ok"}


async def test_request_ids_answered(client: httpx.AsyncClient) -> None:
    given = await client.get("/login", headers={"X-Request-ID": "edge-7f3a.1"})
    assert given.headers["x-request-id"] == "edge-7f3a.1"
    made = await client.get("/login", headers={"X-Request-ID": "<script>" + "x" * 100})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    other = await client.get("/login")
    assert other.headers["x-request-id"] not in (made.headers["x-request-id"], "edge-7f3a.1")


def _mazkira(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_json_logs_carry_the_request_id_into_its_job(tmp_path: Path) -> None:
    """A served console with LOG_FORMAT=json: every line one JSON object; a hand-off's line and
    the line of the job it asked for (its notice to the owner, which has no mail to go by)
    carry the hand-off's request id; `/metrics` counts the web form's arrival."""
    server = Server(tmp_path, {"LOG_FORMAT": "json", "METRICS_TOKEN": TOKEN})
    server.run("migrate")
    created = server.run("create-business", "--slug", "cohen", "--name", "אינסטלציה כהן")
    key = dict(line.split(": ", 1) for line in created.strip().splitlines())["intake_key"]
    for email, role in (("michal@example.test", "secretary"), ("avi@example.test", "owner")):
        server.run(
            "create-user",
            "--email",
            email,
            "--password",
            "long-enough-secret",
            "--role",
            role,
            "--name",
            email.split("@")[0],
            "--business",
            "cohen",
        )
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            arrived = await client.post(
                "/intake/cohen/form",
                headers={"X-Intake-Key": key},
                json={"phone": "054-234-5678", "name": "יעל"},
            )
            assert arrived.status_code in (200, 201), arrived.text
            lead_id = arrived.json()["lead_id"]
            signed = await sign_in(client, "michal@example.test", "long-enough-secret")
            assert signed.status_code == 303
            page = await client.get(f"/leads/{lead_id}")
            owner_id = re.search(r'<option value="([0-9a-f-]{36})">avi', page.text).group(1)  # type: ignore[union-attr]
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            handed = await client.post(
                f"/leads/{lead_id}/tasks",
                headers={"X-Request-ID": "handoff-req-1"},
                data={
                    "csrf_token": token,
                    "assignee_id": owner_id,
                    "title": "לחזור ליעל",
                    "due": "2099-01-01T10:00",
                    "priority": "normal",
                },
            )
            assert handed.status_code == 303 and handed.headers["x-request-id"] == "handoff-req-1"
            metrics = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert (
                _sample(metrics.text, "mazkira_arrivals_total", channel="web", outcome="written")
                == 1
            )
            assert _sample(metrics.text, "mazkira_events_published_total", kind="lead.created") == 1
            for _ in range(100):  # the notice's job runs right after the hand-off's commit
                lines = [
                    json.loads(line)
                    for line in server.log.read_text().splitlines()
                    if line.startswith("{")
                ]
                ours = [line for line in lines if line.get("request_id") == "handoff-req-1"]
                if any(line["logger"] != "uvicorn.access" for line in ours):
                    break
                await _pause()
    finally:
        server.stop()
    raw = server.log.read_text().splitlines()
    assert raw and all(line.startswith("{") for line in raw if line.strip()), raw[:5]
    assert {"time", "level", "logger", "message", "request_id"} <= set(lines[0])
    access = [line for line in ours if line["logger"] == "uvicorn.access"]
    assert access and "/tasks" in access[0]["message"]
    job_lines = [line for line in ours if line["logger"] != "uvicorn.access"]
    assert job_lines and "notification" in job_lines[0]["message"], ours


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.1)


def test_check_says_what_is_missing_in_plain_words(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'agency.db'}",
        "SECRET_KEY": "s" * 48,
        "TWILIO_ACCOUNT_SID": "AC123",  # half of Twilio
        "SIP_SECRET": "shared",
        "SIP_WS_URL": f"ws://127.0.0.1:{port}/ws",  # nothing listens there
    }
    checked = _mazkira(env, "check")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    out = checked.stdout
    assert "Twilio is half set: TWILIO_AUTH_TOKEN, TWILIO_FROM missing" in out
    assert "PUBLIC_URL: not set" in out and "SMTP_URL: not set" in out
    assert f"127.0.0.1:{port} does not answer" in out
    assert "`mazkira serve` does it at start on SQLite" in out  # a new file: not yet migrated
    assert out.strip().splitlines()[-1] == "mazkira check: 1 problem, 3 warnings."

    down = {
        **env,
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/nothing",
        "TWILIO_ACCOUNT_SID": "",
    }
    refused = _mazkira(down, "serve", "--port", str(free_port()))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nothing does not answer" in (
        refused.stderr
    )
    assert "not starting until that is fixed" in refused.stderr


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


async def test_the_workers_runs_are_on_every_web_processes_metrics(
    db: Database, redis: Any, redis_url: str
) -> None:
    """An arq worker has no page: its runs are counted in Redis, and /metrics shows them."""

    async def send_notifications(ctx: dict[str, Any]) -> SendReport:
        return SendReport(sent=3, retried=1, failed=0)

    async def sweep_sla(ctx: dict[str, Any]) -> None:
        raise RuntimeError("the database went away")

    sender, sweep = counted(carrying(send_notifications)), counted(carrying(sweep_sla))
    for _ in range(2):
        await sender({"redis": redis}, request_id="req-1")
    with pytest.raises(RuntimeError):
        await sweep({"redis": redis})
    settings = Settings(
        database_url=db.url, secret_key=SECRET, metrics_token=TOKEN, redis_url=redis_url
    )
    app = create_app(settings, db=db, run_jobs=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            text = (await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).text
    assert _sample(text, "mazkira_worker_jobs", job="send_notifications", result="ok") == 2
    assert _sample(text, "mazkira_worker_jobs", job="sweep_sla", result="failed") == 1
    assert _sample(text, "mazkira_worker_notifications_handled", result="sent") == 6
    assert _sample(text, "mazkira_worker_notifications_handled", result="retried") == 2
