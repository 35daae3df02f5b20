"""The owner's portal over HTTP, on SQLite and PostgreSQL: the review (filters, search, pages,
a fixed number of statements), rating a call and what the agency reads of it, the tasks handed
to him, his script, his hours, his availability and what it does to the escalation rules, and
that he never reaches another business's calls, tasks or ratings."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import calls, leads, scripts
from console.people import accounts
from console.people.audit import Actor
from console.sla import sla
from console.tasks import tasks
from console.tasks.task_links import LINK, TaskLinks, read_token
from models import (
    Business,
    Comment,
    Interaction,
    InteractionRating,
    Lead,
    Notification,
    Script,
    Task,
    User,
)
from tests.conftest import SECRET
from tests.factories import MovableClock, counting, make_agency, make_user, sign_in

SUNDAY_9 = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)  # 09:00 in Jerusalem, a working Sunday
HTMX = {"HX-Request": "true"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(SUNDAY_9 + timedelta(hours=3))  # 12:00 in Jerusalem


@pytest.fixture
async def client(db: Database, clock: MovableClock) -> AsyncIterator[httpx.AsyncClient]:
    """A browser against an app whose clock the test moves."""
    settings = Settings(database_url=db.url, secret_key=SECRET)
    app = create_app(settings, db=db, clock=clock, run_jobs=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


@dataclass
class World:
    a: Business
    b: Business
    michal: User  # a secretary of both businesses
    rina: User  # a secretary of A only
    avi: User  # A's owner
    dana: User  # B's owner
    admin: User


async def world(db: Database) -> World:
    async with db.transaction() as session:
        agency = await make_agency(session)
        a, michal = agency.a, agency.secretary
        rina = await make_user(session, "secretary", a, name="רינה")
        admin = await make_user(session, "admin", name="שרה")
        await scripts.save_draft(
            session,
            michal,
            a,
            scripts.ScriptDraft(
                greeting="{business}, שלום", questions="* מה הכתובת? | text\nיש נזילה? | yesno"
            ),
        )
        await scripts.publish_draft(session, a, now=SUNDAY_9)
    return World(a, agency.b, michal, rina, agency.owner_a, agency.owner_b, admin)


async def handled(
    db: Database,
    secretary: User,
    business: Business,
    *,
    phone: str,
    name: str,
    at: datetime,
    channel: str = "phone",
    subject: str = "",
    notes: str = "",
    outcome: str = "answered",
    answers: dict[str, str] | None = None,
    stage: str = "",
) -> Interaction:
    """A lead that arrived `at`, answered two minutes later, wrapped up at five."""
    async with db.transaction() as session:
        lead = await arrivals.create_lead(
            session,
            secretary,
            NewLead(
                business_id=str(business.id),
                phone=phone,
                name=name,
                channel=channel,
                subject=subject,
            ),
            now=at,
        )
        call = await calls.start_interaction(
            session, secretary, lead.id, kind="inbound_call", now=at + timedelta(minutes=2)
        )
        script = await scripts.published_script(session, business.id)
        await calls.wrap_up(
            session,
            secretary,
            call.id,
            notes=notes,
            summary="",
            answers=answers if answers is not None else ({"q1": "הרצל 1"} if script else {}),
            outcome=outcome,
            now=at + timedelta(minutes=5),
        )
        if stage:
            await leads.move_stage(
                session, secretary, lead.id, stage=stage, now=at + timedelta(minutes=6)
            )
    return call


async def token_of(client: httpx.AsyncClient, path: str = "/portal") -> str:
    match = CSRF.search((await client.get(path)).text)
    assert match, path
    return match.group(1)


async def as_user(client: httpx.AsyncClient, user: User) -> str:
    """Sign in as `user` (ending whoever was signed in); the CSRF token of the session."""
    client.cookies.clear()
    await sign_in(client, user.email)
    return await token_of(client, "/tasks")


async def post(
    client: httpx.AsyncClient, path: str, token: str, *, htmx: bool = False, **data: str
) -> httpx.Response:
    return await post_form(client, path, token, data, htmx=htmx)


async def post_form(
    client: httpx.AsyncClient, path: str, token: str, data: dict[str, str], *, htmx: bool = False
) -> httpx.Response:
    headers = {"X-CSRF-Token": token, **(HTMX if htmx else {})}
    return await client.post(path, data=data, headers=headers)


def cards(page: str) -> list[str]:
    """The handled rows of a page, by id, in their order."""
    return re.findall(r'<article id="handled-([0-9a-f-]+)"', page)


# --- the review -------------------------------------------------------------------------------


async def test_filters_and_search_find_the_right_calls(
    client: httpx.AsyncClient, db: Database, clock: MovableClock
) -> None:
    w = await world(db)
    yesterday = SUNDAY_9 - timedelta(days=1)
    leak = await handled(
        db,
        w.michal,
        w.a,
        phone="054-2345678",
        name="יעל",
        at=SUNDAY_9,
        subject="נזילה מתחת לכיור",
        notes="הלקוחה מבקשת טכנאי מחר בבוקר",
        outcome="booked_meeting",
        stage="meeting",
    )
    quote = await handled(
        db,
        w.rina,
        w.a,
        phone="052-7654321",
        name="Moshe Levi",
        at=yesterday,
        channel="whatsapp",
        subject="הצעת מחיר לדוד שמש",
        outcome="sent_quote",
        stage="quote",
    )
    other = await handled(
        db, w.michal, w.b, phone="054-3456789", name="רון", at=SUNDAY_9, subject="תור לרופא"
    )
    await as_user(client, w.avi)

    page = (await client.get("/portal")).text
    assert cards(page) == [str(leak.id), str(quote.id)]  # newest first, never B's
    assert str(other.id) not in page and "רון" not in page
    assert "מיכל" in page and "רינה" in page  # who handled each
    assert "הלקוחה מבקשת טכנאי מחר בבוקר" in page  # the notes
    assert "מה הכתובת?" in page and "הרצל 1" in page  # the answers, against the script used
    assert "2 ד׳" in page  # the response time (answered two minutes on), as every time reads

    def found(query: str) -> list[str]:
        return cards(response_text[query])

    response_text: dict[str, str] = {}
    queries = {
        "channel=whatsapp": [quote],
        "stage=meeting": [leak],
        "outcome=sent_quote": [quote],
        "from=2026-11-22&to=2026-11-22": [leak],
        "from=2026-11-21&to=2026-11-21": [quote],
        "q=כיור": [leak],  # subject
        "q=טכנאי": [leak],  # notes
        "q=moshe": [quote],  # name, any case
        "q=052-7654321": [quote],  # phone, as people type it
        "q=%2B972 54 234 5678": [leak],
        "q=100%25": [],  # a LIKE wildcard is a character here
    }
    for query, expected in queries.items():
        response = await client.get(f"/portal?{query}", headers=HTMX)
        assert response.status_code == 200, query
        assert "<html" not in response.text  # htmx gets the results only
        response_text[query] = response.text
        assert found(query) == [str(i.id) for i in expected], query

    for bad, field in (
        ("from=2026-11-22&to=2026-11-21", "to"),  # the period ends before it starts
        ("from=22/11/2026", "from"),
        ("channel=fax", "channel"),
        ("stage=gone", "stage"),
        ("outcome=maybe", "outcome"),
    ):
        refused = await client.get(f"/portal?{bad}", headers={"Accept": "application/json"})
        assert (refused.status_code, refused.json()["field"]) == (422, field), bad
    assert (await client.get(f"/portal?business={w.b.id}")).status_code == 404


async def test_the_review_pages_in_the_same_number_of_statements(
    client: httpx.AsyncClient, db: Database
) -> None:
    w = await world(db)
    await handled(db, w.michal, w.a, phone="+972542000000", name="לקוח 0", at=SUNDAY_9)
    await as_user(client, w.avi)
    await client.get("/portal")  # the session's last-seen is written at most once a minute
    with counting(db) as few:
        first = await client.get("/portal")
    assert len(cards(first.text)) == 1
    for i in range(1, 25):
        await handled(
            db,
            w.michal if i % 2 else w.rina,
            w.a,
            phone=f"+97254{2000000 + i}",
            name=f"לקוח {i}",
            at=SUNDAY_9 - timedelta(hours=i),
            notes=f"שיחה {i}",
        )
    with counting(db) as many:
        page = await client.get("/portal")
    assert len(cards(page.text)) == 20 and "page=2" in page.text
    assert len(few) == len(many), many
    second = await client.get("/portal?page=2", headers=HTMX)
    assert len(cards(second.text)) == 5 and "page=1" not in second.text
    assert set(cards(page.text)).isdisjoint(cards(second.text))


async def test_an_owner_of_two_businesses_reads_them_as_one_list_newest_first(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Each business's newest are read apart (a page per business on PostgreSQL) and merged:
    the pages hold the two businesses' calls interleaved by time, none twice, none missed, and
    a filter pages the same way."""
    w = await world(db)
    async with db.transaction() as session:
        await accounts.link_user(session, await session.get_one(User, w.avi.id), w.b)
    made: list[tuple[datetime, str, str]] = []
    for i in range(30):
        business = w.a if i % 3 else w.b  # a third of them the second business's
        at = SUNDAY_9 - timedelta(minutes=37 * i)
        row = await handled(
            db,
            w.michal,
            business,
            phone=f"+97254{3000000 + i}",
            name=f"לקוח {i}",
            at=at,
            channel="phone" if i % 2 else "whatsapp",
        )
        made.append((at, str(row.id), "phone" if i % 2 else "whatsapp"))
    await as_user(client, w.avi)
    newest_first = [row_id for _, row_id, _ in sorted(made, reverse=True)]
    first = cards((await client.get("/portal")).text)
    second = cards((await client.get("/portal?page=2", headers=HTMX)).text)
    assert first + second == newest_first
    phone_calls = [
        row_id for _, row_id, channel in sorted(made, reverse=True) if channel == "phone"
    ]
    assert cards((await client.get("/portal?channel=phone")).text) == phone_calls
    only_b = cards((await client.get(f"/portal?business={w.b.id}")).text)
    assert only_b == [r for r in newest_first if r in {str(i) for _, i, _ in made[::3]}]


