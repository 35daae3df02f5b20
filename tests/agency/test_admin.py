"""The agency's administration and the audit log, through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from console.base.db import Database
from console.intake import arrivals
from console.intake.arrivals import Arrival, ById, NewLead
from console.intake.writer import ArrivalWriter
from console.people import api_tokens
from console.people.audit import record_audit
from models import AuditEvent, Business, SecretaryAssignment, User, UserSession
from tests.factories import PASSWORD, csrf_token, make_business, make_user, sign_in

NOW = datetime.now(UTC)
LINK = re.compile(r"/invite/([A-Za-z0-9_.\-]+)")
NEW_PASSWORD = "a-brand-new-password"


@pytest.fixture
async def other_client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser, for the person the admin is managing."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def counts(db: Database) -> dict[str, int]:
    async with db.transaction(write=False) as session:
        rows = await session.execute(
            select(AuditEvent.action, func.count()).group_by(AuditEvent.action)
        )
        return {action: int(n) for action, n in rows.all()}


async def count(db: Database, model: type[object]) -> int:
    async with db.transaction(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def set_password(client: httpx.AsyncClient, link: str, password: str) -> httpx.Response:
    token = await csrf_token(client, link)
    form = {"csrf_token": token, "password": password, "repeated": password}
    return await client.post(link, data=form)


def staffing_warning(page: httpx.Response, business_id: object) -> str:
    """The agency page's warning about a business (lacking a secretary or a backup), or ''."""
    if 'class="alert staffing-gaps"' not in page.text:
        return ""
    warnings = page.text.split('class="alert staffing-gaps"')[1].split("</ul>")[0]
    for item in warnings.split("<li>")[1:]:
        if f"/agency/businesses/{business_id}#" in item:
            return item.split("</a>:")[1].split("</li>")[0].strip()
    return ""


def link_in(page: httpx.Response) -> str:
    match = LINK.search(page.text)
    assert match, "no set-password link on the page"
    return "/invite/" + match.group(1)


