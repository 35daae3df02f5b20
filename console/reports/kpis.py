"""How a business is doing over a period: the numbers on the KPI screen, in its exports, in the
API and in the owners' digests (labelled for a reader by console/reports/kpi_report.py).

A period (`console/business/periods.py`) is a run of whole days in the business's own zone,
both ends included. Every number is about the
leads that arrived in the period, as they stand now (answered, won, closed …), except the open
tasks, which are the business's open tasks at the moment of asking, and the calls and messages
handled, which are those logged in the period. The calls' numbers are about the calls that
came in through the agency's SIP server in the period (`calls`, by the day they arrived):
answered, rejected (a secretary declined its ring and nobody answered it after her, whatever
ended it then), abandoned by the caller before anyone answered (in the queue or while ringing),
missed (nobody took them: overflow, or the SIP server failed them); the answer and abandonment rates
are of the calls that are over or answered (one still waiting or ringing counts in neither);
the average speed of answer is from arrival to answer, the talk time from answer to end, and
the service level is the share of those calls answered within the business's N seconds
(`call_settings.service_level_seconds`, 20 by default: the industry's 80/20).

`compute_kpis` answers for several businesses at once (the agency, the digest job) in six
statements whatever their number and size: the leads by channel and day with their aggregates
(one read of the period's leads), the response-time percentiles (ranked by the database with
window functions, so only two rows per business come back), the repeat customers, the open
tasks, the handled interactions and the calls (with each business's service-level N, joined
from its call settings); days are bucketed in SQL by `periods.PeriodSql`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from babel.numbers import format_currency, format_decimal
from sqlalchemy import (
    and_,
    case,
    func,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from console.base.db import dialect_of
from console.base.i18n import babel_locale
from console.base.i18n import gettext as _
from console.business.periods import (
    Period,
    PeriodSql,
    zone_groups,
)
from models import Business, Interaction, Lead, Task
from models.agents import DEFAULT_SERVICE_LEVEL_SECONDS, CallSettings
from models.contacts import CHANNELS
from models.voice import Call

HANDLED_KINDS = ("inbound_call", "outbound_call", "whatsapp", "sms", "email")
_EPOCH = date(1970, 1, 1)
_CENT = Decimal("0.01")

Unit = Literal["count", "seconds", "minutes", "percent", "hours", "money"]


# --- the numbers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kpis:
    """One business's numbers for one period; rounded once here, shown the same everywhere."""

    business_id: uuid.UUID
    period: Period
    timezone: str
    leads: int = 0
    by_channel: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANNELS, 0))
    by_day: list[tuple[date, int]] = field(default_factory=list)
    handled: int = 0
    answered: int = 0
    response_p50: float | None = None  # covered minutes
    response_p90: float | None = None
    sla_met: int = 0
    sla_missed: int = 0
    sla_share: float | None = None  # percent
    won: int = 0
    lost: int = 0
    conversion: float | None = None  # percent of the leads
    closed: int = 0
    hours_to_close: float | None = None
    won_with_value: int = 0
    deal_value: Decimal | None = None  # shekels, average of the won deals with a value
    customers: int = 0
    repeat_customers: int = 0
    repeat_rate: float | None = None  # percent
    open_tasks: int = 0
    overdue_tasks: int = 0
    task_age_hours: float | None = None  # average
    oldest_task_hours: float | None = None
    calls: int = 0  # incoming through the SIP server
    calls_answered: int = 0
    calls_abandoned: int = 0  # the caller hung up before anyone answered
    calls_rejected: int = 0  # a secretary declined its ring and nobody answered it
    calls_missed: int = 0  # nobody took it (overflow, failed)
    answer_rate: float | None = None  # percent of the calls over or answered
    abandonment_rate: float | None = None
    average_speed_of_answer: float | None = None  # seconds from arrival to answer
    average_talk: float | None = None  # seconds from answer to end
    service_level_seconds: int = DEFAULT_SERVICE_LEVEL_SECONDS
    service_level: float | None = None  # percent answered within service_level_seconds


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    value: int | float | Decimal | None
    unit: Unit

    @property
    def shown(self) -> str:
        """The value as the reader's language writes it ("—" when there is none yet)."""
        return shown(self.value, self.unit)