# --- ratings ----------------------------------------------------------------------------------


async def test_the_owner_rates_a_call_and_the_agency_sees_it_per_secretary(
    client: httpx.AsyncClient, db: Database
) -> None:
    w = await world(db)
    first = await handled(db, w.michal, w.a, phone="054-2345678", name="יעל", at=SUNDAY_9)
    second = await handled(db, w.rina, w.a, phone="052-7654321", name="משה", at=SUNDAY_9)
    foreign = await handled(db, w.michal, w.b, phone="054-3456789", name="רון", at=SUNDAY_9)
    token = await as_user(client, w.avi)

    rated = await post(
        client, f"/portal/interactions/{first.id}/rating", token, htmx=True, stars="4"
    )
    assert rated.status_code == 200 and 'value="4" required checked' in rated.text
    again = await post(
        client,
        f"/portal/interactions/{first.id}/rating",
        token,
        htmx=True,
        stars="2",
        comment="לא חזרו ללקוחה <b>בזמן</b>",
    )
    assert again.status_code == 200 and "&lt;b&gt;בזמן&lt;/b&gt;" in again.text
    await post(client, f"/portal/interactions/{second.id}/rating", token, stars="5")
    for stars in ("0", "6", "", "four", "4.5"):
        refused = await post(client, f"/portal/interactions/{first.id}/rating", token, stars=stars)
        assert refused.status_code == 422, stars
    gone = f"/portal/interactions/{foreign.id}/rating"
    assert (await post(client, gone, token, stars="1")).status_code == 404
    not_an_id = "/portal/interactions/nope/rating"
    assert (await post(client, not_an_id, token, stars="1")).status_code == 404

    async with db.transaction(write=False) as session:
        ratings = {r.interaction_id: r for r in await session.scalars(select(InteractionRating))}
    assert set(ratings) == {first.id, second.id}  # once per interaction, changed in place
    assert (ratings[first.id].stars, ratings[first.id].comment) == (2, "לא חזרו ללקוחה <b>בזמן</b>")
    assert ratings[second.id].stars == 5

    page = (await client.get("/portal")).text
    assert 'value="2" required checked' in page and 'value="5" required checked' in page

    # the agency, per secretary; the owner and the secretaries never reach that page
    assert (await client.get("/agency/ratings")).status_code == 404
    await as_user(client, w.michal)
    assert (await client.get("/agency/ratings")).status_code == 404
    secretary_token = await token_of(client, "/inbox")
    rating = await post(
        client, f"/portal/interactions/{first.id}/rating", secretary_token, stars="5"
    )
    assert rating.status_code == 404
    await as_user(client, w.admin)
    report = (await client.get("/agency/ratings")).text
    michal_row = re.search(rf'id="secretary-{w.michal.id}">(.*?)</tr>', report, re.S)
    rina_row = re.search(rf'id="secretary-{w.rina.id}">(.*?)</tr>', report, re.S)
    assert michal_row and "2.0" in michal_row.group(1) and "<td>1</td>" in michal_row.group(1)
    assert rina_row and "5.0" in rina_row.group(1)
    assert "לא חזרו ללקוחה" in report
    only_b = (await client.get(f"/agency/ratings?business={w.b.id}")).text
    assert "לא חזרו ללקוחה" not in only_b and f'id="secretary-{w.michal.id}"' not in only_b


