"""What routing decides from, kept in this process's memory: the roster.

Whom a call may ring is a question about a few hundred rows at most (the businesses' call
settings and overflow rules, who serves which business as primary or backup, each secretary's
state and since when she is free, the calls waiting per business, since when and who declined
them), asked
hundreds of times a second when many calls wait. Each process keeps them here, so a decision
reads no table and waits on no database queue (SQLite's one statement thread, PostgreSQL's
pool); the database stays the truth:

- loaded whole (four statements) when first asked and after this process committed a change
  the roster does not follow itself (in that question); and once older than `REFRESH_SECONDS`,
  in a task of its own while the questions go on with the view they have, it reads the counter
  every write to its tables moves (`roster_changes`, one statement) and loads again only when
  that moved; so another process's changes (a second web process behind nginx, the CLI) show
  within about that, and a quiet roster costs one statement a second;
- kept current in between by the code paths that change it, once their transaction commits:
  `states` says what state it moved a secretary to (`agent_moved`), and a call's row flushed by
  the ORM says its state; any other write to the tables it reads (a business's settings, an
  assignment, a user's role) marks it for reloading at the next question;
- never trusted to take a secretary: the one chosen is set ringing by a conditional write
  (`states.ring`: only if she is free now, and on PostgreSQL not while another decision holds
  her row). A stale view therefore costs a question at most: one who is no longer free is
  passed over for the next (she is never rung busy, on a break, or for two calls), and one who
  came free in another process is rung at its next question after the refresh.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain
from typing import Any

from sqlalchemy import event, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from console.base.db import dialect_of
from console.voice.call_settings import BOUNDS
from models import Business, SecretaryAssignment, User
from models.agents import DEFAULT_WAIT_LIMIT_SECONDS, AgentStatus, CallSettings, RosterChanges
from models.on_call import OverflowRule
from models.recordings import RecordingSettings
from models.voice import Call

log = logging.getLogger("mazkira.voice")
# How old a view may get before a question has it reloaded (another process's changes).
REFRESH_SECONDS = 1.0
# Calls waiting longer than any business's limit and a little are ones the SIP server no
# longer asks about (routing.STALE_AFTER); the view leaves them out.
OLDEST_WAITING = timedelta(seconds=BOUNDS["wait_limit_seconds"][1] + 10)
# The tables it reads; a write to one it does not follow itself marks it for reloading.
READ = frozenset(
    {
        "businesses",
        "users",
        "secretary_assignments",
        "call_settings",
        "overflow_rules",
        "recording_settings",
        "agent_states",
        "calls",
    }
)
# Of a user's and a business's columns, the ones routing reads (a login or a renamed business
# changes nothing here).
COLUMNS: dict[type[User] | type[Business], tuple[str, ...]] = {
    User: ("active", "role"),
    Business: ("active",),
}
FREE_STATES = ("available", "wrap_up")


@dataclass(frozen=True)
class Lineup:
    """A business as routing sees it: its settings, overflow rule, and who serves it."""

    active: bool
    ring_seconds: int | None
    wait_limit_seconds: int | None
    waiting: str | None  # the overflow rule's action for a call past its wait limit
    closed: str | None
    holiday: str | None
    other_business_id: uuid.UUID | None
    record_calls: bool
    voicemail_max_seconds: int | None = None  # the longest voicemail message (None: default)
    announces: bool = False  # it records its calls and has an announcement the caller hears first
    serving: tuple[tuple[uuid.UUID, bool], ...] = ()  # (secretary, is_backup)

    @property
    def wait_limit(self) -> int:
        limit = self.wait_limit_seconds
        return DEFAULT_WAIT_LIMIT_SECONDS if limit is None else limit


@dataclass(frozen=True)
class Agent:
    state: str
    since: datetime
    free_from: datetime | None

    def free(self, now: datetime) -> bool:
        return self.state in FREE_STATES and self.free_from is not None and self.free_from <= now


@dataclass(frozen=True)
class AgentMoved:
    """After-commit: a secretary's new state (from `states`), applied unless the view already
    holds a later one."""

    user_id: uuid.UUID
    agent: Agent


@dataclass(frozen=True)
class CallMoved:
    """After-commit: a call's state as its row was flushed."""

    business_id: uuid.UUID
    sip_call_id: str
    waiting: bool
    arrived_at: datetime
    declined: frozenset[uuid.UUID] = frozenset()  # the secretaries who declined it


