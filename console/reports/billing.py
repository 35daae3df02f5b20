"""What each business pays the agency: its plan, this month's meter and a statement per month.

Usage is the agency's own report per business and month (`reports.business_months`, the same
two statements), so a statement, the report and the billing export cannot disagree: calls are
the calls the agency logged, minutes their talk time as the report rounds it (tenths of a
minute), messages the report's messages in plus out.

Money is whole agorot (1/100 ILS). A plan's prices are before VAT. A statement adds the
overage beyond what the plan includes (minutes priced per tenth of a minute, rounded half up to
the agora), then VAT on the whole sum at the Israeli rate in force on the month's last day
(17% until 31 December 2024, 18% from 1 January 2025), rounded half up to the agora. A
statement is not a tax invoice: the agency issues that (חשבונית מס) from its own books.

A plan holds from a month on: a change made in a month writes that month's row (and the months
after it, until the next row, follow it), so a past month's statement keeps the plan it had.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from babel.numbers import format_currency
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import Invalid
from console.base.i18n import babel_locale
from console.business.periods import Period
from console.people.audit import Actor, record_audit
from console.reports.reports import BusinessMonth, business_months
from models import Business
from models.billing import BillingPlan

AGENCY_ZONE = ZoneInfo("Asia/Jerusalem")
# (from this day, the rate in basis points): Israel's VAT.
VAT_RATES = ((date(2015, 10, 1), 1700), (date(2025, 1, 1), 1800))
MAX_AGOROT = 100_000_000  # a million shekels
MAX_UNITS = 1_000_000
PAST_MONTHS = 12
MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
AMOUNT = re.compile(r"[0-9]{1,7}(\.[0-9]{1,2})?")


@dataclass(frozen=True)
class PlanTerms:
    monthly_fee_agorot: int
    included_calls: int
    included_minutes: int
    included_messages: int
    call_price_agorot: int
    minute_price_agorot: int
    message_price_agorot: int


MONEY_FIELDS = ("monthly_fee", "call_price", "minute_price", "message_price")
COUNT_FIELDS = ("included_calls", "included_minutes", "included_messages")
PLAN_FIELDS = ("monthly_fee", *COUNT_FIELDS, "call_price", "minute_price", "message_price")


def agorot(raw: str, field: str) -> int:
    """Shekels as typed ("2500", "2,500.00", "0.35") in whole agorot, or Invalid."""
    cleaned = raw.strip().replace(",", "").replace("₪", "").strip()
    if not AMOUNT.fullmatch(cleaned):
        raise Invalid(
            "Write an amount in shekels, with at most two digits after the point.", field=field
        )
    try:
        value = int(Decimal(cleaned) * 100)
    except InvalidOperation:  # pragma: no cover - the pattern lets only numbers through
        raise Invalid("Write an amount in shekels.", field=field) from None
    if value > MAX_AGOROT:
        raise Invalid("At most %(most)s shekels.", field=field, most=f"{MAX_AGOROT // 100:,}")
    return value


def units(raw: str, field: str) -> int:
    cleaned = raw.strip().replace(",", "")
    if not cleaned.isascii() or not cleaned.isdigit():
        raise Invalid("Write a whole number, 0 or more.", field=field)
    value = int(cleaned)
    if value > MAX_UNITS:
        raise Invalid("At most %(most)s.", field=field, most=f"{MAX_UNITS:,}")
    return value


def parse_plan(typed: Mapping[str, str]) -> PlanTerms:
    """The plan form as typed, checked field by field in the form's order."""
    values: dict[str, int] = {}
    for name in PLAN_FIELDS:
        raw = typed.get(name, "")
        if not raw.strip():
            raise Invalid("Fill this in (0 when there is none).", field=name)
        if name in MONEY_FIELDS:
            values[f"{name}_agorot"] = agorot(raw, name)
        else:
            values[name] = units(raw, name)
    return PlanTerms(**values)


