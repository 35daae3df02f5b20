"""People of a business from the web (issue 24, point 3): the admin invites an owner to a
business (the link e-mailed through a real SMTP relay, aiosmtpd), setting the password signs
him in on his business; managers and staff are linked, re-roled and unlinked, each reaching
what the permission matrix allows (tenancy.PERMISSIONS) and nothing of another business."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from models import AuditEvent, OwnerMembership, User
from tests.factories import csrf_token, make_business, make_user, sign_in
from tests.fakes import FakeSmtp

NEW_PASSWORD = "a-brand-new-password"
LINK = re.compile(r"https?://[^/\s]+(/invite/[A-Za-z0-9_.\-]+)")


@pytest.fixture
async def mailing_app(settings: Settings, db: Database, smtp: FakeSmtp) -> AsyncIterator[object]:
    application = create_app(
        dataclasses.replace(settings, smtp_url=smtp.url()), db=db, run_jobs=False
    )
    async with application.router.lifespan_context(application):
        yield application


def browser(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def actions(db: Database) -> list[tuple[str, str]]:
    async with db.transaction(write=False) as session:
        rows = await session.execute(
            select(AuditEvent.action, AuditEvent.details).order_by(AuditEvent.id)
        )
        return [(a, str(d.get("member_role", ""))) for a, d in rows.all()]


async def test_the_admin_links_the_people_of_a_business_from_the_web(
    mailing_app: object, db: Database, smtp: FakeSmtp
) -> None:
    async with db.transaction() as session:
        plumbing = await make_business(session, name="אינסטלציה כהן")
        clinic = await make_business(session, name="מרפאת לוי")
        admin = await make_user(session, "admin")
        secretary = await make_user(session, "secretary")
        stranger = await make_user(session, "owner", clinic, name="דנה")
        helper = await make_user(session, "owner", name="יוסי")
    async with browser(mailing_app) as agency, browser(mailing_app) as avi:
        await sign_in(agency, admin.email)
        token = await csrf_token(agency, "/agency/users")
        invite = {
            "csrf_token": token,
            "email": "Avi@Example.test",
            "name": "אבי כהן",
            "role": "owner",
            "locale": "he",
            "business_id": str(plumbing.id),
            "member_role": "owner",
        }
        # bad input: the form again, as typed, the reason beside the field
        for bad, field in (
            ({"business_id": "not-an-id"}, "business_id"),
            ({"role": "admin"}, "business_id"),
            ({"member_role": "boss"}, "member_role"),
        ):
            refused = await agency.post("/agency/users", data={**invite, **bad})
            assert refused.status_code == 422, bad
            assert f'id="invite-{field}-error"' in refused.text, bad
            assert 'value="Avi@Example.test"' in refused.text
        assert smtp.received == []

        invited = await agency.post("/agency/users", data=invite)
        assert invited.status_code == 200 and 'id="link-mailed"' in invited.text
        [mail] = smtp.received
        assert mail.envelope_to == ["avi@example.test"]
        assert "אבי כהן" in mail.text and mail.subject
        link = LINK.search(mail.text)
        assert link, mail.text
        assert link.group(1) in invited.text  # shown to the admin as well

        # setting the password signs him in, on his business
        form = {
            "csrf_token": await csrf_token(avi, link.group(1)),
            "password": NEW_PASSWORD,
            "repeated": NEW_PASSWORD,
        }
        signed = await avi.post(link.group(1), data=form)
        assert signed.status_code == 303 and signed.headers["location"] == "/portal"
        portal = await avi.get("/portal")
        assert portal.status_code == 200 and "אינסטלציה כהן" in portal.text
        assert "No business is linked" not in portal.text and "מרפאת לוי" not in portal.text
        assert (await avi.get(f"/portal/businesses/{plumbing.id}/hours")).status_code == 200
        async with db.transaction(write=False) as session:
            avi_user = await session.scalar(select(User).where(User.email == "avi@example.test"))
        assert avi_user is not None
        listed = (await agency.get("/agency/users")).text
        assert "אינסטלציה כהן" in listed.split(f'id="user-{avi_user.id}"')[1].split("</tr>")[0]

        # the business page links another owner-role person as staff, then as manager
        page = f"/agency/businesses/{plumbing.id}"
        shown = await agency.get(page)
        assert 'id="people"' in shown.text and f'id="person-{avi_user.id}"' in shown.text
        people = f"{page}/people"
        link_form = {"csrf_token": token, "user_id": str(stranger.id), "member_role": "staff"}
        for bad, field in (
            ({"member_role": "boss"}, "member_role"),
            ({"user_id": str(secretary.id)}, "user_id"),
            ({"user_id": "42"}, "user_id"),
        ):
            refused = await agency.post(people, data={**link_form, **bad})
            assert refused.status_code == 422, bad
            assert f'id="link-person-{field}-error"' in refused.text, bad
        assert (await agency.post(people, data=link_form)).status_code == 303
        assert (await agency.post(people, data=link_form)).status_code == 303  # no change
        staff = {**link_form, "user_id": str(helper.id)}
        assert (await agency.post(people, data=staff)).status_code == 303
        async with browser(mailing_app) as yossi:
            await sign_in(yossi, helper.email)
            assert "אינסטלציה כהן" in (await yossi.get("/portal")).text
            numbers = await yossi.get("/portal/kpis")  # staff only: not his to read
            assert numbers.status_code == 200 and 'id="kpis-not-your-role"' in numbers.text

        async with browser(mailing_app) as dana:
            await sign_in(dana, stranger.email)
            home = await dana.get("/portal")
            assert "אינסטלציה כהן" in home.text and "מרפאת לוי" in home.text
            assert f"/portal/businesses/{plumbing.id}/script" not in home.text  # staff
            assert f"/portal/businesses/{clinic.id}/script" in home.text  # his own business
            staff_only = await dana.get("/portal/kpis")  # his clinic's numbers, not plumbing's
            assert "מרפאת לוי" in staff_only.text
            for url in (
                f"/portal/businesses/{plumbing.id}/script",
                f"/portal/businesses/{plumbing.id}/hours",
                f"/portal/kpis?business={plumbing.id}",
            ):
                assert (await dana.get(url)).status_code == 404, url
            assert (await dana.get(f"/portal/kpis?business={clinic.id}")).status_code == 200
            feeds = (await dana.get("/portal/appointments")).text  # revoked by owners only
            assert f"/portal/businesses/{clinic.id}/calendar-feed" in feeds
            assert f"/portal/businesses/{plumbing.id}/calendar-feed" not in feeds
            manager = {**link_form, "member_role": "manager"}
            assert (await agency.post(people, data=manager)).status_code == 303
            assert (await dana.get(f"/portal/businesses/{plumbing.id}/script")).status_code == 200
            assert (await dana.get(f"/portal/kpis?business={plumbing.id}")).status_code == 200
            assert (await dana.get(f"/portal/businesses/{plumbing.id}/hours")).status_code == 404
            # unlinked, the business is gone from his portal; twice is "not found"
            remove = f"{people}/{stranger.id}/remove"
            assert (await agency.post(remove, data={"csrf_token": token})).status_code == 303
            assert (await agency.post(remove, data={"csrf_token": token})).status_code == 404
            assert "אינסטלציה כהן" not in (await dana.get("/portal")).text

    async with db.transaction(write=False) as session:
        links = (await session.scalars(select(OwnerMembership))).all()
    assert {(m.user_id, m.business_id, m.member_role) for m in links} == {
        (avi_user.id, plumbing.id, "owner"),
        (stranger.id, clinic.id, "owner"),
        (helper.id, plumbing.id, "staff"),
    }
    recorded = await actions(db)
    assert ("person.linked", "owner") in recorded and ("person.linked", "staff") in recorded
    assert ("person.role_changed", "manager") in recorded and ("person.unlinked", "") in recorded
    assert [a for a, _ in recorded].count("person.linked") == 3
