"""The KPIs: every number against a fixture worked out by hand, the period's validation, the
screen, the CSV and XLSX exports and the API showing the same numbers, the tenancy rule, and
the owners' digests (once per owner and day, in his language, only his business)."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pytest
from bs4 import BeautifulSoup
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.config import Settings
from console.base.db import Database
from console.base.errors import Invalid
from console.business import periods
from console.business.periods import Period
from console.channels.notify import Senders, send_due_notifications
from console.people import api_tokens
from console.reports import kpis
from console.reports.kpis import compute_kpis
from models import Business, Contact, Interaction, Lead, Notification, Task, User
from models.agents import CallSettings
from models.voice import Call
from tests.conftest import SECRET
from tests.factories import (
    Agency,
    MovableClock,
    counting,
    make_agency,
    make_business,
    make_user,
    sign_in,
)
from tests.fakes import FakeSmtp
from workers.digests import send_digests
from workers.settings import PERIODIC

JERUSALEM = ZoneInfo("Asia/Jerusalem")
NEW_YORK = ZoneInfo("America/New_York")
# Monday 10 March 2025, 12:00 in Jerusalem (UTC+2 until the clocks change on 28 March).
NOW = datetime(2025, 3, 10, 10, 0, tzinfo=UTC)
WEEK = Period(date(2025, 3, 2), date(2025, 3, 8))  # Sunday to Saturday
QUERY = "from=2025-03-02&to=2025-03-08"


def local(day: int, hour: int, minute: int = 0, second: int = 0, *, month: int = 3) -> datetime:
    """A moment of 2025 given on Jerusalem's clock, in UTC."""
    return datetime(2025, month, day, hour, minute, second, tzinfo=JERUSALEM).astimezone(UTC)


# --- the fixture --------------------------------------------------------------------------------


@dataclass
class AgencyWithAWeek(Agency):
    """The agency and its admin, A's week and B's rows written (see write_week, write_b)."""

    admin: User


class Writer:
    """Rows written as they are, with the times a test wants (no service moves them)."""

    def __init__(self, session: AsyncSession, business: Business) -> None:
        self.session = session
        self.business = business

    async def contact(self, name: str) -> Contact:
        contact = Contact(business_id=self.business.id, name=name)
        self.session.add(contact)
        await self.session.flush()
        return contact

    def lead(
        self,
        contact: Contact,
        channel: str,
        created: datetime,
        *,
        respond_by: datetime | None = None,
        answered: datetime | None = None,
        covered: float | None = None,
        stage: str = "new",
        closed: datetime | None = None,
        value: str | None = None,
    ) -> Lead:
        lead = Lead(
            business_id=self.business.id,
            contact_id=contact.id,
            channel=channel,
            created_at=created,
            stage=stage,
            stage_changed_at=closed or created,
            respond_by=respond_by,
            first_response_at=answered,
            first_response_covered_minutes=covered,
            closed_at=closed,
            deal_value=Decimal(value) if value else None,
            queue_at=created,
        )
        self.session.add(lead)
        return lead

    def interaction(
        self,
        lead: Lead,
        kind: str,
        started: datetime,
        *,
        by: User | None,
        status: str = "done",
        direction: str | None = None,
    ) -> None:
        self.session.add(
            Interaction(
                business_id=self.business.id,
                lead_id=lead.id,
                contact_id=lead.contact_id,
                user_id=by.id if by else None,
                kind=kind,
                status=status,
                started_at=started,
                ended_at=started + timedelta(minutes=3),
                direction=direction,
                outcome="booked_meeting" if kind == "inbound_call" else None,
            )
        )

    def call(
        self,
        name: str,
        state: str,
        arrived: datetime,
        *,
        ringing: int | None = None,
        answered: int | None = None,
        ended: int | None = None,
        reason: str | None = None,
        by: User | None = None,
        rung: tuple[User, ...] = (),
        direction: str = "in",
    ) -> None:
        """A call's row as the SIP server's requests and events leave it; times in seconds
        after its arrival."""

        def after(seconds: int | None) -> datetime | None:
            return arrived + timedelta(seconds=seconds) if seconds is not None else None

        self.session.add(
            Call(
                business_id=self.business.id,
                sip_call_id=f"{name}@{self.business.slug}",
                direction=direction,
                caller="+972501234567",
                dialled="+97231234567",
                state=state,
                answered_by_id=by.id if by else None,
                arrived_at=arrived,
                ringing_at=after(ringing),
                answered_at=after(answered),
                ended_at=after(ended),
                end_reason=reason,
                ringing=[],
                rung=[user.id.hex for user in rung],
            )
        )

    def task(self, assignee: User, created: datetime, due: datetime, status: str = "open") -> None:
        self.session.add(
            Task(
                business_id=self.business.id,
                assignee_id=assignee.id,
                title=f"task of {self.business.slug} due {due:%d.%m}",
                created_at=created,
                due_at=due,
                status=status,
            )
        )


