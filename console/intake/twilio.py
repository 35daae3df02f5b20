"""Twilio's webhooks: incoming SMS and WhatsApp messages (a WhatsApp number on Twilio), incoming
calls (answered with TwiML) and delivery statuses.

Twilio posts form fields signed with `X-Twilio-Signature` over the public URL it called; the
business is found by the line the message or call reached (`To`), or, for a status callback,
the line it was sent from (`From`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from xml.etree import ElementTree

from sqlalchemy.ext.asyncio import AsyncSession

from console.base.config import Settings
from console.base.db import Database
from console.base.errors import Invalid, Unauthorized
from console.base.i18n import gettext, using_locale
from console.channels.deliveries import record_delivery
from console.channels.lines import TWILIO_WHATSAPP, business_on_line, on_twilio
from console.intake.arrivals import Arrival, Arrived, ById, ByLine
from console.intake.callers import call_subject, caller_number
from console.intake.signatures import verify_twilio
from console.intake.writer import ArrivalWriter
from console.live import events
from console.tasks import paging
from models import Business, Interaction, Lead

Params = Mapping[str, list[str]]

SID = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")
MAX_BODY = 1_600 * 10  # Twilio joins at most 10 segments of 1,600 characters
MISSED = frozenset({"busy", "no-answer", "failed", "canceled"})
ANSWERED = frozenset({"completed", "answered"})
# Twilio's message statuses, as the console keeps them; the rest are not news.
DELIVERY = {"sent": "sent", "delivered": "delivered", "read": "read"}
FAILED = frozenset({"failed", "undelivered"})
RING_SECONDS = 20


def verify(settings: Settings, url: str, params: Params, signature: str | None) -> None:
    if not verify_twilio(settings.twilio_webhook_token, url, params, signature):
        raise Unauthorized("The Twilio signature is missing or wrong.")


def field(params: Params, name: str, *, required: bool = True, max_length: int = 200) -> str:
    value = (params.get(name) or [""])[0].strip()
    if required and not value:
        raise Invalid("The field %(name)s is missing.", field=name, name=name)
    if len(value) > max_length:
        raise Invalid("The field %(name)s is not valid.", field=name, name=name)
    return value


def sid(params: Params, name: str) -> str:
    value = field(params, name)
    if not SID.match(value):
        raise Invalid("The field %(name)s is not valid.", field=name, name=name)
    return value


def sms_arrival(params: Params, *, now: datetime) -> Arrival:
    """An incoming SMS, or a WhatsApp message through Twilio (its addresses `whatsapp:+…`, the
    line a WhatsApp line on Twilio): a lead, or a message on the sender's open lead."""
    message_sid = sid(params, "MessageSid")
    body = field(params, "Body", required=False, max_length=MAX_BODY)
    sender, line = field(params, "From"), field(params, "To")
    if on_twilio(line):
        return Arrival(
            ByLine("whatsapp", (line,)),
            "whatsapp",
            now,
            phone=sender.removeprefix(TWILIO_WHATSAPP),
            name=field(params, "ProfileName", required=False),
            text=body,
            source="WhatsApp",
            message_id=message_sid,
        )
    return Arrival(
        ByLine("sms", (line,)),
        "sms",
        now,
        phone=sender,
        text=body,
        source="SMS",
        message_id=message_sid,
    )


async def code_reply(db: Database, params: Params, *, now: datetime) -> bool:
    """An on-call person answering his page with its code (console/tasks/paging.py): True when
    the message was such an answer, acknowledged or refused, and so no customer's message."""
    body = field(params, "Body", required=False, max_length=MAX_BODY)
    if paging.CODE.match(body) is None:
        return False
    sender, line = field(params, "From"), field(params, "To")
    async with db.transaction() as session:
        outcome = await paging.acknowledge_by_reply(
            session,
            sender.removeprefix(TWILIO_WHATSAPP),
            body,
            via="whatsapp" if on_twilio(line) else "sms",
            now=now,
        )
    return outcome != "not_a_code"


@dataclass(frozen=True)
class CallStep:
    """What Twilio asked about a call: a new call, the outcome of ringing the agency, or the
    call's final status."""

    call_sid: str
    caller: str
    line: str
    dial_status: str
    call_status: str

    @classmethod
    def of(cls, params: Params) -> CallStep:
        return cls(
            call_sid=sid(params, "CallSid"),
            caller=field(params, "From", required=False),
            line=field(params, "To"),
            dial_status=field(params, "DialCallStatus", required=False, max_length=20),
            call_status=field(params, "CallStatus", required=False, max_length=20),
        )


