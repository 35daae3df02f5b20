"""Running a job at an exact moment: the SLA check due when a lead's next threshold passes.

In-process (embedded) it is a timer of the serving process; at scale it is an arq job deferred
until that moment, one job id per tenth of a second so leads due together make one run. Either
way the cron sweep stays the backstop: a timer lost with a restart, or a flushed Redis, only
delays an alert until the next sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("mazkira.scheduler")

# Checks are grouped in tenth-of-a-second slots, run at the end of theirs: leads due together
# make one run, and none runs before its moment.
SLOTS_PER_SECOND = 10


def _slot(moment: datetime) -> int:
    return int(moment.timestamp() * SLOTS_PER_SECOND) + 1


@dataclass(frozen=True)
class SweepAt:
    """Queued by a service (after commit): run the SLA sweep at this moment."""

    at: datetime


class LocalScheduler:
    def __init__(self, run: Callable[[], Awaitable[Any]]) -> None:
        self.run = run
        self.pending: dict[int, asyncio.TimerHandle] = {}
        self.tasks: set[asyncio.Task[Any]] = set()

    async def at(self, moment: datetime) -> None:
        slot = _slot(moment)
        if slot in self.pending:
            return
        delay = max(0.0, slot / SLOTS_PER_SECOND - datetime.now(UTC).timestamp())
        loop = asyncio.get_running_loop()
        self.pending[slot] = loop.call_later(delay, self._fire, slot)

    def _fire(self, slot: int) -> None:
        self.pending.pop(slot, None)
        task = asyncio.create_task(self._run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self) -> None:
        try:
            await self.run()
        except Exception:
            log.exception("scheduled SLA sweep failed; the periodic sweep will catch up")

    async def stop(self) -> None:
        for handle in self.pending.values():
            handle.cancel()
        self.pending.clear()
        for task in list(self.tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class ArqScheduler:
    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.pool: Any = None

    async def at(self, moment: datetime) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings

        if self.pool is None:
            self.pool = await create_pool(RedisSettings.from_dsn(self.redis_url))
        slot = _slot(moment)
        await self.pool.enqueue_job(
            "sweep_sla",
            _job_id=f"sweep-sla:{slot}",
            _defer_until=datetime.fromtimestamp(slot / SLOTS_PER_SECOND, UTC),
        )

    async def stop(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()


async def schedule_sweeps(scheduler: LocalScheduler | ArqScheduler, items: list[Any]) -> None:
    """The after-commit hook: one timer per slot of the moments queued."""
    moments = {item.at for item in items if isinstance(item, SweepAt)}
    for moment in sorted(moments):
        try:
            await scheduler.at(moment)
        except Exception:
            log.warning("could not schedule the SLA check at %s; the sweep will catch up", moment)