def shown(value: int | float | Decimal | None, unit: Unit) -> str:
    if value is None:
        return "—"
    locale = babel_locale()
    if unit == "money":
        return format_currency(value, "ILS", locale=locale)
    number = format_decimal(value, locale=locale)
    if unit == "percent":
        return f"{number}%"
    if unit == "seconds":
        return _("%(number)s s") % {"number": number}
    if unit == "minutes":
        return _("%(number)s min") % {"number": number}
    if unit == "hours":
        return _("%(number)s h") % {"number": number}
    return number


def metrics(kpis: Kpis) -> list[Metric]:
    """The numbers in the order every output lists them, labelled in the current language."""
    rows: list[tuple[str, str, Any, Unit]] = [
        ("leads", _("Leads"), kpis.leads, "count"),
        ("handled", _("Calls and messages handled"), kpis.handled, "count"),
        ("answered", _("Leads answered"), kpis.answered, "count"),
        ("response_p50", _("First response, median"), kpis.response_p50, "minutes"),
        ("response_p90", _("First response, 90% within"), kpis.response_p90, "minutes"),
        ("sla_met", _("Answered within the promise"), kpis.sla_met, "count"),
        ("sla_missed", _("Promise missed"), kpis.sla_missed, "count"),
        ("sla_share", _("Share answered within the promise"), kpis.sla_share, "percent"),
        ("won", _("Won"), kpis.won, "count"),
        ("lost", _("Lost"), kpis.lost, "count"),
        ("conversion", _("Conversion rate (leads to won)"), kpis.conversion, "percent"),
        ("closed", _("Closed (won or lost)"), kpis.closed, "count"),
        ("hours_to_close", _("Average time to close"), kpis.hours_to_close, "hours"),
        ("won_with_value", _("Won deals with a value"), kpis.won_with_value, "count"),
        ("deal_value", _("Average deal value"), kpis.deal_value, "money"),
        ("customers", _("Customers (a won deal)"), kpis.customers, "count"),
        (
            "repeat_customers",
            _("Repeat customers (two won deals or more)"),
            kpis.repeat_customers,
            "count",
        ),
        ("repeat_rate", _("Repeat rate"), kpis.repeat_rate, "percent"),
        ("open_tasks", _("Open tasks now"), kpis.open_tasks, "count"),
        ("overdue_tasks", _("Overdue tasks now"), kpis.overdue_tasks, "count"),
        ("task_age_hours", _("Average age of the open tasks"), kpis.task_age_hours, "hours"),
        ("oldest_task_hours", _("Oldest open task"), kpis.oldest_task_hours, "hours"),
        ("calls", _("Calls in"), kpis.calls, "count"),
        ("calls_answered", _("Calls answered"), kpis.calls_answered, "count"),
        ("calls_abandoned", _("Calls abandoned by the caller"), kpis.calls_abandoned, "count"),
        ("calls_rejected", _("Calls declined by a secretary"), kpis.calls_rejected, "count"),
        ("calls_missed", _("Calls missed"), kpis.calls_missed, "count"),
        ("answer_rate", _("Answer rate"), kpis.answer_rate, "percent"),
        ("abandonment_rate", _("Abandonment rate"), kpis.abandonment_rate, "percent"),
        (
            "average_speed_of_answer",
            _("Average speed of answer"),
            kpis.average_speed_of_answer,
            "seconds",
        ),
        ("average_talk", _("Average talk time"), kpis.average_talk, "seconds"),
        (
            "service_level",
            _("Service level (answered within %(seconds)s s)")
            % {"seconds": kpis.service_level_seconds},
            kpis.service_level,
            "percent",
        ),
    ]
    return [Metric(*row) for row in rows]


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _hours(seconds: float) -> float:
    return round(seconds / 3600, 1)


# --- the six statements -----------------------------------------------------------------------


async def compute_kpis(
    session: AsyncSession, businesses: Sequence[Business], period: Period, *, now: datetime
) -> dict[uuid.UUID, Kpis]:
    """Each business's numbers for the period, by business id; six statements in all."""
    if not businesses:
        return {}
    sql = PeriodSql(zone_groups(businesses, period), dialect_of(session), now)
    found: dict[uuid.UUID, dict[str, Any]] = {b.id: {} for b in businesses}
    await _lead_numbers(session, sql, found)
    await _response_percentiles(session, sql, found)
    await _repeat_customers(session, sql, found)
    await _open_tasks(session, sql, found)
    await _handled(session, sql, found)
    await _calls(session, sql, found)
    return {b.id: _kpis(b, period, found[b.id]) for b in businesses}


