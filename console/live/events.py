"""Events: written in the same transaction as the change they describe, published after commit.

Each business has its own gapless sequence (businesses.event_seq, bumped under the row's lock),
so a console that reconnects asks for "everything after seq N of business B" and gets exactly
what it missed, in order. The rows are kept for RETENTION; older gaps mean "reload".
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    Uuid,
    bindparam,
    column,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import after_commit
from console.base.many_rows import RowsInsert, execute_core, json_rows
from models import Business, Event

RETENTION = timedelta(days=2)
REPLAY_LIMIT = 500


@dataclass(frozen=True)
class LiveEvent:
    """An event as it travels to the consoles (through Redis too, as JSON)."""

    id: int
    business_id: str
    seq: int
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    # When the hub was handed the event, just after its commit (seconds since the epoch).
    published_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        # By hand: dataclasses.asdict deep-copies, and every new lead's event comes through here.
        return {
            "id": self.id,
            "business_id": self.business_id,
            "seq": self.seq,
            "kind": self.kind,
            "payload": dict(self.payload),
            "published_at": self.published_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LiveEvent:
        return cls(
            id=int(data["id"]),
            business_id=str(data["business_id"]),
            seq=int(data["seq"]),
            kind=str(data["kind"]),
            payload=dict(data.get("payload") or {}),
            published_at=float(data.get("published_at") or 0.0),
        )

    @classmethod
    def of(cls, row: Event) -> LiveEvent:
        return cls(row.id, str(row.business_id), row.seq, row.kind, dict(row.payload))


async def record(
    session: AsyncSession, business_id: uuid.UUID, kind: str, *, at: datetime, **payload: Any
) -> LiveEvent:
    """Write an event of `business_id` and queue it for publishing once the caller commits."""
    seq = await session.scalar(
        update(Business)
        .where(Business.id == business_id)
        .values(event_seq=Business.event_seq + 1)
        .returning(Business.event_seq)
        .execution_options(synchronize_session=False)
    )
    if seq is None:
        raise ValueError(f"no business {business_id}")
    row = Event(
        business_id=business_id,
        seq=seq,
        kind=kind,
        created_at=at,
        payload={key: _plain(value) for key, value in payload.items()},
    )
    session.add(row)
    await session.flush()
    event = LiveEvent.of(row)
    after_commit(session, event)
    return event


async def _hand_out_blocks(
    session: AsyncSession, counts: Counter[uuid.UUID]
) -> list[tuple[uuid.UUID, int]]:
    """Each business's last sequence number after taking `counts[business]` more, in one
    statement built and compiled once whatever the count. PostgreSQL: an UPDATE … FROM the
    businesses' rows locked in id order (`SELECT … FROM unnest(ids, counts) … ORDER BY id FOR
    NO KEY UPDATE`), so two batches never deadlock (the UPDATE alone locks rows in whatever
    order its plan meets them; a separate locking SELECT first cost a web-form group a round
    trip). SQLite: an UPDATE … FROM json_each(blocks) (its writer holds the database's write
    lock from BEGIN IMMEDIATE; a statement is a hop to the driver's thread and back). Built
    once rather than per call (a CASE of the businesses), whose building and compiling even a
    one-form group paid every time."""
    if session.get_bind().dialect.name == "postgresql":
        handed = await execute_core(
            session, _HAND_OUT_POSTGRES, {"ids": list(counts), "counts": list(counts.values())}
        )
    else:
        blocks = json_rows(session, [Uuid(), Integer()], counts.items())
        handed = await execute_core(session, _HAND_OUT_SQLITE, {"blocks": blocks})
    return [(business_id, last) for business_id, last in handed]


_BLOCKS = (
    func.unnest(
        bindparam("ids", type_=postgresql.ARRAY(Uuid())),
        bindparam("counts", type_=postgresql.ARRAY(Integer())),
    )
    .table_valued(column("business_id", Uuid()), column("n", Integer()))
    .render_derived(name="blocks")
)
_BUSINESSES = Business.metadata.tables["businesses"]  # the table: the ORM's bulk UPDATE costs more
_INSERT_EVENTS = RowsInsert(Event.metadata.tables["events"])
_LOCKED_IN_ORDER = (
    select(_BUSINESSES.c.id, _BLOCKS.c.n)
    .join_from(_BLOCKS, _BUSINESSES, _BUSINESSES.c.id == _BLOCKS.c.business_id)
    .order_by(_BUSINESSES.c.id)
    # NO KEY UPDATE, as the UPDATE itself takes: it does not wait for the KEY SHARE locks that
    # inserting a business's leads and contacts takes on its row (FOR UPDATE did, and two
    # transactions each holding one and wanting the other's row deadlocked).
    .with_for_update(key_share=True, of=_BUSINESSES)
    .subquery("locked")
)
_HAND_OUT_POSTGRES = (
    update(_BUSINESSES)
    .where(_BUSINESSES.c.id == _LOCKED_IN_ORDER.c.id)
    .values(event_seq=_BUSINESSES.c.event_seq + _LOCKED_IN_ORDER.c.n)
    .returning(_BUSINESSES.c.id, _BUSINESSES.c.event_seq)
)
_SQLITE_BLOCKS = func.json_each(bindparam("blocks")).table_valued("value").alias("blocks")
_HAND_OUT_SQLITE = (
    update(_BUSINESSES)
    .where(_BUSINESSES.c.id == func.json_extract(_SQLITE_BLOCKS.c.value, "$[0]"))
    .values(event_seq=_BUSINESSES.c.event_seq + func.json_extract(_SQLITE_BLOCKS.c.value, "$[1]"))
    .returning(_BUSINESSES.c.id, _BUSINESSES.c.event_seq)
)


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


async def latest_seqs(session: AsyncSession) -> dict[str, int]:
    """Every business's newest sequence number: where a console that just opened starts."""
    rows = await session.execute(select(Business.id, Business.event_seq))
    return {str(business_id): seq for business_id, seq in rows}


@dataclass(frozen=True)
class Replay:
    events: list[LiveEvent]
    # Businesses whose missed events are no longer all kept (or are too many): reload those.
    gaps: set[str]


async def events_after(
    session: AsyncSession, cursor: dict[str, int], *, limit: int = REPLAY_LIMIT
) -> Replay:
    """What a reconnecting console missed: events after cursor[b] for each business b, in order."""
    if not cursor:
        return Replay([], set())
    ids = [uuid.UUID(b) for b in cursor]
    oldest = dict(
        (
            await session.execute(
                select(Event.business_id, func.min(Event.seq))
                .where(Event.business_id.in_(ids))
                .group_by(Event.business_id)
            )
        ).all()
    )
    gaps = {
        str(b) for b, first in oldest.items() if first is not None and first > cursor[str(b)] + 1
    }
    wanted = [(uuid.UUID(b), seq) for b, seq in cursor.items() if b not in gaps]
    events: list[LiveEvent] = []
    if wanted:
        conditions = [
            (Event.business_id == business_id) & (Event.seq > seq) for business_id, seq in wanted
        ]
        statement = select(Event).where(or_(*conditions)).order_by(Event.id).limit(limit + 1)
        events = [LiveEvent.of(row) for row in await session.scalars(statement)]
    if len(events) > limit:
        gaps |= {e.business_id for e in events}
        events = []
    return Replay(events, gaps)


async def purge_old_events(session: AsyncSession, *, now: datetime) -> int:
    result = await session.execute(delete(Event).where(Event.created_at < now - RETENTION))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def record_many(
    session: AsyncSession, kind: str, items: list[tuple[uuid.UUID, dict[str, Any]]], *, at: datetime
) -> list[LiveEvent]:
    """Many events, of many businesses, in two statements (the sweep raises alerts by the
    thousand): one UPDATE hands out every business's block of sequence numbers, one INSERT
    writes the rows."""
    if not items:
        return []
    counts = Counter(business_id for business_id, _ in items)
    handed = await _hand_out_blocks(session, counts)
    next_seq = {business_id: last - counts[business_id] + 1 for business_id, last in handed}
    rows: list[dict[str, Any]] = []
    for business_id, payload in items:
        rows.append(
            {
                "business_id": business_id,
                "seq": next_seq[business_id],
                "kind": kind,
                "created_at": at,
                "payload": {k: _plain(v) for k, v in payload.items()},
            }
        )
        next_seq[business_id] += 1
    # One statement (an unnest on PostgreSQL, an executemany on SQLite), without RETURNING (which
    # SQLite would do row by row): the consoles follow (business, seq); the row ids only order a
    # replay, which reads them from the table.
    await _INSERT_EVENTS(session, rows)  # in Core: the ORM's bulk INSERT costs more
    recorded = [
        LiveEvent(0, str(row["business_id"]), int(row["seq"]), kind, dict(row["payload"]))
        for row in rows
    ]
    for event in recorded:
        after_commit(session, event)
    return recorded
