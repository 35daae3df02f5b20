"""The business-hours clock: split shifts, short days, holidays, exceptions, DST, and its sums."""

from __future__ import annotations

import random
from dataclasses import FrozenInstanceError
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import holidays
import pytest

from console.base.errors import Invalid
from console.business.hours import BusinessHours, check_timezone, validate_weekly_hours

JERUSALEM = ZoneInfo("Asia/Jerusalem")
DEFAULT = {
    "sun": [["08:00", "18:00"]],
    "mon": [["08:00", "18:00"]],
    "tue": [["08:00", "18:00"]],
    "wed": [["08:00", "18:00"]],
    "thu": [["08:00", "18:00"]],
    "fri": [["08:00", "13:00"]],
    "sat": [],
}
SPLIT = {**DEFAULT, "mon": [["16:00", "19:00"], ["08:00", "13:00"]]}


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A Jerusalem wall-clock moment, as UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=JERUSALEM).astimezone(UTC)


def local_windows(hours: BusinessHours, day: date) -> list[tuple[str, str]]:
    """The day's windows read back on the Jerusalem wall clock."""
    return [
        (start.astimezone(JERUSALEM).strftime("%H:%M"), end.astimezone(JERUSALEM).strftime("%H:%M"))
        for start, end in hours.windows_on(day)
    ]


def public_holiday(year: int, name: str) -> date:
    found = holidays.country_holidays("IL", years=year, categories=("public",), language="en_US")
    return next(day for day, holiday in sorted(found.items()) if holiday == name)


@pytest.fixture
def hours() -> BusinessHours:
    return BusinessHours.from_business(DEFAULT)


# --- validation -------------------------------------------------------------------------------


def test_weekly_hours_are_normalised() -> None:
    raw = {"Mon ": [("16:00", "19:00"), [" 8:00", "13:00"]], "fri": [["08:00", "24:00"]]}
    assert validate_weekly_hours(raw) == {
        "sun": [],
        "mon": [["08:00", "13:00"], ["16:00", "19:00"]],
        "tue": [],
        "wed": [],
        "thu": [],
        "fri": [["08:00", "24:00"]],
        "sat": [],
    }
    assert validate_weekly_hours(DEFAULT) == DEFAULT
    assert validate_weekly_hours({"sun": [["08:00", "13:00"], ["13:00", "18:00"]]})["sun"] == [
        ["08:00", "13:00"],
        ["13:00", "18:00"],
    ]


@pytest.mark.parametrize(
    ("raw", "template"),
    [
        ({"sun": [["08:00", "13:00"], ["12:00", "18:00"]]}, "The hours of %(day)s overlap."),
        ({"sun": [["08:00", "18:00"], ["09:00", "10:00"]]}, "The hours of %(day)s overlap."),
        ({"sun": [["18:00", "08:00"]]}, "On %(day)s, %(end)s is not after %(start)s."),
        ({"sun": [["08:00", "08:00"]]}, "On %(day)s, %(end)s is not after %(start)s."),
        ({"sun": [["24:00", "24:00"]]}, "On %(day)s, %(end)s is not after %(start)s."),
        ({"sun": [["8am", "18:00"]]}, "On %(day)s, %(value)s is not a time of day (HH:MM)."),
        ({"sun": [["08:00", "25:00"]]}, "On %(day)s, %(value)s is not a time of day (HH:MM)."),
        ({"sun": [["08:00", "24:30"]]}, "On %(day)s, %(value)s is not a time of day (HH:MM)."),
        ({"sun": [["08:60", "18:00"]]}, "On %(day)s, %(value)s is not a time of day (HH:MM)."),
        ({"sun": [[800, 1800]]}, "On %(day)s, %(value)s is not a time of day (HH:MM)."),
        ({"sun": [["08:00"]]}, "The hours of %(day)s must be a list of [start, end] pairs."),
        ({"sun": "08:00-18:00"}, "The hours of %(day)s must be a list of [start, end] pairs."),
        ({"sunday": [["08:00", "18:00"]]}, "Unknown day %(day)s."),
        ({7: []}, "Unknown day %(day)s."),
        ([["08:00", "18:00"]], "Weekly hours must map days of the week to hours."),
    ],
)
def test_bad_weekly_hours_are_refused(raw: object, template: str) -> None:
    with pytest.raises(Invalid) as refused:
        validate_weekly_hours(raw)
    assert refused.value.template == template
    assert refused.value.field == "weekly_hours"
    with pytest.raises(Invalid):
        BusinessHours.from_business(raw)  # type: ignore[arg-type]


