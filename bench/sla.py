"""The SLA sweep at scale: `python -m bench.sla [--db sqlite|postgres] [--leads N]`.

Seeds N leads (10% open) across 1,000 businesses, makes 1,000 of the open ones due, and times
one sweep that finds them and raises their alerts (in a transaction that is rolled back, so the
run can repeat). Then, with the app's own hub and exact-time scheduler, a lead falls due while a
console listens, and the delay from the due moment to the alert reaching it is measured. The
last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, text, update

from asgi import create_app
from bench.inbox import prepare
from console.base.config import Settings
from console.base.db import Database
from console.live.hub import Connection
from console.sla import sla
from models import Alert, Business, Lead, LeadAlarm

DUE = 1000


async def make_due(db: Database, count: int) -> list[uuid.UUID]:
    async with db.transaction() as session:
        ids = list(
            (
                await session.scalars(select(Lead.id).where(Lead.closed_at.is_(None)).limit(count))
            ).all()
        )
        long_ago = datetime.now(UTC) - timedelta(hours=1)
        await session.execute(update(Business).values(always_open=True))
        await session.execute(
            update(Lead)
            .where(Lead.id.in_(ids))
            .values(first_response_at=None, sla_minutes=30, created_at=long_ago - timedelta(days=1))
        )
        await session.execute(delete(LeadAlarm))
        await sla.set_alarms(session, dict.fromkeys(ids, long_ago))
    return ids


async def time_sweeps(db: Database, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        async with db.engine.connect() as connection:
            transaction = await connection.begin()
            from sqlalchemy.ext.asyncio import AsyncSession

            session = AsyncSession(bind=connection, expire_on_commit=False)
            started = time.perf_counter()
            report = await sla.sweep(session, now=datetime.now(UTC))
            await session.flush()
            times.append((time.perf_counter() - started) * 1000)
            assert report.due == DUE, report
            await transaction.rollback()
            await session.close()
    return times


async def alert_latency(db: Database) -> float:
    """A lead falls due 1.5 s from now while a console listens; how late does its alert arrive?"""
    async with db.transaction() as session:  # no backlog: only this lead is due
        await session.execute(delete(LeadAlarm))
    app = create_app(Settings(database_url=db.url, secret_key="bench-" + "x" * 40), db=db)
    async with app.router.lifespan_context(app):
        async with db.transaction() as session:
            business = await session.scalar(select(Business).limit(1))
            assert business is not None
            business.always_open = True
            lead = await session.scalar(
                select(Lead).where(Lead.business_id == business.id, Lead.closed_at.is_(None))
            )
            assert lead is not None
            due = datetime.now(UTC) + timedelta(seconds=1.5)
            lead.created_at, lead.sla_minutes, lead.first_response_at = (
                due - timedelta(minutes=1),
                1,
                None,
            )
            await sla.set_alarms(session, {lead.id: due})
            await session.execute(delete(Alert).where(Alert.lead_id == lead.id))  # a rerun
            from console.base.db import after_commit
            from console.base.scheduler import SweepAt

            after_commit(session, SweepAt(due))
        console = Connection(
            user_id="bench",
            user_name="bench",
            session_id="bench",
            role="admin",
            locale="he",
            businesses=frozenset({str(business.id)}),
            page="alerts",
        )
        app.state.hub.join(console)
        message = await asyncio.wait_for(console.outbox.get(), 10)
        received = datetime.now(UTC)
        assert message and "alert-row" in message
    return (received - due).total_seconds() * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    db = await prepare(args.db, args.leads, 1000)
    try:
        await make_due(db, DUE)
        async with db.engine.begin() as connection:
            await connection.execute(text("ANALYZE"))
        times = await time_sweeps(db, args.runs)
        latency = await alert_latency(db)
        async with db.transaction(write=False) as session:
            open_leads = await session.scalar(
                select(text("count(*)")).select_from(Lead).where(Lead.closed_at.is_(None))
            )
    finally:
        await db.dispose()
    print(
        json.dumps(
            {
                "db": args.db,
                "sweep_ms": round(statistics.median(times), 1),
                "sweep_max_ms": round(max(times), 1),
                "due": DUE,
                "open": open_leads,
                "total": args.leads,
                "alert_latency_ms": round(latency, 1),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
