"""Ready answers per business and language, kept beside the script; the secretary sends one with
a click, its {contact}, {business} and {secretary} filled in (nothing else is evaluated)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import made_once
from console.base.errors import Invalid, NotFound
from console.base.i18n import LOCALES
from console.leads.scripts import fill_greeting
from console.people.audit import Actor, record_change
from models import Business, CannedReply

MAX_TITLE = 100
MAX_BODY = 4_096  # what one WhatsApp message holds


# Built once (every lead page reads them): a business's replies, and those in one language.
CANNED = (
    select(CannedReply)
    .where(CannedReply.business_id == bindparam("business_id"))
    .order_by(CannedReply.locale, CannedReply.title)
)
CANNED_IN = CANNED.where(CannedReply.locale == bindparam("locale"))


async def canned_replies(
    session: AsyncSession, business_id: uuid.UUID, locale: str | None = None
) -> list[CannedReply]:
    if locale:
        return list(
            await session.scalars(CANNED_IN, {"business_id": business_id, "locale": locale})
        )
    return list(await session.scalars(CANNED, {"business_id": business_id}))


async def save_canned_reply(
    session: AsyncSession,
    business: Business,
    *,
    locale: str,
    title: str,
    body: str,
    now: datetime,
    actor: Actor | None = None,
) -> CannedReply:
    """Add the reply, or change the text of the one with this title and language; with an
    `actor` (the agency's script page), audited."""
    title, body = " ".join(title.split()), body.strip()
    if locale not in LOCALES:
        raise Invalid("Unknown language.", field="locale")
    if not title or len(title) > MAX_TITLE:
        raise Invalid(
            "Give the reply a title of up to %(n)s characters.", field="title", n=MAX_TITLE
        )
    if not body or len(body) > MAX_BODY:
        raise Invalid("Write the reply, up to %(n)s characters.", field="body", n=MAX_BODY)

    async def earlier() -> CannedReply | None:
        return await session.scalar(
            select(CannedReply).where(
                CannedReply.business_id == business.id,
                CannedReply.locale == locale,
                CannedReply.title == title,
            )
        )

    async def write() -> CannedReply:
        reply = CannedReply(
            business_id=business.id, locale=locale, title=title, body=body, created_at=now
        )
        session.add(reply)
        await session.flush()
        return reply

    reply, _new = await made_once(session, earlier, write)
    reply.body, reply.updated_at = body, now
    if actor is not None:
        await record_change(session, actor, "reply.saved", business, title=title, locale=locale)
    return reply


async def remove_canned_reply(
    session: AsyncSession, business: Business, reply_id: str, *, actor: Actor | None = None
) -> None:
    try:
        wanted = uuid.UUID(reply_id)
    except ValueError:
        raise NotFound("No such reply.") from None
    result = await session.execute(
        delete(CannedReply).where(CannedReply.id == wanted, CannedReply.business_id == business.id)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("No such reply.")
    if actor is not None:
        await record_change(session, actor, "reply.removed", business, reply=str(wanted))


def fill_reply(body: str, *, contact: str, business: str, secretary: str) -> str:
    return fill_greeting(body, business=business, secretary=secretary, contact=contact)
