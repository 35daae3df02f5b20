"""The SLA engine: each lead's promise of a first response, counted in the business's covered
hours, the alerts raised as it runs out, and how fast it was kept.

A lead stores its target (covered minutes) and the moment it is missed (`respond_by`); the next
moment an alert is due (a warning threshold, then the breach) is its row in the narrow
`lead_alarms` table while one is due. The sweep finds due leads through that table's index on
`due_at` — never a scan of all leads — and
raises each alert under a unique key (`lead:<id>:first_response:<percent>`), so a retry, a second
worker or a sweep racing the exact-time check changes nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import DateTime, Uuid, bindparam, column, delete, func, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import after_commit, dialect_of
from console.base.errors import Invalid, NotFound
from console.base.scheduler import SweepAt
from console.business.hours import BusinessHours
from console.live import events
from console.people.audit import Actor, record_change
from console.people.tenancy import get_scoped
from console.sla.breach_notices import tell_owners
from models import Alert, Business, Lead, LeadAlarm, Role, SlaPolicy, User
from models.base import new_id
from models.contacts import CHANNELS
from models.leads import PRIORITIES
from models.sla import ANY

# First-response targets in covered minutes when a business has set none: the reference material
# asks for minutes on live channels and at most two hours for the rest.
DEFAULT_TARGETS = {"phone": 5, "whatsapp": 5, "walk-in": 5, "sms": 15, "web": 30, "email": 120}
DEFAULT_WARNINGS = (50, 80)
BREACH = 100
SWEEP_LIMIT = 1000
# A sweep that found a full batch runs again this soon (two of the scheduler's slots on).
BACKLOG_PAUSE = timedelta(seconds=0.2)
CLOCKS_KEPT = 4096
_clocks: dict[str, BusinessHours] = {}


@dataclass(frozen=True)
class Promise:
    minutes: int
    warnings: tuple[int, ...] = DEFAULT_WARNINGS
    notify_owner: bool = False

    @property
    def thresholds(self) -> tuple[int, ...]:
        return (*sorted(set(self.warnings)), BREACH)


class HasHours(Protocol):
    """A business as its clock needs it: an entity, or the web form's plain columns."""

    @property
    def weekly_hours(self) -> Mapping[str, Any]: ...
    @property
    def timezone(self) -> str: ...
    @property
    def hours_exceptions(self) -> Mapping[str, Any] | None: ...
    @property
    def always_open(self) -> bool: ...


def clock_for(business: HasHours) -> BusinessHours:
    return clock_of(
        business.weekly_hours, business.timezone, business.hours_exceptions, business.always_open
    )


def clock_of(
    weekly_hours: Mapping[str, Any],
    timezone: str,
    exceptions: Mapping[str, Any] | None,
    always_open: bool,
) -> BusinessHours:
    """The clock of these hours, built once per distinct settings and kept: a clock remembers
    the days it has worked out, so a sweep over a thousand businesses builds none again."""
    settings = json.dumps(
        [weekly_hours, timezone, exceptions, always_open], sort_keys=True, default=str
    )
    clock = _clocks.get(settings)
    if clock is None:
        if len(_clocks) >= CLOCKS_KEPT:
            _clocks.clear()
        exceptions = exceptions or {}
        clock = _clocks[settings] = BusinessHours.from_business(
            weekly_hours,
            timezone,
            closed_dates=exceptions.get("closed_dates", ()),
            special_hours=exceptions.get("special_hours") or None,
            always_open=always_open,
        )
    return clock


def pick_promise(policies: Sequence[SlaPolicy], channel: str, priority: str) -> Promise:
    """The most specific policy: channel and priority, then channel, then priority, then any."""
    ranked = {(p.channel, p.priority): p for p in policies}
    for key in ((channel, priority), (channel, ANY), (ANY, priority), (ANY, ANY)):
        if key in ranked:
            policy = ranked[key]
            return Promise(
                policy.first_response_minutes,
                tuple(policy.warn_at_percent),
                policy.notify_owner_on_breach,
            )
    return Promise(DEFAULT_TARGETS.get(channel, 30))


