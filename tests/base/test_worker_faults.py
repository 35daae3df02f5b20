"""Fault tests for the background jobs, with real processes: `mazkira worker` killed with
SIGKILL in the middle of a sweep, stopped with SIGTERM in the middle of a send, its Redis
flushed and restarted under it, and two workers at once.

Each test has its own `redis-server` (the shared Redis is never flushed, restarted or killed)
and uses the test database; each counts what came out rather than assuming it: alert rows by
key, `alert.raised` events by alert, sends at the fake providers by idempotency key. Due times
lie in the recent past, so nothing waits for a clock, except the cron sweep where a test is
about it; every wait is a short poll under an overall timeout."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from console.base.db import Database
from console.base.scheduler import ArqScheduler, schedule_queued
from console.channels.notify import queue_notification
from console.contacts.contacts import find_or_create_contact
from console.live.hub import CHANNEL
from console.people.audit import Actor
from console.sla import sla
from models import Alert, Business, Event, Lead, LeadAlarm, Notification
from tests.conftest import IN_CI, SECRET
from tests.factories import make_business, make_user
from tests.fakes import FakeMeta, FakeSmtp, FakeTwilio
from tests.redis_server import PrivateRedis

ROOT = Path(__file__).resolve().parents[2]
# The cron sweep runs every 5 s and the sender every 10 s: every wait here ends well before.
TIMEOUT = 15.0
POLL = 0.05
IN_PROGRESS = "arq:in-progress:"  # arq's key while a job runs
LONG_AGO = timedelta(minutes=10)  # a phone lead's 5-minute promise is broken by then
# Where the database does not matter (Redis and signals), one backend is enough.
ONE_BACKEND = pytest.mark.parametrize("backend", ["postgres" if IN_CI else "sqlite"])


# --------------------------------------------------------------------------- processes


class WorkerProcess:
    """`mazkira worker` as a supervisor runs it, its output in a file."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log = workdir / f"{name}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "console.cli", "worker"],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    async def ready(self) -> None:
        """Until arq has started (it polls Redis right after this line)."""
        await eventually(lambda: "Starting worker" in self.output(), f"{self.name} up", self)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    async def stop(self) -> int:
        """SIGTERM, as a supervisor stops it; returns the exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.process.wait, TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} ignored SIGTERM:\n{self.output()}") from None


async def eventually(
    check: Callable[[], bool | Awaitable[bool]],
    what: str,
    *workers: WorkerProcess,
    poll: float = POLL,
) -> None:
    """Poll `check` until it holds; fail after TIMEOUT, or at once when one of `workers` has
    exited, with their output."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        done = check()
        if done if isinstance(done, bool) else await done:
            return
        dead = [w.name for w in workers if not w.alive()]
        if dead or time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.name}:\n{w.output()[-4000:]}" for w in workers)
            why = f"{', '.join(dead)} exited" if dead else f"not within {TIMEOUT:.0f} s"
            raise AssertionError(f"{what}: {why}\n{logs}")
        await asyncio.sleep(poll)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def exact_time(db: Database, private_redis: PrivateRedis) -> AsyncIterator[None]:
    """The test's commits ask arq for their exact-time runs, as a web process's commits do."""
    scheduler = ArqScheduler(private_redis.url)

    async def hook(items: list[Any]) -> None:
        await schedule_queued(scheduler, items)

    db.after_commit.append(hook)
    yield
    db.after_commit.remove(hook)
    with contextlib.suppress(Exception):  # its server may have been restarted under it
        await scheduler.stop()


@pytest.fixture
def worker_env(db: Database, private_redis: PrivateRedis) -> dict[str, str]:
    return os.environ | {
        "DATABASE_URL": db.url,
        "REDIS_URL": private_redis.url,
        "SECRET_KEY": SECRET,
    }


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], WorkerProcess]]:
    """Start workers; any left running is killed at the end, and the output of all is printed
    (pytest shows it when the test failed)."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str]) -> WorkerProcess:
        started.append(WorkerProcess(f"worker-{len(started) + 1}", env, tmp_path))
        return started[-1]

    yield start
    for worker in started:
        if worker.alive():
            worker.kill()
        print(f"--- {worker.name} (exit {worker.process.returncode}):\n{worker.output()[-3000:]}")


@pytest.fixture
async def providers() -> AsyncIterator[tuple[FakeTwilio, FakeSmtp, FakeMeta]]:
    async with FakeTwilio() as twilio, FakeSmtp() as smtp, FakeMeta() as meta:
        yield twilio, smtp, meta


def provider_env(twilio: FakeTwilio, smtp: FakeSmtp, meta: FakeMeta) -> dict[str, str]:
    """A worker's settings for the local fakes (private addresses allowed for them)."""
    return {
        "ALLOW_PRIVATE_PROVIDER_URLS": "true",
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_FROM": "+97235551234",
        "TWILIO_API_URL": twilio.base_url,
        "SMTP_URL": smtp.url(),
        "WHATSAPP_ACCESS_TOKEN": meta.access_token,
        "WHATSAPP_PHONE_NUMBER_ID": meta.phone_number_id,
        "WHATSAPP_API_URL": meta.base_url,
    }


