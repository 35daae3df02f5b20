"""The in-process job runner of the embedded mode: the same job functions arq runs at scale."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("mazkira.jobs")

Job = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Periodic:
    function: Job
    every_seconds: int

    def minutes(self) -> set[int] | None:
        """The minutes of the hour at which arq's cron should run this job."""
        step = max(1, self.every_seconds // 60)
        return None if step == 1 else set(range(0, 60, min(step, 60)))

    def seconds(self) -> set[int]:
        """The seconds of the minute at which arq's cron should run this job: for a job more
        frequent than once a minute every `every_seconds` from :00, else only :00."""
        if self.every_seconds >= 60:
            return {0}
        return set(range(0, 60, max(1, self.every_seconds)))


class InProcessRunner:
    """Runs periodic jobs as tasks of the serving process; one failure never stops the others."""

    def __init__(self, ctx: dict[str, Any], jobs: list[Periodic]) -> None:
        self.ctx = ctx
        self.jobs = jobs
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._loop(job)) for job in self.jobs]

    async def _loop(self, job: Periodic) -> None:
        while True:
            name = job.function.__name__
            try:
                result = await job.function(self.ctx)
            except Exception:
                log.exception("job %s failed; it runs again on schedule", name)
                observe(self.ctx, name, None, failed=True)
            else:
                observe(self.ctx, name, result)
            await asyncio.sleep(job.every_seconds)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []


def observe(ctx: dict[str, Any], name: str, result: object, *, failed: bool = False) -> None:
    """A run counted for `/metrics`, when the process keeps them (`ctx["metrics"]`)."""
    metrics = ctx.get("metrics")
    if metrics is not None:
        metrics.job_done(name, result, failed=failed)
