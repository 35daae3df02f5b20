"""The one way a lead arrives, whatever its channel.

The web form, Twilio's SMS and calls, WhatsApp (Meta's Cloud API or Twilio), e-mail, the JSON
API and the secretary's new call each hand an `Arrival` here. An arrival names its business
(by the web form's key, the line a provider reached, or an id its caller has checked), finds or
makes its contact (by normalised phone or e-mail, so a caller who also writes on WhatsApp is
one person), continues the contact's open lead or opens one with its SLA promise, logs what a
provider delivered as an incoming interaction, and writes the events.

Each arrival is written exactly once: its channel's own key (a web form's external id, the
API's Idempotency-Key, a provider's message id) is unique per business, so the same delivery
sent again, or five times at once, finds the first one's rows.

`write` does this for many arrivals in the caller's transaction, in a fixed number of
statements however many; `console/intake/writer.py` gathers the arrivals of concurrent
requests into groups and writes each in one transaction (group commit).
"""

from __future__ import annotations

import hmac
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.characters import has_control, without_controls
from console.base.db import after_commit, dialect_of, savepoint
from console.base.errors import ConsoleError, Invalid, NotFound, Unauthorized
from console.base.many_rows import ByPairs, RowsInsert, execute_core
from console.base.scheduler import SweepAt
from console.channels.lines import line_address
from console.contacts.contact_book import ContactBook, NewContact
from console.contacts.contacts import in_assigned_range, normalise_email, normalise_phone
from console.live import events
from console.people import api_tokens
from console.people.api_tokens import LiveToken
from console.people.tenancy import get_business, visible_to
from console.sla import sla
from models import Business, Interaction, Lead, LeadAlarm, Line, Role, User
from models.base import new_id
from models.contacts import CHANNELS
from models.leads import PRIORITIES

IDEMPOTENCY_NAMESPACE = uuid.UUID("4d9a3f64-5b1e-4f0c-9a57-6b0f3c1f2e10")
TOKEN_REFUSED = "The API token is wrong or revoked, or its user is deactivated."  # noqa: S105
KIND_OF_CHANNEL = {"phone": "inbound_call", "sms": "sms", "whatsapp": "whatsapp", "email": "email"}
MESSAGE_ID_LENGTH = 200
SUMMARY_LENGTH = 500
SUBJECT_LENGTH = 120
MAX_TEXT = 20_000
MAX_MESSAGE = 100_000


@dataclass(frozen=True, slots=True)
class ByKey:
    """A web form: the slug of the business it names and the intake key its site shows."""

    slug: str
    key: str


@dataclass(frozen=True, slots=True)
class ByLine:
    """A provider's webhook: the line it reached (an e-mail may name several: the first that is
    a line counts)."""

    channel: str
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ById:
    """A business its caller has checked already (the secretary's new call, a Twilio call)."""

    business_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class ByToken:
    """The JSON API: a business named by id, for the user of an API token, named by its hash.
    The token must be live and its user able to see the business: both checked with the group
    (a statement for its tokens, one per user), so a request costs no read of its own. A key
    names the user's lead, so a repeat of the request finds the lead the first one made."""

    business_id: uuid.UUID
    token_hash: str
    idempotency_key: str | None = None


Where = ByKey | ByLine | ById | ByToken


@dataclass(frozen=True, slots=True)
class Arrival:
    where: Where
    channel: str  # web, phone, sms, whatsapp or email
    now: datetime
    phone: str = ""
    email: str = ""
    name: str = ""
    subject: str = ""  # the lead's, when it opens one (else the text's beginning)
    text: str = ""
    source: str = ""
    priority: str = "normal"
    # One lead per id: a web form's external id, kept on the lead.
    external_id: str | None = None
    # A provider's id (CallSid, MessageSid, wamid, Message-Id): the delivery is logged as an
    # incoming interaction under it.
    message_id: str | None = None
    # A caller whose repeats must name the same lead (the API's Idempotency-Key).
    lead_id: uuid.UUID | None = None
    # A call whose number is withheld or unreadable: still a lead, its contact without a number
    # (a new one each time: nothing says two such callers are one person).
    no_number: bool = False
    # What was wrong with it, said once its business and key are known to be right (so that a
    # stranger without the key learns nothing about what the form checks).
    refusal: ConsoleError | None = None


