"""The SLA engine: promises in covered minutes, alerts raised exactly once, response measured."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, text

from console.base.config import Settings
from console.base.db import Database
from console.base.errors import Invalid
from console.base.scheduler import SweepAt
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import calls
from console.people.audit import Actor
from console.sla import sla
from models import Alert, AuditEvent, Business, Lead, LeadAlarm, SlaPolicy
from tests.conftest import SECRET, Databases
from tests.factories import csrf_token, make_business, make_user, sign_in
from workers.sla import sweep_sla

SUNDAY_9 = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)  # 09:00 in Jerusalem, a working Sunday
FRIDAY_12_58 = datetime(2026, 11, 27, 10, 58, tzinfo=UTC)  # 12:58 on a short Friday


def test_the_most_specific_policy_wins() -> None:
    def policy(channel: str, priority: str, minutes: int) -> SlaPolicy:
        return SlaPolicy(
            channel=channel,
            priority=priority,
            first_response_minutes=minutes,
            warn_at_percent=[50],
            notify_owner_on_breach=False,
        )

    policies = [
        policy("", "", 60),
        policy("phone", "", 5),
        policy("", "urgent", 2),
        policy("phone", "urgent", 1),
    ]
    assert sla.pick_promise(policies, "phone", "urgent").minutes == 1
    assert sla.pick_promise(policies, "phone", "normal").minutes == 5
    assert sla.pick_promise(policies, "email", "urgent").minutes == 2
    assert sla.pick_promise(policies, "email", "normal").minutes == 60
    assert sla.pick_promise([], "email", "normal").minutes == 120  # the default: two hours
    assert sla.pick_promise([], "whatsapp", "normal").thresholds == (50, 80, 100)


async def due_at(db: Database, lead: Lead) -> datetime | None:
    """When the lead's next alert is due (its alarm row), or None."""
    async with db.transaction(write=False) as session:
        alarm = await session.get(LeadAlarm, lead.id)
    return alarm.due_at if alarm else None


async def new_lead(db: Database, business: object, channel: str, at: datetime) -> Lead:
    async with db.transaction() as session:
        return await arrivals.create_lead(
            session,
            None,
            NewLead(business_id=str(business.id), phone="052-7654321", channel=channel),  # type: ignore[attr-defined]
            now=at,
            business=business,  # type: ignore[arg-type]
        )


async def test_the_promise_counts_only_covered_hours(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
    call = await new_lead(db, business, "phone", SUNDAY_9)
    assert call.sla_minutes == 5
    assert call.respond_by == SUNDAY_9 + timedelta(minutes=5)
    assert call.warn_at == SUNDAY_9 + timedelta(minutes=2.5)
    assert await due_at(db, call) == call.warn_at and call.queue_at == call.respond_by
    mail = await new_lead(db, business, "email", FRIDAY_12_58)
    # 2 minutes are left on Friday, the other 118 on Sunday from 08:00: 09:58 Sunday.
    assert mail.respond_by == datetime(2026, 11, 29, 7, 58, tzinfo=UTC)


async def test_alerts_are_raised_once_whoever_sweeps_and_however_often(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
    due = [await new_lead(db, business, "phone", SUNDAY_9) for _ in range(6)]

    async def sweep_at(moment: datetime) -> int:
        async with db.transaction() as session:
            return (await sla.sweep(session, now=moment)).raised

    for minutes in (2.6, 4.1, 5.1):  # past 50%, past 80%, past the breach
        moment = SUNDAY_9 + timedelta(minutes=minutes)
        raised = await asyncio.gather(*(sweep_at(moment) for _ in range(4)))  # four workers
        assert sum(raised) == 6, minutes  # one alert per lead, whoever sweeps
        assert await sweep_at(moment) == 0  # and again: nothing new
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(Alert)) == 18
        percents = (
            await session.scalars(select(Alert.percent).where(Alert.lead_id == due[0].id))
        ).all()
        assert sorted(percents) == [50, 80, 100]
        assert await session.scalar(select(func.count()).select_from(LeadAlarm)) == 0


async def test_a_backlog_is_swept_in_batches_each_calling_the_next(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
    for _ in range(5):
        await new_lead(db, business, "phone", SUNDAY_9)
    moment = SUNDAY_9 + timedelta(minutes=6)  # all five past the breach
    queued: list[list[object]] = []
    db.after_commit.append(queued.append)
    for expected_due, follows in ((2, True), (2, True), (1, False)):
        async with db.transaction() as session:
            report = await sla.sweep(session, now=moment, limit=2)
        assert (report.due, report.raised) == (expected_due, expected_due)
        runs = [item.at for item in queued.pop() if isinstance(item, SweepAt)]
        assert (moment + sla.BACKLOG_PAUSE in runs) == follows
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(Alert)) == 5
        assert await session.scalar(select(func.count()).select_from(LeadAlarm)) == 0


async def test_the_sweep_reads_only_due_leads_through_its_index(databases: Databases) -> None:
    db = await databases.get("sqlite")  # PostgreSQL's plan follows its statistics, not the schema
    async with db.engine.connect() as connection:
        plan = " ".join(
            str(row[3])
            for row in await connection.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT leads.* FROM lead_alarms "
                    "JOIN leads ON leads.id = lead_alarms.lead_id WHERE due_at <= :now "
                    "ORDER BY due_at LIMIT 1000"
                ),
                {"now": "2026-11-22 09:00:00"},
            )
        )
    assert "ix_lead_alarms_due_at" in plan and "SCAN leads" not in plan


