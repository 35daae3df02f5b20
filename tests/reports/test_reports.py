"""The agency's reports (per secretary, per business and month) against a fixture worked out by
hand, their CSV and XLSX equal to the screen, the period's validation and admins only; the
supervisor's wallboard: its counts, and a new lead making it refresh over the live socket."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pytest
from bs4 import BeautifulSoup, Tag
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import Database
from console.live.hub import Connection
from console.reports import reports
from console.screens.wallboard import wallboard
from models import Alert, Business, Contact, Interaction, InteractionRating, Lead, User
from models.voice import Call
from tests.factories import MovableClock, counting, make_business, make_user, sign_in

JERUSALEM = ZoneInfo("Asia/Jerusalem")
NOW = datetime(2025, 5, 6, 9, 0, tzinfo=UTC)
QUERY = "from=2025-03-01&to=2025-04-30"


def one(tag: Tag, selector: str) -> Tag:
    """The element under `tag` that `selector` names, which the page must have."""
    found = tag.select_one(selector)
    assert found is not None, selector
    return found


def local(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A moment of 2025 on Jerusalem's clock (UTC+2 until 28 March, then UTC+3), in UTC."""
    return datetime(2025, month, day, hour, minute, second, tzinfo=JERUSALEM).astimezone(UTC)


@dataclass
class Agency:
    a: Business
    b: Business
    noa: User
    dana: User
    tal: User
    owner: User
    admin: User


class Writer:
    def __init__(self, session: AsyncSession, business: Business) -> None:
        self.session = session
        self.business = business

    async def lead(
        self,
        created: datetime,
        *,
        by: User | None = None,
        answered: datetime | None = None,
        covered: float | None = None,
        closed: datetime | None = None,
        holder: User | None = None,
    ) -> Lead:
        contact = Contact(business_id=self.business.id, name=f"לקוח {created:%d%H%M%S}")
        self.session.add(contact)
        await self.session.flush()
        lead = Lead(
            business_id=self.business.id,
            contact_id=contact.id,
            channel="phone",
            created_at=created,
            queue_at=created,
            first_response_at=answered,
            first_response_by_id=by.id if by else None,
            first_response_covered_minutes=covered,
            closed_at=closed,
            claimed_by_id=holder.id if holder else None,
            claimed_at=created if holder else None,
        )
        self.session.add(lead)
        await self.session.flush()
        return lead

    async def touch(
        self,
        lead: Lead,
        kind: str,
        started: datetime,
        seconds: int | None = None,
        *,
        by: User | None,
        direction: str | None = None,
        status: str = "done",
        stars: int | None = None,
    ) -> Interaction:
        interaction = Interaction(
            business_id=self.business.id,
            lead_id=lead.id,
            contact_id=lead.contact_id,
            user_id=by.id if by else None,
            kind=kind,
            status=status,
            started_at=started,
            ended_at=started + timedelta(seconds=seconds) if seconds is not None else None,
            direction=direction,
        )
        self.session.add(interaction)
        await self.session.flush()
        if stars is not None:
            self.session.add(
                InteractionRating(
                    business_id=self.business.id,
                    interaction_id=interaction.id,
                    stars=stars,
                    rated_at=started + timedelta(days=1),
                )
            )
        return interaction


