"""WhatsApp through Meta's Cloud API webhook: messages become leads, statuses update replies.

Meta signs the raw body (`X-Hub-Signature-256`), batches several changes in one post, and names
the receiving number by its `phone_number_id`, which is the business's WhatsApp line. The whole
post is parsed before anything is written: a malformed message refuses it.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from console.base.config import Settings
from console.base.db import Database
from console.base.errors import Invalid, NotFound, Unauthorized
from console.channels.deliveries import RANK, record_delivery
from console.channels.lines import business_on_line
from console.intake.arrivals import MAX_TEXT, Arrival, ByLine
from console.intake.signatures import verify_meta
from console.intake.writer import ArrivalWriter
from console.tasks import paging
from models import Business

# What a message that is not text shows as, before its caption if it has one.
MEDIA = {
    "image": "[image]",
    "video": "[video]",
    "audio": "[voice message]",
    "document": "[document]",
    "sticker": "[sticker]",
    "location": "[location]",
    "contacts": "[contact card]",
}

ButtonReply = Callable[[AsyncSession, str], Awaitable[bool]]


def verify_subscription(settings: Settings, mode: str, token: str, challenge: str) -> str:
    """The `hub.challenge` to echo when Meta subscribes with our verify token."""
    expected = settings.whatsapp_verify_token or ""
    if mode != "subscribe" or not expected or not hmac.compare_digest(token, expected):
        raise Unauthorized("The verify token is missing or wrong.")
    if not challenge or len(challenge) > 200:
        raise Invalid("The field %(name)s is missing.", field="hub.challenge", name="hub.challenge")
    return challenge


def verify(settings: Settings, raw_body: bytes, signature: str | None) -> dict[str, Any]:
    if not verify_meta(settings.whatsapp_webhook_secret, raw_body, signature):
        raise Unauthorized("The Meta signature is missing or wrong.")
    try:
        payload = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("The body is not valid JSON.", field="body") from None
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        raise Invalid("The field %(name)s is not valid.", field="object", name="object")
    return payload


@dataclass
class Batch:
    """One post's messages and statuses, per line."""

    messages: list[tuple[str, Arrival, str]] = field(default_factory=list)  # line, arrival, button
    statuses: list[tuple[str, str, str, str]] = field(default_factory=list)  # line, id, status, why


def parse(payload: dict[str, Any], *, now: datetime) -> Batch:
    batch = Batch()
    for change in _changes(payload):
        value = change.get("value")
        if change.get("field") != "messages" or not isinstance(value, dict):
            continue
        line = str(_get(value, "metadata", "phone_number_id") or "")
        if not line:
            raise _invalid("metadata.phone_number_id")
        names = {
            str(c.get("wa_id")): str(_get(c, "profile", "name") or "")
            for c in value.get("contacts") or []
            if isinstance(c, dict)
        }
        for item in value.get("messages") or []:
            arrival, button = _message(item, names, line, now)
            batch.messages.append((line, arrival, button))
        for item in value.get("statuses") or []:
            batch.statuses.append((line, *_status(item)))
    return batch


async def receive_batch(
    db: Database,
    writer: ArrivalWriter,
    batch: Batch,
    *,
    now: datetime,
    agency_line: str | None = None,
    button_reply: ButtonReply | None = None,
) -> tuple[int, int]:
    """How many of the post's messages were new, and how many of its statuses were news.

    Owners' button replies (their answers to hand-offs, which come back to the agency's own
    number, no business's line) and statuses are applied in one transaction; the customers'
    messages then take the arrival path together. A message on an unknown line refuses the
    post (Meta sends it again): what was stored meanwhile is found, not written twice."""
    arrivals = [arrival for line, arrival, _ in batch.messages if line != agency_line]
    news = 0
    codes = any(paging.CODE.match(arrival.text) for _, arrival, _ in batch.messages)
    if batch.statuses or codes or any(button for *_, button in batch.messages):
        async with db.transaction() as session:
            arrivals, news = await _apply(session, batch, now, agency_line, button_reply)
    new = 0
    for answer in await writer.receive_all(arrivals):
        if isinstance(answer, Exception):
            raise answer
        new += not answer.duplicate
    return new, news