def plan_form(plan: BillingPlan | None) -> dict[str, str]:
    """A plan as the form shows it (shekels with two decimals), empty without one."""
    if plan is None:
        return dict.fromkeys(PLAN_FIELDS, "")
    shown = {name: str(getattr(plan, name)) for name in COUNT_FIELDS}
    for name in MONEY_FIELDS:
        shown[name] = f"{Decimal(getattr(plan, f'{name}_agorot')) / 100:.2f}"
    return shown


def this_month(now: datetime) -> date:
    return now.astimezone(AGENCY_ZONE).date().replace(day=1)


def parse_month(raw: str | None, now: datetime) -> date:
    """`YYYY-MM` (blank: this month), or Invalid on the `month` field."""
    if not raw or not raw.strip():
        return this_month(now)
    found = MONTH.fullmatch(raw.strip())
    if found and 2000 <= int(found.group(1)) <= 2100 and 1 <= int(found.group(2)) <= 12:
        return date(int(found.group(1)), int(found.group(2)), 1)
    raise Invalid("Write the month as YYYY-MM.", field="month")


def month_period(first: date, last: date | None = None) -> Period:
    """The whole months from `first` to `last` (the same month when none)."""
    end = (last or first).replace(day=28) + timedelta(days=4)
    return Period(first, end.replace(day=1) - timedelta(days=1))


def months_before(month: date, count: int) -> date:
    year, index = divmod(month.year * 12 + month.month - 1 - count, 12)
    return date(year, index + 1, 1)


def vat_basis_points(month: date) -> int:
    last_day = month_period(month).last
    rate = 0
    for since, basis_points in VAT_RATES:
        if last_day >= since:
            rate = basis_points
    return rate


def half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


@dataclass(frozen=True)
class Line:
    """One line of a statement: what was used, what the plan includes, the rest and its price."""

    key: str  # calls, minutes, messages
    used: Decimal
    included: int
    over: Decimal
    unit_agorot: int
    amount_agorot: int


@dataclass(frozen=True)
class Statement:
    business_id: uuid.UUID
    business_name: str
    month: date
    usage: BusinessMonth
    plan: BillingPlan | None
    lines: tuple[Line, ...] = ()
    fee_agorot: int = 0
    subtotal_agorot: int = 0
    vat_basis_points: int = 0
    vat_agorot: int = 0
    total_agorot: int = 0

    @property
    def month_key(self) -> str:
        return self.usage.month_key  # the report's month, named as the report names it

    @property
    def month_label(self) -> str:
        return self.usage.month_label

    @property
    def vat_percent(self) -> Decimal:
        return Decimal(self.vat_basis_points) / 100

    @property
    def messages(self) -> int:
        return self.usage.messages_in + self.usage.messages_out

    def line(self, key: str) -> Line | None:
        return next((line for line in self.lines if line.key == key), None)


def statement_of(usage: BusinessMonth, plan: BillingPlan | None) -> Statement:
    """The month's bill from its usage and plan (a pure function: the test works it by hand)."""
    if plan is None:
        return Statement(usage.business_id, usage.business_name, usage.month, usage, None)
    tenths = round(Decimal(str(usage.talk_minutes)) * 10)
    over_tenths = max(0, tenths - plan.included_minutes * 10)
    calls_over = max(0, usage.calls - plan.included_calls)
    messages = usage.messages_in + usage.messages_out
    messages_over = max(0, messages - plan.included_messages)
    lines = (
        Line(
            "calls",
            Decimal(usage.calls),
            plan.included_calls,
            Decimal(calls_over),
            plan.call_price_agorot,
            calls_over * plan.call_price_agorot,
        ),
        Line(
            "minutes",
            Decimal(tenths) / 10,
            plan.included_minutes,
            Decimal(over_tenths) / 10,
            plan.minute_price_agorot,
            half_up(over_tenths * plan.minute_price_agorot, 10),
        ),
        Line(
            "messages",
            Decimal(messages),
            plan.included_messages,
            Decimal(messages_over),
            plan.message_price_agorot,
            messages_over * plan.message_price_agorot,
        ),
    )
    subtotal = plan.monthly_fee_agorot + sum(line.amount_agorot for line in lines)
    rate = vat_basis_points(usage.month)
    vat = half_up(subtotal * rate, 10_000)
    return Statement(
        usage.business_id,
        usage.business_name,
        usage.month,
        usage,
        plan,
        lines,
        plan.monthly_fee_agorot,
        subtotal,
        rate,
        vat,
        subtotal + vat,
    )


