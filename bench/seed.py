"""Bulk data for the benchmarks: businesses, people, contacts and leads, inserted in batches.

Writes through SQLAlchemy Core (not the services) so a million leads take a minute, not an hour;
the rows are the same shape the services write.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import Database
from console.people.passwords import hash_password
from models import Business, Contact, Lead, OwnerMembership, SecretaryAssignment, User
from models.contacts import CHANNELS
from models.tenancy import DEFAULT_WEEKLY_HOURS

BATCH = 5_000
PASSWORD = "bench-password"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


async def count_leads(db: Database) -> int:
    async with db.transaction(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(Lead)) or 0)


async def seed(
    db: Database,
    *,
    businesses: int,
    leads: int,
    open_share: float = 0.1,
    secretary_businesses: int = 10,
    contacts_per_business: int = 200,
    seed: int = 2026,
    secretary_open: int | None = None,
) -> dict[str, Any]:
    """Fill an empty database; returns the ids a benchmark needs (the secretary, businesses).

    With `secretary_open`, the secretary sees exactly that many open leads whatever the total:
    the first ones are open leads of her businesses, and of the rest (spread over every business,
    a share `open_share` of them open) those that fall to her businesses are closed."""
    rng = random.Random(seed)
    business_ids = [uuid.uuid4() for _ in range(businesses)]
    password_hash = hash_password(PASSWORD)
    async with db.transaction() as session:
        await _insert(
            session,
            Business,
            [
                {
                    "id": b,
                    "slug": f"bench-{i}",
                    "name": f"עסק {i}",
                    "timezone": "Asia/Jerusalem",
                    "locale": "he",
                    "weekly_hours": DEFAULT_WEEKLY_HOURS,
                    "always_open": True,
                    "intake_key": uuid.uuid4().hex,
                    "active": True,
                    "created_at": NOW,
                }
                for i, b in enumerate(business_ids)
            ],
        )
        secretary_id, owner_id = uuid.uuid4(), uuid.uuid4()
        await _insert(
            session,
            User,
            [
                {
                    "id": secretary_id,
                    "email": "secretary@bench.test",
                    "name": "מזכירה",
                    "role": "secretary",
                    "password_hash": password_hash,
                    "active": True,
                    "locale": "he",
                    "created_at": NOW,
                    "password_changed_at": NOW,
                },
                {
                    "id": owner_id,
                    "email": "owner@bench.test",
                    "name": "בעל עסק",
                    "role": "owner",
                    "password_hash": password_hash,
                    "active": True,
                    "locale": "he",
                    "created_at": NOW,
                    "password_changed_at": NOW,
                },
            ],
        )
        served = business_ids[:secretary_businesses]
        await _insert(
            session,
            SecretaryAssignment,
            [{"user_id": secretary_id, "business_id": b, "is_backup": False} for b in served],
        )
        await _insert(
            session, OwnerMembership, [{"user_id": owner_id, "business_id": business_ids[0]}]
        )
    contacts: dict[uuid.UUID, list[uuid.UUID]] = {}
    rows: list[dict[str, Any]] = []
    for n, business_id in enumerate(business_ids):
        ids = [uuid.uuid4() for _ in range(contacts_per_business)]
        contacts[business_id] = ids
        rows += [
            {
                "id": c,
                "business_id": business_id,
                "name": f"לקוח {n}-{i}",
                "phone": f"+97252{n:03d}{i:04d}",
                "email": None,
                "company": "",
                "address": "",
                "industry": "",
                "notes": "",
                "lifetime_value": Decimal(0),
                "tags": [],
                "created_at": NOW,
            }
            for i, c in enumerate(ids)
        ]
    await _insert_batches(db, Contact, rows)
    lead_rows = []
    hers = set(served) if secretary_open is not None else set()
    for n in range(leads):
        created = NOW - timedelta(minutes=rng.randint(0, 60 * 24 * 365))
        if secretary_open is not None and n < secretary_open:
            business_id, is_open = rng.choice(served), True
        else:
            business_id = rng.choice(business_ids)
            is_open = business_id not in hers and rng.random() < open_share
        lead_rows.append(
            {
                "id": uuid.uuid4(),
                "business_id": business_id,
                "contact_id": rng.choice(contacts[business_id]),
                "channel": rng.choice(CHANNELS),
                "subject": "פנייה",
                "message": "",
                "source": "",
                "stage": "new" if is_open else "won",
                "stage_changed_at": created,
                "lost_reason": "",
                "priority": "normal",
                "created_at": created,
                "closed_at": None if is_open else created + timedelta(hours=2),
                "sla_minutes": 30,
                "respond_by": created + timedelta(minutes=30),
                "queue_rank": 0 if is_open else 1,
                "queue_at": created + timedelta(minutes=30) if is_open else created,
            }
        )
        if len(lead_rows) >= BATCH * 4:
            await _insert_batches(db, Lead, lead_rows)
            lead_rows = []
    await _insert_batches(db, Lead, lead_rows)
    return {"secretary": "secretary@bench.test", "owner": "owner@bench.test", "password": PASSWORD}


async def _insert(session: AsyncSession, model: type, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(model), rows)


async def _insert_batches(db: Database, model: type, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        async with db.transaction() as session:
            await _insert(session, model, rows[start : start + BATCH])
