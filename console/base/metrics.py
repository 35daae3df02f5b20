"""The numbers an operator watches, in Prometheus's text format (`GET /metrics`).

Counted as they happen in this process: requests and their latency per route, live events
published (by kind: leads, calls and their states, alerts), arrivals per channel and outcome,
job runs and failures, notifications sent, retried and failed by the jobs run here. Read from
the database when scraped, through partial indexes only: SLA alerts open by level, calls live by
state, notifications queued; and the database pool's connections. Each process has its own
registry: Prometheus scrapes every process (their ports, not the proxy), as is usual."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import wraps
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError
from sqlalchemy import func, select

from console.base.db import Database
from models.alerts import Alert, Notification
from models.voice import Call

CONTENT_TYPE = CONTENT_TYPE_LATEST
Job = Callable[..., Awaitable[Any]]
LIVE_CALL_STATES = ("waiting", "ringing", "answered")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry()
        self.requests = Counter(
            "mazkira_http_requests",
            "HTTP requests answered, by route (its pattern), method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "mazkira_http_request_duration_seconds",
            "Time to answer an HTTP request, by route and method",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.sockets = Gauge(
            "mazkira_live_sockets_open",
            "Consoles' websockets open in this process",
            registry=registry,
        )
        self.events = Counter(
            "mazkira_events_published",
            "Live events published after their commits, by kind (lead.*, call.*, alert.*, ...)",
            ["kind"],
            registry=registry,
        )
        self.arrivals = Counter(
            "mazkira_arrivals",
            "Arrivals taken in through the one arrival path, by channel and outcome",
            ["channel", "outcome"],
            registry=registry,
        )
        self.jobs = Counter(
            "mazkira_jobs",
            "Job runs in this process, by job and result",
            ["job", "result"],
            registry=registry,
        )
        self.notifications_sent = Counter(
            "mazkira_notifications_handled",
            "Notifications the sender runs of this process handled, by result",
            ["result"],
            registry=registry,
        )
        self.notifications_queued = Gauge(
            "mazkira_notifications_queued", "Notifications waiting to be sent", registry=registry
        )
        self.alerts_open = Gauge(
            "mazkira_sla_alerts_open",
            "SLA alerts neither acknowledged nor cleared, by level",
            ["level"],
            registry=registry,
        )
        self.calls_live = Gauge(
            "mazkira_calls_live",
            "Phone calls not yet ended, by state",
            ["state"],
            registry=registry,
        )
        self.pool = Gauge(
            "mazkira_db_pool_connections",
            "The database pool's connections: in use, idle in the pool, and its size",
            ["state"],
            registry=registry,
        )
        self.worker_jobs = Gauge(
            "mazkira_worker_jobs",
            "Job runs on the arq workers since Redis started, by job and result",
            ["job", "result"],
            registry=registry,
        )
        self.worker_notifications = Gauge(
            "mazkira_worker_notifications_handled",
            "Notifications the workers' sender runs handled since Redis started, by result",
            ["result"],
            registry=registry,
        )
        self.hub: Any = None  # set by the app: its open sockets are read when scraped
        self.redis: Any = None  # set by the app when it has Redis: the workers' counts

    def published(self, items: Iterable[Any]) -> None:
        """After a commit (`Database.after_commit`): its live events, by kind."""
        for item in items:
            kind = getattr(item, "kind", None)
            if kind is not None and hasattr(item, "business_id"):
                self.events.labels(kind).inc()

    def arrived(self, channel: str, outcome: str) -> None:
        self.arrivals.labels(channel, outcome).inc()

    def job_done(self, name: str, result: object, *, failed: bool = False) -> None:
        self.jobs.labels(name, "failed" if failed else "ok").inc()
        for field, count in _notifications_of(result):
            self.notifications_sent.labels(field).inc(count)

    async def render(self, db: Database) -> bytes:
        await self._sample(db)
        return generate_latest(self.registry)

    async def _sample(self, db: Database) -> None:
        if self.redis is not None:
            await self._sample_workers()
        if self.hub is not None:
            self.sockets.set(len(self.hub.connections))
        pool = db.engine.pool
        for state, reader in (("in_use", "checkedout"), ("idle", "checkedin"), ("size", "size")):
            read = getattr(pool, reader, None)
            if callable(read):
                self.pool.labels(state).set(read())
        async with db.transaction(write=False) as session:
            open_alerts = dict(
                (
                    await session.execute(
                        select(Alert.level, func.count())
                        .where(Alert.acknowledged_at.is_(None), Alert.cleared_at.is_(None))
                        .group_by(Alert.level)
                    )
                ).all()
            )
            live_calls = dict(
                (
                    await session.execute(
                        select(Call.state, func.count())
                        .where(Call.state.in_(LIVE_CALL_STATES))
                        .group_by(Call.state)
                    )
                ).all()
            )
            queued = await session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.status == "queued")
            )
        for level in ("warning", "breach"):
            self.alerts_open.labels(level).set(open_alerts.get(level, 0))
        for state in LIVE_CALL_STATES:
            self.calls_live.labels(state).set(live_calls.get(state, 0))
        self.notifications_queued.set(queued or 0)

    async def _sample_workers(self) -> None:
        try:
            jobs = await self.redis.hgetall(WORKER_JOBS)
            sent = await self.redis.hgetall(WORKER_NOTIFICATIONS)
        except (RedisError, OSError):
            return  # Redis down: /readyz says so; the web process's own numbers still answer
        for field, count in jobs.items():
            name, _, result = _text(field).partition("|")
            self.worker_jobs.labels(name, result).set(int(count))
        for field, count in sent.items():
            self.worker_notifications.labels(_text(field)).set(int(count))


# The arq workers have no page of their own: each run is counted in Redis (`counted`), and
# every web process's /metrics shows the agency's totals from there.
WORKER_JOBS = "mazkira:metrics:jobs"
WORKER_NOTIFICATIONS = "mazkira:metrics:notifications"


def counted(job: Job) -> Job:
    """An arq job whose runs (and, for the sender, the notifications it handled) are counted in
    the worker's Redis (`ctx["redis"]`). A count that cannot be written is left out: the job's
    work is what matters."""

    @wraps(job)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            result = await job(ctx, *args, **kwargs)
        except Exception:
            await _count(ctx.get("redis"), job.__name__, None, failed=True)
            raise
        await _count(ctx.get("redis"), job.__name__, result, failed=False)
        return result

    return run


async def _count(redis: Any, name: str, result: object, *, failed: bool) -> None:
    if redis is None:
        return
    try:
        await redis.hincrby(WORKER_JOBS, f"{name}|{'failed' if failed else 'ok'}", 1)
        for field, count in _notifications_of(result):
            await redis.hincrby(WORKER_NOTIFICATIONS, field, count)
    except (RedisError, OSError):
        return


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _notifications_of(result: object) -> list[tuple[str, int]]:
    """What a sender run handled (a SendReport: sent, retried, failed); nothing for other jobs."""
    counts = [(field, getattr(result, field, None)) for field in ("sent", "retried", "failed")]
    return [(field, count) for field, count in counts if isinstance(count, int) and count]