async def test_a_message_that_came_in_is_not_rated(client: httpx.AsyncClient, db: Database) -> None:
    w = await world(db)
    async with db.transaction() as session:
        lead = await arrivals.create_lead(
            session, w.michal, NewLead(business_id=str(w.a.id), phone="054-2345678"), now=SUNDAY_9
        )
        incoming = Interaction(
            business_id=w.a.id,
            lead_id=lead.id,
            contact_id=lead.contact_id,
            kind="whatsapp",
            status="done",
            direction="in",
            started_at=SUNDAY_9,
            notes="שלום?",
        )
        session.add(incoming)
    token = await as_user(client, w.avi)
    assert str(incoming.id) not in (await client.get("/portal")).text
    refused = await post(client, f"/portal/interactions/{incoming.id}/rating", token, stars="3")
    assert refused.status_code == 422


# --- tasks ------------------------------------------------------------------------------------


async def test_the_owner_acknowledges_finishes_and_comments_on_his_task(
    client: httpx.AsyncClient, db: Database, clock: MovableClock
) -> None:
    w = await world(db)
    call = await handled(db, w.michal, w.a, phone="054-2345678", name="יעל", at=SUNDAY_9)
    async with db.transaction() as session:
        task = await tasks.hand_off(
            session,
            w.michal,
            call.lead_id,
            tasks.HandOff(assignee_id=str(w.avi.id), title="להתקשר ליעל", due="2026-11-23T12:00"),
            now=SUNDAY_9 + timedelta(minutes=10),
        )
    token = await as_user(client, w.avi)
    page = (await client.get("/portal")).text
    assert f'id="owner-task-{task.id}"' in page and "להתקשר ליעל" in page

    seen = await post(client, f"/portal/tasks/{task.id}/ack", token, htmx=True)
    assert seen.status_code == 200 and "✓" in seen.text and "<html" not in seen.text
    commented = await post(
        client,
        f"/portal/tasks/{task.id}/comments",
        token,
        htmx=True,
        body="אחזור אליה אחרי 16:00",
        request_key="k1",
    )
    assert "אחזור אליה אחרי 16:00" in commented.text
    twice = await post(
        client,
        f"/portal/tasks/{task.id}/comments",
        token,
        body="אחזור אליה אחרי 16:00",
        request_key="k1",
    )
    assert twice.status_code == 303  # the double click wrote nothing more
    empty = await post(client, f"/portal/tasks/{task.id}/comments", token, body="  ")
    assert empty.status_code == 422
    done = await post(client, f"/portal/tasks/{task.id}/done", token, htmx=True)
    assert done.status_code == 200 and 'class="tag"' in done.text
    async with db.transaction(write=False) as session:
        stored = await session.get_one(Task, task.id, populate_existing=True)
        comments = (await session.scalars(select(Comment))).all()
    assert stored.acknowledged_at == clock.moment and stored.acknowledged_via == "console"
    assert stored.status == "done" and stored.completed_at == clock.moment
    assert [(c.body, c.task_id, c.lead_id) for c in comments] == [
        ("אחזור אליה אחרי 16:00", task.id, call.lead_id)
    ]
    assert f'id="owner-task-{task.id}"' not in (await client.get("/portal")).text  # done

    # the secretaries read his comment on the lead page, and may answer on the lead
    secretary_token = await as_user(client, w.rina)
    lead_page = (await client.get(f"/leads/{call.lead_id}")).text
    assert "אחזור אליה אחרי 16:00" in lead_page and "להתקשר ליעל" in lead_page
    answer = await post(
        client, f"/leads/{call.lead_id}/comments", secretary_token, body="תודה, עדכנתי את הלקוחה"
    )
    assert answer.status_code == 303 and answer.headers["location"].endswith("#comments")
    await as_user(client, w.avi)
    owner_view = (await client.get(f"/portal/leads/{call.lead_id}")).text
    assert "תודה, עדכנתי את הלקוחה" in owner_view and "אחזור אליה אחרי 16:00" in owner_view


