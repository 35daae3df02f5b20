"""Editing a business's covered hours: checking what an admin typed, saving it, and moving the
stored due times that count those hours. The clock itself is console/business/hours.py.

The checks are pure and name the day and the field; a refusal leaves the business as it was.
Saving restarts the clocks of the business's waiting leads (console/sla/sla.py) and open hand-offs
(console/tasks/task_sla.py), and tells the consoles their rows changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import holidays
from babel.dates import format_date, get_day_names
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import Invalid
from console.base.i18n import babel_locale, current_locale
from console.base.i18n import gettext as _
from console.business.hours import (
    DAY_KEYS,
    BusinessHours,
    DayKind,
    check_timezone,
    validate_weekly_hours,
)
from console.live import events
from console.people.audit import Actor, record_change
from console.sla import sla
from console.tasks import task_sla
from models import Business

DEFAULT_TIMEZONE = "Asia/Jerusalem"
# Exceptions are for today (in the business's zone) up to this far ahead.
EXCEPTIONS_AHEAD = timedelta(days=2 * 366)
MAX_EXCEPTIONS = 366
# How far ahead the page lists the holidays the clock closes or shortens.
HOLIDAYS_AHEAD = timedelta(days=183)

Pair = tuple[str, str]

_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_FULL_DAY = 24 * 60
_WEEKDAY_INDEX = {
    key: index for index, key in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
}
# Machine-dependent or meaningless names that zoneinfo also lists.
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@dataclass(frozen=True)
class TypedHours:
    """The hours form as typed: the zone, 24/7, and each day's (start, end) pairs."""

    timezone: str
    always_open: bool
    week: Mapping[str, Sequence[Pair]]


@dataclass(frozen=True)
class TypedException:
    """One date's exception as typed: closed all day, or special hours."""

    day: str
    closed: bool
    windows: Sequence[Pair] = ()


@dataclass(frozen=True)
class Moved:
    """How many stored due times a change moved."""

    leads: int
    tasks: int


# --- checks (pure) ----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    return tuple(sorted(set(available_timezones()) - _NOT_ZONES))


def check_zone(name: str) -> str:
    """An IANA zone name as stored; empty means the default, anything unknown is refused."""
    name = name.strip() or DEFAULT_TIMEZONE
    if name not in zone_names():
        raise Invalid("Unknown time zone %(name)s.", field="timezone", name=name)
    check_timezone(name)
    return name


def day_name(key: str) -> str:
    """Sunday, יום ראשון: a weekday key in the reader's language."""
    return str(get_day_names("wide", locale=babel_locale())[_WEEKDAY_INDEX[key]])


def date_label(day: date) -> str:
    return format_date(day, "full", locale=babel_locale())


def check_windows(pairs: Sequence[Pair], *, day: str, field: str) -> list[list[str]]:
    """One day's windows as stored ("HH:MM" pairs, sorted); `day` names the day in refusals.

    A pair left empty is no window; an end of 00:00 is midnight at the end of the day.
    """
    found: list[tuple[int, int]] = []
    for raw_start, raw_end in pairs:
        typed_start, typed_end = raw_start.strip(), raw_end.strip()
        if not typed_start and not typed_end:
            continue
        if not typed_start or not typed_end:
            raise Invalid("On %(day)s, a window needs a start and an end.", field=field, day=day)
        start = _minutes(typed_start, day=day, field=field)
        end = _minutes(typed_end, day=day, field=field) or _FULL_DAY
        if end <= start:
            raise Invalid(
                "On %(day)s, the window %(window)s ends before it starts.",
                field=field,
                day=day,
                window=f"{typed_start}–{typed_end}",
            )
        found.append((start, end))
    found.sort()
    for before, after in pairwise(found):
        if after[0] < before[1]:
            raise Invalid(
                "On %(day)s, %(first)s and %(second)s overlap.",
                field=field,
                day=day,
                first=_window(before),
                second=_window(after),
            )
    return [[_clock(start), _clock(end)] for start, end in found]


def check_hours(typed: TypedHours) -> tuple[dict[str, list[list[str]]], str]:
    """The weekly hours and zone as stored, or Invalid naming the day or the field."""
    unknown = sorted(set(typed.week) - set(DAY_KEYS))
    if unknown:
        raise Invalid("Unknown day %(day)s.", field="weekly_hours", day=unknown[0])
    week = {
        key: check_windows(typed.week.get(key, ()), day=day_name(key), field=key)
        for key in DAY_KEYS
    }
    return validate_weekly_hours(week), check_zone(typed.timezone)


