"""The live console: `/ws`, and the fragments pushed through it.

A page opens one socket (htmx's ws extension) and says hello: which page it shows and the last
sequence number it has seen of each business. It gets what it missed, then every event of its
businesses as out-of-band fragments rendered from the same partial templates as the pages.
Every message starts with `<!--mz {"b": business, "s": seq}-->` so the page keeps its cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager, nullcontext
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from jinja2_fragments import render_block
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocket, WebSocketDisconnect

from console.base.db import Database
from console.base.errors import NotFound
from console.base.i18n import DEFAULT_FORM, addressing, current_locale, using_locale
from console.leads.leads import QueueRow, get_lead
from console.live import events as event_log
from console.live.events import LiveEvent
from console.live.hub import Audience, Connection, Hub
from console.people import auth
from console.people.tenancy import LiveAccess, live_access
from console.screens import live
from console.screens.alerts_page import alert_row
from console.screens.lead_page import contact_history
from console.screens.overview import handled_row
from console.tasks.paging import pages_of_lead
from console.voice import calls, states
from models import User
from routes.templating import env

log = logging.getLogger("mazkira.live")
MAX_FRAME = 16_384
PAGES = ("queue", "tasks", "portal", "alerts", "wallboard", "other")
ALERT_EVENTS = frozenset({"alert.raised", "alert.acknowledged"})
LEAD_EVENTS = frozenset(
    {
        "lead.created",
        "lead.claimed",
        "lead.released",
        "lead.updated",
        "lead.closed",
        "interaction.started",
        "interaction.logged",
    }
)
# A secretary asks the holder for a lead, and the holder keeps it: only the lead's pages hear.
TAKEOVER_EVENTS = {"lead.takeover_asked": "asked", "lead.takeover_kept": "kept"}
TASK_EVENTS = frozenset({"task.created", "task.done", "task.cancelled", "task.reopened"})
# An urgent hand-off's pages: the lead's page redraws who has it now.
PAGE_EVENTS = frozenset({"page.sent", "page.passed", "page.acknowledged", "page.exhausted"})
# The wallboard fetches its board again (throttled in the page) when one of these happens.
WALLBOARD_EVENTS = LEAD_EVENTS | ALERT_EVENTS | {"presence.changed", "duty.changed", "agent.state"}
WALLBOARD_REFRESH = '<template data-refresh="wallboard"></template>'


def same_origin(websocket: WebSocket) -> bool:
    """Browsers always send Origin on a websocket; it must be this site."""
    origin = websocket.headers.get("origin")
    host = websocket.headers.get("host")
    return bool(origin and host and urlsplit(origin).netloc == host)


async def live_socket(websocket: WebSocket) -> None:
    state = websocket.scope.get("state", {})
    user = state.get("user")
    if user is None or not same_origin(websocket):
        await websocket.close(code=1008)  # before accept: the handshake is refused (403)
        return
    app = websocket.app
    access = await _access_of(app.state.db, str(user.id))
    if access is None or access.role != user.role:
        await websocket.close(code=1008)
        return
    connection = Connection(
        user_id=str(user.id),
        user_name=user.name,
        session_id=state.get("session_id") or "",
        role=user.role,
        locale=current_locale(),
        businesses=access.businesses,
    )
    await websocket.accept()
    hub: Hub = app.state.hub
    connection.hold()  # until the first hello's replay is queued
    hub.join(connection)
    await _agent_presence(app, connection, opened=True)
    sender = asyncio.create_task(_send_outbox(websocket, connection))
    try:
        await _receive(websocket, connection, hub, app.state.db, user)
    finally:
        connection.close(connection.close_code)
        await hub.leave(connection)
        _GOING.add(task := asyncio.create_task(_agent_presence(app, connection, opened=False)))
        task.add_done_callback(_GOING.discard)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(sender, 2)


# Going from page to page closes one socket and opens the next: she is offline only when no
# console of hers is open this long after her last one closed.
OFFLINE_AFTER = 5.0
_GOING: set[asyncio.Task[None]] = set()


async def _agent_presence(app: Any, connection: Connection, *, opened: bool) -> None:
    """A secretary's console opening brings her back (available, or to her break); her last
    one closing, in any process, takes her offline, so calls stop ringing for her."""
    if connection.role != "secretary":
        return
    if not opened:
        await asyncio.sleep(OFFLINE_AFTER)
        if connection.user_id in app.state.hub.on_duty():
            return
    user_id, change = (
        uuid.UUID(connection.user_id),
        states.came_online if opened else states.went_offline,
    )
    try:
        async with app.state.db.transaction(write=False) as session:  # mostly nothing to do
            if not await states.moves_with_console(session, user_id, opened=opened):
                return
        async with app.state.db.transaction() as session:
            await change(session, user_id, now=app.state.clock.now())
        if not opened and connection.user_id in app.state.hub.on_duty():
            # A console of hers opened while she was being taken offline: its own look found
            # her not yet offline and did nothing, so bring her back here.
            async with app.state.db.transaction() as session:
                await states.came_online(session, user_id, now=app.state.clock.now())
    except Exception:  # the database away: her state waits for her next socket
        log.warning("agent state of %s not moved", connection.user_id, exc_info=True)


async def _send_outbox(websocket: WebSocket, connection: Connection) -> None:
    try:
        while (message := await connection.outbox.get()) is not None:
            await websocket.send_text(message)
    except (WebSocketDisconnect, RuntimeError, OSError):
        connection.close(1006)
        return
    with contextlib.suppress(RuntimeError, OSError):
        await websocket.close(code=connection.close_code)


async def _receive(
    websocket: WebSocket, connection: Connection, hub: Hub, db: Database, user: Any
) -> None:
    while not connection.closed:
        try:
            message = await asyncio.wait_for(
                websocket.receive(), websocket.app.state.settings.live_revalidate_seconds
            )
        except TimeoutError:
            # A backstop for changes no hub heard of (a user deactivated or an assignment
            # removed straight in the database, another deployment): the socket follows the
            # session and the user's access.
            await _check_again(websocket, connection, hub, db)
            continue
        if message["type"] == "websocket.disconnect":
            connection.close(1000)
            return
        raw = message.get("text")
        if raw is None or len(raw) > MAX_FRAME:
            connection.close(1009 if raw else 1003)  # too big, or not text
            return
        try:
            hello = json.loads(raw)
        except ValueError:
            connection.close(1003)
            return
        if not isinstance(hello, dict) or hello.get("type") not in ("hello", "ping"):
            connection.close(1003)
            return
        if hello["type"] == "hello":
            await _hello(hello, connection, hub, db, user)
            await hub.greet(connection)


async def _check_again(
    websocket: WebSocket, connection: Connection, hub: Hub, db: Database
) -> None:
    settings = websocket.app.state.settings
    async with db.transaction(write=False) as session:
        live = await auth.session_is_live(
            session, settings, connection.session_id, now=datetime.now(UTC)
        )
        access = (await live_access(session, [connection.user_id])) if live else {}
    await hub.regrant(connection, access.get(connection.user_id))


async def _access_of(db: Database, user_id: str) -> LiveAccess | None:
    async with db.transaction(write=False) as session:
        return (await live_access(session, [user_id])).get(user_id)


async def read_access(db: Database, user_ids: Collection[str]) -> dict[str, LiveAccess]:
    """The hub's reader of its sockets' access (`Hub.refresh_access`): one read for them all."""
    async with db.transaction(write=False) as session:
        return await live_access(session, user_ids)


async def _hello(
    hello: dict[str, Any], connection: Connection, hub: Hub, db: Database, user: Any
) -> None:
    """Where the page is, and what it has seen: move presence there and replay what it missed
    of the businesses its user may see now."""
    page, mode = str(hello.get("page", "other")), str(hello.get("mode", "viewing"))
    cursor, since = hello.get("cursor") or {}, hello.get("since")
    if not isinstance(cursor, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in cursor.items()
    ):
        connection.close(4400)
        return
    if not page.startswith("lead:") and page not in PAGES:
        connection.close(4400)
        return
    # Live events are held back from here until the replay, read after this point, has been
    # queued: each event is in the replay or among the held (or both; the page drops the repeat
    # by its number), and never ahead of an earlier one. The first hello uses the hold the
    # socket opened with.
    if connection.greeted:
        connection.hold()
    async with db.transaction(write=False) as session:
        access = (await live_access(session, [connection.user_id])).get(connection.user_id)
        if access is None or access.role != connection.role:
            connection.close(4401)  # deactivated, or of another role (its session has ended)
            return
        lead = None
        if page.startswith("lead:"):
            try:
                lead = await get_lead(session, user, page.removeprefix("lead:"))
            except NotFound:
                connection.close(4404)
                return
    business = str(lead.business_id) if lead else next(iter(sorted(connection.businesses)), "")
    await hub.move(connection, page, "calling" if mode == "calling" else "viewing", business)
    # What the user may see now (an assignment may have gone since the page was drawn): the
    # socket carries that from here, and a cursor's other businesses are left out of the replay.
    await hub.regrant(connection, access)
    cursor = {b: seq for b, seq in cursor.items() if b in connection.businesses}
    async with db.transaction(write=False) as session:
        latest = await event_log.latest_seqs(session)
        if any(seq > latest.get(b, 0) for b, seq in cursor.items()):
            connection.resume([("", reload_message())])
            connection.close(4409)  # a sequence number from the future: the page is stale
            return
        replay = await event_log.events_after(session, cursor)
        unseen = sorted(connection.businesses - set(cursor))
        from_time = (
            await live.events_since_time(
                session, unseen, _parse_time(since), limit=event_log.REPLAY_LIMIT
            )
            if unseen
            else []
        )
    messages: list[tuple[str, str]] = []
    for event in sorted([*replay.events, *from_time], key=lambda e: e.id):
        html = await hub.render(event, _audience(connection, event.business_id))
        if html:
            messages.append((event.business_id, html))
    if replay.gaps or len(from_time) >= event_log.REPLAY_LIMIT:
        messages.append(("", reload_message()))
    connection.resume(messages)


def _audience(connection: Connection, business_id: str) -> Audience:
    return Audience(business_id, connection.locale, connection.role, connection.page)


def _parse_time(raw: object) -> datetime:
    try:
        moment = datetime.fromisoformat(str(raw))
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def reload_message() -> str:
    return '<!--mz {}--><template data-reload="1"></template>'


# While a commit's events are rendered (`Fragments.batch`), the read session they share.
_SHARED_READ: ContextVar[AsyncSession | None] = ContextVar("shared_read", default=None)


class Fragments:
    """Renders an event for one audience: the hub calls this once per audience, not per client."""

    def __init__(self, db: Database, hub_viewers: Any) -> None:
        self.db = db
        self.viewers = hub_viewers

    async def __call__(self, event: LiveEvent, audience: Audience) -> str | None:
        # An audience shares one rendering, so it reads in the neutral form, whoever's request
        # committed the event (the form of address is that request's context otherwise).
        with using_locale(audience.locale), addressing(DEFAULT_FORM):
            parts = await self._parts(event, audience)
        if not parts:
            return None
        meta = json.dumps({"b": event.business_id, "s": event.seq, "t": event.published_at})
        return f"<!--mz {meta}-->" + "".join(parts)

    async def _parts(self, event: LiveEvent, audience: Audience) -> list[str]:
        if event.kind == "access.changed":  # its user's businesses changed: draw it again
            return [f'<template data-reload="{event.payload["reload"]}"></template>']
        lead_id = str(event.payload.get("lead_id") or "")
        page = audience.page
        if page == "wallboard" and event.kind in WALLBOARD_EVENTS:
            return [WALLBOARD_REFRESH]
        if event.kind in TAKEOVER_EVENTS:
            if page != f"lead:{lead_id}":
                return []
            return [self._takeover(lead_id, {**event.payload, "kind": TAKEOVER_EVENTS[event.kind]})]
        if event.kind == "call.ringing":
            return await self._ringing(event, audience)
        if event.kind == "agent.own_state":
            return await self._own_state(audience)
        if event.kind == "presence.changed":
            where = "row" if page == "queue" else "page" if page == f"lead:{lead_id}" else None
            if where is None:
                return []
            return [self._presence(where, lead_id)]
        parts: list[str] = []
        attention = event.kind == "lead.created" and audience.role != "owner"
        shared = _SHARED_READ.get()
        reading = self.db.transaction(write=False) if shared is None else nullcontext(shared)
        try:
            async with reading as session:
                row = None
                if (event.kind in LEAD_EVENTS and page == "queue") or attention:
                    row = await live.queue_row(session, event.business_id, lead_id)
                if event.kind in LEAD_EVENTS and page == "queue":
                    parts += self._queue_row(row, event, lead_id)
                if event.kind in LEAD_EVENTS | TASK_EVENTS and page == f"lead:{lead_id}":
                    parts += await self._lead_page(session, event, lead_id, audience)
                if event.kind in PAGE_EVENTS and page == f"lead:{lead_id}":
                    parts += await self._pages(session, event, lead_id)
                if event.kind in TASK_EVENTS and page == "tasks":
                    parts += await self._task_row(session, event)
                if event.kind == "interaction.logged" and page == "portal":
                    parts += await self._handled_row(session, event)
                if event.kind in ALERT_EVENTS and audience.role != "owner":
                    parts += await self._alert(session, event, audience)
                if event.kind in ("interaction.started", "lead.closed") and page == "alerts":
                    parts.append('<template data-reload="1"></template>')
        except Exception:
            if shared is not None:  # the rest of the commit's events read on their own
                _SHARED_READ.set(None)
            raise
        if attention and row is not None:
            parts.append(env.get_template("partials/attention.html").render(row=row))
        return parts

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """The events of one commit rendered in one read transaction (a new lead's row and its
        attention banner were a transaction each, which on SQLite cost more than the query)."""
        async with self.db.transaction(write=False) as session:
            token = _SHARED_READ.set(session)
            try:
                yield
            finally:
                _SHARED_READ.reset(token)

    async def _ringing(self, event: LiveEvent, audience: Audience) -> list[str]:
        """Her ringing banner, pushed to her consoles as the call is routed to her (before her
        phone has the INVITE), with how long it rings her (phone.js shows it at once)."""
        shared = _SHARED_READ.get()
        reading = self.db.transaction(write=False) if shared is None else nullcontext(shared)
        async with reading as session:
            user = await session.get(User, uuid.UUID(audience.user))
            if user is None:
                return []
            try:
                banner = await calls.ringing_banner(
                    session, user, str(event.payload["call_id"]), now=datetime.now(UTC)
                )
            except NotFound:  # answered, taken or over meanwhile
                return []
        template = env.get_template("partials/ringing_pushed.html")
        return [template.render(banner=banner, seconds=int(event.payload.get("seconds") or 20))]

    async def _own_state(self, audience: Audience) -> list[str]:
        """Her state in her own top bar, the block `/agent/state` draws, in her form of address."""
        shared = _SHARED_READ.get()
        reading = self.db.transaction(write=False) if shared is None else nullcontext(shared)
        now = datetime.now(UTC)
        async with reading as session:
            user = await session.get(User, uuid.UUID(audience.user))
            if user is None:
                return []
            standing = (await states.standings(session, [user.id], now=now))[user.id]
        context = {"standing": standing, "now": now, "csrf_token": "", "oob": True}
        with addressing(user.addressed_as):
            return [render_block(env, "agents/state.html", "agent_state", context)]

    def _queue_row(self, row: QueueRow | None, event: LiveEvent, lead_id: str) -> list[str]:
        refresh = '<template data-refresh="queue"></template>'
        if row is None or event.kind == "lead.closed":
            return [f'<tr id="lead-{lead_id}" hx-swap-oob="delete"></tr>', refresh]
        html = env.get_template("partials/lead_row.html").render(
            row=row,
            upsert=True,
            now=datetime.now(UTC),
            csrf_token="",
            viewers_of=self._viewers_of,
        )
        return [html, refresh]

    async def _lead_page(
        self, session: Any, event: LiveEvent, lead_id: str, audience: Audience
    ) -> list[str]:
        lead = await live.lead_with_people(session, event.business_id, lead_id)
        if lead is None:
            return []
        context = {
            "lead": lead,
            "role": audience.role,
            "csrf_token": "",
            "now": datetime.now(UTC),
            "secretaries": [],
            "viewers": self.viewers(lead_id),
            "where": "page",
        }
        parts = [env.get_template("partials/lead_head.html").render(context)]
        if event.kind == "lead.claimed":  # a take-over asked before is answered by this
            parts.append(self._takeover(lead_id, None))
        if event.kind in TASK_EVENTS:
            tasks = await live.lead_tasks(session, lead)
            parts.append(
                env.get_template("partials/lead_tasks.html").render(lead=lead, lead_tasks=tasks)
            )
        else:
            history = await contact_history(session, lead)
            parts.append(env.get_template("partials/history.html").render(history=history))
            conversation = env.get_template("partials/conversation.html")
            parts.append(conversation.render(history=history, lead=lead))
        return parts

    async def _pages(self, session: Any, event: LiveEvent, lead_id: str) -> list[str]:
        lead = await live.lead_with_people(session, event.business_id, lead_id)
        if lead is None:
            return []
        pages = await pages_of_lead(session, lead.id)
        return [env.get_template("partials/on_call.html").render(lead=lead, pages=pages)]

    async def _task_row(self, session: Any, event: LiveEvent) -> list[str]:
        task = await live.task_for_row(session, event.business_id, str(event.payload["task_id"]))
        if task is None:
            return []
        html = env.get_template("partials/task_row.html").render(
            task=task, upsert=True, now=datetime.now(UTC), csrf_token=""
        )
        return [html]

    async def _handled_row(self, session: Any, event: LiveEvent) -> list[str]:
        interaction_id = str(event.payload["interaction_id"])
        item = await handled_row(session, event.business_id, interaction_id)
        if item is None:
            return []
        return [env.get_template("partials/handled_row.html").render(item=item, upsert=True)]

    async def _alert(self, session: Any, event: LiveEvent, audience: Audience) -> list[str]:
        """On the panel: the row appears or goes. Everywhere: a breach sounds for the admins, a
        warning or breach for the business's secretaries."""
        alert_id = str(event.payload["alert_id"])
        if event.kind == "alert.acknowledged":  # the lead's one row, or the task alert's
            lead_id, kind = event.payload.get("lead_id"), event.payload.get("alert_kind")
            row_id = f"alert-lead-{lead_id}" if kind == "first_response" else f"alert-{alert_id}"
            return [f'<tr id="{row_id}" hx-swap-oob="delete"></tr>']
        row = await alert_row(session, event.business_id, alert_id)
        if row is None:
            return []
        parts = []
        if audience.page == "alerts":
            parts.append(
                env.get_template("partials/alert_row.html").render(
                    alert=row, upsert=True, now=datetime.now(UTC), csrf_token=""
                )
            )
        if audience.role == "secretary" or row.level == "breach":
            parts.append(env.get_template("partials/attention.html").render(alert=row))
        return parts

    def _takeover(self, lead_id: str, takeover: dict[str, Any] | None) -> str:
        return env.get_template("partials/takeover.html").render(
            lead_id=lead_id, takeover=takeover, oob=True
        )

    def _presence(self, where: str, lead_id: str) -> str:
        return env.get_template("partials/presence.html").render(
            where=where, lead_id=lead_id, viewers=self.viewers(lead_id)
        )

    def _viewers_of(self, lead_id: uuid.UUID | str) -> list[tuple[str, str, str]]:
        return self.viewers(str(lead_id))  # type: ignore[no-any-return]