def test_refusals_say_which_day() -> None:
    with pytest.raises(Invalid) as refused:
        validate_weekly_hours({"tue": [["18:00", "08:00"]]})
    assert refused.value.message == "On tue, 08:00 is not after 18:00."


def test_unknown_time_zone_is_refused() -> None:
    assert check_timezone("Asia/Jerusalem") == JERUSALEM
    for name in ["Asia/Atlantis", "", "../etc/passwd", None]:
        with pytest.raises(Invalid) as refused:
            check_timezone(name)
        assert refused.value.template == "Unknown time zone %(name)s."
        assert refused.value.field == "timezone"
    with pytest.raises(Invalid) as refused:
        BusinessHours.from_business(DEFAULT, "Mars/Olympus_Mons")
    assert refused.value.message == "Unknown time zone Mars/Olympus_Mons."


def test_bad_exceptions_are_refused() -> None:
    with pytest.raises(Invalid) as refused:
        BusinessHours.from_business(DEFAULT, closed_dates=["2026-13-01"])
    assert refused.value.field == "closed_dates"
    with pytest.raises(Invalid) as refused:
        BusinessHours.from_business(DEFAULT, special_hours={"2026-05-05": [["10:00", "09:00"]]})
    assert refused.value.field == "special_hours"
    assert refused.value.message == "On 2026-05-05, 09:00 is not after 10:00."
    with pytest.raises(Invalid) as refused:
        BusinessHours.from_business(DEFAULT, eve_closes_at="1pm")
    assert refused.value.field == "eve_closes_at"
    assert refused.value.message == "1pm is not a time of day (HH:MM)."


def test_naive_datetimes_are_refused(hours: BusinessHours) -> None:
    naive = datetime(2026, 5, 5, 10, 0)
    with pytest.raises(ValueError, match="naive"):
        hours.is_open(naive)
    with pytest.raises(ValueError, match="naive"):
        hours.next_open(naive)
    with pytest.raises(ValueError, match="naive"):
        hours.add_covered_minutes(naive, 5)
    with pytest.raises(ValueError, match="naive"):
        hours.covered_minutes_between(naive, at(2026, 5, 6))


def test_negative_or_endless_minutes_are_refused(hours: BusinessHours) -> None:
    for minutes in [-1.0, float("nan"), float("inf")]:
        with pytest.raises(ValueError, match="minutes"):
            hours.add_covered_minutes(at(2026, 5, 5, 10), minutes)


def test_the_clock_is_frozen(hours: BusinessHours) -> None:
    with pytest.raises(FrozenInstanceError):
        hours.always_open = True  # type: ignore[misc]


# --- days -------------------------------------------------------------------------------------


def test_split_shifts() -> None:
    hours = BusinessHours.from_business(SPLIT)
    monday = date(2026, 5, 4)
    assert local_windows(hours, monday) == [("08:00", "13:00"), ("16:00", "19:00")]
    assert hours.is_open(at(2026, 5, 4, 7, 59)) is False
    assert hours.is_open(at(2026, 5, 4, 8, 0)) is True
    assert hours.is_open(at(2026, 5, 4, 12, 59)) is True
    assert hours.is_open(at(2026, 5, 4, 13, 0)) is False
    assert hours.is_open(at(2026, 5, 4, 15, 59)) is False
    assert hours.is_open(at(2026, 5, 4, 16, 0)) is True
    assert hours.is_open(at(2026, 5, 4, 19, 0)) is False
    assert hours.add_covered_minutes(at(2026, 5, 4, 12, 58), 5) == at(2026, 5, 4, 16, 3)
    assert hours.covered_minutes_between(at(2026, 5, 4), at(2026, 5, 5)) == 8 * 60
    assert hours.next_open(at(2026, 5, 4, 14, 0)) == at(2026, 5, 4, 16, 0)