async def test_agency_administration_story(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        admin = await make_user(session, "admin")
    assert (await sign_in(client, admin.email)).status_code == 303
    token = await csrf_token(client, "/agency")

    # a business
    created = await client.post(
        "/agency/businesses",
        data={
            "csrf_token": token,
            "slug": "dental-levi",
            "name": "מרפאת לוי",
            "timezone": "Asia/Jerusalem",
            "locale": "he",
        },
    )
    assert created.status_code == 303
    business_url = created.headers["location"]
    page = await client.get(business_url)
    assert page.status_code == 200 and "מרפאת לוי" in page.text
    assert "/hours" in page.text and "/sla" in page.text and "/channels" in page.text
    edited = await client.post(
        business_url,
        data={"csrf_token": token, "name": "מרפאת לוי ובניו", "timezone": "UTC", "locale": "en"},
    )
    assert edited.status_code == 303
    async with db.transaction(write=False) as session:
        business = await session.scalar(select(Business).where(Business.slug == "dental-levi"))
    assert business is not None
    assert (business.name, business.timezone, business.locale) == ("מרפאת לוי ובניו", "UTC", "en")
    assert staffing_warning(await client.get("/agency"), business.id) == "אף מזכירה אינה משרתת אותו"

    # a secretary, invited: she sets her password from the link and signs in
    invited = await client.post(
        "/agency/users",
        data={
            "csrf_token": token,
            "email": "Dana@Example.test",
            "name": "דנה",
            "role": "secretary",
        },
    )
    assert invited.status_code == 200
    link = link_in(invited)
    async with db.transaction(write=False) as session:
        dana = await session.scalar(select(User).where(User.email == "dana@example.test"))
    assert dana is not None and dana.role == "secretary"
    assert (await sign_in(other_client, dana.email, PASSWORD)).status_code == 401
    assert (await other_client.get(link)).status_code == 200
    mismatch = await other_client.post(
        link,
        data={
            "csrf_token": await csrf_token(other_client, link),
            "password": NEW_PASSWORD,
            "repeated": NEW_PASSWORD + "x",
        },
    )
    assert mismatch.status_code == 422
    assert (await set_password(other_client, link, "short")).status_code == 422
    assert (await set_password(other_client, link, NEW_PASSWORD)).status_code == 303
    assert (await other_client.get(link)).status_code == 400  # once only
    assert (await sign_in(other_client, dana.email, NEW_PASSWORD)).status_code == 303
    assert (await other_client.get("/inbox")).status_code == 200

    # assigned as the business's backup: the agency page's warning goes
    assigned = await client.post(
        f"/agency/businesses/{business.id}/assignments",
        data={"csrf_token": token, "user_id": str(dana.id), "backup": "1"},
    )
    assert assigned.status_code == 303
    async with db.transaction(write=False) as session:
        row = await session.get(SecretaryAssignment, (dana.id, business.id))
    assert row is not None and row.is_backup
    assert staffing_warning(await client.get("/agency"), business.id) == ""

    # deactivated: her open session ends at once
    off = await client.post(
        f"/agency/users/{dana.id}/active", data={"csrf_token": token, "active": "0"}
    )
    assert off.status_code == 303
    assert (await other_client.get("/inbox")).status_code == 303  # to sign in
    async with db.transaction(write=False) as session:
        open_sessions = await session.scalar(
            select(func.count())
            .select_from(UserSession)
            .where(UserSession.user_id == dana.id, UserSession.ended_at.is_(None))
        )
    assert open_sessions == 0
    assert (await sign_in(other_client, dana.email, NEW_PASSWORD)).status_code == 401
    on = await client.post(
        f"/agency/users/{dana.id}/active", data={"csrf_token": token, "active": "1"}
    )
    assert on.status_code == 303

    # a password reset: the old password stops working, her session ends, a new link works
    assert (await sign_in(other_client, dana.email, NEW_PASSWORD)).status_code == 303
    reset = await client.post(f"/agency/users/{dana.id}/password", data={"csrf_token": token})
    assert reset.status_code == 200
    new_link = link_in(reset)
    assert (await other_client.get("/inbox")).status_code == 303
    assert (await sign_in(other_client, dana.email, NEW_PASSWORD)).status_code == 401
    assert (await other_client.get(link)).status_code == 400  # the first link stays void
    assert (await set_password(other_client, new_link, "another-password-1")).status_code == 303
    assert (await sign_in(other_client, dana.email, "another-password-1")).status_code == 303

    # ending her sessions, then a role change (her assignments go with the old role)
    ended = await client.post(f"/agency/users/{dana.id}/sessions/end", data={"csrf_token": token})
    assert ended.status_code == 303
    assert (await other_client.get("/inbox")).status_code == 303
    changed = await client.post(
        f"/agency/users/{dana.id}/role", data={"csrf_token": token, "role": "owner"}
    )
    assert changed.status_code == 303
    async with db.transaction(write=False) as session:
        dana = await session.get(User, dana.id, populate_existing=True)
        left = await session.get(SecretaryAssignment, (dana.id, business.id))  # type: ignore[union-attr]
    assert dana is not None and dana.role == "owner" and left is None

    # deactivating the business
    await client.post(
        f"/agency/businesses/{business.id}/active", data={"csrf_token": token, "active": "0"}
    )
    async with db.transaction(write=False) as session:
        business = await session.get(Business, business.id, populate_existing=True)
    assert business is not None and not business.active

    recorded = await counts(db)
    assert recorded["business.created"] == 1
    assert recorded["business.updated"] == 1
    assert recorded["business.deactivated"] == 1
    assert recorded["user.invited"] == 1
    assert recorded["user.password_set"] == 2
    assert recorded["assignment.set"] == 1
    assert recorded["user.deactivated"] == 1
    assert recorded["user.reactivated"] == 1
    assert recorded["user.password_reset"] == 1
    assert recorded["user.sessions_ended"] == 1
    assert recorded["user.role_changed"] == 1
    assert recorded["sign_in"] == 6  # the admin once; Dana three times, and by each new password
    assert recorded["sign_in.failed"] == 3
    async with db.transaction(write=False) as session:
        details = (await session.scalars(select(AuditEvent.details))).all()
    assert not any(
        secret in str(d) for d in details for secret in (NEW_PASSWORD, PASSWORD, "another-password")
    )


ADMIN_PAGES = [
    ("GET", "/agency/users"),
    ("GET", "/agency/audit"),
    ("GET", "/agency/businesses/new"),
    ("GET", "/agency/businesses/{business}"),
    ("POST", "/agency/businesses"),
    ("POST", "/agency/businesses/{business}"),
    ("POST", "/agency/businesses/{business}/active"),
    ("POST", "/agency/businesses/{business}/assignments"),
    ("POST", "/agency/businesses/{business}/assignments/{user}/remove"),
    ("POST", "/agency/users"),
    ("POST", "/agency/users/{user}/role"),
    ("POST", "/agency/users/{user}/active"),
    ("POST", "/agency/users/{user}/password"),
    ("POST", "/agency/users/{user}/sessions/end"),
]


@pytest.mark.parametrize("role", ["secretary", "owner"])
async def test_admin_screens_refuse_secretaries_and_owners(
    client: httpx.AsyncClient, db: Database, role: str
) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        person = await make_user(session, role, business)
        other = await make_user(session, "secretary", business)
    await sign_in(client, person.email)
    token = await csrf_token(client, "/tasks")
    before = await counts(db)
    for method, path in ADMIN_PAGES:
        url = path.format(business=business.id, user=other.id)
        data = {"csrf_token": token, "active": "0", "role": "admin", "user_id": str(other.id)}
        response = await (client.get(url) if method == "GET" else client.post(url, data=data))
        assert response.status_code == 404, (method, url)
    assert await counts(db) == before
    async with db.transaction(write=False) as session:
        untouched = await session.get(User, other.id)
    assert untouched is not None and untouched.active and untouched.role == "secretary"


async def test_bad_input_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session, name="קיים")
        admin = await make_user(session, "admin")
        owner = await make_user(session, "owner", business)
    await sign_in(client, admin.email)
    token = await csrf_token(client, "/agency")
    good = {"csrf_token": token, "slug": "fine", "name": "x", "timezone": "UTC", "locale": "he"}
    businesses, users, audits = (
        await count(db, Business),
        await count(db, User),
        await count(db, AuditEvent),
    )
    for bad in (
        {"slug": "No Spaces!"},
        {"name": " "},
        {"timezone": "Mars/Olympus"},
        {"locale": "xx"},
    ):
        refused = await client.post("/agency/businesses", data={**good, **bad})
        assert refused.status_code == 422, bad
    assert (
        await client.post("/agency/businesses", data={**good, "slug": business.slug})
    ).status_code == 409

    edit = f"/agency/businesses/{business.id}"
    refused = await client.post(
        edit, data={"csrf_token": token, "name": "שם חדש", "timezone": "Nowhere", "locale": "he"}
    )
    assert refused.status_code == 422 and "Nowhere" in refused.text

    invite = {"csrf_token": token, "email": "new@example.test", "name": "n", "role": "secretary"}
    for bad in ({"email": "not-an-address"}, {"role": "boss"}, {"locale": "fr"}):
        assert (await client.post("/agency/users", data={**invite, **bad})).status_code == 422
    assert (
        await client.post("/agency/users", data={**invite, "email": owner.email})
    ).status_code == 409

    assign = f"/agency/businesses/{business.id}/assignments"
    owner_assigned = await client.post(
        assign, data={"csrf_token": token, "user_id": str(owner.id), "backup": "1"}
    )
    assert owner_assigned.status_code == 422
    missing = await client.post(assign, data={"csrf_token": token, "user_id": "nope"})
    assert missing.status_code == 404
    self_off = await client.post(
        f"/agency/users/{admin.id}/active", data={"csrf_token": token, "active": "0"}
    )
    assert self_off.status_code == 422
    self_role = await client.post(
        f"/agency/users/{admin.id}/role", data={"csrf_token": token, "role": "owner"}
    )
    assert self_role.status_code == 422
    bad_role = await client.post(
        f"/agency/users/{owner.id}/role", data={"csrf_token": token, "role": "boss"}
    )
    assert bad_role.status_code == 422
    assert (await client.get("/agency/audit", params={"since": "yesterday"})).status_code == 422
    assert (await client.get("/invite/forged-token")).status_code == 400

    assert (await count(db, Business), await count(db, User)) == (businesses, users)
    assert await count(db, AuditEvent) == audits
    async with db.transaction(write=False) as session:
        kept = await session.get(Business, business.id)
        me = await session.get(User, admin.id)
        him = await session.get(User, owner.id)
        assignments = await session.scalar(select(func.count()).select_from(SecretaryAssignment))
    assert kept is not None and kept.name == "קיים" and kept.timezone == "Asia/Jerusalem"
    assert me is not None and me.active and me.role == "admin"
    assert him is not None and him.role == "owner" and assignments == 0


