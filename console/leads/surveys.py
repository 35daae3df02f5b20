"""Customer feedback: when a lead is won its contact gets a short survey by a signed link (1–5
stars, would they recommend us, what to improve), answered once without signing in.

The token names the survey and when it expires, signed with SECRET_KEY under its own salt; the
survey row says whether it was answered, so a reused link shows "already answered" and changes
nothing; the answer itself is followed by "thank you" (the page after it is asked with
`?thanks=1`). The answers show on the contact's card and in the business's KPIs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.config import Settings
from console.base.db import dialect_of
from console.base.errors import ConsoleError, Invalid, NotFound
from console.base.i18n import gettext
from console.business.periods import Period, within_period
from console.channels.contact_messages import language_of, queue_to_contact
from console.live import events
from models import Business, Contact, Lead
from models.base import new_id
from models.records import Survey

SALT = "mazkira.survey"
LIFETIME = timedelta(days=30)
IMPROVE_LENGTH = 2000


@dataclass(frozen=True)
class SurveyLinks:
    """Signs survey tokens and writes the links; without PUBLIC_URL no link can be sent. The
    approved WhatsApp template carries a link to a contact outside the 24-hour window."""

    secret_key: str
    public_url: str | None
    whatsapp_template: str | None = None

    @classmethod
    def of(cls, settings: Settings) -> SurveyLinks:
        return cls(settings.secret_key, settings.public_url, settings.contact_whatsapp_template)

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


async def start_survey(
    session: AsyncSession, lead: Lead, *, links: SurveyLinks | None, now: datetime
) -> Survey | None:
    """The lead was won: make its survey, once, and queue the link to the contact. None when
    the lead had its survey already."""
    insert = postgresql.insert if dialect_of(session) == "postgresql" else sqlite.insert
    survey_id = new_id()
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
    if url is None or links is None:
        return survey
    contact = await session.get_one(Contact, lead.contact_id)
    business = await session.get_one(Business, lead.business_id)

    def compose() -> tuple[str, str]:
        values = {"business": business.name, "url": url}
        subject = gettext("How did we do? %(business)s") % values
        body = (
            gettext(
                "Thank you for choosing %(business)s. Two minutes to tell us how we did: %(url)s"
            )
            % values
        )
        return subject, body

    await queue_to_contact(
        session,
        business,
        contact,
        key=f"survey:{survey_id}:invite",
        compose=compose,
        whatsapp_template=links.whatsapp_template,
        now=now,
    )
    return survey


@dataclass(frozen=True)
class SurveyPage:
    survey: Survey
    business: Business
    locale: str  # the contact's language
    thanked: bool = False  # just answered: "thank you", not "already answered"

    @property
    def answered(self) -> bool:
        return self.survey.answered_at is not None


async def survey_page(
    session: AsyncSession, secret_key: str, token: str, *, now: datetime, thanked: bool = False
) -> SurveyPage:
    survey_id = read_token(secret_key, token, now=now)
    survey = await session.get(Survey, survey_id)
    if survey is None:
        raise NotFound("Not found.")
    business = await session.get_one(Business, survey.business_id)
    contact = await session.get_one(Contact, survey.contact_id)
    return SurveyPage(survey, business, language_of(contact, business), thanked)


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
        survey = await session.get_one(Survey, survey_id)
        await events.record(  # for outbound webhooks; the consoles draw nothing for it
            session,
            survey.business_id,
            "survey.answered",
            at=now,
            survey_id=survey.id,
            lead_id=survey.lead_id,
            contact_id=survey.contact_id,
            stars=stars,
            would_recommend=recommend,
        )
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

    @classmethod
    def of(cls, answered: int, stars: Any, recommending: Any) -> SurveyNumbers:
        if not answered:
            return cls(0, None, None)
        return cls(
            answered, round(float(stars), 2), round(100 * int(recommending or 0) / answered, 1)
        )


NUMBERS = (
    func.count(Survey.id),
    func.avg(Survey.stars),
    func.sum(case((Survey.would_recommend.is_(True), 1), else_=0)),
)


async def survey_numbers(
    session: AsyncSession, business_id: uuid.UUID, start: datetime, end: datetime
) -> SurveyNumbers:
    """The surveys answered in [start, end): how many, the average rating, the share who
    would recommend the business (the index on business and answered_at serves it)."""
    row = (
        await session.execute(
            select(*NUMBERS).where(
                Survey.business_id == business_id,
                Survey.answered_at >= start,
                Survey.answered_at < end,
            )
        )
    ).one()
    return SurveyNumbers.of(int(row[0] or 0), row[1], row[2])


async def survey_numbers_by_business(
    session: AsyncSession, businesses: Sequence[Business], period: Period
) -> dict[uuid.UUID, SurveyNumbers]:
    """The same numbers for several businesses in one statement, each period in the business's
    own zone (the owners' digests)."""
    rows = await session.execute(
        select(Survey.business_id, *NUMBERS)
        .where(within_period(businesses, period, Survey.business_id, Survey.answered_at))
        .group_by(Survey.business_id)
    )
    found = {row[0]: SurveyNumbers.of(int(row[1] or 0), row[2], row[3]) for row in rows}
    return {b.id: found.get(b.id, SurveyNumbers(0, None, None)) for b in businesses}
