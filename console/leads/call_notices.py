"""A message to the owners after every call: when a secretary wraps up a call or a message on a
lead, each owner of the business who wants it (console/channels/owner_notices.py: every call,
urgent ones only, or none) is told at once on his channel, in his language, outside his quiet
hours: who called, what they wanted, the answers to the script's questions, the outcome and
what happens next, with a link to mark it seen (and the caller's number, one tap to call back).

Each goes through the one seam to a person (console/channels/to_person.py) under the key
`call:<interaction>:<owner>`, with the lead's id, so the lead shows its delivery and when he
saw it. The link is an itsdangerous token of its own salt naming the interaction and the owner,
expiring after LIFETIME; GET /ack/call/<token> shows the message, its POST marks it seen.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from console.base.config import Settings
from console.base.errors import ConsoleError, NotFound
from console.base.i18n import format_local, gettext, speaking_to, using_locale
from console.base.labels import label
from console.channels.owner_notices import notices_for
from console.channels.to_person import send_to_person
from console.leads.scripts import script_version
from models import Business, Contact, Interaction, Lead, Notification, OwnerMembership, Task, User

SALT = "mazkira.call-seen"
LIFETIME = timedelta(days=30)
ANSWER_LENGTH = 200
SHOWN_LENGTH = 300


@dataclass(frozen=True)
class CallLinks:
    """Signs the "seen" links; without PUBLIC_URL the messages carry none. With an approved
    WhatsApp message template ("name:language") the message goes as its one variable."""

    secret_key: str
    public_url: str | None
    whatsapp_template: str | None = None

    @classmethod
    def of(cls, settings: Settings) -> CallLinks:
        return cls(settings.secret_key, settings.public_url, settings.whatsapp_message_template)

    def token(self, interaction_id: uuid.UUID, user_id: uuid.UUID, *, now: datetime) -> str:
        expires = int((now + LIFETIME).timestamp())
        payload = [interaction_id.hex, user_id.hex, expires]
        return str(URLSafeSerializer(self.secret_key, salt=SALT).dumps(payload))

    def url(self, interaction_id: uuid.UUID, user_id: uuid.UUID, *, now: datetime) -> str | None:
        if not self.public_url:
            return None
        token = self.token(interaction_id, user_id, now=now)
        return f"{self.public_url.rstrip('/')}/ack/call/{token}"


def key_of(interaction_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"call:{interaction_id}:{user_id}"


async def tell_owners_of_call(
    session: AsyncSession,
    interaction: Interaction,
    lead: Lead | None = None,
    *,
    links: CallLinks | None,
    now: datetime,
) -> int:
    """Queue the message of this wrapped-up call to each owner who wants it; how many. The
    call's lead, with its contact and business loaded, when the caller read it already."""
    if lead is None:
        lead = (
            await session.scalars(
                select(Lead)
                .where(Lead.id == interaction.lead_id)
                .options(joinedload(Lead.contact), joinedload(Lead.business))
            )
        ).one()
    business = lead.business
    owners = list(
        await session.scalars(
            select(User)
            .join(OwnerMembership, OwnerMembership.user_id == User.id)
            .where(
                OwnerMembership.business_id == business.id,
                User.active.is_(True),
                User.role == "owner",
            )
        )
    )
    if not owners:
        return 0
    settings = await notices_for(session, [(business.id, owner.id) for owner in owners])
    next_task = await session.scalar(
        select(Task)
        .options(joinedload(Task.assignee))
        .where(Task.lead_id == lead.id, Task.status == "open")
        .order_by(Task.due_at)
        .limit(1)
    )
    questions = await _questions(session, interaction)
    told = 0
    for owner in owners:
        notices = settings[(business.id, owner.id)]
        if not notices.wants_call(lead.priority):
            continue
        language = notices.language or owner.locale
        with speaking_to(owner), using_locale(language):
            subject, body = compose(
                owner, business, lead, interaction, questions, next_task, links=links, now=now
            )
        template = ""
        if links is not None and links.whatsapp_template:
            template = f"{links.whatsapp_template.partition(':')[0]}:{language}:body"
        told += await send_to_person(
            session,
            owner,
            key=key_of(interaction.id, owner.id),
            business_id=business.id,
            subject=subject,
            body=body,
            whatsapp_template=template,
            lead_id=lead.id,
            push_kind="call",  # to his browsers too, when he chose calls among his pushes
            push_path=f"/portal/leads/{lead.id}",
            send_at=notices.quiet_until(business.timezone, now),
            now=now,
        )
    return told


async def _questions(session: AsyncSession, interaction: Interaction) -> dict[str, str]:
    """The script's questions by id, as the call was logged against them."""
    if interaction.script_version is None:
        return {}
    script = await script_version(session, interaction.business_id, interaction.script_version)
    return {str(q["id"]): str(q["text"]) for q in (script.questions if script else [])}


