"""The secretary's day through HTTP: the inbox, a new call, the live call log, hand-off, wrap-up,
and what the owners see (and do not see) of it."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import httpx
from sqlalchemy import func, select

from console.base.db import Database
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import scripts
from models import Business, Interaction, Lead, Task, User
from tests.factories import counting, csrf_token, make_agency, make_business, make_user, sign_in

HTMX = {"HX-Request": "true"}


async def seed_leads(db: Database, business: Business, user: User, n: int, start: int) -> None:
    async with db.transaction() as session:
        for i in range(start, start + n):
            await arrivals.create_lead(
                session,
                user,
                NewLead(
                    business_id=str(business.id), phone=f"+97254{2000000 + i}", name=f"לקוח {i}"
                ),
                now=datetime.now(UTC),
            )


async def test_inbox_page_costs_the_same_statements_for_5_or_80_leads(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        a, b = await make_business(session), await make_business(session)
        secretary = await make_user(session, "secretary", a, b)
    await sign_in(client, secretary.email)
    await client.get("/inbox")  # sessions are touched at most once a minute; do it now
    await seed_leads(db, a, secretary, 5, 0)
    with counting(db) as few:
        page = await client.get("/inbox")
    assert page.text.count('class="lead-row') == 5
    await seed_leads(db, b, secretary, 75, 100)
    with counting(db) as many:
        page = await client.get("/inbox")
    assert page.text.count('class="lead-row') == 50  # one page
    assert len(few) == len(many) <= 5, many
    assert ">80<" in page.text.replace(" ", "").replace("\n", "")  # the count of all open leads

    filtered = await client.get(f"/inbox?business={a.id}&holder=unassigned", headers=HTMX)
    assert filtered.text.count('class="lead-row') == 5
    assert "<html" not in filtered.text and filtered.headers["vary"] == "HX-Request"
    assert (await client.get("/inbox?channel=fax")).status_code == 422


async def test_load_more_reaches_every_lead_in_order_with_the_filter_kept(
    client: httpx.AsyncClient, db: Database
) -> None:
    """50 at a time after the last row's place, the filter kept: every matching lead once, in
    the queue's order, each page in the same few statements; a made-up place is a 422."""
    async with db.transaction() as session:
        a, b = await make_business(session), await make_business(session)
        secretary = await make_user(session, "secretary", a, b)
    await sign_in(client, secretary.email)
    await seed_leads(db, a, secretary, 7, 0)
    await seed_leads(db, b, secretary, 124, 100)
    async with db.transaction() as session:
        expected = list(
            await session.scalars(
                select(Lead.id)
                .where(Lead.business_id == b.id)
                .order_by(Lead.queue_rank, Lead.queue_at, Lead.id)
            )
        )

    page = await client.get(f"/inbox?business={b.id}")
    seen = re.findall(r'<tr id="lead-([0-9a-f-]{36})"', page.text)
    assert len(seen) == 50 and _shown(page.text) == (50, 124)
    costs = []
    while more := re.search(r'hx-get="(/inbox\?[^"]*after=[^"]*)"', page.text):
        url = html.unescape(more.group(1))
        assert f"business={b.id}" in url
        with counting(db) as statements:
            page = await client.get(url, headers=HTMX)
        costs.append(len(statements))
        seen += re.findall(r'<tr id="lead-([0-9a-f-]{36})"', page.text)
        assert _shown(page.text) == (len(seen), 124)
    assert seen == [str(lead_id) for lead_id in expected]  # all 124, once each, in order
    assert len(costs) == 2 and costs[0] == costs[1] <= 6, costs
    assert "data-more" not in page.text  # the end: nothing more to load

    everything = await client.get("/inbox")
    assert _shown(everything.text) == (50, 131)
    wrong = await client.get(f"/inbox?business={b.id}&after=1.2026.nope", headers=HTMX)
    assert wrong.status_code == 422


def _shown(page: str) -> tuple[int, int]:
    """The "50 of 124" line under the queue."""
    found = re.search(r"data-shown>(\d+)<.*?data-matching>(\d+)<", page, re.S)
    assert found, "no count under the queue"
    return int(found.group(1)), int(found.group(2))


