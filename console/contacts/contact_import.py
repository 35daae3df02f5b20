"""Importing a business's existing customers from a CSV or XLSX file.

Four steps, none of which keeps the file on the server: read it (`read_sheet`), map its columns
to card fields (`guess_mapping` from Hebrew or English headers), check every row
(`check_rows`: the preview shows the first ones with their problems), and import
(`import_contacts`). Duplicates are found by normalised phone and e-mail, against the business's
contacts and within the file, and are skipped or merged (missing fields filled, nothing
overwritten). Rows that cannot be imported are reported by row number (the header is row 1).
The accepted rows are written in the caller's one transaction: all of them or none.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import uuid
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import Invalid, UnsupportedMedia
from console.base.i18n import gettext as _
from console.contacts.contacts import normalise_email, normalise_phone
from console.people.audit import record_audit
from console.people.tenancy import get_business, visible_businesses
from models import Business, Contact, User
from models.base import new_id

MAX_ROWS = 9_999  # 10,000 rows and more are refused: import them in parts
PREVIEW_ROWS = 20
FIELDS = ("name", "phone", "email", "company", "address", "notes", "abc_class")
LIMITS = {"name": 200, "company": 200, "address": 300, "notes": 200_000}
# Headers as people write them, lower-cased and without spaces, quotes or dashes.
HEADERS = {
    "name": ("name", "fullname", "שם", "שםמלא", "לקוח", "שםהלקוח", "איששקשר"),
    "phone": ("phone", "mobile", "tel", "telephone", "cell", "טלפון", "נייד", "טל", "פלאפון"),
    "email": ("email", "mail", "emailaddress", 'דוא"ל', "דואל", "אימייל", "מייל", "דואר"),
    "company": ("company", "organisation", "organization", "business", "חברה", "עסק", "ארגון"),
    "address": ("address", "כתובת", "עיר"),
    "notes": ("notes", "note", "comments", "remarks", "הערות", "הערה"),
    "abc_class": ("class", "abc", "abcclass", "rating", "סיווג", "דירוג", "קבוצה"),
}


@dataclass(frozen=True)
class Sheet:
    headers: list[str]
    rows: list[list[str]]  # the data rows; row i of the file is rows[i - 2]


@dataclass
class CheckedRow:
    number: int  # in the file, the header being row 1
    fields: dict[str, str]
    problem: str = ""  # why it cannot be imported
    duplicate: str = ""  # why it is a duplicate (skipped or merged)
    existing: Contact | None = None  # the business's contact it duplicates
    first_row: int | None = None  # the earlier row of the file it duplicates


@dataclass
class ImportReport:
    created: int = 0
    merged: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def as_csv(self) -> str:
        """The rows that were not imported as they were, for the report's download."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["row", "status", "reason"])
        problems = [(n, "rejected", r) for n, r in self.rejected]
        problems += [(n, "skipped", r) for n, r in self.skipped]
        for number, status, reason in sorted(problems):
            writer.writerow([number, status, reason])
        return out.getvalue()


def read_sheet(filename: str, content: bytes) -> Sheet:
    """The table in a CSV (UTF-8, or Windows Hebrew) or XLSX file; anything else is refused."""
    name = filename.lower()
    if name.endswith(".xlsx") and content.startswith(b"PK"):
        table = _xlsx_rows(content)
    elif name.endswith(".csv") and b"\x00" not in content[:4096]:
        table = _csv_rows(content)
    else:
        raise UnsupportedMedia("Upload a CSV or XLSX file.", field="file")
    table = [row for row in table if any(cell.strip() for cell in row)]
    if not table:
        raise Invalid("The file is empty.", field="file")
    if len(table) - 1 > MAX_ROWS:
        raise Invalid(
            "The file has %(rows)s rows; import at most %(limit)s at a time (split the file).",
            field="file",
            rows=len(table) - 1,
            limit=MAX_ROWS,
        )
    headers = [cell.strip() for cell in table[0]]
    width = len(headers)
    return Sheet(headers, [(row + [""] * width)[:width] for row in table[1:]])


def _csv_rows(content: bytes) -> list[list[str]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = content.decode("cp1255", errors="replace")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], ",;\t")
    except csv.Error:
        dialect = csv.excel
    return [list(row) for row in csv.reader(io.StringIO(text), dialect)]


def _xlsx_rows(content: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError):
        raise UnsupportedMedia("Upload a CSV or XLSX file.", field="file") from None
    try:
        rows: list[list[str]] = []
        for values in book.worksheets[0].iter_rows(values_only=True):
            row = [_cell(value) for value in values]
            if any(row):
                rows.append(row)
            if len(rows) > MAX_ROWS + 1:
                break  # enough to refuse, without reading a huge sheet
        return rows
    finally:
        book.close()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone typed as a number
    if isinstance(value, int):
        return str(value)
    return str(value)


