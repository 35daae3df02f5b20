"""The one place that wires settings, database, Redis, jobs, routes and middleware together."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from console.base import labels
from console.base.clock import Clock, SystemClock
from console.base.config import Settings
from console.base.db import Database
from console.base.errors import ConsoleError
from console.base.i18n import LOCALES, format_local, using_locale
from console.base.jobs import InProcessRunner
from console.base.metrics import Metrics
from console.base.migrate import upgrade
from console.base.ratelimit import limiter_for
from console.base.scheduler import ArqScheduler, LocalScheduler, Scheduler, schedule_queued
from console.base.storage import store_of
from console.channels.push import installation_keys
from console.contacts.contacts import display_phone
from console.intake.writer import ArrivalWriter
from console.live.events import LiveEvent, latest_seqs
from console.live.hub import Audience, Hub, LocalBroker, RedisBroker
from console.people.audit import ViewWriter
from console.voice.voicemail import Media
from routes import routes
from routes.errors import WhenDatabaseDown, console_error, http_error, server_error
from routes.live import Fragments, read_access
from routes.middleware import Cookies, Guard, Sessions, redact_access_log
from routes.observe import Observe
from routes.router import SegmentRouter
from routes.templating import env as templates
from routes.text_inputs import TextInputs
from workers.notifications import send_notifications
from workers.settings import PERIODIC
from workers.sla import sweep_sla

# The garbage collector's thresholds once the app is up (Python's are 700, 10, 10): a young
# pass per 10,000 objects kept rather than 700, so a full pass comes about 14 times less often.
GC_THRESHOLDS = (10_000, 10, 10)


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    clock: Clock | None = None,
    run_jobs: bool = True,
) -> Starlette:
    """The console. Tests hand in a migrated `db` they own; otherwise the app makes its own."""
    settings = settings or Settings.from_env()
    redact_access_log()
    owns_db = db is None
    db = db or Database(settings.database_url)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    cookies = Cookies(settings)
    hub = Hub(RedisBroker(redis) if redis is not None else LocalBroker(), render=_no_render)
    fragments = Fragments(db, hub.viewers)
    hub.render, hub.batch = fragments, fragments.batch
    hub.access = partial(read_access, db)
    db.after_commit.append(hub.publish)
    metrics = Metrics()
    metrics.hub, metrics.redis = hub, redis
    db.after_commit.append(metrics.published)
    jobs_ctx: dict[str, Any] = {
        "db": db,
        "settings": settings,
        "metrics": metrics,
        "recordings": store_of(settings),
    }
    scheduler: Scheduler = (
        ArqScheduler(settings.redis_url)
        if settings.redis_url
        else LocalScheduler(
            {
                "sweep_sla": lambda: sweep_sla(jobs_ctx),
                "send_notifications": lambda: send_notifications(jobs_ctx),
            }
            if run_jobs
            else {},  # tests drive the jobs themselves
            observe=metrics.job_done,
        )
    )
    db.after_commit.append(lambda items: schedule_queued(scheduler, items))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if owns_db and settings.is_sqlite:
            await upgrade(db)  # the embedded mode needs no setup step
        warm_up()
        await _push_keys_made(db)
        await hub.start(await _latest_or_nothing(db))
        runner = None
        if run_jobs and redis is None:
            runner = InProcessRunner(jobs_ctx, PERIODIC)
            runner.start()
        try:
            async with db.checkpoints():  # SQLite's log, off the writer's commits
                yield
        finally:
            await scheduler.stop()
            await hub.stop()
            if "senders" in jobs_ctx:
                await jobs_ctx["senders"].aclose()
            if runner:
                await runner.stop()
            if redis is not None:
                await redis.aclose()
            if owns_db:
                await db.dispose()

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(Observe, metrics=metrics),
            Middleware(Guard, settings=settings),
            Middleware(WhenDatabaseDown),
            Middleware(Sessions, settings=settings, db=db, cookies=cookies),
            Middleware(TextInputs),
        ],
        exception_handlers={
            ConsoleError: console_error,
            HTTPException: http_error,
            Exception: server_error,
        },
        lifespan=lifespan,
    )
    # the same routes, each request matched only against those of its path's first segment
    app.router = SegmentRouter(routes, lifespan=lifespan)
    app.state.settings = settings
    templates.auto_reload = settings.templates_reload  # off but in development
    app.state.db = db
    app.state.recordings = store_of(settings)
    app.state.media = Media.of(settings, app.state.recordings)
    app.state.redis = redis
    app.state.cookies = cookies
    app.state.hub = hub
    app.state.clock = clock or SystemClock()
    app.state.limiter = limiter_for(redis)
    app.state.metrics = metrics
    app.state.arrivals = ArrivalWriter(db, counted=metrics.arrived)
    app.state.views = ViewWriter(db)  # the lead page's and the API's views, in groups
    return app


async def _latest_or_nothing(db: Database) -> dict[str, int]:
    """Where each business's events stand; a database that is down now must not stop start-up
    (health says 503 until it is back, and the hub learns the numbers from the events)."""
    try:
        async with db.transaction(write=False) as session:
            return await latest_seqs(session)
    except (SQLAlchemyError, OSError):
        return {}


async def _push_keys_made(db: Database) -> None:
    """The installation's VAPID key pair exists from the first start on, so a page that shows
    the public key only reads it; a database that is down or not migrated yet must not stop
    start-up (the sender makes the pair when it first needs it)."""
    try:
        async with db.transaction() as session:
            await installation_keys(session)
    except (SQLAlchemyError, OSError):
        pass


async def _no_render(event: LiveEvent, audience: Audience) -> str | None:
    return None


def warm_up() -> None:
    """Load the locale and phone data now, then keep everything made at start out of the
    garbage collector's full passes, which would otherwise walk the libraries' data and stop
    every request meanwhile. And collect less often (`GC_THRESHOLDS`): at Python's default the
    collector runs many times a second under load, for objects that almost all go by their
    reference counts anyway."""
    for locale in LOCALES:
        with using_locale(locale):
            labels.waited(datetime.now(UTC), datetime.now(UTC))
            format_local(datetime.now(UTC))
    display_phone("+972542345678")
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def __getattr__(name: str) -> Any:
    """`asgi:app` is built on first use, so importing this module reads no settings."""
    if name == "app":
        logging.basicConfig(level=logging.INFO)
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)


class HeaderDeadline(HttpToolsProtocol):
    """uvicorn's HTTP protocol with a deadline for a request's head: a connection that opened,
    or began a request (a first byte), must finish its request line and headers within
    `seconds`, or it is closed. uvicorn itself only times out a connection idle between
    requests, so a client sending half a request line and nothing more held its socket (and
    its slot) forever. Set by `mazkira serve` (`HEADER_TIMEOUT_SECONDS`, default 20)."""

    seconds: float = 20.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def header_deadline(seconds: float) -> type[HeaderDeadline]:
    return type("HeaderDeadline", (HeaderDeadline,), {"seconds": float(seconds)})