async def test_a_secretarys_call_from_first_ring_to_hand_off(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        agency = await make_agency(session)
        a, secretary, owner_a, owner_b = agency.a, agency.secretary, agency.owner_a, agency.owner_b
        await scripts.save_draft(
            session,
            secretary,
            a,
            scripts.ScriptDraft(
                greeting="{business}, מדברת {secretary}. שלום {contact}!",
                questions="* כתובת | text\nדחוף? | yesno",
                faq="כמה עולה ביקור?\n250 ₪ כולל מע״מ",
                escalation="נזילה גדולה | אבי | טלפון מיד",
            ),
        )
        await scripts.publish_draft(session, a, now=datetime.now(UTC))
    await sign_in(client, secretary.email)
    token = await csrf_token(client, "/inbox")

    lookup = await client.get(
        "/contacts/lookup", params={"business_id": str(a.id), "phone": "054-2345678"}
    )
    assert "New caller" in lookup.text or "פונה חדש" in lookup.text
    created = await client.post(
        "/leads",
        data={
            "csrf_token": token,
            "business_id": str(a.id),
            "phone": "054-2345678",
            "name": "יעל <b>",
            "channel": "phone",
            "subject": "נזילה במטבח",
        },
    )
    assert created.status_code == 303  # the lead opens with its call log running
    lead_url, _, anchor = created.headers["location"].partition("#")
    page = await client.get(lead_url)
    assert anchor == "call-log" and "/autosave" in page.text
    # script, filled, escaped, each name isolated
    assert (
        "<bdi>אינסטלציה כהן</bdi>, מדברת <bdi>מיכל</bdi>. שלום <bdi>יעל &lt;b&gt;</bdi>!"
        in page.text
    )
    assert "250 ₪" in page.text and '<bdi dir="ltr" class="phone">054-234-5678</bdi>' in page.text

    started = await client.post(
        f"{lead_url}/calls", data={"csrf_token": token, "kind": "inbound_call"}
    )
    assert started.status_code == 303  # the same call, not a second one
    page = await client.get(lead_url)
    call_id = re.search(r"/calls/([0-9a-f-]{36})/autosave", page.text).group(1)  # type: ignore[union-attr]
    notes = "<script>alert(1)</script> הלקוחה אומרת: the pipe burst 💧"
    saved = await client.post(
        f"/calls/{call_id}/autosave",
        data={"csrf_token": token, "notes": notes, "answers[q1]": "הרצל 1"},
        headers=HTMX,
    )
    assert saved.status_code == 200 and ("Saved" in saved.text or "נשמר" in saved.text)
    reloaded = await client.get(lead_url)  # mid-call reload: nothing lost, shown escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt; הלקוחה אומרת" in reloaded.text
    assert "<script>alert(1)" not in reloaded.text and 'value="הרצל 1"' in reloaded.text

    missing = await client.post(
        f"/calls/{call_id}/wrap-up",
        data={"csrf_token": token, "notes": notes, "answers[q1]": "", "outcome": "answered"},
        headers=HTMX,
    )
    # refused in place: the call log again, as typed, the reason in it
    assert missing.status_code == 422 and missing.headers["HX-Retarget"] == "#call-form"
    assert "&lt;script&gt;alert(1)" in missing.text and 'role="alert"' in missing.text
    handed = await client.post(
        f"{lead_url}/tasks",
        data={
            "csrf_token": token,
            "assignee_id": str(owner_a.id),
            "title": "להתקשר ליעל",
            "due": "2099-01-01T10:00",
            "priority": "high",
        },
    )
    assert handed.status_code == 303
    # in place (htmx): the form again, fresh, saying to whom, and the lead's tasks out of band;
    # the call form beside it is not redrawn, so nothing she is choosing there is lost
    in_place = await client.post(
        f"{lead_url}/tasks",
        data={
            "csrf_token": token,
            "assignee_id": str(owner_a.id),
            "title": "לשלוח הצעת מחיר",
            "due": "2099-01-01T12:00",
            "priority": "normal",
        },
        headers=HTMX,
    )
    assert in_place.status_code == 200 and 'id="handoff-form"' in in_place.text
    assert "call-form" not in in_place.text and f"המשימה הועברה אל {owner_a.name}" in in_place.text
    tasks_part = in_place.text[in_place.text.index('<section id="lead-tasks-') :]
    assert 'hx-swap-oob="true"' in tasks_part and "לשלוח הצעת מחיר" in tasks_part
    assert "להתקשר ליעל" in tasks_part  # the whole list, the earlier task too
    wrapped = await client.post(
        f"/calls/{call_id}/wrap-up",
        data={
            "csrf_token": token,
            "notes": notes,
            "answers[q1]": "הרצל 1",
            "answers[q2]": "yes",
            "outcome": "transferred_to_owner",
            "summary": "נזילה, אבי יחזור אליה",
        },
        headers=HTMX,
    )
    assert wrapped.status_code == 204 and wrapped.headers["HX-Location"] == lead_url
    async with db.transaction(write=False) as session:
        lead = await session.scalar(select(Lead))
        call = await session.scalar(select(Interaction))
    assert lead is not None and call is not None
    assert lead.first_response_at is not None and lead.stage == "contacted"
    assert call.status == "done" and call.answers == {"q1": "הרצל 1", "q2": "yes"}

    client.cookies.clear()
    await sign_in(client, owner_a.email)
    tasks_page = await client.get("/tasks")
    assert "להתקשר ליעל" in tasks_page.text and "מיכל" in tasks_page.text
    client.cookies.clear()
    await sign_in(client, owner_b.email)
    assert "להתקשר ליעל" not in (await client.get("/tasks")).text
    assert (await client.get(lead_url)).status_code == 404
    assert (await client.get(f"/contacts/{lead.contact_id}")).status_code == 404


async def test_bad_input_changes_nothing(client: httpx.AsyncClient, db: Database) -> None:
    async with db.transaction() as session:
        a, b = await make_business(session), await make_business(session)
        secretary = await make_user(session, "secretary", a)
        other = await make_user(session, "secretary", b)
        foreign = await arrivals.create_lead(
            session,
            other,
            NewLead(business_id=str(b.id), phone="052-7654321"),
            now=datetime.now(UTC),
        )
    await sign_in(client, secretary.email)
    token = await csrf_token(client, "/inbox")
    refusals = [
        ("/leads", {"business_id": str(a.id), "phone": "not a number"}, 422),
        ("/leads", {"business_id": str(a.id), "phone": "050-1234567"}, 422),
        ("/leads", {"business_id": str(b.id), "phone": "054-2345678"}, 404),
        ("/leads", {"business_id": "nonsense", "phone": "054-2345678"}, 404),
        ("/leads", {"business_id": str(a.id), "phone": "054-2345678", "channel": "fax"}, 422),
        (f"/leads/{foreign.id}/claim", {}, 404),
        (f"/leads/{foreign.id}/stage", {"stage": "won"}, 404),
        (f"/leads/{foreign.id}/calls", {"kind": "inbound_call"}, 404),
        ("/leads/not-a-uuid/claim", {}, 404),
    ]
    for path, data, status in refusals:
        response = await client.post(path, data={"csrf_token": token, **data})
        assert response.status_code == status, (path, data, response.text[:200])
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(Lead)) == 1
        assert await session.scalar(select(func.count()).select_from(Task)) == 0
    assert (await client.get(f"/leads/{foreign.id}")).status_code == 404