@dataclass(frozen=True)
class Reload:
    """After-commit: a write the roster does not follow; reload at the next question."""


Change = AgentMoved | CallMoved | Reload


@dataclass
class View:
    businesses: dict[uuid.UUID, Lineup]
    agents: dict[uuid.UUID, Agent]
    serves: dict[uuid.UUID, tuple[uuid.UUID, ...]]  # secretary: the businesses she serves
    waiting: dict[uuid.UUID, dict[str, datetime]] = field(default_factory=dict)
    # Of the waiting calls, those someone declined (her reject button): who did.
    declined: dict[str, frozenset[uuid.UUID]] = field(default_factory=dict)

    def apply(self, change: Change) -> None:
        if isinstance(change, AgentMoved):
            known = self.agents.get(change.user_id)
            if known is None or known.since <= change.agent.since:
                self.agents[change.user_id] = change.agent
        elif isinstance(change, CallMoved):
            calls = self.waiting.setdefault(change.business_id, {})
            if change.waiting:
                calls[change.sip_call_id] = change.arrived_at
            else:
                calls.pop(change.sip_call_id, None)
            if change.waiting and change.declined:
                self.declined[change.sip_call_id] = change.declined
            else:
                self.declined.pop(change.sip_call_id, None)

    def free(self, lineup: Lineup, now: datetime) -> list[tuple[uuid.UUID, bool]]:
        """Its free secretaries, the one idle longest first (then by id, as the database
        would order them)."""
        found = []
        for user_id, backup in lineup.serving:
            agent = self.agents.get(user_id)
            if agent is not None and agent.free(now):
                assert agent.free_from is not None
                found.append((agent.free_from, user_id, backup))
        found.sort()
        return [(user_id, backup) for _, user_id, backup in found]

    def kept_for_older_calls(
        self, free: Iterable[uuid.UUID], arrived: datetime, now: datetime, stale_after: timedelta
    ) -> set[uuid.UUID]:
        """The free secretaries whom an older call, still waiting for one of her businesses,
        may have first (oldest first across businesses); a call waiting past its business's
        limit and `stale_after` is one nobody asks about any more, and keeps nobody; nor does
        one she declined (it is never rung to her again: the oldest call she may take has her)."""
        mine = arrived - timedelta(milliseconds=1)
        kept = set()
        for user_id in free:
            for business_id in self.serves.get(user_id, ()):
                calls = self.waiting.get(business_id)
                if not calls:
                    continue
                lineup = self.businesses.get(business_id)
                limit = lineup.wait_limit if lineup else DEFAULT_WAIT_LIMIT_SECONDS
                after = max(now - OLDEST_WAITING, now - timedelta(seconds=limit) - stale_after)
                if any(
                    after < at < mine and user_id not in self.declined.get(call, ())
                    for call, at in calls.items()
                ):
                    kept.add(user_id)
                    break
        return kept


