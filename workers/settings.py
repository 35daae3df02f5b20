"""arq's WorkerSettings for `mazkira worker`, and the schedule the in-process runner shares."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from arq import cron
from arq.connections import RedisSettings
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from console.base.config import Settings
from console.base.db import Database
from console.base.jobs import Periodic
from console.base.logs import carrying
from console.base.metrics import counted
from console.base.scheduler import ArqScheduler, schedule_queued
from console.base.storage import store_of
from console.channels.notify import Senders
from console.live.events import LiveEvent
from console.live.hub import Audience, Hub, RedisBroker
from workers.appointments import remind_appointments
from workers.customers import anonymise_leads, classify_customers, sweep_recordings
from workers.digests import send_digests
from workers.housekeeping import purge_events, purge_sessions
from workers.notifications import send_notifications
from workers.reminders import remind_followups
from workers.sla import sweep_sla
from workers.webhooks import deliver_webhooks

# One schedule for both ways of running: arq cron jobs at scale, the in-process runner embedded.
PERIODIC = [
    Periodic(purge_sessions, every_seconds=3600),
    Periodic(purge_events, every_seconds=3600),
    Periodic(send_notifications, every_seconds=10),
    Periodic(sweep_sla, every_seconds=5),
    Periodic(deliver_webhooks, every_seconds=5),
    Periodic(remind_followups, every_seconds=300),
    Periodic(send_digests, every_seconds=300),
    Periodic(remind_appointments, every_seconds=300),
    Periodic(classify_customers, every_seconds=3600),
    Periodic(anonymise_leads, every_seconds=3600),
    Periodic(sweep_recordings, every_seconds=600),
]


# A Redis restart or a short outage is waited out: each command retries for about half a
# minute, backing off to 2 s between tries. Longer, and the worker exits for its supervisor.
REDIS_RETRIES = 20
REDIS_BACKOFF = ExponentialBackoff(cap=2.0, base=0.05)
# On SIGTERM (a deploy) the worker takes no new job and lets the running ones finish for up to
# this long: a send cut off after the provider took it would go again when its lease ran out,
# and WhatsApp has no idempotency key to drop the copy. Sends time out after 15 s (SMTP: 30 s).
STOP_WAIT_SECONDS = 25


async def startup(ctx: dict[str, Any]) -> None:
    settings = Settings.from_env()
    ctx["settings"] = settings
    ctx["recordings"] = store_of(settings)
    db = ctx["db"] = Database(settings.database_url)
    ctx["senders"] = Senders(settings, db)
    # The jobs' commits go on as a web process's do: their events to every console (through
    # the web processes' Redis channel), and the runs they ask for (the sweep at a lead's next
    # threshold, the sender for a notice just queued) to arq, over the worker's own connection.
    hub = Hub(RedisBroker(ctx["redis"]), render=_render_nothing)
    scheduler = ArqScheduler(settings.redis_url or "", pool=ctx["redis"])
    db.after_commit.append(hub.publish)
    db.after_commit.append(lambda items: schedule_queued(scheduler, items))


async def _render_nothing(event: LiveEvent, audience: Audience) -> str | None:
    return None  # a worker has no consoles of its own: it only publishes


def redis_settings(url: str) -> RedisSettings:
    return replace(
        RedisSettings.from_dsn(url),
        retry=Retry(REDIS_BACKOFF, REDIS_RETRIES),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, OSError],
    )


async def shutdown(ctx: dict[str, Any]) -> None:
    if "senders" in ctx:
        await ctx["senders"].aclose()
    await ctx["db"].dispose()


def worker_settings(settings: Settings) -> dict[str, Any]:
    if not settings.redis_url:
        raise ValueError("mazkira worker needs REDIS_URL; without it jobs run inside mazkira serve")
    return {
        # each run logs under the id of the request that asked for it (or its own name)
        # counted in Redis for the web processes' /metrics (console/base/metrics.counted)
        "functions": [counted(carrying(job.function)) for job in PERIODIC],
        "cron_jobs": [
            cron(
                counted(carrying(job.function)),  # type: ignore[arg-type]
                second=job.seconds(),
                minute=job.minutes(),
                unique=True,
                run_at_startup=False,
            )
            for job in PERIODIC
        ],
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": redis_settings(settings.redis_url),
        "job_completion_wait": STOP_WAIT_SECONDS,
    }