async def write_phone_calls(wa: Writer, wb: Writer, noa: User, dana: User, tal: User) -> None:
    """The SIP server's record (seconds after arrival):

    call  business arrived (local)     rang          answered by, at  ended  talk
    P1    A        Mon 10 Mar 09:00    Dana, Noa     Noa, 15          315    300
    P2    A        Thu 20 Mar 10:00    Noa           Noa, 5           125    120
    P3    A        Tue 1 Apr 07:59     Noa, Dana     Dana, 10         -      (still talking)
    P4    B        Mon 31 Mar 23:59    Dana          - (the caller hung up: abandoned)
    P5    A        Thu 1 May 00:05     Noa           Noa, 3           63     (after the period)
    P6    A        Fri 28 Feb 23:00    Tal           - (missed, before the period)
    P7    A        Tue 1 Apr 09:00     Dana's call out, answered (not an incoming call)
    """
    calls = [
        (wa, "p1", local(3, 10, 9), (dana, noa), noa, 15, 315, "ended"),
        (wa, "p2", local(3, 20, 10), (noa,), noa, 5, 125, "ended"),
        (wa, "p3", local(4, 1, 7, 59), (noa, dana), dana, 10, None, "answered"),
        (wb, "p4", local(3, 31, 23, 59), (dana,), None, None, 8, "abandoned"),
        (wa, "p5", local(5, 1, 0, 5), (noa,), noa, 3, 63, "ended"),
        (wa, "p6", local(2, 28, 23), (tal,), None, None, 120, "missed"),
    ]
    for writer, name, arrived, rung, by, answered, ended, state in calls:
        writer.session.add(
            Call(
                business_id=writer.business.id,
                sip_call_id=name,
                direction="in",
                state=state,
                answered_by_id=by.id if by else None,
                arrived_at=arrived,
                ringing_at=arrived + timedelta(seconds=1),
                answered_at=arrived + timedelta(seconds=answered) if answered else None,
                ended_at=arrived + timedelta(seconds=ended) if ended else None,
                ringing=[],
                rung=[user.id.hex for user in rung],
            )
        )
    wa.session.add(
        Call(
            business_id=wa.business.id,
            sip_call_id="p7",
            direction="out",
            state="ended",
            answered_by_id=dana.id,
            arrived_at=local(4, 1, 9),
            answered_at=local(4, 1, 9, 1),
            ended_at=local(4, 1, 9, 5),
            ringing=[],
            rung=[],
        )
    )
    await wa.session.flush()