# --------------------------------------------------------------------------- data and counts


async def make_businesses(db: Database, count: int, **policy: Any) -> list[Business]:
    """Businesses covered 24/7 (a lead is late whatever the hour), with `policy` when given."""
    async with db.transaction() as session:
        made = [await make_business(session, always_open=True) for _ in range(count)]
        for business in made if policy else ():
            await sla.set_policy(session, Actor.command_line(datetime.now(UTC)), business, **policy)
    return made


_phones = itertools.count(2345678)


async def due_leads(
    db: Database,
    businesses: list[Business],
    count: int,
    *,
    created_at: datetime,
    caller_each: bool = False,
) -> list[uuid.UUID]:
    """`count` phone leads created at `created_at`, in one transaction, each given its promise
    by the SLA engine (`start_clock`, which also asks for the exact-time run); from one caller
    per business, or with `caller_each` from a caller each."""
    async with db.transaction() as session:
        policies = await sla.policies_of(session, [b.id for b in businesses])
        made = []
        for n in range(count):
            business = businesses[n % len(businesses)]
            phone = f"054{next(_phones):07d}" if caller_each else "052-7654321"
            contact, _new = await find_or_create_contact(session, business, phone=phone)
            lead = Lead(
                id=uuid.uuid4(),
                business_id=business.id,
                contact_id=contact.id,
                channel="phone",
                created_at=created_at,
                stage_changed_at=created_at,
            )
            session.add(lead)
            await sla.start_clock(session, lead, business, policies[business.id])
            made.append(lead.id)
    return made


def breach_keys(lead_ids: list[uuid.UUID]) -> set[str]:
    return {f"lead:{lead_id}:first_response:100" for lead_id in lead_ids}


async def alert_keys(db: Database) -> Counter[str]:
    """How many alert rows each key has (the unique index says one: count anyway)."""
    async with db.transaction(write=False) as session:
        rows = await session.execute(select(Alert.key, func.count()).group_by(Alert.key))
        return Counter({key: int(n) for key, n in rows})


async def raised(db: Database, lead_ids: list[uuid.UUID]) -> bool:
    return breach_keys(lead_ids) <= set(await alert_keys(db))


async def assert_each_alert_once(db: Database, lead_ids: list[uuid.UUID]) -> None:
    """One breach alert per lead and nothing else; one `alert.raised` event per alert; each
    business's event sequence without a gap (a killed sweep left no part of itself behind);
    no lead still waiting for a sweep."""
    keys = await alert_keys(db)
    assert {key: n for key, n in keys.items() if n != 1} == {}
    assert set(keys) == breach_keys(lead_ids)
    async with db.transaction(write=False) as session:
        payloads = await session.scalars(select(Event.payload).where(Event.kind == "alert.raised"))
        per_alert = Counter(payload["alert_id"] for payload in payloads)
        assert len(per_alert) == len(lead_ids) and set(per_alert.values()) == {1}
        sequences = await session.execute(
            select(
                Event.business_id, func.count(), func.min(Event.seq), func.max(Event.seq)
            ).group_by(Event.business_id)
        )
        for business_id, count, first, last in sequences:
            assert (first, last) == (1, count), business_id
        assert await session.scalar(select(func.count()).select_from(LeadAlarm)) == 0


async def statuses(db: Database) -> Counter[str]:
    async with db.transaction(write=False) as session:
        return Counter((await session.scalars(select(Notification.status))).all())


async def new_runs(redis: Redis, job: str, known: set[str], worker: WorkerProcess) -> set[str]:
    """Waits until a run of `job` other than the `known` ones is in progress; returns them."""
    running: set[str] = set()

    async def started() -> bool:
        running.update({key.decode() async for key in redis.scan_iter(f"{IN_PROGRESS}{job}:*")})
        running.difference_update(known)
        return bool(running)

    # Seen within milliseconds: a sweep of a few hundred leads takes ~70 ms on a fast machine.
    await eventually(started, f"a run of {job} started", worker, poll=0.005)
    return running


# --------------------------------------------------------------------------- the faults