async def policies_of(
    session: AsyncSession, business_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[SlaPolicy]]:
    found: dict[uuid.UUID, list[SlaPolicy]] = {b: [] for b in business_ids}
    for policy in await session.scalars(_POLICIES_OF, {"ids": list(business_ids)}):
        found[policy.business_id].append(policy)
    return found


def threshold_moment(clock: BusinessHours, lead: Lead | DueLead, percent: int) -> datetime | None:
    """When `percent` of the lead's target has passed; None for a business with no hours."""
    assert lead.sla_minutes is not None
    try:
        return clock.add_covered_minutes(lead.created_at, lead.sla_minutes * percent / 100)
    except ValueError:  # no covered hours in the coming year: no promise can be kept or missed
        return None


async def start_clock(
    session: AsyncSession,
    lead: Lead,
    business: Business,
    policies: Sequence[SlaPolicy] | None = None,
) -> None:
    """Give a lead its promise: target, breach time, first alert time and queue place."""
    if policies is None:
        policies = (await policies_of(session, [business.id]))[business.id]
    due = promise_times(lead, business, policies)
    if inspect(lead).persistent:
        await set_alarms(session, {lead.id: due})
    elif due is not None:  # a new lead: its alarm is inserted with it, in the same flush
        lead.alarm = LeadAlarm(due_at=due)
    if due is not None:
        after_commit(session, SweepAt(due))


def promise_times(lead: Lead, business: Business, policies: Sequence[SlaPolicy]) -> datetime | None:
    """Set the lead's target, breach time and queue place; return when its first alert is due."""
    times = promise_for(clock_for(business), policies, lead.channel, lead.priority, lead.created_at)
    for name, value in times.columns(lead.created_at).items():
        setattr(lead, name, value)
    return times.first_alert


@dataclass(frozen=True, slots=True)
class PromiseTimes:
    """A new lead's promise: its target, its first warning, its breach and its first alert."""

    minutes: int
    warn_at: datetime | None
    respond_by: datetime | None
    first_alert: datetime | None

    def columns(self, created_at: datetime) -> dict[str, Any]:
        """The lead's columns this promise sets: target, warning, breach and queue place (new
        leads rank first, by when they must be answered)."""
        return {
            "sla_minutes": self.minutes,
            "respond_by": self.respond_by,
            "warn_at": self.warn_at,
            "queue_rank": 0,
            "queue_at": self.respond_by or created_at,
        }


def promise_for(
    clock: BusinessHours,
    policies: Sequence[SlaPolicy],
    channel: str,
    priority: str,
    created_at: datetime,
) -> PromiseTimes:
    """The promise a lead of this channel and priority gets when it arrives at `created_at`
    (pure: the web form's groups compute it for rows they write without the ORM)."""
    promise = pick_promise(policies, channel, priority)
    amounts = [promise.minutes * percent / 100 for percent in promise.thresholds]
    moments = dict(
        zip(promise.thresholds, clock.add_covered_minutes_each(created_at, amounts), strict=True)
    )
    first_alert = next(
        (moment for moment in moments.values() if moment is not None and moment > created_at),
        None,
    )
    return PromiseTimes(
        promise.minutes, moments[promise.thresholds[0]], moments[BREACH], first_alert
    )


async def set_alarms(session: AsyncSession, alarms: Mapping[uuid.UUID, datetime | None]) -> None:
    """Leads' next alert times (None: no alert is due any more), in two statements at most, each
    compiled once whatever the count: a DELETE of the leads done with and an upsert of the rest
    (PostgreSQL binds both as arrays, unnested; SQLite runs them as executemany)."""
    done = [lead_id for lead_id, due in alarms.items() if due is None]
    later = {lead_id: due for lead_id, due in alarms.items() if due is not None}
    if dialect_of(session) == "postgresql":
        if done:
            await session.execute(_DELETE_ARRAY, {"ids": done})
        if later:
            await session.execute(
                _UPSERT_ARRAY, {"ids": list(later), "times": list(later.values())}
            )
        return
    if done:
        await session.execute(_DELETE_ONE, [{"lead": lead_id} for lead_id in done])
    if later:
        await session.execute(
            _UPSERT_ONE, [{"lead_id": lead_id, "due_at": due} for lead_id, due in later.items()]
        )