async def write_week(session: AsyncSession, a: Business, secretary: User, owner: User) -> None:
    """Business A's week of 2–8 March 2025 (Jerusalem, UTC+2), and rows just outside it.

    lead contact channel  arrived      promise   answered covered stage  closed (all local)
    L1   c1      phone    Sun 2 08:00  08:10     08:05    5       won    Mon 3 08:00 (24 h) ₪1000
    L2   c2      phone    Sun 2 09:00  09:10     09:20    20      lost   Sun 2 21:00 (12 h)
    L3   c1      whatsapp Mon 3 10:00  10:10     10:02    2       won    Wed 5 10:00 (48 h) ₪500
    L4   c3      whatsapp Wed 5 00:30  08:30     -        -       new    (in UTC: Tue 4 22:30)
    L5   c4      web      Thu 6 12:00  12:30     12:10    10      won    Thu 6 18:00 (6 h), no ₪
    L6   c5      web      Thu 6 13:00  none      13:30    30      contacted
    L12  c6      sms      Fri 7 09:00  09:10     09:08    8       won    Fri 7 11:00 (2 h) ₪250
    L7   c3      email    Sat 8 23:59:59 Sun 9 10:00 -    -       lost   Sun 9 08:00 (8 h 0 m 1 s)
    L8   c5      phone    Sat 8 10:00  Wed 12    -        -       new
    outside: L9 (c2, Sat 1 23:59:59, won ₪9999), L10 (c5, Sun 9 00:00:00), L11 (c4, 1 Feb, won
    ₪300), L13 (c6, Sun 9 12:00, won ₪700).
    """
    w = Writer(session, a)
    c1, c2, c3, c4, c5, c6 = [
        await w.contact(name) for name in ("דנה", "יוסי", "רון", "מאיה", "גל", "שירה")
    ]
    l1 = w.lead(
        c1,
        "phone",
        local(2, 8),
        respond_by=local(2, 8, 10),
        answered=local(2, 8, 5),
        covered=5.0,
        stage="won",
        closed=local(3, 8),
        value="1000.00",
    )
    l2 = w.lead(
        c2,
        "phone",
        local(2, 9),
        respond_by=local(2, 9, 10),
        answered=local(2, 9, 20),
        covered=20.0,
        stage="lost",
        closed=local(2, 21),
    )
    l3 = w.lead(
        c1,
        "whatsapp",
        local(3, 10),
        respond_by=local(3, 10, 10),
        answered=local(3, 10, 2),
        covered=2.0,
        stage="won",
        closed=local(5, 10),
        value="500.00",
    )
    w.lead(c3, "whatsapp", local(5, 0, 30), respond_by=local(5, 8, 30))
    l5 = w.lead(
        c4,
        "web",
        local(6, 12),
        respond_by=local(6, 12, 30),
        answered=local(6, 12, 10),
        covered=10.0,
        stage="won",
        closed=local(6, 18),
    )
    l6 = w.lead(c5, "web", local(6, 13), answered=local(6, 13, 30), covered=30.0, stage="contacted")
    l12 = w.lead(
        c6,
        "sms",
        local(7, 9),
        respond_by=local(7, 9, 10),
        answered=local(7, 9, 8),
        covered=8.0,
        stage="won",
        closed=local(7, 11),
        value="250.00",
    )
    w.lead(
        c3, "email", local(8, 23, 59, 59), respond_by=local(9, 10), stage="lost", closed=local(9, 8)
    )
    w.lead(c5, "phone", local(8, 10), respond_by=local(12, 10))
    l9 = w.lead(c2, "phone", local(1, 23, 59, 59), stage="won", closed=local(2, 1), value="9999")
    l10 = w.lead(c5, "phone", local(9, 0))
    w.lead(
        c4, "phone", local(1, 10, month=2), stage="won", closed=local(2, 10, month=2), value="300"
    )
    w.lead(c6, "phone", local(9, 12), stage="won", closed=local(9, 13), value="700")
    await session.flush()
    # Handled in the week: I1, I2, I3, I7. Not: the incoming message, the note, the draft, and
    # the calls just before and after the week.
    w.interaction(l1, "inbound_call", local(2, 8, 5), by=secretary)  # I1
    w.interaction(l2, "outbound_call", local(2, 9, 20), by=secretary)  # I2
    w.interaction(l3, "whatsapp", local(3, 10, 2), by=secretary, direction="out")  # I3
    w.interaction(l3, "whatsapp", local(3, 10), by=None, direction="in")
    w.interaction(l5, "note", local(6, 12, 10), by=secretary)
    w.interaction(l6, "inbound_call", local(6, 13, 30), by=secretary, status="draft")
    w.interaction(l12, "sms", local(7, 9, 8), by=secretary, direction="out")  # I7
    w.interaction(l10, "inbound_call", local(9, 0), by=secretary)
    w.interaction(l9, "inbound_call", local(1, 23, 59, 59), by=secretary)
    # Open now (Mon 10 March 12:00): T1 48 h old and overdue, T2 6 h old; a done and a
    # cancelled one do not count.
    w.task(owner, NOW - timedelta(hours=48), NOW - timedelta(hours=24))  # T1
    w.task(owner, NOW - timedelta(hours=6), NOW + timedelta(days=1))  # T2
    w.task(owner, local(1, 10), local(2, 10), status="done")
    w.task(owner, local(1, 10), local(2, 10), status="cancelled")
    await write_calls(w, secretary)
    await session.flush()