# --- the owner's script -----------------------------------------------------------------------


async def test_the_owners_script_waits_for_the_agency_unless_it_lets_him_publish(
    client: httpx.AsyncClient, db: Database
) -> None:
    w = await world(db)
    path = f"/portal/businesses/{w.a.id}/script"
    token = await as_user(client, w.avi)
    editor = await client.get(path)
    assert editor.status_code == 200 and "מה הכתובת?" in editor.text

    async def versions() -> list[tuple[int, str, str]]:
        async with db.transaction(write=False) as session:
            found = await session.scalars(
                select(Script).where(Script.business_id == w.a.id).order_by(Script.version)
            )
            return [(s.version, s.status, s.greeting) for s in found]

    before = await versions()
    no_greeting = await client.post(
        path,
        data={"action": "save", "greeting": "  ", "faq": "כמה עולה ביקור?\n250 ₪"},
        headers={"X-CSRF-Token": token, "Accept": "application/json"},
    )
    assert no_greeting.status_code == 422 and no_greeting.json()["field"] == "greeting"
    assert await versions() == before  # nothing changed
    bad_faq = await post(client, path, token, action="save", greeting="שלום", faq="רק שאלה")
    assert bad_faq.status_code == 422 and await versions() == before
    not_allowed = await post(client, path, token, action="publish", greeting="שלום")
    assert not_allowed.status_code == 422 and await versions() == before

    preview = await post(client, path, token, htmx=True, action="preview", greeting="היי <i>")
    assert "היי &lt;i&gt;" in preview.text and await versions() == before
    sent = await post(
        client, path, token, action="save", greeting="אינסטלציה כהן, שלום", faq="מחיר?\n250 ₪"
    )
    assert sent.status_code == 303 and sent.headers["location"].endswith("?saved=draft")
    assert await versions() == [*before, (2, "draft", "אינסטלציה כהן, שלום")]

    # the agency sees whose draft it is, and publishes it
    admin_token = await as_user(client, w.admin)
    agency_editor = (await client.get(f"/agency/businesses/{w.a.id}/script")).text
    assert "אבי" in agency_editor and "אינסטלציה כהן, שלום" in agency_editor
    overview = (await client.get("/agency")).text
    assert "טיוטה של הבעלים ממתינה" in overview
    await post(
        client,
        f"/agency/businesses/{w.a.id}/script",
        admin_token,
        action="publish",
        greeting="אינסטלציה כהן, שלום",
        faq="מחיר?\n250 ₪",
    )
    assert (await versions())[-1] == (2, "published", "אינסטלציה כהן, שלום")
    allowed = await post(
        client, f"/agency/businesses/{w.a.id}/script/owner-publish", admin_token, allowed="1"
    )
    assert allowed.status_code == 303

    # now he publishes himself
    token = await as_user(client, w.avi)
    published = await post(client, path, token, action="publish", greeting="כהן, בוקר טוב")
    assert published.headers["location"].endswith("?saved=published")
    assert (await versions())[-1] == (3, "published", "כהן, בוקר טוב")
    assert (await client.get(f"/portal/businesses/{w.b.id}/script")).status_code == 404
    assert (await post(client, f"/portal/businesses/{w.b.id}/script", token)).status_code == 404
    assert (await client.get(f"/agency/businesses/{w.a.id}/script")).status_code == 404


