"""Outbound webhooks: endpoints of the agency or of one business subscribe to events of the live
event log; each event becomes one delivery per endpoint, signed per the Standard Webhooks
specification, sent by a job, retried with backoff, logged with its answer and replayable.

The event log is read per business by its gapless sequence (`webhook_cursors`), so an event
written by any process is turned into deliveries once, in order, whichever worker reads it. A
delivery is leased (a conditional UPDATE) before it is sent outside any transaction, as the
notifications are: a slow, failing or redirecting endpoint only ever holds up its own job.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from console.base.db import Database, dialect_of
from console.base.errors import Invalid, NotFound
from console.base.i18n import gettext, using_locale
from console.channels.notify import queue_notification
from console.channels.providers import check_public_url_async
from console.people.audit import Actor, record_action
from models import (
    Business,
    Contact,
    Event,
    Lead,
    User,
    WebhookCursor,
    WebhookDelivery,
    WebhookEndpoint,
)
from models.base import new_id

log = logging.getLogger("mazkira.webhooks")

EVENTS = (
    "lead.created",
    "lead.closed",
    "call.ended",
    "task.created",
    "task.done",
    "alert.raised",
    "survey.answered",
)
URL_LENGTH = WebhookEndpoint.url.property.columns[0].type.length or 2000
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# Longer than any send can take.
LEASE = timedelta(minutes=2)
# After the first failed attempt: 30 s, 2 min, 10 min, 30 min, 1 h, 3 h; then it fails for good.
BACKOFF = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=3),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
# Failed attempts in a row, with no success between, after which an endpoint is paused.
PAUSE_AFTER = 10
CONCURRENT_SENDS = 8
EVENTS_PER_RUN = 1000
RECENT = 10
ANSWER_LENGTH = 500


@dataclass(frozen=True)
class NewEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once


@dataclass
class EndpointView:
    endpoint: WebhookEndpoint
    business: str | None
    deliveries: list[WebhookDelivery] = field(default_factory=list)


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    paused: int = 0


def new_secret() -> str:
    """24 random bytes, as the specification writes a secret: `whsec_` and base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


async def checked_url(url: str, *, allow_private: bool) -> str:
    """An http(s) URL to a public address, unless private ones are allowed (the outbound guard
    the providers' adapters use)."""
    url = url.strip()
    if not url:
        raise Invalid("Enter the address to send to.", field="url")
    if len(url) > URL_LENGTH:
        raise Invalid("This text is too long.", field="url")
    try:
        await check_public_url_async(url, allow_private=allow_private)
    except ValueError:
        raise Invalid(
            "Only http or https addresses on the public internet can receive webhooks.",
            field="url",
        ) from None
    return url


def checked_events(events: Sequence[str]) -> list[str]:
    chosen = [event for event in EVENTS if event in set(events)]
    if not chosen or len(chosen) != len(set(events)):
        raise Invalid("Choose one or more of the events listed.", field="events")
    return chosen


async def create_endpoint(
    session: AsyncSession,
    actor: Actor,
    *,
    url: str,
    events: Sequence[str],
    business_id: uuid.UUID | None,
    allow_private: bool,
) -> NewEndpoint:
    """An endpoint of the agency (no business) or of one business, with a new signing secret."""
    chosen = checked_events(events)
    if business_id is not None and await session.get(Business, business_id) is None:
        raise Invalid("No such business.", field="business_id")
    url = await checked_url(url, allow_private=allow_private)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        id=new_id(),
        business_id=business_id,
        url=url,
        events=chosen,
        secret=secret,
        created_by_id=actor.user.id if actor.user else None,
        created_at=actor.now,
        failures=0,
    )
    session.add(endpoint)
    await session.flush()
    await record_action(
        session, actor, "webhook.created", business_id=business_id, url=url, events=chosen
    )
    return NewEndpoint(endpoint, secret)