def test_friday_is_a_short_day(hours: BusinessHours) -> None:
    friday = date(2026, 5, 8)
    assert local_windows(hours, friday) == [("08:00", "13:00")]
    assert hours.day_kind(friday) == "normal"
    assert hours.is_open(at(2026, 5, 8, 12, 59)) is True
    assert hours.is_open(at(2026, 5, 8, 13, 0)) is False


def test_saturday_is_closed(hours: BusinessHours) -> None:
    saturday = date(2026, 5, 9)
    assert hours.windows_on(saturday) == []
    assert hours.day_kind(saturday) == "normal"
    assert not any(hours.is_open(at(2026, 5, 9, hour)) for hour in range(24))
    assert hours.next_open(at(2026, 5, 9, 10)) == at(2026, 5, 10, 8)


def test_yom_kippur_is_closed_and_its_eve_is_short(hours: BusinessHours) -> None:
    yom_kippur = public_holiday(2026, "Yom Kippur")
    assert yom_kippur == date(2026, 9, 21)  # a Monday
    eve = yom_kippur - timedelta(days=1)
    assert hours.day_kind(yom_kippur) == "holiday"
    assert hours.holiday_name(yom_kippur) == "Yom Kippur"
    assert hours.windows_on(yom_kippur) == []
    assert hours.is_open(at(2026, 9, 21, 10)) is False
    assert hours.day_kind(eve) == "eve"
    assert hours.holiday_name(eve) == "Eve of Yom Kippur"
    assert local_windows(hours, eve) == [("08:00", "13:00")]
    assert hours.is_open(at(2026, 9, 20, 12, 59)) is True
    assert hours.is_open(at(2026, 9, 20, 13, 0)) is False


def test_rosh_hashanah_on_a_sunday_is_closed(hours: BusinessHours) -> None:
    second_day = date(2026, 9, 13)
    assert hours.holiday_name(second_day) == "Rosh Hashanah"
    assert hours.day_kind(second_day) == "holiday"
    assert hours.windows_on(second_day) == []
    # The first day is a Saturday; its eve is Friday, already short.
    assert hours.day_kind(date(2026, 9, 11)) == "eve"
    assert local_windows(hours, date(2026, 9, 11)) == [("08:00", "13:00")]


def test_eves_clip_split_shifts_and_their_cut_is_configurable() -> None:
    wednesday_split = {
        **DEFAULT,
        "wed": [["08:00", "11:00"], ["12:00", "14:00"], ["16:00", "19:00"]],
    }
    pesach_eve = public_holiday(2026, "Pesach") - timedelta(days=1)  # Wednesday 2026-04-01
    hours = BusinessHours.from_business(wednesday_split)
    assert local_windows(hours, pesach_eve) == [("08:00", "11:00"), ("12:00", "13:00")]
    earlier = BusinessHours.from_business(wednesday_split, eve_closes_at="11:30")
    assert local_windows(earlier, pesach_eve) == [("08:00", "11:00")]
    no_short_days = BusinessHours.from_business(wednesday_split, eve_closes_at=None)
    assert no_short_days.day_kind(pesach_eve) == "normal"
    assert len(no_short_days.windows_on(pesach_eve)) == 3


def test_holidays_can_be_worked(hours: BusinessHours) -> None:
    working = BusinessHours.from_business(DEFAULT, holidays_closed=False)
    for day in [date(2026, 9, 20), date(2026, 9, 21)]:
        assert working.day_kind(day) == "normal"
        assert local_windows(working, day) == [("08:00", "18:00")]
        assert working.holiday_name(day) == hours.holiday_name(day)


def test_intermediate_days_are_normal_unless_asked() -> None:
    chol_hamoed = date(2026, 9, 28)  # Monday of Sukkot
    purim = date(2026, 3, 3)  # optional, but not inside a festival
    hours = BusinessHours.from_business(DEFAULT)
    assert hours.holiday_name(chol_hamoed) == "Sukkot holiday"
    assert hours.day_kind(chol_hamoed) == "normal"
    assert local_windows(hours, chol_hamoed) == [("08:00", "18:00")]
    short = BusinessHours.from_business(DEFAULT, intermediate_days_short=True)
    assert short.day_kind(chol_hamoed) == "eve"
    assert local_windows(short, chol_hamoed) == [("08:00", "13:00")]
    assert short.day_kind(date(2026, 4, 6)) == "eve"  # Chol HaMoed Pesach
    assert short.day_kind(purim) == "normal"
    assert short.holiday_name(purim) == "Purim"


