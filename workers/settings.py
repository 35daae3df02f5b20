"""arq's WorkerSettings for `mazkira worker`, and the schedule the in-process runner shares."""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.connections import RedisSettings

from console.config import Settings
from console.db import Database
from console.jobs import Periodic
from console.notify import Senders
from workers.housekeeping import purge_events, purge_sessions
from workers.notifications import send_notifications
from workers.sla import sweep_sla

# One schedule for both ways of running: arq cron jobs at scale, the in-process runner embedded.
PERIODIC = [
    Periodic(purge_sessions, every_seconds=3600),
    Periodic(purge_events, every_seconds=3600),
    Periodic(send_notifications, every_seconds=10),
    Periodic(sweep_sla, every_seconds=5),
]


async def startup(ctx: dict[str, Any]) -> None:
    settings = Settings.from_env()
    ctx["settings"] = settings
    ctx["db"] = Database(settings.database_url)
    ctx["senders"] = Senders(settings)


async def shutdown(ctx: dict[str, Any]) -> None:
    if "senders" in ctx:
        await ctx["senders"].aclose()
    await ctx["db"].dispose()


def worker_settings(settings: Settings) -> dict[str, Any]:
    if not settings.redis_url:
        raise ValueError("mazkira worker needs REDIS_URL; without it jobs run inside mazkira serve")
    return {
        "functions": [job.function for job in PERIODIC],
        "cron_jobs": [
            cron(
                job.function,  # type: ignore[arg-type]
                second=job.seconds(),
                minute=job.minutes(),
                unique=True,
                run_at_startup=False,
            )
            for job in PERIODIC
        ],
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
    }