async def endpoints(session: AsyncSession) -> list[EndpointView]:
    """Every endpoint, newest first, with its business and its recent deliveries (two
    statements)."""
    rows = await session.execute(
        select(WebhookEndpoint, Business.name)
        .outerjoin(Business, Business.id == WebhookEndpoint.business_id)
        .order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id.desc())
    )
    views = {endpoint.id: EndpointView(endpoint, name) for endpoint, name in rows}
    if views:
        ranked = (
            select(
                WebhookDelivery.id,
                func.row_number()
                .over(
                    partition_by=WebhookDelivery.endpoint_id,
                    order_by=(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()),
                )
                .label("n"),
            )
            .where(WebhookDelivery.endpoint_id.in_(list(views)))
            .subquery()
        )
        recent = await session.scalars(
            select(WebhookDelivery)
            .join(ranked, ranked.c.id == WebhookDelivery.id)
            .where(ranked.c.n <= RECENT)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        )
        for delivery in recent:
            views[delivery.endpoint_id].deliveries.append(delivery)
    return list(views.values())


async def business_choices(session: AsyncSession) -> list[tuple[uuid.UUID, str]]:
    """The businesses an endpoint may be limited to, by name."""
    rows = await session.execute(select(Business.id, Business.name).order_by(Business.name))
    return [(business_id, name) for business_id, name in rows]


async def _endpoint(session: AsyncSession, endpoint_id: uuid.UUID | str) -> WebhookEndpoint:
    try:
        wanted = endpoint_id if isinstance(endpoint_id, uuid.UUID) else uuid.UUID(endpoint_id)
    except ValueError:
        raise NotFound("Not found.") from None
    endpoint = await session.get(WebhookEndpoint, wanted)
    if endpoint is None:
        raise NotFound("Not found.")
    return endpoint


async def resume_endpoint(session: AsyncSession, actor: Actor, endpoint_id: str) -> None:
    """A paused endpoint sends again, its queued deliveries first."""
    endpoint = await _endpoint(session, endpoint_id)
    endpoint.paused_at, endpoint.failures = None, 0
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == "queued")
        .values(next_attempt_at=actor.now)
    )
    await record_action(session, actor, "webhook.resumed", business_id=endpoint.business_id)


async def delete_endpoint(session: AsyncSession, actor: Actor, endpoint_id: str) -> None:
    endpoint = await _endpoint(session, endpoint_id)
    await session.delete(endpoint)
    await record_action(
        session, actor, "webhook.deleted", business_id=endpoint.business_id, url=endpoint.url
    )


async def replay_delivery(session: AsyncSession, actor: Actor, delivery_id: str) -> None:
    """Send a delivery again, as it was (the same `webhook-id`, so a receiver that already has
    it can tell), whatever became of it."""
    try:
        wanted = uuid.UUID(delivery_id)
    except ValueError:
        raise NotFound("Not found.") from None
    delivery = await session.get(WebhookDelivery, wanted)
    if delivery is None:
        raise NotFound("Not found.")
    delivery.status, delivery.attempts, delivery.next_attempt_at = "queued", 0, actor.now
    await record_action(session, actor, "webhook.replayed", business_id=delivery.business_id)


# --- from the event log to deliveries -----------------------------------------------------------


async def collect_deliveries(session: AsyncSession, *, now: datetime) -> int:
    """Turn the events written since each business's cursor into deliveries for the endpoints
    that subscribe to them (one each, whoever runs this, however often); move the cursors."""
    active = list(
        await session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.paused_at.is_(None)))
    )
    if not active:
        return 0
    read_to = func.coalesce(WebhookCursor.seq, 0)
    # Events up to each business's committed sequence number: every one of them is committed
    # (a number is taken in the transaction that writes its event), so none is skipped.
    pending = (
        select(Business.id, read_to.label("after"), Business.event_seq)
        .outerjoin(WebhookCursor, WebhookCursor.business_id == Business.id)
        .where(Business.event_seq > read_to)
    )
    spans = (await session.execute(pending)).all()
    if not spans:
        return 0
    events = list(
        await session.scalars(
            select(Event)
            .where(
                or_(
                    *(
                        and_(Event.business_id == b, Event.seq > after, Event.seq <= last)
                        for b, after, last in spans
                    )
                )
            )
            .order_by(Event.id)
            .limit(EVENTS_PER_RUN)
        )
    )
    read: dict[uuid.UUID, int] = {}
    if len(events) < EVENTS_PER_RUN:
        read = {b: last for b, _after, last in spans}  # all read, past the gaps kept no longer
    wanted: list[tuple[Event, WebhookEndpoint]] = []
    for event in events:
        read[event.business_id] = max(read.get(event.business_id, 0), event.seq)
        if event.kind not in EVENTS:
            continue
        for endpoint in active:
            if (
                event.kind in endpoint.events
                and endpoint.business_id in (None, event.business_id)
                and event.created_at >= endpoint.created_at
            ):
                wanted.append((event, endpoint))
    leads = await _leads(session, {str(event.payload.get("lead_id") or "") for event, _ in wanted})
    rows = [_delivery_row(endpoint, event, leads, now) for event, endpoint in wanted]
    insert = postgresql.insert if dialect_of(session) == "postgresql" else sqlite.insert
    if rows:
        await session.execute(
            insert(WebhookDelivery)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
        )
    if read:
        statement = insert(WebhookCursor).values(
            [{"business_id": b, "seq": seq} for b, seq in read.items()]
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["business_id"],
                set_={"seq": statement.excluded.seq},
                where=WebhookCursor.seq < statement.excluded.seq,
            )
        )
    return len(rows)