def test_closed_dates_and_special_hours() -> None:
    tuesday, saturday, yom_kippur = date(2026, 5, 5), date(2026, 5, 9), date(2026, 9, 21)
    hours = BusinessHours.from_business(
        DEFAULT,
        closed_dates={tuesday, "2026-05-06"},
        special_hours={
            saturday: [["20:00", "22:00"], ["10:00", "12:00"]],
            "2026-09-21": [["10:00", "12:00"]],
            "2026-05-06": [["09:00", "10:00"]],
        },
    )
    assert hours.day_kind(tuesday) == "closed"
    assert hours.windows_on(tuesday) == []
    assert hours.day_kind(saturday) == "special"
    assert local_windows(hours, saturday) == [("10:00", "12:00"), ("20:00", "22:00")]
    assert hours.is_open(at(2026, 5, 9, 21)) is True
    # Special hours win over the holiday and over a closed date.
    assert hours.day_kind(yom_kippur) == "special"
    assert local_windows(hours, yom_kippur) == [("10:00", "12:00")]
    assert local_windows(hours, date(2026, 5, 6)) == [("09:00", "10:00")]
    # Monday 17:58 + 5: Tuesday is closed, Wednesday opens at 09:00.
    assert hours.add_covered_minutes(at(2026, 5, 4, 17, 58), 5) == at(2026, 5, 6, 9, 3)


def test_always_open_ignores_holidays_and_the_clock() -> None:
    hours = BusinessHours.from_business({}, always_open=True, closed_dates=["2026-05-05"])
    yom_kippur = date(2026, 9, 21)
    assert hours.day_kind(yom_kippur) == "normal"
    assert local_windows(hours, yom_kippur) == [("00:00", "00:00")]
    assert hours.is_open(at(2026, 9, 21, 3, 17)) is True
    assert hours.is_open(at(2026, 5, 5, 12)) is True
    start = at(2026, 9, 20, 23, 58)
    assert hours.add_covered_minutes(start, 5) == start + timedelta(minutes=5)
    assert hours.next_open(start) == start
    assert hours.covered_minutes_between(start, start + timedelta(days=2)) == 2 * 24 * 60
    # The day the clocks go forward has 23 hours.
    (spring,) = hours.windows_on(date(2026, 3, 27))
    assert spring[1] - spring[0] == timedelta(hours=23)


# --- adding and counting ----------------------------------------------------------------------


def test_add_across_a_night(hours: BusinessHours) -> None:
    assert hours.add_covered_minutes(at(2026, 5, 4, 17, 58), 5) == at(2026, 5, 5, 8, 3)


def test_add_across_a_weekend(hours: BusinessHours) -> None:
    assert hours.add_covered_minutes(at(2026, 5, 7, 17, 58), 5) == at(2026, 5, 8, 8, 3)
    assert hours.add_covered_minutes(at(2026, 5, 8, 12, 58), 5) == at(2026, 5, 10, 8, 3)
    # Friday's last hour and all of Sunday end at Sunday's close; one minute more is Monday.
    assert hours.add_covered_minutes(at(2026, 5, 8, 12, 0), 60 + 600) == at(2026, 5, 10, 18, 0)
    assert hours.add_covered_minutes(at(2026, 5, 8, 12, 0), 60 + 601) == at(2026, 5, 11, 8, 1)


def test_add_across_a_holiday(hours: BusinessHours) -> None:
    # Sunday is the eve of Yom Kippur (closes 13:00), Monday is Yom Kippur.
    assert hours.add_covered_minutes(at(2026, 9, 20, 12, 58), 5) == at(2026, 9, 22, 8, 3)
    # Thursday 2026-04-02 is Pesach: Wednesday, its eve, closes at 13:00 and Friday opens.
    assert hours.add_covered_minutes(at(2026, 4, 1, 12, 30), 45) == at(2026, 4, 3, 8, 15)