@dataclass(frozen=True, slots=True)
class Arrived:
    lead_id: uuid.UUID
    contact_id: uuid.UUID
    interaction_id: uuid.UUID | None
    new_lead: bool
    duplicate: bool
    # What the group wrote, for a caller that answers with it without reading it back: the
    # new lead's columns and its contact (as the group left it). Not compared.
    written: tuple[dict[str, Any], NewContact] | None = field(default=None, compare=False)


def continues_open_lead(arrival: Arrival) -> bool:
    """The repeat-caller rule: a provider's message or call joins its contact's open lead (when
    that lead is recent enough, `joins`); a web form and a lead typed in open their own (each
    is a request of its own, known by its own id)."""
    return arrival.message_id is not None


def joins(open_lead: tuple[uuid.UUID, datetime], recipient: Recipient, at: datetime) -> bool:
    """Whether an arrival at `at` joins this open lead: opened within the business's window."""
    return at - open_lead[1] <= timedelta(days=recipient.repeat_window_days)


@dataclass(frozen=True, slots=True)
class Recipient:
    """What an arrival needs of its business, read as plain columns (entities cost a group
    more than its lookups)."""

    id: uuid.UUID
    slug: str
    intake_key: str
    weekly_hours: Mapping[str, Any]
    timezone: str
    hours_exceptions: Mapping[str, Any] | None
    always_open: bool
    repeat_window_days: int


Answer = Arrived | ConsoleError


async def write(session: AsyncSession, arrivals: Sequence[Arrival]) -> list[Answer]:
    """Each arrival written once, or refused, in the caller's transaction, in a fixed number of
    statements however many: the businesses, the earlier arrivals of these keys, the contacts,
    their open leads, the promises' policies, then a statement per table written."""
    answers: list[Answer | None] = [None] * len(arrivals)
    recipients, tokens = await _recipients(session, arrivals)
    accepted: list[tuple[int, Recipient, Arrival, str | None, str | None]] = []
    for n, arrival in enumerate(arrivals):
        if isinstance(where := arrival.where, ByToken):
            arrival = _named_by_key(arrival, where, tokens)
        try:  # in the order a web form was always checked: 404, 401, then 422
            recipient = recipients[n]
            if isinstance(recipient, ConsoleError):
                raise recipient
            if arrival.refusal is not None:
                raise arrival.refusal
            phone, email = _checked(arrival)
        except ConsoleError as refusal:
            answers[n] = refusal
            continue
        accepted.append((n, recipient, _clean(arrival), phone, email))
    if accepted:
        await _write_accepted(session, accepted, answers)
    return [answer for answer in answers if answer is not None]


async def _write_accepted(
    session: AsyncSession,
    accepted: list[tuple[int, Recipient, Arrival, str | None, str | None]],
    answers: list[Answer | None],
) -> None:
    earlier = await _earlier(session, [(r.id, a) for _, r, a, *_ in accepted])
    fresh = []
    first_of: dict[Key, int] = {}  # the first arrival of each key in this group
    twins: list[tuple[int, int]] = []
    for n, recipient, arrival, phone, email in accepted:
        key = _key(recipient.id, arrival)
        if key is not None and key in earlier:
            answers[n] = earlier[key]
        elif key is not None and key in first_of:
            twins.append((n, first_of[key]))
        else:
            fresh.append((n, recipient, arrival, phone, email))
            if key is not None:
                first_of[key] = n
    if fresh:
        await _write_fresh(session, fresh, answers)
    for n, first in twins:
        made = answers[first]
        assert isinstance(made, Arrived)
        answers[n] = replace(made, new_lead=False, duplicate=True, written=None)