def check_exception(typed: TypedException, *, today: date) -> tuple[date, list[list[str]] | None]:
    """The date and its special hours (None: closed); only today or later, in the business's
    own calendar (`today` is its local date)."""
    try:
        day = date.fromisoformat(typed.day.strip())
    except ValueError:
        raise Invalid(
            "%(value)s is not a date (YYYY-MM-DD).", field="date", value=typed.day
        ) from None
    if day < today:
        raise Invalid(
            "%(date)s has passed: exceptions are for today or later.",
            field="date",
            date=date_label(day),
        )
    if day > today + EXCEPTIONS_AHEAD:
        raise Invalid(
            "%(date)s is too far ahead: exceptions are for the next two years.",
            field="date",
            date=date_label(day),
        )
    if typed.closed:
        return day, None
    windows = check_windows(typed.windows, day=date_label(day), field="special_hours")
    if not windows:
        raise Invalid(
            "Give the hours of %(date)s, or mark it closed.",
            field="special_hours",
            date=date_label(day),
        )
    return day, windows


def with_exception(
    exceptions: Mapping[str, Any], day: date, windows: list[list[str]] | None
) -> dict[str, Any]:
    """The exceptions with `day` closed (windows None) or on special hours, replacing what that
    date had; a new dict, so the JSON column sees the change."""
    closed, special = _without(exceptions, day)
    if windows is None:
        closed.append(day.isoformat())
    else:
        special[day.isoformat()] = windows
    if len(closed) + len(special) > MAX_EXCEPTIONS:
        raise Invalid(
            "A business can have at most %(n)s exceptions; remove some that have passed.",
            field="date",
            n=MAX_EXCEPTIONS,
        )
    return {"closed_dates": sorted(closed), "special_hours": dict(sorted(special.items()))}


def without_exception(exceptions: Mapping[str, Any], day: date) -> dict[str, Any]:
    closed, special = _without(exceptions, day)
    return {"closed_dates": sorted(closed), "special_hours": dict(sorted(special.items()))}


def _without(exceptions: Mapping[str, Any], day: date) -> tuple[list[str], dict[str, Any]]:
    iso = day.isoformat()
    closed = [d for d in exceptions.get("closed_dates") or () if d != iso]
    special = {d: w for d, w in (exceptions.get("special_hours") or {}).items() if d != iso}
    return closed, special


def _minutes(value: str, *, day: str, field: str) -> int:
    """Minutes after midnight for "HH:MM", up to 24:00."""
    match = _TIME.fullmatch(value)
    if match and int(match[2]) < 60 and int(match[1]) * 60 + int(match[2]) <= _FULL_DAY:
        return int(match[1]) * 60 + int(match[2])
    raise Invalid(
        "On %(day)s, %(value)s is not a time of day (HH:MM).", field=field, day=day, value=value
    )


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _window(window: tuple[int, int]) -> str:
    return f"{_clock(window[0])}–{_clock(window[1])}"


def local_today(business: Business, now: datetime) -> date:
    return now.astimezone(ZoneInfo(business.timezone)).date()


# --- saving -----------------------------------------------------------------------------------


async def save_hours(
    session: AsyncSession,
    actor: Actor,
    business: Business,
    typed: TypedHours,
    *,
    contract: bool = False,
) -> Moved:
    """New weekly hours, zone and 24/7 for the business; its due times move with them. With
    `contract` (the agency's own change, or its approval), the week is what the agency agrees
    to cover from now on. Audited with what changed."""
    weekly, zone = check_hours(typed)
    _clock_of(weekly, zone, business.hours_exceptions or {}, always_open=typed.always_open)
    changed = [
        name
        for name, value in (
            ("weekly_hours", weekly),
            ("timezone", zone),
            ("always_open", typed.always_open),
        )
        if getattr(business, name) != value
    ]
    business.weekly_hours = weekly
    business.timezone = zone
    business.always_open = typed.always_open
    if contract:
        business.contract_hours = weekly
    await session.flush()
    await record_change(session, actor, "hours.saved", business, changed=changed)
    return await restart_clocks(session, business, now=actor.now)


async def add_exception(
    session: AsyncSession, actor: Actor, business: Business, typed: TypedException
) -> Moved:
    """Close a date, or give it special hours (replacing what it had); audited."""
    day, windows = check_exception(typed, today=local_today(business, actor.now))
    changed = with_exception(business.hours_exceptions or {}, day, windows)
    _clock_of(business.weekly_hours, business.timezone, changed, always_open=business.always_open)
    business.hours_exceptions = changed
    await session.flush()
    await record_change(
        session,
        actor,
        "hours.exception_set",
        business,
        date=day.isoformat(),
        windows=windows or [],
    )
    return await restart_clocks(session, business, now=actor.now)


