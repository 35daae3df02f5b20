"""Contacts: one person per business, found by any way of writing their phone or e-mail."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import phonenumbers
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import Conflict, Invalid
from console.base.i18n import LOCALES
from console.business.reminder_policy import plan_contact_followups
from console.contacts.contact_book import ContactBook, contact_email
from console.contacts.customer_classes import classify_business
from console.people.tenancy import get_scoped, scoped
from models import Business, Contact, Lead, User
from models.contacts import CHANNELS

DEFAULT_REGION = "IL"
SEARCH_LIMIT = 50
MAX_NOTES = 200_000


def normalise_phone(raw: str, region: str = DEFAULT_REGION, *, unassigned_ok: bool = False) -> str:
    """E.164 for any way an Israeli (or international) number is written: 054-2345678,
    +972-54-234-5678 and 972542345678 are the same +972542345678. Refuses non-numbers and
    numbers that cannot exist; a number that could exist but lies in a range not allocated
    (yet) is refused too, unless `unassigned_ok` (a web form keeps it, to be checked)."""
    text = raw.strip()
    if not text:
        raise Invalid("Enter a phone number.", field="phone")
    e164 = _e164(text, region)
    if e164 is None:
        raise Invalid("%(raw)s is not a phone number.", field="phone", raw=raw)
    if not e164 or not (unassigned_ok or in_assigned_range(e164)):
        raise Invalid("%(raw)s is not a valid phone number.", field="phone", raw=raw)
    return e164


_TYPES = tuple(
    getattr(phonenumbers.PhoneNumberType, name)
    for name in (
        "FIXED_LINE",
        "MOBILE",
        "FIXED_LINE_OR_MOBILE",
        "TOLL_FREE",
        "PREMIUM_RATE",
        "SHARED_COST",
        "VOIP",
        "UAN",
    )
)


@lru_cache(maxsize=16_384)
def _e164(text: str, region: str) -> str | None:
    """The number in E.164 when it could exist (its country dials numbers of its length and
    shape, allocated or not); "" when it cannot, None when it is not a number at all (kept: a
    caller who writes again, by any channel, costs no second parse)."""
    digits = "".join(ch for ch in text if ch.isdigit())
    if not text.startswith("+") and digits.startswith("972") and len(digits) >= 11:
        text = "+" + digits  # 972542345678 written without the plus
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    possible = phonenumbers.is_possible_number_with_reason(number)
    if (
        possible != phonenumbers.ValidationResult.IS_POSSIBLE
        or number.italian_leading_zero  # 0541234: a leading zero no national number has
        or not any(phonenumbers.is_possible_number_for_type(number, kind) for kind in _TYPES)
    ):
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=16_384)
def in_assigned_range(e164: str) -> bool:
    """Whether the number lies in a range its country has allocated (phonenumbers' "valid"):
    054-2345678 does, 054-1234567 and 052-111-2222 (possible, not allocated yet) do not."""
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return False


def looks_like_phone(query: str) -> bool:
    digits = sum(ch.isdigit() for ch in query)
    return digits >= 7 and digits >= len(query.replace(" ", "").replace("-", "")) - 2


@lru_cache(maxsize=20_000)
def display_phone(e164: str | None) -> str:
    """How Israelis write a number: 054-234-5678 at home, +1 ... abroad."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return e164
    if number.country_code == 972:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def normalise_email(raw: str | None) -> str | None:
    """The contact rule (`contact_book.contact_email`), for the callers that spell it so."""
    return contact_email(raw)


async def find_contact(
    session: AsyncSession, business_id: uuid.UUID, *, phone: str | None, email: str | None
) -> Contact | None:
    conditions = []
    if phone:
        conditions.append(Contact.phone == phone)
    if email:
        conditions.append(Contact.email == email)
    if not conditions:
        return None
    statement = (
        select(Contact)
        .where(Contact.business_id == business_id, or_(*conditions))
        .order_by(Contact.created_at)
        .limit(1)
    )
    return await session.scalar(statement)


async def find_or_create_contact(
    session: AsyncSession,
    business: Business,
    *,
    phone: str | None = None,
    email: str | None = None,
    name: str = "",
) -> tuple[Contact, bool]:
    """The business's contact with this phone or e-mail (normalised), created when new.

    Returns the contact and whether it was created. Known contacts get a missing name, phone
    or e-mail filled in, never overwritten.
    """
    e164 = normalise_phone(phone) if phone and phone.strip() else None
    address = normalise_email(email)
    if e164 is None and address is None:
        raise Invalid("A contact needs a phone number or an e-mail address.", field="phone")
    book = await ContactBook.load(session, [(business.id, e164, address)])
    found = book.find_or_create(business.id, phone=e164, email=address, name=name)
    await book.write()
    contact = await session.get_one(Contact, found.id, populate_existing=True)
    return contact, not found.stored


async def search_contacts(
    session: AsyncSession, user: User, query: str, *, business_id: uuid.UUID | None = None
) -> list[Contact]:
    """Contacts of the user's businesses by any phone format, name, company or e-mail."""
    query = query.strip()
    statement = scoped(select(Contact), user, Contact.business_id)
    if business_id is not None:
        statement = statement.where(Contact.business_id == business_id)
    if not query:
        return []
    conditions: list[Any] = []
    if looks_like_phone(query):
        try:
            conditions.append(Contact.phone == normalise_phone(query))
        except Invalid:
            digits = "".join(ch for ch in query if ch.isdigit()).lstrip("0")
            conditions.append(Contact.phone.contains(digits, autoescape=True))
    else:
        like = query.lower()
        conditions += [
            Contact.name.icontains(query, autoescape=True),
            Contact.company.icontains(query, autoescape=True),
            Contact.email.contains(like, autoescape=True),
        ]
    statement = statement.where(or_(*conditions)).order_by(Contact.name).limit(SEARCH_LIMIT)
    return list((await session.scalars(statement)).all())


async def get_contact(session: AsyncSession, user: User, contact_id: str | uuid.UUID) -> Contact:
    return await get_scoped(session, user, Contact, contact_id)


EDITABLE = (
    "name",
    "company",
    "address",
    "industry",
    "notes",
    "preferred_channel",
    "locale",
    "abc_class",
)
CARD_FIELDS = (
    *EDITABLE,
    "phone",
    "email",
    "birthday",
    "customer_since",
    "earlier_value",
    "tags",
)


async def update_contact(
    session: AsyncSession, contact: Contact, fields: dict[str, str], *, now: datetime | None = None
) -> Contact:
    """Change the customer card; phone and e-mail stay unique within the business. The
    lifetime value is not typed: it is the earlier purchases plus the won deals."""
    changes: dict[str, Any] = {}
    for name in EDITABLE:
        if name in fields:
            changes[name] = fields[name] if name == "notes" else fields[name].strip()
    if changes.get("preferred_channel") == "":
        changes["preferred_channel"] = None
    if changes.get("preferred_channel") not in (None, *CHANNELS):
        raise Invalid("Unknown channel.", field="preferred_channel")
    if changes.get("locale") == "":
        changes["locale"] = None  # the business's language
    if changes.get("locale") not in (None, *LOCALES):
        raise Invalid("Unknown language.", field="locale")
    if changes.get("abc_class") == "":
        changes["abc_class"] = None
    if changes.get("abc_class") not in (None, "A", "B", "C"):
        raise Invalid("The class must be A, B or C.", field="abc_class")
    if "abc_class" in changes:  # a class a person sets stays; empty is "automatic" again
        changes["abc_class_locked"] = changes["abc_class"] is not None
    if "phone" in fields:
        phone = normalise_phone(fields["phone"]) if fields["phone"].strip() else None
        await _unique(session, contact, phone=phone, email=None)
        changes["phone"] = phone
    if "email" in fields:
        email = normalise_email(fields["email"])
        await _unique(session, contact, phone=None, email=email)
        changes["email"] = email
    if "birthday" in fields:
        changes["birthday"] = parse_birthday(fields["birthday"], today=now.date() if now else None)
    if "customer_since" in fields:
        changes["customer_since"] = _date(fields["customer_since"], "customer_since")
    if "earlier_value" in fields:
        changes["earlier_value"] = _money(fields["earlier_value"], "earlier_value")
    if "tags" in fields:
        changes["tags"] = sorted({t.strip() for t in fields["tags"].split(",") if t.strip()})
    for name, limit in (("name", 200), ("company", 200), ("address", 300), ("industry", 100)):
        if len(changes.get(name, "")) > limit:
            raise Invalid("This text is too long.", field=name)
    if len(changes.get("notes", "")) > MAX_NOTES:
        raise Invalid("This text is too long.", field="notes")
    reclassed = "abc_class" in changes and changes["abc_class"] != contact.abc_class
    reborn = "birthday" in changes and changes["birthday"] != contact.birthday
    revalued = "earlier_value" in changes and changes["earlier_value"] != contact.earlier_value
    for name, value in changes.items():
        setattr(contact, name, value)
    if reclassed or reborn:  # A, B and C every 14, 30 and 90 days, and birthdays, as set
        await plan_contact_followups(session, contact, now=now)
    await session.flush()
    if revalued:
        await refresh_lifetime_value(session, [contact.id])
        await session.refresh(contact, ["lifetime_value"])
    if changes.get("abc_class_locked") is False:  # "automatic": the class from won deals now
        await classify_business(session, contact.business_id)
    return contact


async def _unique(
    session: AsyncSession, contact: Contact, *, phone: str | None, email: str | None
) -> None:
    other = await find_contact(session, contact.business_id, phone=phone, email=email)
    if other is not None and other.id != contact.id:
        raise Conflict(
            "Another contact of this business has that phone or e-mail.",
            field="phone" if phone else "email",
        )


async def refresh_lifetime_value(session: AsyncSession, contact_ids: list[uuid.UUID]) -> None:
    """The contacts' lifetime value written again: their earlier purchases plus the deal
    values of their won leads (one statement, after a lead is won, un-won or revalued)."""
    if not contact_ids:
        return
    won = (
        select(func.coalesce(func.sum(Lead.deal_value), 0))
        .where(Lead.contact_id == Contact.id, Lead.stage == "won")
        .scalar_subquery()
    )
    await session.execute(
        update(Contact)
        .where(Contact.id.in_(contact_ids))
        .values(lifetime_value=Contact.earlier_value + won)
        .execution_options(synchronize_session=False)
    )


# Day and month first, as Israelis (and Excel in Hebrew) write them; ISO as a date field sends.
_DAY_FIRST = re.compile(r"(\d{1,2})[./-](\d{1,2})[./-](\d{4}|\d{2})")
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]00:00(?::00)?)?")
OLDEST_BIRTH_YEAR = 1900


