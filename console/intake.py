"""Leads that arrive by themselves: the business's web form (and, later, the providers' webhooks).

Each arrival is verified (the business's intake key, compared in constant time), validated, and
written exactly once: the channel's own id (`external_id`) is unique per business, so the same
delivery sent again — or five times at once — finds the lead already there.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from console.db import made_once
from console.errors import Invalid, NotFound, Unauthorized
from console.leads import NewLead, create_lead
from models import Business, Lead


class WebForm(BaseModel):
    """The fields a business's site posts (anything else is ignored)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: str = Field(default="", max_length=200)
    phone: str = Field(default="", max_length=40)
    email: str = Field(default="", max_length=254)
    message: str = Field(default="", max_length=20_000)
    source: str = Field(default="", max_length=100)
    external_id: str | None = Field(default=None, max_length=200)


@dataclass(frozen=True)
class Received:
    lead: Lead
    duplicate: bool


async def business_for_key(session: AsyncSession, slug: str, key: str) -> Business:
    """The active business of this slug, if the key is its intake key (else 404 / 401)."""
    business = await session.scalar(
        select(Business).where(Business.slug == slug, Business.active.is_(True))
    )
    if business is None:
        raise NotFound("No such business.")
    if not key or not hmac.compare_digest(key.encode(), business.intake_key.encode()):
        raise Unauthorized("The intake key is missing or wrong.")
    return business


def parse_form(fields: dict[str, Any]) -> WebForm:
    try:
        form = WebForm.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "body"
        raise Invalid("The field %(name)s is not valid.", field=name, name=name) from None
    if not form.phone and not form.email:
        raise Invalid("Give a phone number or an e-mail address.", field="phone")
    return form


async def receive_form(
    session: AsyncSession, business: Business, form: WebForm, *, now: datetime
) -> Received:
    """The web form's lead, written once per external_id."""
    new = NewLead(
        business_id=str(business.id),
        phone=form.phone,
        email=form.email,
        name=form.name,
        channel="web",
        subject=form.message[:120],
        message=form.message,
        source=form.source or "web form",
    )

    async def earlier() -> Lead | None:
        if not form.external_id:
            return None
        return await session.scalar(
            select(Lead).where(
                Lead.business_id == business.id, Lead.external_id == form.external_id
            )
        )

    async def write() -> Lead:
        return await create_lead(
            session, None, new, now=now, business=business, external_id=form.external_id
        )

    lead, new_lead = await made_once(session, earlier, write)
    return Received(lead, duplicate=not new_lead)