async def _leads(session: AsyncSession, ids: set[str]) -> dict[str, dict[str, Any]]:
    """The leads the events name, as a receiver wants them beside the ids (one statement)."""
    wanted = []
    for text in ids - {""}:
        try:
            wanted.append(uuid.UUID(text))
        except ValueError:
            continue
    if not wanted:
        return {}
    rows = await session.execute(
        select(Lead, Contact)
        .join(Contact, Contact.id == Lead.contact_id)
        .where(Lead.id.in_(wanted))
    )
    return {
        str(lead.id): {
            "id": str(lead.id),
            "channel": lead.channel,
            "stage": lead.stage,
            "priority": lead.priority,
            "subject": lead.subject,
            "source": lead.source,
            "created_at": lead.created_at.astimezone(UTC).isoformat(),
            "closed_at": lead.closed_at.astimezone(UTC).isoformat() if lead.closed_at else None,
            "contact": {"name": contact.name, "phone": contact.phone, "email": contact.email},
        }
        for lead, contact in rows
    }


def _delivery_row(
    endpoint: WebhookEndpoint, event: Event, leads: dict[str, dict[str, Any]], now: datetime
) -> dict[str, Any]:
    data: dict[str, Any] = {"business_id": str(event.business_id), "seq": event.seq}
    data.update(event.payload)
    lead = leads.get(str(event.payload.get("lead_id") or ""))
    if lead is not None:
        data["lead"] = lead
    return {
        "id": new_id(),
        "endpoint_id": endpoint.id,
        "business_id": event.business_id,
        "event_id": event.id,
        "event_type": event.kind,
        "payload": {
            "type": event.kind,
            "timestamp": event.created_at.astimezone(UTC).isoformat(),
            "data": data,
        },
        "status": "queued",
        "attempts": 0,
        "next_attempt_at": now,
        "response_body": "",
        "last_error": "",
        "created_at": now,
    }


# --- sending ------------------------------------------------------------------------------------


async def send_due_deliveries(
    db: Database,
    http: httpx.AsyncClient,
    *,
    now: datetime,
    allow_private: bool,
    limit: int = 50,
) -> SendReport:
    """Send what is due to endpoints that are not paused, each delivery by one worker."""
    async with db.transaction(write=False) as session:
        due = list(
            await session.scalars(
                select(WebhookDelivery.id)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(
                    WebhookDelivery.status == "queued",
                    WebhookDelivery.next_attempt_at <= now,
                    WebhookEndpoint.paused_at.is_(None),
                )
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(limit)
            )
        )
    report = SendReport()
    gate = asyncio.Semaphore(CONCURRENT_SENDS)

    async def send_one(delivery_id: uuid.UUID) -> None:
        async with gate:
            leased = await _lease(db, delivery_id, now=now)
            if leased is not None:
                await _send(db, http, *leased, now=now, allow_private=allow_private, report=report)

    await asyncio.gather(*(send_one(delivery_id) for delivery_id in due))
    return report