# --- the owner's hours ------------------------------------------------------------------------


async def test_the_owner_edits_his_hours_with_the_agencys_editor_and_checks(
    client: httpx.AsyncClient, db: Database
) -> None:
    w = await world(db)
    base = f"/portal/businesses/{w.a.id}/hours"
    token = await as_user(client, w.avi)
    page = await client.get(base)
    assert page.status_code == 200 and f'action="{base}"' in page.text

    async def hours() -> tuple[dict[str, Any], dict[str, Any]]:
        async with db.transaction(write=False) as session:
            business = await session.get_one(Business, w.a.id, populate_existing=True)
            return business.weekly_hours, business.hours_exceptions

    before = await hours()
    week = {"timezone": "Asia/Jerusalem", "sun_start": "08:00", "sun_end": "13:00"}
    overlap = await client.post(
        base,
        data={**week, "sun_start": ["08:00", "12:00"], "sun_end": ["13:00", "16:00"]},
        headers={"X-CSRF-Token": token, "Accept": "application/json"},
    )
    assert overlap.status_code == 422 and overlap.json()["field"] == "sun"
    assert await hours() == before
    backwards = await post_form(
        client, base, token, {**week, "mon_start": "18:00", "mon_end": "09:00"}
    )
    assert backwards.status_code == 422 and await hours() == before
    past = await post(client, f"{base}/exceptions", token, date="2026-11-01", kind="closed")
    assert past.status_code == 422 and await hours() == before

    saved = await post_form(client, base, token, week)
    assert saved.status_code == 303 and saved.headers["location"].startswith(f"{base}?saved=1")
    closed = await post(client, f"{base}/exceptions", token, date="2026-12-24", kind="closed")
    assert closed.status_code == 303
    weekly, exceptions = await hours()
    assert weekly["sun"] == [["08:00", "13:00"]] and weekly["mon"] == []
    assert exceptions["closed_dates"] == ["2026-12-24"]

    other = f"/portal/businesses/{w.b.id}/hours"
    assert (await client.get(other)).status_code == 404
    assert (await post_form(client, other, token, week)).status_code == 404
    assert (await client.get(f"/agency/businesses/{w.a.id}/hours")).status_code == 404