def test_add_from_outside_hours_counts_from_the_next_opening(hours: BusinessHours) -> None:
    assert hours.add_covered_minutes(at(2026, 5, 9, 10), 0) == at(2026, 5, 10, 8)
    assert hours.add_covered_minutes(at(2026, 5, 9, 10), 30) == at(2026, 5, 10, 8, 30)
    assert hours.add_covered_minutes(at(2026, 5, 4, 18, 0), 0) == at(2026, 5, 5, 8)
    assert hours.add_covered_minutes(at(2026, 5, 4, 5, 0), 10) == at(2026, 5, 4, 8, 10)
    open_moment = at(2026, 5, 4, 9, 12) + timedelta(seconds=7)
    assert hours.add_covered_minutes(open_moment, 0) == open_moment
    assert hours.add_covered_minutes(at(2026, 5, 4, 17, 58), 2) == at(2026, 5, 4, 18, 0)
    assert hours.add_covered_minutes(at(2026, 5, 4, 10), 0.5) == at(2026, 5, 4, 10) + timedelta(
        seconds=30
    )


def test_hours_to_midnight_run_on_into_the_next_day() -> None:
    late = {"sun": [["20:00", "24:00"]], "mon": [["00:00", "02:00"]]}
    hours = BusinessHours.from_business(late, holidays_closed=False)
    assert hours.is_open(at(2026, 5, 4, 0, 0)) is True
    assert hours.add_covered_minutes(at(2026, 5, 3, 23, 55), 10) == at(2026, 5, 4, 0, 5)
    assert hours.covered_minutes_between(at(2026, 5, 3), at(2026, 5, 5)) == 6 * 60


def test_covered_minutes_between(hours: BusinessHours) -> None:
    sunday = at(2026, 5, 3)
    assert hours.covered_minutes_between(sunday, sunday) == 0
    assert hours.covered_minutes_between(at(2026, 5, 4), sunday) == 0
    assert hours.covered_minutes_between(sunday, at(2026, 5, 4)) == 600
    assert hours.covered_minutes_between(sunday, sunday + timedelta(days=7)) == 5 * 600 + 300
    assert hours.covered_minutes_between(at(2026, 5, 3, 17, 30), at(2026, 5, 4, 8, 30)) == 60
    # The week of Yom Kippur: Sunday short, Monday closed.
    yom_kippur_week = hours.covered_minutes_between(at(2026, 9, 20), at(2026, 9, 27))
    assert yom_kippur_week == 300 + 3 * 600 + 300


def test_no_hours_at_all() -> None:
    hours = BusinessHours.from_business({})
    start = at(2026, 5, 4, 10)
    assert hours.is_open(start) is False
    assert hours.next_open(start) is None
    assert hours.covered_minutes_between(start, start + timedelta(days=30)) == 0
    with pytest.raises(ValueError, match="no covered hours"):
        hours.add_covered_minutes(start, 5)


def test_next_open(hours: BusinessHours) -> None:
    assert hours.next_open(at(2026, 5, 4, 10)) == at(2026, 5, 4, 10)
    assert hours.next_open(at(2026, 5, 4, 18)) == at(2026, 5, 5, 8)
    assert hours.next_open(at(2026, 9, 20, 14)) == at(2026, 9, 22, 8)
    in_tokyo = datetime(2026, 5, 4, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert hours.next_open(in_tokyo) == at(2026, 5, 4, 8)
    assert hours.next_open(in_tokyo).tzinfo is UTC  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("weekly", "zone", "options"),
    [
        (DEFAULT, "Asia/Jerusalem", {}),
        (SPLIT, "Asia/Jerusalem", {"intermediate_days_short": True, "eve_closes_at": "12:00"}),
        (
            {"mon": [["00:00", "01:30"], ["02:30", "24:00"]], "sat": [["00:00", "24:00"]]},
            "Asia/Jerusalem",
            {"closed_dates": ["2026-10-26"], "special_hours": {"2026-03-28": [["01:00", "03:00"]]}},
        ),
        (DEFAULT, "America/New_York", {"holidays_closed": False}),
    ],
)
def test_counting_undoes_adding(
    weekly: dict[str, list[list[str]]], zone: str, options: dict[str, object]
) -> None:
    hours = BusinessHours.from_business(weekly, zone, **options)  # type: ignore[arg-type]
    rng = random.Random(20260327)
    year_start = at(2026, 1, 1)
    for _ in range(400):
        start = year_start + timedelta(seconds=rng.randrange(365 * 24 * 3600))
        minutes = rng.choice([0.0, 5.0, rng.uniform(0, 60), rng.uniform(0, 5000)])
        end = hours.add_covered_minutes(start, minutes)
        assert end >= start
        assert hours.covered_minutes_between(start, end) == pytest.approx(minutes, abs=1e-6)
        if minutes == 0:
            assert end == hours.next_open(start)


