"""Access follows every change at once, on open sockets and in every replay.

Real `mazkira serve` processes and the `websockets` client: on SQLite one process, on
PostgreSQL two processes sharing Redis, the admin acting on one while the consoles are open on
the other, so each change crosses processes as it would in production. The quiet re-check is
set to ten minutes: whatever happens here happens because the change was published.

Each check that something does *not* arrive is ordered: an event of the business lost, then
one of a business kept (or seen by the admin), read in that order from the same socket, so the
first is known to have been published, and dropped, before the second came.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from tests.conftest import POSTGRES_SERVER, REDIS_SERVER, need_service
from tests.live_client import Console, close_code, meta, receive, silence
from tests.own_databases import OwnPostgres
from tests.servers import Server

PASSWORD = "access-password-1"
TWO_DAYS_AGO = datetime.now(UTC) - timedelta(days=2)
UUID = r"[0-9a-f-]{36}"


@dataclass(frozen=True)
class Business:
    id: str
    slug: str
    key: str


@dataclass
class Person:
    id: str
    email: str
    console: Console


class Agency:
    """The admin on the first process; the people's consoles on the last (another one on
    PostgreSQL)."""

    def __init__(self, servers: list[Server], admin: Console) -> None:
        self.admin_at, self.staff_at = servers[0], servers[-1]
        self.admin = admin
        self.numbers = itertools.count(1)
        self.people: list[Console] = []

    async def business(self) -> Business:
        n = next(self.numbers)
        created = await self.admin.post(
            "/agency/businesses", slug=f"access-{n}", name=f"עסק {n}", timezone="", locale="he"
        )
        assert created.status_code == 303, created.text
        business_id = created.headers["location"].rsplit("/", 1)[1]
        page = (await self.admin.http.get(f"/agency/businesses/{business_id}/channels")).text
        key = re.search(r'<input readonly value="([^"]+)" dir="ltr" class="code">', page)
        assert key is not None
        return Business(business_id, f"access-{n}", key.group(1))

    async def secretary(self, *businesses: Business) -> Person:
        """Invited by the admin, her password set from the link, assigned, signed in."""
        email = f"secretary-{next(self.numbers)}@example.test"
        invited = await self.admin.post(
            "/agency/users", email=email, name=email.split("@")[0], role="secretary", locale="he"
        )
        link = re.search(r"/invite/([^<\"\s]+)", invited.text)
        user = re.search(
            rf"{re.escape(email)}</bdi>.*?/agency/users/({UUID})/role", invited.text, re.S
        )
        assert link is not None and user is not None, invited.text
        async with httpx.AsyncClient(base_url=self.staff_at.url) as anyone:
            form = (await anyone.get(f"/invite/{link.group(1)}")).text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert token is not None
            answer = await anyone.post(
                f"/invite/{link.group(1)}",
                data={"password": PASSWORD, "repeated": PASSWORD, "csrf_token": token.group(1)},
            )
            assert answer.status_code == 303, answer.text
        for business in businesses:
            await self.assign(business, user.group(1))
        return Person(user.group(1), email, await self.sign_in(email))

    async def owner(self, *businesses: Business) -> Person:
        """Owners are linked to businesses on the command line only."""
        email = f"owner-{next(self.numbers)}@example.test"
        slugs = [arg for business in businesses for arg in ("--business", business.slug)]
        printed = self.admin_at.run(
            "create-user", "--email", email, "--password", PASSWORD, "--role", "owner", *slugs
        )
        return Person(printed.split()[-1], email, await self.sign_in(email))

    async def sign_in(self, email: str) -> Console:
        console = await Console(self.staff_at).sign_in(email, PASSWORD)
        self.people.append(console)
        return console

    async def web_form(self, business: Business, name: str) -> str:
        """A lead from the business's site: a name and a phone, as the attack saw them."""
        phone = f"052-765{next(self.numbers):04d}"
        answer = await self.admin.http.post(
            f"/intake/{business.slug}/form",
            json={"name": name, "phone": phone, "message": "ליד חדש"},
            headers={"X-Intake-Key": business.key},
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["lead_id"])

    async def act(self, path: str, **form: str) -> None:
        answer = await self.admin.post(path, **form)
        assert answer.status_code == 303, (path, answer.status_code, answer.text[:300])

    async def assign(self, business: Business, user_id: str) -> None:
        await self.act(f"/agency/businesses/{business.id}/assignments", user_id=user_id)

    async def unassign(self, business: Business, person: Person) -> None:
        await self.act(f"/agency/businesses/{business.id}/assignments/{person.id}/remove")

    async def set_active(self, business: Business, active: bool) -> None:
        await self.act(f"/agency/businesses/{business.id}/active", active="1" if active else "0")

    async def log_call(self, lead: str) -> str:
        """The admin logs a call on the lead and wraps it up: a handled row on the portal."""
        await self.act(f"/leads/{lead}/calls", kind="inbound_call")
        page = (await self.admin.http.get(f"/leads/{lead}")).text
        call = re.search(rf"/calls/({UUID})/autosave", page)
        assert call is not None
        await self.act(
            f"/calls/{call.group(1)}/wrap-up", notes="", outcome="info_given", summary="שיחה"
        )
        return call.group(1)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def agency(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    own_postgres: OwnPostgres,
) -> AsyncIterator[Agency]:
    root = tmp_path_factory.mktemp(f"access-{request.param}")
    env = {
        "LIVE_REVALIDATE_SECONDS": "600",
        "INTAKE_RATE_PER_ADDRESS": "0",
        "SECRET_KEY": "access-follows-changes-" + "k" * 40,
    }
    if request.param == "sqlite":
        servers = [Server(root, env)]
    else:
        need_service("PostgreSQL", POSTGRES_SERVER, 5432)
        need_service("Redis", REDIS_SERVER, 6379)
        env["DATABASE_URL"] = await own_postgres.create(private=True)
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
        (root / "one").mkdir()
        (root / "two").mkdir()
        servers = [Server(root / "one", env), Server(root / "two", env)]
    servers[0].run("migrate")
    servers[0].run(
        "create-user", "--email", "admin@example.test", "--password", PASSWORD, "--role", "admin"
    )
    for server in servers:
        server.start()
    agency = Agency(servers, await Console(servers[0]).sign_in("admin@example.test", PASSWORD))
    yield agency
    for console in [agency.admin, *agency.people]:
        await console.close()
    for server in servers:
        server.stop()


