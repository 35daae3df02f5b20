"""Periods of whole days in a business's own zone, and the SQL that buckets rows into them.

A period is a run of whole days, both ends included (`[first 00:00, last + 1 00:00)` local,
turned into UTC per business). Days are bucketed in SQL from whole epoch seconds plus the zone's
offset, which is constant between the zone's clock changes: the offsets are found here, and the
statement picks one per segment. Used by the KPIs and the agency's reports alike.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    and_,
    case,
    cast,
    extract,
    func,
    or_,
    true,
)
from sqlalchemy.orm import InstrumentedAttribute

from console.base.errors import Invalid
from models import Business

# A longer period is refused: two years of days is what the screen's chart can still show.
MAX_DAYS = 731
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)
DEFAULT_PRESET = "last30"
PRESETS = ("week", "last7", "last30", "month")
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class Period:
    """Whole days in a business's zone, `first` and `last` both included."""

    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def dates(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range(self.days)]

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) in UTC: local midnight of the first day, and of the day after the last."""
        start = datetime.combine(self.first, time(0), tzinfo=zone).astimezone(UTC)
        end = datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=zone)
        return start, end.astimezone(UTC)


def parse_day(raw: str, field: str) -> date:
    """A day written YYYY-MM-DD (only that form: the date inputs send it), or Invalid."""
    try:
        if ISO_DAY.fullmatch(raw.strip()):
            return date.fromisoformat(raw.strip())
    except ValueError:
        pass
    raise Invalid("Write the day as YYYY-MM-DD.", field=field)


def filter_day(raw: str, field: str) -> date | None:
    """A filter's day (blank: none), within the days any period may cover, or Invalid: a
    year 1 or 9999 would overflow the moment it is turned into."""
    if not raw.strip():
        return None
    day = parse_day(raw, field)
    if not FIRST_DAY <= day <= LAST_DAY:
        raise Invalid(
            "Choose days between %(first)s and %(last)s.",
            field=field,
            first=FIRST_DAY.isoformat(),
            last=LAST_DAY.isoformat(),
        )
    return day


def check_period(first: date, last: date) -> Period:
    """The period, or Invalid saying what is wrong with it (nothing is computed then)."""
    if not (FIRST_DAY <= first <= LAST_DAY and FIRST_DAY <= last <= LAST_DAY):
        raise Invalid(
            "Choose days between %(first)s and %(last)s.",
            field="from" if not FIRST_DAY <= first <= LAST_DAY else "to",
            first=FIRST_DAY.isoformat(),
            last=LAST_DAY.isoformat(),
        )
    if last < first:
        raise Invalid("The period ends before it starts.", field="to")
    if (last - first).days + 1 > MAX_DAYS:
        raise Invalid(
            "A period can be at most two years (%(days)s days).", field="to", days=MAX_DAYS
        )
    return Period(first, last)


def parse_period(raw_from: str | None, raw_to: str | None, *, today: date) -> Period:
    """From the query string (`from`, `to`, both included); neither given: the last 30 days."""
    if not raw_from and not raw_to:
        return preset(DEFAULT_PRESET, today)
    if not raw_from:
        raise Invalid("Choose the first day of the period.", field="from")
    if not raw_to:
        raise Invalid("Choose the last day of the period.", field="to")
    return check_period(parse_day(raw_from, "from"), parse_day(raw_to, "to"))


def preset(name: str, today: date) -> Period:
    """This week (Sunday to Saturday, the Israeli week), the last 7 or 30 days, this month."""
    if name == "week":
        sunday = today - timedelta(days=(today.weekday() + 1) % 7)
        return Period(sunday, sunday + timedelta(days=6))
    if name == "last7":
        return Period(today - timedelta(days=6), today)
    if name == "month":
        first = today.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return Period(first, following - timedelta(days=1))
    if name == "last30":
        return Period(today - timedelta(days=29), today)
    raise ValueError(f"unknown preset {name!r}")


def local_today(business: Business, now: datetime) -> date:
    return now.astimezone(ZoneInfo(business.timezone)).date()


@dataclass(frozen=True)
class ZoneGroup:
    """The businesses of one zone: their period in UTC, and the zone's offset within it."""

    ids: tuple[uuid.UUID, ...]
    start: datetime
    end: datetime
    # (from this moment on, offset in seconds), the first from `start`
    offsets: tuple[tuple[datetime, int], ...]


