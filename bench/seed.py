"""Bulk data for the benchmarks: businesses, people, contacts, leads and the interactions that
closed them, written in bulk.

Not through the services, nor row by row: the rows are built here in the shape the services
write them (each column's value as SQLAlchemy would bind it), then written by the driver in
bulk, `executemany` on one SQLite connection (foreign keys and syncs off while it writes) or
PostgreSQL's `COPY`, so a million leads take minutes, not hours. Ids are UUIDv7s of their
row's own creation time, as `models.base.new_id` would have given them then, and leads are
written oldest first, so every primary key is appended to.
"""

from __future__ import annotations

import random
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateIndex

from console.base.db import Database
from console.people.passwords import hash_password
from models import (
    Business,
    Contact,
    Interaction,
    Lead,
    OwnerMembership,
    SecretaryAssignment,
    User,
)
from models.contacts import CHANNELS
from models.tenancy import DEFAULT_WEEKLY_HOURS

CHUNK = 50_000  # leads built and written at a time (their rows held in memory)
PASSWORD = "bench-password"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
YEAR_MINUTES = 60 * 24 * 365
# How a closed lead was answered: a call back, or a message on its own channel.
ANSWER_KIND = {
    "phone": "outbound_call",
    "walk-in": "outbound_call",
    "web": "outbound_call",
    "whatsapp": "whatsapp",
    "sms": "sms",
    "email": "email",
}


async def count_leads(db: Database) -> int:
    async with db.transaction(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(Lead)) or 0)


def time_id(at: datetime, rng: random.Random) -> uuid.UUID:
    """A UUIDv7 of this moment (RFC 9562: 48 bits of milliseconds, version, random bits)."""
    ms = int(at.timestamp() * 1000)
    return uuid.UUID(
        int=(ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62)
        | rng.getrandbits(62)
    )  # fmt: skip


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
    a share `open_share` of them open) those that fall to her businesses are closed. Each closed
    lead was answered once (an interaction, done, 20 minutes after it came, by her on her
    businesses' leads) and carries its first response."""
    rng = random.Random(seed)
    business_ids = [time_id(NOW - timedelta(days=400), rng) for _ in range(businesses)]
    password_hash = hash_password(PASSWORD)
    secretary_id, owner_id = time_id(NOW, rng), time_id(NOW, rng)
    served = business_ids[:secretary_businesses]
    async with Bulk(db) as bulk:
        await bulk.write(
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
                    "created_at": NOW - timedelta(days=400),
                }
                for i, b in enumerate(business_ids)
            ],
        )
        people = {"password_hash": password_hash, "active": True, "locale": "he"}
        await bulk.write(
            User,
            [
                {
                    "id": secretary_id,
                    "email": "secretary@bench.test",
                    "name": "מזכירה",
                    "role": "secretary",
                    **people,
                    "created_at": NOW,
                    "password_changed_at": NOW,
                },
                {
                    "id": owner_id,
                    "email": "owner@bench.test",
                    "name": "בעל עסק",
                    "role": "owner",
                    **people,
                    "created_at": NOW,
                    "password_changed_at": NOW,
                },
            ],
        )
        await bulk.write(
            SecretaryAssignment,
            [{"user_id": secretary_id, "business_id": b, "is_backup": False} for b in served],
        )
        await bulk.write(OwnerMembership, [{"user_id": owner_id, "business_id": business_ids[0]}])
        contacts: list[list[uuid.UUID]] = []
        contact_rows: list[dict[str, Any]] = []
        for n, business_id in enumerate(business_ids):
            ids = [time_id(NOW - timedelta(days=400), rng) for _ in range(contacts_per_business)]
            contacts.append(ids)
            contact_rows += [
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
                    "created_at": NOW - timedelta(days=400),
                }
                for i, c in enumerate(ids)
            ]
        await bulk.write(Contact, contact_rows)
        # Which lead is whose and when it came, then the leads written oldest first.
        hers = set(range(secretary_businesses)) if secretary_open is not None else set()
        plan: list[tuple[int, int, int, int, bool]] = []
        for n in range(leads):
            minutes = rng.randint(0, YEAR_MINUTES)
            if secretary_open is not None and n < secretary_open:
                business, is_open = rng.randrange(secretary_businesses), True
            else:
                business = rng.randrange(businesses)
                is_open = business not in hers and rng.random() < open_share
            contact = rng.randrange(contacts_per_business)
            plan.append((-minutes, business, contact, rng.randrange(len(CHANNELS)), is_open))
        plan.sort()
        for start in range(0, len(plan), CHUNK):
            lead_rows: list[dict[str, Any]] = []
            answers: list[dict[str, Any]] = []
            for minutes, business, contact, channel_index, is_open in plan[start : start + CHUNK]:
                created = NOW + timedelta(minutes=minutes)
                lead_id = time_id(created, rng)
                business_id = business_ids[business]
                contact_id = contacts[business][contact]
                channel = CHANNELS[channel_index]
                answered = created + timedelta(minutes=20)
                by = secretary_id if business < secretary_businesses else None
                lead_rows.append(
                    {
                        "id": lead_id,
                        "business_id": business_id,
                        "contact_id": contact_id,
                        "channel": channel,
                        "subject": "פנייה",
                        "message": "",
                        "source": "",
                        "stage": "new" if is_open else "won",
                        "stage_changed_at": created if is_open else answered,
                        "lost_reason": "",
                        "priority": "normal",
                        "created_at": created,
                        "closed_at": None if is_open else created + timedelta(hours=2),
                        "first_response_at": None if is_open else answered,
                        "first_response_by_id": None if is_open else by,
                        "first_response_wall_minutes": None if is_open else 20.0,
                        "first_response_covered_minutes": None if is_open else 20.0,
                        "first_response_channel": None if is_open else channel,
                        "sla_minutes": 30,
                        "respond_by": created + timedelta(minutes=30),
                        "queue_rank": 0 if is_open else 1,
                        "queue_at": created + timedelta(minutes=30) if is_open else created,
                    }
                )
                if is_open:
                    continue
                kind = ANSWER_KIND[channel]
                message = kind not in ("outbound_call",)
                answers.append(
                    {
                        "id": time_id(answered, rng),
                        "business_id": business_id,
                        "lead_id": lead_id,
                        "contact_id": contact_id,
                        "user_id": by,
                        "kind": kind,
                        "status": "done",
                        "started_at": answered,
                        "ended_at": answered + timedelta(minutes=3),
                        "summary": "חזרנו ללקוח",
                        "notes": "",
                        "outcome": None if message else "answered",
                        "answers": {},
                        "direction": "out" if message else None,
                        "delivery_status": "delivered" if message else None,
                        "updated_at": answered + timedelta(minutes=3),
                    }
                )
            await bulk.write(Lead, lead_rows)
            await bulk.write(Interaction, answers)
    return {"secretary": "secretary@bench.test", "owner": "owner@bench.test", "password": PASSWORD}