def test_several_amounts_in_one_walk_agree_with_one_at_a_time() -> None:
    hours = BusinessHours.from_business(SPLIT)
    rng = random.Random(20261124)
    for _ in range(200):
        start = at(2026, 1, 1) + timedelta(seconds=rng.randrange(365 * 24 * 3600))
        amounts = [rng.choice([0.0, 2.5, 4.0, rng.uniform(0, 900)]) for _ in range(4)]
        amounts.append(amounts[0])  # unordered, and once twice
        each = hours.add_covered_minutes_each(start, amounts)
        assert each == [hours.add_covered_minutes(start, minutes) for minutes in amounts]
    closed = BusinessHours.from_business({day: [] for day in DEFAULT})
    assert closed.add_covered_minutes_each(at(2026, 5, 4), [5.0, 0.0]) == [None, None]
    with pytest.raises(ValueError, match="no covered hours"):
        closed.add_covered_minutes(at(2026, 5, 4), 5)
    with pytest.raises(ValueError, match="not negative"):
        hours.add_covered_minutes_each(at(2026, 5, 4), [5.0, -1.0])


# --- daylight saving --------------------------------------------------------------------------


def test_spring_forward_day_keeps_wall_clock_hours(hours: BusinessHours) -> None:
    # Israel moves to summer time at 02:00 on Friday 2026-03-27.
    friday = date(2026, 3, 27)
    assert local_windows(hours, friday) == [("08:00", "13:00")]
    (window,) = hours.windows_on(friday)
    assert window == (datetime(2026, 3, 27, 5, tzinfo=UTC), datetime(2026, 3, 27, 10, tzinfo=UTC))
    (thursday,) = hours.windows_on(date(2026, 3, 26))
    assert thursday[0] == datetime(2026, 3, 26, 6, tzinfo=UTC)
    assert hours.add_covered_minutes(at(2026, 3, 26, 17, 58), 5) == at(2026, 3, 27, 8, 3)
    assert hours.covered_minutes_between(at(2026, 3, 26, 17), at(2026, 3, 27, 9)) == 120


def test_fall_back_day_keeps_wall_clock_hours(hours: BusinessHours) -> None:
    # Israel returns to standard time at 02:00 on Sunday 2026-10-25.
    sunday = date(2026, 10, 25)
    assert local_windows(hours, sunday) == [("08:00", "18:00")]
    (window,) = hours.windows_on(sunday)
    assert window == (datetime(2026, 10, 25, 6, tzinfo=UTC), datetime(2026, 10, 25, 16, tzinfo=UTC))
    (thursday,) = hours.windows_on(date(2026, 10, 22))
    assert thursday[0] == datetime(2026, 10, 22, 5, tzinfo=UTC)
    assert hours.add_covered_minutes(at(2026, 10, 23, 12, 58), 5) == at(2026, 10, 25, 8, 3)
    assert hours.covered_minutes_between(at(2026, 10, 22, 17), at(2026, 10, 25, 9)) == 420


def test_hours_inside_the_skipped_hour_do_not_overlap() -> None:
    # 02:00–03:00 does not exist on 2026-03-27; the windows around it must not count twice.
    gap = {"fri": [["00:00", "02:30"], ["03:00", "24:00"]]}
    hours = BusinessHours.from_business(gap, holidays_closed=False)
    windows = hours.windows_on(date(2026, 3, 27))
    assert all(start < end for start, end in windows)
    assert all(a[1] <= b[0] for a, b in pairwise(windows))
    assert hours.covered_minutes_between(at(2026, 3, 27), at(2026, 3, 28)) == 23 * 60
    fall_back_day = BusinessHours.from_business(
        {"sun": [["00:00", "24:00"]]}, holidays_closed=False
    )
    assert fall_back_day.covered_minutes_between(at(2026, 10, 25), at(2026, 10, 26)) == 25 * 60