def compose(
    owner: User,
    business: Business,
    lead: Lead,
    interaction: Interaction,
    questions: dict[str, str],
    next_task: Task | None,
    *,
    links: CallLinks | None,
    now: datetime,
) -> tuple[str, str]:
    """The subject and plain-text body, in the current language (the owner's)."""
    contact = lead.contact
    who = contact.name or contact.phone or contact.email or gettext("Unknown caller")
    values = {
        "business": business.name,
        "name": who,
        "phone": contact.phone or contact.email or "-",
        "time": format_local(interaction.started_at, business.timezone),
        "how": label("kind", interaction.kind),
    }
    subject = gettext("%(business)s: %(how)s from %(name)s") % values
    lines = [gettext("Hello %(name)s,") % {"name": owner.name}, ""]
    lines.append(gettext("%(name)s (%(phone)s), %(how)s at %(time)s.") % values)
    wanted = (interaction.summary or lead.subject or "").strip()
    if wanted:
        lines.append(gettext("What they wanted: %(what)s") % {"what": wanted[:SHOWN_LENGTH]})
    answered = [(questions.get(k, k), v) for k, v in interaction.answers.items() if v.strip()]
    if answered:
        lines += ["", gettext("The answers:")]
        lines += [f"  {question}: {answer[:ANSWER_LENGTH]}" for question, answer in answered]
    lines.append("")
    if interaction.outcome:
        lines.append(
            gettext("Outcome: %(outcome)s") % {"outcome": label("outcome", interaction.outcome)}
        )
    if next_task is not None:
        lines.append(
            gettext("Next: %(title)s, due %(due)s (%(whom)s)")
            % {
                "title": next_task.title[:SHOWN_LENGTH],
                "due": format_local(next_task.due_at, business.timezone),
                "whom": next_task.assignee.name if next_task.assignee else "",
            }
        )
    elif lead.closed_at is not None:
        lines.append(
            gettext("Next: nothing, the lead is closed (%(stage)s).")
            % {"stage": label("stage", lead.stage)}
        )
    else:
        lines.append(
            gettext("Next: the agency follows the lead up (%(stage)s).")
            % {"stage": label("stage", lead.stage)}
        )
    if contact.phone:
        lines.append(gettext("Call back: %(phone)s") % {"phone": contact.phone})
    url = links.url(interaction.id, owner.id, now=now) if links else None
    if url:
        lines.append(gettext("Mark it seen: %(link)s") % {"link": url})
    return subject, "\n".join(lines)


@dataclass(frozen=True)
class CallNotice:
    """The message one owner got about one call, as his link's page shows it."""

    notification: Notification
    owner: User
    lead: Lead
    business: Business
    phone: str | None  # the caller's, to call back


def _read_token(secret_key: str, token: str, *, now: datetime) -> tuple[uuid.UUID, uuid.UUID]:
    try:
        interaction_hex, user_hex, expires = URLSafeSerializer(secret_key, salt=SALT).loads(token)
        interaction_id, user_id = uuid.UUID(hex=interaction_hex), uuid.UUID(hex=user_hex)
        if datetime.fromtimestamp(int(expires), UTC) < now:
            raise ConsoleError("This link has expired. Open the lead in the console instead.")
    except (BadSignature, ValueError, TypeError):
        raise ConsoleError(
            "This link is not valid. Open the lead in the console instead."
        ) from None
    return interaction_id, user_id


async def notice_of_token(
    session: AsyncSession, secret_key: str, token: str, *, now: datetime
) -> CallNotice:
    """The message a link names: 400 for a forged or expired token, 404 when it is gone."""
    interaction_id, user_id = _read_token(secret_key, token, now=now)
    row = (
        await session.execute(
            select(Notification, User, Lead, Business, Contact.phone)
            .join(User, User.id == Notification.user_id)
            .join(Lead, Lead.id == Notification.lead_id)
            .join(Business, Business.id == Lead.business_id)
            .join(Contact, Contact.id == Lead.contact_id)
            .where(Notification.idempotency_key == key_of(interaction_id, user_id))
        )
    ).one_or_none()
    if row is None:
        raise NotFound("Not found.")
    return CallNotice(*row)


async def mark_seen(session: AsyncSession, notice: CallNotice, *, now: datetime) -> None:
    """Seen once: a repeat keeps the first moment."""
    await session.execute(
        update(Notification)
        .where(Notification.id == notice.notification.id, Notification.seen_at.is_(None))
        .values(seen_at=now)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class LeadNotice:
    """A message to an owner about this lead, with its delivery, for the lead page."""

    owner: str
    channel: str
    status: str
    created_at: datetime
    sent_at: datetime | None
    seen_at: datetime | None
    error: str


async def notices_of_lead(session: AsyncSession, lead_id: uuid.UUID) -> list[LeadNotice]:
    """One statement: the owners' messages about the lead, oldest first."""
    rows = await session.execute(
        select(
            User.name,
            Notification.channel,
            Notification.status,
            Notification.created_at,
            Notification.sent_at,
            Notification.seen_at,
            Notification.last_error,
        )
        .join(User, User.id == Notification.user_id)
        .where(Notification.lead_id == lead_id)
        .order_by(Notification.created_at, Notification.id)
    )
    return [LeadNotice(*row) for row in rows]
