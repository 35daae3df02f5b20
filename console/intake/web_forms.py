"""The business's web form: what its site posts, checked, as an arrival.

The form proves itself by the business's intake key (compared in constant time when its
group is written: `arrivals`); its fields are checked here, and what is wrong with them is
said only to a sender who showed the right key.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console.base.errors import ConsoleError, Invalid
from console.intake.arrivals import Arrival, ByKey

DEFAULT_SOURCE = "web form"


class WebForm(BaseModel):
    """The fields a business's site posts (anything else is ignored)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: str = Field(default="", max_length=200)
    phone: str = Field(default="", max_length=40)
    email: str = Field(default="", max_length=254)
    message: str = Field(default="", max_length=20_000)
    source: str = Field(default="", max_length=100)
    external_id: str | None = Field(default=None, max_length=200)


def parse_form(fields: Mapping[str, Any]) -> WebForm:
    try:
        form = WebForm.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "body"
        raise Invalid("The field %(name)s is not valid.", field=name, name=name) from None
    if not form.phone and not form.email:
        raise Invalid("Give a phone number or an e-mail address.", field="phone")
    return form


def form_arrival(slug: str, key: str, fields: Mapping[str, Any], now: datetime) -> Arrival:
    """The arrival a business's web form makes: a lead of its own, once per external id."""
    where = ByKey(slug, key)
    try:
        form = parse_form(fields)
    except ConsoleError as refusal:
        return Arrival(where, "web", now, refusal=refusal)
    return Arrival(
        where,
        "web",
        now,
        phone=form.phone,
        email=form.email,
        name=form.name,
        text=form.message,
        source=form.source or DEFAULT_SOURCE,
        external_id=form.external_id,
    )