ATTEMPTS = 3  # a kill can land just after the commit; then again, until one lands before it


@pytest.mark.usefixtures("exact_time")
async def test_a_worker_killed_mid_sweep_leaves_each_alert_raised_exactly_once(
    db: Database,
    private_redis: PrivateRedis,
    worker_env: dict[str, str],
    spawn: Callable[[dict[str, str]], WorkerProcess],
) -> None:
    businesses = await make_businesses(db, 4)
    redis = Redis.from_url(private_redis.url)
    lead_ids: list[uuid.UUID] = []
    killed_runs: set[str] = set()  # arq keeps a killed run "in progress" for minutes
    killed_before_commit = False
    try:
        for _attempt in range(ATTEMPTS):
            # Due for minutes: the exact-time run is queued for now, so the new worker takes it
            # on its first poll, and we see it start.
            batch = await due_leads(db, businesses, 400, created_at=datetime.now(UTC) - LONG_AGO)
            lead_ids += batch
            worker = spawn(worker_env)
            running = await new_runs(redis, "sweep_sla", killed_runs, worker)
            await asyncio.sleep(random.uniform(0, 0.02))  # somewhere in the sweep
            worker.kill()
            killed_runs |= running
            if not set(await alert_keys(db)) & breach_keys(batch):
                killed_before_commit = True  # its transaction died with it
                break
        assert killed_before_commit, "every kill landed after the sweep had committed"
        # The killed run is not retried for minutes (arq's in-progress key); the cron sweep of
        # the worker that replaces it must raise what it left, once.
        survivor = spawn(worker_env)
        await eventually(lambda: raised(db, lead_ids), "every alert, after a restart", survivor)
        await assert_each_alert_once(db, lead_ids)
        assert await survivor.stop() == 0
    finally:
        await redis.aclose()


@ONE_BACKEND
@pytest.mark.usefixtures("exact_time")
async def test_a_flushed_then_restarted_redis_loses_no_alert(
    db: Database,
    private_redis: PrivateRedis,
    worker_env: dict[str, str],
    spawn: Callable[[dict[str, str]], WorkerProcess],
) -> None:
    # A one-minute promise without warnings: the breach is the only alert.
    businesses = await make_businesses(db, 2, minutes=1, warnings=[])
    worker = spawn(worker_env)
    await worker.ready()

    # Leads that break their promise a second from now: their exact-time run waits in Redis…
    breach_at = datetime.now(UTC) + timedelta(seconds=1)
    first = await due_leads(db, businesses, 20, created_at=breach_at - timedelta(minutes=1))
    redis = Redis.from_url(private_redis.url)
    try:
        assert [key async for key in redis.scan_iter("arq:job:sweep_sla:*")]
        private_redis.flushall()  # …and is lost here; the cron sweep must raise them
        assert not [key async for key in redis.scan_iter("arq:job:sweep_sla:*")]
    finally:
        await redis.aclose()
    await eventually(lambda: raised(db, first), "alerts after FLUSHALL", worker)

    # Redis dies and comes back empty: the worker waits it out and carries on.
    private_redis.stop(signal.SIGKILL)
    await asyncio.sleep(1.0)  # the outage: two of the worker's polls (every 0.5 s) meet no Redis
    private_redis.start()
    second = await due_leads(db, businesses, 20, created_at=datetime.now(UTC) - LONG_AGO)
    await eventually(lambda: raised(db, second), "alerts after the Redis restart", worker)
    await assert_each_alert_once(db, first + second)
    assert await worker.stop() == 0