async def test_audit_records_views_scripts_policies_and_sign_ins(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        a, b = await make_business(session, name="אלף"), await make_business(session, name="בית")
        admin = await make_user(session, "admin")
        secretary = await make_user(session, "secretary", a)
        owner = await make_user(session, "owner", a)
        lead = await arrivals.create_lead(
            session, secretary, NewLead(business_id=str(a.id), phone="052-7654321"), now=NOW
        )
    assert (await sign_in(other_client, secretary.email, "wrong-password")).status_code == 401
    await sign_in(other_client, secretary.email)
    assert (await other_client.get(f"/leads/{lead.id}")).status_code == 200
    other_client.cookies.clear()
    await sign_in(other_client, owner.email)
    assert (await other_client.get(f"/portal/leads/{lead.id}")).status_code == 200
    async with db.transaction() as session:
        made = await api_tokens.create_token(session, owner, "crm", now=NOW)
    bearer = {"Authorization": f"Bearer {made.secret}"}
    assert (await other_client.get(f"/api/v1/leads/{lead.id}", headers=bearer)).status_code == 200

    await sign_in(client, admin.email)
    token = await csrf_token(client, "/agency")
    script = {
        "csrf_token": token,
        "greeting": "שלום, הגעתם ל{business}",
        "questions": "* שם | text",
    }
    url = f"/agency/businesses/{a.id}/script"
    assert (await client.post(url, data={**script, "action": "save"})).status_code == 303
    assert (await client.post(url, data={**script, "action": "publish"})).status_code == 303
    policy = {"csrf_token": token, "minutes": "30", "warn_at_percent": "50,80"}
    sla = f"/agency/businesses/{b.id}/sla"
    assert (await client.post(sla, data=policy)).status_code == 303
    assign = f"/agency/businesses/{b.id}/assignments"
    form = {"csrf_token": token, "user_id": str(secretary.id)}
    assert (await client.post(assign, data=form)).status_code == 303
    assert staffing_warning(await client.get("/agency"), b.id) == "אין מזכירת גיבוי"
    assert (await client.post(f"{assign}/{secretary.id}/remove", data=form)).status_code == 303
    assert (await client.post(f"{assign}/{secretary.id}/remove", data=form)).status_code == 404

    recorded = await counts(db)
    assert recorded["lead.viewed"] == 3
    assert recorded["script.saved"] == 1 and recorded["script.published"] == 1
    assert recorded["sla.policy_set"] == 1
    assert recorded["assignment.set"] == 1 and recorded["assignment.removed"] == 1
    assert recorded["sign_in"] == 3 and recorded["sign_in.failed"] == 1
    async with db.transaction(write=False) as session:
        failed = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "sign_in.failed")
        )
        viewed = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "lead.viewed"))
        ).all()
    assert failed is not None and failed.actor_email == secretary.email and failed.address
    assert failed.actor_id is None and "wrong-password" not in str(failed.details)
    assert {e.actor_id for e in viewed} == {secretary.id, owner.id}
    assert sorted(e.details["via"] for e in viewed) == ["api", "page", "portal"]
    assert all(e.business_id == a.id and e.subject_id == str(lead.id) for e in viewed)

    # the page: filters by person, business, action and dates
    def rows(page: httpx.Response) -> int:
        assert page.status_code == 200
        return page.text.count('class="audit-row"')

    assert rows(await client.get("/agency/audit")) == sum(recorded.values())
    owners = await client.get("/agency/audit", params={"person": owner.email})
    assert rows(owners) == 4  # a sign-in, two views, and his API token made
    assert rows(await client.get("/agency/audit", params={"business": str(b.id)})) == 3
    by_action = await client.get("/agency/audit", params={"action": "script."})
    assert rows(by_action) == 2 and "script.published" in by_action.text
    mixed = {"action": "lead.viewed", "business": str(a.id), "person": secretary.email}
    assert rows(await client.get("/agency/audit", params=mixed)) == 1
    today, tomorrow = NOW.date(), NOW.date() + timedelta(days=1)
    assert rows(await client.get("/agency/audit", params={"since": str(tomorrow)})) == 0
    assert rows(
        await client.get("/agency/audit", params={"since": str(today), "until": str(today)})
    ) == sum(recorded.values())