async def make_agency(db: Database) -> Agency:
    """March and April 2025 (Jerusalem; the clocks go forward on 28 March).

    lead      arrived (local)   first answered by, when          covered minutes
    A1        Mon 10 Mar 09:00  Noa, 09:05                       5
    A2        Thu 20 Mar 10:00  Noa, 10:10                       15
    A3        Tue 1 Apr 00:30   Dana, 08:00  (UTC: 31 Mar 21:30) 30
    A4        Thu 27 Feb 10:00  Noa, Sun 2 Mar 08:00             40  (arrived before the period)
    B1        Mon 31 Mar 23:59  Dana, Tue 1 Apr 00:05            10

    touch  lead  kind            by    when (local)         length   rating
    I1     A1    inbound_call    Noa   10 Mar 09:05         300 s    5
    I2     A2    outbound_call   Noa   20 Mar 10:10         720 s    3
    I3     A2    whatsapp out    Noa   20 Mar 10:30         -
    I4     A1    note            Noa   10 Mar 09:20         -        (not handled)
    I5     A1    inbound_call    Noa   11 Mar 09:00, draft  -        (not finished)
    I6     A2    whatsapp in     -     20 Mar 10:25         -        (the contact's)
    I7     A3    inbound_call    Dana  1 Apr 08:00          240 s    4
    I8     A3    sms out         Dana  1 Apr 08:10          -
    I9     A4    inbound_call    Noa   2 Mar 08:00          120 s    2
    I10    A3    inbound_call in -     1 Apr 07:59          -        (the call arriving)
    I11    A1    inbound_call    Noa   1 May 00:10          60 s     1  (after the period)
    I12    B1    outbound_call   Dana  1 Apr 00:05          600 s
    I13    B1    email in        -     31 Mar 23:59:30      -
    Tal handled nothing.
    """
    async with db.transaction() as session:
        a = await make_business(session, name="Alpha Clinic")
        b = await make_business(session, name="=Beta Plumbing")  # a formula-looking name
        noa = await make_user(session, "secretary", a, b, name="Noa")
        dana = await make_user(session, "secretary", a, b, name="Dana")
        tal = await make_user(session, "secretary", a, name="Tal")
        owner = await make_user(session, "owner", a, name="Avi")
        admin = await make_user(session, "admin", name="Admin", locale="en")
        wa, wb = Writer(session, a), Writer(session, b)
        a1 = await wa.lead(local(3, 10, 9), by=noa, answered=local(3, 10, 9, 5), covered=5)
        a2 = await wa.lead(local(3, 20, 10), by=noa, answered=local(3, 20, 10, 10), covered=15)
        a3 = await wa.lead(local(4, 1, 0, 30), by=dana, answered=local(4, 1, 8), covered=30)
        a4 = await wa.lead(local(2, 27, 10), by=noa, answered=local(3, 2, 8), covered=40)
        b1 = await wb.lead(local(3, 31, 23, 59), by=dana, answered=local(4, 1, 0, 5), covered=10)
        await wa.touch(a1, "inbound_call", local(3, 10, 9, 5), 300, by=noa, stars=5)
        await wa.touch(a2, "outbound_call", local(3, 20, 10, 10), 720, by=noa, stars=3)
        await wa.touch(a2, "whatsapp", local(3, 20, 10, 30), by=noa, direction="out")
        await wa.touch(a1, "note", local(3, 10, 9, 20), by=noa)
        await wa.touch(a1, "inbound_call", local(3, 11, 9), by=noa, status="draft")
        await wa.touch(a2, "whatsapp", local(3, 20, 10, 25), by=None, direction="in")
        await wa.touch(a3, "inbound_call", local(4, 1, 8), 240, by=dana, stars=4)
        await wa.touch(a3, "sms", local(4, 1, 8, 10), by=dana, direction="out")
        await wa.touch(a4, "inbound_call", local(3, 2, 8), 120, by=noa, stars=2)
        await wa.touch(a3, "inbound_call", local(4, 1, 7, 59), by=None, direction="in")
        await wa.touch(a1, "inbound_call", local(5, 1, 0, 10), 60, by=noa, stars=1)
        await write_phone_calls(wa, wb, noa, dana, tal)
        await wb.touch(b1, "outbound_call", local(4, 1, 0, 5), 600, by=dana)
        await wb.touch(b1, "email", local(3, 31, 23, 59, 30), by=None, direction="in")
    return Agency(a, b, noa, dana, tal, owner, admin)


