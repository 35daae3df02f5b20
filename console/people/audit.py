"""The audit log: who did what, when and from where, written in the same transaction as the deed.

Every service that must be accountable calls `record_audit` with the session it writes with, so
a change and its record commit (or roll back) together. Sign-ins and views are recorded too.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import Database
from console.base.errors import Invalid, NotFound
from console.business.periods import filter_day
from console.people.accounts import normalise_email
from console.people.tenancy import parse_id
from models import AuditEvent, Business, User

MAX_ACTION = 64
AUDIT_PAGE_SIZE = 50
# Who and where, in the log, for what the command line does (`mazkira set-sla`, imports…).
COMMAND_LINE = "cli"


async def record_audit(
    session: AsyncSession,
    *,
    action: str,
    now: datetime,
    actor: User | None = None,
    actor_email: str = "",
    business_id: uuid.UUID | None = None,
    subject_type: str = "",
    subject_id: str | uuid.UUID = "",
    address: str = "",
    **details: Any,
) -> AuditEvent:
    """Add one audit row; `details` must be JSON-serialisable and hold no secrets."""
    if not action or len(action) > MAX_ACTION:
        raise ValueError(f"an audit action needs 1-{MAX_ACTION} characters")
    event = AuditEvent(
        at=now,
        actor_id=actor.id if actor is not None else None,
        actor_email=(actor.email if actor is not None else actor_email)[:254],
        business_id=business_id,
        action=action,
        subject_type=subject_type[:32],
        subject_id=str(subject_id)[:64],
        address=address[:64],
        details=details,
    )
    session.add(event)
    return event


@dataclass(frozen=True)
class Actor:
    """Who is doing it, when, and from which address; `email` names who acts without a user."""

    user: User | None
    now: datetime
    address: str = ""
    email: str = ""

    @classmethod
    def command_line(cls, now: datetime) -> Actor:
        """`mazkira` on the server: no user, and "cli" as both who and where."""
        return cls(None, now, COMMAND_LINE, COMMAND_LINE)

    @property
    def person(self) -> User:
        """The signed-in user acting, for what only a user does (opening a lead, say)."""
        if self.user is None:
            raise ValueError("this needs a signed-in user")
        return self.user


async def record_action(
    session: AsyncSession,
    actor: Actor,
    action: str,
    *,
    business_id: uuid.UUID | None = None,
    subject: User | Business | None = None,
    **details: Any,
) -> None:
    """A change by `actor` to a user or a business (or neither), with its details."""
    subject_type = "user" if isinstance(subject, User) else "business" if subject else ""
    await record_audit(
        session,
        action=action,
        now=actor.now,
        actor=actor.user,
        actor_email=actor.email,
        business_id=business_id,
        subject_type=subject_type,
        subject_id=subject.id if subject is not None else "",
        address=actor.address,
        **details,
    )


# --- the audit log ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilters:
    person: str = ""  # a part of the e-mail of who acted
    actor: str = ""  # who acted, by id (the page's list of people)
    business: str = ""
    kind: str = ""  # a group of actions (console/screens/audit_page.KINDS)
    action: str = ""
    since: str = ""  # YYYY-MM-DD, UTC, inclusive
    until: str = ""  # YYYY-MM-DD, UTC, inclusive
    before: str = ""  # the keyset: the id of the last row of the previous page


@dataclass(frozen=True)
class AuditRow:
    event: AuditEvent
    business_name: str | None

    @property
    def from_command_line(self) -> bool:
        """Done by `mazkira` on the server (a client's address is never "cli")."""
        return self.event.actor_id is None and self.event.address == COMMAND_LINE


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    next_before: int | None
    businesses: list[Business]


def _date(raw: str, field: str) -> datetime | None:
    """The start of a day (UTC) typed as YYYY-MM-DD, or None when blank."""
    day = filter_day(raw, field)
    return None if day is None else datetime.combine(day, time(), tzinfo=UTC)


def _audit_statement(
    filters: AuditFilters, kinds: Mapping[str, tuple[str, ...]]
) -> Select[AuditEvent, str]:
    statement = select(AuditEvent, Business.name).outerjoin(
        Business, Business.id == AuditEvent.business_id
    )
    if filters.person.strip():
        statement = statement.where(
            AuditEvent.actor_email.contains(normalise_email(filters.person), autoescape=True)
        )
    if filters.actor:
        try:
            statement = statement.where(AuditEvent.actor_id == parse_id(filters.actor))
        except NotFound:
            raise Invalid("No such person.", field="actor") from None
    if filters.kind:
        if filters.kind not in kinds:
            raise Invalid("Unknown kind.", field="kind")
        statement = statement.where(
            or_(*(AuditEvent.action.startswith(p, autoescape=True) for p in kinds[filters.kind]))
        )
    if filters.business:
        statement = statement.where(AuditEvent.business_id == parse_id(filters.business))
    if filters.action.strip():
        statement = statement.where(
            AuditEvent.action.startswith(filters.action.strip(), autoescape=True)
        )
    since, until = _date(filters.since, "since"), _date(filters.until, "until")
    if since is not None:
        statement = statement.where(AuditEvent.at >= since)
    if until is not None:
        statement = statement.where(AuditEvent.at < until + timedelta(days=1))
    if filters.before:
        try:
            before = int(filters.before)
        except ValueError:
            raise Invalid("Not a page of the log.", field="before") from None
        statement = statement.where(AuditEvent.id < before)
    return statement


async def audit_log(
    session: AsyncSession,
    filters: AuditFilters,
    kinds: Mapping[str, tuple[str, ...]] | None = None,
    *,
    limit: int = AUDIT_PAGE_SIZE,
) -> AuditPage:
    """Newest first, `limit` rows at a time by keyset (the id): two statements."""
    try:
        statement = _audit_statement(filters, kinds or {})
    except NotFound:
        raise Invalid("No such business.", field="business") from None
    rows = (await session.execute(statement.order_by(AuditEvent.id.desc()).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    businesses = list((await session.scalars(select(Business).order_by(Business.name))).all())
    return AuditPage(
        rows=[AuditRow(event, name) for event, name in rows],
        next_before=rows[-1][0].id if more and rows else None,
        businesses=businesses,
    )


async def record_lead_view(
    session: AsyncSession,
    lead_id: uuid.UUID,
    business_id: uuid.UUID,
    *,
    actor: Actor,
    via: str = "page",
) -> None:
    """Someone opened a lead's details: the lead page, the owner's view of it, or the API."""
    await record_read(session, "lead.viewed", "lead", lead_id, business_id, actor=actor, via=via)


async def record_read(
    session: AsyncSession,
    action: str,
    subject_type: str,
    subject_id: uuid.UUID,
    business_id: uuid.UUID,
    *,
    actor: Actor,
    via: str,
    **details: Any,
) -> None:
    """Someone read a lead's or an interaction's details (a page, the portal, the API)."""
    await record_audit(
        session,
        action=action,
        now=actor.now,
        actor=actor.user,
        actor_email=actor.email,
        business_id=business_id,
        subject_type=subject_type,
        subject_id=subject_id,
        address=actor.address,
        via=via,
        **details,
    )


# At most this many views in one transaction.
VIEWS_AT_MOST = 200


class ViewWriter:
    """Views of a lead's details (the lead page, the API) written to the audit log in groups:
    the views of concurrent requests go in one transaction, one INSERT, and each request goes
    on once its own row is committed, as when it wrote it alone. SQLite has one writer: a
    transaction per view made every page wait for all the views queued before it. A lone view
    is written after one turn of the event loop; a group the database refuses is written again
    one view at a time, so one bad row fails alone."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.waiting: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self.writer: asyncio.Task[None] | None = None

    async def lead_viewed(
        self, lead_id: uuid.UUID, business_id: uuid.UUID, *, actor: Actor, via: str = "page"
    ) -> None:
        """`record_lead_view`, committed with the other views of the moment."""
        user = actor.user
        row = {
            "at": actor.now,
            "actor_id": user.id if user is not None else None,
            "actor_email": (user.email if user is not None else actor.email)[:254],
            "business_id": business_id,
            "action": "lead.viewed",
            "subject_type": "lead",
            "subject_id": str(lead_id),
            "address": actor.address[:64],
            "details": {"via": via},
        }
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((row, written))
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._write())
        await written

    async def _write(self) -> None:
        while self.waiting:
            group, self.waiting = self.waiting[:VIEWS_AT_MOST], self.waiting[VIEWS_AT_MOST:]
            try:
                await self._insert([row for row, _ in group])
            except Exception as error:
                if len(group) == 1:
                    _answer(group[0][1], error)
                    continue
                for row, written in group:  # one at a time: only a bad row fails
                    try:
                        await self._insert([row])
                    except Exception as alone:
                        _answer(written, alone)
                    else:
                        _answer(written, None)
            else:
                for _, written in group:
                    _answer(written, None)

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        async with self.db.transaction() as session:
            await session.execute(insert(AuditEvent), rows)


def _answer(written: asyncio.Future[None], error: BaseException | None) -> None:
    if written.done():  # its request went away; the row was written all the same
        return
    if error is None:
        written.set_result(None)
    else:
        written.set_exception(error)


async def record_change(
    session: AsyncSession, actor: Actor, action: str, business: Business, **details: Any
) -> None:
    """A change made elsewhere (a script saved or published, a response promise set)."""
    await record_action(
        session, actor, action, business_id=business.id, subject=business, **details
    )