_POLICIES_OF = select(SlaPolicy).where(SlaPolicy.business_id.in_(bindparam("ids", expanding=True)))
_ALARMS = LeadAlarm.metadata.tables["lead_alarms"]
_DELETE_ONE = delete(_ALARMS).where(_ALARMS.c.lead_id == bindparam("lead"))
_UPSERT_ONE = sqlite.insert(_ALARMS)
_UPSERT_ONE = _UPSERT_ONE.on_conflict_do_update(
    index_elements=[_ALARMS.c.lead_id], set_={"due_at": _UPSERT_ONE.excluded.due_at}
)
_DELETE_ARRAY = delete(_ALARMS).where(
    _ALARMS.c.lead_id == func.any(bindparam("ids", type_=postgresql.ARRAY(Uuid())))
)
_ARRAYS = (
    func.unnest(
        bindparam("ids", type_=postgresql.ARRAY(Uuid())),
        bindparam("times", type_=postgresql.ARRAY(DateTime(timezone=True))),
    )
    .table_valued(column("lead_id", Uuid()), column("due_at", DateTime(timezone=True)))
    .render_derived(name="alarms_in")
)
_UPSERT_ARRAY = postgresql.insert(_ALARMS).from_select(
    ["lead_id", "due_at"], select(_ARRAYS.c.lead_id, _ARRAYS.c.due_at)
)
_UPSERT_ARRAY = _UPSERT_ARRAY.on_conflict_do_update(
    index_elements=[_ALARMS.c.lead_id], set_={"due_at": _UPSERT_ARRAY.excluded.due_at}
)


async def stop_clock(
    session: AsyncSession, lead: Lead, business: Business, user: User, channel: str, now: datetime
) -> None:
    """The first response: measure it (covered and wall-clock minutes) and stand the alerts down."""
    lead.first_response_at = now
    lead.first_response_by_id = user.id
    lead.first_response_channel = channel
    lead.first_response_wall_minutes = round((now - lead.created_at).total_seconds() / 60, 2)
    lead.first_response_covered_minutes = round(
        clock_for(business).covered_minutes_between(lead.created_at, now), 2
    )
    lead.queue_rank, lead.queue_at = 1, lead.created_at
    await set_alarms(session, {lead.id: None})


async def clear_alerts(session: AsyncSession, lead: Lead, now: datetime) -> None:
    """An answered or closed lead's open alerts are cleared (kept, marked, not acknowledged)."""
    await session.execute(
        update(Alert)
        .where(
            Alert.lead_id == lead.id, Alert.acknowledged_at.is_(None), Alert.cleared_at.is_(None)
        )
        .values(cleared_at=now)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True, slots=True)
class DueLead:
    """What the sweep reads of a due lead (plain rows: a thousand of them load fast)."""

    id: uuid.UUID
    business_id: uuid.UUID
    channel: str
    priority: str
    created_at: datetime
    sla_minutes: int | None
    first_response_at: datetime | None
    closed_at: datetime | None

    @staticmethod
    def columns() -> tuple[Any, ...]:
        return (
            Lead.id,
            Lead.business_id,
            Lead.channel,
            Lead.priority,
            Lead.created_at,
            Lead.sla_minutes,
            Lead.first_response_at,
            Lead.closed_at,
        )


@dataclass(frozen=True)
class SweepReport:
    due: int
    raised: int