def _offset(zone: ZoneInfo, moment: datetime) -> int:
    delta = moment.astimezone(zone).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def offset_segments(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """Where the zone's UTC offset changes within [start, end), to the second: a day at a time,
    then halving the day the offset changed in (clocks change at most a few times a year)."""
    segments = [(start, _offset(zone, start))]
    day = start
    while day < end:
        following = min(day + timedelta(days=1), end)
        if _offset(zone, following) != segments[-1][1]:
            low, high = day, following
            while high - low > timedelta(seconds=1):
                middle = low + timedelta(seconds=(high - low).total_seconds() // 2)
                if _offset(zone, middle) == segments[-1][1]:
                    low = middle
                else:
                    high = middle
            if high < end:
                segments.append((high, _offset(zone, high)))
        day = following
    return segments


def zone_groups(businesses: Sequence[Business], period: Period) -> list[ZoneGroup]:
    by_zone: dict[str, list[uuid.UUID]] = {}
    for business in businesses:
        by_zone.setdefault(business.timezone, []).append(business.id)
    groups = []
    for name, ids in sorted(by_zone.items()):
        zone = ZoneInfo(name)
        start, end = period.bounds(zone)
        groups.append(ZoneGroup(tuple(ids), start, end, tuple(offset_segments(zone, start, end))))
    return groups


def in_period(
    groups: list[ZoneGroup],
    business: InstrumentedAttribute[Any],
    moment: InstrumentedAttribute[Any],
) -> ColumnElement[bool]:
    return or_(
        *(
            and_(business.in_(group.ids), moment >= group.start, moment < group.end)
            for group in groups
        )
    )


def within_period(
    businesses: Sequence[Business],
    period: Period,
    business: InstrumentedAttribute[Any],
    moment: InstrumentedAttribute[Any],
) -> ColumnElement[bool]:
    """The WHERE clause of rows of these businesses whose `moment` falls in the period, each
    business's days in its own zone."""
    return in_period(zone_groups(businesses, period), business, moment)


class PeriodSql:
    """The statements' pieces for one period and a set of businesses grouped by zone."""

    def __init__(self, groups: list[ZoneGroup], dialect: str, now: datetime) -> None:
        self.groups = groups
        self.dialect = dialect
        self.now = now
        self.ids = [business_id for group in groups for business_id in group.ids]

    def _of(self, group: ZoneGroup, column: InstrumentedAttribute[Any]) -> list[Any]:
        """The group's businesses (said only when there are several zones)."""
        return [column.in_(group.ids)] if len(self.groups) > 1 else []

    def in_period(
        self, business: InstrumentedAttribute[Any], moment: InstrumentedAttribute[Any]
    ) -> ColumnElement[bool]:
        return in_period(self.groups, business, moment)

    def before_end(
        self, business: InstrumentedAttribute[Any], moment: InstrumentedAttribute[Any]
    ) -> ColumnElement[bool]:
        return or_(*(and_(business.in_(group.ids), moment < group.end) for group in self.groups))

    def epoch(self, moment: Any) -> ColumnElement[int]:
        """Whole seconds since 1970 (UTC), as an integer, in the database."""
        if self.dialect == "postgresql":
            return cast(func.floor(extract("epoch", moment)), BigInteger)
        return cast(func.strftime("%s", moment), Integer)

    def local_day(
        self, business: InstrumentedAttribute[Any], moment: InstrumentedAttribute[Any]
    ) -> ColumnElement[int]:
        """The local day of `moment` as days since 1970-01-01: epoch seconds plus the offset of
        the segment the moment falls in, divided by a day (all whole numbers, all after 1970)."""
        if len(self.groups) == 1 and len(self.groups[0].offsets) == 1:
            return (self.epoch(moment) + self.groups[0].offsets[0][1]) // 86400
        whens: list[tuple[ColumnElement[bool], int]] = []
        for group in self.groups:
            for (_start, seconds), (following, _next) in pairwise(group.offsets):
                whens.append((and_(*self._of(group, business), moment < following), seconds))
            whens.append((and_(true(), *self._of(group, business)), group.offsets[-1][1]))
        return (self.epoch(moment) + case(*whens, else_=0)) // 86400
