"""The audit log: who did what, when and from where, written in the same transaction as the deed.

Every service that must be accountable calls `record_audit` with the session it writes with, so
a change and its record commit (or roll back) together. Sign-ins and views are recorded too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

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
    person: str = ""
    business: str = ""
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


def _audit_statement(filters: AuditFilters) -> Select[AuditEvent, str]:
    statement = select(AuditEvent, Business.name).outerjoin(
        Business, Business.id == AuditEvent.business_id
    )
    if filters.person.strip():
        statement = statement.where(
            AuditEvent.actor_email.contains(normalise_email(filters.person), autoescape=True)
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


async def audit_log(session: AsyncSession, filters: AuditFilters) -> AuditPage:
    """Newest first, a page at a time by keyset (the id): two statements."""
    try:
        statement = _audit_statement(filters)
    except NotFound:
        raise Invalid("No such business.", field="business") from None
    rows = (
        await session.execute(statement.order_by(AuditEvent.id.desc()).limit(AUDIT_PAGE_SIZE + 1))
    ).all()
    more = len(rows) > AUDIT_PAGE_SIZE
    rows = rows[:AUDIT_PAGE_SIZE]
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
    await record_audit(
        session,
        action="lead.viewed",
        now=actor.now,
        actor=actor.user,
        actor_email=actor.email,
        business_id=business_id,
        subject_type="lead",
        subject_id=lead_id,
        address=actor.address,
        via=via,
    )


async def record_change(
    session: AsyncSession, actor: Actor, action: str, business: Business, **details: Any
) -> None:
    """A change made elsewhere (a script saved or published, a response promise set)."""
    await record_action(
        session, actor, action, business_id=business.id, subject=business, **details
    )
