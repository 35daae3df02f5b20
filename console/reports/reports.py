"""The agency's reports: what each secretary did over a period, and what each business used per
month (the basis of its bill).

Per secretary: the leads she handled (a call or message she logged and finished), her calls, their
talk time (the finished calls' durations) and average handling time, the first responses she gave
(median and 90% within, in the business's covered minutes, nearest rank as on the KPI screen),
and the owners' ratings of what she handled in the period, the calls the SIP server recorded
(incoming calls she answered, their average talk time, the rings she missed: calls that rang her
and that she did not answer, whoever did), and her time per agent state each day
(available, ringing, on a call, wrap-up, break: payroll and occupancy). Per business and month:
its leads, the calls the agency logged and their minutes, and the messages in and out.

A period is whole days in each business's own zone (`console/reports/kpis.py`). Eight statements
whatever the data: the businesses, the secretaries' interactions, their response percentiles
(ranked by the database), their ratings, their names, then the businesses' leads and
interactions per local day, which are added up into months here; one for the secretaries'
phone calls (`calls`, by the day each arrived); and one more for the time each secretary spent
in each agent state per day (`console/voice/state_report.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton
from babel.numbers import format_decimal
from sqlalchemy import String, and_, case, cast, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import dialect_of
from console.base.errors import Invalid
from console.base.i18n import babel_locale
from console.business.periods import Period, PeriodSql, parse_period, preset, zone_groups
from console.people.tenancy import visible_businesses
from console.reports.kpi_report import describe_period
from console.reports.kpis import HANDLED_KINDS
from console.voice.state_report import StateDay, time_in_states
from models import Business, Interaction, InteractionRating, Lead, Role, User
from models.voice import Call, CallTransfer

CALL_KINDS = ("inbound_call", "outbound_call")
MESSAGE_KINDS = ("whatsapp", "sms", "email")
DEFAULT_ZONE = ZoneInfo("Asia/Jerusalem")
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class SecretaryRow:
    user_id: uuid.UUID
    name: str
    leads: int = 0
    calls: int = 0
    talk_minutes: float = 0.0
    handling_minutes: float | None = None  # average of the finished calls
    response_p50: float | None = None  # covered minutes
    response_p90: float | None = None
    rating_average: float | None = None
    ratings: int = 0
    # From the SIP server's record (`calls`): incoming calls she answered, their average talk
    # in seconds (those ended), the calls that rang her and that she did not answer nor
    # decline, and those she declined (her reject button).
    phone_answered: int = 0
    phone_talk_seconds: float | None = None
    missed_rings: int = 0
    declined_rings: int = 0


@dataclass(frozen=True)
class BusinessMonth:
    business_id: uuid.UUID
    business_name: str
    month: date  # its first day
    leads: int = 0
    calls: int = 0
    talk_minutes: float = 0.0
    messages_in: int = 0
    messages_out: int = 0

    @property
    def month_key(self) -> str:
        return f"{self.month:%Y-%m}"

    @property
    def month_label(self) -> str:
        return str(format_skeleton("yMMMM", self.month, locale=babel_locale()))


@dataclass(frozen=True)
class AgencyReport:
    period: Period
    secretaries: list[SecretaryRow]
    months: list[BusinessMonth]
    # Each secretary's time per agent state, per day (the agency's days: Israel time).
    state_days: list[StateDay] = field(default_factory=list)

    @property
    def period_text(self) -> str:
        return describe_period(self.period)


@dataclass(frozen=True)
class ReportScreen:
    raw_from: str
    raw_to: str
    report: AgencyReport | None = None
    error: Invalid | None = None
    presets: dict[str, Period] = field(default_factory=dict)


def number(value: float | None) -> str:
    """A value as the reader's language writes it ("—" when there is none)."""
    return "—" if value is None else str(format_decimal(value, locale=babel_locale()))


def _minutes(seconds: float) -> float:
    return round(seconds / 60, 1)


def _month_of(local_day: int) -> date:
    return (_EPOCH + timedelta(days=int(local_day))).replace(day=1)


async def agency_report(
    session: AsyncSession,
    user: User,
    raw_from: str | None,
    raw_to: str | None,
    *,
    now: datetime,
) -> AgencyReport:
    """Both reports for a valid period (else Invalid, nothing computed); neither day given: this
    month so far and to its end."""
    today = now.astimezone(DEFAULT_ZONE).date()
    if raw_from or raw_to:
        period = parse_period(raw_from, raw_to, today=today)
    else:
        period = preset("month", today)
    businesses = await visible_businesses(session, user)
    if not businesses:
        return AgencyReport(period, [], [])
    sql = PeriodSql(zone_groups(businesses, period), dialect_of(session), now)
    secretaries = await _secretaries(session, sql)
    months = await _business_months(session, sql, businesses, period)
    state_days = await time_in_states(session, period.first, period.last, now=now)
    return AgencyReport(period, secretaries, months, state_days)