async def receive_call(
    db: Database,
    writer: ArrivalWriter,
    settings: Settings,
    step: CallStep,
    *,
    voice_url: str,
    now: datetime,
) -> str:
    """The TwiML for this step of a call; a call is a lead at once (through the arrival path,
    with every other arrival), a missed one a call-back."""
    async with db.transaction(write=False) as session:
        business = await business_on_line(session, "phone", step.line)
    with using_locale(business.locale):
        if step.dial_status:
            if step.dial_status in ANSWERED:
                return twiml(("Hangup", {}, ""))
            await _missed(db, writer, business, step, now=now)
            return twiml(
                _say(business, gettext("Sorry we missed you. We will call you back soon."))
            )
        if step.call_status in MISSED:
            await _missed(db, writer, business, step, now=now)
            return twiml()
        if step.call_status == "completed":
            return twiml()
        await _ringing(writer, business, step, now=now)
        if settings.twilio_voice_forward_to:
            return twiml(
                (
                    "Dial",
                    {"timeout": str(RING_SECONDS), "action": voice_url, "method": "POST"},
                    ("Number", {}, settings.twilio_voice_forward_to),
                )
            )
        await _missed(db, writer, business, step, now=now)
        return twiml(
            _say(business, gettext("Thank you for calling. We will call you back soon.")),
            ("Hangup", {}, ""),
        )


async def _ringing(
    writer: ArrivalWriter, business: Business, step: CallStep, *, now: datetime
) -> Arrived:
    """The call's lead, made at once so every console of the business pops it up (or found,
    for a later step of the same call). A caller whose number is withheld (Twilio's
    "Anonymous", "+266696687" and the like) or unreadable is a lead all the same, as through
    the SIP server: a contact of its own without a number, the subject saying so."""
    number = caller_number(step.caller)
    arrival = Arrival(
        ById(business.id),
        "phone",
        now,
        phone=number or "",
        subject=call_subject(step.caller, missed=False),
        source=gettext("Phone call"),
        message_id=step.call_sid,
        no_number=number is None,
    )
    return await writer.receive(arrival)


async def _missed(
    db: Database, writer: ArrivalWriter, business: Business, step: CallStep, *, now: datetime
) -> None:
    """The call's lead becomes a call-back, once."""
    arrived = await _ringing(writer, business, step, now=now)
    if arrived.interaction_id is None:
        return
    async with db.transaction() as session:
        interaction = await session.get_one(Interaction, arrived.interaction_id)
        if interaction.outcome == "no_answer":
            return
        interaction.outcome = "no_answer"
        interaction.summary = gettext("Missed call")
        interaction.updated_at = now
        lead = await session.get_one(Lead, interaction.lead_id)
        lead.subject = call_subject(step.caller, missed=True)
        if lead.priority in ("low", "normal"):
            lead.priority = "high"
        await events.record(session, business.id, "lead.updated", at=now, lead_id=lead.id)


async def receive_status(session: AsyncSession, params: Params, *, now: datetime) -> bool:
    """A sent message's status callback; False when it is not news or not ours."""
    message_sid = sid(params, "MessageSid")
    raw = field(params, "MessageStatus", max_length=20)
    if raw in FAILED:
        status, error = "failed", field(params, "ErrorCode", required=False, max_length=20)
    elif raw in DELIVERY:
        status, error = DELIVERY[raw], ""
    else:
        return False
    line = field(params, "From")
    business = await business_on_line(session, "whatsapp" if on_twilio(line) else "sms", line)
    reason = f"Twilio error {error}" if error else ""
    return await record_delivery(session, business.id, message_sid, status, error=reason, now=now)


def _say(business: Business, text: str) -> tuple[str, dict[str, str], str]:
    return ("Say", {"language": "he-IL" if business.locale == "he" else "en-US"}, text)


Verb = tuple[str, dict[str, str], "str | Verb"]


def twiml(*verbs: Verb) -> str:
    """A TwiML document: <Response> and its verbs, escaped by the XML writer."""
    response = ElementTree.Element("Response")
    for verb in verbs:
        _append(response, verb)
    body = ElementTree.tostring(response, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>' + body


def _append(parent: ElementTree.Element, verb: Verb) -> None:
    name, attributes, content = verb
    element = ElementTree.SubElement(parent, name, attributes)
    if isinstance(content, tuple):
        _append(element, content)
    elif content:
        element.text = content