def _key(header: str) -> str:
    return "".join(ch for ch in header.lower() if ch not in " -_'.״׳").replace("”", '"')


def guess_mapping(headers: list[str]) -> dict[str, int]:
    """Which column holds each field, from the headers (Hebrew or English)."""
    mapping: dict[str, int] = {}
    for index, header in enumerate(headers):
        key = _key(header)
        for name, spellings in HEADERS.items():
            if name not in mapping and (key in spellings or key.replace('"', "") in spellings):
                mapping[name] = index
                break
    return mapping


def parse_mapping(raw: dict[str, str], headers: list[str]) -> dict[str, int]:
    """A mapping chosen in the form ({field: column number, or ""}), checked."""
    mapping: dict[str, int] = {}
    for name in FIELDS:
        value = raw.get(name, "").strip()
        if not value:
            continue
        if not value.isdigit() or int(value) >= len(headers):
            raise Invalid("Choose one of the file's columns.", field=name)
        mapping[name] = int(value)
    if "phone" not in mapping and "email" not in mapping:
        raise Invalid("Map a column to the phone or the e-mail.", field="phone")
    return mapping


def mapping_from_option(option: str, headers: list[str]) -> dict[str, int]:
    """The command line's `--mapping name=שם,phone=טלפון` (column headers or numbers)."""
    raw: dict[str, str] = {}
    for part in option.split(","):
        if not part.strip():
            continue
        name, _sep, column = part.partition("=")
        column = column.strip()
        if column in headers:
            raw[name.strip()] = str(headers.index(column))
        else:
            raw[name.strip()] = column
    return parse_mapping(raw, headers)


async def check_rows(
    session: AsyncSession, business: Business, sheet: Sheet, mapping: dict[str, int]
) -> list[CheckedRow]:
    """Every row normalised, with its problem or the duplicate it is (one query per 500)."""
    checked = [_check(number, row, mapping) for number, row in enumerate(sheet.rows, start=2)]
    known = await _existing(session, business.id, checked)
    by_phone = {c.phone: c for c in known if c.phone}
    by_email = {c.email: c for c in known if c.email}
    seen_phone: dict[str, int] = {}
    seen_email: dict[str, int] = {}
    for row in checked:
        if row.problem:
            continue
        phone, email = row.fields.get("phone"), row.fields.get("email")
        matches = {c.id: c for c in (by_phone.get(phone or ""), by_email.get(email or "")) if c}
        if len(matches) > 1:
            row.problem = _("Its phone and e-mail belong to two different contacts.")
            continue
        earlier = {seen_phone.get(phone or ""), seen_email.get(email or "")} - {None}
        if matches:
            row.existing = next(iter(matches.values()))
            row.duplicate = _("Already a contact (same phone or e-mail).")
        elif earlier:
            row.first_row = min(n for n in earlier if n is not None)
            row.duplicate = _("Same phone or e-mail as row %(row)s.") % {"row": row.first_row}
        if phone:
            seen_phone.setdefault(phone, row.first_row or row.number)
        if email:
            seen_email.setdefault(email, row.first_row or row.number)
    return checked


def _check(number: int, row: list[str], mapping: dict[str, int]) -> CheckedRow:
    fields = {name: row[column].strip() for name, column in mapping.items()}
    checked = CheckedRow(number, fields)
    try:
        phone = normalise_phone(fields["phone"]) if fields.get("phone") else None
        email = normalise_email(fields.get("email"))
    except Invalid as error:
        checked.problem = error.translated()
        return checked
    if phone is None and email is None:
        checked.problem = _("No phone and no e-mail.")
        return checked
    fields["phone"], fields["email"] = phone or "", email or ""
    if fields.get("abc_class"):
        fields["abc_class"] = fields["abc_class"].upper()
        if fields["abc_class"] not in ("A", "B", "C"):
            checked.problem = _("The class must be A, B or C.")
            return checked
    for name, limit in LIMITS.items():
        if len(fields.get(name, "")) > limit:
            checked.problem = _("The %(field)s column is too long.") % {"field": name}
            return checked
    return checked


async def _existing(
    session: AsyncSession, business_id: uuid.UUID, rows: Iterable[CheckedRow]
) -> list[Contact]:
    phones = sorted({r.fields["phone"] for r in rows if not r.problem and r.fields.get("phone")})
    emails = sorted({r.fields["email"] for r in rows if not r.problem and r.fields.get("email")})
    found: dict[uuid.UUID, Contact] = {}
    for start in range(0, max(len(phones), len(emails)), 500):
        conditions = []
        if phones[start : start + 500]:
            conditions.append(Contact.phone.in_(phones[start : start + 500]))
        if emails[start : start + 500]:
            conditions.append(Contact.email.in_(emails[start : start + 500]))
        statement = select(Contact).where(Contact.business_id == business_id, or_(*conditions))
        for contact in await session.scalars(statement):
            found[contact.id] = contact
    return list(found.values())


