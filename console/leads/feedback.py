"""The owner's word on what was done for him: a rating of a handled call (read by the agency per
secretary), and comments on leads and tasks (read by the secretaries on the lead page)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload

from console.base.db import made_once
from console.base.errors import Invalid, NotFound
from console.leads.leads import get_lead
from console.people.tenancy import get_scoped, scoped, visible_businesses
from models import (
    Business,
    Comment,
    Contact,
    Interaction,
    InteractionRating,
    Role,
    Task,
    User,
)

COMMENT_LENGTH = 4000
LATEST_COMMENTS = 30


def rateable(interaction: Interaction) -> bool:
    """A call, message or note the agency's people logged and finished (not one that came in)."""
    return (
        interaction.status == "done"
        and interaction.user_id is not None
        and interaction.direction != "in"
    )


def parse_stars(raw: str) -> int:
    try:
        stars = int(raw.strip())
    except ValueError:
        stars = 0
    if not 1 <= stars <= 5:
        raise Invalid("Rate from 1 to 5 stars.", field="stars")
    return stars


async def rate_interaction(
    session: AsyncSession,
    user: User,
    interaction_id: str | uuid.UUID,
    *,
    stars: str,
    comment: str = "",
    now: datetime,
) -> InteractionRating:
    """The owner's rating of a handled call: one per interaction, changed when he rates again.
    Outside his businesses: 404; stars outside 1–5 or a comment too long: 422, nothing kept."""
    interaction = await get_scoped(session, user, Interaction, interaction_id)
    if user.role != Role.OWNER:
        raise NotFound("Not found.")
    value = parse_stars(stars)
    comment = comment.strip()
    if len(comment) > COMMENT_LENGTH:
        raise Invalid("The comment is too long.", field="comment")
    if not rateable(interaction):
        raise Invalid("Only a call or message the agency handled can be rated.", field="stars")

    async def earlier() -> InteractionRating | None:
        return await session.scalar(
            select(InteractionRating).where(InteractionRating.interaction_id == interaction.id)
        )

    async def write() -> InteractionRating:
        rating = InteractionRating(
            business_id=interaction.business_id,
            interaction_id=interaction.id,
            rated_by_id=user.id,
            stars=value,
            comment=comment,
            rated_at=now,
        )
        session.add(rating)
        await session.flush()
        return rating

    rating, _new = await made_once(session, earlier, write)
    rating.stars, rating.comment, rating.rated_by_id, rating.rated_at = value, comment, user.id, now
    await session.flush()
    return rating


# --- comments ---------------------------------------------------------------------------------


def _checked_body(body: str) -> str:
    body = body.strip()
    if not body:
        raise Invalid("The comment is empty.", field="body")
    if len(body) > COMMENT_LENGTH:
        raise Invalid("The comment is too long.", field="body")
    return body


async def comment_on_lead(
    session: AsyncSession,
    user: User,
    lead_id: str | uuid.UUID,
    body: str,
    *,
    now: datetime,
    request_key: str = "",
) -> Comment:
    lead = await get_lead(session, user, lead_id)
    text = _checked_body(body)
    return await _comment(session, user, lead.business_id, lead.id, None, text, now, request_key)


async def comment_on_task(
    session: AsyncSession,
    user: User,
    task_id: str | uuid.UUID,
    body: str,
    *,
    now: datetime,
    request_key: str = "",
) -> Comment:
    """A comment on a task, by anyone of the business who sees it; an owner only on the tasks
    handed to him or by him. It shows with the task's lead for the secretaries."""
    task = await get_scoped(session, user, Task, task_id)
    if user.role == Role.OWNER and user.id not in (task.assignee_id, task.created_by_id):
        raise NotFound("Not found.")
    text = _checked_body(body)
    return await _comment(
        session, user, task.business_id, task.lead_id, task.id, text, now, request_key
    )