async def _write_fresh(
    session: AsyncSession,
    fresh: list[tuple[int, Recipient, Arrival, str | None, str | None]],
    answers: list[Answer | None],
) -> None:
    book = await ContactBook.load(
        session, [(r.id, phone, email) for _, r, _, phone, email in fresh]
    )
    contacts = [
        book.find_or_create(r.id, phone=phone, email=email, name=a.name, at=a.now, zone=r.timezone)
        for _, r, a, phone, email in fresh
    ]
    continuing = {
        contact.id
        for contact, (_, _, arrival, *_) in zip(contacts, fresh, strict=True)
        if contact.stored and continues_open_lead(arrival)
    }
    open_leads = await _open_leads(session, continuing) if continuing else {}
    named = {r.id: r for _, r, *_ in fresh}
    policies = await sla.policies_of(session, list(named))
    clocks = {business_id: sla.clock_for(r) for business_id, r in named.items()}
    rows = _Rows()
    for (n, recipient, arrival, *_), contact in zip(fresh, contacts, strict=True):
        lead_id = None
        open_lead = open_leads.get(contact.id) if continues_open_lead(arrival) else None
        if open_lead is not None and joins(open_lead, recipient, arrival.now):
            lead_id = open_lead[0]
        if lead_id is None:
            lead = lead_values(arrival, recipient.id, contact.id)
            times = sla.promise_for(
                clocks[recipient.id],
                policies[recipient.id],
                arrival.channel,
                arrival.priority,
                arrival.now,
            )
            lead.update(times.columns(arrival.now))
            rows.leads.append(lead)
            if times.first_alert is not None:
                rows.alarms.append({"lead_id": lead["id"], "due_at": times.first_alert})
            lead_id = lead["id"]
            open_leads[contact.id] = (lead_id, arrival.now)
            new_lead = True
            written = (lead, contact)
        else:
            rows.joined.setdefault(lead_id, (recipient.id, arrival.now))
            rows.attempts[lead_id] += 1
            new_lead = False
            written = None
        interaction_id = None
        if arrival.message_id is not None:
            interaction = _interaction(arrival, recipient.id, lead_id, contact.id)
            rows.interactions.append(interaction)
            interaction_id = interaction["id"]
        answers[n] = Arrived(lead_id, contact.id, interaction_id, new_lead, False, written)
    await book.write()
    await rows.write(session)


@dataclass
class _Rows:
    """What a group writes, a statement per table however many rows."""

    leads: list[dict[str, Any]] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    interactions: list[dict[str, Any]] = field(default_factory=list)
    joined: dict[uuid.UUID, tuple[uuid.UUID, datetime]] = field(
        default_factory=dict
    )  # lead: business, at
    attempts: Counter[uuid.UUID] = field(default_factory=Counter)  # lead: arrivals that joined

    async def write(self, session: AsyncSession) -> None:
        # In key order, so that two groups written at once wait for each other's unique keys
        # in the same order instead of deadlocking.
        self.leads.sort(key=lambda lead: (str(lead["business_id"]), lead["external_id"] or ""))
        await _INSERT_LEADS(session, self.leads)
        if self.attempts:
            changes = [{"lead": lead, "n": n} for lead, n in sorted(self.attempts.items())]
            await execute_core(session, _ADD_ATTEMPTS, changes)
        if self.alarms:
            await _INSERT_ALARMS(session, self.alarms)
            for due in {alarm["due_at"] for alarm in self.alarms}:
                after_commit(session, SweepAt(due))
        self.interactions.sort(
            key=lambda row: (str(row["business_id"]), row["provider_message_id"])
        )
        await _INSERT_INTERACTIONS(session, self.interactions)
        if self.leads:
            await events.record_many(
                session,
                "lead.created",
                [(lead["business_id"], {"lead_id": lead["id"]}) for lead in self.leads],
                at=max(lead["created_at"] for lead in self.leads),
            )
        if self.joined:
            await events.record_many(
                session,
                "lead.updated",
                [(business, {"lead_id": lead}) for lead, (business, _) in self.joined.items()],
                at=max(at for _, at in self.joined.values()),
            )


