"""The business's web form: what its site posts, checked, as an arrival.

The form proves itself by the business's intake key (compared in constant time when its
group is written: `arrivals`); its fields are checked here, and what is wrong with them is
said only to a sender who showed the right key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console.base.errors import ConsoleError, Invalid
from console.contacts.contacts import normalise_email, normalise_phone
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


# What a visitor is told about a field the form refused, in the form's language.
REFUSALS: dict[str, Callable[[], Invalid]] = {
    "name": lambda: Invalid("Write a name of up to 200 characters.", field="name"),
    "phone": lambda: Invalid("Write a phone number of up to 40 characters.", field="phone"),
    "email": lambda: Invalid("Write an e-mail address of up to 254 characters.", field="email"),
    "message": lambda: Invalid("Write a message of up to 20,000 characters.", field="message"),
}


def parse_form(fields: Mapping[str, Any]) -> WebForm:
    try:
        form = WebForm.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "body"
        if name in REFUSALS:
            raise REFUSALS[name]() from None
        raise Invalid("The field %(name)s is not valid.", field=name, name=name) from None
    if not form.phone and not form.email:
        raise Invalid("Give a phone number or an e-mail address.", field="phone")
    if form.phone:
        try:  # a range not allocated yet is kept (the lead says "check the number")
            normalise_phone(form.phone, unassigned_ok=True)
        except Invalid:
            raise Invalid(
                "This phone number cannot exist: check its digits.", field="phone"
            ) from None
    if form.email:
        try:
            normalise_email(form.email)
        except Invalid:
            raise Invalid(
                "Check the e-mail address: it cannot receive mail.", field="email"
            ) from None
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