# Worked out from the table above.
SECRETARIES: dict[str, dict[str, Any]] = {
    "Dana": {
        "leads": 2,  # A3 (I7, I8), B1 (I12)
        "calls": 2,  # I7, I12
        "talk_minutes": 14.0,  # 240 + 600 = 840 s
        "handling_minutes": 7.0,  # 840 / 2 = 420 s
        # 10, 30: ⌈.5·2⌉ = 1 → 10, ⌈.9·2⌉ = 2 → 30
        "response_p50": 10.0,
        "response_p90": 30.0,
        "rating_average": 4.0,
        "ratings": 1,
        "phone_answered": 1,  # P3
        "phone_talk_seconds": None,  # P3 still talks
        "missed_rings": 2,  # P1 (Noa answered), P4 (abandoned); not her call out
        "declined_rings": 0,  # tests/voice/test_rejected_calls.py
    },
    "Noa": {
        "leads": 3,  # A1 (I1), A2 (I2, I3), A4 (I9); not the note, the draft or May's call
        "calls": 3,  # I1, I2, I9
        "talk_minutes": 19.0,  # 300 + 720 + 120 = 1140 s
        "handling_minutes": 6.3,  # 1140 / 3 = 380 s = 6.33 min
        # 5, 15, 40 (A4 arrived before the period, was answered in it): ranks 2 and 3
        "response_p50": 15.0,
        "response_p90": 40.0,
        "rating_average": 3.33,  # (5 + 3 + 2) / 3; May's 1 star is after the period
        "ratings": 3,
        "phone_answered": 2,  # P1, P2 (P5 is after the period)
        "phone_talk_seconds": 210.0,  # (300 + 120) / 2
        "missed_rings": 1,  # P3 (Dana answered)
        "declined_rings": 0,
    },
    "Tal": {
        "leads": 0,
        "calls": 0,
        "talk_minutes": 0.0,
        "handling_minutes": None,
        "response_p50": None,
        "response_p90": None,
        "rating_average": None,
        "ratings": 0,
        "phone_answered": 0,
        "phone_talk_seconds": None,
        "missed_rings": 0,  # P6 rang her before the period
        "declined_rings": 0,
    },
}
BILLING: dict[tuple[str, str], dict[str, Any]] = {
    # leads, agency's calls (not drafts, not the arriving call), talk minutes, messages
    ("Alpha Clinic", "2025-03"): {  # A1, A2; I1, I2, I9; I6 in; I3 out
        "leads": 2,
        "calls": 3,
        "talk_minutes": 19.0,
        "messages_in": 1,
        "messages_out": 1,
    },
    ("Alpha Clinic", "2025-04"): {  # A3 (1 Apr 00:30 local); I7; I8 out
        "leads": 1,
        "calls": 1,
        "talk_minutes": 4.0,
        "messages_in": 0,
        "messages_out": 1,
    },
    ("=Beta Plumbing", "2025-03"): {  # B1 (31 Mar 23:59 local); I13 in
        "leads": 1,
        "calls": 0,
        "talk_minutes": 0.0,
        "messages_in": 1,
        "messages_out": 0,
    },
    ("=Beta Plumbing", "2025-04"): {  # I12 (1 Apr 00:05 local)
        "leads": 0,
        "calls": 1,
        "talk_minutes": 10.0,
        "messages_in": 0,
        "messages_out": 0,
    },
}
SECRETARY_KEYS = list(SECRETARIES["Noa"])
BILLING_KEYS = list(BILLING["Alpha Clinic", "2025-03"])


def typed(raw: str) -> Any:
    if raw == "":
        return None
    return float(raw) if "." in raw else int(raw)