async def sweep(session: AsyncSession, *, now: datetime, limit: int = SWEEP_LIMIT) -> SweepReport:
    """Raise the alerts that are due: a fixed number of statements for up to `limit` leads."""
    due_statement = (
        select(*DueLead.columns())
        .select_from(LeadAlarm)
        .join(Lead, Lead.id == LeadAlarm.lead_id)
        .where(LeadAlarm.due_at <= now)
        .order_by(LeadAlarm.due_at)
        .limit(limit)
    )
    if dialect_of(session) == "postgresql":  # a second worker takes the next ones, not these
        due_statement = due_statement.with_for_update(of=LeadAlarm, skip_locked=True)
    due = [DueLead(*row) for row in await session.execute(due_statement)]
    if not due:
        return SweepReport(0, 0)
    if len(due) == limit:  # a backlog (e.g. after an outage): the next run follows at once
        after_commit(session, SweepAt(now + BACKLOG_PAUSE))
    business_ids = sorted({lead.business_id for lead in due})
    hours = select(
        Business.id,
        Business.weekly_hours,
        Business.timezone,
        Business.hours_exceptions,
        Business.always_open,
    ).where(Business.id.in_(business_ids))
    clocks = {row[0]: clock_of(*row[1:]) for row in await session.execute(hours)}
    policies = await policies_of(session, business_ids)
    tell_owner: set[str] = set()
    alerts: list[dict[str, Any]] = []
    moves: dict[uuid.UUID, datetime | None] = {}
    for lead in due:
        if lead.first_response_at is not None or lead.closed_at is not None:
            moves[lead.id] = None
            continue
        promise = pick_promise(policies[lead.business_id], lead.channel, lead.priority)
        clock = clocks[lead.business_id]
        moments = [
            (percent, moment)
            for percent in promise.thresholds
            if (moment := threshold_moment(clock, lead, percent)) is not None
        ]
        passed = [(percent, moment) for percent, moment in moments if moment <= now]
        if passed:  # a lead past several thresholds at once gets the most serious alert only
            alerts.append(_alert_row(lead, *passed[-1], now))
            if promise.notify_owner:
                tell_owner.add(alerts[-1]["key"])
        ahead = next((moment for _percent, moment in moments if moment > now), None)
        moves[lead.id] = ahead
    raised = await insert_new_alerts(session, alerts)
    await set_alarms(session, moves)
    upcoming = [due for due in moves.values() if due is not None]
    if upcoming:
        after_commit(session, SweepAt(min(upcoming)))
    await events.record_many(
        session,
        "alert.raised",
        [
            (r["business_id"], {"alert_id": r["id"], "lead_id": r["lead_id"], "level": r["level"]})
            for r in raised
        ],
        at=now,
    )
    breaches = [r for r in raised if r["level"] == "breach" and r["key"] in tell_owner]
    if breaches:
        told = {r["business_id"] for r in breaches}
        businesses = await session.scalars(select(Business).where(Business.id.in_(told)))
        await tell_owners(session, breaches, {b.id: b for b in businesses}, now=now)
    return SweepReport(len(due), len(raised))


def _alert_row(lead: DueLead, percent: int, moment: datetime, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "key": f"lead:{lead.id}:first_response:{percent}",
        "business_id": lead.business_id,
        "lead_id": lead.id,
        "task_id": None,
        "kind": "first_response",
        "level": "breach" if percent >= BREACH else "warning",
        "percent": percent,
        "due_at": moment,
        "raised_at": now,
    }