def parse_birthday(raw: str, *, today: date | None = None) -> date | None:
    """A birthday as it is typed or imported (14/3/1985, 14.03.85, 1985-03-14, an Excel date),
    or None when empty; a day that no calendar has (31/02/1990), one in the future or before
    1900 is refused with the text that was given."""
    text = raw.strip()
    if not text:
        return None
    iso, day_first = _ISO.fullmatch(text), _DAY_FIRST.fullmatch(text)
    if iso:
        year, month, day = (int(part) for part in iso.groups())
    elif day_first:
        day, month, year = (int(part) for part in day_first.groups())
        if year < 100:  # 85 is 1985, 05 is 2005: a birthday is never in the future
            year += 2000 if year <= (today or date.today()).year % 100 else 1900
    else:
        raise Invalid(
            "%(raw)s is not a date: write the day, the month and the year, e.g. 14/3/1985.",
            field="birthday",
            raw=text,
        )
    try:
        born = date(year, month, day)
    except ValueError:
        raise Invalid(
            "%(raw)s is not a day of the calendar (that month has no such day).",
            field="birthday",
            raw=text,
        ) from None
    if born > (today or date.today()) or born.year < OLDEST_BIRTH_YEAR:
        raise Invalid("%(raw)s cannot be a birthday.", field="birthday", raw=text)
    return born


def _date(raw: str, field: str) -> date | None:
    if not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise Invalid("Enter the date as YYYY-MM-DD.", field=field) from None


def _money(raw: str, field: str) -> Decimal:
    try:
        value = Decimal(raw.strip().replace(",", "") or "0")
    except InvalidOperation:
        raise Invalid("Enter an amount in shekels.", field=field) from None
    if value < 0 or value >= Decimal("1e10") or not value.is_finite():
        raise Invalid("Enter an amount in shekels.", field=field)
    return value.quantize(Decimal("0.01"))