# --- availability and escalation --------------------------------------------------------------


async def test_the_secretaries_see_his_status_until_it_ends_by_itself(
    client: httpx.AsyncClient, db: Database, clock: MovableClock
) -> None:
    w = await world(db)
    call = await handled(db, w.michal, w.a, phone="054-2345678", name="יעל", at=SUNDAY_9)
    token = await as_user(client, w.avi)
    for bad in (
        {"kind": "sleeping", "until": "2026-11-22T14:00"},
        {"kind": "meeting", "until": "2026-11-22T11:00"},  # it is 12:00 there
        {"kind": "meeting", "until": "2028-01-01T10:00"},
        {"kind": "meeting", "until": "tomorrow"},
        {"kind": "meeting", "until": "", "note": "x" * 201},
    ):
        refused = await post_form(client, "/portal/availability", token, bad)
        assert refused.status_code == 422, bad
    async with db.transaction(write=False) as session:
        assert (await session.get_one(User, w.avi.id)).away_kind is None

    meeting = await post(
        client,
        "/portal/availability",
        token,
        kind="meeting",
        until="2026-11-22T14:00",
        note="דחוף: לדנה",
    )
    assert meeting.status_code == 303
    assert "בפגישה עד 14:00" in (await client.get("/portal")).text

    await as_user(client, w.michal)
    lead_page = (await client.get(f"/leads/{call.lead_id}")).text
    assert "בפגישה עד 14:00" in lead_page and "דחוף: לדנה" in lead_page
    assert "כשיחזור" in lead_page  # the hand-off form warns her

    clock.moment = SUNDAY_9 + timedelta(hours=5, minutes=1)  # 14:01 there
    assert "בפגישה עד" not in (await client.get(f"/leads/{call.lead_id}")).text

    token = await as_user(client, w.avi)
    await post(client, "/portal/availability", token, kind="vacation", until="2026-11-26T09:00")
    assert "בחופשה עד יום חמישי 09:00" in (await client.get("/portal")).text
    await post(client, "/locale", token, locale="en", next="/portal")
    assert "On vacation until Thursday 09:00" in (await client.get("/portal")).text


