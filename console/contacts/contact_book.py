"""The contact rules, once: who an arrival's person is. A contact is found by its business and
normalised phone or e-mail, or made; a found one gets a missing name, phone or e-mail filled in,
never overwritten. A book does this for a group of arrivals at once in a fixed number of
statements (one lookup of every (business, phone) and (business, e-mail) pair, one INSERT of the
contacts made, one UPDATE of the ones found); `contacts.find_or_create_contact` is the same for
one person, as an entity."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import idna
from sqlalchemy import Date, bindparam, case, func, or_, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import dialect_of
from console.base.errors import Invalid
from console.base.many_rows import ByPairs, RowsInsert, execute_core
from models import Contact
from models.base import new_id, utcnow

# A local part as people type it, in ASCII: letters, digits and RFC 5322's other atext, dots
# between. A non-ASCII letter there (a Cyrillic "а" for a Latin "a") or an invisible character
# would make another contact of what reads as the same address.
LOCAL_PART = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
ASCII_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}")


def contact_email(raw: str | None) -> str | None:
    """A contact's e-mail as it is kept and matched (one address, one form), None when blank,
    or Invalid: lower case, an ASCII local part, the domain through IDNA (UTS 46: full-width
    and invisible characters mapped away, a Hebrew domain as its xn-- form)."""
    if raw is None or not raw.strip():
        return None
    local, at, domain = raw.strip().lower().rpartition("@")
    if at and LOCAL_PART.fullmatch(local) and len(local) <= 64:
        try:
            if not domain.isascii():
                domain = idna.encode(domain.rstrip("."), uts46=True).decode("ascii")
            if ASCII_DOMAIN.fullmatch(domain) and len(local) + 1 + len(domain) <= 254:
                return f"{local}@{domain}"
        except idna.IDNAError:
            pass
    raise Invalid("%(raw)s is not an e-mail address.", field="email", raw=raw)


class InTouch(Protocol):
    last_contact_at: datetime | None


def touch_contact(contact: InTouch, at: datetime) -> None:
    """The contact was last in touch at `at`, unless a later touch is known already."""
    if contact.last_contact_at is None or contact.last_contact_at < at:
        contact.last_contact_at = at


@dataclass(slots=True)
class NewContact:
    """A contact as a group of arrivals sees it: a plain row, found (`stored`) or made. The
    made ones are inserted in one statement, the found ones that changed updated in one (the
    ORM's loading and unit of work cost the web form more than the statements)."""

    id: uuid.UUID
    business_id: uuid.UUID
    name: str
    phone: str | None
    email: str | None
    last_contact_at: datetime | None = None
    stored: bool = False
    since: date | None = None  # the day of a lead it is in touch for: "customer since"
    made_at: datetime | None = None  # a new one: the moment of the arrival that made it

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.made_at or utcnow(),
            "business_id": self.business_id,
            "name": self.name,
            "phone": self.phone,
            "email": self.email,
            "last_contact_at": self.last_contact_at,
            "customer_since": self.since,
        }