def shekels(value: int | None) -> str:
    """Agorot as the reader's language writes shekels ("—" for none)."""
    if value is None:
        return "—"
    return str(format_currency(Decimal(value) / 100, "ILS", locale=babel_locale()))


# --- reading and writing plans --------------------------------------------------------------------


async def plans_until(
    session: AsyncSession, business_ids: Sequence[uuid.UUID], last_month: date
) -> dict[uuid.UUID, list[BillingPlan]]:
    """Each business's plans that started by `last_month`, oldest first (one statement)."""
    found: dict[uuid.UUID, list[BillingPlan]] = {business_id: [] for business_id in business_ids}
    if not business_ids:
        return found
    rows = await session.scalars(
        select(BillingPlan)
        .where(BillingPlan.business_id.in_(list(business_ids)), BillingPlan.starts_on <= last_month)
        .order_by(BillingPlan.starts_on)
    )
    for plan in rows:
        found[plan.business_id].append(plan)
    return found


def plan_for(plans: Sequence[BillingPlan], month: date) -> BillingPlan | None:
    """The plan in force in `month`: the latest that started by then."""
    current = None
    for plan in plans:
        if plan.starts_on <= month:
            current = plan
    return current


async def current_plan(
    session: AsyncSession, business: Business, *, now: datetime
) -> BillingPlan | None:
    month = this_month(now)
    return plan_for((await plans_until(session, [business.id], month))[business.id], month)


async def set_plan(
    session: AsyncSession, actor: Actor, business: Business, terms: PlanTerms
) -> BillingPlan:
    """The business's plan from this month on (this month's row, new or changed); audited with
    what it was and what it is."""
    month = this_month(actor.now)
    before = await current_plan(session, business, now=actor.now)
    was = {f.name: getattr(before, f.name) for f in fields(PlanTerms)} if before else None
    plan = before if before is not None and before.starts_on == month else None
    if plan is None:
        plan = BillingPlan(business_id=business.id, starts_on=month, **vars(terms))
        session.add(plan)
    else:
        for name, value in vars(terms).items():
            setattr(plan, name, value)
    plan.changed_at = actor.now
    plan.changed_by_id = actor.user.id if actor.user is not None else None
    await session.flush()
    await record_audit(
        session,
        action="billing_plan.changed",
        now=actor.now,
        actor=actor.user,
        actor_email=actor.email,
        business_id=business.id,
        subject_type="business",
        subject_id=business.id,
        address=actor.address,
        starts_on=month.isoformat(),
        before=was,
        after=vars(terms),
    )
    return plan


# --- statements -----------------------------------------------------------------------------------


async def statements(
    session: AsyncSession,
    businesses: Sequence[Business],
    first: date,
    last: date,
    *,
    now: datetime,
) -> list[Statement]:
    """Every business's statement for each month from `first` to `last` (three statements:
    the report's two and the plans)."""
    usage = await business_months(session, businesses, month_period(first, last), now=now)
    plans = await plans_until(session, [b.id for b in businesses], last)
    return [statement_of(row, plan_for(plans[row.business_id], row.month)) for row in usage]


@dataclass(frozen=True)
class BillingScreen:
    """The owner's billing page: this month so far, and the months before it."""

    business: Business
    current: Statement
    past: list[Statement]


async def billing_screen(
    session: AsyncSession, business: Business, *, now: datetime
) -> BillingScreen:
    month = this_month(now)
    found = await statements(session, [business], months_before(month, PAST_MONTHS), month, now=now)
    return BillingScreen(business, found[-1], list(reversed(found[:-1])))
