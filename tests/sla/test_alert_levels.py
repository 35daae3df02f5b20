"""Alerts a person can handle (issue 24, point 8), over HTTP on a clock the test moves: a lead's
25/50/75% warnings and its breach are one row on the panel that rises in place, with its times
in words; one acknowledgement takes it off, later warnings stay quiet, the breach opens it once
more; another business's alert is 404."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.sla import sla
from models import Alert, Business, Lead, SlaPolicy
from tests.conftest import SECRET
from tests.factories import MovableClock, csrf_token, make_business, make_user, sign_in

SUNDAY_9 = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
ACK = re.compile(r"/alerts/([0-9a-f-]{36})/ack")


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(SUNDAY_9)


@pytest.fixture
async def timed(db: Database, clock: MovableClock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        Settings(database_url=db.url, secret_key=SECRET), db=db, clock=clock, run_jobs=False
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def lead_of(db: Database, business: Business) -> Lead:
    async with db.transaction() as session:
        return await arrivals.create_lead(
            session,
            None,
            NewLead(business_id=str(business.id), phone="052-7654321", name="רות", channel="email"),
            now=SUNDAY_9,
            business=business,
        )


async def sweep(db: Database, minutes: int) -> None:
    async with db.transaction() as session:
        await sla.sweep(session, now=SUNDAY_9 + timedelta(minutes=minutes))


def rows(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr id="(alert-[^"]+)" class="alert-row level-(\w+)', page)


async def test_a_leads_warnings_and_breach_are_one_alert_that_rises(
    db: Database, timed: httpx.AsyncClient, clock: MovableClock
) -> None:
    async with db.transaction() as session:
        mine = await make_business(session, always_open=True)
        theirs = await make_business(session, always_open=True)
        for business in (mine, theirs):
            session.add(
                SlaPolicy(
                    business_id=business.id,
                    first_response_minutes=100,
                    warn_at_percent=[25, 50, 75],
                )
            )
        secretary = await make_user(session, "secretary", mine)
    lead = await lead_of(db, mine)
    other = await lead_of(db, theirs)
    await sweep(db, 26)
    await sweep(db, 51)  # the second warning: the same row, risen
    await sign_in(timed, secretary.email)
    clock.moment = SUNDAY_9 + timedelta(minutes=52)
    panel = (await timed.get("/alerts")).text
    assert rows(panel) == [(f"alert-lead-{lead.id}", "warning")]
    assert "50%" in panel and "25%" not in panel
    assert re.search(r"data-since=\"[^\"]+\">52 (m|ד׳)</time>", panel)  # waiting, in words
    [alert_id] = set(ACK.findall(panel))
    token = await csrf_token(timed, "/alerts")

    async with db.transaction(write=False) as session:
        theirs_alert = await session.scalar(select(Alert.id).where(Alert.lead_id == other.id))
    stranger = await timed.post(f"/alerts/{theirs_alert}/ack", data={"csrf_token": token})
    assert stranger.status_code == 404  # another business's alert

    done = await timed.post(f"/alerts/{alert_id}/ack", data={"csrf_token": token})
    assert done.status_code == 303
    async with db.transaction(write=False) as session:
        levels = list(
            await session.execute(
                select(Alert.percent, Alert.acknowledged_by_id).where(Alert.lead_id == lead.id)
            )
        )
    assert sorted(levels) == [(25, secretary.id), (50, secretary.id)]  # one acknowledgement
    assert rows((await timed.get("/alerts")).text) == []

    await sweep(db, 76)  # a later warning stays quiet
    assert rows((await timed.get("/alerts")).text) == []
    await sweep(db, 101)  # the breach opens it once more
    clock.moment = SUNDAY_9 + timedelta(minutes=110)
    panel = (await timed.get("/alerts")).text
    assert rows(panel) == [(f"alert-lead-{lead.id}", "breach")]
    assert re.search(r"(over by|חריגה של) 10 (m|ד׳)", panel)  # its due time, in words
    [breach_id] = set(ACK.findall(panel))
    assert (
        await timed.post(f"/alerts/{breach_id}/ack", data={"csrf_token": token})
    ).status_code == 303
    assert rows((await timed.get("/alerts")).text) == []
