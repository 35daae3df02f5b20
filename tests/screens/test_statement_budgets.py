"""Every page and API answer in a fixed number of statements whatever the data size (issue 23,
point 3): each is counted with a little data, then again after the data grew (more leads of the
same caller, notes, tasks and alerts), and must cost the same, within the budget written beside
it. The inbox's own count is in tests/leads/test_workspace_http.py, the owner's portal in
tests/screens/test_portal.py, the API's list in tests/api/test_api.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import insert

from console.base.db import Database
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import calls
from console.people import api_tokens
from console.tasks import tasks
from models import Alert, Lead
from tests.factories import Agency, counting, make_agency, sign_in

CALLER = "+972542000000"


@dataclass
class World:
    agency: Agency
    lead: Lead  # the caller's first lead, whose page is counted
    token: str  # the owner's API token
    grown: int = 0


async def grow(db: Database, world: World, n: int) -> None:
    """n more leads of the same caller at A, each with a note, a task for the secretary and one
    for the owner, and an alert; and n notes on the counted lead."""
    agency, now = world.agency, datetime.now(UTC)
    due = (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    async with db.transaction() as session:
        for i in range(world.grown, world.grown + n):
            lead = await arrivals.create_lead(
                session,
                agency.secretary,
                NewLead(business_id=str(agency.a.id), phone=CALLER, name="יעל", subject=f"{i}"),
                now=now,
            )
            for lead_id in (lead.id, world.lead.id):
                await calls.add_note(session, agency.secretary, lead_id, text=f"הערה {i}", now=now)
            for assignee in (agency.secretary, agency.owner_a):
                handoff = tasks.HandOff(str(assignee.id), f"משימה {i}", due, "", "normal", "")
                await tasks.hand_off(session, agency.secretary, lead.id, handoff, now=now)
            await session.execute(
                insert(Alert).values(
                    key=f"lead:{lead.id}:first_response:80",
                    business_id=agency.a.id,
                    lead_id=lead.id,
                    kind="first_response",
                    level="warning",
                    percent=80,
                    due_at=now,
                    raised_at=now,
                )
            )
    world.grown += n


@pytest.fixture
async def world(db: Database) -> World:
    now = datetime.now(UTC)
    async with db.transaction() as session:
        agency = await make_agency(session)
        lead = await arrivals.create_lead(
            session,
            agency.secretary,
            NewLead(business_id=str(agency.a.id), phone=CALLER, name="יעל"),
            now=now,
        )
        token = await api_tokens.create_token(session, agency.owner_a, "budget", now=now)
    made = World(agency, lead, token.secret)
    await grow(db, made, 1)
    return made


@pytest.fixture
async def owner(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def same_cost(
    db: Database, world: World, client: httpx.AsyncClient, path: str, **headers: str
) -> tuple[int, str]:
    """The statements of one GET, the same before and after the data grew twelvefold, and what
    it answered then."""
    assert (await client.get(path, headers=headers)).status_code == 200  # sessions touched
    with counting(db) as few:
        assert (await client.get(path, headers=headers)).status_code == 200
    await grow(db, world, 11)
    with counting(db) as many:
        answer = await client.get(path, headers=headers)
    assert answer.status_code == 200
    assert len(few) == len(many), (len(few), len(many), many)
    return len(many), answer.text


async def test_the_lead_page(db: Database, world: World, client: httpx.AsyncClient) -> None:
    await sign_in(client, world.agency.secretary.email)
    cost, page = await same_cost(db, world, client, f"/leads/{world.lead.id}")
    assert cost <= 13, cost  # the budget (17 before get_lead was one statement)
    assert "הערה 11" in page


async def test_the_contact_page(db: Database, world: World, client: httpx.AsyncClient) -> None:
    await sign_in(client, world.agency.secretary.email)
    cost, _page = await same_cost(db, world, client, f"/contacts/{world.lead.contact_id}")
    assert cost <= 6, cost  # the budget


async def test_her_tasks(db: Database, world: World, client: httpx.AsyncClient) -> None:
    await sign_in(client, world.agency.secretary.email)
    cost, page = await same_cost(db, world, client, "/tasks")
    assert cost <= 2, cost  # the budget
    assert "משימה 11" in page


async def test_her_alerts(db: Database, world: World, client: httpx.AsyncClient) -> None:
    await sign_in(client, world.agency.secretary.email)
    cost, _page = await same_cost(db, world, client, "/alerts")
    assert cost <= 2, cost  # the budget


async def test_the_owners_kpis(db: Database, world: World, owner: httpx.AsyncClient) -> None:
    await sign_in(owner, world.agency.owner_a.email)
    cost, _page = await same_cost(db, world, owner, "/portal/kpis")
    assert cost <= 10, cost  # the budget (the seventh KPI statement: the calls)


async def test_the_owners_lead(db: Database, world: World, owner: httpx.AsyncClient) -> None:
    await sign_in(owner, world.agency.owner_a.email)
    cost, _page = await same_cost(db, world, owner, f"/portal/leads/{world.lead.id}")
    assert cost <= 6, cost  # the budget (10 before get_lead was one statement)


async def test_the_api_shows_a_lead(db: Database, world: World, client: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {world.token}"}
    cost, _page = await same_cost(db, world, client, f"/api/v1/leads/{world.lead.id}", **auth)
    assert cost <= 3, cost  # the budget


async def test_the_api_lists_leads(db: Database, world: World, client: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {world.token}"}
    cost, _page = await same_cost(db, world, client, "/api/v1/leads", **auth)
    assert cost <= 2, cost  # the budget