async def write_calls(w: Writer, secretary: User) -> None:
    """Business A's calls through the SIP server in the week (seconds after arrival):

    call arrived       rang  answered  ended  state      why                 talk
    K1   Sun 2 08:00   2     12        192    ended      caller_hangup       180
    K2   Mon 3 10:00   30    40        100    ended      agent_hangup        60   (waited 30 s)
    K3   Wed 5 09:00   -     -         50     abandoned  cancelled in the queue
    K4   Thu 6 11:00   1     -         9      abandoned  cancelled while ringing her
    K5   Fri 7 12:00   1     -         120    missed     overflow (rang her, nobody answered)
    K6   Sat 8 14:00   1     5         -      answered   (still talking)
    K7   Sat 8 23:00   -     -         -      waiting    (in the queue now)
    K8   Sun 2 11:00   an outgoing call (not counted); K9 Sat 1 23:59:59 and K10 Sun 9 00:00
    answered, outside the week; K11 Tue 4 rang her and failed (the SIP server: missed).
    """
    s = secretary
    w.call("k1", "ended", local(2, 8), ringing=2, answered=12, ended=192, by=s, rung=(s,),
           reason="caller_hangup")  # fmt: skip
    w.call("k2", "ended", local(3, 10), ringing=30, answered=40, ended=100, by=s, rung=(s,),
           reason="agent_hangup")  # fmt: skip
    w.call("k3", "abandoned", local(5, 9), ended=50, reason="cancelled")
    w.call("k4", "abandoned", local(6, 11), ringing=1, ended=9, reason="cancelled", rung=(s,))
    w.call("k5", "missed", local(7, 12), ringing=1, ended=120, reason="overflow", rung=(s,))
    w.call("k6", "answered", local(8, 14), ringing=1, answered=5, by=s, rung=(s,))
    w.call("k7", "waiting", local(8, 23))
    w.call("k8", "ended", local(2, 11), ringing=0, answered=9, ended=69, by=s, direction="out")
    w.call("k9", "ended", local(1, 23, 59, 59), ringing=1, answered=3, ended=60, by=s, rung=(s,))
    w.call("k10", "ended", local(9, 0), ringing=1, answered=3, ended=60, by=s, rung=(s,))
    w.call("k11", "abandoned", local(4, 16), ringing=1, ended=5, reason="failed", rung=(s,))


async def write_b(session: AsyncSession, b: Business, secretary: User, owner: User) -> None:
    """Business B's week: one big won deal, a call and a task, none of which is A's."""
    w = Writer(session, b)
    customer = await w.contact("לקוח של ב")
    lead = w.lead(
        customer,
        "walk-in",
        local(4, 12),
        answered=local(4, 12, 1),
        covered=1.0,
        stage="won",
        closed=local(4, 13),
        value="99999",
    )
    await session.flush()
    w.interaction(lead, "inbound_call", local(4, 12, 1), by=secretary)
    w.task(owner, NOW - timedelta(hours=100), NOW + timedelta(hours=1))


# Business A's numbers for the week, worked out from the table above:
EXPECTED: dict[str, Any] = {
    "leads": 9,  # L1–L8 and L12
    "handled": 4,  # I1, I2, I3, I7
    "answered": 6,  # L1, L2, L3, L5, L6, L12
    # covered minutes sorted: 2, 5, 8, 10, 20, 30; nearest rank ⌈.5·6⌉ = 3 → 8, ⌈.9·6⌉ = 6 → 30
    "response_p50": 8.0,
    "response_p90": 30.0,
    "sla_met": 4,  # L1, L3, L5, L12 (L6 had no promise)
    "sla_missed": 2,  # L2 late; L4 never answered. L7 was closed before its time, L8 still runs
    "sla_share": 66.7,  # 4 / 6
    "won": 4,  # L1, L3, L5, L12
    "lost": 2,  # L2, L7
    "conversion": 44.4,  # 4 / 9
    "closed": 6,
    # (86400 + 43200 + 172800 + 21600 + 28801 + 7200) s / 6 = 60000.17 s = 16.67 h
    "hours_to_close": 16.7,
    "won_with_value": 3,  # L5 has none
    "deal_value": Decimal("583.33"),  # (1000 + 500 + 250) / 3
    "customers": 3,  # c1, c4, c6
    "repeat_customers": 2,  # c1 (L1, L3), c4 (L5 and L11 before); c6's L13 came after the week
    "repeat_rate": 66.7,  # 2 / 3
    "open_tasks": 2,
    "overdue_tasks": 1,
    "task_age_hours": 27.0,  # (48 + 6) / 2
    "oldest_task_hours": 48.0,
    # The calls (write_calls): K1–K7 and K11 came in; over or answered: all but K7.
    "calls": 8,
    "calls_answered": 3,  # K1, K2, K6
    "calls_abandoned": 2,  # K3 in the queue, K4 while ringing
    "calls_missed": 2,  # K5 overflowed, K11 failed
    "calls_rejected": 0,  # nobody declined a ring (tests/voice/test_rejected_calls.py)
    "answer_rate": 42.9,  # 3 / 7
    "abandonment_rate": 28.6,  # 2 / 7
    "average_speed_of_answer": 19.0,  # (12 + 40 + 5) / 3
    "average_talk": 120.0,  # (180 + 60) / 2; K6 still talks
    "service_level": 28.6,  # K1 (12 s) and K6 (5 s) within 20 s, of 7
}
BY_CHANNEL = {"phone": 3, "whatsapp": 2, "sms": 1, "email": 1, "web": 2, "walk-in": 0}
BY_DAY = {
    "2025-03-02": 2,  # L1, L2
    "2025-03-03": 1,  # L3
    "2025-03-04": 0,  # (L4 arrived on the 4th in UTC, but after midnight in Jerusalem)
    "2025-03-05": 1,  # L4
    "2025-03-06": 2,  # L5, L6
    "2025-03-07": 1,  # L12
    "2025-03-08": 2,  # L7 (its last second), L8
}


