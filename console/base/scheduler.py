"""Running a job at a moment: the SLA check when a lead's next threshold passes, the sender as
soon as a notification is queued.

In-process (embedded) it is a timer of the serving process; at scale it is an arq job deferred
until that moment, one job id per job and tenth of a second, so things due together make one
run. Either way the periodic jobs stay the backstop: a timer lost with a restart, or a flushed
Redis, only delays the work until the next periodic run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from console.base.logs import current_request_id

log = logging.getLogger("mazkira.scheduler")

# Runs are grouped in tenth-of-a-second slots, each run at the end of its slot: leads due
# together make one run, and none runs before its moment.
SLOTS_PER_SECOND = 10


@dataclass(frozen=True)
class SweepAt:
    """Queued by a service (after commit): run the SLA sweep at this moment."""

    at: datetime


@dataclass(frozen=True)
class RunSoon:
    """Queued by a service (after commit): run this job now, e.g. the notification sender."""

    job: str


def _slot(moment: datetime) -> int:
    return int(moment.timestamp() * SLOTS_PER_SECOND) + 1


class Scheduler(Protocol):
    async def at(self, job: str, moment: datetime) -> None: ...
    async def stop(self) -> None: ...


class LocalScheduler:
    def __init__(
        self,
        jobs: dict[str, Callable[[], Awaitable[Any]]],
        observe: Callable[..., None] | None = None,
    ) -> None:
        """`observe(name, result, failed=...)` is told of each run (for `/metrics`). A run
        carries the context of the commit that asked for it: its request's id in the logs."""
        self.jobs = jobs
        self.observe = observe
        self.pending: dict[tuple[str, int], asyncio.TimerHandle] = {}
        self.tasks: set[asyncio.Task[Any]] = set()

    async def at(self, job: str, moment: datetime) -> None:
        key = (job, _slot(moment))
        if key in self.pending or job not in self.jobs:
            return
        delay = max(0.0, key[1] / SLOTS_PER_SECOND - datetime.now(UTC).timestamp())
        self.pending[key] = asyncio.get_running_loop().call_later(delay, self._fire, key)

    def _fire(self, key: tuple[str, int]) -> None:
        self.pending.pop(key, None)
        task = asyncio.create_task(self._run(key[0]))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, job: str) -> None:
        try:
            result = await self.jobs[job]()
        except Exception:
            log.exception("scheduled %s failed; its periodic run will catch up", job)
            if self.observe is not None:
                self.observe(job, None, failed=True)
        else:
            if self.observe is not None:
                self.observe(job, result)

    async def stop(self) -> None:
        for handle in self.pending.values():
            handle.cancel()
        self.pending.clear()
        for task in list(self.tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class ArqScheduler:
    def __init__(self, redis_url: str, pool: Any = None) -> None:
        """`pool`: an arq pool to share (a worker's own, which it also closes); without one,
        a pool is made on first use and closed by `stop`."""
        self.redis_url = redis_url
        self.pool: Any = pool
        self.owns_pool = pool is None

    async def at(self, job: str, moment: datetime) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings

        if self.pool is None:
            self.pool = await create_pool(RedisSettings.from_dsn(self.redis_url))
        slot = _slot(moment)
        await self.pool.enqueue_job(
            job,
            request_id=current_request_id.get(),  # its log lines carry the asking request's id
            _job_id=f"{job}:{slot}",
            _defer_until=datetime.fromtimestamp(slot / SLOTS_PER_SECOND, UTC),
        )

    async def stop(self) -> None:
        if self.pool is not None and self.owns_pool:
            await self.pool.aclose()


async def schedule_queued(scheduler: Scheduler, items: list[Any]) -> None:
    """The after-commit hook: one run per job and slot of what the transaction queued (a group
    of web forms queues a moment per lead, most of them in the same slot: asked once, not once
    per lead, and with arq that is one round trip to Redis)."""
    now = datetime.now(UTC)
    queued = [("sweep_sla", item.at) for item in items if isinstance(item, SweepAt)]
    queued += [(item.job, now) for item in items if isinstance(item, RunSoon)]
    wanted: dict[tuple[str, int], tuple[str, datetime]] = {}
    for job, moment in queued:
        wanted.setdefault((job, _slot(moment)), (job, moment))
    for job, moment in sorted(wanted.values(), key=lambda pair: pair[1]):
        try:
            await scheduler.at(job, moment)
        except Exception:
            log.warning("could not schedule %s at %s; its periodic run will catch up", job, moment)