async def test_audit_page_is_newest_first_by_keyset(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        admin = await make_user(session, "admin")
        for n in range(60):
            await record_audit(
                session, action="test.step", now=NOW - timedelta(minutes=60 - n), step=n
            )
    await sign_in(client, admin.email)
    first = await client.get("/agency/audit", params={"action": "test."})
    ids = [int(i) for i in re.findall(r'id="audit-(\d+)"', first.text)]
    assert len(ids) == 50 and ids == sorted(ids, reverse=True)  # 50, newest first
    older = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert older
    second = await client.get(older.group(1).replace("&amp;", "&"))
    rest = [int(i) for i in re.findall(r'id="audit-(\d+)"', second.text)]
    assert len(rest) == 10 and max(rest) < min(ids) and rest == sorted(rest, reverse=True)
    assert 'rel="next"' not in second.text


async def test_the_repeat_window_is_set_in_place_and_repeat_calls_join_one_lead(
    client: httpx.AsyncClient, db: Database
) -> None:
    """The business's repeat window: a refused value comes back in the form as typed, with the
    reason beside the field; a saved one rules which calls join the open lead, and the queue
    row and the lead page show the attempts."""
    async with db.transaction() as session:
        admin = await make_user(session, "admin")
        business = await make_business(session, name="אינסטלציה כהן")
        await make_user(session, "secretary", business)
    assert (await sign_in(client, admin.email)).status_code == 303
    token = await csrf_token(client, f"/agency/businesses/{business.id}")
    typed = {
        "csrf_token": token,
        "name": "Cohen Plumbing",
        "timezone": "Asia/Jerusalem",
        "locale": "en",
        "repeat_window_days": "0",
    }
    htmx = {"HX-Request": "true"}
    refused = await client.post(f"/agency/businesses/{business.id}", data=typed, headers=htmx)
    assert refused.status_code == 422
    assert 'id="business-repeat_window_days-error"' in refused.text
    assert 'value="Cohen Plumbing"' in refused.text and 'value="0"' in refused.text
    assert "<html" not in refused.text  # the form alone, in place
    async with db.transaction(write=False) as session:
        kept = await session.get_one(Business, business.id, populate_existing=True)
    assert kept.name == "אינסטלציה כהן" and kept.repeat_window_days == 7  # nothing changed

    saved = await client.post(
        f"/agency/businesses/{business.id}",
        data={**typed, "repeat_window_days": "2"},
        headers=htmx,
    )
    assert saved.status_code == 200 and 'role="status"' in saved.text
    async with db.transaction(write=False) as session:
        kept = await session.get_one(Business, business.id, populate_existing=True)
    assert (kept.name, kept.locale, kept.repeat_window_days) == ("Cohen Plumbing", "en", 2)
    assert (await counts(db))["business.updated"] == 1

    # Three calls from one number: two a minute apart join; one three days later does not.
    writer = ArrivalWriter(db)
    at = datetime.now(UTC) - timedelta(days=3)
    calls = [
        Arrival(ById(business.id), "phone", when, phone="054-2345678", message_id=sid)
        for sid, when in (("CA1", at), ("CA2", at + timedelta(minutes=1)), ("CA3", NOW))
    ]
    first, second, third = [await writer.receive(call) for call in calls]
    assert second.lead_id == first.lead_id and third.new_lead
    inbox = await client.get("/inbox")
    row = inbox.text.split(f'id="lead-{first.lead_id}"')[1].split("</tr>")[0]
    assert "×2" in row and "2 ניסיונות יצירת קשר" in row  # the admin reads Hebrew
    assert "×" not in inbox.text.split(f'id="lead-{third.lead_id}"')[1].split("</tr>")[0]
    page = await client.get(f"/leads/{first.lead_id}")
    assert "2 ניסיונות יצירת קשר" in page.text
