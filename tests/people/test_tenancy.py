"""The one tenancy rule: admin sees all, a secretary her assigned businesses, an owner his own."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select

from console.base.db import Database
from console.base.errors import NotFound
from console.people.tenancy import (
    LiveAccess,
    get_business,
    live_access,
    scoped,
    visible_businesses,
)
from models import Business, OwnerMembership
from tests.factories import make_business, make_user, sign_in


async def test_each_role_sees_exactly_its_businesses(db: Database) -> None:
    async with db.transaction() as session:
        a, b, c = [await make_business(session) for _ in range(3)]
        admin = await make_user(session, "admin")
        secretary = await make_user(session, "secretary", a, b)
        owner = await make_user(session, "owner", c)
        stranger = await make_user(session, "owner")

    async with db.transaction(write=False) as session:
        assert {x.id for x in await visible_businesses(session, admin)} == {a.id, b.id, c.id}
        assert {x.id for x in await visible_businesses(session, secretary)} == {a.id, b.id}
        assert {x.id for x in await visible_businesses(session, owner)} == {c.id}
        assert await visible_businesses(session, stranger) == []

        assert (await get_business(session, secretary, a.id)).id == a.id
        assert (await get_business(session, owner, str(c.id))).id == c.id
        for user, outside in [(secretary, c), (owner, a), (owner, b), (stranger, c)]:
            with pytest.raises(NotFound):
                await get_business(session, user, outside.id)
        for garbage in ["not-a-uuid", str(uuid.uuid4()), "", "' OR 1=1 --"]:
            with pytest.raises(NotFound):
                await get_business(session, admin, garbage)
        query = scoped(select(Business.id), secretary, Business.id)
        assert set((await session.scalars(query)).all()) == {a.id, b.id}


async def test_live_access_is_the_rule_less_deactivated_businesses_for_many_users_at_once(
    db: Database,
) -> None:
    async with db.transaction() as session:
        a, b, closed = [await make_business(session) for _ in range(3)]
        closed.active = False
        admin = await make_user(session, "admin")
        secretary = await make_user(session, "secretary", a, closed)
        owner = await make_user(session, "owner", b, closed)
        gone = await make_user(session, "secretary", a)
        gone.active = False
        # A link of another role (left behind by hand) gives a secretary nothing.
        session.add(OwnerMembership(user_id=secretary.id, business_id=b.id))

    users = [admin.id, secretary.id, owner.id, gone.id, uuid.uuid4()]
    async with db.transaction(write=False) as session:
        found = await live_access(session, users)
    every = frozenset(str(x.id) for x in (a, b, closed))
    assert found == {
        str(admin.id): LiveAccess("admin", every),  # the admin may reactivate it
        str(secretary.id): LiveAccess("secretary", frozenset({str(a.id)})),
        str(owner.id): LiveAccess("owner", frozenset({str(b.id)})),
    }


async def test_pages_of_another_role_answer_404(client: httpx.AsyncClient, db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        secretary = await make_user(session, "secretary", business)
        owner = await make_user(session, "owner", business)
    forbidden = {secretary.email: ["/agency", "/portal"], owner.email: ["/agency", "/inbox"]}
    for email, paths in forbidden.items():
        client.cookies.clear()
        await sign_in(client, email)
        for path in paths:
            response = await client.get(path)
            assert response.status_code == 404, (email, path)
            assert business.name not in response.text


async def test_home_pages_show_only_the_users_businesses(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        mine = await make_business(session, name="אינסטלציה שלי")
        theirs = await make_business(session, name="מרפאה של אחרים")
        secretary = await make_user(session, "secretary", mine)
        owner = await make_user(session, "owner", theirs)
    await sign_in(client, secretary.email)
    inbox = (await client.get("/inbox")).text
    assert mine.name in inbox and theirs.name not in inbox
    client.cookies.clear()
    await sign_in(client, owner.email)
    portal = (await client.get("/portal")).text
    assert theirs.name in portal and mine.name not in portal


async def test_strangers_are_sent_to_sign_in(client: httpx.AsyncClient) -> None:
    for path in ("/inbox", "/portal", "/agency"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
    htmx = await client.get("/inbox", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/login")