async def _lead_numbers(
    session: AsyncSession, sql: PeriodSql, found: dict[uuid.UUID, dict[str, Any]]
) -> None:
    """The period's leads by channel and day, and with the same read of them (one statement,
    one pass over the period's leads): counts, the promise kept or missed, won/lost, time to
    close and deal values, each summed per channel and day here and added up per business.
    Missed: answered after `respond_by`, or not answered and its time is up — unless it was
    closed (spam, a wrong number) before then. Still running: neither, yet."""
    met = Lead.first_response_at <= Lead.respond_by
    missed = or_(
        Lead.first_response_at > Lead.respond_by,
        and_(
            Lead.first_response_at.is_(None),
            Lead.respond_by <= sql.now,
            or_(Lead.closed_at.is_(None), Lead.closed_at > Lead.respond_by),
        ),
    )
    valued = and_(Lead.stage == "won", Lead.deal_value.is_not(None))
    inner = (
        select(
            Lead.business_id.label("business_id"),
            Lead.channel.label("channel"),
            sql.local_day(Lead.business_id, Lead.created_at).label("day"),
            Lead.first_response_at.label("answered"),
            case((met, 1), else_=0).label("met"),
            case((missed, 1), else_=0).label("missed"),
            case((Lead.stage == "won", 1), else_=0).label("won"),
            case((Lead.stage == "lost", 1), else_=0).label("lost"),
            Lead.closed_at.label("closed"),
            (sql.epoch(Lead.closed_at) - sql.epoch(Lead.created_at)).label("close_seconds"),
            case((valued, 1), else_=0).label("valued"),
            case((valued, Lead.deal_value), else_=None).label("value"),
        )
        .where(sql.in_period(Lead.business_id, Lead.created_at))
        .subquery()
    )
    c = inner.c
    rows = await session.execute(
        select(
            c.business_id,
            c.channel,
            c.day,
            func.count(),
            func.count(c.answered),
            func.sum(c.met),
            func.sum(c.missed),
            func.sum(c.won),
            func.sum(c.lost),
            func.count(c.closed),
            func.sum(c.close_seconds),
            func.sum(c.valued),
            func.sum(c.value),
        ).group_by(c.business_id, c.channel, c.day)
    )
    for business_id, channel, day, count, *sums in rows:
        numbers = found[business_id]
        by_channel = numbers.setdefault("by_channel", dict.fromkeys(CHANNELS, 0))
        by_channel[channel] = by_channel.get(channel, 0) + count
        by_day = numbers.setdefault("by_day", {})
        local = _EPOCH + timedelta(days=int(day))
        by_day[local] = by_day.get(local, 0) + count
        answered, met_count, missed_count, won, lost, closed, close_seconds, valued_count = sums[:8]
        numbers["leads"] = numbers.get("leads", 0) + count
        for key, value in (
            ("answered", answered),
            ("sla_met", met_count),
            ("sla_missed", missed_count),
            ("won", won),
            ("lost", lost),
            ("closed", closed),
            ("close_seconds", close_seconds),
            ("won_with_value", valued_count),
        ):
            numbers[key] = numbers.get(key, 0) + int(value or 0)
        if sums[8] is not None:
            numbers["value_total"] = numbers.get("value_total", Decimal(0)) + Decimal(sums[8])


async def _response_percentiles(
    session: AsyncSession, sql: PeriodSql, found: dict[uuid.UUID, dict[str, Any]]
) -> None:
    """The median and 90th percentile of the first response in covered minutes, nearest rank
    (the value at rank ⌈p·n⌉, so "90% within" holds of the real values): the database ranks the
    business's answered leads and returns only the two ranks wanted."""
    minutes = Lead.first_response_covered_minutes
    ranked = (
        select(
            Lead.business_id.label("business_id"),
            minutes.label("minutes"),
            func.row_number()
            .over(partition_by=Lead.business_id, order_by=(minutes, Lead.id))
            .label("rank"),
            func.count().over(partition_by=Lead.business_id).label("n"),
        )
        .where(sql.in_period(Lead.business_id, Lead.created_at), minutes.is_not(None))
        .subquery()
    )
    p50, p90 = (50 * ranked.c.n + 99) // 100, (90 * ranked.c.n + 99) // 100
    rows = await session.execute(
        select(ranked.c.business_id, ranked.c.rank, ranked.c.n, ranked.c.minutes).where(
            or_(ranked.c.rank == p50, ranked.c.rank == p90)
        )
    )
    for business_id, rank, n, value in rows:
        if rank == (50 * n + 99) // 100:
            found[business_id]["response_p50"] = round(float(value), 1)
        if rank == (90 * n + 99) // 100:
            found[business_id]["response_p90"] = round(float(value), 1)