async def test_two_secretaries_claiming_over_http_at_once(app: object, db: Database) -> None:
    """Two browsers press "Take" on the same lead in the same instant: one gets it."""
    import asyncio

    async with db.transaction() as session:
        business = await make_business(session)
        pair = [await make_user(session, "secretary", business) for _ in range(2)]
        lead = await arrivals.create_lead(
            session,
            pair[0],
            NewLead(business_id=str(business.id), phone="052-7654321"),
            now=datetime.now(UTC),
        )
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    clients = [httpx.AsyncClient(transport=transport, base_url="http://testserver") for _ in pair]
    tokens = []
    for client, secretary in zip(clients, pair, strict=True):
        await sign_in(client, secretary.email)
        tokens.append(await csrf_token(client, "/inbox"))
    responses = await asyncio.gather(
        *(
            client.post(f"/leads/{lead.id}/claim", data={"csrf_token": token}, headers=HTMX)
            for client, token in zip(clients, tokens, strict=True)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [204, 409], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 409)
    async with db.transaction(write=False) as session:
        holder = (await session.get(Lead, lead.id)).claimed_by_id  # type: ignore[union-attr]
    winner = next(s for s in pair if s.id == holder)
    assert winner.name in loser.text
    for client in clients:
        await client.aclose()


async def test_a_double_click_hands_off_once_and_notes_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        secretary = await make_user(session, "secretary", business)
        owner = await make_user(session, "owner", business)
        lead = await arrivals.create_lead(
            session,
            secretary,
            NewLead(business_id=str(business.id), phone="052-7654321"),
            now=datetime.now(UTC),
        )
    await sign_in(client, secretary.email)
    page = (await client.get(f"/leads/{lead.id}")).text
    key = re.search(r'name="request_key" value="([0-9a-f]{32})"', page).group(1)  # type: ignore[union-attr]
    token = await csrf_token(client, f"/leads/{lead.id}")
    task = {
        "csrf_token": token,
        "request_key": key,
        "assignee_id": str(owner.id),
        "title": "להתקשר",
        "due": "2099-01-01T10:00",
    }
    note = {"csrf_token": token, "request_key": key, "notes": "ביקשה שיחזרו"}
    for _ in range(2):
        assert (await client.post(f"/leads/{lead.id}/tasks", data=task)).status_code == 303
        assert (await client.post(f"/leads/{lead.id}/notes", data=note)).status_code == 303
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(Task)) == 1
        assert await session.scalar(select(func.count()).select_from(Interaction)) == 1
    fresh = {**note, "request_key": "another-form"}
    assert (await client.post(f"/leads/{lead.id}/notes", data=fresh)).status_code == 303
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(Interaction)) == 2