class ContactBook:
    """The contacts of some businesses that carry any of some phones or e-mails, read in one
    statement, so that a group of arrivals finds or creates its contacts as
    `find_or_create_contact` would one after the other (the web form writes in groups)."""

    def __init__(self, session: AsyncSession, found: Iterable[NewContact]) -> None:
        self.session = session
        self.known: dict[uuid.UUID, list[NewContact]] = {}  # per business, oldest first
        self.made: list[NewContact] = []
        self.changed: dict[uuid.UUID, NewContact] = {}  # found ones, by id
        for contact in found:
            self.known.setdefault(contact.business_id, []).append(contact)

    @classmethod
    async def load(
        cls, session: AsyncSession, wanted: Iterable[tuple[uuid.UUID, str | None, str | None]]
    ) -> ContactBook:
        """The book for these (business, E.164 phone, e-mail) triples."""
        wanted = list(wanted)
        if not any(phone or email for _, phone, email in wanted):
            return cls(session, [])
        rows = await execute_core(
            session,
            _CONTACTS_OF[dialect_of(session)],
            {
                **_BY_PHONE.params(session, {(b, phone) for b, phone, _ in wanted if phone}),
                **_BY_EMAIL.params(session, {(b, email) for b, _, email in wanted if email}),
            },
        )
        found: dict[uuid.UUID, NewContact] = {}  # one found by phone and e-mail comes twice
        for contact_id, business_id, name, phone, email, last_contact_at in rows:
            found.setdefault(
                contact_id,
                NewContact(contact_id, business_id, name, phone, email, last_contact_at, True),
            )
        return cls(session, found.values())

    def find_or_create(
        self,
        business_id: uuid.UUID,
        *,
        phone: str | None,
        email: str | None,
        name: str,
        at: datetime | None = None,
        zone: str | None = None,
    ) -> NewContact:
        """`find_or_create_contact` for a phone and an e-mail normalised already, the contact
        in touch at `at` (a lead's moment: its day in the business's `zone` is the customer's
        first, unless an earlier one is known); what it makes or changes is written by
        `write`."""
        known = self.known.setdefault(business_id, [])
        contact = next(
            (c for c in known if (phone and c.phone == phone) or (email and c.email == email)),
            None,
        )
        if contact is None:
            contact = NewContact(
                new_id(), business_id, name.strip()[:200], phone, email, made_at=at
            )
            self.made.append(contact)
            known.append(contact)
        else:
            contact.name = contact.name or name.strip()[:200]
            if contact.phone is None and phone and not any(c.phone == phone for c in known):
                contact.phone = phone
            if contact.email is None and email and not any(c.email == email for c in known):
                contact.email = email
            if contact.stored:
                self.changed[contact.id] = contact
        if at is not None:
            touch_contact(contact, at)
            day = at.astimezone(ZoneInfo(zone)).date() if zone else at.date()
            contact.since = day if contact.since is None else min(contact.since, day)
        return contact

    async def write(self) -> None:
        """The new contacts in one INSERT, the found ones in one UPDATE (executemany), each in
        key order: two groups at once wait for each other's rows, never deadlock. The UPDATE
        only fills what is empty and only moves `last_contact_at` forward, so an edit made
        meanwhile elsewhere (a secretary naming the contact) is kept."""
        if self.made:
            self.made.sort(
                key=lambda made: (str(made.business_id), made.phone or "", made.email or "")
            )
            await _INSERT_CONTACTS(self.session, [made.row() for made in self.made])
            self.made = []
        if self.changed:
            await execute_core(
                self.session,
                _UPDATE_FOUND,
                [
                    {
                        "found_id": found.id,
                        "found_name": found.name,
                        "found_phone": found.phone,
                        "found_email": found.email,
                        "found_at": found.last_contact_at,
                        "found_since": found.since,
                    }
                    for found in sorted(self.changed.values(), key=lambda found: str(found.id))
                ],
            )
            self.changed = {}


# Built once: a group's lookups differ only in their lists; the probes give the columns a
# group needs (loaded as entities, the contacts cost more than the rest of the lookup).
_COLUMNS = [
    Contact.id,
    Contact.business_id,
    Contact.name,
    Contact.phone,
    Contact.email,
    Contact.last_contact_at,
    Contact.created_at,
]
_BY_PHONE = ByPairs("phone", _COLUMNS, Contact.business_id, Contact.phone)
_BY_EMAIL = ByPairs("email", _COLUMNS, Contact.business_id, Contact.email)
_FOUND = {
    dialect: union_all(by_phone, _BY_EMAIL.statements[dialect]).subquery("found")
    for dialect, by_phone in _BY_PHONE.statements.items()
}
_READ = [column.key for column in _COLUMNS if column.key != "created_at"]  # it only orders them
_CONTACTS_OF = {
    dialect: select(*[found.c[key] for key in _READ]).order_by(found.c.created_at)
    for dialect, found in _FOUND.items()
}
_CONTACTS = Contact.metadata.tables["contacts"]
_INSERT_CONTACTS = RowsInsert(_CONTACTS)  # the rest by column defaults
_UPDATE_FOUND = (
    update(_CONTACTS)
    .where(_CONTACTS.c.id == bindparam("found_id"))
    .values(
        name=case((_CONTACTS.c.name == "", bindparam("found_name")), else_=_CONTACTS.c.name),
        phone=func.coalesce(_CONTACTS.c.phone, bindparam("found_phone")),
        email=func.coalesce(_CONTACTS.c.email, bindparam("found_email")),
        last_contact_at=case(
            (
                or_(
                    _CONTACTS.c.last_contact_at.is_(None),
                    _CONTACTS.c.last_contact_at < bindparam("found_at"),
                ),
                bindparam("found_at"),
            ),
            else_=_CONTACTS.c.last_contact_at,
        ),
        customer_since=case(
            (
                or_(
                    _CONTACTS.c.customer_since.is_(None),
                    _CONTACTS.c.customer_since > bindparam("found_since", type_=Date),
                ),
                func.coalesce(bindparam("found_since", type_=Date), _CONTACTS.c.customer_since),
            ),
            else_=_CONTACTS.c.customer_since,
        ),
    )
)
