"""The business's calendar and the customers' surveys, through HTTP on both databases: booking
inside the hours and never twice at once (two concurrent requests), the signed ICS feed and its
revocation, the contact's confirmation and reminder queued once, the survey of a won lead made
once, answered once, refused when forged or expired, and its numbers in the KPIs."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select, update

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from console.calendar.calendar_feed import calendar_ics
from console.calendar.ics import ics_text
from console.channels.lines import add_line
from console.contacts.contacts import normalise_phone
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import leads
from console.leads.surveys import SurveyLinks
from models import AuditEvent, Business, Contact, Lead, Notification, User
from models.records import Appointment, Survey
from tests.conftest import SECRET
from tests.factories import (
    MovableClock,
    counting,
    csrf_token,
    make_business,
    make_user,
    sign_in,
)
from workers.appointments import remind_appointments
from workers.digests import send_digests

SUNDAY_9 = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)  # 09:00 in Jerusalem, a working Sunday
MONDAY = "2026-11-23"
JERUSALEM = ZoneInfo("Asia/Jerusalem")
PUBLIC = "https://console.example.test"
SURVEY_LINK = re.compile(re.escape(PUBLIC) + r"(/survey/\S+)")


@dataclass
class Desk:
    business: Business
    secretary: User
    owner: User
    lead: Lead


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(SUNDAY_9)


@pytest.fixture
async def web(db: Database, clock: MovableClock) -> AsyncIterator[object]:
    settings = Settings(database_url=db.url, secret_key=SECRET, public_url=PUBLIC)
    app = create_app(settings, db=db, clock=clock, run_jobs=False)
    async with app.router.lifespan_context(app):
        yield app


async def browser(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def secretary_client(web: object) -> AsyncIterator[httpx.AsyncClient]:
    async with await browser(web) as client:
        yield client


@pytest.fixture
async def guest(web: object) -> AsyncIterator[httpx.AsyncClient]:
    async with await browser(web) as client:
        yield client


async def desk(db: Database, *, stage: str = "meeting", **contact: str) -> Desk:
    async with db.transaction() as session:
        business = await make_business(session, locale="he")
        secretary = await make_user(session, "secretary", business)
        owner = await make_user(session, "owner", business, locale="en")
        lead = await arrivals.create_lead(
            session,
            None,
            NewLead(
                business_id=str(business.id),
                phone=contact.get("phone", "052-7654321"),
                email=contact.get("email", "dana@example.test"),
                name="דנה",
            ),
            now=SUNDAY_9,
            business=business,
        )
        if "preferred_channel" in contact:
            found = await session.get_one(Contact, lead.contact_id)
            found.preferred_channel = contact["preferred_channel"]
        if stage != lead.stage:
            await leads.move_stage(session, secretary, lead.id, stage=stage, now=SUNDAY_9)
    return Desk(business, secretary, owner, lead)


def slot(start: str, minutes: int = 60, day: str = MONDAY, **more: str) -> dict[str, str]:
    return {"day": day, "start": start, "minutes": str(minutes), **more}


async def book(
    client: httpx.AsyncClient, lead: Lead, form: dict[str, str], *, csrf: str | None = None
) -> httpx.Response:
    token = csrf or await csrf_token(client, f"/leads/{lead.id}")
    return await client.post(f"/leads/{lead.id}/appointments", data={"csrf_token": token, **form})


async def booked(db: Database, business: Business) -> list[Appointment]:
    async with db.transaction(write=False) as session:
        statement = (
            select(Appointment)
            .where(Appointment.business_id == business.id)
            .order_by(Appointment.starts_at)
        )
        return list((await session.scalars(statement)).all())


async def notices(db: Database, prefix: str) -> list[Notification]:
    async with db.transaction(write=False) as session:
        statement = select(Notification).where(Notification.idempotency_key.startswith(prefix))
        return list((await session.scalars(statement)).all())


# --- booking ------------------------------------------------------------------------------------


async def test_the_secretary_books_inside_the_hours_and_the_contact_is_told_once(
    db: Database, secretary_client: httpx.AsyncClient
) -> None:
    story = await desk(db)
    await sign_in(secretary_client, story.secretary.email)
    page = await secretary_client.get(f"/leads/{story.lead.id}")
    assert 'action="/leads/' + str(story.lead.id) + '/appointments"' in page.text
    token = await csrf_token(secretary_client, f"/leads/{story.lead.id}")
    form = slot("10:00", 45, title="פגישת ייעוץ", request_key="k-1")

    first = await book(secretary_client, story.lead, form, csrf=token)
    again = await book(secretary_client, story.lead, form, csrf=token)  # a double click
    assert first.status_code == again.status_code == 303

    [appointment] = await booked(db, story.business)
    assert appointment.starts_at == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # 10:00 IST
    assert appointment.ends_at == datetime(2026, 11, 23, 8, 45, tzinfo=UTC)
    assert appointment.lead_id == story.lead.id and appointment.created_by_id == story.secretary.id
    [confirmation] = await notices(db, f"appointment:{appointment.id}:")
    assert confirmation.idempotency_key == f"appointment:{appointment.id}:confirm"
    assert confirmation.channel == "email" and confirmation.recipient == "dana@example.test"
    assert story.business.name in confirmation.body
    page = await secretary_client.get(f"/leads/{story.lead.id}")
    assert "פגישת ייעוץ" in page.text


async def test_outside_the_hours_and_before_the_meeting_stage_are_refused(
    db: Database, secretary_client: httpx.AsyncClient
) -> None:
    story = await desk(db)
    await sign_in(secretary_client, story.secretary.email)
    for form in (
        slot("07:30"),  # before opening
        slot("17:30", 60),  # runs past closing
        slot("10:00", day="2026-11-28"),  # a Saturday
        slot("08:00", day="2026-11-21"),  # the past
        slot("10:00", 0),
        slot("25:00"),
    ):
        refused = await book(secretary_client, story.lead, form)
        assert refused.status_code == 422, form
    async with db.transaction() as session:
        early = await arrivals.create_lead(
            session,
            None,
            NewLead(business_id=str(story.business.id), phone="052-7654322", name="רון"),
            now=SUNDAY_9,
            business=story.business,
        )
    refused = await book(secretary_client, early, slot("10:00"))
    assert refused.status_code == 422  # not at the meeting stage yet
    assert await booked(db, story.business) == []


async def test_two_concurrent_bookings_of_overlapping_slots_book_one(
    db: Database, web: object
) -> None:
    story = await desk(db)
    async with await browser(web) as one, await browser(web) as two:
        await sign_in(one, story.secretary.email)
        await sign_in(two, story.secretary.email)
        # Fetched together, so the pool holds a connection for each when the race starts.
        tokens = await asyncio.gather(
            *(csrf_token(c, f"/leads/{story.lead.id}") for c in (one, two))
        )
        answers = await asyncio.gather(
            book(one, story.lead, slot("10:00", 60, request_key="a"), csrf=tokens[0]),
            book(two, story.lead, slot("10:30", 60, request_key="b"), csrf=tokens[1]),
        )
    assert sorted(answer.status_code for answer in answers) == [303, 409]
    assert len(await booked(db, story.business)) == 1
    # Back to back is not an overlap, and a cancelled slot is free again.
    async with await browser(web) as three:
        await sign_in(three, story.secretary.email)
        [first] = await booked(db, story.business)
        start = first.ends_at.astimezone(JERUSALEM).strftime("%H:%M")
        assert (await book(three, story.lead, slot(start, 30))).status_code == 303
        token = await csrf_token(three, f"/leads/{story.lead.id}")
        cancelled = await three.post(f"/appointments/{first.id}/cancel", data={"csrf_token": token})
        assert cancelled.status_code == 303
        again = first.starts_at.astimezone(JERUSALEM).strftime("%H:%M")
        assert (await book(three, story.lead, slot(again, 30))).status_code == 303
    assert len([a for a in await booked(db, story.business) if a.cancelled_at is None]) == 2


async def test_the_reminder_is_queued_once_the_day_before_on_the_preferred_channel(
    db: Database, secretary_client: httpx.AsyncClient
) -> None:
    story = await desk(db, preferred_channel="sms")
    await sign_in(secretary_client, story.secretary.email)
    assert (await book(secretary_client, story.lead, slot("10:00"))).status_code == 303
    [appointment] = await booked(db, story.business)
    ctx = {"db": db}

    assert await remind_appointments(ctx, now=appointment.starts_at - timedelta(days=2)) == 0
    day_before = appointment.starts_at - timedelta(hours=20)
    assert await remind_appointments(ctx, now=day_before) == 1
    assert await remind_appointments(ctx, now=day_before + timedelta(minutes=5)) == 0
    keys = sorted(n.idempotency_key for n in await notices(db, f"appointment:{appointment.id}:"))
    assert keys == [
        f"appointment:{appointment.id}:confirm",
        f"appointment:{appointment.id}:reminder",
    ]
    for notice in await notices(db, f"appointment:{appointment.id}:"):
        assert notice.channel == "sms" and notice.recipient == "+972527654321"


async def test_reminders_for_many_businesses_read_their_lines_once(db: Database) -> None:
    """Each reminder goes from its business's own SMS line; the job reads the lines of all the
    businesses in one query, not once per appointment."""
    tomorrow = SUNDAY_9 + timedelta(days=1)
    numbers = iter(["052-7654321", "052-7654322", "052-7654323", "052-7654324"])
    async with db.transaction() as session:
        for n, sender in enumerate(["+972522345678", "+972523456789"]):
            business = await make_business(session, slug=f"clinic-{n}")
            await add_line(session, business, "sms", sender)
            for hour in (1, 2):
                contact = Contact(
                    business_id=business.id, name="דנה", phone=normalise_phone(next(numbers))
                )
                session.add(contact)
                await session.flush()
                starts = tomorrow + timedelta(hours=hour)
                session.add(
                    Appointment(
                        business_id=business.id,
                        contact_id=contact.id,
                        starts_at=starts,
                        ends_at=starts + timedelta(hours=1),
                    )
                )
    with counting(db) as statements:
        assert await remind_appointments({"db": db}, now=SUNDAY_9 + timedelta(hours=6)) == 4
    assert sum("FROM lines" in sql for sql in statements) == 1, statements
    reminders = await notices(db, "appointment:")
    assert sorted(n.sender for n in reminders) == ["+972522345678"] * 2 + ["+972523456789"] * 2


# --- the calendar feed --------------------------------------------------------------------------


async def test_the_owner_subscribes_to_a_signed_feed_that_a_new_version_revokes(
    db: Database, web: object, secretary_client: httpx.AsyncClient, guest: httpx.AsyncClient
) -> None:
    story = await desk(db)
    await sign_in(secretary_client, story.secretary.email)
    title = "Consult; fees, and\\more"
    form = slot("10:00", 30, title=title, location="Herzl 1, Tel Aviv")
    assert (await book(secretary_client, story.lead, form)).status_code == 303

    async with await browser(web) as owner:
        await sign_in(owner, story.owner.email)
        portal = await owner.get("/portal/appointments")
        assert portal.status_code == 200 and title in portal.text
        feed_url = re.search(r'value="(https://[^"]+/calendar/[^"]+\.ics)"', portal.text)
    assert feed_url is not None
    path = feed_url.group(1).removeprefix(PUBLIC)

    feed = await guest.get(path)
    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith("text/calendar")
    text = feed.text
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    unfolded = text.replace("\r\n ", "")
    [appointment] = await booked(db, story.business)
    assert f"UID:{appointment.id}@mazkira\r\n" in unfolded
    assert "DTSTART:20261123T080000Z\r\n" in unfolded
    assert "DTEND:20261123T083000Z\r\n" in unfolded
    assert re.search(r"DTSTAMP:\d{8}T\d{6}Z\r\n", unfolded)
    assert "SUMMARY:Consult\\; fees\\, and\\\\more (דנה)\r\n" in unfolded
    assert "LOCATION:Herzl 1\\, Tel Aviv\r\n" in unfolded

    assert (await guest.get(path.replace(".ics", "x.ics"))).status_code == 404  # damaged
    forged = URLSafeSerializer("another-secret", salt="mazkira.calendar-feed").dumps(
        [story.business.id.hex, 1]
    )
    assert (await guest.get(f"/calendar/{forged}.ics")).status_code == 404
    async with db.transaction() as session:
        await session.execute(
            update(Business)
            .where(Business.id == story.business.id)
            .values(calendar_feed_version=Business.calendar_feed_version + 1)
        )
    assert (await guest.get(path)).status_code == 404  # the old link is revoked


async def test_the_owner_revokes_his_feed_and_gets_a_new_link(
    db: Database, web: object, guest: httpx.AsyncClient
) -> None:
    story = await desk(db)
    async with db.transaction() as session:
        stranger = await make_user(session, "owner", await make_business(session))

    async def feed_link(client: httpx.AsyncClient) -> str:
        portal = await client.get("/portal/appointments")
        assert f'action="/portal/businesses/{story.business.id}/calendar-feed"' in portal.text
        found = re.search(r'value="(https://[^"]+/calendar/[^"]+\.ics)"', portal.text)
        assert found is not None
        return found.group(1).removeprefix(PUBLIC)

    revoke = f"/portal/businesses/{story.business.id}/calendar-feed"
    async with await browser(web) as owner, await browser(web) as other:
        await sign_in(owner, story.owner.email)
        old = await feed_link(owner)
        assert (await guest.get(old)).status_code == 200
        # Another business's owner and the secretary cannot revoke it (404), nor change it.
        await sign_in(other, stranger.email)
        token = await csrf_token(other, "/portal/appointments")
        assert (await other.post(revoke, data={"csrf_token": token})).status_code == 404
        await other.post("/logout", data={"csrf_token": token})
        await sign_in(other, story.secretary.email)
        token = await csrf_token(other, f"/leads/{story.lead.id}")
        assert (await other.post(revoke, data={"csrf_token": token})).status_code == 404
        assert (await guest.get(old)).status_code == 200

        token = await csrf_token(owner, "/portal/appointments")
        revoked = await owner.post(revoke, data={"csrf_token": token})
        assert revoked.status_code == 303
        new = await feed_link(owner)
    assert new != old
    assert (await guest.get(old)).status_code == 404
    assert (await guest.get(new)).status_code == 200
    async with db.transaction(write=False) as session:
        [audit] = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "calendar_feed.revoked")
            )
        )
        business = await session.get_one(Business, story.business.id, populate_existing=True)
    assert audit.actor_id == story.owner.id and audit.business_id == story.business.id
    assert audit.details == {"version": 2} and business.calendar_feed_version == 2


def test_ics_text_is_escaped_as_rfc_5545_asks() -> None:
    assert ics_text("a;b,c\\d\ne") == "a\\;b\\,c\\\\d\\ne"
    business = Business(id=uuid.uuid4(), name="x" * 200, timezone="Asia/Jerusalem")
    text = calendar_ics(business, [], now=SUNDAY_9)
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    assert text.replace("\r\n ", "").count("x") == 200


# --- the customer's survey ----------------------------------------------------------------------


async def test_a_won_lead_gets_one_survey_answered_once_and_shown_in_the_kpis(
    db: Database,
    web: object,
    secretary_client: httpx.AsyncClient,
    guest: httpx.AsyncClient,
    clock: MovableClock,
) -> None:
    story = await desk(db, stage="quote")
    await sign_in(secretary_client, story.secretary.email)
    token = await csrf_token(secretary_client, f"/leads/{story.lead.id}")
    stage_url = f"/leads/{story.lead.id}/stage"
    for stage in ("won", "meeting", "won"):  # won twice: still one survey
        moved = await secretary_client.post(stage_url, data={"csrf_token": token, "stage": stage})
        assert moved.status_code == 303
    async with db.transaction(write=False) as session:
        surveys = list(await session.scalars(select(Survey)))
    assert len(surveys) == 1 and surveys[0].lead_id == story.lead.id
    [invite] = await notices(db, "survey:")
    assert invite.idempotency_key == f"survey:{surveys[0].id}:invite"
    assert invite.recipient == "dana@example.test"
    link = SURVEY_LINK.search(invite.body)
    assert link is not None
    path = link.group(1)

    page = await guest.get(path)
    assert page.status_code == 200
    assert 'dir="rtl"' in page.text and story.business.name in page.text  # the business's locale
    assert f'<span class="brand" dir="auto">{story.business.name}</span>' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    incomplete = await guest.post(path, data={"stars": "9", "recommend": "yes"})
    assert incomplete.status_code == 422
    answered = await guest.post(
        path, data={"stars": "4", "recommend": "yes", "improve": "לענות מהר יותר"}
    )
    assert answered.status_code == 303  # no CSRF token: the signed link is the proof
    thanks = await guest.get(answered.headers["location"])  # "thank you", not "already answered"
    assert "תודה" in thanks.text and "כבר" not in thanks.text and 'name="stars"' not in thanks.text
    reused = await guest.post(path, data={"stars": "1", "recommend": "no", "improve": "x"})
    assert reused.status_code == 303 and "thanks" not in reused.headers["location"]
    async with db.transaction(write=False) as session:
        survey = await session.get_one(Survey, surveys[0].id, populate_existing=True)
    assert (survey.stars, survey.would_recommend, survey.improve) == (4, True, "לענות מהר יותר")
    again = await guest.get(path)
    assert "כבר" in again.text and 'name="stars"' not in again.text  # "already answered"

    # Forged, damaged, foreign or expired links change nothing.
    forged = URLSafeSerializer("another-secret", salt="mazkira.survey").dumps(
        [survey.id.hex, 2_000_000_000]
    )
    assert (await guest.get(f"/survey/{forged}")).status_code == 400
    assert (await guest.post(f"/survey/{forged}", data={"stars": "5"})).status_code == 400
    assert (await guest.get(path + "x")).status_code == 400
    unknown = SurveyLinks(SECRET, PUBLIC).token(uuid.uuid4(), now=SUNDAY_9)
    assert (await guest.get(f"/survey/{unknown}")).status_code == 404
    clock.moment = SUNDAY_9 + timedelta(days=31)
    assert (await guest.get(path)).status_code == 400
    clock.moment = SUNDAY_9

    # On the contact's card, and in the business's KPIs.
    card = await secretary_client.get(f"/contacts/{story.lead.contact_id}")
    assert "לענות מהר יותר" in card.text and "★★★★☆" in card.text
    async with await browser(web) as owner:
        await sign_in(owner, story.owner.email)
        query = f"business={story.business.id}&from=2026-11-01&to=2026-11-30"
        kpis = await owner.get(f"/portal/kpis?{query}")
        exported = await owner.get(f"/portal/kpis.csv?{query}")
    assert kpis.status_code == 200
    assert 'data-survey="survey_rating" data-value="4.0"' in kpis.text
    assert 'data-survey="survey_recommend" data-value="100.0"' in kpis.text
    assert 'data-survey="survey_answers" data-value="1"' in kpis.text
    rows = csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig")))
    feedback = {r["key"]: r["value"] for r in rows if r["section"] == "feedback"}
    assert feedback == {"survey_answers": "1", "survey_rating": "4.0", "survey_recommend": "100.0"}

    # And in the owner's morning digest (Monday 07:05 in Jerusalem: Sunday's), in his English.
    monday_morning = datetime(2026, 11, 23, 7, 5, tzinfo=JERUSALEM)
    assert (await send_digests({"db": db}, now=monday_morning)).queued == 1
    [digest] = await notices(db, f"digest:daily:{story.business.id}:")
    assert digest.recipient == story.owner.email
    assert "  Surveys answered: 1\n" in digest.body
    assert "  Average rating (1–5): 4\n" in digest.body
    assert "  Share who would recommend the business: 100%\n" in digest.body


async def test_a_survey_is_made_once_even_without_a_link_to_send(db: Database) -> None:
    story = await desk(db, stage="quote")
    async with db.transaction() as session:
        await leads.move_stage(session, story.secretary, story.lead.id, stage="won", now=SUNDAY_9)
        count = await session.scalar(select(func.count(Survey.id)))
    assert count == 1
    assert await notices(db, "survey:") == []  # no PUBLIC_URL: nothing to send