class Bulk:
    """Writes rows of a model in bulk on one connection of its own: `executemany` in a
    transaction per call on SQLite (foreign keys off, no syncs: a benchmark's database is made
    again when lost), `COPY` on PostgreSQL. A row's missing columns get their Python default
    (`server_default` columns are left to the database); each value is bound as SQLAlchemy's
    dialect binds it, so the rows read back as the services' own."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # The secondary indexes of the big tables, dropped while they are written.
        self.indexes = [
            index
            for model in (Contact, Lead, Interaction)
            for index in model.__table__.indexes  # type: ignore[attr-defined]
        ]
        self.dialect = db.engine.dialect
        self.sqlite: sqlite3.Connection | None = None
        self.connection: Any = None  # SQLAlchemy's, holding PostgreSQL's asyncpg connection
        self.driver: Any = None

    async def __aenter__(self) -> Bulk:
        if self.db.is_sqlite:
            self.sqlite = sqlite3.connect(
                make_url(self.db.url).database or "", isolation_level=None
            )
            for pragma in (
                "PRAGMA foreign_keys=OFF",
                "PRAGMA synchronous=OFF",
                "PRAGMA cache_size=-1000000",  # 1 GB: an index being built stays in memory
            ):
                self.sqlite.execute(pragma)
        else:
            self.connection = await self.db.engine.connect()
            raw = await self.connection.get_raw_connection()
            self.driver = raw.driver_connection
        # Built once from the sorted rows after they are all in, rather than entry by entry
        # at random places as each row arrives.
        for index in self.indexes:
            await self._run(f'DROP INDEX IF EXISTS "{index.name}"')
        return self

    async def __aexit__(self, failed: type[BaseException] | None, *exc: object) -> None:
        try:
            if failed is not None:  # seeded again next time, not taken for whole
                await self._run("DELETE FROM leads")
            for index in self.indexes:
                await self._run(str(CreateIndex(index).compile(dialect=self.dialect)))
        finally:
            if self.sqlite is not None:
                self.sqlite.close()
            if self.connection is not None:
                await self.connection.close()

    async def _run(self, statement: str) -> None:
        if self.sqlite is not None:
            self.sqlite.execute(statement)
        else:
            await self.driver.execute(statement)

    async def write(self, model: type, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        table: Table = model.__table__  # type: ignore[attr-defined]
        given = rows[0].keys()
        columns, defaults, processors = [], [], []
        for column in table.columns:
            if column.name in given:
                default: Any = None
            elif column.default is not None and getattr(column.default, "is_scalar", False):
                default = column.default.arg  # type: ignore[attr-defined]
            elif column.default is not None and getattr(column.default, "is_callable", False):
                default = column.default.arg(None)  # type: ignore[attr-defined]
            else:
                continue  # NULL, or the database's own default
            columns.append(column.name)
            defaults.append(default)
            processors.append(column.type.dialect_impl(self.dialect).bind_processor(self.dialect))
        # Column by column: each value bound as SQLAlchemy binds it (None included).
        values: list[list[Any]] = []
        for name, default, process in zip(columns, defaults, processors, strict=True):
            given_values = [row.get(name, default) for row in rows]
            values.append(list(map(process, given_values)) if process else given_values)
        records = list(zip(*values, strict=True))
        await self._send(table, columns, records)

    async def _send(self, table: Table, columns: list[str], records: list[tuple[Any, ...]]) -> None:
        if self.sqlite is not None:
            statement = insert(table).compile(dialect=self.dialect, column_keys=columns)
            self.sqlite.execute("BEGIN")
            self.sqlite.executemany(str(statement), records)
            self.sqlite.execute("COMMIT")
        else:
            await self.driver.copy_records_to_table(table.name, records=records, columns=columns)
