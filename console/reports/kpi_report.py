"""The KPIs as a person sees them: a business's numbers for a period
(console/reports/kpis.py) with its customers' survey answers, labelled and formatted in the
reader's language, for the screen, its chart, the exports, the digest and the API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_skeleton
from sqlalchemy.ext.asyncio import AsyncSession

from console.base import labels
from console.base.errors import Invalid
from console.base.i18n import babel_locale, current_locale, direction
from console.base.i18n import gettext as _
from console.business.periods import (
    PRESETS,
    Period,
    local_today,
    parse_period,
    preset,
)
from console.leads.surveys import SurveyNumbers, survey_numbers
from console.people.tenancy import get_business, visible_businesses
from console.reports.kpis import Kpis, Metric, compute_kpis, metrics
from models import Business, User

# The numbers in the KPI screen's tiles (the table below them lists all).
HEADLINE = (
    "leads",
    "handled",
    "response_p50",
    "response_p90",
    "sla_share",
    "conversion",
    "hours_to_close",
    "deal_value",
    "answer_rate",
    "service_level",
    "repeat_rate",
    "open_tasks",
)


@dataclass(frozen=True)
class KpiReport:
    """One business's numbers as a user asked for them."""

    business: Business
    kpis: Kpis
    # The customers' surveys answered in the period (kept beside `kpis`, which is about leads).
    feedback: SurveyNumbers | None = None

    @property
    def feedback_metrics(self) -> list[Metric]:
        """The surveys' numbers: how many answered, the average rating, who would recommend."""
        found = self.feedback or SurveyNumbers(0, None, None)
        return [
            Metric("survey_answers", _("Surveys answered"), found.answered, "count"),
            Metric("survey_rating", _("Average rating (1–5)"), found.average_stars, "count"),
            Metric(
                "survey_recommend",
                _("Share who would recommend the business"),
                found.recommend_percent,
                "percent",
            ),
        ]

    @property
    def period(self) -> Period:
        return self.kpis.period

    @property
    def period_text(self) -> str:
        return describe_period(self.kpis.period)

    @property
    def metrics(self) -> list[Metric]:
        return metrics(self.kpis)

    @property
    def headline(self) -> list[Metric]:
        return [metric for metric in metrics(self.kpis) if metric.key in HEADLINE]

    @property
    def days(self) -> list[tuple[date, str, int]]:
        return [(day, day_label(day), count) for day, count in self.kpis.by_day]


def day_label(day: date) -> str:
    """ "Sun, Mar 2" / "יום א׳, 2 במרץ"."""
    return str(format_skeleton("MMMEd", day, locale=babel_locale()))


def chart_data(report: KpiReport) -> dict[str, Any]:
    """What static/kpis.js draws, in the reader's language and direction."""
    kpis, locale = report.kpis, current_locale()
    channels = [(channel, count) for channel, count in kpis.by_channel.items() if count]
    return {
        "dir": direction(),
        "locale": locale,
        "label": _("Leads"),
        "days": {
            "labels": [
                str(format_skeleton("MMMd", day, locale=babel_locale())) for day, _n in kpis.by_day
            ],
            "values": [count for _day, count in kpis.by_day],
        },
        "channels": {
            "keys": [channel for channel, _n in channels],
            "labels": [labels.label("channel", channel) for channel, _n in channels],
            "values": [count for _channel, count in channels],
        },
    }


def describe_period(period: Period) -> str:
    """ "2 Mar 2025 – 8 Mar 2025", or one day, in the reader's language."""
    first = format_date(period.first, "medium", locale=babel_locale())
    if period.first == period.last:
        return str(first)
    return f"{first} – {format_date(period.last, 'medium', locale=babel_locale())}"


async def report_for(
    session: AsyncSession,
    user: User,
    business_id: str | uuid.UUID,
    raw_from: str | None,
    raw_to: str | None,
    *,
    now: datetime,
) -> KpiReport:
    """A business the user may see (else 404) and a valid period (else 422) → its numbers."""
    business = await get_business(session, user, business_id, "kpis")
    period = parse_period(raw_from, raw_to, today=local_today(business, now))
    kpis = await compute_kpis(session, [business], period, now=now)
    return KpiReport(business, kpis[business.id], await feedback_of(session, business, period))


async def feedback_of(session: AsyncSession, business: Business, period: Period) -> SurveyNumbers:
    """The customers' surveys answered in the period."""
    start, end = period.bounds(ZoneInfo(business.timezone))
    return await survey_numbers(session, business.id, start, end)


@dataclass(frozen=True)
class KpiScreen:
    """What the KPI page shows: the businesses to choose from, the period, the numbers or why
    there are none."""

    businesses: list[Business]
    business: Business | None
    raw_from: str
    raw_to: str
    presets: dict[str, Period]
    report: KpiReport | None = None
    error: Invalid | None = None
    # none to show, though he is one of the people of a business whose numbers his role there
    # does not include (tenancy.PERMISSIONS)
    not_his_role: bool = False


async def kpi_screen(
    session: AsyncSession,
    user: User,
    business_id: str | None,
    raw_from: str | None,
    raw_to: str | None,
    *,
    now: datetime,
) -> KpiScreen:
    """The page's content; a period that is not valid is said on the page (422), not computed."""
    businesses = await visible_businesses(session, user, "kpis")
    if business_id:
        business: Business | None = await get_business(session, user, business_id, "kpis")
    else:
        business = next((b for b in businesses if b.active), businesses[0] if businesses else None)
    if business is None:
        linked = bool(await visible_businesses(session, user))
        return KpiScreen(businesses, None, raw_from or "", raw_to or "", {}, not_his_role=linked)
    today = local_today(business, now)
    presets = {name: preset(name, today) for name in PRESETS}
    screen = KpiScreen(businesses, business, raw_from or "", raw_to or "", presets)
    try:
        period = parse_period(raw_from, raw_to, today=today)
    except Invalid as error:
        return replace(screen, error=error)
    kpis = await compute_kpis(session, [business], period, now=now)
    feedback = await feedback_of(session, business, period)
    return replace(screen, report=KpiReport(business, kpis[business.id], feedback))