async def test_while_he_is_away_breaches_skip_him_and_hand_offs_wait_for_him(
    client: httpx.AsyncClient, db: Database, clock: MovableClock
) -> None:
    w = await world(db)
    async with db.transaction() as session:
        business = await session.get_one(Business, w.a.id)
        await sla.set_policy(
            session, Actor.command_line(SUNDAY_9), business, minutes=10, notify_owner=True
        )
    token = await as_user(client, w.avi)
    clock.moment = SUNDAY_9
    until = "2026-11-22T13:00"  # 11:00 UTC
    await post(client, "/portal/availability", token, kind="meeting", until=until)

    async def breach_at(moment: datetime, phone: str) -> list[Notification]:
        async with db.transaction() as session:
            await arrivals.create_lead(
                session, w.michal, NewLead(business_id=str(w.a.id), phone=phone), now=moment
            )
        async with db.transaction() as session:
            await sla.sweep(session, now=moment + timedelta(minutes=30))
        async with db.transaction(write=False) as session:
            found = await session.scalars(
                select(Notification).where(
                    Notification.user_id == w.avi.id, Notification.alert_id.is_not(None)
                )
            )
            return list(found)

    assert await breach_at(SUNDAY_9, "054-2345678") == []  # the agency's to fix, not his
    after = await breach_at(SUNDAY_9 + timedelta(hours=5), "052-7654321")  # his status is over
    assert len(after) == 1

    # a hand-off while he is on vacation: the secretary is warned, the message waits for him
    clock.moment = SUNDAY_9 + timedelta(hours=6)
    token = await as_user(client, w.avi)
    await post(client, "/portal/availability", token, kind="vacation", until="2026-11-24T09:00")
    call = await handled(db, w.michal, w.a, phone="054-3456789", name="רון", at=clock.moment)
    secretary_token = await as_user(client, w.michal)
    assert "כשיחזור" in (await client.get(f"/leads/{call.lead_id}")).text
    handed = await post(
        client,
        f"/leads/{call.lead_id}/tasks",
        secretary_token,
        assignee_id=str(w.avi.id),
        title="להחזיר טלפון לרון",
        due="2026-11-24T12:00",
        priority="normal",
    )
    assert handed.status_code == 303
    async with db.transaction(write=False) as session:
        held = await session.scalar(
            select(Notification).where(Notification.idempotency_key.like("task:%:handed"))
        )
    assert held is not None and held.next_attempt_at == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)

    # he comes back early: it goes now
    clock.moment = SUNDAY_9 + timedelta(days=1)
    token = await as_user(client, w.avi)
    back = await post(client, "/portal/availability", token, kind="")
    assert back.status_code == 303
    async with db.transaction(write=False) as session:
        released = await session.get_one(Notification, held.id, populate_existing=True)
        owner = await session.get_one(User, w.avi.id, populate_existing=True)
    assert released.next_attempt_at == clock.moment and owner.away_kind is None
    portal = (await client.get("/portal")).text
    # Avi has not chosen a form of address: the default, neutral plural
    assert 'class="status-now"><strong>זמינים</strong>' in portal


# --- tenancy ----------------------------------------------------------------------------------


