"""Leads that arrive by themselves: the business's web form (and, later, the providers' webhooks).

Each arrival is verified (the business's intake key, compared in constant time), validated, and
written exactly once: the channel's own id (`external_id`) is unique per business, so the same
delivery sent again — or five times at once — finds the lead already there.
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import Database, after_commit, dialect_of
from console.base.errors import ConsoleError, Invalid, NotFound, Unauthorized
from console.base.many_rows import ByPairs, RowsInsert, execute_core
from console.base.scheduler import SweepAt
from console.contacts.contact_book import ContactBook
from console.contacts.contacts import normalise_email, normalise_phone
from console.leads.leads import NewLead, lead_values
from console.live import events
from console.sla import sla
from models import Business, Lead, LeadAlarm

# At most this many forms in one transaction.
GROUP = 100
# How long a group waits for forms still arriving, while fewer are in than the last group had.
GATHER_AT_MOST = 0.003  # seconds
GATHER_STEP = 0.0005  # seconds between looks once a turn brought none (uvloop: 1 ms)
# Groups written at once on PostgreSQL (each on its own connection).
PARALLEL_GROUPS = 3


class WebForm(BaseModel):
    """The fields a business's site posts (anything else is ignored)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: str = Field(default="", max_length=200)
    phone: str = Field(default="", max_length=40)
    email: str = Field(default="", max_length=254)
    message: str = Field(default="", max_length=20_000)
    source: str = Field(default="", max_length=100)
    external_id: str | None = Field(default=None, max_length=200)


@dataclass(frozen=True)
class Received:
    lead_id: uuid.UUID
    contact_id: uuid.UUID
    duplicate: bool


@dataclass(frozen=True)
class Delivery:
    """One web form as it came: the business it names, the key it shows, its fields."""

    slug: str
    key: str
    fields: Mapping[str, Any]
    now: datetime


@dataclass(frozen=True, slots=True)
class FormBusiness:
    """What a group of web forms needs of each business it names, read as plain columns (ten
    businesses loaded as entities cost a group more than its lookup of earlier leads)."""

    id: uuid.UUID
    slug: str
    intake_key: str
    weekly_hours: Mapping[str, Any]
    timezone: str
    hours_exceptions: Mapping[str, Any] | None
    always_open: bool


async def business_for_key(session: AsyncSession, slug: str, key: str) -> Business:
    """The active business of this slug, if the key is its intake key (else 404 / 401)."""
    business = await session.scalar(
        select(Business).where(Business.slug == slug, Business.active.is_(True))
    )
    return _checked(business, key)


Keyed = TypeVar("Keyed", Business, FormBusiness)


def _checked(business: Keyed | None, key: str) -> Keyed:
    if business is None:
        raise NotFound("No such business.")
    if not key or not hmac.compare_digest(key.encode(), business.intake_key.encode()):
        raise Unauthorized("The intake key is missing or wrong.")
    return business


def parse_form(fields: Mapping[str, Any]) -> WebForm:
    try:
        form = WebForm.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "body"
        raise Invalid("The field %(name)s is not valid.", field=name, name=name) from None
    if not form.phone and not form.email:
        raise Invalid("Give a phone number or an e-mail address.", field="phone")
    return form