async def report_screen(
    session: AsyncSession, user: User, raw_from: str | None, raw_to: str | None, *, now: datetime
) -> ReportScreen:
    """The page: the report, or why the period is refused (said in place, 422)."""
    today = now.astimezone(DEFAULT_ZONE).date()
    presets = {name: preset(name, today) for name in ("month", "last30")}
    try:
        report = await agency_report(session, user, raw_from, raw_to, now=now)
    except Invalid as error:
        return ReportScreen(raw_from or "", raw_to or "", error=error, presets=presets)
    return ReportScreen(
        raw_from or report.period.first.isoformat(),
        raw_to or report.period.last.isoformat(),
        report=report,
        presets=presets,
    )


# --- per secretary --------------------------------------------------------------------------------


async def _secretaries(session: AsyncSession, sql: PeriodSql) -> list[SecretaryRow]:
    found: dict[uuid.UUID, dict[str, Any]] = {}

    def of(user_id: uuid.UUID) -> dict[str, Any]:
        return found.setdefault(user_id, {})

    call = Interaction.kind.in_(CALL_KINDS)
    finished = and_(call, Interaction.ended_at.is_not(None))
    duration = sql.epoch(Interaction.ended_at) - sql.epoch(Interaction.started_at)
    rows = await session.execute(
        select(
            Interaction.user_id,
            func.count(func.distinct(Interaction.lead_id)),
            func.sum(case((call, 1), else_=0)),
            func.sum(case((finished, 1), else_=0)),
            func.sum(case((finished, duration), else_=0)),
        )
        .where(
            Interaction.status == "done",
            Interaction.user_id.is_not(None),
            Interaction.kind.in_(HANDLED_KINDS),
            sql.in_period(Interaction.business_id, Interaction.started_at),
        )
        .group_by(Interaction.user_id)
    )
    for user_id, leads, calls, finished_calls, seconds in rows:
        numbers = of(user_id)
        numbers.update(leads=leads, calls=int(calls or 0), talk_minutes=_minutes(seconds or 0))
        if finished_calls:
            numbers["handling_minutes"] = _minutes(int(seconds or 0) / int(finished_calls))

    minutes = Lead.first_response_covered_minutes
    ranked = (
        select(
            Lead.first_response_by_id.label("user_id"),
            minutes.label("minutes"),
            func.row_number()
            .over(partition_by=Lead.first_response_by_id, order_by=(minutes, Lead.id))
            .label("rank"),
            func.count().over(partition_by=Lead.first_response_by_id).label("n"),
        )
        .where(
            Lead.first_response_by_id.is_not(None),
            minutes.is_not(None),
            sql.in_period(Lead.business_id, Lead.first_response_at),
        )
        .subquery()
    )
    p50, p90 = (50 * ranked.c.n + 99) // 100, (90 * ranked.c.n + 99) // 100
    for user_id, rank, n, value in await session.execute(
        select(ranked.c.user_id, ranked.c.rank, ranked.c.n, ranked.c.minutes).where(
            or_(ranked.c.rank == p50, ranked.c.rank == p90)
        )
    ):
        if rank == (50 * n + 99) // 100:
            of(user_id)["response_p50"] = round(float(value), 1)
        if rank == (90 * n + 99) // 100:
            of(user_id)["response_p90"] = round(float(value), 1)

    for user_id, average, count in await session.execute(
        select(Interaction.user_id, func.avg(InteractionRating.stars), func.count())
        .join(Interaction, Interaction.id == InteractionRating.interaction_id)
        .where(
            Interaction.user_id.is_not(None),
            sql.in_period(Interaction.business_id, Interaction.started_at),
        )
        .group_by(Interaction.user_id)
    ):
        of(user_id).update(rating_average=round(float(average), 2), ratings=count)

    await _phone_calls(session, sql, of)

    people = await session.execute(
        select(User.id, User.name)
        .where(
            or_(
                and_(User.role == Role.SECRETARY, User.active.is_(True)),
                User.id.in_(list(found)) if found else false(),
            )
        )
        .order_by(User.name, User.id)
    )
    return [SecretaryRow(user_id, name, **found.get(user_id, {})) for user_id, name in people]