def lead_values(arrival: Arrival, business_id: uuid.UUID, contact_id: uuid.UUID) -> dict[str, Any]:
    """The columns a new lead starts with, before its promise."""
    subject = arrival.subject or arrival.text[:SUBJECT_LENGTH]
    return {
        "id": arrival.lead_id or new_id(),
        "business_id": business_id,
        "contact_id": contact_id,
        "channel": arrival.channel,
        "subject": subject.strip()[:300],
        "message": arrival.text,
        "priority": arrival.priority,
        "source": arrival.source.strip()[:100],
        "created_at": arrival.now,
        "stage_changed_at": arrival.now,
        # A provider's lead is known by the message or call that opened it.
        "external_id": arrival.external_id or arrival.message_id,
        "phone_check": _phone_to_check(arrival),
    }


def _phone_to_check(arrival: Arrival) -> str:
    """The phone as typed when it lies in a range not allocated (a web form keeps it), else ""."""
    typed = arrival.phone.strip()
    if arrival.channel != "web" or not typed:
        return ""
    return "" if in_assigned_range(normalise_phone(typed, unassigned_ok=True)) else typed[:40]


def _interaction(
    arrival: Arrival, business_id: uuid.UUID, lead_id: uuid.UUID, contact_id: uuid.UUID
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "business_id": business_id,
        "lead_id": lead_id,
        "contact_id": contact_id,
        "kind": KIND_OF_CHANNEL[arrival.channel],
        "status": "done",
        "direction": "in",
        "provider_message_id": arrival.message_id,
        "started_at": arrival.now,
        "summary": (arrival.subject or arrival.text)[:SUMMARY_LENGTH],
        "notes": arrival.text[:MAX_TEXT],
        "updated_at": arrival.now,
    }


def _checked(arrival: Arrival) -> tuple[str | None, str | None]:
    """The arrival's phone (E.164) and e-mail, normalised; its codes known."""
    if arrival.channel not in CHANNELS:
        raise Invalid("Unknown channel.", field="channel")
    if arrival.priority not in PRIORITIES:
        raise Invalid("Unknown priority.", field="priority")
    if len(arrival.text) > MAX_MESSAGE:
        raise Invalid("The message is too long.", field="message")
    # A visitor's typo costs a lead nothing: a web form keeps a number of a range not allocated
    # yet (054-1234567), to be checked (`lead_values`); only an impossible one is refused.
    lenient = arrival.channel == "web"
    phone = normalise_phone(arrival.phone, unassigned_ok=lenient) if arrival.phone.strip() else None
    email = normalise_email(arrival.email)
    if phone is None and email is None and not arrival.no_number:
        raise Invalid("A contact needs a phone number or an e-mail address.", field="phone")
    return phone, email


def _clean(arrival: Arrival) -> Arrival:
    """Without control characters (PostgreSQL refuses NUL in text, and nobody means any; the
    routes refuse typed ones and clean the providers'), and with a provider's id no longer
    than the column keeps."""
    changes: dict[str, Any] = {
        name: without_controls(value)
        for name in ("name", "subject", "text", "source", "external_id", "message_id")
        if isinstance(value := getattr(arrival, name), str) and has_control(value)
    }
    message_id = changes.get("message_id", arrival.message_id)
    if message_id is not None and len(message_id) > MESSAGE_ID_LENGTH:
        changes["message_id"] = message_id[:MESSAGE_ID_LENGTH]
    return replace(arrival, **changes) if changes else arrival


# --- which business ------------------------------------------------------------------------


