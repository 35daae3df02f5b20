"""The audit log as a person reads it: each row a sentence in the reader's language, with the
names of who acted, of whom or what it was about, and of the business ("Michal viewed the lead
of Dana Cohen (Cohen Plumbing)"), never codes and ids; and the same rows as a CSV file.

The rows come from console/people/audit.audit_log; the names they need are read in at most
three more statements (the people, the leads' and the interactions' contacts), whatever the
number of rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base import labels
from console.base.csv_files import CSV_TYPE, csv_bytes
from console.base.i18n import format_local
from console.base.i18n import gettext as _
from console.people.audit import AuditFilters, AuditPage, AuditRow, audit_log
from models import AuditEvent, Contact, Interaction, Lead, User

__all__ = ["CSV_TYPE", "KINDS", "ReadableRow", "audit_csv", "kinds", "readable_log"]

# What the "kind" filter offers: a name, and the actions (by prefix) it holds.
KINDS: dict[str, tuple[str, ...]] = {
    "sign_in": ("sign_in", "two_factor."),
    "views": ("lead.viewed", "interaction.viewed", "contact.exported"),
    "people": ("user.", "person.", "assignment.", "token."),
    "settings": (
        "business.",
        "hours.",
        "line.",
        "intake_key.",
        "sla.",
        "script.",
        "reply.",
        "calendar_feed.",
        "webhook.",
        "billing_plan.",
    ),
    "requests": ("change_request.",),
    "contacts": ("contact.", "contacts."),
}


def kinds() -> dict[str, str]:
    return {
        "sign_in": _("Sign-ins"),
        "views": _("Reading leads and contacts"),
        "people": _("People, roles and tokens"),
        "settings": _("Settings of businesses"),
        "requests": _("Owners' requests"),
        "contacts": _("Contacts: imports, exports, erasures"),
    }


Sentences = dict[str, Callable[[dict[str, str]], str]]


def _sentences() -> Sentences:
    """One sentence per action, in the current language; `n` holds the names."""

    def say(message: str) -> Callable[[dict[str, str]], str]:
        return lambda n: message % n

    return {
        "sign_in": say(_("%(who)s signed in")),
        "sign_in.failed": say(_("A sign-in as %(who)s failed")),
        "two_factor.enrolled": say(_("%(who)s turned on two-factor sign-in")),
        "two_factor.disabled": say(_("%(who)s turned off two-factor sign-in of %(subject)s")),
        "two_factor.failed": say(_("A wrong two-factor code for %(who)s")),
        "two_factor.recovery_used": say(_("%(who)s signed in with a recovery code")),
        "two_factor.required_set": say(_("%(who)s changed the agency's two-factor rule")),
        "lead.viewed": lambda n: (
            (
                _("%(who)s read the conversations with %(contact)s (%(business)s) through the API")
                if n.get("part") == "interactions"
                else _("%(who)s read the lead of %(contact)s (%(business)s) through the API")
                if n.get("via") == "api"
                else _("%(who)s viewed the lead of %(contact)s (%(business)s)")
            )
            % n
        ),
        "interaction.viewed": say(
            _("%(who)s read a conversation with %(contact)s (%(business)s) through the API")
        ),
        "user.invited": say(_("%(who)s invited %(subject)s (%(role)s)")),
        "user.password_set": say(_("%(who)s set a password")),
        "user.password_reset": say(_("%(who)s reset the password of %(subject)s")),
        "user.role_changed": say(_("%(who)s made %(subject)s %(role)s")),
        "user.deactivated": say(_("%(who)s deactivated %(subject)s")),
        "user.reactivated": say(_("%(who)s reactivated %(subject)s")),
        "user.sessions_ended": say(_("%(who)s ended the sessions of %(subject)s")),
        "user.addressed_as_changed": say(
            _("%(who)s changed how the interface addresses %(subject)s")
        ),
        "assignment.set": say(_("%(who)s assigned %(subject)s to %(business)s")),
        "assignment.removed": say(_("%(who)s took %(subject)s off %(business)s")),
        "person.linked": say(_("%(who)s linked %(subject)s to %(business)s as %(member_role)s")),
        "person.role_changed": say(_("%(who)s made %(subject)s %(member_role)s of %(business)s")),
        "person.unlinked": say(_("%(who)s unlinked %(subject)s from %(business)s")),
        "token.created": say(_("%(who)s created the API token %(name)s")),
        "token.revoked": say(_("%(who)s revoked the API token %(name)s")),
        "business.created": say(_("%(who)s created %(business)s")),
        "business.updated": say(_("%(who)s changed the settings of %(business)s")),
        "business.deactivated": say(_("%(who)s deactivated %(business)s")),
        "business.reactivated": say(_("%(who)s reactivated %(business)s")),
        "business.call_settings": say(_("%(who)s changed the call settings of %(business)s")),
        "business.overflow": say(_("%(who)s changed where unanswered calls of %(business)s go")),
        "business.outcome_stages": say(
            _("%(who)s changed how call outcomes move the leads of %(business)s")
        ),
        "business.on_call": say(_("%(who)s changed the on-call rota of %(business)s")),
        "business.retention": say(_("%(who)s changed how long %(business)s keeps notes")),
        "hours.saved": say(_("%(who)s changed the covered hours of %(business)s")),
        "hours.exception_set": say(_("%(who)s set a closed date or special hours of %(business)s")),
        "hours.exception_removed": say(
            _("%(who)s removed a closed date or special hours of %(business)s")
        ),
        "change_request.made": say(_("%(who)s asked the agency to change %(business)s's hours")),
        "change_request.approved": say(_("%(who)s approved a request of %(business)s")),
        "change_request.declined": say(_("%(who)s declined a request of %(business)s")),
        "line.added": say(_("%(who)s added a line to %(business)s")),
        "line.removed": say(_("%(who)s removed a line of %(business)s")),
        "intake_key.rotated": say(_("%(who)s replaced the web form key of %(business)s")),
        "script.saved": say(_("%(who)s saved a draft of the script of %(business)s")),
        "reply.saved": say(_("%(who)s saved the ready reply %(title)s of %(business)s")),
        "reply.removed": say(_("%(who)s removed a ready reply of %(business)s")),
        "script.published": say(_("%(who)s published the script of %(business)s")),
        "script.owner_may_publish": say(
            _("%(who)s changed whether the owner of %(business)s publishes his script")
        ),
        "sla.policy_set": say(_("%(who)s changed the response promise of %(business)s")),
        "sla.task_policy_set": say(_("%(who)s changed the hand-off rules of %(business)s")),
        "sla.reminders_set": say(_("%(who)s changed the reminders of %(business)s")),
        "calendar_feed.revoked": say(_("%(who)s revoked the calendar feed of %(business)s")),
        "contact.exported": say(_("%(who)s exported the data of %(contact)s (%(business)s)")),
        "contact.erased": say(_("%(who)s erased a contact of %(business)s")),
        "billing_plan.changed": say(_("%(who)s set the plan of %(business)s from %(starts_on)s")),
        "contacts.imported": say(_("%(who)s imported contacts into %(business)s")),
        "webhook.created": say(_("%(who)s added a webhook")),
        "webhook.deleted": say(_("%(who)s deleted a webhook")),
        "webhook.replayed": say(_("%(who)s sent a webhook delivery again")),
        "webhook.resumed": say(_("%(who)s resumed a webhook")),
    }


@dataclass(frozen=True)
class ReadableRow:
    row: AuditRow
    who: str
    sentence: str

    @property
    def event(self) -> AuditEvent:
        return self.row.event


@dataclass(frozen=True)
class ReadableLog:
    page: AuditPage
    rows: list[ReadableRow]
    people: list[User]


async def _names(
    session: AsyncSession, rows: Iterable[AuditRow]
) -> tuple[dict[str, str], dict[str, str]]:
    """The names of the people (by id) and the contacts of the leads and interactions (by
    the subject's id) the rows speak of."""
    people: set[uuid.UUID] = set()
    leads: set[uuid.UUID] = set()
    interactions: set[uuid.UUID] = set()
    for row in rows:
        event = row.event
        if event.actor_id:
            people.add(event.actor_id)
        subject = _uuid(event.subject_id)
        if subject is None:
            continue
        if event.subject_type == "user":
            people.add(subject)
        elif event.subject_type == "lead":
            leads.add(subject)
        elif event.subject_type == "interaction":
            interactions.add(subject)
        elif event.subject_type == "contact":
            leads.add(subject)  # a contact's id, read below with the leads' contacts
    names: dict[str, str] = {}
    if people:
        found = await session.execute(select(User.id, User.name).where(User.id.in_(people)))
        names = {str(i): name for i, name in found.all()}
    contacts: dict[str, str] = {}
    if leads or interactions:
        by_lead = (
            select(Lead.id, Contact.name, Contact.phone)
            .join(Contact, Contact.id == Lead.contact_id)
            .where(Lead.id.in_(leads))
        )
        by_contact = select(Contact.id, Contact.name, Contact.phone).where(Contact.id.in_(leads))
        by_interaction = (
            select(Interaction.id, Contact.name, Contact.phone)
            .join(Lead, Lead.id == Interaction.lead_id)
            .join(Contact, Contact.id == Lead.contact_id)
            .where(Interaction.id.in_(interactions))
        )
        named = await session.execute(by_lead.union_all(by_contact, by_interaction))
        contacts = {str(i): name or phone or "" for i, name, phone in named.all()}
    return names, contacts


def _uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def _who(row: AuditRow, names: dict[str, str]) -> str:
    event = row.event
    if row.from_command_line:
        return _("The command line")
    if event.actor_id and str(event.actor_id) in names:
        return names[str(event.actor_id)]
    return event.actor_email or _("The system")


def sentence(
    row: AuditRow, names: dict[str, str], contacts: dict[str, str], table: Sentences
) -> str:
    """The row in words; `table` is `_sentences()` of the reader's language."""
    event = row.event
    details = {k: str(v) for k, v in (event.details or {}).items()}
    subject = names.get(event.subject_id) or details.get("email") or _("someone")
    said = {
        **details,
        "who": _who(row, names),
        "business": row.business_name or _("a business"),
        "subject": subject,
        "contact": contacts.get(event.subject_id) or _("a contact"),
        "role": labels.label("role", details.get("role")),
        "member_role": labels.label("member_role", details.get("member_role")),
        "name": details.get("name", ""),
    }
    make = table.get(event.action)
    if make is None:
        return f"{said['who']}: {event.action}"
    try:
        return make(said)
    except (KeyError, ValueError, TypeError):
        return f"{said['who']}: {event.action}"


async def readable_log(session: AsyncSession, filters: AuditFilters) -> ReadableLog:
    """A page of the log in sentences, with the people to filter by."""
    page = await audit_log(session, filters, KINDS)
    names, contacts = await _names(session, page.rows)
    table = _sentences()
    rows = [ReadableRow(r, _who(r, names), sentence(r, names, contacts, table)) for r in page.rows]
    people = list((await session.scalars(select(User).order_by(User.name))).all())
    return ReadableLog(page, rows, people)


async def audit_csv(
    session: AsyncSession, filters: AuditFilters, *, timezone: str, limit: int
) -> bytes:
    """The log as filtered, newest first, up to `limit` rows: a CSV with a BOM (so that a
    spreadsheet reads its Hebrew), each row a sentence beside its time, person and business."""
    page = await audit_log(session, filters, KINDS, limit=limit)
    names, contacts = await _names(session, page.rows)
    table = _sentences()
    header = [_("When"), _("Who"), _("E-mail"), _("From"), _("Business"), _("What"), _("Action")]
    return csv_bytes(
        [
            header,
            *(
                [
                    _when(row.event.at, timezone),
                    _who(row, names),
                    row.event.actor_email,
                    row.event.address,
                    row.business_name or "",
                    sentence(row, names, contacts, table),
                    row.event.action,
                ]
                for row in page.rows
            ),
        ]
    )


def _when(moment: datetime, timezone: str) -> str:
    return format_local(moment, timezone)