async def _lease(
    db: Database, delivery_id: uuid.UUID, *, now: datetime
) -> tuple[WebhookDelivery, WebhookEndpoint] | None:
    async with db.transaction() as session:
        result = await session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "queued",
                WebhookDelivery.next_attempt_at <= now,
            )
            .values(next_attempt_at=now + LEASE, attempts=WebhookDelivery.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        delivery = await session.get_one(WebhookDelivery, delivery_id)
        endpoint = await session.get_one(WebhookEndpoint, delivery.endpoint_id)
        return delivery, endpoint


def signed_request(
    delivery: WebhookDelivery, secret: str, *, at: datetime
) -> tuple[bytes, dict[str, str]]:
    """The body and the Standard Webhooks headers: the delivery's id as `webhook-id` (the same
    on every retry and replay), the moment of sending as `webhook-timestamp`."""
    body = _json_bytes(delivery.payload)
    message_id = f"msg_{delivery.id.hex}"
    signature = Webhook(secret).sign(message_id, at, body)
    return body, {
        "content-type": "application/json",
        "user-agent": "Mazkira-Webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def _json_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


async def _send(
    db: Database,
    http: httpx.AsyncClient,
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    *,
    now: datetime,
    allow_private: bool,
    report: SendReport,
) -> None:
    status: int | None = None
    answer = error = ""
    try:
        await check_public_url_async(endpoint.url, allow_private=allow_private)
        # Signed at the moment it goes out: receivers refuse a timestamp minutes off their clock.
        body, headers = signed_request(delivery, endpoint.secret, at=datetime.now(UTC))
        # the client's timeouts (TIMEOUT in the job); a redirect is an answer, not followed
        response = await http.post(
            endpoint.url, content=body, headers=headers, follow_redirects=False
        )
        status, answer = response.status_code, response.text[:ANSWER_LENGTH]
        if not response.is_success:
            error = f"HTTP {status}" + (" (redirects are not followed)" if status < 400 else "")
    except ValueError as refused:
        error = f"refused: {refused}"
    except httpx.TimeoutException:
        error = "timed out"
    except httpx.HTTPError as broken:
        error = f"connection failed: {type(broken).__name__}"
    await _record(db, delivery, endpoint, status, answer, error[:ANSWER_LENGTH], now, report)


async def _record(
    db: Database,
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    status: int | None,
    answer: str,
    error: str,
    now: datetime,
    report: SendReport,
) -> None:
    logged = {"response_status": status, "response_body": answer, "last_error": error}
    async with db.transaction() as session:
        row = update(WebhookDelivery).where(
            WebhookDelivery.id == delivery.id,
            WebhookDelivery.status == "queued",
            WebhookDelivery.attempts == delivery.attempts,
        )
        if not error:
            await session.execute(row.values(status="sent", delivered_at=now, **logged))
            await session.execute(
                update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint.id).values(failures=0)
            )
            report.sent += 1
            return
        if delivery.attempts < MAX_ATTEMPTS:
            retry_at = now + BACKOFF[delivery.attempts - 1]
            await session.execute(row.values(next_attempt_at=retry_at, **logged))
            report.retried += 1
        else:
            await session.execute(row.values(status="failed", **logged))
            report.failed += 1
        log.warning("webhook delivery %s to %s failed: %s", delivery.id, endpoint.url, error)
        failures = await session.scalar(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint.id)
            .values(failures=WebhookEndpoint.failures + 1)
            .returning(WebhookEndpoint.failures)
        )
        if failures is not None and failures >= PAUSE_AFTER:
            paused = await session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.paused_at.is_(None))
                .values(paused_at=now)
            )
            if paused.rowcount == 1:  # type: ignore[attr-defined]
                report.paused += 1
                await _tell_admin(session, endpoint, delivery.business_id, error, now)


async def _tell_admin(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    business_id: uuid.UUID,
    error: str,
    now: datetime,
) -> None:
    """The admin who made the endpoint hears that it was paused, and why, by e-mail."""
    admin = await session.get(User, endpoint.created_by_id) if endpoint.created_by_id else None
    if admin is None or not admin.active:
        log.warning("webhook endpoint %s paused; nobody to tell", endpoint.id)
        return
    with using_locale(admin.locale):
        subject = gettext("Mazkira paused a webhook: %(url)s") % {"url": endpoint.url}
        body = gettext(
            "After %(count)s failed attempts in a row, nothing more is sent to %(url)s. "
            "The last answer: %(error)s. Resume it on the agency's webhooks page once it answers "
            "again: what was queued meanwhile goes out then."
        ) % {"count": PAUSE_AFTER, "url": endpoint.url, "error": error}
    await queue_notification(
        session,
        key=f"webhook-paused:{endpoint.id}:{now.isoformat()}",
        business_id=business_id,
        user_id=admin.id,
        channel="email",
        recipient=admin.email,
        subject=subject[:300],
        body=body,
        now=now,
    )