@pytest.fixture
async def admin_client(app: Any, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    app.state.clock = MovableClock(NOW)
    yield client


# --- the numbers --------------------------------------------------------------------------------


async def test_the_numbers_match_the_hand_computed_fixture(db: Database) -> None:
    agency = await make_agency(db)
    with counting(db) as statements:
        async with db.transaction(write=False) as session:
            report = await reports.agency_report(
                session, agency.admin, "2025-03-01", "2025-04-30", now=NOW
            )
    assert len(statements) == 9  # whatever the number of secretaries, businesses and rows
    assert {
        row.name: {key: getattr(row, key) for key in SECRETARY_KEYS} for row in report.secretaries
    } == SECRETARIES
    assert [row.name for row in report.secretaries] == ["Dana", "Noa", "Tal"]
    assert {
        (row.business_name, row.month_key): {key: getattr(row, key) for key in BILLING_KEYS}
        for row in report.months
    } == BILLING
    # One day: only what fell on 1 April in each business's zone.
    async with db.transaction(write=False) as session:
        day = await reports.agency_report(
            session, agency.admin, "2025-04-01", "2025-04-01", now=NOW
        )
    dana = next(row for row in day.secretaries if row.name == "Dana")
    assert (dana.leads, dana.calls, dana.talk_minutes) == (2, 2, 14.0)
    assert [(row.month_key, row.leads, row.calls) for row in day.months] == [
        ("2025-04", 0, 1),  # "=Beta Plumbing" sorts first
        ("2025-04", 1, 1),
    ]


async def test_the_screen_and_both_files_show_the_same_numbers(
    db: Database, admin_client: httpx.AsyncClient
) -> None:
    agency = await make_agency(db)
    await sign_in(admin_client, agency.admin.email)
    page = await admin_client.get(f"/agency/reports?{QUERY}")
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "html.parser")
    on_screen = {
        one(tr, 'td[data-key="secretary"]')["data-value"]: {
            td["data-key"]: typed(str(td["data-value"]))
            for td in tr.select("td[data-key]")
            if td["data-key"] != "secretary"
        }
        for tr in soup.select("#secretary-report tbody tr[data-id]")
    }
    assert on_screen == SECRETARIES
    billing_screen = {
        (
            str(one(tr, 'td[data-key="business"]')["data-value"]),
            str(tr["data-month"]),
        ): {
            td["data-key"]: typed(str(td["data-value"]))
            for td in tr.select("td[data-key]")
            if td["data-key"] not in ("business", "month")
        }
        for tr in soup.select("#billing-report tbody tr[data-id]")
    }
    assert billing_screen == BILLING

    exported = await admin_client.get(f"/agency/reports/secretaries.csv?{QUERY}")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert {r["secretary"]: {k: typed(r[k]) for k in SECRETARY_KEYS} for r in rows} == SECRETARIES
    billing = await admin_client.get(f"/agency/reports/billing.csv?{QUERY}")
    rows = list(csv.DictReader(io.StringIO(billing.content.decode("utf-8-sig"))))
    assert "'=Beta Plumbing" in {r["business"] for r in rows}  # not run as a formula
    assert {
        (r["business"].removeprefix("'"), r["month"]): {k: typed(r[k]) for k in BILLING_KEYS}
        for r in rows
    } == BILLING

    workbook = await admin_client.get(f"/agency/reports.xlsx?{QUERY}")
    assert workbook.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(workbook.content))
    people, months, _states = book.worksheets
    assert {
        row[1]: dict(zip(SECRETARY_KEYS, row[2:], strict=True))
        for row in people.iter_rows(min_row=2, values_only=True)
    } == SECRETARIES
    assert {
        (str(row[1]).removeprefix("'"), row[2]): dict(zip(BILLING_KEYS, row[3:], strict=True))
        for row in months.iter_rows(min_row=2, values_only=True)
    } == BILLING
    assert all(not str(cell).startswith("=") for row in months.values for cell in row)


async def test_the_period_is_checked_before_anything_is_computed(
    db: Database, admin_client: httpx.AsyncClient
) -> None:
    agency = await make_agency(db)
    await sign_in(admin_client, agency.admin.email)
    for query, message in (
        ("from=2025-04-10&to=2025-04-01", "The period ends before it starts."),
        ("from=10.04.2025&to=2025-04-20", "Write the day as YYYY-MM-DD."),
        ("from=2025-04-01", "Choose the last day of the period."),
        ("from=2020-01-01&to=2025-01-01", "A period can be at most two years"),
    ):
        page = await admin_client.get(f"/agency/reports?{query}")
        assert page.status_code == 422, query
        for path in ("/agency/reports/secretaries.csv", "/agency/reports.xlsx"):
            assert (await admin_client.get(f"{path}?{query}")).status_code == 422, (path, query)
        assert 'role="alert"' in page.text and 'id="secretary-report"' not in page.text
        assert message in page.text, query


async def test_only_admins_see_the_reports_and_the_wallboard(
    db: Database, admin_client: httpx.AsyncClient
) -> None:
    agency = await make_agency(db)
    paths = (
        "/agency/reports",
        f"/agency/reports/secretaries.csv?{QUERY}",
        f"/agency/reports/billing.csv?{QUERY}",
        f"/agency/reports.xlsx?{QUERY}",
        "/agency/wallboard",
    )
    for person in (agency.noa, agency.owner):
        await sign_in(admin_client, person.email)
        for path in paths:
            answer = await admin_client.get(path)
            assert answer.status_code == 404, (person.role, path)
            assert "Alpha Clinic" not in answer.text
        admin_client.cookies.clear()


# --- the wallboard ------------------------------------------------------------------------------