class Roster:
    """One process's view for one database, with what keeps it current."""

    def __init__(self) -> None:
        self.view: View | None = None
        self.loaded_at = float("-inf")
        self.looked_at = float("-inf")  # the last periodic look that found nothing written
        self.counter: int | None = None  # the writes counted at the last periodic load
        self.settling = False  # that load found the counter moved: load once more at the next
        self.reload = True
        self.loads = 0
        self._collecting: list[list[Change]] = []  # one list per load under way
        self._refreshing: asyncio.Task[None] | None = None

    async def current(self, session: AsyncSession, now: datetime) -> View:
        """The view. Loaded first in this question when there is none yet or this process
        wrote what it does not follow (that write must show at once); when it is only older
        than `REFRESH_SECONDS`, reloaded in a task of its own while this question and the
        others go on with it, so no question waits for the periodic load."""
        if self.view is not None and not self.reload:
            if time.monotonic() - max(self.loaded_at, self.looked_at) > REFRESH_SECONDS:
                self._refresh_soon(session, now)
            return self.view
        self.reload = False
        try:
            return await self._load(session, now)
        except BaseException:
            self.reload = True
            raise

    async def _load(self, session: AsyncSession, now: datetime) -> View:
        started = time.monotonic()
        during: list[Change] = []
        self._collecting.append(during)
        try:
            view = await load(session, now)
        finally:
            self._collecting.remove(during)
        for change in during:  # committed meanwhile: the loaded view may not hold them yet
            view.apply(change)
        if started >= self.loaded_at:  # a load that began later may have finished first
            self.view, self.loaded_at = view, started
        self.loads += 1
        return view

    def _refresh_soon(self, session: AsyncSession, now: datetime) -> None:
        if self._refreshing is not None and not self._refreshing.done():
            return
        bind = session.bind
        if not isinstance(bind, AsyncEngine):
            return
        # A reading transaction of its own (not the question's, which may hold SQLite's writer).
        engine = bind.execution_options(sqlite_immediate=False)
        self._refreshing = asyncio.get_running_loop().create_task(self._refresh(engine, now))

    async def _refresh(self, engine: AsyncEngine, now: datetime) -> None:
        try:
            async with AsyncSession(engine) as session, session.begin():
                counter = await writes_counted(session)
                if counter == self.counter and not self.settling:
                    self.looked_at = time.monotonic()
                    return
                # On PostgreSQL the counter moves at the write, ahead of its commit: the load
                # after it once more sees a transaction that committed after this one read.
                self.settling = counter != self.counter
                await self._load(session, now)
                self.counter = counter
        except Exception as error:  # the questions go on with the view they have; tried again
            self.looked_at = time.monotonic()
            log.warning("Routing's roster was not reloaded: %s", error)

    async def refreshed(self) -> None:
        """Once a reload under way in its own task is done (for tests)."""
        if self._refreshing is not None:
            await self._refreshing

    def cancel(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()

    def apply(self, changes: Iterable[Change]) -> None:
        for change in changes:
            if isinstance(change, Reload):
                self.reload = True
                continue
            for during in self._collecting:
                during.append(change)
            if self.view is not None:
                self.view.apply(change)


# One roster per database (its connection pool), in this process.
_rosters: weakref.WeakKeyDictionary[Any, Roster] = weakref.WeakKeyDictionary()


def roster_of(session: AsyncSession | Session) -> Roster:
    pool = getattr(session.get_bind(), "pool", None)
    found = _rosters.get(pool)
    if found is None:
        found = _rosters[pool] = Roster()
    return found


def roster_of_database(db: Any) -> Roster:
    """A `console.base.db.Database`'s roster in this process (for tests and the bench)."""
    pool = db.engine.sync_engine.pool
    found = _rosters.get(pool)
    if found is None:
        found = _rosters[pool] = Roster()
    return found


def forget(engine: Any) -> None:
    """Drop this process's roster for a database whose tables were emptied behind its back."""
    found = _rosters.pop(engine.pool, None)
    if found is not None:
        found.cancel()


async def writes_counted(session: AsyncSession) -> int:
    """A number every write to the roster's tables moves (triggers, migration 0034): SQLite's
    counter row, PostgreSQL's sequence (its first value counts once drawn)."""
    if dialect_of(session) == "postgresql":
        return int(await session.scalar(_DRAWN) or 0)
    return int(await session.scalar(select(RosterChanges.counter)) or 0)


_DRAWN = text("SELECT last_value + is_called::int FROM roster_changes_seq")


async def load(session: AsyncSession, now: datetime) -> View:
    settings = await session.execute(
        select(
            Business.id,
            Business.active,
            CallSettings.ring_seconds,
            CallSettings.wait_limit_seconds,
            OverflowRule.waiting,
            OverflowRule.closed,
            OverflowRule.holiday,
            OverflowRule.other_business_id,
            RecordingSettings.record_calls,
            RecordingSettings.voicemail_max_seconds,
            RecordingSettings.announcement_key,
        )
        .outerjoin(CallSettings, CallSettings.business_id == Business.id)
        .outerjoin(OverflowRule, OverflowRule.business_id == Business.id)
        .outerjoin(RecordingSettings, RecordingSettings.business_id == Business.id)
    )
    serving: dict[uuid.UUID, list[tuple[uuid.UUID, bool]]] = {}
    serves: dict[uuid.UUID, list[uuid.UUID]] = {}
    assigned = await session.execute(
        select(
            SecretaryAssignment.business_id,
            SecretaryAssignment.user_id,
            SecretaryAssignment.is_backup,
        )
        .join(User, User.id == SecretaryAssignment.user_id)
        .where(User.active, User.role == "secretary")
    )
    for business_id, user_id, backup in assigned:
        serving.setdefault(business_id, []).append((user_id, bool(backup)))
        serves.setdefault(user_id, []).append(business_id)
    businesses = {
        row.id: Lineup(
            active=bool(row.active),
            ring_seconds=row.ring_seconds,
            wait_limit_seconds=row.wait_limit_seconds,
            waiting=row.waiting,
            closed=row.closed,
            holiday=row.holiday,
            other_business_id=row.other_business_id,
            record_calls=bool(row.record_calls),
            voicemail_max_seconds=row.voicemail_max_seconds,
            announces=bool(row.record_calls and row.announcement_key),
            serving=tuple(serving.get(row.id, ())),
        )
        for row in settings
    }
    states = await session.execute(
        select(AgentStatus.user_id, AgentStatus.state, AgentStatus.since, AgentStatus.free_from)
    )
    agents = {row.user_id: Agent(row.state, row.since, row.free_from) for row in states}
    view = View(businesses, agents, {user: tuple(ids) for user, ids in serves.items()})
    waiting = await session.execute(
        select(Call.business_id, Call.sip_call_id, Call.arrived_at, Call.declined).where(
            Call.state == "waiting", Call.direction == "in", Call.arrived_at > now - OLDEST_WAITING
        )
    )
    for business_id, sip_call_id, arrived_at, declined in waiting:
        view.waiting.setdefault(business_id, {})[sip_call_id] = arrived_at
        if declined:
            view.declined[sip_call_id] = declined_by(declined)
    return view


def declined_by(users: Iterable[str] | None) -> frozenset[uuid.UUID]:
    """A call's `declined` (her SIP users, her user id's hex) as user ids."""
    return frozenset(uuid.UUID(hex=user) for user in users or ())


# --- kept current: what this process's transactions changed, applied once they commit --------

QUEUE = "after_commit"  # console.base.db's list: a rolled-back savepoint drops its part


def queue(session: Session | AsyncSession, change: Change) -> None:
    session.info.setdefault(QUEUE, []).append(change)


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context: UOWTransaction) -> None:
    for obj in chain(session.new, session.dirty, session.deleted):
        if isinstance(obj, Call):
            gone = obj in session.deleted
            if obj.direction == "in" and obj.arrived_at is not None:
                waiting = obj.state == "waiting" and not gone
                moved = CallMoved(
                    obj.business_id,
                    obj.sip_call_id,
                    waiting,
                    obj.arrived_at,
                    declined_by(obj.declined) if waiting else frozenset(),
                )
                queue(session, moved)
            continue
        table = getattr(obj, "__tablename__", None)
        if table not in READ:
            continue
        columns = COLUMNS.get(type(obj), ())
        if columns and obj in session.dirty:
            changed = inspect(obj).attrs
            if not any(changed[name].history.has_changes() for name in columns):
                continue
        elif obj in session.dirty and not session.is_modified(obj):
            continue
        queue(session, Reload())
        return


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    if state.execution_options.get("roster_follows"):
        return  # its change is queued by the code that runs it
    table = getattr(state.statement, "table", None)
    name = getattr(table, "name", None)
    if name not in READ:
        return
    columns = next((cols for kind, cols in COLUMNS.items() if kind.__tablename__ == name), ())
    values = getattr(state.statement, "_values", None)  # an UPDATE's columns, when it has them
    keys = {getattr(column, "key", column) for column in values or ()}
    if state.is_update and columns and keys and not keys & set(columns):
        return  # e.g. a business's event sequence, a user's last sign-in
    queue(state.session, Reload())


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    changes = [
        item
        for item in session.info.get(QUEUE, ())
        if isinstance(item, (AgentMoved, CallMoved, Reload))
    ]
    if changes:
        roster_of(session).apply(changes)