async def test_a_first_response_is_measured_and_stands_the_alerts_down(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        secretary = await make_user(session, "secretary", business)
    lead = await new_lead(db, business, "whatsapp", SUNDAY_9)
    async with db.transaction() as session:
        await sla.sweep(session, now=SUNDAY_9 + timedelta(minutes=3))  # past 50%: a warning
    async with db.transaction() as session:
        await calls.start_interaction(
            session, secretary, lead.id, kind="whatsapp", now=SUNDAY_9 + timedelta(minutes=4)
        )
    async with db.transaction(write=False) as session:
        answered = await session.get_one(Lead, lead.id)
        alerts = (await session.scalars(select(Alert).where(Alert.lead_id == lead.id))).all()
    assert answered.first_response_covered_minutes == 4.0
    assert answered.first_response_wall_minutes == 4.0
    assert answered.first_response_channel == "whatsapp"
    assert await due_at(db, answered) is None and answered.queue_rank == 1
    assert [a.percent for a in alerts] == [50] and alerts[0].cleared_at is not None
    async with db.transaction() as session:  # a later sweep raises nothing for it
        assert (await sla.sweep(session, now=SUNDAY_9 + timedelta(hours=1))).raised == 0


async def test_after_hours_the_covered_time_is_what_counts(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        secretary = await make_user(session, "secretary", business)
    friday_evening = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # 17:00 Friday, closed
    lead = await new_lead(db, business, "email", friday_evening)
    sunday_8_10 = datetime(2026, 11, 29, 6, 10, tzinfo=UTC)
    async with db.transaction() as session:
        await calls.start_interaction(session, secretary, lead.id, kind="email", now=sunday_8_10)
    async with db.transaction(write=False) as session:
        answered = await session.get_one(Lead, lead.id)
    assert answered.first_response_covered_minutes == 10.0
    assert answered.first_response_wall_minutes == pytest.approx(60 * 39 + 10)


async def test_the_alerts_panel_and_acknowledgement(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:  # covered around the clock: the test runs any time
        mine = await make_business(session, always_open=True)
        theirs = await make_business(session, always_open=True)
        secretary = await make_user(session, "secretary", mine)
        owner = await make_user(session, "owner", mine)
        other = await make_user(session, "secretary", theirs)
    lead = await new_lead(db, mine, "phone", datetime.now(UTC) - timedelta(minutes=30))
    await new_lead(db, theirs, "phone", datetime.now(UTC) - timedelta(minutes=30))
    async with db.transaction() as session:
        await sla.sweep(session, now=datetime.now(UTC))
    await sign_in(client, secretary.email)
    panel = await client.get("/alerts")
    assert panel.text.count('class="alert-row') == 1  # her business's breach only
    alert_id = re.search(r"/alerts/([0-9a-f-]{36})/ack", panel.text).group(1)  # type: ignore[union-attr]
    token = await csrf_token(client, "/alerts")
    assert (
        await client.post(f"/alerts/{alert_id}/ack", data={"csrf_token": token})
    ).status_code == 303
    assert (
        await client.post(f"/alerts/{alert_id}/ack", data={"csrf_token": token})
    ).status_code == 303
    async with db.transaction(write=False) as session:
        seen = await session.get_one(Alert, uuid.UUID(alert_id))
    assert seen.acknowledged_by_id == secretary.id and seen.lead_id == lead.id
    assert (await client.get("/alerts")).text.count('class="alert-row') == 0
    for user in (owner, other):
        client.cookies.clear()
        await sign_in(client, user.email)
        token = await csrf_token(client, "/tasks")
        refused = await client.post(f"/alerts/{alert_id}/ack", data={"csrf_token": token})
        assert refused.status_code == 404


async def test_the_sweep_job_directly_and_on_an_arq_worker(
    db: Database, redis: Redis, redis_url: str
) -> None:
    from arq import create_pool
    from arq.connections import RedisSettings
    from arq.worker import Worker

    async with db.transaction() as session:
        business = await make_business(session, always_open=True)
    for _ in range(3):
        await new_lead(db, business, "phone", datetime.now(UTC) - timedelta(minutes=10))
    settings = Settings(database_url=db.url, secret_key=SECRET, redis_url=redis_url)
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    await pool.enqueue_job("sweep_sla", _job_id="sweep-test")

    async def startup(ctx: dict[str, object]) -> None:
        ctx["db"], ctx["settings"] = db, settings

    worker = Worker(
        functions=[sweep_sla],
        redis_pool=pool,
        burst=True,
        poll_delay=0,
        on_startup=startup,
        handle_signals=False,
    )
    await worker.main()
    assert (worker.jobs_complete, worker.jobs_failed) == (1, 0)
    assert await sweep_sla({"db": db, "settings": settings}) == 0  # run again: nothing new
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(Alert)) == 3
    await worker.close()
    await pool.aclose()


async def test_a_raised_alert_is_pushed_to_the_alerts_panel_with_a_sound(
    app: object, db: Database
) -> None:
    from console.live.hub import Connection

    async with db.transaction() as session:
        business = await make_business(session, always_open=True)
        secretary = await make_user(session, "secretary", business)
    panel = Connection(
        user_id=str(secretary.id),
        user_name="s",
        session_id="x",
        role="secretary",
        locale="he",
        businesses=frozenset({str(business.id)}),
        page="alerts",
    )
    hub = app.state.hub  # type: ignore[attr-defined]
    hub.join(panel)
    lead = await new_lead(db, business, "phone", datetime.now(UTC) - timedelta(minutes=10))
    async with db.transaction() as session:  # the app's own timer may sweep first: either way
        await sla.sweep(session, now=datetime.now(UTC))
    pushed: list[str] = []
    async with asyncio.timeout(3):
        while len(pushed) < 1:
            message = await panel.outbox.get() or ""
            if "alert-row" in message:  # (the new lead itself sounds too)
                pushed.append(message)
    await asyncio.sleep(0.3)
    assert all(
        m is not None and "alert-row" not in m  # (None: the panel closed, never expected here)
        for m in [panel.outbox.get_nowait() for _ in range(panel.outbox.qsize())]
    )
    assert len(pushed) == 1  # overdue past every threshold at once: the breach alone
    assert all(f"/leads/{lead.id}" in message for message in pushed)
    assert all('data-upsert="#alert-rows"' in m and 'data-attention="alert"' in m for m in pushed)
    await hub.leave(panel)


async def test_the_exact_time_check_runs_once_per_second_due() -> None:
    from console.base.scheduler import LocalScheduler, SweepAt, schedule_queued

    runs: list[float] = []

    async def run() -> None:
        runs.append(datetime.now(UTC).timestamp())

    scheduler = LocalScheduler({"sweep_sla": run})
    soon = datetime.now(UTC) + timedelta(milliseconds=100)
    await schedule_queued(scheduler, [SweepAt(soon), SweepAt(soon), "not a moment"])
    await scheduler.at("sweep_sla", soon + timedelta(milliseconds=1))  # same slot: no 2nd timer
    await asyncio.sleep(0.4)
    assert len(runs) == 1 and runs[0] >= soon.timestamp()
    await scheduler.stop()


async def test_moments_queued_in_one_slot_ask_the_scheduler_once() -> None:
    from console.base.scheduler import SLOTS_PER_SECOND, RunSoon, SweepAt, schedule_queued

    asked: list[tuple[str, datetime]] = []

    class Recorder:  # what ArqScheduler would enqueue, one Redis round trip each
        async def at(self, job: str, moment: datetime) -> None:
            asked.append((job, moment))

        async def stop(self) -> None:
            return None

    slot = timedelta(seconds=1 / SLOTS_PER_SECOND)
    start = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()) + 60, UTC)  # a slot's start
    leads = [SweepAt(start + timedelta(milliseconds=n)) for n in range(64)]  # a group's alarms
    await schedule_queued(
        Recorder(), [*leads, SweepAt(start + slot), RunSoon("send_notifications")] * 2
    )
    assert [job for job, _ in asked] == ["send_notifications", "sweep_sla", "sweep_sla"]
    assert [moment for _, moment in asked[1:]] == [start, start + slot]