async def test_the_wallboard_shows_each_business_and_who_handles_what(
    db: Database, app: Any, admin_client: httpx.AsyncClient
) -> None:
    now = datetime.now(UTC)
    app.state.clock = MovableClock(now)
    async with db.transaction() as session:
        a = await make_business(session, name="Alpha Clinic")
        b = await make_business(session, name="Beta Plumbing")
        noa = await make_user(session, "secretary", a, b, name="Noa")
        dana = await make_user(session, "secretary", a, b, name="Dana")
        tal = await make_user(session, "secretary", a, name="Tal")
        await make_user(session, "secretary", a, name="Away")  # neither connected nor busy
        admin = await make_user(session, "admin", name="Admin", locale="en")
        wa, wb = Writer(session, a), Writer(session, b)
        oldest = await wa.lead(now - timedelta(minutes=30))
        await wa.lead(now - timedelta(minutes=10))
        held = await wa.lead(
            now - timedelta(hours=2), by=noa, answered=now - timedelta(hours=1), holder=noa
        )
        await wa.lead(now - timedelta(hours=3), closed=now - timedelta(hours=1))
        calling = await wb.lead(now - timedelta(minutes=5))
        await wb.touch(calling, "inbound_call", now - timedelta(minutes=4), by=dana, status="draft")
        for level, acknowledged in (("warning", None), ("breach", None), ("breach", now)):
            session.add(
                Alert(
                    key=f"lead:{oldest.id}:first_response:{level}:{acknowledged}",
                    business_id=a.id,
                    lead_id=oldest.id,
                    kind="first_response",
                    level=level,
                    percent=100 if level == "breach" else 80,
                    due_at=now,
                    acknowledged_at=acknowledged,
                )
            )
    # Tal has the queue open in this process.
    hub = app.state.hub
    tal_socket = Connection(str(tal.id), tal.name, "s", "secretary", "en", frozenset({str(a.id)}))
    tal_socket.page = "queue"
    hub.join(tal_socket)
    try:
        await sign_in(admin_client, admin.email)
        page = await admin_client.get("/agency/wallboard")
        fragment = await admin_client.get("/agency/wallboard", headers={"HX-Request": "true"})
    finally:
        await hub.leave(tal_socket)
    assert page.status_code == 200 and 'data-page="wallboard"' in page.text
    assert fragment.status_code == 200 and "<html" not in fragment.text
    for html in (page.text, fragment.text):
        soup = BeautifulSoup(html, "html.parser")
        board = {
            row["id"]: {
                td["data-key"]: td.get_text(strip=True) for td in row.select("td[data-key]")
            }
            for row in soup.select('tr[id^="board-"]')
        }
        assert board[f"board-{a.id}"] == {
            "open": "3",  # not the closed one
            "waiting": "2",
            "oldest": "30 m",
            "warnings": "0",  # its warning rose into the breach: one alert per lead
            "breaches": "1",  # the acknowledged breach is not open
        }
        assert board[f"board-{b.id}"] == {
            "open": "1",
            "waiting": "1",
            "oldest": "5 m",
            "warnings": "0",
            "breaches": "0",
        }
        duty = {
            row["id"]: (row["data-online"], one(row, 'td[data-key="handling"]')["data-count"])
            for row in soup.select('tr[id^="duty-"]')
        }
        assert duty == {
            f"duty-{tal.id}": ("yes", "0"),
            f"duty-{dana.id}": ("no", "1"),  # logging a call on B's lead
            f"duty-{noa.id}": ("no", "1"),  # holding A's lead
        }
        assert f"/leads/{held.id}" in html and f"/leads/{calling.id}" in html
    with counting(db) as statements:
        async with db.transaction(write=False) as session:
            loaded = await wallboard(session, admin, now=now, online={})
    assert len(statements) == 6 and len(loaded.businesses) == 2
    first = soup.select_one('tr[id^="duty-"]')
    assert first is not None and first["id"] == f"duty-{tal.id}"  # the connected come first


# --- live ---------------------------------------------------------------------------------------