async def _repeat_customers(
    session: AsyncSession, sql: PeriodSql, found: dict[uuid.UUID, dict[str, Any]]
) -> None:
    """Customers: contacts with a lead of the period won. Repeat: of them, those with two won
    leads or more that arrived before the period's end (earlier ones count). Only the period's
    customers are looked up, each through its own leads (`ix_leads_contact_created`)."""
    customers = (
        select(Lead.business_id.label("business_id"), Lead.contact_id.label("contact_id"))
        .where(Lead.stage == "won", sql.in_period(Lead.business_id, Lead.created_at))
        .distinct()
        .subquery()
    )
    won = aliased(Lead)
    per_contact = (
        select(customers.c.business_id.label("business_id"), func.count(won.id).label("won"))
        .join(
            won,
            and_(
                won.contact_id == customers.c.contact_id,
                won.stage == "won",
                sql.before_end(won.business_id, won.created_at),
            ),
        )
        .group_by(customers.c.business_id, customers.c.contact_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            per_contact.c.business_id,
            func.count(),
            func.sum(case((per_contact.c.won > 1, 1), else_=0)),
        ).group_by(per_contact.c.business_id)
    )
    for business_id, count, repeat in rows:
        found[business_id].update(customers=count, repeat_customers=int(repeat or 0))


async def _open_tasks(
    session: AsyncSession, sql: PeriodSql, found: dict[uuid.UUID, dict[str, Any]]
) -> None:
    """The open tasks now, how many are overdue, and their ages (from the epoch sums)."""
    rows = await session.execute(
        select(
            Task.business_id,
            func.count(),
            func.sum(case((Task.due_at < sql.now, 1), else_=0)),
            func.sum(sql.epoch(Task.created_at)),
            func.min(sql.epoch(Task.created_at)),
        )
        .where(Task.status == "open", Task.business_id.in_(sql.ids))
        .group_by(Task.business_id)
    )
    now_seconds = int(sql.now.timestamp())
    for business_id, count, overdue, created_total, oldest in rows:
        found[business_id].update(
            open_tasks=count,
            overdue_tasks=int(overdue or 0),
            task_age_hours=_hours((count * now_seconds - int(created_total)) / count),
            oldest_task_hours=_hours(now_seconds - int(oldest)),
        )


async def _handled(
    session: AsyncSession, sql: PeriodSql, found: dict[uuid.UUID, dict[str, Any]]
) -> None:
    """Calls and messages a person of the agency logged (finished) in the period."""
    rows = await session.execute(
        select(Interaction.business_id, func.count())
        .where(
            Interaction.status == "done",
            Interaction.user_id.is_not(None),
            Interaction.kind.in_(HANDLED_KINDS),
            sql.in_period(Interaction.business_id, Interaction.started_at),
        )
        .group_by(Interaction.business_id)
    )
    for business_id, count in rows:
        found[business_id]["handled"] = count


