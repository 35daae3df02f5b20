"""Time per agent state per day, from a history worked out by hand: spans across midnight in
Israel split there, the open span counted up to now, wrap-up ending by itself; the report's
screen and its CSV and XLSX agree. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import httpx
import openpyxl
from bs4 import BeautifulSoup

from console.base.db import Database
from console.voice.state_report import StateDay, split_by_day, time_in_states
from console.voice.states import AgentState, set_state
from models.agents import CallSettings
from tests.factories import make_business, make_user, sign_in

ISRAEL = ZoneInfo("Asia/Jerusalem")  # UTC+2 in January


def il(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=ISRAEL).astimezone(UTC)


def test_a_span_across_midnight_counts_on_both_days() -> None:
    her = uuid.uuid4()
    spans = [
        (her, "available", il(4, 22), il(5, 1, 30)),  # 2 h on the 4th, 1 h 30 on the 5th
        (her, "break", il(5, 1, 30), None),  # open: counted up to now
    ]
    days = split_by_day(spans, il(4, 0), il(6, 0), il(5, 2), ISRAEL)
    assert days == {
        (her, date(2026, 1, 4)): {"available": 7200},
        (her, date(2026, 1, 5)): {"available": 5400, "break": 1800},
    }


def test_midnight_is_israels_on_the_night_clocks_go_forward() -> None:
    her = uuid.uuid4()
    # 27 March 2026, 02:00 becomes 03:00 in Israel: the 27th still ends at its own midnight.
    start = datetime(2026, 3, 26, 23, tzinfo=ISRAEL).astimezone(UTC)
    end = datetime(2026, 3, 27, 4, tzinfo=ISRAEL).astimezone(UTC)
    days = split_by_day([(her, "on_call", start, end)], start, end, end, ISRAEL)
    assert days == {
        (her, date(2026, 3, 26)): {"on_call": 3600},
        (her, date(2026, 3, 27)): {"on_call": 3 * 3600},  # 00:00 to 04:00 is three hours
    }


async def history(db: Database) -> tuple[uuid.UUID, uuid.UUID]:
    """Michal's evening on the 4th of January and Dana's morning on the 5th (Israel time)."""
    async with db.transaction() as session:
        shop = await make_business(session)
        session.add(CallSettings(business_id=shop.id, wrap_up_seconds=120))
        michal = await make_user(session, "secretary", shop, name="Michal")
        dana = await make_user(session, "secretary", shop, name="Dana")
    moves = [
        (michal, AgentState.AVAILABLE, il(4, 21), None),
        (michal, AgentState.RINGING, il(4, 23, 50), None),
        (michal, AgentState.ON_CALL, il(4, 23, 51), None),
        (michal, AgentState.WRAP_UP, il(5, 0, 11), shop.id),  # two minutes, then available
        (michal, AgentState.BREAK, il(5, 0, 43), None),
        (michal, AgentState.OFFLINE, il(5, 1), None),
        (dana, AgentState.AVAILABLE, il(5, 8), None),
        (dana, AgentState.ON_CALL, il(5, 9), None),
        (dana, AgentState.WRAP_UP, il(5, 9, 30), shop.id),
        (dana, AgentState.BREAK, il(5, 9, 31), None),  # cuts her wrap-up short
    ]
    for person, state, moment, business in moves:
        async with db.transaction() as session:
            reason = "meal" if state is AgentState.BREAK else None
            await set_state(
                session, person.id, state, now=moment, reason=reason, business_id=business
            )
    return michal.id, dana.id


EXPECTED = {
    ("Dana", "2026-01-05"): {"available": 3600, "on_call": 1800, "wrap_up": 60, "break": 29 * 60},
    ("Michal", "2026-01-04"): {"available": 2 * 3600 + 50 * 60, "ringing": 60, "on_call": 9 * 60},
    ("Michal", "2026-01-05"): {
        "on_call": 11 * 60,
        "wrap_up": 120,
        "available": 30 * 60,
        "break": 17 * 60,
    },
}


async def test_the_report_adds_each_day_from_a_known_history(db: Database) -> None:
    await history(db)
    async with db.transaction(write=False) as session:
        found = await time_in_states(session, date(2026, 1, 4), date(2026, 1, 5), now=il(5, 10))
    assert {(row.name, row.day.isoformat()): row.seconds for row in found} == EXPECTED
    first = found[-1]
    assert isinstance(first, StateDay) and first.name == "Michal"
    # Occupancy: ringing, talking and wrap-up over that and the time available.
    assert first.occupancy == round(100 * (11 * 60 + 120) / (11 * 60 + 120 + 30 * 60), 1)
    assert first.signed_in == 11 * 60 + 120 + 30 * 60 + 17 * 60


async def test_the_reports_page_and_its_files_show_the_same_times(
    db: Database, client: httpx.AsyncClient
) -> None:
    await history(db)
    async with db.transaction() as session:
        admin = await make_user(session, "admin", locale="en")
    await sign_in(client, admin.email)
    query = "from=2026-01-04&to=2026-01-05"
    page = await client.get(f"/agency/reports?{query}")
    assert page.status_code == 200
    table = BeautifulSoup(page.text, "html.parser").select_one("#state-report")
    assert table is not None
    shown = {
        (str(tr["data-id"]), str(tr["data-day"])): {
            str(td["data-key"]): str(td["data-value"]) for td in tr.select("td")
        }
        for tr in table.select("tr[data-day]")
    }
    names = {
        str(td["data-value"]): str(td.parent["data-id"])
        for td in table.select("td[data-key=secretary]")
        if td.parent
    }
    michal_5th = shown[(names["Michal"], "2026-01-05")]
    assert michal_5th["on_call"] == str(11 * 60) and michal_5th["break"] == str(17 * 60)
    assert "5.1.26" in page.text and "11 m" in page.text
    files = await client.get(f"/agency/reports/states.csv?{query}")
    rows = list(csv.DictReader(io.StringIO(files.content.decode("utf-8-sig"))))
    by_key = {(r["secretary"], r["day"]): r for r in rows}
    assert set(by_key) == set(EXPECTED)
    # Read today, Dana's break is still open: it runs to the end of the period.
    expected = {**EXPECTED, ("Dana", "2026-01-05"): {**EXPECTED[("Dana", "2026-01-05")]}}
    expected[("Dana", "2026-01-05")]["break"] = 14 * 3600 + 29 * 60
    for key, seconds in expected.items():
        for state, value in seconds.items():
            assert float(by_key[key][f"{state}_minutes"]) == round(value / 60, 1), (key, state)
    book = openpyxl.load_workbook(
        io.BytesIO((await client.get(f"/agency/reports.xlsx?{query}")).content)
    )
    sheet = book.worksheets[2]
    assert sheet.max_row == 1 + len(EXPECTED)
