"""The demo agency: a few lively working days, seeded once through the console's services:
canned replies for every business, WhatsApp, SMS and e-mail threads both ways, a caller who rang
three times into one lead."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import Database
from console.business.hours import BusinessHours
from console.demo.demo import seed_if_empty
from models import (
    Business,
    CannedReply,
    Contact,
    Interaction,
    Lead,
    Line,
    Notification,
    Script,
    SecretaryAssignment,
    Task,
    User,
)

NOW = datetime(2026, 11, 23, 11, 30, tzinfo=UTC)  # a Monday, 13:30 in Israel
TABLES = (Business, User, Contact, Script, Lead, Interaction, Task)


async def everything(session: AsyncSession) -> dict[type[Any], list[Any]]:
    return {model: list((await session.scalars(select(model))).all()) for model in TABLES}


async def test_the_demo_seeds_a_few_days_of_agency_work(db: Database) -> None:
    async with db.transaction() as session:
        logins = await seed_if_empty(session, now=NOW)
    assert logins is not None
    assert Counter(role for role, _email, _password in logins) == {
        "owner": 5,
        "secretary": 3,
        "admin": 1,
    }

    async with db.transaction() as session:
        rows = await everything(session)
        assignments = {
            (a.user_id, a.business_id) for a in await session.scalars(select(SecretaryAssignment))
        }
    businesses, users = rows[Business], {u.id: u for u in rows[User]}
    # Each is addressed as they chose: ד״ר דנה לוי in the feminine, Avi in the masculine.
    forms = {u.email: u.addressed_as for u in users.values()}
    assert forms["dana@levi-dental.demo"] == forms["michal@mazkira.demo"] == "feminine"
    assert forms["avi@cohen-plumbing.demo"] == "masculine"
    assert forms["moshe@mizrahi-build.demo"] == "plural"
    contacts = {c.id: c for c in rows[Contact]}
    leads, interactions, tasks = rows[Lead], rows[Interaction], rows[Task]

    # Every business works: a published script, a customer list and a few days of leads.
    published = {s.business_id for s in rows[Script] if s.status == "published" and s.version == 1}
    assert len(businesses) == 5
    for business in businesses:
        assert business.id in published
        assert sum(c.business_id == business.id for c in contacts.values()) >= 8
        assert sum(lead.business_id == business.id for lead in leads) >= 10
    assert [s.version for s in rows[Script] if s.status == "draft"] == [2]

    for lead in leads:
        assert contacts[lead.contact_id].business_id == lead.business_id
    repeat_customers = Counter(lead.contact_id for lead in leads)
    assert sum(n >= 2 for n in repeat_customers.values()) >= 5

    # The pipeline is alive: waiting, claimed, handled, won and lost leads.
    waiting = [lead for lead in leads if lead.stage == "new" and lead.claimed_by_id is None]
    assert len(waiting) >= 2 * len(businesses)
    assert any(NOW - lead.created_at <= timedelta(minutes=60) for lead in waiting)
    assert any(lead.stage == "new" and lead.claimed_by_id for lead in leads)
    won = [lead for lead in leads if lead.stage == "won"]
    lost = [lead for lead in leads if lead.stage == "lost"]
    assert won and all(lead.deal_value and lead.closed_at for lead in won)
    assert lost and all(lead.lost_reason and lead.closed_at for lead in lost)
    assert {"contacted", "meeting", "quote"} <= {lead.stage for lead in leads}
    responses = [(lead.created_at, lead.first_response_at) for lead in leads]
    assert all(arrived <= answered for arrived, answered in responses if answered)

    # Calls logged with script answers; exactly one call going on right now.
    done = [i for i in interactions if i.status == "done"]
    logged = [i for i in done if i.direction is None]  # what a secretary logged, not a message
    assert any(i.answers and i.kind.endswith("_call") for i in logged)
    assert {"whatsapp", "note"} <= {i.kind for i in logged}
    assert all(60 <= (i.duration_seconds or 0) <= 8 * 60 for i in logged if i.kind != "note")

    # Conversations: threads on WhatsApp, SMS and e-mail with messages in and out, the replies
    # delivered (none left queued for a provider), the contact's answers joined to the lead.
    threads: dict[Any, set[str]] = {}
    for i in interactions:
        if i.direction and i.kind in ("whatsapp", "sms", "email"):
            threads.setdefault((i.lead_id, i.kind), set()).add(i.direction)
    both_ways = {
        kind for (_lead, kind), directions in threads.items() if directions == {"in", "out"}
    }
    assert both_ways == {"whatsapp", "sms", "email"}
    assert sum(directions == {"in", "out"} for directions in threads.values()) >= 5
    replies = [i for i in interactions if i.direction == "out"]
    assert replies and all(i.delivery_status in ("delivered", "read") for i in replies)
    assert all(i.user_id for i in replies)

    # A repeat caller: three calls within minutes made one open lead with three attempts.
    repeated = [
        lead
        for lead in leads
        if lead.attempts >= 3 and lead.channel == "phone" and lead.first_response_at is None
    ]
    assert repeated
    calls_in = [i for i in interactions if i.lead_id == repeated[0].id and i.direction == "in"]
    assert len(calls_in) == repeated[0].attempts and {i.kind for i in calls_in} == {"inbound_call"}
    drafts = [i for i in interactions if i.status == "draft"]
    assert len(drafts) == 1
    live = drafts[0]
    assert live.user_id and users[live.user_id].email == "michal@mazkira.demo"
    assert timedelta(minutes=2) <= NOW - live.started_at <= timedelta(minutes=4)
    assert next(lead for lead in leads if lead.id == live.lead_id).closed_at is None

    # Secretaries work only the businesses they serve (or back up); what came in has nobody.
    for interaction in interactions:
        assert (interaction.user_id is None) == (interaction.direction == "in")
        if interaction.user_id is not None:
            assert (interaction.user_id, interaction.business_id) in assignments

    # Follow-ups: open ones due ahead, done ones, one overdue; to owners and to a secretary.
    statuses = Counter(task.status for task in tasks)
    assert statuses["open"] and statuses["done"]
    assert sum(t.status == "open" and t.due_at < NOW for t in tasks) == 1
    assert {users[t.assignee_id].role for t in tasks} == {"owner", "secretary"}

    # Nothing happens after now, and the history sits in Israeli business hours.
    for model, found in rows.items():
        for row in found:
            stamps = [getattr(row, name, None) for name in ("created_at", "completed_at")]
            stamps += [getattr(row, name, None) for name in ("started_at", "ended_at")]
            assert all(stamp <= NOW for stamp in stamps if stamp), (model, row)
    hours = BusinessHours.from_business(businesses[0].weekly_hours, "Asia/Jerusalem")
    assert all(hours.is_open(lead.created_at) for lead in leads)
    assert min(lead.created_at for lead in leads) >= NOW - timedelta(days=6)

    # Every business has a line on each channel, so `mazkira simulate` reaches it on all, and
    # canned replies its secretaries send with a click; no reply waits to go to a provider.
    async with db.transaction(write=False) as session:
        lines = list(await session.scalars(select(Line)))
        canned = Counter(r.business_id for r in await session.scalars(select(CannedReply)))
        queued = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.status == "queued", Notification.idempotency_key.like("reply:%"))
        )
    assert queued == 0
    assert all(canned[business.id] >= 2 for business in businesses)
    for business in businesses:
        channels = sorted(line.channel for line in lines if line.business_id == business.id)
        assert channels == ["email", "phone", "sms", "whatsapp"], business.slug

    # A second run leaves the database be.
    async with db.transaction() as session:
        assert await seed_if_empty(session, now=NOW) is None
        for model in TABLES:
            count = await session.scalar(select(func.count()).select_from(model))
            assert count == len(rows[model])