async def _recipients(
    session: AsyncSession, arrivals: Sequence[Arrival]
) -> tuple[list[Recipient | ConsoleError], dict[str, LiveToken]]:
    """Each arrival's business, or why it has none: a statement per way of naming one; and the
    live API tokens among those named."""
    # a slug with a control character names no business (and PostgreSQL refuses NUL in it)
    slugs = {a.where.slug for a in arrivals if isinstance(a.where, ByKey)}
    slugs = {slug for slug in slugs if not has_control(slug)}
    ids = {a.where.business_id for a in arrivals if isinstance(a.where, ById | ByToken)}
    hashes = {a.where.token_hash for a in arrivals if isinstance(a.where, ByToken)}
    lines = {n: _lines(a.where) for n, a in enumerate(arrivals) if isinstance(a.where, ByLine)}
    by_slug: dict[str, Recipient] = {}
    by_id: dict[uuid.UUID, Recipient] = {}
    by_line: dict[tuple[str, str], Recipient] = {}
    if slugs:
        rows = await execute_core(session, _BY_SLUGS, {"slugs": list(slugs)})
        by_slug = {row.slug: Recipient(*row) for row in rows}
    if ids:
        rows = await execute_core(session, _BY_IDS, {"ids": list(ids)})
        by_id = {row.id: Recipient(*row) for row in rows}
    if addresses := {address for wanted in lines.values() for _, address in wanted}:
        rows = await execute_core(session, _BY_LINES, {"addresses": list(addresses)})
        by_line = {(channel, address): Recipient(*columns) for channel, address, *columns in rows}
    tokens = await api_tokens.live_tokens(session, hashes) if hashes else {}
    hidden = await _hidden(session, arrivals, tokens)
    found: list[Recipient | ConsoleError] = []
    for n, arrival in enumerate(arrivals):
        where = arrival.where
        if isinstance(where, ByKey):
            found.append(_keyed(by_slug.get(where.slug), where.key))
        elif isinstance(where, ById):
            found.append(by_id.get(where.business_id) or NotFound("No such business."))
        elif isinstance(where, ByToken):
            found.append(_tokened(where, tokens, hidden, by_id))
        else:
            on_line = next((by_line[line] for line in lines[n] if line in by_line), None)
            found.append(on_line or NotFound("No line has this address."))
    if used := [t.id for t in tokens.values() if api_tokens.needs_touch(t, arrivals[0].now)]:
        await api_tokens.touch_tokens(session, used, now=arrivals[0].now)
    return found, tokens


def _tokened(
    where: ByToken,
    tokens: Mapping[str, LiveToken],
    hidden: Mapping[uuid.UUID, set[uuid.UUID]],
    by_id: Mapping[uuid.UUID, Recipient],
) -> Recipient | ConsoleError:
    if (token := tokens.get(where.token_hash)) is None:
        return Unauthorized(TOKEN_REFUSED)
    seen = where.business_id not in hidden.get(token.user_id, ())
    recipient = by_id.get(where.business_id) if seen else None
    return recipient or NotFound("No such business.")


def _lines(where: ByLine) -> list[tuple[str, str]]:
    """The (channel, address as lines store it) of each address that can be a line, in order."""
    lines = []
    for raw in where.addresses:
        try:
            lines.append((where.channel, line_address(where.channel, raw)))
        except Invalid:
            continue
    return lines


async def _hidden(
    session: AsyncSession, arrivals: Sequence[Arrival], tokens: Mapping[str, LiveToken]
) -> dict[uuid.UUID, set[uuid.UUID]]:
    """Per token's user, the businesses named that the user may not see (the tenancy rule)."""
    asked: dict[uuid.UUID, tuple[str, set[uuid.UUID]]] = {}
    for arrival in arrivals:
        where = arrival.where
        if not isinstance(where, ByToken) or (token := tokens.get(where.token_hash)) is None:
            continue
        if token.role != Role.ADMIN:
            asked.setdefault(token.user_id, (token.role, set()))[1].add(where.business_id)
    hidden = {}
    for user_id, (role, ids) in asked.items():
        statement = select(Business.id).where(
            Business.id.in_(list(ids)), Business.id.in_(visible_to(user_id, role))
        )
        hidden[user_id] = ids - set((await execute_core(session, statement)).scalars())
    return hidden


