"""Importing a business's existing customers from a CSV or XLSX file.

Four steps, none of which keeps the file on the server: read it (`read_upload`, within the
bounds of `sheet_files`, on a thread and before any transaction), map its columns
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.csv_files import BOM, csv_bytes
from console.base.errors import ConsoleError, Invalid
from console.base.i18n import gettext as _
from console.contacts.contacts import normalise_email, normalise_phone, parse_birthday
from console.contacts.sheet_files import MAX_FILE_BYTES, read_upload
from console.contacts.sheet_files import MAX_ROWS as MAX_ROWS  # the command line's, the tests'
from console.contacts.sheet_files import Sheet as Sheet
from console.contacts.sheet_files import read_sheet as read_sheet
from console.people.audit import record_audit
from console.people.tenancy import get_business, visible_businesses
from models import Business, Contact, User
from models.base import new_id

PREVIEW_ROWS = 20
FIELDS = ("name", "phone", "email", "company", "address", "notes", "abc_class", "birthday")
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
    "birthday": ("birthday", "birthdate", "dateofbirth", "dob", "יוםהולדת", "תאריךלידה", "יוםהלדת"),
}


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

    def table(self) -> list[tuple[object, ...]]:
        """The rows that were not imported as they were: the report's table, header first."""
        problems = [(n, "rejected", r) for n, r in self.rejected]
        problems += [(n, "skipped", r) for n, r in self.skipped]
        return [("row", "status", "reason"), *sorted(problems)]

    def as_csv(self) -> bytes:
        """The report's download (`csv_files`: with its byte-order mark, like every CSV)."""
        return csv_bytes(self.table())

    def text(self) -> str:
        """The same CSV as text, for the page's form to post back (`report_file`)."""
        return self.as_csv().decode("utf-8").removeprefix(BOM)


def report_file(posted: str) -> bytes:
    """The report the page carried in its form (`ImportReport.text`), posted back to be
    downloaded: read as CSV and written again, so whatever was posted leaves as a safe CSV."""
    try:
        rows = list(csv.reader(io.StringIO(posted.removeprefix(BOM))))
    except csv.Error:
        raise Invalid("Import the file again to get its report.", field="report") from None
    return csv_bytes(rows)


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
    if fields.get("birthday"):
        try:  # 31/02/1990 is refused, the row reported with the text as the file has it
            born = parse_birthday(fields["birthday"])
        except Invalid as error:
            checked.problem = error.translated()
            return checked
        fields["birthday"] = born.isoformat() if born else ""
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
    now: datetime | None = None,
) -> ImportReport:
    """Write the accepted rows (the caller commits them together); a class from the file is a
    person's choice, so it is locked against the computed one. A birthday is checked like a
    typed one (31/02 rejects its row) and, with `now`, is remembered by the reminder sweep."""
    report = ImportReport()
    made: dict[int, Contact] = {}
    filled: list[Contact] = []
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
                filled.append(target)
                report.merged += 1
            else:
                report.skipped.append((row.number, row.duplicate))
            continue
        contact = Contact(id=new_id(), business_id=business.id, tags=[])
        _fill(contact, row.fields, taken)
        session.add(contact)
        made[row.number] = contact
        filled.append(contact)
        report.created += 1
    if now is not None:  # a birthday from the file: the reminder sweep looks at once
        for contact in filled:
            if contact.birthday is not None:
                contact.followup_at = min(contact.followup_at or now, now)
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
    if contact.birthday is None and fields.get("birthday"):
        contact.birthday = date.fromisoformat(fields["birthday"])


FORM_ROOM = 16_000  # the re-post's fields beside the file: the token, the mapping, its name


def max_file_bytes(max_body_bytes: int) -> int:
    """The largest file whose every step fits in a request body: the mapping form posts it back
    in base64 (4 bytes for 3, URL-safe so nothing is escaped), so preview and import accept
    what the upload accepted."""
    return max(0, (max_body_bytes - FORM_ROOM) * 3 // 4)


@dataclass(frozen=True)
class Upload:
    """The file of an import step, read; or why it was refused (shown beside the file field)."""

    filename: str = ""
    payload: str = ""  # the file in URL-safe base64, carried from step to step (nothing on disk)
    sheet: Sheet | None = None
    refusal: ConsoleError | None = None


async def read_import(
    filename: str, content: bytes | None, payload: str, *, max_bytes: int = MAX_FILE_BYTES
) -> Upload:
    """The uploaded file (`content`) or the one carried by the form (`payload`), read off the
    event loop and within bounds, before the step opens its transaction."""
    filename = filename[:200]
    try:
        if content is None:
            try:
                content = base64.urlsafe_b64decode(payload.encode("ascii"))
            except (binascii.Error, ValueError):
                raise Invalid("Upload the file again.", field="file") from None
        sheet = await read_upload(filename, content, max_bytes=max_bytes)
    except ConsoleError as refusal:
        return Upload(filename, refusal=refusal)
    return Upload(filename, base64.urlsafe_b64encode(content).decode(), sheet)


@dataclass
class ImportStep:
    """One screen of the import: the upload form, the mapping with its preview, or the report."""

    businesses: list[Business]
    business: Business | None = None
    chosen: str = ""  # the business picked in the upload form, kept when the file is refused
    filename: str = ""
    payload: str = ""
    headers: list[str] = field(default_factory=list)
    mapping: dict[str, int] = field(default_factory=dict)
    preview: list[CheckedRow] = field(default_factory=list)
    rows: int = 0
    problems: int = 0
    merge: bool = False
    report: ImportReport | None = None
    error: str = ""  # why the file or the mapping was refused
    error_field: str = ""
    status: int = 200


async def import_step(
    session: AsyncSession,
    user: User,
    *,
    business_id: str = "",
    upload: Upload | None = None,
    mapping: dict[str, str] | None = None,
    merge: bool = False,
    commit: bool = False,
    now: datetime,
    address: str = "",
) -> ImportStep:
    """Upload (guess the mapping, preview), change the mapping (preview again), or import; a
    refused file shows the upload form again, a refused mapping the mapping form."""
    step = ImportStep(await visible_businesses(session, user), merge=merge, chosen=business_id)
    if not business_id or upload is None:
        return step
    business = await get_business(session, user, business_id)
    if upload.refusal is not None or upload.sheet is None:
        return _refused(step, upload.refusal or Invalid("Upload the file again.", field="file"))
    sheet = upload.sheet
    step.business, step.filename, step.payload = business, upload.filename, upload.payload
    step.headers, step.rows = sheet.headers, len(sheet.rows)
    step.mapping = guess_mapping(sheet.headers)
    if mapping:
        step.mapping = {n: int(v) for n, v in mapping.items() if v.isdigit()}
        try:
            step.mapping = parse_mapping(mapping, sheet.headers)
        except Invalid as refusal:
            return _refused(step, refusal)
    if commit:
        step.report = await import_contacts(
            session, business, sheet, step.mapping, merge=merge, now=now
        )
        await audit_import(
            session, business, step.report, upload.filename, now=now, actor=user, address=address
        )
        return step
    if "phone" in step.mapping or "email" in step.mapping:
        checked = await check_rows(session, business, sheet, step.mapping)
        step.preview = checked[:PREVIEW_ROWS]
        step.problems = sum(1 for row in checked if row.problem)
    return step


def _refused(step: ImportStep, refusal: ConsoleError) -> ImportStep:
    step.error, step.error_field = refusal.translated(), refusal.field or "file"
    step.status = refusal.status
    return step
