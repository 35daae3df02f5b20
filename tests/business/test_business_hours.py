"""The agency edits a business's covered hours and task policy: the checks on what it typed, and
the story through HTTP (due times move, other roles see nothing, bad input changes nothing)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from console.agency.business_hours import (
    TypedException,
    TypedHours,
    check_exception,
    check_hours,
    check_windows,
    coming_holidays,
    local_today,
    with_exception,
)
from console.base.db import Database
from console.base.errors import Invalid
from console.base.i18n import using_locale
from console.business.hours import BusinessHours
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.tasks import task_sla, tasks
from models import Business, Event, Lead, Task, TaskPolicy
from tests.factories import MovableClock, csrf_token, make_business, make_user, sign_in

JERUSALEM = ZoneInfo("Asia/Jerusalem")
SUNDAY_9 = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)  # 09:00 in Jerusalem, a working Sunday
WEEK = {
    "sun": [("08:00", "18:00")],
    "mon": [("08:00", "18:00")],
    "tue": [("08:00", "18:00")],
    "wed": [("08:00", "18:00")],
    "thu": [("08:00", "18:00")],
    "fri": [("08:00", "13:00")],
    "sat": [],
}


def refusal(call: Any) -> Invalid:
    with pytest.raises(Invalid) as refused:
        call()
    return refused.value


# --- the checks -------------------------------------------------------------------------------


def test_windows_are_sorted_and_empty_rows_ignored() -> None:
    typed = [("16:00", "19:00"), ("", ""), (" 8:00", "12:00")]
    assert check_windows(typed, day="Monday", field="mon") == [
        ["08:00", "12:00"],
        ["16:00", "19:00"],
    ]
    assert check_windows([("08:00", "12:00"), ("12:00", "13:00")], day="x", field="x") == [
        ["08:00", "12:00"],
        ["12:00", "13:00"],
    ]
    # A time input cannot say 24:00: an end of 00:00 is midnight.
    assert check_windows([("20:00", "00:00")], day="x", field="x") == [["20:00", "24:00"]]


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        (
            [("08:00", "13:00"), ("12:00", "18:00")],
            "On Monday, 08:00–13:00 and 12:00–18:00 overlap.",
        ),
        (
            [("08:00", "18:00"), ("09:00", "10:00")],
            "On Monday, 08:00–18:00 and 09:00–10:00 overlap.",
        ),
        ([("18:00", "08:00")], "On Monday, the window 18:00–08:00 ends before it starts."),
        ([("08:00", "08:00")], "On Monday, the window 08:00–08:00 ends before it starts."),
        ([("8am", "18:00")], "On Monday, 8am is not a time of day (HH:MM)."),
        ([("08:00", "25:00")], "On Monday, 25:00 is not a time of day (HH:MM)."),
        ([("08:60", "18:00")], "On Monday, 08:60 is not a time of day (HH:MM)."),
        ([("08:00", "")], "On Monday, a window needs a start and an end."),
    ],
)
def test_bad_windows_are_refused_naming_the_day(typed: list[tuple[str, str]], message: str) -> None:
    week = {**WEEK, "mon": typed}
    refused = refusal(lambda: check_hours(TypedHours("Asia/Jerusalem", False, week)))
    assert refused.message == message
    assert refused.field == "mon"


def test_refusals_name_the_day_in_the_readers_language() -> None:
    week = {**WEEK, "tue": [("18:00", "08:00")]}
    with using_locale("he"):
        refused = refusal(lambda: check_hours(TypedHours("Asia/Jerusalem", False, week)))
        assert "יום שלישי" in refused.translated()
        assert "18:00–08:00" in refused.translated()


def test_the_time_zone_must_be_known() -> None:
    weekly, zone = check_hours(TypedHours(" Europe/London ", False, WEEK))
    assert zone == "Europe/London" and weekly["fri"] == [["08:00", "13:00"]]
    assert check_hours(TypedHours("", False, WEEK))[1] == "Asia/Jerusalem"  # the default
    for name in ["Mars/Olympus_Mons", "localtime", "../etc/passwd", "asia/jerusalem"]:
        refused = refusal(lambda name=name: check_hours(TypedHours(name, False, WEEK)))
        assert refused.template == "Unknown time zone %(name)s."
        assert refused.field == "timezone"
    refused = refusal(lambda: check_hours(TypedHours("UTC", False, {**WEEK, "sunday": []})))
    assert refused.template == "Unknown day %(day)s."


def test_hours_are_wall_clock_hours_across_daylight_saving() -> None:
    """Checked and kept as wall-clock times, so 08:00–18:00 is ten hours on the days the clocks
    change too, and special hours on such a day count what the wall clock really covers."""
    weekly, zone = check_hours(TypedHours("Asia/Jerusalem", False, WEEK))
    spring_forward, fall_back = date(2027, 3, 26), date(2026, 10, 25)  # a Friday, a Sunday
    _day, windows = check_exception(
        TypedException("2027-03-26", closed=False, windows=[("01:00", "04:00")]),
        today=date(2027, 3, 1),
    )
    clock = BusinessHours.from_business(
        weekly, zone, special_hours={spring_forward.isoformat(): windows}
    )
    [(start, end)] = clock.windows_on(spring_forward)
    assert (start.astimezone(JERUSALEM).hour, end.astimezone(JERUSALEM).hour) == (1, 4)
    assert end - start == timedelta(hours=2)  # 02:00–03:00 does not exist that night
    [(start, end)] = clock.windows_on(fall_back)
    assert start.astimezone(JERUSALEM).hour == 8 and end - start == timedelta(hours=10)


def test_exceptions_are_for_today_on_in_the_business_calendar() -> None:
    # 23:30 UTC on New Year's Eve is already 1 January in Jerusalem.
    business = Business(timezone="Asia/Jerusalem")
    today = local_today(business, datetime(2026, 12, 31, 23, 30, tzinfo=UTC))
    assert today == date(2027, 1, 1)
    assert check_exception(TypedException("2027-01-01", closed=True), today=today) == (
        date(2027, 1, 1),
        None,
    )
    refused = refusal(lambda: check_exception(TypedException("2026-12-31", True), today=today))
    assert refused.template == "%(date)s has passed: exceptions are for today or later."
    assert refused.field == "date"
    for typed, template in [
        (
            TypedException("2030-01-01", True),
            "%(date)s is too far ahead: exceptions are for the next two years.",
        ),
        (TypedException("1.1.2027", True), "%(value)s is not a date (YYYY-MM-DD)."),
        (
            TypedException("2027-01-05", False, [("", "")]),
            "Give the hours of %(date)s, or mark it closed.",
        ),
        (
            TypedException("2027-01-05", False, [("14:00", "10:00")]),
            "On %(day)s, the window %(window)s ends before it starts.",
        ),
    ]:
        assert refusal(lambda typed=typed: check_exception(typed, today=today)).template == template


def test_one_exception_per_date() -> None:
    closed = with_exception({}, date(2027, 1, 5), None)
    assert closed == {"closed_dates": ["2027-01-05"], "special_hours": {}}
    special = with_exception(closed, date(2027, 1, 5), [["10:00", "12:00"]])
    assert special == {"closed_dates": [], "special_hours": {"2027-01-05": [["10:00", "12:00"]]}}
    assert closed == {"closed_dates": ["2027-01-05"], "special_hours": {}}  # a new dict


def test_the_coming_holidays_are_listed_with_what_the_clock_does() -> None:
    clock = BusinessHours.from_business(
        check_hours(TypedHours("Asia/Jerusalem", False, WEEK))[0],
        special_hours={"2026-09-20": [["08:00", "10:00"]]},
    )
    with using_locale("en"):
        days = {d.day: d for d in coming_holidays(clock, date(2026, 9, 1), timedelta(days=30))}
    kippur, eve = days[date(2026, 9, 21)], days[date(2026, 9, 20)]
    assert (kippur.name, kippur.kind, kippur.hours) == ("Yom Kippur", "holiday", [])
    assert (eve.name, eve.kind, eve.hours) == ("Eve of Yom Kippur", "special", ["08:00–10:00"])
    eve_of_new_year = days[date(2026, 9, 11)]
    assert eve_of_new_year.kind == "eve" and eve_of_new_year.hours == ["08:00–13:00"]
    assert date(2026, 9, 1) not in days
    with using_locale("he"):
        named = {d.day: d.name for d in coming_holidays(clock, date(2026, 9, 20), timedelta(1))}
    assert named == {date(2026, 9, 20): "ערב יום כיפור", date(2026, 9, 21): "יום כיפור"}


def test_the_task_policy_has_sensible_bounds() -> None:
    task_sla.check_task_policy(1, 1)
    task_sla.check_task_policy(60 * 24 * 30, 60 * 24 * 7)
    for acknowledge, remind, field in [
        (0, 60, "acknowledge_minutes"),
        (-5, 60, "acknowledge_minutes"),
        (60 * 24 * 30 + 1, 60, "acknowledge_minutes"),
        (120, 0, "remind_before_due_minutes"),
        (120, 60 * 24 * 7 + 1, "remind_before_due_minutes"),
    ]:
        refused = refusal(lambda a=acknowledge, r=remind: task_sla.check_task_policy(a, r))
        assert refused.field == field


# --- through HTTP -----------------------------------------------------------------------------


def week_form(
    token: str, timezone: str = "Asia/Jerusalem", **days: list[tuple[str, str]]
) -> dict[str, Any]:
    """The hours form as a browser posts it: one start and one end field per window row."""
    form: dict[str, Any] = {"csrf_token": token, "timezone": timezone}
    for day, windows in {**WEEK, **days}.items():
        rows = windows or [("", "")]
        form[f"{day}_start"] = [start for start, _end in rows]
        form[f"{day}_end"] = [end for _start, end in rows]
    return form


async def a_waiting_lead_and_a_hand_off(db: Database, business: Business) -> tuple[Lead, Task]:
    async with db.transaction() as session:
        secretary = await make_user(session, "secretary", business)
        owner = await make_user(session, "owner", business)
        lead = await arrivals.create_lead(
            session,
            None,
            NewLead(business_id=str(business.id), phone="052-7654321", channel="email"),
            now=SUNDAY_9,
            business=business,
        )
        task = await tasks.hand_off(
            session,
            secretary,
            lead.id,
            tasks.HandOff(assignee_id=str(owner.id), title="להתקשר", due="2026-11-26T16:00"),
            now=SUNDAY_9,
        )
    return lead, task


async def test_admin_edits_the_hours_and_the_due_times_move(
    client: httpx.AsyncClient, app: Any, db: Database
) -> None:
    app.state.clock = MovableClock(SUNDAY_9)
    async with db.transaction() as session:
        business = await make_business(session, name="מרפאת לוי")
        admin = await make_user(session, "admin")
    lead, task = await a_waiting_lead_and_a_hand_off(db, business)
    assert lead.respond_by == SUNDAY_9 + timedelta(hours=2)  # e-mail: two covered hours
    assert task.acknowledge_by == SUNDAY_9 + timedelta(hours=2)
    url = f"/agency/businesses/{business.id}/hours"
    await sign_in(client, admin.email)
    page = await client.get(url)
    assert page.status_code == 200
    assert 'name="sun_start" value="08:00"' in page.text and "יום כיפור" not in page.text
    token = await csrf_token(client, url)

    # A split shift on Sunday: one hour until 10:00, the second from 16:00: due at 17:00 local.
    split = week_form(token, sun=[("08:00", "10:00"), ("16:00", "19:00")])
    saved = await client.post(url, data=split)
    assert saved.status_code == 303
    assert saved.headers["location"].endswith("/hours?saved=1&leads=1&tasks=1")
    five_pm = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
    async with db.transaction(write=False) as session:
        moved = await session.get_one(Lead, lead.id)
        moved_task = await session.get_one(Task, task.id)
        found = await session.get_one(Business, business.id)
        kinds = (
            await session.scalars(select(Event.kind).where(Event.kind == "lead.updated"))
        ).all()
    assert moved.respond_by == five_pm and moved.queue_at == five_pm
    assert moved_task.acknowledge_by == five_pm
    assert found.weekly_hours["sun"] == [["08:00", "10:00"], ["16:00", "19:00"]]
    assert kinds == ["lead.updated"]  # the consoles showing the lead get its row anew
    shown = await client.get(saved.headers["location"])
    assert 'class="saved"' in shown.text
    assert 'name="sun_start" value="16:00"' in shown.text

    # Close that Sunday: the lead waits for Monday 08:00 + 2 hours.
    closed = await client.post(
        f"{url}/exceptions", data={"csrf_token": token, "date": "2026-11-22", "kind": "closed"}
    )
    assert closed.status_code == 303
    async with db.transaction(write=False) as session:
        assert (await session.get_one(Lead, lead.id)).respond_by == datetime(
            2026, 11, 23, 8, 0, tzinfo=UTC
        )
    removed = await client.post(
        f"{url}/exceptions/remove", data={"csrf_token": token, "date": "2026-11-22"}
    )
    assert removed.status_code == 303
    async with db.transaction(write=False) as session:
        assert (await session.get_one(Lead, lead.id)).respond_by == five_pm

    # 24/7: two wall-clock hours.
    around = {**week_form(token), "always_open": "1"}
    assert (await client.post(url, data=around)).status_code == 303
    async with db.transaction(write=False) as session:
        assert (await session.get_one(Lead, lead.id)).respond_by == SUNDAY_9 + timedelta(hours=2)


async def test_bad_hours_are_refused_and_change_nothing(
    client: httpx.AsyncClient, app: Any, db: Database
) -> None:
    app.state.clock = MovableClock(SUNDAY_9)
    async with db.transaction() as session:
        business = await make_business(session)
        admin = await make_user(session, "admin")
    lead, _task = await a_waiting_lead_and_a_hand_off(db, business)
    url = f"/agency/businesses/{business.id}/hours"
    await sign_in(client, admin.email)
    token = await csrf_token(client, url)
    async with db.transaction(write=False) as session:
        events_before = await session.scalar(select(func.count()).select_from(Event))
    bad_weeks = [
        week_form(token, mon=[("08:00", "13:00"), ("12:00", "18:00")]),
        week_form(token, tue=[("18:00", "08:00")]),
        week_form(token, wed=[("8 o'clock", "18:00")]),
        week_form(token, thu=[("08:00", "")]),
        week_form(token, timezone="Mars/Olympus_Mons"),
    ]
    for form in bad_weeks:
        response = await client.post(url, data=form)
        assert response.status_code == 422, form
    htmx = await client.post(url, data=bad_weeks[0], headers={"HX-Request": "true"})
    # the week's form again in place (htmx: that block only), as typed, the reason beside it
    assert htmx.status_code == 422 and "<html" not in htmx.text
    assert 'value="12:00"' in htmx.text and 'role="alert"' in htmx.text
    assert "יום שני" in htmx.text  # the admin reads Hebrew
    for exception in [
        {"date": "2026-11-21", "kind": "closed"},  # yesterday
        {"date": "someday", "kind": "closed"},
        {"date": "2026-12-01", "kind": "special", "special_start": "", "special_end": ""},
        {"date": "2026-12-01", "kind": "special", "special_start": "12:00", "special_end": "09:00"},
    ]:
        response = await client.post(f"{url}/exceptions", data={"csrf_token": token, **exception})
        assert response.status_code == 422, exception
    assert (
        await client.post(f"{url}/exceptions/remove", data={"csrf_token": token, "date": "x"})
    ).status_code == 422
    async with db.transaction(write=False) as session:
        found = await session.get_one(Business, business.id)
        kept = await session.get_one(Lead, lead.id)
        events_after = await session.scalar(select(func.count()).select_from(Event))
    assert found.weekly_hours == {day: [list(w) for w in ws] for day, ws in WEEK.items()}
    assert found.timezone == "Asia/Jerusalem" and not found.always_open
    assert found.hours_exceptions in ({}, None)
    assert kept.respond_by == SUNDAY_9 + timedelta(hours=2)
    assert events_after == events_before


async def test_only_admins_reach_the_hours_and_task_policy(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        secretary = await make_user(session, "secretary", business)
        owner = await make_user(session, "owner", business)
    url = f"/agency/businesses/{business.id}/hours"
    for person in (secretary, owner):
        client.cookies.clear()
        await sign_in(client, person.email)
        token = await csrf_token(client, "/tasks")
        assert (await client.get(url)).status_code == 404
        assert (
            await client.get(f"{url}?window=mon", headers={"HX-Request": "true"})
        ).status_code == 404
        posted = await client.post(url, data=week_form(token, sat=[("08:00", "12:00")]))
        assert posted.status_code == 404
        closing = {"csrf_token": token, "date": "2099-01-01", "kind": "closed"}
        assert (await client.post(f"{url}/exceptions", data=closing)).status_code == 404
        policy = {"csrf_token": token, "acknowledge_minutes": "5", "remind_before_due_minutes": "5"}
        sla_tasks = f"/agency/businesses/{business.id}/sla/tasks"
        assert (await client.post(sla_tasks, data=policy)).status_code == 404
    async with db.transaction(write=False) as session:
        found = await session.get_one(Business, business.id)
        assert found.weekly_hours["sat"] == [] and not found.hours_exceptions
        assert await session.get(TaskPolicy, business.id) is None


async def test_an_admin_adds_a_window_row_with_htmx(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        admin = await make_user(session, "admin")
    await sign_in(client, admin.email)
    url = f"/agency/businesses/{business.id}/hours"
    row = await client.get(f"{url}?window=sat", headers={"HX-Request": "true"})
    assert row.status_code == 200 and "<html" not in row.text
    assert 'name="sat_start"' in row.text and row.headers["Vary"] == "HX-Request"
    page = await client.get(f"{url}?window=sat")  # without JavaScript: the page, one row more
    assert "<html" in page.text and page.text.count('name="sat_start"') == 1


async def test_an_admin_sets_the_task_policy_and_open_hand_offs_move(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        admin = await make_user(session, "admin")
    _lead, task = await a_waiting_lead_and_a_hand_off(db, business)
    url = f"/agency/businesses/{business.id}/sla"
    await sign_in(client, admin.email)
    page = await client.get(url)
    assert 'name="acknowledge_minutes"' in page.text and 'value="120"' in page.text
    assert f"/agency/businesses/{business.id}/hours" in page.text
    token = await csrf_token(client, url)
    saved = await client.post(
        f"{url}/tasks",
        data={"csrf_token": token, "acknowledge_minutes": "30", "remind_before_due_minutes": "90"},
    )
    assert saved.status_code == 303
    async with db.transaction(write=False) as session:
        policy = await session.get_one(TaskPolicy, business.id)
        moved = await session.get_one(Task, task.id)
    assert (policy.acknowledge_minutes, policy.remind_before_due_minutes) == (30, 90)
    assert moved.acknowledge_by == SUNDAY_9 + timedelta(minutes=30)
    assert moved.next_alert_at == moved.acknowledge_by
    for bad in [
        {"acknowledge_minutes": "0", "remind_before_due_minutes": "60"},
        {"acknowledge_minutes": "soon", "remind_before_due_minutes": "60"},
        {"acknowledge_minutes": "60", "remind_before_due_minutes": "-1"},
        {"acknowledge_minutes": "999999", "remind_before_due_minutes": "60"},
    ]:
        response = await client.post(f"{url}/tasks", data={"csrf_token": token, **bad})
        assert response.status_code == 422, bad
    async with db.transaction(write=False) as session:
        policy = await session.get_one(TaskPolicy, business.id)
        kept = await session.get_one(Task, task.id)
    assert (policy.acknowledge_minutes, policy.remind_before_due_minutes) == (30, 90)
    assert kept.acknowledge_by == moved.acknowledge_by
    agency = await client.get("/agency")
    assert f"/agency/businesses/{business.id}/hours" in agency.text