def _named_by_key(arrival: Arrival, where: ByToken, tokens: Mapping[str, LiveToken]) -> Arrival:
    if where.idempotency_key is None or (token := tokens.get(where.token_hash)) is None:
        return arrival
    return replace(arrival, lead_id=api_lead_id(token.user_id, where.idempotency_key))


def api_lead_id(user_id: uuid.UUID, idempotency_key: str) -> uuid.UUID:
    """The lead an API user's Idempotency-Key names: the same key twice is one lead."""
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{user_id}:{idempotency_key}")


def _keyed(recipient: Recipient | None, key: str) -> Recipient | ConsoleError:
    if recipient is None:
        return NotFound("No such business.")
    if not key or not hmac.compare_digest(key.encode(), recipient.intake_key.encode()):
        return Unauthorized("The intake key is missing or wrong.")
    return recipient


# --- what came before ------------------------------------------------------------------------

Key = tuple[str, uuid.UUID, str]


def _key(business_id: uuid.UUID, arrival: Arrival) -> Key | None:
    """The arrival's one-time key: its lead id, its external id or its provider's message id."""
    if arrival.lead_id is not None:
        return ("lead", business_id, str(arrival.lead_id))
    if arrival.message_id is not None:
        return ("message", business_id, arrival.message_id)
    if arrival.external_id is not None:
        return ("external", business_id, arrival.external_id)
    return None


async def _earlier(
    session: AsyncSession, arrivals: Iterable[tuple[uuid.UUID, Arrival]]
) -> dict[Key, Arrived]:
    """The arrivals already written under these keys, as they were answered then."""
    keys = {key for business, arrival in arrivals if (key := _key(business, arrival))}
    found: dict[Key, Arrived] = {}
    externals = {(b, k) for kind, b, k in keys if kind == "external"}
    messages = {(b, k) for kind, b, k in keys if kind == "message"}
    lead_ids = [uuid.UUID(k) for kind, _, k in keys if kind == "lead"]
    if externals:
        statement = _EARLIER_LEADS.statements[dialect_of(session)]
        rows = await execute_core(session, statement, _EARLIER_LEADS.params(session, externals))
        for business, external_id, lead, contact in rows:  # exactly the pairs asked for
            found[("external", business, external_id)] = Arrived(lead, contact, None, False, True)
    if messages:
        statement = _EARLIER_MESSAGES.statements[dialect_of(session)]
        rows = await execute_core(session, statement, _EARLIER_MESSAGES.params(session, messages))
        for business, message_id, interaction, lead, contact in rows:
            found[("message", business, message_id)] = Arrived(
                lead, contact, interaction, False, True
            )
    if lead_ids:
        rows = await execute_core(session, _LEADS_BY_ID, {"ids": lead_ids})
        made = {str(lead): (lead, contact) for lead, contact in rows}
        for kind, business, lead_key in keys:  # whichever business: the key named the lead
            if kind == "lead" and lead_key in made:
                found[(kind, business, lead_key)] = Arrived(*made[lead_key], None, False, True)
    return found


async def _open_leads(
    session: AsyncSession, contact_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[uuid.UUID, datetime]]:
    """Each contact's latest open lead and when it opened, which a new message may continue."""
    rows = await execute_core(session, _OPEN_LEADS, {"contacts": list(contact_ids)})
    return {contact: (lead, opened) for contact, lead, opened in rows}  # the latest stays