class FormWriter:
    """Writes web forms in groups (group commit): the forms that arrive while a group is being
    written make the next, so under load one transaction of a dozen statements takes many
    forms, and a lone form is written after one turn of the event loop. Each form still gets
    its own answer: its lead, its refusal, or the error that stopped its group. A group that
    meets a unique key taken meanwhile elsewhere (a twin in another process) is written again
    one form at a time.

    SQLite has one writer, so one group is written at a time; PostgreSQL takes `parallel`
    groups at once, so that one group's Python work runs while another waits on the server."""

    def __init__(self, db: Database, *, group: int = GROUP, parallel: int | None = None) -> None:
        self.db = db
        self.group = group
        self.parallel = parallel or (1 if db.is_sqlite else PARALLEL_GROUPS)
        self.waiting: list[tuple[Delivery, asyncio.Future[Received]]] = []
        self.writers: set[asyncio.Task[None]] = set()
        self.writing = 0  # writers between their start and their last look at `waiting`
        self.last_size = 0  # of the group taken last: under load, about as many come next

    async def receive(self, delivery: Delivery) -> Received:
        answer: asyncio.Future[Received] = asyncio.get_running_loop().create_future()
        self.waiting.append((delivery, answer))
        if self.writing < self.parallel:
            self.writing += 1
            writer = asyncio.create_task(self._write_waiting())
            self.writers.add(writer)  # kept referenced while it runs
            writer.add_done_callback(self.writers.discard)
        return await answer

    async def _write_waiting(self) -> None:
        try:
            await self._write_groups()
        finally:
            # Counted down in the same step as `waiting` was last seen empty: a form that
            # arrives after this starts a writer of its own.
            self.writing -= 1

    async def _write_groups(self) -> None:
        while self.waiting:
            await self._gather()
            if not self.waiting:  # another writer took them meanwhile
                break
            group, self.waiting = self.waiting[: self.group], self.waiting[self.group :]
            self.last_size = len(group)
            answers: list[Received | Exception]
            try:
                answers = [*await self._write([delivery for delivery, _ in group])]
            except Exception as error:  # the database failed: every form of the group says so
                answers = [error] * len(group)
            for (_, future), answer in zip(group, answers, strict=True):
                if future.done():  # its request was cancelled
                    continue
                if isinstance(answer, Exception):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)

    async def _gather(self) -> None:
        """Let the forms still arriving join the group: yield to the event loop as long as each
        turn of it brings more, up to a full group, and, while fewer are in than the group
        before had, for up to `GATHER_AT_MOST`. Their requests are read in this same loop, so a
        group started at once took the one or two forms already in and left the rest, under
        load, to wait for it (`bench.intake` flat out settled into groups of 1 and 63, the small
        one costing a third of the time); stopping at the first quiet turn, into groups of 5
        and 59 (a quiet turn while the client was still reading its answers). A lone form
        after a lone form waits one turn of the loop."""
        started = time.perf_counter()
        while len(self.waiting) < self.group:
            seen = len(self.waiting)
            await asyncio.sleep(0)
            if len(self.waiting) > seen:
                continue
            if seen >= self.last_size or time.perf_counter() - started >= GATHER_AT_MOST:
                return
            await asyncio.sleep(GATHER_STEP)  # a quiet turn: wait on a timer, not spinning

    async def _write(self, deliveries: list[Delivery]) -> list[Received | ConsoleError]:
        try:
            async with self.db.transaction() as session:
                return await receive_forms(session, deliveries)
        except IntegrityError:
            if len(deliveries) == 1:
                async with self.db.transaction() as session:  # the twin is committed: found now
                    return await receive_forms(session, deliveries)
        return [answer for delivery in deliveries for answer in await self._write([delivery])]