async def test_a_business_without_hours_still_takes_leads(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        business.weekly_hours = {}  # never covered: no promise can be kept or missed
    lead = await new_lead(db, business, "phone", SUNDAY_9)
    assert lead.respond_by is None and await due_at(db, lead) is None
    assert lead.queue_at == SUNDAY_9


async def test_an_owner_who_asked_is_told_of_a_breach_once_in_his_language(db: Database) -> None:
    from console.channels.notify import Senders, send_due_notifications
    from models import Notification
    from tests.fakes import FakeSmtp

    async with db.transaction() as session:
        business = await make_business(session, name="אינסטלציה כהן")
        owner = await make_user(session, "owner", business, locale="he")
        session.add(
            SlaPolicy(
                business_id=business.id,
                channel="",
                priority="",
                first_response_minutes=5,
                warn_at_percent=[50],
                notify_owner_on_breach=True,
            )
        )
    await new_lead(db, business, "phone", SUNDAY_9)
    for _ in range(2):
        async with db.transaction() as session:
            await sla.sweep(session, now=SUNDAY_9 + timedelta(minutes=6))
    async with db.transaction(write=False) as session:
        queued = (await session.scalars(select(Notification))).all()
    assert len(queued) == 1 and queued[0].recipient == owner.email
    assert queued[0].subject.startswith("פנייה חיכתה יותר מדי")
    async with FakeSmtp() as smtp:
        settings = Settings(database_url=db.url, secret_key=SECRET, smtp_url=smtp.url())
        senders = Senders(settings)
        report = await send_due_notifications(db, senders, now=datetime.now(UTC))
        await senders.aclose()
        assert report.sent == 1
        [mail] = smtp.received
    assert "אינסטלציה כהן" in mail.text and "5" in mail.text


async def test_a_new_policy_moves_the_waiting_leads_due_times(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
    waiting = await new_lead(db, business, "email", SUNDAY_9)
    assert waiting.respond_by == SUNDAY_9 + timedelta(hours=2)
    business_id = business.id
    async with db.transaction() as session:
        found = await session.get_one(Business, business_id)
        await sla.set_policy(
            session, Actor.command_line(SUNDAY_9), found, channel="email", minutes=30, warnings=[50]
        )
    async with db.transaction(write=False) as session:
        moved = await session.get_one(Lead, waiting.id)
    assert moved.sla_minutes == 30 and moved.respond_by == SUNDAY_9 + timedelta(minutes=30)
    assert await due_at(db, moved) == SUNDAY_9 + timedelta(minutes=15)
    for channel, priority, minutes, warnings in (
        ("fax", "", 10, [50]),
        ("", "soon", 10, [50]),
        ("", "", 0, [50]),
        ("", "", 10, [100]),
        ("", "", -5, [50]),
        ("", "", 10, [0]),
    ):
        with pytest.raises(Invalid):
            async with db.transaction() as session:
                found = await session.get_one(Business, business_id)
                await sla.set_policy(
                    session,
                    Actor.command_line(SUNDAY_9),
                    found,
                    channel=channel,
                    priority=priority,
                    minutes=minutes,
                    warnings=warnings,
                )
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(SlaPolicy)) == 1
        # the one change made is in the audit log; the refused ones left no record
        [audited] = (await session.scalars(select(AuditEvent))).all()
    assert (audited.action, audited.business_id, audited.details) == (
        "sla.policy_set",
        business_id,
        {"minutes": 30},
    )
    assert (audited.actor_id, audited.actor_email, audited.address) == (None, "cli", "cli")


async def test_an_admin_sets_a_promise_in_the_console(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        admin = await make_user(session, "admin")
        secretary = await make_user(session, "secretary", business)
    url = f"/agency/businesses/{business.id}/sla"
    await sign_in(client, admin.email)
    token = await csrf_token(client, url)
    saved = await client.post(
        url,
        data={
            "csrf_token": token,
            "channel": "whatsapp",
            "minutes": "3",
            "warn_at_percent": "60",
            "notify_owner": "1",
        },
    )
    assert saved.status_code == 303
    page = await client.get(url)
    assert ">3<" in page.text.replace(" ", "")
    for bad in ({"minutes": "soon"}, {"minutes": "0"}, {"minutes": "5", "warn_at_percent": "120"}):
        assert (await client.post(url, data={"csrf_token": token, **bad})).status_code == 422
    async with db.transaction(write=False) as session:
        [policy] = (await session.scalars(select(SlaPolicy))).all()
    assert (policy.channel, policy.first_response_minutes, policy.warn_at_percent) == (
        "whatsapp",
        3,
        [60],
    )
    assert policy.notify_owner_on_breach
    client.cookies.clear()
    await sign_in(client, secretary.email)
    assert (await client.get(url)).status_code == 404


async def test_a_hand_off_must_be_acknowledged_and_finished_in_time(
    client: httpx.AsyncClient, db: Database
) -> None:
    from console.tasks import task_sla, tasks

    async with db.transaction() as session:
        business = await make_business(session)
        secretary = await make_user(session, "secretary", business)
        owner = await make_user(session, "owner", business)
    lead = await new_lead(db, business, "phone", SUNDAY_9)
    async with db.transaction() as session:
        task = await tasks.hand_off(
            session,
            secretary,
            lead.id,
            tasks.HandOff(assignee_id=str(owner.id), title="להתקשר", due="2026-11-22T16:00"),
            now=SUNDAY_9,
        )
    assert task.acknowledge_by == SUNDAY_9 + timedelta(hours=2)  # the default: two working hours
    assert task.next_alert_at == task.acknowledge_by

    async def sweep(at: datetime) -> int:
        async with db.transaction() as session:
            return await task_sla.sweep_tasks(session, now=at)

    assert await sweep(SUNDAY_9 + timedelta(hours=1)) == 0
    assert await sweep(SUNDAY_9 + timedelta(hours=2, minutes=1)) == 1  # not acknowledged
    assert await sweep(SUNDAY_9 + timedelta(hours=2, minutes=2)) == 0  # once
    await sign_in(client, owner.email)
    token = await csrf_token(client, "/tasks")
    seen = await client.post(f"/tasks/{task.id}/ack", data={"csrf_token": token})
    assert seen.status_code == 303
    async with db.transaction(write=False) as session:
        acknowledged = await session.get_one(type(task), task.id)
    assert acknowledged.acknowledged_at is not None
    # Next: the reminder an hour before the due time (the task policy's default), then the due time.
    assert acknowledged.next_alert_at == datetime(2026, 11, 22, 13, 0, tzinfo=UTC)
    assert acknowledged.remind_at == acknowledged.next_alert_at
    # Overdue: raised by this sweep or by the app's own timer, which the ack scheduled.
    await sweep(datetime(2026, 11, 22, 14, 1, tzinfo=UTC))
    async with db.transaction(write=False) as session:
        kinds = sorted(
            (await session.scalars(select(Alert.kind).where(Alert.task_id == task.id))).all()
        )
    assert kinds == ["task_ack", "task_due"]
    client.cookies.clear()
    await sign_in(client, secretary.email)
    token = await csrf_token(client, "/tasks")
    refused = await client.post(f"/tasks/{task.id}/ack", data={"csrf_token": token})
    assert refused.status_code == 404  # only the assignee acknowledges