@pytest.mark.usefixtures("exact_time")
async def test_two_workers_raise_each_alert_once_and_send_each_notice_once(
    db: Database,
    private_redis: PrivateRedis,
    worker_env: dict[str, str],
    spawn: Callable[[dict[str, str]], WorkerProcess],
    providers: tuple[FakeTwilio, FakeSmtp, FakeMeta],
) -> None:
    twilio, smtp, meta = providers
    # Three businesses whose owners are told of each breach, by SMS, e-mail and WhatsApp.
    businesses = await make_businesses(db, 3, minutes=5, notify_owner=True)
    async with db.transaction() as session:
        for business, channel in zip(businesses, ("sms", "email", "whatsapp"), strict=True):
            owner = await make_user(session, "owner", business)
            owner.phone, owner.notify_channel = "+972541234567", channel
    live = Redis.from_url(private_redis.url)
    published: list[dict[str, Any]] = []
    listening = asyncio.Event()

    async def listen() -> None:  # as a web process does, for its consoles
        async with live.pubsub() as pubsub:
            await pubsub.subscribe(f"{CHANNEL}:0")
            listening.set()
            async for message in pubsub.listen():
                if message["type"] == "message":
                    published.append(json.loads(message["data"]))

    def alerts_live() -> Counter[str]:
        return Counter(
            message["event"]["payload"]["alert_id"]
            for message in published
            if message["type"] == "event" and message["event"]["kind"] == "alert.raised"
        )

    listener = asyncio.create_task(listen())
    workers = [spawn(worker_env | provider_env(*providers)) for _ in range(2)]
    lead_ids: list[uuid.UUID] = []
    direct: list[str] = []
    try:
        await asyncio.wait_for(listening.wait(), TIMEOUT)
        for worker in workers:
            await worker.ready()
        # Due leads in batches a slot apart (exact-time sweeps for the two to share), and
        # notifications queued in several commits (several sender runs at once).
        for batch in range(4):
            created_at = datetime.now(UTC) - LONG_AGO - timedelta(seconds=batch)
            # A caller each, so that no two of an owner's WhatsApp notices read the same.
            lead_ids += await due_leads(db, businesses, 15, created_at=created_at, caller_each=True)
            async with db.transaction() as session:
                for n, channel in enumerate(("sms", "email", "whatsapp") * 2):
                    direct.append(f"fault-test:{batch}:{n}")
                    await queue_notification(
                        session,
                        key=direct[-1],
                        business_id=businesses[0].id,
                        channel=channel,
                        recipient="boss@example.test" if channel == "email" else "054-2345678",
                        subject="בדיקה",
                        body=f"message {direct[-1]}",
                        now=datetime.now(UTC),
                    )
            await asyncio.sleep(0.15)  # the next batch in the next slot
        expected = Counter({"sent": len(lead_ids) + len(direct)})  # a notice per breach

        async def all_sent() -> bool:
            return await statuses(db) == expected

        await eventually(lambda: raised(db, lead_ids), "every alert raised", *workers)
        await eventually(all_sent, "every notification sent", *workers)
        for worker in workers:  # a send still in flight lands before its worker exits
            assert await worker.stop() == 0
        await eventually(lambda: len(alerts_live()) >= len(lead_ids), "every alert on the channel")
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await live.aclose()

    await assert_each_alert_once(db, lead_ids)
    async with db.transaction(write=False) as session:
        rows = (
            await session.execute(select(Notification.idempotency_key, Notification.channel))
        ).all()
    channels = dict(rows)  # one row per key (the unique index), all of them sent
    assert len(channels) == expected["sent"]
    per_channel = Counter(channels.values())
    # Each notification reached its provider exactly once, counted at the provider.
    sms = Counter(r.headers["i-twilio-idempotency-token"] for r in twilio.requests)
    assert set(sms) == {key for key, channel in channels.items() if channel == "sms"}
    assert set(sms.values()) == {1}
    mails = Counter(mail.header("Message-ID") for mail in smtp.received)
    assert len(mails) == per_channel["email"] and set(mails.values()) == {1}
    whatsapp = Counter(json.dumps(r.json(), sort_keys=True) for r in meta.requests)
    assert len(whatsapp) == per_channel["whatsapp"] and set(whatsapp.values()) == {1}
    # Every alert the workers raised went out to the consoles' channel, once.
    assert len(alerts_live()) == len(lead_ids) and set(alerts_live().values()) == {1}


@ONE_BACKEND
@pytest.mark.usefixtures("exact_time")
async def test_a_worker_stopped_mid_send_finishes_it_first(
    db: Database,
    worker_env: dict[str, str],
    spawn: Callable[[dict[str, str]], WorkerProcess],
    providers: tuple[FakeTwilio, FakeSmtp, FakeMeta],
) -> None:
    """A deploy stops workers with SIGTERM. A send cut off after the provider took it goes
    again when its lease runs out, and WhatsApp has no idempotency key to drop the copy: the
    worker finishes the sends it started, then exits."""
    meta = providers[2]
    meta.delay = 1.0  # the provider answers slowly: the stop lands mid-send
    worker = spawn(worker_env | provider_env(*providers))
    await worker.ready()
    (business,) = await make_businesses(db, 1)
    async with db.transaction() as session:
        for n in range(3):
            await queue_notification(
                session,
                key=f"stop-test:{n}",
                business_id=business.id,
                channel="whatsapp",
                recipient="054-2345678",
                body=f"message {n}",
                now=datetime.now(UTC),
            )
    await eventually(lambda: len(meta.requests) == 3, "the sends in flight", worker)
    assert await worker.stop() == 0
    assert await statuses(db) == Counter({"sent": 3}), worker.output()
    assert len(meta.requests) == 3