async def import_contacts(
    session: AsyncSession,
    business: Business,
    sheet: Sheet,
    mapping: dict[str, int],
    *,
    merge: bool,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Write the accepted rows (the caller commits them together); a class from the file is a
    person's choice, so it is locked against the computed one."""
    report = ImportReport()
    made: dict[int, Contact] = {}
    checked = await check_rows(session, business, sheet, mapping)
    taken = {
        value
        for row in checked
        if row.existing is not None
        for value in (row.existing.phone, row.existing.email)
        if value
    }
    for done, row in enumerate(checked, start=1):
        if progress is not None:
            progress(done, len(checked))
        if row.problem:
            report.rejected.append((row.number, row.problem))
            continue
        target = row.existing or (made.get(row.first_row) if row.first_row else None)
        if target is not None:
            if merge:
                _fill(target, row.fields, taken)
                report.merged += 1
            else:
                report.skipped.append((row.number, row.duplicate))
            continue
        contact = Contact(id=new_id(), business_id=business.id, tags=[])
        _fill(contact, row.fields, taken)
        session.add(contact)
        made[row.number] = contact
        report.created += 1
    await session.flush()
    return report


async def audit_import(
    session: AsyncSession,
    business: Business,
    report: ImportReport,
    filename: str,
    *,
    now: datetime,
    actor: User | None = None,
    actor_email: str = "",
    address: str = "",
) -> None:
    """Record the import beside the rows it wrote (same transaction): who, from where, counts."""
    await record_audit(
        session,
        action="contacts.imported",
        now=now,
        actor=actor,
        actor_email=actor_email,
        business_id=business.id,
        subject_type="business",
        subject_id=business.id,
        address=address,
        file=filename[:200],
        created=report.created,
        merged=report.merged,
        skipped=len(report.skipped),
        rejected=len(report.rejected),
    )


def _fill(contact: Contact, fields: dict[str, str], taken: set[str]) -> None:
    """Missing fields filled from the row; what the card holds is never overwritten, and a
    phone or e-mail another contact has already is not given to a second one."""
    for name in ("name", "company", "address", "notes"):
        if not getattr(contact, name, "") and fields.get(name):
            setattr(contact, name, fields[name])
    for name in ("phone", "email"):
        value = fields.get(name)
        if getattr(contact, name) is None and value and value not in taken:
            setattr(contact, name, value)
            taken.add(value)
    if contact.abc_class is None and fields.get("abc_class"):
        contact.abc_class = fields["abc_class"]
        contact.abc_class_locked = True


@dataclass
class ImportStep:
    """One screen of the import: the upload form, the mapping with its preview, or the report."""

    businesses: list[Business]
    business: Business | None = None
    filename: str = ""
    payload: str = ""  # the file, in base64, carried from step to step (nothing kept on disk)
    headers: list[str] = field(default_factory=list)
    mapping: dict[str, int] = field(default_factory=dict)
    preview: list[CheckedRow] = field(default_factory=list)
    rows: int = 0
    problems: int = 0
    merge: bool = False
    report: ImportReport | None = None


async def import_step(
    session: AsyncSession,
    user: User,
    *,
    business_id: str = "",
    filename: str = "",
    content: bytes | None = None,
    payload: str = "",
    mapping: dict[str, str] | None = None,
    merge: bool = False,
    commit: bool = False,
    now: datetime,
    address: str = "",
) -> ImportStep:
    """Upload (guess the mapping, preview), change the mapping (preview again), or import."""
    step = ImportStep(await visible_businesses(session, user), merge=merge)
    if not business_id:
        return step
    step.business = await get_business(session, user, business_id)
    if content is None:
        try:
            content = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise Invalid("Upload the file again.", field="file") from None
    sheet = read_sheet(filename, content)
    step.filename, step.payload, step.headers = (
        filename,
        base64.b64encode(content).decode(),
        sheet.headers,
    )
    step.mapping = (
        parse_mapping(mapping, sheet.headers) if mapping else guess_mapping(sheet.headers)
    )
    step.rows = len(sheet.rows)
    if commit:
        step.report = await import_contacts(
            session, step.business, sheet, step.mapping, merge=merge
        )
        await audit_import(
            session, step.business, step.report, filename, now=now, actor=user, address=address
        )
        return step
    if "phone" in step.mapping or "email" in step.mapping:
        checked = await check_rows(session, step.business, sheet, step.mapping)
        step.preview = checked[:PREVIEW_ROWS]
        step.problems = sum(1 for row in checked if row.problem)
    return step
