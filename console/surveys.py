"""Customer feedback: when a lead is won its contact gets a short survey by a signed link (1–5
stars, would they recommend us, what to improve), answered once without signing in.

The token names the survey and when it expires, signed with SECRET_KEY under its own salt; the
survey row says whether it was answered, so a reused link shows "already answered" and changes
nothing. The answers show on the contact's card and in the business's KPIs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from console.config import Settings
from console.db import dialect_of
from console.errors import ConsoleError, Invalid, NotFound
from console.i18n import gettext, using_locale
from console.notify import queue_notification
from models import Business, Contact, Lead
from models.records import Survey

SALT = "mazkira.survey"
LIFETIME = timedelta(days=30)
IMPROVE_LENGTH = 2000


@dataclass(frozen=True)
class SurveyLinks:
    """Signs survey tokens and writes the links; without PUBLIC_URL no link can be sent."""

    secret_key: str
    public_url: str | None

    @classmethod
    def of(cls, settings: Settings) -> SurveyLinks:
        return cls(settings.secret_key, settings.public_url)

    def token(self, survey_id: uuid.UUID, *, now: datetime) -> str:
        expires = int((now + LIFETIME).timestamp())
        return str(URLSafeSerializer(self.secret_key, salt=SALT).dumps([survey_id.hex, expires]))

    def url(self, survey_id: uuid.UUID, *, now: datetime) -> str | None:
        if not self.public_url:
            return None
        return f"{self.public_url.rstrip('/')}/survey/{self.token(survey_id, now=now)}"


def read_token(secret_key: str, token: str, *, now: datetime) -> uuid.UUID:
    """The survey a token names; a forged or damaged one is a 400, an expired one too."""
    try:
        payload: Any = URLSafeSerializer(secret_key, salt=SALT).loads(token)
        survey_hex, expires = payload
        survey_id = uuid.UUID(hex=survey_hex)
        expires_at = datetime.fromtimestamp(int(expires), UTC)
    except (BadSignature, TypeError, ValueError):
        raise ConsoleError("This survey link is not valid.") from None
    if expires_at <= now:
        raise ConsoleError("This survey link has expired.")
    return survey_id


def channel_for(contact: Contact) -> tuple[str, str] | None:
    """The channel and address to reach a contact on: the one they prefer (if we have the
    address), else e-mail, else SMS; None when there is neither."""
    addresses = {
        "email": contact.email,
        "sms": contact.phone,
        "whatsapp": contact.phone,
    }
    preferred = contact.preferred_channel or ""
    address = addresses.get(preferred)
    if address:
        return preferred, address
    if contact.email:
        return "email", contact.email
    if contact.phone:
        return "sms", contact.phone
    return None


async def start_survey(
    session: AsyncSession, lead: Lead, *, links: SurveyLinks | None, now: datetime
) -> Survey | None:
    """The lead was won: make its survey, once, and queue the link to the contact. None when
    the lead had its survey already."""
    insert = postgresql.insert if dialect_of(session) == "postgresql" else sqlite.insert
    survey_id = uuid.uuid4()
    statement = (
        insert(Survey)
        .values(
            id=survey_id,
            business_id=lead.business_id,
            lead_id=lead.id,
            contact_id=lead.contact_id,
            sent_at=now,
            improve="",
        )
        .on_conflict_do_nothing(index_elements=["lead_id"])
        .returning(Survey.id)
    )
    if await session.scalar(statement) is None:
        return None
    survey = await session.get_one(Survey, survey_id)
    url = links.url(survey_id, now=now) if links is not None else None
    contact = await session.get_one(Contact, lead.contact_id)
    route = channel_for(contact)
    if url is None or route is None:
        return survey
    business = await session.get_one(Business, lead.business_id)
    with using_locale(business.locale):
        values = {"business": business.name, "url": url}
        subject = gettext("How did we do? %(business)s") % values
        body = (
            gettext(
                "Thank you for choosing %(business)s. Two minutes to tell us how we did: %(url)s"
            )
            % values
        )
    await queue_notification(
        session,
        key=f"survey:{survey_id}:invite",
        business_id=business.id,
        channel=route[0],
        recipient=route[1],
        subject=subject,
        body=body,
        now=now,
    )
    return survey


@dataclass(frozen=True)
class SurveyPage:
    survey: Survey
    business: Business

    @property
    def answered(self) -> bool:
        return self.survey.answered_at is not None


async def survey_page(
    session: AsyncSession, secret_key: str, token: str, *, now: datetime
) -> SurveyPage:
    survey_id = read_token(secret_key, token, now=now)
    survey = await session.get(Survey, survey_id)
    if survey is None:
        raise NotFound("Not found.")
    business = await session.get_one(Business, survey.business_id)
    return SurveyPage(survey, business)


@dataclass(frozen=True)
class Answers:
    stars: str
    recommend: str
    improve: str = ""


def check_answers(answers: Answers) -> tuple[int, bool, str]:
    try:
        stars = int(answers.stars)
    except ValueError:
        stars = 0
    if not 1 <= stars <= 5:
        raise Invalid("Pick from one to five stars.", field="stars")
    if answers.recommend not in ("yes", "no"):
        raise Invalid("Say whether you would recommend us.", field="recommend")
    return stars, answers.recommend == "yes", answers.improve.strip()[:IMPROVE_LENGTH]


async def answer_survey(
    session: AsyncSession, secret_key: str, token: str, answers: Answers, *, now: datetime
) -> bool:
    """Record the answers unless the survey was answered before; say whether they were taken.
    One conditional UPDATE, so two posts of one link record once on either database."""
    survey_id = read_token(secret_key, token, now=now)
    stars, recommend, improve = check_answers(answers)
    result = await session.execute(
        update(Survey)
        .where(Survey.id == survey_id, Survey.answered_at.is_(None))
        .values(answered_at=now, stars=stars, would_recommend=recommend, improve=improve)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        return True
    if await session.get(Survey, survey_id) is None:
        raise NotFound("Not found.")
    return False


async def surveys_of_contact(session: AsyncSession, contact_id: uuid.UUID) -> list[Survey]:
    statement = (
        select(Survey)
        .where(Survey.contact_id == contact_id, Survey.answered_at.is_not(None))
        .order_by(Survey.answered_at.desc())
    )
    return list((await session.scalars(statement)).all())


@dataclass(frozen=True)
class SurveyNumbers:
    answered: int
    average_stars: float | None
    recommend_percent: float | None


async def survey_numbers(
    session: AsyncSession, business_id: uuid.UUID, start: datetime, end: datetime
) -> SurveyNumbers:
    """The surveys answered in [start, end): how many, the average rating, the share who
    would recommend the business (the index on business and answered_at serves it)."""
    row = (
        await session.execute(
            select(
                func.count(Survey.id),
                func.avg(Survey.stars),
                func.sum(case((Survey.would_recommend.is_(True), 1), else_=0)),
            ).where(
                Survey.business_id == business_id,
                Survey.answered_at >= start,
                Survey.answered_at < end,
            )
        )
    ).one()
    answered = int(row[0] or 0)
    if not answered:
        return SurveyNumbers(0, None, None)
    return SurveyNumbers(
        answered, round(float(row[1]), 2), round(100 * int(row[2] or 0) / answered, 1)
    )
