"""The business-hours clock: when the agency covers a business, and how much covered time passes.

Pure: no database, no I/O. Hours are kept in the business's wall time and turned into UTC one day
at a time, so 08:00–18:00 stays 08:00–18:00 local on the days the clocks change. Israeli public
holidays are closed, the day before each one (its eve) is a short day, and the business's own
closed dates and special hours win over both. Moments go in aware and come out in UTC.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from console.base.errors import Invalid

DAY_KEYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
DayKind = Literal["normal", "holiday", "eve", "closed", "special"]
# Minutes after local midnight, the end excluded; 1440 is 24:00.
Window = tuple[int, int]
UtcWindow = tuple[datetime, datetime]

# How long a search for the next covered minute goes on before it decides there is none.
GIVE_UP_AFTER_DAYS = 400

_WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_FULL_DAY = 24 * 60
_ONE_DAY = timedelta(days=1)
_ONE_MINUTE = timedelta(minutes=1)
_MAX_CACHED_DAYS = 4096

# --- validation -------------------------------------------------------------------------------


def check_timezone(name: object) -> ZoneInfo:
    """The zone for an IANA name, or Invalid."""
    try:
        if not isinstance(name, str):
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid("Unknown time zone %(name)s.", field="timezone", name=str(name)) from None


def validate_weekly_hours(raw: object) -> dict[str, list[list[str]]]:
    """Weekly hours as stored: every day present (absent = closed), "HH:MM" windows sorted."""
    weekly = _parse_weekly(raw)
    return {day: [[_clock(start), _clock(end)] for start, end in weekly[day]] for day in DAY_KEYS}


def _parse_weekly(raw: object) -> dict[str, tuple[Window, ...]]:
    if not isinstance(raw, Mapping):
        raise Invalid("Weekly hours must map days of the week to hours.", field="weekly_hours")
    weekly: dict[str, tuple[Window, ...]] = dict.fromkeys(DAY_KEYS, ())
    for key, windows in raw.items():
        day = key.strip().lower() if isinstance(key, str) else key
        if day not in weekly:
            raise Invalid("Unknown day %(day)s.", field="weekly_hours", day=str(key))
        weekly[day] = _parse_windows(windows, day=day, field="weekly_hours")
    return weekly


def _parse_windows(raw: object, *, day: str, field: str) -> tuple[Window, ...]:
    """Windows of one day, sorted; Invalid if one is malformed, empty or overlaps another."""
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple) or not all(_is_pair(pair) for pair in raw):
        raise Invalid(
            "The hours of %(day)s must be a list of [start, end] pairs.", field=field, day=day
        )
    windows: list[Window] = []
    for pair in raw:
        start, end = (_parse_time(value, day=day, field=field) for value in pair)
        if end <= start:
            raise Invalid(
                "On %(day)s, %(end)s is not after %(start)s.",
                field=field,
                day=day,
                start=_clock(start),
                end=_clock(end),
            )
        windows.append((start, end))
    windows.sort()
    for before, after in pairwise(windows):
        if after[0] < before[1]:
            raise Invalid("The hours of %(day)s overlap.", field=field, day=day)
    return tuple(windows)


def _is_pair(value: object) -> bool:
    return isinstance(value, list | tuple) and len(value) == 2


def _parse_time(value: object, *, day: str, field: str) -> int:
    minutes = _minutes(value)
    if minutes is None:
        raise Invalid(
            "On %(day)s, %(value)s is not a time of day (HH:MM).",
            field=field,
            day=day,
            value=str(value),
        )
    return minutes


def _minutes(value: object) -> int | None:
    """Minutes after midnight for "HH:MM" (up to 24:00), None for anything else."""
    match = _TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        return None
    hour, minute = int(match[1]), int(match[2])
    if minute > 59 or hour > 24 or (hour == 24 and minute):
        return None
    return hour * 60 + minute


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_date(value: object, *, field: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise Invalid("%(value)s is not a date (YYYY-MM-DD).", field=field, value=str(value))


# --- the Israeli calendar ---------------------------------------------------------------------


@dataclass(frozen=True)
class _YearCalendar:
    public: Mapping[date, str]
    eves: Mapping[date, str]  # the eve -> the name of the holiday that follows it
    intermediate: Mapping[date, str]  # Chol HaMoed: optional days inside a festival
    optional: Mapping[date, str]


@lru_cache(maxsize=64)
def _calendar(year: int) -> _YearCalendar:
    """One year's public holidays, their eves and intermediate days, looked up once."""
    years = [year - 1, year, year + 1]  # eves and festivals can straddle New Year
    public = _holidays(years, "public")
    optional = _holidays(years, "optional")

    def public_within_a_week(day: date, direction: int) -> bool:
        return any(day + timedelta(days=direction * n) in public for n in range(1, 7))

    eves = {
        holiday - _ONE_DAY: name
        for holiday, name in public.items()
        if holiday - _ONE_DAY not in public and (holiday - _ONE_DAY).year == year
    }
    intermediate = {
        day: name
        for day, name in optional.items()
        if day.year == year and public_within_a_week(day, -1) and public_within_a_week(day, 1)
    }
    return _YearCalendar(
        public={day: name for day, name in public.items() if day.year == year},
        eves=eves,
        intermediate=intermediate,
        optional={day: name for day, name in optional.items() if day.year == year},
    )