async def remove_exception(
    session: AsyncSession, actor: Actor, business: Business, typed_day: str
) -> Moved:
    """The date goes back to its usual hours; removing it twice changes nothing."""
    try:
        day = date.fromisoformat(typed_day.strip())
    except ValueError:
        raise Invalid(
            "%(value)s is not a date (YYYY-MM-DD).", field="date", value=typed_day
        ) from None
    exceptions = business.hours_exceptions or {}
    iso = day.isoformat()
    if iso not in (exceptions.get("closed_dates") or ()) and iso not in (
        exceptions.get("special_hours") or {}
    ):
        return Moved(0, 0)
    business.hours_exceptions = without_exception(exceptions, day)
    await session.flush()
    await record_change(session, actor, "hours.exception_removed", business, date=iso)
    return await restart_clocks(session, business, now=actor.now)


def _clock_of(
    weekly: Mapping[str, Any], zone: str, exceptions: Mapping[str, Any], *, always_open: bool
) -> BusinessHours:
    """The clock these settings make: the clock's own checks, before anything is stored."""
    return BusinessHours.from_business(
        weekly,
        zone,
        closed_dates=exceptions.get("closed_dates") or (),
        special_hours=exceptions.get("special_hours") or None,
        always_open=always_open,
    )


async def restart_clocks(session: AsyncSession, business: Business, *, now: datetime) -> Moved:
    """The business's clock changed: waiting leads and unacknowledged hand-offs count their
    promise again, and the consoles showing those leads get their rows anew."""
    lead_ids = await sla.restart_waiting_clocks(session, business)
    tasks = await task_sla.restart_task_clocks(session, business)
    await events.record_many(
        session, "lead.updated", [(business.id, {"lead_id": i}) for i in lead_ids], at=now
    )
    return Moved(len(lead_ids), tasks)


# --- the page ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExceptionDay:
    day: date
    label: str
    windows: list[list[str]] | None  # None: closed all day
    past: bool


@dataclass(frozen=True)
class HolidayDay:
    """A holiday or its eve, and what the clock makes of it for this business."""

    day: date
    label: str
    name: str
    kind: DayKind  # "holiday", "eve", or the business's own "closed" / "special" exception
    hours: list[str]  # the covered windows that day, in the business's wall time


@dataclass(frozen=True)
class HoursPage:
    business: Business
    week: list[tuple[str, str, list[list[str]]]]  # key, name, windows
    exceptions: list[ExceptionDay]
    holidays: list[HolidayDay]
    today: date
    open_now: bool
    no_hours: bool


def hours_page(business: Business, *, now: datetime) -> HoursPage:
    """What the hours editor shows: the week, the exceptions, and the holidays ahead."""
    clock = sla.clock_for(business)
    today = local_today(business, now)
    stored = business.weekly_hours or {}
    week = [(key, day_name(key), [list(w) for w in stored.get(key) or []]) for key in DAY_KEYS]
    exceptions = business.hours_exceptions or {}
    entries: list[tuple[str, list[list[str]] | None]] = [
        (key, None) for key in exceptions.get("closed_dates") or ()
    ]
    entries += list((exceptions.get("special_hours") or {}).items())
    days = []
    for key, windows in entries:
        day = date.fromisoformat(key)
        days.append(ExceptionDay(day, date_label(day), windows, day < today))
    days.sort(key=lambda exception: exception.day)
    return HoursPage(
        business=business,
        week=week,
        exceptions=days,
        holidays=[] if business.always_open else coming_holidays(clock, today),
        today=today,
        open_now=clock.is_open(now),
        no_hours=not business.always_open and not any(windows for _k, _n, windows in week),
    )


def coming_holidays(
    clock: BusinessHours, today: date, ahead: timedelta = HOLIDAYS_AHEAD
) -> list[HolidayDay]:
    """The public holidays (closed) and their eves (short) from today on, named in the
    reader's language, with the hours the clock gives each."""
    language = "he" if current_locale() == "he" else "en_US"
    found = []
    day = today
    while day <= today + ahead:
        name = _holiday_name(day, language)
        if name is not None:
            hours = [
                f"{start.astimezone(clock.zone):%H:%M}–{end.astimezone(clock.zone):%H:%M}"
                for start, end in clock.windows_on(day)
            ]
            found.append(HolidayDay(day, date_label(day), name, clock.day_kind(day), hours))
        day += timedelta(days=1)
    return found


def _holiday_name(day: date, language: str) -> str | None:
    public = _public_holidays(day.year, language)
    if day in public:
        return public[day]
    following = day + timedelta(days=1)
    upcoming = _public_holidays(following.year, language)
    if following in upcoming:
        return _("Eve of %(holiday)s") % {"holiday": upcoming[following]}
    return None


@lru_cache(maxsize=16)
def _public_holidays(year: int, language: str) -> Mapping[date, str]:
    found = holidays.country_holidays("IL", years=year, categories=("public",), language=language)
    return MappingProxyType({day: str(name) for day, name in found.items()})