async def test_a_new_lead_makes_the_wallboard_refresh(tmp_path_factory: Any) -> None:
    from tests.live_client import Console, receive
    from tests.servers import Server

    server = Server(tmp_path_factory.mktemp("wallboard"))
    server.run("migrate")
    server.run("create-business", "--slug", "cohen", "--name", "Cohen")
    for email, role, extra in (
        ("michal@example.test", "secretary", ["--business", "cohen"]),
        ("admin@example.test", "admin", []),
    ):
        server.run(
            "create-user", "--email", email, "--password", "live-password", "--role", role, *extra
        )
    server.start()
    try:
        michal = await Console(server).sign_in("michal@example.test", "live-password")
        admin = await Console(server).sign_in("admin@example.test", "live-password")
        board = await admin.socket(page="wallboard")
        # A web form's lead, waiting (a call typed in on the new-call screen is answered).
        key = server.run("intake-key", "--business", "cohen").strip()
        answer = await michal.http.post(
            "/intake/cohen/form",
            headers={"X-Intake-Key": key},
            json={"name": "דנה", "phone": "052-7654321", "message": "נזילה"},
        )
        assert answer.status_code == 201, answer.text
        message = await receive(board, 'data-refresh="wallboard"')
        assert "lead-row" not in message  # a trigger, not the queue's fragment
        fresh = await admin.http.get("/agency/wallboard", headers={"HX-Request": "true"})
        assert 'data-key="waiting">1<' in fresh.text
        await board.close()
        for console in (michal, admin):
            await console.close()
    finally:
        server.stop()


async def test_the_wallboard_follows_a_secretary_connecting_in_another_process_at_once(
    tmp_path: Any, redis_url: str
) -> None:
    from routes.live import OFFLINE_AFTER
    from tests.live_client import Console, receive, silence
    from tests.servers import Server

    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'console.db'}",
        "REDIS_URL": redis_url,
        "SECRET_KEY": "wallboard-duty-" + "k" * 40,
    }
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first, second = Server(tmp_path / "one", env), Server(tmp_path / "two", env)
    first.run("migrate")
    first.run("create-business", "--slug", "cohen", "--name", "Cohen")
    for email, role, extra in (
        ("michal@example.test", "secretary", ["--business", "cohen"]),
        ("admin@example.test", "admin", []),
    ):
        first.run(
            "create-user", "--email", email, "--password", "live-password", "--role", role, *extra
        )
    first.start()
    second.start()
    try:
        admin = await Console(first).sign_in("admin@example.test", "live-password")
        michal = await Console(second).sign_in("michal@example.test", "live-password")

        async def online() -> list[str]:
            board = await admin.http.get("/agency/wallboard", headers={"HX-Request": "true"})
            return re.findall(r'id="duty-[0-9a-f-]+" data-online="(yes|no)"', board.text)

        async def refreshed_until(wanted: list[str], within: float) -> None:
            """Her socket and her agent state each refresh the board: wait for the one that
            shows `wanted` (each refresh comes from the server, never from a poll)."""
            deadline = asyncio.get_running_loop().time() + within
            while (seen := await online()) != wanted:
                left = deadline - asyncio.get_running_loop().time()
                assert left > 0, seen
                await receive(board, 'data-refresh="wallboard"', within=left)

        board = await admin.socket(page="wallboard")
        await silence(board, 'data-refresh="wallboard"', 1.0)  # what its own opening caused
        assert await online() == []  # the board lists the connected, the busy, the available
        # Michal opens her queue on the other process: the board is told at once (no poll).
        queue = await michal.socket(page="queue")
        await refreshed_until(["yes"], within=3.0)
        await queue.close()
        # Offline once no console of hers has opened again for a while (routes/live.py).
        await refreshed_until([], within=3.0 + OFFLINE_AFTER)
        await board.close()
        for console in (michal, admin):
            await console.close()
    finally:
        first.stop()
        second.stop()
