"""Reminders from the reference material on a fixed clock: a task due soon and overdue, quotes
on days 2, 5 and 10, A/B/C customers once a period, the "we miss you" list; their settings; and
the job, called with a ctx and run by an arq worker from Redis."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker
from redis.asyncio import Redis
from sqlalchemy import func, select, text

from console.base.config import Settings
from console.base.db import Database
from console.business.reminder_policy import ReminderPolicy, reminder_policy, set_reminder_policy
from console.contacts import contacts
from console.contacts.contact_book import touch_contact
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import leads
from console.tasks import reminders, task_sla, tasks
from console.tasks.task_links import TaskLinks
from models import Business, Contact, Lead, Notification, Task, User
from tests.conftest import SECRET, Databases
from tests.factories import csrf_token, make_business, make_user, sign_in
from workers.reminders import remind_followups
from workers.settings import PERIODIC, worker_settings

SUNDAY_9 = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)  # 09:00 in Jerusalem, a working Sunday
DAY = timedelta(days=1)
LINKS = TaskLinks(SECRET, "https://console.example.test")


async def team(db: Database) -> tuple[Business, User, User]:
    async with db.transaction() as session:
        business = await make_business(session)
        secretary = await make_user(session, "secretary", business)
        owner = await make_user(session, "owner", business)
    return business, secretary, owner


async def new_lead(db: Database, business: Business, *, at: datetime, phone: str) -> Lead:
    async with db.transaction() as session:
        return await arrivals.create_lead(
            session,
            None,
            NewLead(business_id=str(business.id), phone=phone, name="דנה כהן"),
            now=at,
            business=business,
        )


async def run(db: Database, at: datetime) -> reminders.FollowupReport:
    async with db.transaction() as session:
        return await reminders.remind_followups(session, now=at)


async def rows(db: Database, model: type[Any], *where: Any) -> list[Any]:
    async with db.transaction(write=False) as session:
        return list(await session.scalars(select(model).where(*where)))


async def set_policy(db: Database, business: Business, at: datetime, **changes: Any) -> None:
    async with db.transaction() as session:
        await set_reminder_policy(session, business, ReminderPolicy(**changes), now=at)


# --------------------------------------------------------------------------- quotes


async def test_a_quote_is_followed_up_on_days_2_5_and_10_once_each(db: Database) -> None:
    business, secretary, _owner = await team(db)
    lead = await new_lead(db, business, at=SUNDAY_9, phone="052-7654321")
    async with db.transaction() as session:
        moved = await leads.move_stage(session, secretary, lead.id, stage="quote", now=SUNDAY_9)
    assert moved.followup_at == SUNDAY_9 + 2 * DAY  # found by the index on followup_at only

    assert (await run(db, SUNDAY_9 + 2 * DAY - timedelta(minutes=1))).leads == 0
    for day in (2, 5, 10):
        first, again = await asyncio.gather(
            run(db, SUNDAY_9 + day * DAY), run(db, SUNDAY_9 + day * DAY)
        )
        assert first.written + again.written == 1  # two workers at once: written once
        assert (await run(db, SUNDAY_9 + day * DAY + timedelta(hours=1))).written == 0
    written = await rows(db, Task, Task.lead_id == lead.id)
    assert sorted(t.request_key[-3:] for t in written) == [":d2", ":d5", "d10"]
    assert {(t.assignee_id, t.created_by_id, t.acknowledge_by) for t in written} == {
        (secretary.id, None, None)  # the system's own tasks have no acknowledgement promise
    }
    day_two = min(written, key=lambda t: t.created_at)
    assert day_two.title == "לעקוב אחרי הצעת המחיר: דנה כהן (יום 2)"
    assert day_two.due_at == SUNDAY_9 + 3 * DAY
    [after] = await rows(db, Lead, Lead.id == lead.id)
    assert after.followup_at is None  # after the last day nothing is left to look at
    assert (await run(db, SUNDAY_9 + 30 * DAY)).leads == 0


async def test_quote_reminders_as_notifications_latest_day_only_and_stopped_by_closing(
    db: Database,
) -> None:
    business, secretary, owner = await team(db)
    await set_policy(db, business, SUNDAY_9, quote_as="notification", quote_days=(2, 5, 10))
    lead = await new_lead(db, business, at=SUNDAY_9, phone="052-7654321")
    async with db.transaction() as session:
        await leads.move_stage(session, secretary, lead.id, stage="quote", now=SUNDAY_9)
    # The job was down for days: one reminder (day 5), not a burst of two.
    assert (await run(db, SUNDAY_9 + 6 * DAY)).written == 1
    [notice] = await rows(db, Notification)
    stint = int(SUNDAY_9.timestamp())
    assert notice.idempotency_key == f"quote:{lead.id.hex}:{stint}:d5:{owner.id.hex}"
    assert (notice.channel, notice.recipient, notice.user_id) == ("email", owner.email, owner.id)
    assert "יום 5" in notice.subject and business.name in notice.body
    assert await rows(db, Task) == []
    async with db.transaction() as session:
        await leads.move_stage(session, secretary, lead.id, stage="won", now=SUNDAY_9 + 7 * DAY)
    [won] = await rows(db, Lead, Lead.id == lead.id)
    assert won.followup_at is None
    assert (await run(db, SUNDAY_9 + 11 * DAY)).written == 0


async def test_switched_off_quotes_are_not_followed_up(db: Database) -> None:
    business, secretary, _owner = await team(db)
    await set_policy(db, business, SUNDAY_9, quote_followups=False)
    lead = await new_lead(db, business, at=SUNDAY_9, phone="052-7654321")
    async with db.transaction() as session:
        moved = await leads.move_stage(session, secretary, lead.id, stage="quote", now=SUNDAY_9)
    assert moved.followup_at is None
    # Switched on again: the quotes still inside their days are looked at once more.
    await set_policy(db, business, SUNDAY_9 + 3 * DAY)
    assert (await run(db, SUNDAY_9 + 3 * DAY)).written == 1
    [task] = await rows(db, Task)
    assert task.request_key and task.request_key.endswith(":d2")


# --------------------------------------------------------------------------- A / B / C


async def classed(db: Database, business: Business, user: User, phone: str, abc: str) -> Contact:
    async with db.transaction() as session:
        contact, _new = await contacts.find_or_create_contact(session, business, phone=phone)
        touch_contact(contact, SUNDAY_9)
        contact.created_at = SUNDAY_9
        await session.flush()
        return await contacts.update_contact(session, contact, {"abc_class": abc})


async def test_a_b_and_c_customers_are_followed_up_once_a_period(db: Database) -> None:
    business, secretary, _owner = await team(db)
    a = await classed(db, business, secretary, "052-7654321", "A")
    b = await classed(db, business, secretary, "052-7654322", "B")
    c = await classed(db, business, secretary, "052-7654323", "C")
    assert [x.followup_at for x in (a, b, c)] == [SUNDAY_9 + d * DAY for d in (14, 30, 90)]

    async def reminded(at: datetime) -> list[str]:
        await run(db, at)
        found = await rows(db, Task, Task.created_at == at)
        return sorted(t.request_key.split(":")[1] for t in found if t.request_key)

    assert await reminded(SUNDAY_9 + 14 * DAY - timedelta(minutes=1)) == []
    assert await reminded(SUNDAY_9 + 14 * DAY) == [a.id.hex]
    assert await reminded(SUNDAY_9 + 14 * DAY + timedelta(hours=2)) == []  # once a period
    assert await reminded(SUNDAY_9 + 28 * DAY) == [a.id.hex]  # two weeks after the reminder
    assert await reminded(SUNDAY_9 + 30 * DAY) == [b.id.hex]
    assert await reminded(SUNDAY_9 + 90 * DAY) == sorted(x.id.hex for x in (a, b, c))
    [first] = await rows(db, Task, Task.created_at == SUNDAY_9 + 14 * DAY)
    assert (first.priority, first.lead_id, first.assignee_id) == ("high", None, secretary.id)
    assert first.request_key == f"abc:{a.id.hex}:20261206"
    assert "לקוח/ה מסוג A" in first.title


async def test_a_contact_spoken_to_since_is_not_reminded_and_unclassing_stops_it(
    db: Database,
) -> None:
    business, secretary, _owner = await team(db)
    a = await classed(db, business, secretary, "052-7654321", "A")
    async with db.transaction() as session:
        found = await session.get_one(Contact, a.id)
        touch_contact(found, SUNDAY_9 + 10 * DAY)
    assert (await run(db, SUNDAY_9 + 14 * DAY)).written == 0
    [moved] = await rows(db, Contact, Contact.id == a.id)
    assert moved.followup_at == SUNDAY_9 + 24 * DAY  # moved to two weeks after the call
    async with db.transaction() as session:
        found = await session.get_one(Contact, a.id)
        await contacts.update_contact(session, found, {"abc_class": ""})
    [unclassed] = await rows(db, Contact, Contact.id == a.id)
    assert unclassed.followup_at is None
    assert (await run(db, SUNDAY_9 + 60 * DAY)).contacts == 0


# --------------------------------------------------------------------------- we miss you


async def test_the_silent_list_starts_at_three_months_inside_the_users_businesses(
    db: Database,
) -> None:
    business, secretary, owner = await team(db)
    other, other_secretary, _other_owner = await team(db)
    now = SUNDAY_9 + 200 * DAY

    async def contact(where: Business, phone: str, last: datetime, abc: str | None = None) -> None:
        async with db.transaction() as session:
            found, _new = await contacts.find_or_create_contact(
                session, where, phone=phone, name=phone
            )
            found.last_contact_at, found.abc_class = last, abc

    await contact(business, "052-7654321", now - 90 * DAY, "A")  # exactly three months
    await contact(business, "052-7654322", now - 90 * DAY + timedelta(minutes=1))
    await contact(business, "052-7654323", now - 150 * DAY)
    await contact(other, "052-7654324", now - 100 * DAY)

    async def names(user: User, business_id: str = "") -> list[str]:
        async with db.transaction(write=False) as session:
            found = await reminders.silent_contacts(session, user, now=now, business_id=business_id)
        return [row.name for row in found.rows]

    assert await names(secretary) == ["052-7654321", "052-7654323"]  # most recently silent first
    assert await names(owner) == ["052-7654321", "052-7654323"]
    assert await names(other_secretary) == ["052-7654324"]
    assert await names(secretary, str(other.id)) == ["052-7654321", "052-7654323"]  # not hers
    await set_policy(db, business, now, silent_days=120)
    assert await names(owner) == ["052-7654323"]
    await set_policy(db, business, now, silent_list=False)
    assert await names(owner) == []


async def test_the_silent_list_page(client: httpx.AsyncClient, db: Database) -> None:
    business, secretary, _owner = await team(db)
    async with db.transaction() as session:
        found, _new = await contacts.find_or_create_contact(
            session, business, phone="052-7654321", name="רות לוי"
        )
        found.last_contact_at = datetime.now(UTC) - 100 * DAY
    await sign_in(client, secretary.email)
    page = await client.get("/contacts/silent")
    assert page.status_code == 200
    assert "רות לוי" in page.text and "100 ימים" in page.text
    fragment = await client.get(
        f"/contacts/silent?business_id={business.id}", headers={"HX-Request": "true"}
    )
    assert fragment.text.lstrip().startswith('<div id="results">')
    client.cookies.clear()
    assert (await client.get("/contacts/silent")).status_code == 303  # signed in only


# --------------------------------------------------------------------------- tasks


async def hand_off(db: Database, secretary: User, owner: User, lead: Lead, due: str) -> Task:
    async with db.transaction() as session:
        return await tasks.hand_off(
            session,
            secretary,
            lead.id,
            tasks.HandOff(assignee_id=str(owner.id), title="להחזיר טלפון לדנה", due=due),
            now=SUNDAY_9,
            links=LINKS,
        )


async def test_a_task_due_soon_and_overdue_reminds_its_assignee_once(db: Database) -> None:
    business, secretary, owner = await team(db)
    lead = await new_lead(db, business, at=SUNDAY_9, phone="052-7654321")
    task = await hand_off(db, secretary, owner, lead, "2026-11-22T16:00")  # 14:00 UTC
    due = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)
    assert task.remind_at == due - timedelta(hours=1)  # the task policy's 60 minutes

    async def sweep(at: datetime) -> None:
        async with db.transaction() as session:
            await task_sla.sweep_tasks(session, now=at, links=LINKS)

    async def keys() -> list[str]:
        return sorted(n.idempotency_key for n in await rows(db, Notification))

    assert await keys() == [f"task:{task.id}:handed"]
    handed = (await rows(db, Notification))[0]
    assert handed.recipient == owner.email and "https://console.example.test/ack/" in handed.body
    await sweep(due - timedelta(hours=1, minutes=1))
    assert await keys() == [f"task:{task.id}:handed"]
    await sweep(due - timedelta(hours=1))
    await sweep(due - timedelta(minutes=30))
    assert await keys() == [f"task:{task.id}:due_soon", f"task:{task.id}:handed"]
    await asyncio.gather(sweep(due), sweep(due))
    await sweep(due + timedelta(hours=3))
    assert await keys() == [
        f"task:{task.id}:due_soon",
        f"task:{task.id}:handed",
        f"task:{task.id}:overdue",
    ]
    overdue = [n for n in await rows(db, Notification) if n.idempotency_key.endswith("overdue")]
    assert overdue[0].subject == "באיחור: להחזיר טלפון לדנה"


async def test_a_business_can_switch_task_reminders_off(db: Database) -> None:
    business, secretary, owner = await team(db)
    await set_policy(db, business, SUNDAY_9, task_reminders=False)
    lead = await new_lead(db, business, at=SUNDAY_9, phone="052-7654321")
    task = await hand_off(db, secretary, owner, lead, "2026-11-22T16:00")
    assert task.remind_at is None
    async with db.transaction() as session:
        await task_sla.sweep_tasks(session, now=SUNDAY_9 + DAY)
    assert [n.idempotency_key for n in await rows(db, Notification)] == [f"task:{task.id}:handed"]


# --------------------------------------------------------------------------- settings


async def test_an_admin_sets_the_reminders_and_bad_numbers_change_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        admin = await make_user(session, "admin")
    await sign_in(client, admin.email)
    url = f"/agency/businesses/{business.id}/sla"
    page = await client.get(url)
    assert 'name="quote_days" value="2,5,10"' in page.text
    token = await csrf_token(client, url)
    fields = {
        "csrf_token": token,
        "task_reminders": "1",
        "quote_followups": "1",
        "quote_days": "3, 7",
        "quote_as": "notification",
        "class_a_days": "10",
        "class_b_days": "30",
        "class_c_days": "120",
        "class_as": "task",
        "silent_list": "1",
        "silent_days": "60",
        "birthday_reminders": "1",
        "birthday_days_before": "2",
        "birthday_as": "notification",
    }
    saved = await client.post(f"{url}/reminders", data=fields)
    assert saved.status_code == 303
    async with db.transaction(write=False) as session:
        policy = await reminder_policy(session, business.id)
    assert policy == ReminderPolicy(
        quote_days=(3, 7),
        quote_as="notification",
        class_followups=False,  # its box was not ticked
        class_days=(10, 30, 120),
        silent_days=60,
        birthday_days_before=2,
        birthday_as="notification",
    )
    for bad, field in (
        ({"quote_days": "10,5"}, "quote_days"),
        ({"quote_days": "two"}, "quote_days"),
        ({"quote_days": "1,2,3,4,5,6"}, "quote_days"),
        ({"class_b_days": "0"}, "class_days"),
        ({"silent_days": "x"}, "silent_days"),
        ({"quote_as": "fax"}, "quote_as"),
        ({"birthday_days_before": "31"}, "birthday_days_before"),
        ({"birthday_days_before": "-1"}, "birthday_days_before"),
    ):
        refused = await client.post(
            f"{url}/reminders", data=fields | bad, headers={"Accept": "application/json"}
        )
        assert (refused.status_code, refused.json()["field"]) == (422, field), bad
    page = await client.post(f"{url}/reminders", data=fields | {"quote_days": "10,5"})
    assert page.status_code == 422 and "בסדר עולה" in page.text  # a page saying what is wrong
    async with db.transaction(write=False) as session:
        assert await reminder_policy(session, business.id) == policy  # nothing changed


# --------------------------------------------------------------------------- the job


async def test_the_job_with_a_ctx_and_on_an_arq_worker(
    db: Database, redis: Redis, redis_url: str
) -> None:
    assert any(job.function is remind_followups for job in PERIODIC)
    business, secretary, _owner = await team(db)
    now = datetime.now(UTC)
    lead = await new_lead(db, business, at=now - 3 * DAY, phone="052-7654321")
    async with db.transaction() as session:
        await leads.move_stage(session, secretary, lead.id, stage="quote", now=now - 3 * DAY)
    settings = Settings(database_url=db.url, secret_key=SECRET, redis_url=redis_url)
    ctx: dict[str, Any] = {"db": db, "settings": settings}
    assert (await remind_followups(ctx, now=now - 2 * DAY)).written == 0  # day 2 not yet
    a = await classed(db, business, secretary, "052-7654322", "A")
    async with db.transaction() as session:
        found = await session.get_one(Contact, a.id)
        found.followup_at = found.last_contact_at = found.created_at = now - 20 * DAY

    config = worker_settings(settings)
    [cron_job] = [job for job in config["cron_jobs"] if job.name == "cron:remind_followups"]
    assert cron_job.minute == set(range(0, 60, 5)) and cron_job.second == {0}
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    await pool.enqueue_job("remind_followups", _job_id="remind-test")
    await pool.enqueue_job("remind_followups", _job_id="remind-test")  # same id: once

    async def startup(ctx: dict[str, Any]) -> None:  # the name arq's StartupShutdown calls it by
        ctx["db"], ctx["settings"] = db, settings

    worker = Worker(
        functions=config["functions"],
        redis_pool=pool,
        burst=True,
        poll_delay=0,
        on_startup=startup,
        handle_signals=False,
    )
    await worker.main()
    assert (worker.jobs_complete, worker.jobs_failed) == (1, 0)
    await worker.close()
    await pool.aclose()
    assert (await remind_followups(ctx)).written == 0  # a retry writes nothing more
    async with db.transaction(write=False) as session:
        keys = sorted(
            (k or "").split(":")[0] for k in await session.scalars(select(Task.request_key))
        )
        count = await session.scalar(select(func.count()).select_from(Task))
    assert keys == ["abc", "quote"] and count == 2


async def test_the_job_and_the_list_read_through_their_indexes(databases: Databases) -> None:
    db = await databases.get("sqlite")  # PostgreSQL's plan follows its statistics, not the schema
    queries = {
        "ix_leads_followup": "SELECT * FROM leads WHERE followup_at <= :now "
        "ORDER BY followup_at LIMIT 500",
        "ix_contacts_followup": "SELECT * FROM contacts WHERE followup_at <= :now "
        "ORDER BY followup_at LIMIT 500",
        "ix_contacts_business_last_contact": "SELECT * FROM contacts "
        "WHERE business_id IN (:a, :b) AND last_contact_at <= :now "
        "ORDER BY last_contact_at DESC LIMIT 200",
    }
    values = {"now": "2026-11-22 09:00:00", "a": uuid.uuid4().hex, "b": uuid.uuid4().hex}
    async with db.engine.connect() as connection:
        for index, query in queries.items():
            plan = " ".join(
                str(row[3])
                for row in await connection.execute(text(f"EXPLAIN QUERY PLAN {query}"), values)
            )
            assert index in plan and "SCAN leads" not in plan and "SCAN contacts" not in plan


def test_keys_fit_the_columns() -> None:
    longest_quote = (
        f"quote:{uuid.uuid4().hex}:{int(datetime(2286, 1, 1, tzinfo=UTC).timestamp())}:d90"
    )
    assert len(longest_quote) <= 64 and len(f"abc:{uuid.uuid4().hex}:20261206") <= 64