# Built once: a group's lookups differ only in their lists.
_RECIPIENT = [getattr(Business, name) for name in Recipient.__dataclass_fields__]
_BY_SLUGS = select(*_RECIPIENT).where(
    Business.slug.in_(bindparam("slugs", expanding=True)), Business.active.is_(True)
)
_BY_IDS = select(*_RECIPIENT).where(Business.id.in_(bindparam("ids", expanding=True)))
_BY_LINES = (
    select(Line.channel, Line.address, *_RECIPIENT)
    .join(Business, Business.id == Line.business_id)
    .where(Line.address.in_(bindparam("addresses", expanding=True)), Business.active.is_(True))
)
_EARLIER_LEADS = ByPairs(
    "earlier",
    [Lead.business_id, Lead.external_id, Lead.id, Lead.contact_id],
    Lead.business_id,
    Lead.external_id,
)
_EARLIER_MESSAGES = ByPairs(
    "delivered",
    [
        Interaction.business_id,
        Interaction.provider_message_id,
        Interaction.id,
        Interaction.lead_id,
        Interaction.contact_id,
    ],
    Interaction.business_id,
    Interaction.provider_message_id,
)
_LEADS_BY_ID = select(Lead.id, Lead.contact_id).where(Lead.id.in_(bindparam("ids", expanding=True)))
_ADD_ATTEMPTS = (
    update(Lead).where(Lead.id == bindparam("lead")).values(attempts=Lead.attempts + bindparam("n"))
)
_OPEN_LEADS = (
    select(Lead.contact_id, Lead.id, Lead.created_at)
    .where(Lead.contact_id.in_(bindparam("contacts", expanding=True)), Lead.closed_at.is_(None))
    .order_by(Lead.created_at)
)
_INSERT_LEADS = RowsInsert(Lead.metadata.tables["leads"])  # the rest by column defaults
_INSERT_ALARMS = RowsInsert(LeadAlarm.metadata.tables["lead_alarms"])
_INSERT_INTERACTIONS = RowsInsert(Interaction.metadata.tables["interactions"])


# --- one at a time, in the caller's transaction ------------------------------------------------


async def receive(session: AsyncSession, arrival: Arrival) -> Arrived:
    """One arrival, written in the caller's transaction (or its refusal raised). A twin racing
    it hits a unique key inside the savepoint, and then the twin's rows are found."""
    for attempt in (1, 2):
        try:
            async with savepoint(session):
                (answer,) = await write(session, [arrival])
            break
        except IntegrityError:
            if attempt == 2:
                raise
    if isinstance(answer, ConsoleError):
        raise answer
    return answer


@dataclass(frozen=True)
class NewLead:
    """A lead someone types in: the secretary's new call, the API."""

    business_id: str
    phone: str = ""
    email: str = ""
    name: str = ""
    channel: str = "phone"
    subject: str = ""
    message: str = ""
    priority: str = "normal"
    source: str = ""


async def create_lead(
    session: AsyncSession,
    user: User | None,
    new: NewLead,
    *,
    now: datetime,
    business: Business | None = None,
    lead_id: uuid.UUID | None = None,
) -> Lead:
    """A lead typed in for a business the user may see (`business` when checked already), as
    every channel's lead arrives; the lead as an entity, for a caller that goes on with it."""
    arrival = await typed_arrival(session, user, new, now=now, business=business, lead_id=lead_id)
    arrived = await receive(session, arrival)
    return await session.get_one(Lead, arrived.lead_id)


async def typed_arrival(
    session: AsyncSession,
    user: User | None,
    new: NewLead,
    *,
    now: datetime,
    business: Business | None = None,
    lead_id: uuid.UUID | None = None,
) -> Arrival:
    """The arrival of a lead typed in, its business checked against the user's."""
    if business is None:
        if user is None:
            raise NotFound("No such business.")
        business = await get_business(session, user, new.business_id)
    return typed(ById(business.id), new, now=now, lead_id=lead_id)


def typed(
    where: Where, new: NewLead, *, now: datetime, lead_id: uuid.UUID | None = None
) -> Arrival:
    """The arrival of a lead someone typed in (the secretary, an integration)."""
    return Arrival(
        where,
        new.channel,
        now,
        phone=new.phone,
        email=new.email,
        name=new.name,
        subject=new.subject,
        text=new.message,
        source=new.source,
        priority=new.priority,
        lead_id=lead_id,
    )