async def until(ws: ClientConnection, contains: str, within: float = 5.0) -> list[str]:
    """Every message up to and including the first holding `contains`."""
    seen: list[str] = []
    while not seen or contains not in seen[-1]:
        seen.append(await receive(ws, "", within=within))
    return seen


def of_business(messages: list[str], business: Business) -> list[str]:
    return [m for m in messages if meta(m).get("b") == business.id or business.id in m]


async def hello(ws: ClientConnection, page: str, cursor: dict[str, int]) -> None:
    """Another hello on an open socket, as a page does after moving."""
    message = {"type": "hello", "page": page, "mode": "viewing", "cursor": cursor}
    await ws.send(json.dumps({**message, "since": TWO_DAYS_AGO.isoformat()}))


async def test_a_secretary_taken_off_a_business_gets_nothing_more_of_it_live_or_replayed(
    agency: Agency,
) -> None:
    cohen, levi = await agency.business(), await agency.business()
    michal = await agency.secretary(cohen, levi)
    earlier = await agency.web_form(cohen, "דנה כהן")
    queue = await michal.console.socket()
    on_lead = await michal.console.socket(page=f"lead:{earlier}")
    watching = await agency.admin.socket()
    first = await agency.web_form(cohen, "רות לוי")
    assert "רות לוי" in await receive(queue, f'id="lead-{first}"')

    await agency.unassign(cohen, michal)
    assert 'data-reload="main"' in await receive(queue, "data-reload")
    assert 'data-reload="page"' in await receive(on_lead, "data-reload")  # her lead: 404 now
    secret = await agency.web_form(cohen, "יעל סודית")
    kept = await agency.web_form(levi, "אורי")
    assert "יעל סודית" in await receive(watching, f'id="lead-{secret}"')  # it went out
    heard = await until(queue, f'id="lead-{kept}"')
    assert of_business(heard, cohen) == [] and not any("יעל סודית" in m for m in heard)
    assert (await michal.console.http.get(f"/leads/{secret}")).status_code == 404

    # A hello on the same socket, with the oldest cursor and a since two days back: nothing of
    # cohen, what she missed of levi.
    await hello(queue, "queue", {cohen.id: 0, levi.id: 0})
    replayed = await until(queue, f'id="lead-{kept}"')
    assert of_business(replayed, cohen) == [] and of_business(replayed, levi)
    # And on a new socket, with cohen in the cursor, or with no cursor at all.
    for cursor in ({cohen.id: 0, levi.id: 0}, {}):
        ws = await michal.console.socket(cursor=cursor, since=TWO_DAYS_AGO)
        replayed = await until(ws, f'id="lead-{kept}"')
        assert of_business(replayed, cohen) == [], cursor
        await ws.close()
    for ws in (queue, on_lead, watching):
        await ws.close()


