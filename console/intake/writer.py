"""Arrivals in groups (group commit): the arrivals of concurrent requests are written together,
each group in one transaction of its own through `arrivals.write`, and each arrival answered on
its own, so a refused arrival never fails the others of its group."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence

from sqlalchemy.exc import DBAPIError, IntegrityError

from console.base.db import Database, unavailable
from console.base.errors import ConsoleError, Invalid
from console.intake.arrivals import Answer, Arrival, Arrived, write

# At most this many arrivals in one transaction.
GROUP = 100
# How long a group waits for arrivals still coming, while fewer are in than the last group had.
GATHER_AT_MOST = 0.003  # seconds
GATHER_STEP = 0.0005  # seconds between looks once a turn brought none
# Arrivals this long after the last group was answered are not its callers coming back: a lone
# one is written at once, whatever size the last group had.
QUIET_AFTER = 0.05  # seconds
# Groups written at once on PostgreSQL (each on its own connection); SQLite has one writer.
PARALLEL_GROUPS = 3


class ArrivalWriter:
    """Writes arrivals in groups (group commit): the arrivals that come while a group is being
    written make the next, so under load one transaction of a dozen statements takes many,
    and a lone arrival is written after one turn of the event loop (once the load is gone,
    whatever size the last group had). Each arrival gets its own
    answer: its lead, its refusal, or the error that stopped the database. A group the
    database refuses (a unique key taken meanwhile by a twin in another process, a value it
    will not store) is written again one arrival at a time, so one bad arrival fails alone.

    SQLite has one writer, so one group is written at a time; PostgreSQL takes `parallel`
    groups at once, so that one group's Python work runs while another waits on the server."""

    def __init__(
        self,
        db: Database,
        *,
        group: int = GROUP,
        parallel: int | None = None,
        counted: Callable[[str, str], None] | None = None,
    ) -> None:
        self.db = db
        self.counted = counted  # (channel, outcome) of each arrival answered: for /metrics
        self.group = group
        self.parallel = parallel or (1 if db.is_sqlite else PARALLEL_GROUPS)
        self.waiting: list[tuple[Arrival, asyncio.Future[Arrived]]] = []
        self.writers: set[asyncio.Task[None]] = set()
        self.writing = 0  # writers between their start and their last look at `waiting`
        self.last_size = 0  # of the group taken last: under load, about as many come next
        self.last_answered = -math.inf  # when (perf_counter) the last group was answered

    async def receive(self, arrival: Arrival) -> Arrived:
        """The arrival written (or its refusal raised), once its group is committed."""
        answer: asyncio.Future[Arrived] = asyncio.get_running_loop().create_future()
        self.waiting.append((arrival, answer))
        if self.writing < self.parallel:
            self.writing += 1
            writer = asyncio.create_task(self._write_waiting())
            self.writers.add(writer)  # kept referenced while it runs
            writer.add_done_callback(self.writers.discard)
        if self.counted is None:
            return await answer
        try:
            arrived = await answer
        except ConsoleError:
            self.counted(arrival.channel, "refused")
            raise
        except Exception:
            self.counted(arrival.channel, "failed")
            raise
        self.counted(arrival.channel, "written")
        return arrived

    async def receive_all(self, arrivals: Sequence[Arrival]) -> list[Arrived | Exception]:
        """Several arrivals of one request (a provider's batch), each answered on its own."""
        answers = await asyncio.gather(*map(self.receive, arrivals), return_exceptions=True)
        found: list[Arrived | Exception] = []
        for answer in answers:
            if not isinstance(answer, Arrived | Exception):
                raise answer  # cancelled
            found.append(answer)
        return found

    async def _write_waiting(self) -> None:
        try:
            await self._write_groups()
        finally:
            # Counted down in the same step as `waiting` was last seen empty: an arrival that
            # comes after this starts a writer of its own.
            self.writing -= 1

    async def _write_groups(self) -> None:
        while self.waiting:
            await self._gather()
            if not self.waiting:  # another writer took them meanwhile
                break
            group, self.waiting = self.waiting[: self.group], self.waiting[self.group :]
            self.last_size = len(group)
            answers: list[Answer | Exception]
            try:
                answers = [*await self._write([arrival for arrival, _ in group])]
            except Exception as error:  # the database failed: every arrival of the group says so
                answers = [error] * len(group)
            for (_, future), answer in zip(group, answers, strict=True):
                if future.done():  # its request was cancelled
                    continue
                if isinstance(answer, Exception):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)
            self.last_answered = time.perf_counter()

    async def _gather(self) -> None:
        """Let the arrivals still coming join the group: yield to the event loop as long as
        each turn of it brings more, up to a full group, and, while fewer are in than the
        group before had, for up to `GATHER_AT_MOST` (their requests are read in this same
        loop: a group started at once would take the one or two already in and leave the
        rest, under load, to wait for it). A lone arrival after a lone one, or `QUIET_AFTER`
        past the last group's answers (no load: nobody is coming back), waits one turn."""
        started = time.perf_counter()
        quiet = started - self.last_answered >= QUIET_AFTER
        while len(self.waiting) < self.group:
            seen = len(self.waiting)
            await asyncio.sleep(0)
            if len(self.waiting) > seen:
                continue
            if quiet or seen >= self.last_size or time.perf_counter() - started >= GATHER_AT_MOST:
                return
            await asyncio.sleep(GATHER_STEP)  # a quiet turn: wait on a timer, not spinning

    async def _write(self, arrivals: list[Arrival]) -> list[Answer]:
        try:
            async with self.db.transaction() as session:
                return await write(session, arrivals)
        except DBAPIError as refused:
            if unavailable(refused):
                raise
            if len(arrivals) == 1:
                return [await self._write_alone(arrivals[0], refused)]
        return [answer for arrival in arrivals for answer in await self._write([arrival])]

    async def _write_alone(self, arrival: Arrival, refused: DBAPIError) -> Answer:
        """One arrival the database refused: a twin's key committed meanwhile is found now;
        anything else is this arrival's own fault, and only its answer says so."""
        if isinstance(refused, IntegrityError):
            try:
                async with self.db.transaction() as session:
                    (answer,) = await write(session, [arrival])
                    return answer
            except DBAPIError as again:
                if unavailable(again):
                    raise
        return Invalid("This could not be stored: the database refused it.", field="body")