async def insert_new_alerts(
    session: AsyncSession, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Insert what is new; an alert raised before (same key) stays as it was. (Into the table,
    in Core: the ORM's bulk INSERT spent more on a thousand rows than the database did.)"""
    if not rows:
        return []
    insert = postgresql.insert if dialect_of(session) == "postgresql" else sqlite.insert
    alerts = Alert.metadata.tables["alerts"]
    statement = (
        insert(alerts).on_conflict_do_nothing(index_elements=["key"]).returning(alerts.c.key)
    )
    inserted = set((await session.scalars(statement, rows)).all())
    return [row for row in rows if row["key"] in inserted]


async def acknowledge(
    session: AsyncSession, user: User, alert_id: str | uuid.UUID, *, now: datetime
) -> Alert:
    """A person has seen the alert: who and when are kept; doing it twice changes nothing. A
    lead's first-response alerts are one alert that rises: its lower levels still open are
    acknowledged with it (console/screens/alerts_page.py)."""
    if user.role == Role.OWNER:
        raise NotFound("Not found.")
    alert = await get_scoped(session, user, Alert, alert_id)
    if alert.acknowledged_at is None:
        alert.acknowledged_at = now
        alert.acknowledged_by_id = user.id
        if alert.kind == "first_response" and alert.lead_id is not None:
            await session.execute(
                update(Alert)
                .where(
                    Alert.lead_id == alert.lead_id,
                    Alert.kind == alert.kind,
                    Alert.id != alert.id,
                    Alert.acknowledged_at.is_(None),
                    Alert.cleared_at.is_(None),
                )
                .values(acknowledged_at=now, acknowledged_by_id=user.id)
                .execution_options(synchronize_session=False)
            )
        await session.flush()
        await events.record(
            session,
            alert.business_id,
            "alert.acknowledged",
            at=now,
            alert_id=alert.id,
            lead_id=alert.lead_id,
            alert_kind=alert.kind,
            user_id=user.id,
        )
    return alert


def check_policy(channel: str, priority: str, minutes: int, warnings: Sequence[int]) -> None:
    if channel not in (ANY, *CHANNELS):
        raise Invalid("Unknown channel.", field="channel")
    if priority not in (ANY, *PRIORITIES):
        raise Invalid("Unknown priority.", field="priority")
    if minutes <= 0 or minutes > 60 * 24 * 30:
        raise Invalid(
            "The target must be a positive number of minutes.", field="first_response_minutes"
        )
    if any(w <= 0 or w >= BREACH for w in warnings):
        raise Invalid(
            "Warnings are shares of the target between 1 and 99 percent.", field="warn_at_percent"
        )


async def set_policy(
    session: AsyncSession,
    actor: Actor,
    business: Business,
    *,
    channel: str = ANY,
    priority: str = ANY,
    minutes: int,
    warnings: Sequence[int] = DEFAULT_WARNINGS,
    notify_owner: bool = False,
) -> SlaPolicy:
    """Add or change a policy, and move the due times of the business's waiting leads to it;
    the change is in the audit log as `actor`'s."""
    check_policy(channel, priority, minutes, warnings)
    policy = await session.scalar(
        select(SlaPolicy).where(
            SlaPolicy.business_id == business.id,
            SlaPolicy.channel == channel,
            SlaPolicy.priority == priority,
        )
    )
    if policy is None:
        policy = SlaPolicy(business_id=business.id, channel=channel, priority=priority)
        session.add(policy)
    policy.first_response_minutes = minutes
    policy.warn_at_percent = sorted(set(warnings))
    policy.notify_owner_on_breach = notify_owner
    await session.flush()
    await restart_waiting_clocks(session, business)
    await record_change(session, actor, "sla.policy_set", business, minutes=minutes)
    return policy


async def restart_waiting_clocks(session: AsyncSession, business: Business) -> list[uuid.UUID]:
    """Leads still waiting for a first response get their promise again under the current
    policies and hours (alerts already raised stay; the sweep raises what the new times make
    due). Returns the ids of the leads whose times were set again."""
    waiting = (
        await session.scalars(
            select(Lead).where(
                Lead.business_id == business.id,
                Lead.first_response_at.is_(None),
                Lead.closed_at.is_(None),
            )
        )
    ).all()
    policies = (await policies_of(session, [business.id]))[business.id]
    alarms = {lead.id: promise_times(lead, business, policies) for lead in waiting}
    await set_alarms(session, alarms)
    upcoming = [due for due in alarms.values() if due is not None]
    if upcoming:
        after_commit(session, SweepAt(min(upcoming)))
    await session.flush()
    return [lead.id for lead in waiting]