async def _phone_calls(
    session: AsyncSession, sql: PeriodSql, of: Callable[[uuid.UUID], dict[str, Any]]
) -> None:
    """Each secretary's incoming calls of the period from the SIP server's record: answered, the
    talk of those ended, the rings she missed (her SIP user, her id's hex, is in the call's
    `rung` and she did not answer it) and those she declined (in its `declined`). A call put
    through to another secretary counts for the one who answered it last."""
    if sql.dialect == "postgresql":
        her_hex = func.replace(cast(User.id, String), "-", "")
    else:  # SQLite keeps a UUID as its 32 hex digits
        her_hex = func.lower(cast(User.id, String))
    hers = Call.answered_by_id == User.id
    rang_her = cast(Call.rung, String).contains(her_hex)
    declined_by_her = cast(Call.declined, String).contains(her_hex)
    # A call she answered and put through to another secretary (who answered it last) is not
    # a ring she missed.
    put_through = (
        select(CallTransfer.id)
        .where(CallTransfer.call_id == Call.id, CallTransfer.by_id == User.id)
        .exists()
    )
    missed = and_(
        rang_her,
        ~declined_by_her,
        or_(Call.answered_by_id.is_(None), Call.answered_by_id != User.id),
        ~put_through,
    )
    talked = and_(hers, Call.answered_at.is_not(None), Call.ended_at.is_not(None))
    rows = await session.execute(
        select(
            User.id,
            func.sum(case((and_(hers, Call.answered_at.is_not(None)), 1), else_=0)),
            func.sum(case((talked, 1), else_=0)),
            func.sum(
                case((talked, sql.epoch(Call.ended_at) - sql.epoch(Call.answered_at)), else_=0)
            ),
            func.sum(case((missed, 1), else_=0)),
            func.sum(case((declined_by_her, 1), else_=0)),
        )
        .join(Call, or_(hers, rang_her))
        .where(Call.direction == "in", sql.in_period(Call.business_id, Call.arrived_at))
        .group_by(User.id)
    )
    for user_id, answered, talked_count, seconds, missed_count, declined_count in rows:
        of(user_id).update(
            phone_answered=int(answered or 0),
            phone_talk_seconds=(
                round(int(seconds or 0) / int(talked_count), 1) if talked_count else None
            ),
            missed_rings=int(missed_count or 0),
            declined_rings=int(declined_count or 0),
        )


# --- per business and month -----------------------------------------------------------------------


async def business_months(
    session: AsyncSession, businesses: Sequence[Business], period: Period, *, now: datetime
) -> list[BusinessMonth]:
    """The per business and month report alone (two statements): the usage billing charges
    for (console/reports/billing.py), so a statement and this report cannot disagree."""
    if not businesses:
        return []
    sql = PeriodSql(zone_groups(businesses, period), dialect_of(session), now)
    return await _business_months(session, sql, businesses, period)


async def _business_months(
    session: AsyncSession, sql: PeriodSql, businesses: Sequence[Business], period: Period
) -> list[BusinessMonth]:
    months: dict[tuple[uuid.UUID, date], dict[str, Any]] = {}
    leads = select(
        Lead.business_id.label("business_id"),
        sql.local_day(Lead.business_id, Lead.created_at).label("day"),
    ).where(sql.in_period(Lead.business_id, Lead.created_at))
    inner = leads.subquery()
    for business_id, day, count in await session.execute(
        select(inner.c.business_id, inner.c.day, func.count()).group_by(
            inner.c.business_id, inner.c.day
        )
    ):
        numbers = months.setdefault((business_id, _month_of(day)), {})
        numbers["leads"] = numbers.get("leads", 0) + count

    by_agency = and_(Interaction.status == "done", Interaction.user_id.is_not(None))
    call = and_(by_agency, Interaction.kind.in_(CALL_KINDS))
    finished = and_(call, Interaction.ended_at.is_not(None))
    message = Interaction.kind.in_(MESSAGE_KINDS)
    incoming = and_(message, Interaction.direction == "in")
    outgoing = and_(
        message,
        by_agency,
        or_(Interaction.direction.is_(None), Interaction.direction != "in"),
    )
    duration = sql.epoch(Interaction.ended_at) - sql.epoch(Interaction.started_at)
    touches = (
        select(
            Interaction.business_id.label("business_id"),
            sql.local_day(Interaction.business_id, Interaction.started_at).label("day"),
            case((call, 1), else_=0).label("call"),
            case((finished, duration), else_=0).label("seconds"),
            case((incoming, 1), else_=0).label("incoming"),
            case((outgoing, 1), else_=0).label("outgoing"),
        )
        .where(sql.in_period(Interaction.business_id, Interaction.started_at))
        .subquery()
    )
    for business_id, day, calls, seconds, incoming_count, outgoing_count in await session.execute(
        select(
            touches.c.business_id,
            touches.c.day,
            func.sum(touches.c.call),
            func.sum(touches.c.seconds),
            func.sum(touches.c.incoming),
            func.sum(touches.c.outgoing),
        ).group_by(touches.c.business_id, touches.c.day)
    ):
        numbers = months.setdefault((business_id, _month_of(day)), {})
        numbers["calls"] = numbers.get("calls", 0) + int(calls or 0)
        numbers["seconds"] = numbers.get("seconds", 0) + int(seconds or 0)
        numbers["messages_in"] = numbers.get("messages_in", 0) + int(incoming_count or 0)
        numbers["messages_out"] = numbers.get("messages_out", 0) + int(outgoing_count or 0)

    period_months = sorted({day.replace(day=1) for day in period.dates()})
    rows = []
    for business in sorted(businesses, key=lambda b: (b.name, str(b.id))):
        for month in period_months:
            numbers = months.get((business.id, month), {})
            rows.append(
                BusinessMonth(
                    business.id,
                    business.name,
                    month,
                    leads=numbers.get("leads", 0),
                    calls=numbers.get("calls", 0),
                    talk_minutes=_minutes(numbers.get("seconds", 0)),
                    messages_in=numbers.get("messages_in", 0),
                    messages_out=numbers.get("messages_out", 0),
                )
            )
    return rows