async def _calls(
    session: AsyncSession, sql: PeriodSql, found: dict[uuid.UUID, dict[str, Any]]
) -> None:
    """The incoming calls of the period by how they went, and each business's service-level N
    (a business without calls, or without call settings, still gets its N)."""
    answered = Call.answered_at.is_not(None)
    rejected = and_(~answered, Call.rejected_at.is_not(None), Call.ended_at.is_not(None))
    abandoned = and_(
        ~answered,
        Call.rejected_at.is_(None),
        Call.state == "abandoned",
        Call.end_reason == "cancelled",
    )
    missed = and_(~answered, Call.ended_at.is_not(None), ~abandoned, Call.rejected_at.is_(None))
    talked = and_(answered, Call.ended_at.is_not(None))
    limit = func.coalesce(CallSettings.service_level_seconds, DEFAULT_SERVICE_LEVEL_SECONDS)
    to_answer = sql.epoch(Call.answered_at) - sql.epoch(Call.arrived_at)
    statement = (
        select(
            Business.id,
            func.max(limit),
            func.count(Call.id),
            func.sum(case((answered, 1), else_=0)),
            func.sum(case((abandoned, 1), else_=0)),
            func.sum(case((missed, 1), else_=0)),
            func.sum(case((rejected, 1), else_=0)),
            func.sum(case((answered, to_answer), else_=0)),
            func.sum(case((and_(answered, to_answer <= limit), 1), else_=0)),
            func.sum(
                case((talked, sql.epoch(Call.ended_at) - sql.epoch(Call.answered_at)), else_=0)
            ),
            func.sum(case((talked, 1), else_=0)),
        )
        .select_from(Business)
        .outerjoin(CallSettings, CallSettings.business_id == Business.id)
        .outerjoin(
            Call,
            and_(
                Call.business_id == Business.id,
                Call.direction == "in",
                sql.in_period(Call.business_id, Call.arrived_at),
            ),
        )
        .where(Business.id.in_(sql.ids))
        .group_by(Business.id)
    )
    for row in await session.execute(statement):
        business_id, limit_seconds, calls, answered_count, abandoned_count, missed_count = row[:6]
        rejected_count, answer_seconds, within, talk_seconds, talked = row[6:]
        found[business_id].update(
            service_level_seconds=int(limit_seconds),
            calls=int(calls or 0),
            calls_answered=int(answered_count or 0),
            calls_abandoned=int(abandoned_count or 0),
            calls_missed=int(missed_count or 0),
            calls_rejected=int(rejected_count or 0),
            answer_seconds=int(answer_seconds or 0),
            within_service_level=int(within or 0),
            talk_seconds=int(talk_seconds or 0),
            talked=int(talked or 0),
        )


def _kpis(business: Business, period: Period, numbers: Mapping[str, Any]) -> Kpis:
    leads, closed = numbers.get("leads", 0), numbers.get("closed", 0)
    by_day = numbers.get("by_day", {})
    valued, total = numbers.get("won_with_value", 0), numbers.get("value_total")
    customers = numbers.get("customers", 0)
    sla_met, sla_missed = numbers.get("sla_met", 0), numbers.get("sla_missed", 0)
    calls_answered = numbers.get("calls_answered", 0)
    calls_abandoned = numbers.get("calls_abandoned", 0)
    calls_rejected = numbers.get("calls_rejected", 0)
    calls_over = calls_answered + calls_abandoned + calls_rejected + numbers.get("calls_missed", 0)
    talked = numbers.get("talked", 0)
    return Kpis(
        business_id=business.id,
        period=period,
        timezone=business.timezone,
        leads=leads,
        by_channel=numbers.get("by_channel", dict.fromkeys(CHANNELS, 0)),
        by_day=[(day, by_day.get(day, 0)) for day in period.dates()],
        handled=numbers.get("handled", 0),
        answered=numbers.get("answered", 0),
        response_p50=numbers.get("response_p50"),
        response_p90=numbers.get("response_p90"),
        sla_met=sla_met,
        sla_missed=sla_missed,
        sla_share=_percent(sla_met, sla_met + sla_missed),
        won=numbers.get("won", 0),
        lost=numbers.get("lost", 0),
        conversion=_percent(numbers.get("won", 0), leads),
        closed=closed,
        hours_to_close=_hours(numbers["close_seconds"] / closed) if closed else None,
        won_with_value=valued,
        deal_value=(
            (total / valued).quantize(_CENT, ROUND_HALF_UP)
            if valued and total is not None
            else None
        ),
        customers=customers,
        repeat_customers=numbers.get("repeat_customers", 0),
        repeat_rate=_percent(numbers.get("repeat_customers", 0), customers),
        open_tasks=numbers.get("open_tasks", 0),
        overdue_tasks=numbers.get("overdue_tasks", 0),
        task_age_hours=numbers.get("task_age_hours"),
        oldest_task_hours=numbers.get("oldest_task_hours"),
        calls=numbers.get("calls", 0),
        calls_answered=calls_answered,
        calls_abandoned=calls_abandoned,
        calls_missed=numbers.get("calls_missed", 0),
        calls_rejected=calls_rejected,
        answer_rate=_percent(calls_answered, calls_over),
        abandonment_rate=_percent(calls_abandoned, calls_over),
        average_speed_of_answer=(
            round(numbers["answer_seconds"] / calls_answered, 1) if calls_answered else None
        ),
        average_talk=round(numbers["talk_seconds"] / talked, 1) if talked else None,
        service_level_seconds=numbers.get("service_level_seconds", DEFAULT_SERVICE_LEVEL_SECONDS),
        service_level=_percent(numbers.get("within_service_level", 0), calls_over),
    )