async def _apply(
    session: AsyncSession,
    batch: Batch,
    now: datetime,
    agency_line: str | None,
    button_reply: ButtonReply | None,
) -> tuple[list[Arrival], int]:
    """The owners' replies (hand-off buttons, on-call page codes) and the statuses applied; the
    customers' messages left."""
    businesses: dict[str, Business | None] = {}

    async def business_of(line: str) -> Business | None:
        if line not in businesses:
            try:
                businesses[line] = await business_on_line(session, "whatsapp", line)
            except NotFound:
                if line != agency_line:
                    raise
                businesses[line] = None
        return businesses[line]

    arrivals = []
    for line, arrival, button in batch.messages:
        if button and button_reply is not None and await button_reply(session, button):
            continue  # an owner's answer to a hand-off, not a customer's message
        if paging.CODE.match(arrival.text) and arrival.phone:
            outcome = await paging.acknowledge_by_reply(
                session, arrival.phone, arrival.text, via="whatsapp", now=now
            )
            if outcome != "not_a_code":
                continue  # an answer to an on-call page
        if line != agency_line:
            arrivals.append(arrival)
    news = 0
    for line, message_id, status, reason in batch.statuses:
        business = await business_of(line)
        if business is not None:
            news += await record_delivery(
                session, business.id, message_id, status, error=reason, now=now
            )
    return arrivals, news


def _changes(payload: dict[str, Any]) -> list[dict[str, Any]]:
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise _invalid("entry")
    changes = []
    for entry in entries:
        found = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(found, list):
            raise _invalid("entry.changes")
        changes += [change for change in found if isinstance(change, dict)]
    return changes


def _message(item: Any, names: dict[str, str], line: str, now: datetime) -> tuple[Arrival, str]:
    """The arrival, and the id of the reply button pressed (if one was)."""
    if not isinstance(item, dict):
        raise _invalid("messages")
    sender, message_id, kind = (str(item.get(k) or "") for k in ("from", "id", "type"))
    if not sender.isdigit() or not 6 <= len(sender) <= 20:
        raise _invalid("messages.from")
    if not message_id or len(message_id) > 200:
        raise _invalid("messages.id")
    button = ""
    if kind == "text":
        text = str(_get(item, "text", "body") or "")
    elif kind == "button":  # a template's quick reply
        text = str(_get(item, "button", "text") or "")
        button = str(_get(item, "button", "payload") or "")
    elif kind == "interactive":
        reply = _get(item, "interactive", "button_reply") or _get(item, "interactive", "list_reply")
        reply = reply if isinstance(reply, dict) else {}
        text, button = str(reply.get("title") or ""), str(reply.get("id") or "")
    else:
        found = item.get(kind)
        media: dict[str, Any] = found if isinstance(found, dict) else {}
        caption = str(media.get("caption") or media.get("name") or "")
        text = " ".join(
            part for part in (MEDIA.get(kind, f"[{kind or 'message'}]"), caption) if part
        )
    arrival = Arrival(
        ByLine("whatsapp", (line,)),
        "whatsapp",
        now,
        message_id=message_id,
        phone="+" + sender,
        name=names.get(sender, "")[:200],
        text=text[:MAX_TEXT],
        source="WhatsApp",
    )
    return arrival, button[:500]


def _status(item: Any) -> tuple[str, str, str]:
    if not isinstance(item, dict):
        raise _invalid("statuses")
    message_id, status = str(item.get("id") or ""), str(item.get("status") or "")
    if not message_id or len(message_id) > 200:
        raise _invalid("statuses.id")
    if status not in RANK or status == "queued":
        raise _invalid("statuses.status")
    found = item.get("errors")
    errors: list[Any] = found if isinstance(found, list) else []
    reasons = [
        f"{e.get('code')}: {_get(e, 'error_data', 'details') or e.get('title') or ''}"
        for e in errors
        if isinstance(e, dict)
    ]
    return message_id, status, "; ".join(reasons)


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _invalid(name: str) -> Invalid:
    return Invalid("The field %(name)s is not valid.", field=name, name=name)