async def test_a_business_deactivated_leaves_its_secretaries_and_owners_consoles_at_once(
    agency: Agency,
) -> None:
    closing, staying = await agency.business(), await agency.business()
    dana = await agency.secretary(closing, staying)
    avi = await agency.owner(closing, staying)
    closing_lead = await agency.web_form(closing, "משה")
    staying_lead = await agency.web_form(staying, "שרה")
    queue = await dana.console.socket()
    portal = await avi.console.socket(page="portal")
    watching = await agency.admin.socket()

    await agency.set_active(closing, False)
    assert 'data-reload="main"' in await receive(queue, "data-reload")
    assert 'data-reload="main"' in await receive(portal, "data-reload")
    await agency.act(f"/leads/{closing_lead}/claim")
    await agency.act(f"/leads/{staying_lead}/claim")
    await receive(watching, f'id="lead-{closing_lead}"')  # the claim went out
    heard = await until(queue, f'id="lead-{staying_lead}"')
    assert of_business(heard, closing) == []
    closing_call = await agency.log_call(closing_lead)
    staying_call = await agency.log_call(staying_lead)
    heard = await until(portal, f'id="handled-{staying_call}"')
    assert of_business(heard, closing) == [] and not any(closing_call in m for m in heard)

    for person, page in ((dana, "queue"), (avi, "portal")):
        cursor = {closing.id: 0, staying.id: 0}
        ws = await person.console.socket(page=page, cursor=cursor, since=TWO_DAYS_AGO)
        replayed = await until(ws, staying_lead if page == "queue" else staying_call)
        assert of_business(replayed, closing) == [], person.email
        await ws.close()

    # Reactivated: the same sockets take it back, without reconnecting.
    await agency.set_active(closing, True)
    assert 'data-reload="main"' in await receive(queue, "data-reload")
    back = await agency.web_form(closing, "חוזר")
    assert "חוזר" in await receive(queue, f'id="lead-{back}"')
    for ws in (queue, portal, watching):
        await ws.close()


async def test_a_role_change_closes_her_consoles_and_the_new_role_replays_nothing_of_before(
    agency: Agency,
) -> None:
    cohen = await agency.business()
    noa = await agency.secretary(cohen)
    ws = await noa.console.socket()
    lead = await agency.web_form(cohen, "נגה")
    await receive(ws, f'id="lead-{lead}"')

    await agency.act(f"/agency/users/{noa.id}/role", role="owner")
    assert await close_code(ws) == 4401
    again = await agency.sign_in(noa.email)  # an owner now, of nothing
    ws = await again.socket(cursor={cohen.id: 0}, since=TWO_DAYS_AGO)
    later = await agency.web_form(cohen, "נגה")
    assert await silence(ws, cohen.id)  # neither replayed nor live
    assert await silence(ws, later, seconds=0.2)
    await ws.close()


async def test_a_deactivated_users_consoles_close_at_once_and_stay_closed(
    agency: Agency,
) -> None:
    cohen = await agency.business()
    rina = await agency.secretary(cohen)
    sockets = [await rina.console.socket(), await rina.console.socket(page="tasks")]
    await agency.act(f"/agency/users/{rina.id}/active", active="0")
    for ws in sockets:
        assert await close_code(ws) == 4401
    async with httpx.AsyncClient(base_url=agency.staff_at.url) as anyone:
        form = (await anyone.get("/login")).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token is not None
        answer = await anyone.post(
            "/login", data={"email": rina.email, "password": PASSWORD, "csrf_token": token[1]}
        )
        assert answer.status_code != 303 and "mazkira_session" not in answer.cookies


async def test_a_secretary_assigned_gets_the_business_on_the_socket_she_has_open(
    agency: Agency,
) -> None:
    cohen, levi = await agency.business(), await agency.business()
    tal = await agency.secretary(cohen)
    lead = await agency.web_form(cohen, "תמר")
    queue = await tal.console.socket()
    on_lead = await tal.console.socket(page=f"lead:{lead}")
    await agency.assign(levi, tal.id)
    assert 'data-reload="main"' in await receive(queue, "data-reload")  # its rows drawn in
    new = await agency.web_form(levi, "עידו")
    assert "עידו" in await receive(queue, f'id="lead-{new}"')
    assert await silence(on_lead, "data-reload", seconds=0.3)  # her lead page stays as it is
    for ws in (queue, on_lead):
        await ws.close()
