"""The owners' digests: each morning an e-mail with yesterday's handled calls and messages, the
open tasks, the KPIs and the customers' surveys (how many answered, the average rating, the
share who would recommend), and on Sunday (the Israeli week's first day) one more for the week
before; in the owner's language, one business per e-mail.

The job runs every few minutes. A digest is due from the owner's hour (`DIGEST_HOUR` unless he
chose another: console/channels/owner_notices.py, with its channel and which parts it holds) in
the business's zone for `LATE_HOURS` (after that it is stale and skipped, not sent late). It is
queued as a notification on his digest channel (console/channels/to_person.py) under the key
`digest:<daily|weekly>:<business>:<owner>:<first day>`, so reruns, a second worker or a retry
queue it once; keys queued already are looked up first, so a run that finds nothing
new computes nothing. Owners without a usable e-mail address are skipped.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from console.base import labels
from console.base.errors import Invalid
from console.base.i18n import format_local, gettext, speaking_to, using_locale
from console.business.periods import Period, within_period
from console.channels.owner_notices import Notices, notices_for
from console.channels.to_person import send_to_person
from console.contacts.contacts import normalise_email
from console.leads.surveys import SurveyNumbers, survey_numbers_by_business
from console.people.tenancy import PERMISSIONS
from console.reports.kpi_report import KpiReport, describe_period
from console.reports.kpis import HANDLED_KINDS, Kpis, compute_kpis, metrics
from models import Business, Contact, Interaction, Notification, OwnerMembership, Task, User

DIGEST_HOUR = 7  # unless the owner chose another (console/channels/owner_notices.py)
LATE_HOURS = 5  # after its hour, a digest is due this long; then it is stale, never sent late
HANDLED_SHOWN = 20
TASKS_SHOWN = 10
SUNDAY = 6  # date.weekday()
# The KPIs a digest lists (the handled calls and the open tasks have their own paragraphs).
DIGEST_NUMBERS = (
    "leads",
    "response_p50",
    "response_p90",
    "sla_share",
    "conversion",
    "hours_to_close",
    "deal_value",
    "repeat_rate",
    "overdue_tasks",
    "oldest_task_hours",
)
# A business whose calls came through the SIP server in the period also reads these.
DIGEST_CALL_NUMBERS = ("calls", "answer_rate", "abandonment_rate", "service_level")

Kind = Literal["daily", "weekly"]


@dataclass(frozen=True)
class Digest:
    kind: Kind
    business: Business
    owner: User
    mailbox: str
    period: Period
    notices: Notices = field(default_factory=Notices)
    resent: str = ""  # a resend's moment: a key of its own

    @property
    def key(self) -> str:
        key = f"digest:{self.kind}:{self.business.id}:{self.owner.id}:{self.period.first}"
        return f"{key}:resent:{self.resent}" if self.resent else key


@dataclass(frozen=True)
class HandledLine:
    started_at: datetime
    contact: str
    kind: str
    outcome: str | None
    secretary: str | None


@dataclass(frozen=True)
class TaskLine:
    title: str
    due_at: datetime
    assignee: str


@dataclass
class DigestReport:
    queued: int = 0
    already: int = 0


async def queue_digests(
    session: AsyncSession, *, now: datetime, public_url: str | None = None
) -> DigestReport:
    """Queue every digest due now and not queued before; safe to run twice or on two workers."""
    report = DigestReport()
    due = await _due(session, now)
    if not due:
        return report
    queued = set(
        await session.scalars(
            select(Notification.idempotency_key).where(
                Notification.idempotency_key.in_([digest.key for digest in due])
            )
        )
    )
    report.already = sum(digest.key in queued for digest in due)
    due = [digest for digest in due if digest.key not in queued]
    by_period: dict[Period, dict[uuid.UUID, Business]] = defaultdict(dict)
    for digest in due:
        by_period[digest.period][digest.business.id] = digest.business
    numbers: dict[tuple[Period, uuid.UUID], Kpis] = {}
    handled: dict[tuple[Period, uuid.UUID], list[HandledLine]] = {}
    feedback: dict[tuple[Period, uuid.UUID], SurveyNumbers] = {}
    for period, businesses in by_period.items():
        found = await compute_kpis(session, list(businesses.values()), period, now=now)
        numbers.update({(period, business_id): kpis for business_id, kpis in found.items()})
        lines = await _handled_lines(session, list(businesses.values()), period)
        handled.update({(period, business_id): rows for business_id, rows in lines.items()})
        surveys = await survey_numbers_by_business(session, list(businesses.values()), period)
        feedback.update({(period, business_id): n for business_id, n in surveys.items()})
    tasks = await _open_task_lines(session, {digest.business.id for digest in due})
    for digest in due:
        subject, body = _composed(digest, numbers, handled, tasks, feedback, public_url)
        if await send_to_person(
            session,
            digest.owner,
            key=digest.key,
            business_id=digest.business.id,
            channel=digest.notices.digest_channel or "email",
            subject=subject,
            body=body,
            now=now,
        ):
            report.queued += 1
        else:
            report.already += 1
    return report


Found = dict[tuple[Period, uuid.UUID], Any]


def _composed(
    digest: Digest,
    numbers: Found,
    handled: Found,
    tasks: dict[uuid.UUID, list[TaskLine]],
    feedback: Found,
    public_url: str | None,
) -> tuple[str, str]:
    with speaking_to(digest.owner), using_locale(digest.notices.language or digest.owner.locale):
        return compose(
            digest,
            numbers[(digest.period, digest.business.id)],
            handled.get((digest.period, digest.business.id), []),
            tasks.get(digest.business.id, []),
            feedback=feedback.get((digest.period, digest.business.id)),
            public_url=public_url,
        )


async def _numbers_of(
    session: AsyncSession, digest: Digest, *, now: datetime
) -> tuple[Found, Found, dict[uuid.UUID, list[TaskLine]], Found]:
    business, period = digest.business, digest.period
    kpis = await compute_kpis(session, [business], period, now=now)
    lines = await _handled_lines(session, [business], period)
    surveys = await survey_numbers_by_business(session, [business], period)
    tasks = await _open_task_lines(session, {business.id})
    return (
        {(period, business.id): kpis[business.id]},
        {(period, business.id): lines.get(business.id, [])},
        tasks,
        {(period, business.id): surveys.get(business.id)},
    )


async def digest_preview(
    session: AsyncSession,
    business: Business,
    owner: User,
    *,
    now: datetime,
    public_url: str | None = None,
) -> tuple[Digest, str, str]:
    """Tomorrow morning's daily digest as it stands now (today so far), with his settings:
    the digest, its subject and its body. Nothing is queued."""
    notices = (await notices_for(session, [(business.id, owner.id)]))[(business.id, owner.id)]
    today = now.astimezone(ZoneInfo(business.timezone)).date()
    digest = Digest("daily", business, owner, owner.email, Period(today, today), notices)
    numbers, handled, tasks, feedback = await _numbers_of(session, digest, now=now)
    subject, body = _composed(digest, numbers, handled, tasks, feedback, public_url)
    return digest, subject, body


async def resend_digest(
    session: AsyncSession,
    business: Business,
    owner: User,
    *,
    now: datetime,
    public_url: str | None = None,
) -> Digest:
    """Send this morning's daily digest (yesterday's) again, now, on his digest channel."""
    notices = (await notices_for(session, [(business.id, owner.id)]))[(business.id, owner.id)]
    yesterday = now.astimezone(ZoneInfo(business.timezone)).date() - timedelta(days=1)
    digest = Digest(
        "daily",
        business,
        owner,
        owner.email,
        Period(yesterday, yesterday),
        notices,
        resent=str(int(now.timestamp())),
    )
    numbers, handled, tasks, feedback = await _numbers_of(session, digest, now=now)
    subject, body = _composed(digest, numbers, handled, tasks, feedback, public_url)
    await send_to_person(
        session,
        owner,
        key=digest.key,
        business_id=business.id,
        channel=notices.digest_channel or "email",
        subject=subject,
        body=body,
        now=now,
    )
    return digest


def _mailbox(owner: User) -> str | None:
    try:
        return normalise_email(owner.email)
    except Invalid:
        return None


async def _due(session: AsyncSession, now: datetime) -> list[Digest]:
    """The digests of the active owners of active businesses whose morning it is."""
    rows = await session.execute(
        select(Business, User)
        .join(OwnerMembership, OwnerMembership.business_id == Business.id)
        .join(User, User.id == OwnerMembership.user_id)
        .where(Business.active.is_(True), User.active.is_(True), User.role == "owner")
        # the digest holds the numbers: the people who may read them (not staff)
        .where(OwnerMembership.member_role.in_(sorted(PERMISSIONS["kpis"])))
        .order_by(Business.name, User.email)
    )
    found = list(rows)
    settings = await notices_for(session, [(b.id, o.id) for b, o in found])
    due = []
    for business, owner in found:
        local = now.astimezone(ZoneInfo(business.timezone))
        mailbox = _mailbox(owner)
        notices = settings[(business.id, owner.id)]
        hour = notices.digest_hour
        if mailbox is None or not hour <= local.hour < hour + LATE_HOURS:
            continue
        yesterday = local.date() - timedelta(days=1)
        daily = Period(yesterday, yesterday)
        due.append(Digest("daily", business, owner, mailbox, daily, notices))
        if local.date().weekday() == SUNDAY:
            week = Period(yesterday - timedelta(days=6), yesterday)
            due.append(Digest("weekly", business, owner, mailbox, week, notices))
    return due


async def _handled_lines(
    session: AsyncSession, businesses: list[Business], period: Period
) -> dict[uuid.UUID, list[HandledLine]]:
    """The latest calls and messages the agency logged in the period, a few per business."""
    secretary = aliased(User)
    ranked = (
        select(
            Interaction.business_id.label("business_id"),
            Interaction.started_at.label("started_at"),
            func.coalesce(func.nullif(Contact.name, ""), Contact.phone, Contact.email).label(
                "contact"
            ),
            Interaction.kind.label("kind"),
            Interaction.outcome.label("outcome"),
            secretary.name.label("secretary"),
            func.row_number()
            .over(
                partition_by=Interaction.business_id,
                order_by=(Interaction.started_at.desc(), Interaction.id),
            )
            .label("rank"),
        )
        .join(Contact, Contact.id == Interaction.contact_id)
        .outerjoin(secretary, secretary.id == Interaction.user_id)
        .where(
            Interaction.status == "done",
            Interaction.user_id.is_not(None),
            Interaction.kind.in_(HANDLED_KINDS),
            within_period(businesses, period, Interaction.business_id, Interaction.started_at),
        )
        .subquery()
    )
    rows = await session.execute(
        select(ranked)
        .where(ranked.c.rank <= HANDLED_SHOWN)
        .order_by(ranked.c.business_id, ranked.c.rank)
    )
    found: dict[uuid.UUID, list[HandledLine]] = defaultdict(list)
    for row in rows:
        found[row.business_id].append(
            HandledLine(row.started_at, row.contact or "", row.kind, row.outcome, row.secretary)
        )
    return found


async def _open_task_lines(
    session: AsyncSession, business_ids: set[uuid.UUID]
) -> dict[uuid.UUID, list[TaskLine]]:
    """The open tasks due first, a few per business."""
    ranked = (
        select(
            Task.business_id.label("business_id"),
            Task.title.label("title"),
            Task.due_at.label("due_at"),
            User.name.label("assignee"),
            func.row_number()
            .over(partition_by=Task.business_id, order_by=(Task.due_at, Task.id))
            .label("rank"),
        )
        .join(User, User.id == Task.assignee_id)
        .where(Task.status == "open", Task.business_id.in_(business_ids))
        .subquery()
    )
    rows = await session.execute(
        select(ranked)
        .where(ranked.c.rank <= TASKS_SHOWN)
        .order_by(ranked.c.business_id, ranked.c.rank)
    )
    found: dict[uuid.UUID, list[TaskLine]] = defaultdict(list)
    for row in rows:
        found[row.business_id].append(TaskLine(row.title, row.due_at, row.assignee))
    return found


def compose(
    digest: Digest,
    kpis: Kpis,
    handled: list[HandledLine],
    tasks: list[TaskLine],
    *,
    feedback: SurveyNumbers | None = None,
    public_url: str | None,
) -> tuple[str, str]:
    """The subject and plain-text body, in the current language (the owner's)."""
    business, zone = digest.business, digest.business.timezone
    when = describe_period(digest.period)
    values: dict[str, Any] = {"business": business.name, "when": when}
    if digest.kind == "daily":
        subject = gettext("%(business)s: yesterday (%(when)s)") % values
        opening = gettext("Here is what the agency did for %(business)s yesterday, %(when)s.")
    else:
        subject = gettext("%(business)s: last week (%(when)s)") % values
        opening = gettext("Here is what the agency did for %(business)s last week, %(when)s.")
    lines = [gettext("Hello %(name)s,") % {"name": digest.owner.name}, "", opening % values, ""]
    sections = digest.notices.digest_sections
    if "handled" in sections:
        lines += _handled_part(kpis, handled, digest.kind, zone)
    if "tasks" in sections:
        lines += _tasks_part(kpis, tasks, zone)
    if "numbers" in sections:
        lines += _numbers_part(kpis)
    if "surveys" in sections:
        lines += _surveys_part(business, kpis, feedback)
    while lines[-1] == "":
        lines.pop()
    if public_url:
        link = (
            f"{public_url}/portal/kpis?business={business.id}"
            f"&from={digest.period.first}&to={digest.period.last}"
        )
        lines += ["", gettext("The full report: %(link)s") % {"link": link}]
    return subject, "\n".join(lines) + "\n"


def _handled_part(kpis: Kpis, handled: list[HandledLine], kind: Kind, zone: str) -> list[str]:
    lines = [gettext("Calls and messages handled: %(count)s") % {"count": kpis.handled}]
    moment = "HH:mm" if kind == "daily" else "EEE d MMM HH:mm"
    for item in handled:
        parts = [format_local(item.started_at, zone, moment), item.contact or "-"]
        parts.append(labels.label("kind", item.kind))
        if item.outcome:
            parts.append(labels.label("outcome", item.outcome))
        if item.secretary:
            parts.append(item.secretary)
        lines.append("  " + " · ".join(parts))
    if kpis.handled > len(handled):
        more = {"count": kpis.handled - len(handled)}
        lines.append("  " + gettext("… and %(count)s more.") % more)
    return [*lines, ""]


def _tasks_part(kpis: Kpis, tasks: list[TaskLine], zone: str) -> list[str]:
    lines = [gettext("Open tasks now: %(count)s") % {"count": kpis.open_tasks}]
    for task in tasks:
        due = format_local(task.due_at, zone, "EEE d MMM HH:mm")
        values = {"title": task.title, "due": due, "whom": task.assignee}
        lines.append("  " + gettext("%(title)s, due %(due)s (%(whom)s)") % values)
    return [*lines, ""]


def _numbers_part(kpis: Kpis) -> list[str]:
    lines = [gettext("The numbers, for the leads that arrived in the period:")]
    channels = [
        f"{labels.label('channel', channel)} {count}"
        for channel, count in kpis.by_channel.items()
        if count
    ]
    for metric in metrics(kpis):
        if metric.key not in DIGEST_NUMBERS and not (
            kpis.calls and metric.key in DIGEST_CALL_NUMBERS
        ):
            continue
        line = f"  {metric.label}: {metric.shown}"
        if metric.key == "leads" and channels:
            line += f" ({', '.join(channels)})"
        lines.append(line)
    return lines


def _surveys_part(business: Business, kpis: Kpis, feedback: SurveyNumbers | None) -> list[str]:
    lines = []
    for metric in KpiReport(business, kpis, feedback).feedback_metrics:
        if metric.key == "survey_answers" or (feedback and feedback.answered):
            lines.append(f"  {metric.label}: {metric.shown}")  # rating and share once answered
    return lines
