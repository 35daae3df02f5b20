"""Scripts editor, contact cards, task status and reassignment, through HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy import func, select

from console.base.db import Database
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import calls, leads
from console.tasks import tasks
from models import Contact, Interaction, Lead, Script, Task
from tests.factories import csrf_token, make_business, make_user, sign_in

HTMX = {"HX-Request": "true"}
NOW = datetime.now(UTC)


async def test_admin_edits_previews_and_publishes_a_script(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session, name="מרפאת לוי")
        admin = await make_user(session, "admin")
        secretary = await make_user(session, "secretary", business)
    await sign_in(client, admin.email)
    url = f"/agency/businesses/{business.id}/script"
    token = await csrf_token(client, url)
    typed = {
        "csrf_token": token,
        "greeting": "שלום, הגעתם ל{business}",
        "questions": "* שם המטופל | text\nסוג טיפול | choice | בדיקה, עקירה, הלבנה",
        "faq": "חניה?\nיש חניה בבניין",
        "escalation": "כאב חזק | ד״ר לוי | טלפון",
    }
    preview = await client.post(url, data={**typed, "action": "preview"}, headers=HTMX)
    assert preview.status_code == 200 and 'id="preview"' in preview.text
    assert "עקירה" in preview.text and "<html" not in preview.text
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(Script)) == 0

    bad = await client.post(url, data={**typed, "questions": "x | dance", "action": "save"})
    assert bad.status_code == 422
    no_greeting = await client.post(url, data={**typed, "greeting": " ", "action": "publish"})
    assert no_greeting.status_code == 422

    assert (await client.post(url, data={**typed, "action": "publish"})).status_code == 303
    async with db.transaction() as session:
        lead = await arrivals.create_lead(
            session,
            secretary,
            NewLead(business_id=str(business.id), phone="052-7654321"),
            now=NOW,
        )
        call = await calls.start_interaction(
            session, secretary, lead.id, kind="inbound_call", now=NOW
        )
    changed = {**typed, "greeting": "בוקר טוב, {business}", "action": "publish"}
    assert (await client.post(url, data=changed)).status_code == 303
    editor = await client.get(url)
    assert "v1" in editor.text and "v2" in editor.text
    async with db.transaction(write=False) as session:
        versions = (await session.scalars(select(Script.version).order_by(Script.version))).all()
        kept = await session.get(Interaction, call.id)
    assert list(versions) == [1, 2] and kept is not None and kept.script_version == 1

    client.cookies.clear()
    await sign_in(client, secretary.email)
    assert (await client.get(url)).status_code == 404  # admins only
    # the business's name is isolated in the greeting
    assert "בוקר טוב, <bdi>מרפאת לוי</bdi>" in (await client.get(f"/leads/{lead.id}")).text


async def test_contact_card_search_and_edit(client: httpx.AsyncClient, db: Database) -> None:
    async with db.transaction() as session:
        a, b = await make_business(session), await make_business(session)
        secretary = await make_user(session, "secretary", a)
        await arrivals.create_lead(
            session,
            secretary,
            NewLead(business_id=str(a.id), phone="052-7654321", name="רונית לוי"),
            now=NOW,
        )
        await arrivals.create_lead(
            session,
            secretary,
            NewLead(business_id=str(a.id), phone="054-2345678", name="משה"),
            now=NOW,
        )
        other = await make_user(session, "owner", b)
        foreign = await arrivals.create_lead(
            session,
            other,
            NewLead(business_id=str(b.id), phone="052-7654321", name="רונית"),
            now=NOW,
        )
    await sign_in(client, secretary.email)
    for query in ("0527654321", "+972 52-765-4321", "רונית", "972527654321"):
        found = await client.get("/contacts", params={"q": query}, headers=HTMX)
        assert found.text.count("/contacts/") == 1, query  # her business's Ronit only
    contact_id = (await client.get("/contacts", params={"q": "רונית"})).text.split(
        'href="/contacts/'
    )[1][:36]
    token = await csrf_token(client, f"/contacts/{contact_id}")
    long_notes = "הערה ארוכה 🙂 mixed English " * 4000  # about 100 KB
    saved = await client.post(
        f"/contacts/{contact_id}",
        data={
            "csrf_token": token,
            "name": "רונית לוי-כהן",
            "email": "Ronit@Example.COM",
            "abc_class": "A",
            "preferred_channel": "whatsapp",
            "notes": long_notes,
            "earlier_value": "12,000",
            "tags": "VIP, מטבח",
            "birthday": "1980-05-01",
        },
    )
    assert saved.status_code == 303
    card = await client.get(f"/contacts/{contact_id}")
    assert "רונית לוי-כהן" in card.text and "ronit@example.com" in card.text
    for field, value in [
        ("phone", "054-2345678"),  # Moshe's number: unique per business
        ("phone", "12"),
        ("abc_class", "Z"),
        ("birthday", "yesterday"),
        ("earlier_value", "-3"),
        ("birthday", "31/02/1990"),
        ("preferred_channel", "pigeon"),
    ]:
        response = await client.post(
            f"/contacts/{contact_id}", data={"csrf_token": token, field: value}
        )
        assert response.status_code in (409, 422), (field, value)
    async with db.transaction(write=False) as session:
        ronit = await session.get(Contact, foreign.contact_id)
        mine = await session.get(Contact, __import__("uuid").UUID(contact_id))
    assert ronit is not None and ronit.name == "רונית"  # the other business's card untouched
    assert mine is not None and mine.phone == "+972527654321" and mine.notes == long_notes
    assert (await client.get(f"/contacts/{foreign.contact_id}")).status_code == 404


async def test_tasks_done_and_cancelled_and_leads_reassigned(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        michal = await make_user(session, "secretary", business)
        noa = await make_user(session, "secretary", business)
        owner = await make_user(session, "owner", business)
        admin = await make_user(session, "admin")
        lead = await arrivals.create_lead(
            session,
            michal,
            NewLead(business_id=str(business.id), phone="052-7654321"),
            now=NOW,
        )
        await leads.claim_lead(session, michal, lead.id, now=NOW)
        first = await tasks.hand_off(
            session,
            michal,
            lead.id,
            tasks.HandOff(assignee_id=str(owner.id), title="להתקשר", due="2099-01-01T09:00"),
            now=NOW,
        )
        second = await tasks.hand_off(
            session,
            michal,
            lead.id,
            tasks.HandOff(assignee_id=str(owner.id), title="לשלוח הצעה", due="2099-01-02T09:00"),
            now=NOW,
        )
    await sign_in(client, owner.email)
    token = await csrf_token(client, "/tasks")
    assert (
        await client.post(f"/tasks/{first.id}/status", data={"csrf_token": token, "status": "done"})
    ).status_code == 303
    assert (
        await client.post(
            f"/tasks/{second.id}/status", data={"csrf_token": token, "status": "cancelled"}
        )
    ).status_code == 303
    again = await client.post(
        f"/tasks/{first.id}/status", data={"csrf_token": token, "status": "cancelled"}
    )
    assert again.status_code == 409
    done_page = await client.get("/tasks?status=done")
    assert "להתקשר" in done_page.text and "לשלוח הצעה" not in done_page.text
    async with db.transaction(write=False) as session:
        statuses = dict((await session.execute(select(Task.title, Task.status))).all())
    assert statuses == {"להתקשר": "done", "לשלוח הצעה": "cancelled"}

    client.cookies.clear()
    await sign_in(client, noa.email)
    token = await csrf_token(client, "/inbox")
    assert (
        await client.post(f"/leads/{lead.id}/release", data={"csrf_token": token})
    ).status_code == 409
    assert (
        await client.post(
            f"/leads/{lead.id}/reassign", data={"csrf_token": token, "secretary": str(noa.id)}
        )
    ).status_code == 404
    client.cookies.clear()
    await sign_in(client, admin.email)
    token = await csrf_token(client, "/inbox")
    moved = await client.post(
        f"/leads/{lead.id}/reassign", data={"csrf_token": token, "secretary": str(noa.id)}
    )
    assert moved.status_code == 303
    refused = await client.post(
        f"/leads/{lead.id}/reassign", data={"csrf_token": token, "secretary": str(owner.id)}
    )
    assert refused.status_code == 422
    async with db.transaction(write=False) as session:
        assert (await session.get(Lead, lead.id)).claimed_by_id == noa.id  # type: ignore[union-attr]