def _holidays(years: list[int], category: str) -> dict[date, str]:
    found = holidays.country_holidays("IL", years=years, categories=(category,), language="en_US")
    return {day: str(name) for day, name in found.items()}


# --- the clock --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BusinessHours:
    """One business's covered hours; build it with from_business."""

    weekly: tuple[tuple[Window, ...], ...]  # indexed by date.weekday(), Monday first
    zone: ZoneInfo
    closed_dates: frozenset[date] = frozenset()
    special_hours: Mapping[date, tuple[Window, ...]] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    always_open: bool = False
    holidays_closed: bool = True
    # When short days (eves, and intermediate days if they are short) close; None: no short days.
    eve_closes_at: int | None = 13 * 60
    intermediate_days_short: bool = False
    _days: dict[date, tuple[UtcWindow, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    @classmethod
    def from_business(
        cls,
        weekly_hours: Mapping[str, object],
        timezone: str = "Asia/Jerusalem",
        *,
        closed_dates: Iterable[date | str] = (),
        special_hours: Mapping[date | str, object] | None = None,
        always_open: bool = False,
        holidays_closed: bool = True,
        eve_closes_at: str | None = "13:00",
        intermediate_days_short: bool = False,
    ) -> BusinessHours:
        """Validate a business's settings and build its clock; Invalid names the bad field."""
        weekly = _parse_weekly(weekly_hours)
        special: dict[date, tuple[Window, ...]] = {}
        for key, windows in (special_hours or {}).items():
            day = _parse_date(key, field="special_hours")
            special[day] = _parse_windows(windows, day=day.isoformat(), field="special_hours")
        eve_cut = None
        if eve_closes_at is not None:
            eve_cut = _minutes(eve_closes_at)
            if eve_cut is None:
                raise Invalid(
                    "%(value)s is not a time of day (HH:MM).",
                    field="eve_closes_at",
                    value=eve_closes_at,
                )
        return cls(
            weekly=tuple(weekly[key] for key in _WEEKDAY_KEYS),
            zone=check_timezone(timezone),
            closed_dates=frozenset(_parse_date(d, field="closed_dates") for d in closed_dates),
            special_hours=MappingProxyType(special),
            always_open=always_open,
            holidays_closed=holidays_closed,
            eve_closes_at=eve_cut,
            intermediate_days_short=intermediate_days_short,
        )

    # --- days -------------------------------------------------------------------------------

    def day_kind(self, local_date: date) -> DayKind:
        """What kind of day this is for the business; "eve" means any short day.

        Special hours win over a closed date, both win over the holiday calendar. A weekly day
        off (Saturday) is "normal" with no windows; "closed" is a closed-date exception.
        """
        if self.always_open:
            return "normal"
        if local_date in self.special_hours:
            return "special"
        if local_date in self.closed_dates:
            return "closed"
        if self.holidays_closed or self.intermediate_days_short:
            calendar = _calendar(local_date.year)
            if self.holidays_closed and local_date in calendar.public:
                return "holiday"
            if self.eve_closes_at is not None and (
                (self.holidays_closed and local_date in calendar.eves)
                or (self.intermediate_days_short and local_date in calendar.intermediate)
            ):
                return "eve"
        return "normal"

    def holiday_name(self, local_date: date) -> str | None:
        """The calendar's English name for the day, whatever this business does on it."""
        calendar = _calendar(local_date.year)
        if local_date in calendar.public:
            return calendar.public[local_date]
        names = []
        if local_date in calendar.optional:
            names.append(calendar.optional[local_date])
        if local_date in calendar.eves:
            names.append(f"Eve of {calendar.eves[local_date]}")
        return "; ".join(names) or None

    def windows_on(self, local_date: date) -> list[UtcWindow]:
        """The day's covered windows in UTC, after holidays, eves and exceptions."""
        return list(self._utc_windows(local_date))

    def _local_windows(self, day: date) -> tuple[Window, ...]:
        if self.always_open:
            return ((0, _FULL_DAY),)
        kind = self.day_kind(day)
        if kind == "special":
            return self.special_hours[day]
        if kind in ("closed", "holiday"):
            return ()
        weekly = self.weekly[day.weekday()]
        if kind == "eve" and self.eve_closes_at is not None:
            cut = self.eve_closes_at
            return tuple((start, min(end, cut)) for start, end in weekly if start < cut)
        return weekly

    def _utc_windows(self, day: date) -> tuple[UtcWindow, ...]:
        cached = self._days.get(day)
        if cached is None:
            if len(self._days) >= _MAX_CACHED_DAYS:
                self._days.clear()
            cached = self._days[day] = self._to_utc(day, self._local_windows(day))
        return cached

    def _to_utc(self, day: date, windows: tuple[Window, ...]) -> tuple[UtcWindow, ...]:
        """Wall-clock windows as UTC; a clock change can fold two together, so none overlap."""
        converted: list[UtcWindow] = []
        for start, end in windows:
            utc_start, utc_end = self._utc_at(day, start), self._utc_at(day, end)
            if converted and utc_start < converted[-1][1]:
                utc_start = converted[-1][1]
            if utc_start < utc_end:
                converted.append((utc_start, utc_end))
        return tuple(converted)

    def _utc_at(self, day: date, minutes: int) -> datetime:
        if minutes >= _FULL_DAY:
            day, minutes = day + _ONE_DAY, minutes - _FULL_DAY
        local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.zone)
        return local.astimezone(UTC)

    def _windows_from(self, at: datetime, until: datetime | None = None) -> Iterator[UtcWindow]:
        """Covered windows from `at` on, clipped to start no earlier than it, in order.

        Stops after the local day of `until`, or without one after GIVE_UP_AFTER_DAYS days in a
        row with no hours.
        """
        day = at.astimezone(self.zone).date() - _ONE_DAY
        last_day = until.astimezone(self.zone).date() if until is not None else None
        last_end = at
        days_without_hours = 0
        while day <= last_day if last_day is not None else days_without_hours <= GIVE_UP_AFTER_DAYS:
            windows = self._utc_windows(day)
            days_without_hours = 0 if windows else days_without_hours + 1
            for start, end in windows:
                start = max(start, last_end)
                if start < end:
                    yield start, end
                    last_end = end
            day += _ONE_DAY

    # --- moments ------------------------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        """Whether the agency covers the business at this moment."""
        at = _as_utc(at)
        if self.always_open:
            return True
        day = at.astimezone(self.zone).date()
        return any(
            start <= at < end
            for each_day in (day - _ONE_DAY, day)
            for start, end in self._utc_windows(each_day)
        )

    def next_open(self, at: datetime) -> datetime | None:
        """`at` if covered, else the next opening; None if nothing opens for over a year."""
        at = _as_utc(at)
        if self.always_open:
            return at
        return next((start for start, _end in self._windows_from(at)), None)

    def add_covered_minutes(self, start: datetime, minutes: float) -> datetime:
        """The moment `minutes` of covered time have passed since `start` (counting from the
        next opening if it is outside hours)."""
        [moment] = self.add_covered_minutes_each(start, [minutes])
        if moment is None:
            raise ValueError("no covered hours")
        return moment

    def add_covered_minutes_each(
        self, start: datetime, amounts: Sequence[float]
    ) -> list[datetime | None]:
        """`add_covered_minutes` for several amounts from one start, in one walk over the
        windows (a promise's warnings and breach); None where the hours run out first."""
        start = _as_utc(start)
        for minutes in amounts:
            if not math.isfinite(minutes) or minutes < 0:
                raise ValueError(f"minutes must be finite and not negative, not {minutes!r}")
        wanted = sorted((timedelta(minutes=m), n) for n, m in enumerate(amounts))
        found: list[datetime | None] = [None] * len(amounts)
        if self.always_open:
            for amount, n in wanted:
                found[n] = start + amount
            return found
        passed = timedelta()  # covered time before the window being walked
        for window_start, window_end in self._windows_from(start):
            window = window_end - window_start
            while wanted and wanted[0][0] <= passed + window:
                amount, n = wanted.pop(0)
                found[n] = window_start + (amount - passed)
            if not wanted:
                break
            passed += window
        return found

    def covered_minutes_between(self, t1: datetime, t2: datetime) -> float:
        """Covered minutes in [t1, t2); 0 when t2 is not after t1."""
        t1, t2 = _as_utc(t1), _as_utc(t2)
        if t2 <= t1:
            return 0.0
        if self.always_open:
            return (t2 - t1) / _ONE_MINUTE
        covered = timedelta()
        for start, end in self._windows_from(t1, until=t2):
            if start >= t2:
                break
            covered += min(end, t2) - start
        return covered / _ONE_MINUTE


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a naive datetime has no place on the clock: {moment.isoformat()}")
    return moment.astimezone(UTC)