async def _comment(
    session: AsyncSession,
    user: User,
    business_id: uuid.UUID,
    lead_id: uuid.UUID | None,
    task_id: uuid.UUID | None,
    body: str,
    now: datetime,
    request_key: str,
) -> Comment:
    key = request_key[:64] or None

    async def earlier() -> Comment | None:
        if key is None:
            return None
        return await session.scalar(
            select(Comment).where(Comment.business_id == business_id, Comment.request_key == key)
        )

    async def write() -> Comment:
        comment = Comment(
            business_id=business_id,
            lead_id=lead_id,
            task_id=task_id,
            author_id=user.id,
            body=body,
            request_key=key,
            created_at=now,
        )
        session.add(comment)
        await session.flush()
        return comment

    comment, _new = await made_once(session, earlier, write)
    return comment


# Built once: every lead page reads them.
COMMENTS_OF_LEAD = (
    select(Comment)
    .where(Comment.lead_id == bindparam("lead_id"))
    .options(joinedload(Comment.author))
    .order_by(Comment.created_at, Comment.id)
)


async def comments_of_lead(session: AsyncSession, lead_id: uuid.UUID) -> list[Comment]:
    """The lead's comments and its tasks' comments, oldest first, with their authors."""
    return list((await session.scalars(COMMENTS_OF_LEAD, {"lead_id": lead_id})).all())


async def comments_of_tasks(
    session: AsyncSession, task_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Comment]]:
    if not task_ids:
        return {}
    statement = (
        select(Comment)
        .where(Comment.task_id.in_(task_ids))
        .options(joinedload(Comment.author))
        .order_by(Comment.created_at, Comment.id)
    )
    found: dict[uuid.UUID, list[Comment]] = {}
    for comment in await session.scalars(statement):
        assert comment.task_id is not None
        found.setdefault(comment.task_id, []).append(comment)
    return found


# --- the agency's view of the ratings -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SecretaryRatings:
    user_id: uuid.UUID
    name: str
    average: float
    count: int
    low: int  # one or two stars


@dataclass(frozen=True, slots=True)
class RatingComment:
    stars: int
    comment: str
    rated_at: datetime
    business_name: str
    timezone: str
    secretary_name: str
    contact_name: str
    lead_id: uuid.UUID


@dataclass(frozen=True)
class RatingsReport:
    secretaries: list[SecretaryRatings]
    comments: list[RatingComment]
    businesses: list[Business]
    business: str  # the business filter, "" for all


async def ratings_report(session: AsyncSession, user: User, business: str = "") -> RatingsReport:
    """The owners' ratings per secretary (average, count, the low ones) and the latest
    comments, for one business or all of them: three statements."""
    businesses = await visible_businesses(session, user)
    if business and business not in {str(b.id) for b in businesses}:
        raise NotFound("No such business.")
    secretary = aliased(User)
    where = [InteractionRating.business_id == uuid.UUID(business)] if business else []
    per_secretary = scoped(
        select(
            secretary.id,
            secretary.name,
            func.avg(InteractionRating.stars),
            func.count(),
            func.sum(case((InteractionRating.stars <= 2, 1), else_=0)),
        )
        .join(Interaction, Interaction.id == InteractionRating.interaction_id)
        .join(secretary, secretary.id == Interaction.user_id)
        .where(*where)
        .group_by(secretary.id, secretary.name)
        .order_by(secretary.name),
        user,
        InteractionRating.business_id,
    )
    rows = [
        SecretaryRatings(user_id, name, round(float(average), 2), count, low or 0)
        for user_id, name, average, count, low in await session.execute(per_secretary)
    ]
    latest: Select[*tuple[Any, ...]] = (
        select(
            InteractionRating.stars,
            InteractionRating.comment,
            InteractionRating.rated_at,
            Business.name,
            Business.timezone,
            secretary.name,
            Contact.name,
            Interaction.lead_id,
        )
        .join(Interaction, Interaction.id == InteractionRating.interaction_id)
        .join(secretary, secretary.id == Interaction.user_id)
        .join(Contact, Contact.id == Interaction.contact_id)
        .join(Business, Business.id == InteractionRating.business_id)
        .where(InteractionRating.comment != "", *where)
        .order_by(InteractionRating.rated_at.desc(), InteractionRating.id)
        .limit(LATEST_COMMENTS)
    )
    found = await session.execute(scoped(latest, user, InteractionRating.business_id))
    comments = [RatingComment(*row) for row in found]
    return RatingsReport(rows, comments, businesses, business)