async def test_an_owner_never_reaches_another_business(
    client: httpx.AsyncClient, db: Database
) -> None:
    w = await world(db)
    theirs = await handled(db, w.michal, w.b, phone="054-3456789", name="רון", at=SUNDAY_9)
    async with db.transaction() as session:
        task = await tasks.hand_off(
            session,
            w.michal,
            theirs.lead_id,
            tasks.HandOff(assignee_id=str(w.dana.id), title="לחזור לרון", due="2026-11-23T12:00"),
            now=SUNDAY_9,
        )
        owners_task = await session.get_one(Task, task.id)
        lead = await session.get_one(Lead, theirs.lead_id)
    del owners_task
    token = await as_user(client, w.avi)
    assert "רון" not in (await client.get("/portal")).text
    assert "לחזור לרון" not in (await client.get("/portal")).text
    for path in (f"/portal/leads/{lead.id}", f"/leads/{lead.id}", "/agency/ratings"):
        assert (await client.get(path)).status_code == 404, path
    for path, data in (
        (f"/portal/interactions/{theirs.id}/rating", {"stars": "5"}),
        (f"/portal/tasks/{task.id}/ack", {}),
        (f"/portal/tasks/{task.id}/done", {}),
        (f"/portal/tasks/{task.id}/comments", {"body": "שלום"}),
        (f"/leads/{lead.id}/comments", {"body": "שלום"}),
    ):
        assert (await post_form(client, path, token, data)).status_code == 404, path
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(InteractionRating)) == 0
        assert await session.scalar(select(func.count()).select_from(Comment)) == 0
        stored = await session.get_one(Task, task.id)
    assert stored.acknowledged_at is None and stored.status == "open"

    # and a task of his own business handed to a secretary is not his to answer either
    mine = await handled(db, w.michal, w.a, phone="054-2345678", name="יעל", at=SUNDAY_9)
    async with db.transaction() as session:
        to_rina = await tasks.hand_off(
            session,
            w.michal,
            mine.lead_id,
            tasks.HandOff(assignee_id=str(w.rina.id), title="בדיקה", due="2026-11-23T12:00"),
            now=SUNDAY_9,
        )
    assert (await post(client, f"/portal/tasks/{to_rina.id}/ack", token)).status_code == 404


async def test_the_owners_lead_page_shows_the_answers_of_the_version_used(
    client: httpx.AsyncClient, db: Database
) -> None:
    w = await world(db)
    call = await handled(
        db,
        w.michal,
        w.a,
        phone="054-2345678",
        name="יעל",
        at=SUNDAY_9,
        notes="הערות <script>x</script>",
        answers={"q1": "הרצל 1", "q2": "yes"},
    )
    async with db.transaction() as session:  # the script changes afterwards
        await scripts.save_draft(
            session, w.michal, w.a, scripts.ScriptDraft(greeting="שלום", questions="מה השם? | text")
        )
        await scripts.publish_draft(session, w.a, now=SUNDAY_9 + timedelta(hours=1))
    token = await as_user(client, w.avi)
    page = (await client.get(f"/portal/leads/{call.lead_id}")).text
    assert "מה הכתובת?" in page and "הרצל 1" in page and "מה השם?" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x" not in page
    commented = await post(
        client,
        f"/leads/{call.lead_id}/comments",
        token,
        body="מעולה, תודה!",
        next=f"/portal/leads/{call.lead_id}",
    )
    assert commented.headers["location"] == f"/portal/leads/{call.lead_id}#comments"
    assert "מעולה, תודה!" in (await client.get(f"/portal/leads/{call.lead_id}")).text
    await as_user(client, w.rina)
    assert "מעולה, תודה!" in (await client.get(f"/leads/{call.lead_id}")).text


async def test_the_links_in_a_held_hand_off_live_a_week_from_his_return(db: Database) -> None:
    w = await world(db)
    back = SUNDAY_9 + timedelta(days=10)
    async with db.transaction() as session:
        owner = await session.get_one(User, w.avi.id)
        owner.away_kind, owner.away_until = "vacation", back
    call = await handled(db, w.michal, w.a, phone="054-2345678", name="יעל", at=SUNDAY_9)
    links = TaskLinks(SECRET, "https://console.example.test")
    async with db.transaction() as session:
        task = await tasks.hand_off(
            session,
            w.michal,
            call.lead_id,
            tasks.HandOff(assignee_id=str(w.avi.id), title="להתקשר ליעל", due="2026-12-03T12:00"),
            now=SUNDAY_9,
            links=links,
        )
        notice = await session.scalar(
            select(Notification).where(Notification.idempotency_key == f"task:{task.id}:handed")
        )
    assert notice is not None and notice.next_attempt_at == back
    token = re.search(r"/ack/(\S+)", notice.body)
    assert token is not None
    action = read_token(SECRET, token.group(1), purpose=LINK, now=back + timedelta(days=6))
    assert action.task_id == task.id