async def receive_forms(
    session: AsyncSession, deliveries: Sequence[Delivery]
) -> list[Received | ConsoleError]:
    """Web forms, each checked (key, fields) and written once per external_id, in a fixed
    number of statements however many: the businesses, the earlier leads of these external
    ids, the contacts of these phones and e-mails, the policies, the writes, the events."""
    slugs = {delivery.slug for delivery in deliveries}
    businesses = {
        row.slug: FormBusiness(*row)
        for row in await execute_core(session, _BUSINESSES, {"slugs": list(slugs)})
    }
    answers: list[Received | ConsoleError | None] = []
    accepted: list[tuple[int, FormBusiness, WebForm, str | None, str | None, datetime]] = []
    for n, delivery in enumerate(deliveries):
        try:  # in the order the single form was always checked: 404, 401, then 422
            business = _checked(businesses.get(delivery.slug), delivery.key)
            form = parse_form(delivery.fields)
            phone = normalise_phone(form.phone) if form.phone else None
            email = normalise_email(form.email)
        except ConsoleError as refusal:
            answers.append(refusal)
            continue
        answers.append(None)
        accepted.append((n, business, form, phone, email, delivery.now))
    if not accepted:
        return [answer for answer in answers if answer is not None]
    earlier = await _earlier_leads(
        session, [(b.id, form.external_id) for _, b, form, *_ in accepted if form.external_id]
    )
    book = await ContactBook.load(
        session, [(b.id, phone, email) for _, b, _, phone, email, _ in accepted]
    )
    named = {b.id: b for _, b, *_ in accepted}
    policies = await sla.policies_of(session, list(named))
    clocks = {business_id: sla.clock_for(b) for business_id, b in named.items()}
    leads: list[dict[str, Any]] = []
    alarms: list[dict[str, Any]] = []
    for n, business, form, phone, email, now in accepted:
        key = (business.id, form.external_id)
        if form.external_id and key in earlier:
            lead_id, contact_id = earlier[key]
            answers[n] = Received(lead_id, contact_id, duplicate=True)
            continue
        contact = book.find_or_create(business.id, phone=phone, email=email, name=form.name, at=now)
        lead = lead_values(
            _new_lead(business, form),
            business.id,
            contact.id,
            now=now,
            external_id=form.external_id,
        )
        times = sla.promise_for(
            clocks[business.id], policies[business.id], lead["channel"], lead["priority"], now
        )
        lead.update(times.columns(now))
        leads.append(lead)
        if times.first_alert is not None:
            alarms.append({"lead_id": lead["id"], "due_at": times.first_alert})
        if form.external_id:
            earlier[key] = (lead["id"], contact.id)
        answers[n] = Received(lead["id"], contact.id, duplicate=False)
    if leads:
        await _insert(session, book, leads, alarms)
    return [answer for answer in answers if answer is not None]


async def _insert(
    session: AsyncSession,
    book: ContactBook,
    leads: list[dict[str, Any]],
    alarms: list[dict[str, Any]],
) -> None:
    """The group's new contacts, leads, alarms and events: a statement each however many
    (plain rows in Core: the ORM's unit of work cost more than the statements themselves)."""
    await book.write()
    # In key order, so that two groups written at once wait for each other's unique keys in
    # the same order instead of deadlocking.
    leads.sort(key=lambda lead: (str(lead["business_id"]), lead["external_id"] or ""))
    await _INSERT_LEADS(session, leads)
    if alarms:
        await _INSERT_ALARMS(session, alarms)
        for due in {alarm["due_at"] for alarm in alarms}:
            after_commit(session, SweepAt(due))
    await events.record_many(
        session,
        "lead.created",
        [(lead["business_id"], {"lead_id": lead["id"]}) for lead in leads],
        at=max(lead["created_at"] for lead in leads),
    )


# Built once: a group's lookups differ only in their lists.
_BUSINESSES = select(
    *(getattr(Business, name) for name in FormBusiness.__dataclass_fields__)
).where(Business.slug.in_(bindparam("slugs", expanding=True)), Business.active.is_(True))
_EARLIER = ByPairs(
    "earlier",
    [Lead.business_id, Lead.external_id, Lead.id, Lead.contact_id],
    Lead.business_id,
    Lead.external_id,
)
_INSERT_LEADS = RowsInsert(Lead.metadata.tables["leads"])  # the rest by column defaults
_INSERT_ALARMS = RowsInsert(LeadAlarm.metadata.tables["lead_alarms"])


def _new_lead(business: FormBusiness, form: WebForm) -> NewLead:
    return NewLead(
        business_id=str(business.id),
        phone=form.phone,
        email=form.email,
        name=form.name,
        channel="web",
        subject=form.message[:120],
        message=form.message,
        source=form.source or "web form",
    )


async def _earlier_leads(
    session: AsyncSession, keys: list[tuple[uuid.UUID, str | None]]
) -> dict[tuple[uuid.UUID, str | None], tuple[uuid.UUID, uuid.UUID]]:
    """(lead, contact) of the leads already written under these (business, external_id)."""
    if not keys:
        return {}
    rows = await execute_core(
        session, _EARLIER.statements[dialect_of(session)], _EARLIER.params(session, set(keys))
    )  # exactly the pairs asked for
    return {
        (business, external_id): (lead, contact) for business, external_id, lead, contact in rows
    }