async def agency_with_a_week(db: Database) -> AgencyWithAWeek:
    async with db.transaction() as session:
        agency = await make_agency(
            session,
            a={"name": "מרפאת לוי"},
            b={"name": "Cohen Plumbing"},
            secretary={"name": "נועה"},
            owner_a={"name": "אבי לוי", "locale": "he"},
            owner_b={"name": "Ben Cohen", "locale": "en"},
        )
        admin = await make_user(session, "admin")
        await write_week(session, agency.a, agency.secretary, agency.owner_a)
        await write_b(session, agency.b, agency.secretary, agency.owner_b)
    return AgencyWithAWeek(**vars(agency), admin=admin)


def as_numbers(found: kpis.Kpis) -> dict[str, Any]:
    return {metric.key: metric.value for metric in kpis.metrics(found)}


# --- the numbers --------------------------------------------------------------------------------


async def test_every_number_matches_the_hand_computed_fixture(db: Database) -> None:
    agency = await agency_with_a_week(db)
    async with db.transaction() as session:
        c = await make_business(session, name="New York", timezone="America/New_York")
        w = Writer(session, c)
        someone = await w.contact("someone")
        w.lead(someone, "phone", datetime(2025, 3, 8, 23, 30, tzinfo=NEW_YORK))  # its 8th
        w.lead(someone, "phone", datetime(2025, 3, 2, 0, 30, tzinfo=NEW_YORK))  # its 2nd
        w.lead(someone, "phone", datetime(2025, 3, 1, 23, 30, tzinfo=NEW_YORK))  # before
    async with db.transaction(write=False) as session:
        with counting(db) as statements:
            found = await compute_kpis(session, [agency.a, agency.b, c], WEEK, now=NOW)
    assert len(statements) == 6  # whatever the number of businesses and zones
    a = found[agency.a.id]
    assert as_numbers(a) == EXPECTED
    assert a.by_channel == BY_CHANNEL
    assert {day.isoformat(): count for day, count in a.by_day} == BY_DAY
    assert [day for day, _count in a.by_day] == WEEK.dates()
    b = found[agency.b.id]
    assert (b.leads, b.won, b.deal_value, b.handled, b.open_tasks) == (
        1,
        1,
        Decimal("99999.00"),
        1,
        1,
    )
    assert b.by_channel["walk-in"] == 1
    # New York's week is its own: 2–8 March on its clock (UTC−5).
    assert found[c.id].leads == 2
    assert {d.day: n for d, n in found[c.id].by_day if n} == {2: 1, 8: 1}
    # Each business alone gives the same numbers.
    async with db.transaction(write=False) as session:
        alone = await compute_kpis(session, [agency.a], WEEK, now=NOW)
    assert alone[agency.a.id] == a


async def test_an_empty_period_has_zeros_and_no_averages(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        found = (await compute_kpis(session, [business], WEEK, now=NOW))[business.id]
    assert (
        found.leads == 0
        and found.open_tasks == 0
        and found.by_channel == dict.fromkeys(BY_CHANNEL, 0)
    )
    assert found.by_day == [(day, 0) for day in WEEK.dates()]
    for key in (
        "response_p50",
        "sla_share",
        "conversion",
        "hours_to_close",
        "deal_value",
        "repeat_rate",
        "task_age_hours",
    ):
        assert getattr(found, key) is None, key


async def test_days_follow_the_business_s_clock_across_a_clock_change(db: Database) -> None:
    """Jerusalem moves from UTC+2 to UTC+3 at 02:00 on Friday 28 March 2025 (00:00 UTC)."""
    period = Period(date(2025, 3, 27), date(2025, 3, 29))
    start, end = period.bounds(JERUSALEM)
    assert periods.offset_segments(JERUSALEM, start, end) == [
        (datetime(2025, 3, 26, 22, 0, tzinfo=UTC), 7200),
        (datetime(2025, 3, 28, 0, 0, tzinfo=UTC), 10800),
    ]
    async with db.transaction() as session:
        business = await make_business(session)
        w = Writer(session, business)
        someone = await w.contact("someone")
        for moment in (
            datetime(2025, 3, 27, 21, 59, 59, tzinfo=UTC),  # 23:59:59 on the 27th
            datetime(2025, 3, 27, 22, 0, tzinfo=UTC),  # midnight: the 28th
            datetime(2025, 3, 28, 20, 59, 59, tzinfo=UTC),  # 23:59:59 (UTC+3) on the 28th
            datetime(2025, 3, 28, 21, 0, tzinfo=UTC),  # midnight: the 29th (UTC+2 would say 28th)
            datetime(2025, 3, 29, 20, 59, 59, tzinfo=UTC),  # the period's last second
            datetime(2025, 3, 29, 21, 0, tzinfo=UTC),  # after it
            datetime(2025, 3, 26, 21, 59, 59, tzinfo=UTC),  # before it
        ):
            w.lead(someone, "phone", moment)
    async with db.transaction(write=False) as session:
        found = (await compute_kpis(session, [business], period, now=NOW))[business.id]
    assert found.by_day == [(date(2025, 3, 27), 1), (date(2025, 3, 28), 2), (date(2025, 3, 29), 2)]


def test_a_period_that_is_not_valid_is_refused_with_a_clear_message() -> None:
    today = date(2025, 3, 10)
    assert periods.parse_period("2025-03-02", "2025-03-08", today=today) == WEEK
    assert periods.parse_period(None, None, today=today) == Period(date(2025, 2, 9), today)
    assert periods.parse_period("2024-01-01", "2025-12-31", today=today).days == 731
    for raw_from, raw_to, field, message in (
        ("2025-03-08", "2025-03-02", "to", "The period ends before it starts."),
        ("2023-01-01", "2025-01-01", "to", "A period can be at most two years (731 days)."),
        ("2025-3-2", "2025-03-08", "from", "Write the day as YYYY-MM-DD."),
        ("2025-03-02", "2025-02-30", "to", "Write the day as YYYY-MM-DD."),
        ("2025-03-02", "", "to", "Choose the last day of the period."),
        ("", "2025-03-02", "from", "Choose the first day of the period."),
        ("0001-01-01", "0001-01-02", "from", "Choose days between 2000-01-01 and 2100-12-31."),
    ):
        with pytest.raises(Invalid) as refused:
            periods.parse_period(raw_from, raw_to, today=today)
        assert (refused.value.field, refused.value.message) == (field, message)


def test_the_presets_follow_the_israeli_week() -> None:
    wednesday = date(2025, 3, 5)
    assert periods.preset("week", wednesday) == WEEK  # Sunday to Saturday
    assert periods.preset("week", date(2025, 3, 2)) == WEEK
    assert periods.preset("week", date(2025, 3, 8)) == WEEK
    assert periods.preset("last7", wednesday) == Period(date(2025, 2, 27), wednesday)
    assert periods.preset("last30", wednesday) == Period(date(2025, 2, 4), wednesday)
    assert periods.preset("month", date(2024, 2, 10)) == Period(date(2024, 2, 1), date(2024, 2, 29))


# --- the screen, the exports, the API ---------------------------------------------------------


@pytest.fixture
def settings(db: Database) -> Settings:
    return Settings(database_url=db.url, secret_key=SECRET, api_rate_per_token=0)


@pytest.fixture
async def owner_client(app: Any, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    app.state.clock = MovableClock(NOW)
    yield client


def screen_numbers(html: str) -> dict[str, str]:
    page = BeautifulSoup(html, "html.parser")
    return {
        str(cell["data-metric"]): str(cell["data-value"]) for cell in page.select("td[data-metric]")
    }


def typed(key: str, raw: Any) -> Any:
    """An exported value read back as the type the expectation has."""
    if raw in ("", None):
        return None
    expected = EXPECTED[key]
    if isinstance(expected, Decimal):
        return Decimal(str(raw)).quantize(Decimal("0.01"))
    return type(expected)(raw)


async def test_the_screen_the_exports_and_the_api_show_the_same_numbers(
    owner_client: httpx.AsyncClient, db: Database
) -> None:
    agency = await agency_with_a_week(db)
    await sign_in(owner_client, agency.owner_a.email)
    query = f"business={agency.a.id}&{QUERY}"

    page = await owner_client.get(f"/portal/kpis?{query}")
    assert page.status_code == 200
    shown = screen_numbers(page.text)
    assert {key: typed(key, value) for key, value in shown.items()} == EXPECTED
    soup = BeautifulSoup(page.text, "html.parser")
    assert {
        td["data-channel"]: int(td.text) for td in soup.select("td[data-channel]")
    } == BY_CHANNEL
    assert {td["data-day"]: int(td.text) for td in soup.select("td[data-day]")} == BY_DAY
    assert 'dir="rtl"' in page.text and "מרפאת לוי" in page.text
    assert "פניות לפי ערוץ" in page.text  # the owner reads Hebrew
    chart = soup.select_one("script#kpi-chart")
    assert chart is not None and chart["type"] == "application/json"
    assert '"values": [2, 1, 0, 1, 2, 1, 2]' in chart.text
    assert soup.select_one('script[src="/static/vendor/chart-4.6.1.umd.js"]') is not None
    assert (await owner_client.get("/static/vendor/chart-4.6.1.umd.js")).status_code == 200
    assert (await owner_client.get("/static/kpis.js")).status_code == 200

    exported = await owner_client.get(f"/portal/kpis.csv?{query}")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert {
        r["key"]: typed(r["key"], r["value"]) for r in rows if r["section"] == "kpi"
    } == EXPECTED
    assert {r["key"]: r["value"] for r in rows if r["section"] == "kpi"} == shown
    assert {r["key"]: int(r["value"]) for r in rows if r["section"] == "channel"} == BY_CHANNEL
    assert {r["key"]: int(r["value"]) for r in rows if r["section"] == "day"} == BY_DAY
    period = {r["key"]: r["value"] for r in rows if r["section"] == "period"}
    assert period == {
        "business": "מרפאת לוי",
        "from": "2025-03-02",
        "to": "2025-03-08",
        "timezone": "Asia/Jerusalem",
    }

    workbook = await owner_client.get(f"/portal/kpis.xlsx?{query}")
    assert workbook.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(workbook.content))
    summary, channels, days = book.worksheets
    assert summary.sheet_view.rightToLeft
    in_book = {row[2]: row[1] for row in summary.iter_rows(min_row=6, values_only=True)}
    no_surveys = {"survey_answers": 0, "survey_rating": None, "survey_recommend": None}
    assert {key: in_book.pop(key) for key in no_surveys} == no_surveys  # as on the screen
    assert {key: typed(key, value) for key, value in in_book.items()} == EXPECTED
    assert {row[2]: row[1] for row in channels.iter_rows(min_row=2, values_only=True)} == BY_CHANNEL
    assert {
        row[0].date().isoformat(): row[1] for row in days.iter_rows(min_row=2, values_only=True)
    } == BY_DAY

    async with db.transaction() as session:
        token = await api_tokens.create_token_for_email(
            session, agency.owner_a.email, "kpis", now=NOW
        )
    answer = await owner_client.get(
        f"/api/v1/kpis?{query}", headers={"Authorization": f"Bearer {token.secret}"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {key: typed(key, body[key]) for key in EXPECTED} == EXPECTED
    assert {key: body[key] for key in no_surveys} == no_surveys
    assert body["leads_by_channel"] == BY_CHANNEL
    assert {d["day"]: d["leads"] for d in body["leads_by_day"]} == BY_DAY
    assert (body["first_day"], body["last_day"], body["timezone"]) == (
        "2025-03-02",
        "2025-03-08",
        "Asia/Jerusalem",
    )


async def test_the_english_screen_and_the_presets(
    owner_client: httpx.AsyncClient, db: Database
) -> None:
    agency = await agency_with_a_week(db)
    await sign_in(owner_client, agency.owner_b.email)
    page = await owner_client.get("/portal/kpis", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "html.parser")
    assert 'lang="en"' in page.text and 'dir="ltr"' in page.text  # his language
    assert "Leads by channel" in page.text
    # With no business named, his own; with no period, the last 30 days of his clock.
    assert "Cohen Plumbing" in page.text
    start = soup.select_one('input[name="from"]')
    assert start is not None and start["value"] == "2025-02-09"
    links = [a["href"] for a in soup.select(".presets a")]
    assert f"/portal/kpis?business={agency.b.id}&from=2025-03-09&to=2025-03-15" in links  # week
    assert f"/portal/kpis?business={agency.b.id}&from=2025-03-01&to=2025-03-31" in links  # month


async def test_the_calls_on_the_portal_and_the_agency_s_kpis_in_hebrew_and_english(
    owner_client: httpx.AsyncClient, db: Database
) -> None:
    """The service level counts within the business's own N; the call numbers read in the
    owner's Hebrew on his portal and in the admin's English on the agency's KPIs page."""
    agency = await agency_with_a_week(db)
    async with db.transaction() as session:
        session.add(CallSettings(business_id=agency.a.id, service_level_seconds=45))
        await session.execute(update(User).where(User.id == agency.admin.id).values(locale="en"))
    async with db.transaction(write=False) as session:
        found = (await compute_kpis(session, [agency.a], WEEK, now=NOW))[agency.a.id]
    assert (found.service_level_seconds, found.service_level) == (45, 42.9)  # K2 (40 s) too
    assert as_numbers(found) == {**EXPECTED, "service_level": 42.9}

    await sign_in(owner_client, agency.owner_a.email)
    page = await owner_client.get(f"/portal/kpis?business={agency.a.id}&{QUERY}")
    assert page.status_code == 200
    shown = screen_numbers(page.text)
    assert (shown["answer_rate"], shown["service_level"]) == ("42.9", "42.9")
    text = BeautifulSoup(page.text, "html.parser").get_text(" ")
    for words in (
        "רמת שירות (מענה תוך 45 שנ׳)",
        "שיעור מענה",
        "שיעור נטישה",
        "זמן מענה ממוצע",
        "19 שנ׳",
        "120 שנ׳",
        "שיחות שהמתקשר ניתק לפני מענה",
    ):
        assert words in text, words

    owner_client.cookies.clear()
    await sign_in(owner_client, agency.admin.email)
    page = await owner_client.get(f"/portal/kpis?business={agency.a.id}&{QUERY}")
    assert page.status_code == 200 and 'lang="en"' in page.text
    text = BeautifulSoup(page.text, "html.parser").get_text(" ")
    for words in (
        "Service level (answered within 45 s)",
        "Answer rate",
        "Abandonment rate",
        "Average speed of answer",
        "19 s",
        "120 s",
        "Calls abandoned by the caller",
        "28.6%",
    ):
        assert words in text, words
    exported = await owner_client.get(f"/portal/kpis.csv?business={agency.a.id}&{QUERY}")
    rows = {r["key"]: r for r in csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig")))}
    assert rows["service_level"]["label"] == "Service level (answered within 45 s)"
    assert rows["service_level"]["value"] == "42.9"


async def test_a_period_that_is_not_valid_is_422_everywhere_and_nothing_is_computed(
    owner_client: httpx.AsyncClient, db: Database
) -> None:
    agency = await agency_with_a_week(db)
    await sign_in(owner_client, agency.owner_a.email)
    backwards = f"business={agency.a.id}&from=2025-03-08&to=2025-03-02"
    with counting(db) as statements:
        page = await owner_client.get(f"/portal/kpis?{backwards}")
    assert page.status_code == 422
    assert "התקופה מסתיימת לפני שהיא מתחילה" in page.text  # "The period ends before it starts."
    assert not [sql for sql in statements if "FROM leads" in sql or "FROM tasks" in sql]
    assert "data-metric" not in page.text
    for export in ("csv", "xlsx"):
        refused = await owner_client.get(f"/portal/kpis.{export}?{backwards}")
        assert refused.status_code == 422
    too_long = f"business={agency.a.id}&from=2020-01-01&to=2025-01-01"
    assert (await owner_client.get(f"/portal/kpis?{too_long}")).status_code == 422
    async with db.transaction() as session:
        token = await api_tokens.create_token_for_email(
            session, agency.owner_a.email, "kpis", now=NOW
        )
    headers = {"Authorization": f"Bearer {token.secret}"}
    answer = await owner_client.get(f"/api/v1/kpis?{backwards}", headers=headers)
    assert answer.status_code == 422
    assert answer.json() == {"error": "The period ends before it starts.", "field": "to"}
    for bad in ("from=2025-3-2&to=2025-03-08", "from=2025-03-02", "business=nope"):
        answer = await owner_client.get(
            f"/api/v1/kpis?business={agency.a.id}&{bad}", headers=headers
        )
        assert answer.status_code == 422, bad


async def test_an_owner_never_sees_another_business_s_numbers(
    owner_client: httpx.AsyncClient, db: Database
) -> None:
    agency = await agency_with_a_week(db)
    await sign_in(owner_client, agency.owner_a.email)
    other = f"business={agency.b.id}&{QUERY}"
    for path in ("/portal/kpis", "/portal/kpis.csv", "/portal/kpis.xlsx"):
        refused = await owner_client.get(f"{path}?{other}")
        assert refused.status_code == 404, path
        assert "Cohen" not in refused.text
        assert (
            await owner_client.get(f"{path}?business={uuid.uuid4()}&{QUERY}")
        ).status_code == 404
    # His own page offers only his own business.
    page = await owner_client.get("/portal/kpis")
    assert "Cohen Plumbing" not in page.text and str(agency.b.id) not in page.text
    async with db.transaction() as session:
        token = await api_tokens.create_token_for_email(
            session, agency.owner_a.email, "kpis", now=NOW
        )
    answer = await owner_client.get(
        f"/api/v1/kpis?{other}", headers={"Authorization": f"Bearer {token.secret}"}
    )
    assert answer.status_code == 404
    assert "99999" not in answer.text


async def test_the_agency_sees_each_business_and_a_secretary_none(
    owner_client: httpx.AsyncClient, db: Database
) -> None:
    agency = await agency_with_a_week(db)
    await sign_in(owner_client, agency.admin.email)
    page = await owner_client.get(f"/portal/kpis?business={agency.b.id}&{QUERY}")
    assert page.status_code == 200
    assert screen_numbers(page.text)["deal_value"] == "99999.00"
    assert f'value="{agency.a.id}"' in page.text  # the admin chooses among every business
    overview = await owner_client.get("/agency")
    assert f"/portal/kpis?business={agency.a.id}" in overview.text
    owner_client.cookies.clear()
    await sign_in(owner_client, agency.secretary.email)
    assert (await owner_client.get(f"/portal/kpis?business={agency.a.id}")).status_code == 404
    async with db.transaction() as session:
        newcomer = await make_user(session, "owner")
    owner_client.cookies.clear()
    await sign_in(owner_client, newcomer.email)
    page = await owner_client.get("/portal/kpis")
    assert page.status_code == 200 and "data-metric" not in page.text


# --- digests ------------------------------------------------------------------------------------


async def send_all(db: Database, smtp: FakeSmtp, now: datetime) -> None:
    senders = Senders(
        Settings(
            database_url=db.url,
            secret_key=SECRET,
            smtp_url=smtp.url(),
            allow_private_provider_urls=True,
        )
    )
    try:
        await send_due_notifications(db, senders, now=now)
    finally:
        await senders.aclose()


def jobs_ctx(db: Database) -> dict[str, Any]:
    return {
        "db": db,
        "settings": Settings(
            database_url=db.url, secret_key=SECRET, public_url="https://console.example"
        ),
    }


async def test_the_daily_digest_goes_once_to_each_owner_in_his_language(
    db: Database, smtp: FakeSmtp
) -> None:
    agency = await agency_with_a_week(db)
    async with db.transaction() as session:
        await make_business(session, name="בלי בעלים")  # nobody to tell
        nobody = await make_business(session, name="Closed down")
        await make_user(session, "owner", nobody, name="Former")
        nobody.active = False
    # Sunday 9 March, 07:05 in Jerusalem: the digest of Saturday the 8th (and the weekly one).
    # Monday 10 March, 07:05: the digest of Sunday the 9th only.
    monday = local(10, 7, 5)
    ctx = jobs_ctx(db)
    # Two workers at once (on PostgreSQL really at once), then the next run: one digest each.
    first, twin = await asyncio.gather(send_digests(ctx, now=monday), send_digests(ctx, now=monday))
    again = await send_digests(ctx, now=monday + timedelta(minutes=5))
    assert (first.queued + twin.queued, again.queued, again.already) == (2, 0, 2)
    await send_all(db, smtp, monday)
    mails = {mail.envelope_to[0]: mail for mail in smtp.received}
    assert set(mails) == {agency.owner_a.email, agency.owner_b.email}
    hebrew, english = mails[agency.owner_a.email], mails[agency.owner_b.email]
    assert "מרפאת לוי" in hebrew.subject and "אתמול" in hebrew.subject
    assert "שלום אבי לוי" in hebrew.text
    assert "Cohen Plumbing: yesterday" in english.subject
    assert "Hello Ben Cohen," in english.text
    assert "Open tasks now: 1" in english.text
    # A's calls of the day (K10, answered 3 s after it arrived); B had none, so no call lines.
    assert "שיחות נכנסות: 1" in hebrew.text and "שיעור מענה: 100%" in hebrew.text
    assert "רמת שירות (מענה תוך 20 שנ׳): 100%" in hebrew.text
    assert "Answer rate" not in english.text and "Service level" not in english.text
    # Never another business's data: B's mail knows nothing of A, and A's nothing of B.
    assert "דנה" not in english.text and "מרפאת" not in english.text
    assert "Cohen" not in hebrew.text and "99,999" not in hebrew.text
    assert (
        f"https://console.example/portal/kpis?business={agency.b.id}&from=2025-03-09&to=2025-03-09"
        in english.text
    )
    async with db.transaction(write=False) as session:
        keys = set(await session.scalars(select(Notification.idempotency_key)))
    assert keys == {
        f"digest:daily:{agency.a.id}:{agency.owner_a.id}:2025-03-09",
        f"digest:daily:{agency.b.id}:{agency.owner_b.id}:2025-03-09",
    }


async def test_the_weekly_digest_comes_on_sunday_with_the_week_s_calls(
    db: Database, smtp: FakeSmtp
) -> None:
    agency = await agency_with_a_week(db)
    sunday = local(9, 7, 0)
    ctx = jobs_ctx(db)
    assert (await send_digests(ctx, now=sunday - timedelta(minutes=1))).queued == 0  # 06:59
    assert (await send_digests(ctx, now=sunday)).queued == 4  # daily + weekly, each owner
    assert (await send_digests(ctx, now=sunday)).queued == 0
    await send_all(db, smtp, sunday)
    to_a = sorted(
        (mail for mail in smtp.received if mail.envelope_to == [agency.owner_a.email]),
        key=lambda m: m.subject,
    )
    assert len(to_a) == 2
    weekly = next(mail for mail in to_a if "שבוע שעבר" in mail.subject)
    daily = next(mail for mail in to_a if "אתמול" in mail.subject)
    # The week: its four handled calls and messages, newest first, and the numbers.
    assert weekly.text.count("נועה") == 4
    assert "פניות: 9" in weekly.text
    assert "66.7%" in weekly.text and "₪" in weekly.text
    # Saturday the 8th: L7 and L8 arrived, nothing was handled.
    assert "פניות: 2" in daily.text
    # Later in the morning nothing new; at noon it is too late for a digest not yet sent.
    assert (await send_digests(ctx, now=local(9, 11, 55))).queued == 0
    async with db.transaction() as session:
        await session.execute(delete(Notification))
    assert (await send_digests(ctx, now=local(9, 12, 0))).queued == 0


async def test_owners_without_a_usable_address_are_skipped(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        owner = await make_user(session, "owner", business)
        owner.email = "not-an-address"
    report = await send_digests(jobs_ctx(db), now=local(10, 8))
    assert report.queued == 0


def test_the_digest_job_is_scheduled() -> None:
    assert any(job.function is send_digests for job in PERIODIC)
