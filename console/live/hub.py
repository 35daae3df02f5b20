"""The live hub: who is connected, and getting each event to exactly the consoles that may see it.

Transport-agnostic: a connection is anything with a bounded outbox of HTML strings. The hub
renders an event once per audience (business, locale, role, page) through the `render` callback
the web layer gives it, never once per client. Events reach the hub through a broker: in-process
(embedded) or Redis pub/sub (several web processes), which also carries presence and "close
these sockets" orders between processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Iterable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from console.live.duty import Duty, busiest, place_of
from console.live.events import LiveEvent
from console.people.tenancy import AccessChanged, LiveAccess

log = logging.getLogger("mazkira.hub")

CHANNEL = "mazkira:live"
OUTBOX_LIMIT = 200  # messages waiting for one slow client before it is dropped
PRESENCE_EVERY = 15.0  # seconds between a process's presence reports
PRESENCE_TTL = 45.0  # a process not heard from for this long has no viewers


@dataclass(frozen=True)
class Audience:
    """Everything a fragment may depend on; clients sharing it get the same HTML."""

    business_id: str
    locale: str
    role: str
    page: str  # "queue", "lead:<id>", "tasks", "portal" or "other"
    user: str = ""  # an event for some people only (a call ringing them): each her own


@dataclass(eq=False)
class Connection:
    user_id: str
    user_name: str
    session_id: str
    role: str
    locale: str
    businesses: frozenset[str]  # what it may carry now; the hub changes it with the user's access
    page: str = "other"
    mode: str = "viewing"  # or "calling" on a lead page with the call log open
    outbox: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(OUTBOX_LIMIT))
    closed: bool = False
    close_code: int = 1000
    # Live messages kept back (business, message) while a replay or the user's access is read.
    held: list[tuple[str, str]] | None = None
    holds: int = 0
    greeted: bool = False  # its first hello has been answered (that one used the opening hold)
    drawn_with: frozenset[str] | None = None  # its businesses when it joined

    def offer(self, message: str, *, business: str = "", numbered: bool = True) -> bool:
        """Queue a message; a client too slow to keep up is cut off, not waited for. While a
        replay or an access is read, numbered messages wait for it (presence, unnumbered, goes
        at once). A message of a business it may not carry (any more) is dropped here too."""
        if self.closed:
            return False
        if business and business not in self.businesses:
            return True
        if self.held is not None and numbered:
            if len(self.held) >= OUTBOX_LIMIT:
                self.close(1013)
                return False
            self.held.append((business, message))
            return True
        try:
            self.outbox.put_nowait(message)
        except asyncio.QueueFull:
            self.close(1013)
            return False
        return True

    def hold(self) -> None:
        """Keep live messages back until `resume`: a replay read meanwhile must go first, or
        the page would see a later number before the earlier ones and drop those; while its
        user's access is read again, nothing goes out on the access it had."""
        self.holds += 1
        if self.held is None:
            self.held = []

    def resume(self, replay: Iterable[tuple[str, str]] = ()) -> None:
        """Queue the replay ahead of what was held back, and once nothing holds it any more
        send them all, less what its access no longer covers."""
        self.held = [*replay, *(self.held or [])]
        self.holds = max(self.holds - 1, 0)
        if self.holds:
            return
        waiting, self.held = self.held, None
        for business, message in waiting:
            if not self.offer(message, business=business):
                return

    def close(self, code: int = 1000) -> None:
        if self.closed:
            return
        self.closed, self.close_code = True, code
        with contextlib.suppress(asyncio.QueueFull):
            self.outbox.put_nowait(None)
        if self.outbox.full():  # make room for the closing sentinel
            with contextlib.suppress(asyncio.QueueEmpty):
                self.outbox.get_nowait()
            self.outbox.put_nowait(None)

    @property
    def lead(self) -> str | None:
        return self.page.removeprefix("lead:") if self.page.startswith("lead:") else None


Render = Callable[[LiveEvent, Audience], Awaitable[str | None]]
# Reads what each of these users may follow now (`tenancy.live_access`); a user left out may
# follow nothing.
ReadAccess = Callable[[Collection[str]], Awaitable[dict[str, LiveAccess]]]
# Pages that list several businesses' rows: when the businesses change they are drawn again.
LISTS = frozenset({"queue", "tasks", "alerts", "portal", "wallboard"})


class Broker(Protocol):
    async def start(self, receive: Callable[[dict[str, Any]], Awaitable[None]]) -> None: ...
    async def send(self, message: dict[str, Any]) -> None: ...
    async def stop(self) -> None: ...


class LocalBroker:
    """One process: a message is delivered to this process's hub at once."""

    def __init__(self) -> None:
        self.receive: Callable[[dict[str, Any]], Awaitable[None]] | None = None

    async def start(self, receive: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self.receive = receive

    async def send(self, message: dict[str, Any]) -> None:
        if self.receive is not None:
            await self.receive(message)

    async def stop(self) -> None:
        self.receive = None


class RedisBroker:
    """Several processes: every message goes through one Redis pub/sub channel to all of them."""

    def __init__(self, redis: Redis, channel: str | None = None) -> None:
        self.redis = redis
        # Pub/sub channels are shared by all of a Redis server's databases: name ours after ours.
        database = redis.connection_pool.connection_kwargs.get("db", 0)
        self.channel = channel or f"{CHANNEL}:{database}"
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self, receive: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self.task = asyncio.create_task(self._listen(receive))
        await asyncio.wait_for(self.ready.wait(), 10)

    async def _listen(self, receive: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        delay = 0.2
        lost = False
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.ready.set()
                    delay = 0.2
                    if lost:  # what was published meanwhile never came: consoles catch up
                        lost = False
                        await receive({"type": "resumed"})
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        try:
                            await receive(json.loads(message["data"]))
                        except Exception:
                            log.exception("live message could not be delivered")
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as error:
                # Consoles resume from their cursors when they reconnect; nothing is lost.
                log.warning("redis pub/sub lost (%s); retrying in %.1fs", error, delay)
                lost = True
                self.ready.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def send(self, message: dict[str, Any]) -> None:
        await self.redis.publish(self.channel, json.dumps(message))

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


class Hub:
    def __init__(self, broker: Broker, render: Render, access: ReadAccess | None = None) -> None:
        self.broker = broker
        self.render = render
        self.access = access  # None: this hub has no sockets to keep current (a worker's)
        # Opened around the rendering of one commit's events (the app shares a read session).
        self.batch: Callable[[], AbstractAsyncContextManager[object]] = nullcontext
        self.process = uuid.uuid4().hex
        self.connections: set[Connection] = set()
        self.by_business: dict[str, set[Connection]] = defaultdict(set)
        self.latest: dict[str, int] = {}
        # presence[lead][process] = (reported at, [(user id, name, mode), ...])
        self.presence: dict[str, dict[str, tuple[float, list[tuple[str, str, str]]]]] = {}
        self.lead_business: dict[str, str] = {}
        # duty[process] = (reported at, [(user id, where), ...]): the secretaries it has connected
        self.duty: dict[str, tuple[float, Duty]] = {}
        self.duty_sent: Duty | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self, latest: dict[str, int]) -> None:
        self.latest = dict(latest)
        await self.broker.start(self._receive)
        self.task = asyncio.create_task(self._report_presence_forever())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for connection in list(self.connections):
            connection.close(1012)  # service restart: clients reconnect and resume
        await self.broker.stop()

    # --- connections --------------------------------------------------------------------------

    def join(self, connection: Connection) -> None:
        if connection.drawn_with is None:
            connection.drawn_with = connection.businesses
        self.connections.add(connection)
        for business in connection.businesses:
            self.by_business[business].add(connection)

    async def leave(self, connection: Connection) -> None:
        self.connections.discard(connection)
        for business in connection.businesses:
            self.by_business[business].discard(connection)
        if connection.lead:
            await self._presence_changed(connection.lead)
        await self._duty_changed()

    async def move(self, connection: Connection, page: str, mode: str, business: str) -> None:
        """The client said which page it shows; presence follows it."""
        before = connection.lead
        connection.page, connection.mode = page, mode
        if connection.lead:
            self.lead_business[connection.lead] = business
        for lead in {before, connection.lead} - {None}:
            await self._presence_changed(lead)  # type: ignore[arg-type]
        await self._duty_changed()

    def cursor_for(self, businesses: Iterable[str]) -> dict[str, int]:
        return {b: self.latest.get(b, 0) for b in businesses}

    # --- publishing -----------------------------------------------------------------------------

    async def publish(self, items: list[Any]) -> None:
        """Called after a commit: hand its access changes, then its events, to every process
        (this one included)."""
        changes = [item for item in items if isinstance(item, AccessChanged)]
        if changes:
            await self._access_changed(changes)
        events = [item for item in items if isinstance(item, LiveEvent)]
        if not events:
            return
        # In one process the events are rendered here and now: for all of them, one read (and
        # none when no console of their businesses is open).
        listened = any(self.by_business.get(event.business_id) for event in events)
        local = isinstance(self.broker, LocalBroker) and listened
        async with self.batch() if local else nullcontext():
            for event in events:
                stamped = replace(event, published_at=time.time())
                try:
                    await self.broker.send({"type": "event", "event": stamped.as_dict()})
                except (RedisError, OSError):
                    log.warning("event %s not published; consoles catch up on reconnect", event.id)

    async def _access_changed(self, changes: list[AccessChanged]) -> None:
        everyone = any(change.users is None for change in changes)
        users = sorted({user for change in changes for user in change.users or ()})
        message = {"type": "access", "users": None if everyone else users}
        try:
            await self.broker.send(message)
        except (RedisError, OSError):
            # The other processes' sockets learn it at their next quiet re-check.
            log.warning("access change not published; reading it for this process only")
            await self._receive(message)

    async def end_sessions(
        self, *, session_id: str | None = None, user_id: str | None = None
    ) -> None:
        """Close the sockets of a session (logout) or of a user (deactivation), everywhere."""
        message = {"type": "close", "session_id": session_id, "user_id": user_id}
        try:
            await self.broker.send(message)
        except (RedisError, OSError):
            await self._receive(message)

    async def _receive(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "event":
            await self.deliver(LiveEvent.from_dict(message["event"]))
        elif kind == "close":
            for connection in list(self.connections):
                if connection.session_id == message.get("session_id") or (
                    connection.user_id == message.get("user_id")
                ):
                    connection.close(4401)
        elif kind == "access":
            users = message.get("users")
            await self.refresh_access(None if users is None else {str(u) for u in users})
        elif kind == "resumed":
            # Events published while the broker was away were lost on the way: each page
            # reconnects and gets them from its cursor, in order (as after a restart).
            for connection in list(self.connections):
                connection.close(1012)
        elif kind == "presence" and message.get("process") != self.process:
            self._store_presence(message)
            await self._fan_out_presence(message["lead"], message["business"])
        elif kind == "duty":
            people = [(str(user), str(where)) for user, where in message.get("people", [])]
            before = self.duty.get(message["process"])
            self.duty[message["process"]] = (time.monotonic(), people)
            if before is None or before[1] != people:
                await self._refresh_wallboards()

    async def deliver(self, event: LiveEvent) -> None:
        """Render the event once per audience and queue it for each of its clients."""
        if event.seq > self.latest.get(event.business_id, 0):
            self.latest[event.business_id] = event.seq
        audiences: dict[Audience, list[Connection]] = defaultdict(list)
        to = event.payload.get("to")  # only these users' consoles, whatever their page
        for connection in self.by_business.get(event.business_id, ()):
            if connection.closed:
                continue
            if to is None:
                audience = Audience(
                    event.business_id, connection.locale, connection.role, connection.page
                )
            elif connection.user_id in to:
                audience = Audience(
                    event.business_id, connection.locale, connection.role, "", connection.user_id
                )
            else:
                continue
            audiences[audience].append(connection)
        await self._offer(event, audiences)

    async def _offer(self, event: LiveEvent, audiences: dict[Audience, list[Connection]]) -> None:
        for audience, connections in audiences.items():
            try:
                html = await self.render(event, audience)
            except Exception:
                log.exception("could not render %s for %s", event.kind, audience)
                continue
            if html:
                for connection in connections:
                    connection.offer(html, business=event.business_id, numbered=event.seq > 0)

    # --- access -----------------------------------------------------------------------------------

    async def refresh_access(self, users: set[str] | None) -> None:
        """Read again what the sockets of these users (None: of everyone) may carry, and carry
        that from now on. Their live messages wait meanwhile, so none goes out on the old
        access; one read for all of this process's sockets, however many."""
        affected = [
            c for c in self.connections if not c.closed and (users is None or c.user_id in users)
        ]
        if not affected or self.access is None:
            return
        for connection in affected:
            connection.hold()
        try:
            found = await self.access({c.user_id for c in affected})
        except Exception:
            # Unknown access carries nothing: the pages reconnect and say hello, which reads it.
            log.exception("could not read the access of %d sockets", len(affected))
            found = None
        for connection in affected:
            if found is None:
                connection.close(1012)
            else:
                await self.regrant(connection, found.get(connection.user_id))
            connection.resume()

    async def regrant(self, connection: Connection, access: LiveAccess | None) -> None:
        """Give the connection what its user may follow now. A user gone, deactivated or of
        another role is signed out (4401); a page that showed a business lost is drawn again
        (the whole page for a lead of it), as is a list when a business is added."""
        if connection.closed or connection not in self.connections:
            return
        if access is None or access.role != connection.role:
            connection.close(4401)
            return
        lost = connection.businesses - access.businesses
        gained = access.businesses - connection.businesses
        if not lost and not gained:
            return
        for business in lost:
            self.by_business[business].discard(connection)
        for business in gained:
            self.by_business[business].add(connection)
        connection.businesses = access.businesses
        lead = connection.lead
        if lead is not None and self.lead_business.get(lead) in lost:
            reload = "page"
        elif connection.page in LISTS:
            reload = "main"
        else:
            return
        event = LiveEvent(0, "", 0, "access.changed", {"reload": reload})
        await self._offer(event, {_audience_of(connection, ""): [connection]})

    async def greet(self, connection: Connection) -> None:
        """Its first hello has been answered. A change of access between the socket's opening
        and that hello found a page of no known kind, so a list was not drawn again then: it is
        now, if its businesses are not those it opened with."""
        if connection.greeted:
            return
        connection.greeted = True
        if connection.page in LISTS and connection.businesses != connection.drawn_with:
            event = LiveEvent(0, "", 0, "access.changed", {"reload": "main"})
            await self._offer(event, {_audience_of(connection, ""): [connection]})

    # --- presence -------------------------------------------------------------------------------

    def viewers(self, lead: str) -> list[tuple[str, str, str]]:
        """Who has this lead open, in every process: (user id, name, mode), callers first."""
        now = time.monotonic()
        found: dict[str, tuple[str, str, str]] = {}
        for process, (at, people) in self.presence.get(lead, {}).items():
            if process == self.process or now - at <= PRESENCE_TTL:
                for person in people:
                    if person[0] not in found or person[2] == "calling":
                        found[person[0]] = person
        for connection in self.connections:
            if connection.lead == lead and not connection.closed:
                mine = (connection.user_id, connection.user_name, connection.mode)
                if mine[0] not in found or mine[2] == "calling":
                    found[mine[0]] = mine
        return sorted(found.values(), key=lambda p: (p[2] != "calling", p[1]))

    def _local_viewers(self, lead: str) -> list[tuple[str, str, str]]:
        return [
            (c.user_id, c.user_name, c.mode)
            for c in self.connections
            if c.lead == lead and not c.closed
        ]

    def _store_presence(self, message: dict[str, Any]) -> None:
        people = [tuple(p) for p in message.get("people", [])]
        self.presence.setdefault(message["lead"], {})[message["process"]] = (
            time.monotonic(),
            people,
        )
        self.lead_business[message["lead"]] = message["business"]

    async def _presence_changed(self, lead: str) -> None:
        business = self.lead_business.get(lead)
        if business is None:
            return
        message = {
            "type": "presence",
            "process": self.process,
            "lead": lead,
            "business": business,
            "people": self._local_viewers(lead),
        }
        with contextlib.suppress(RedisError, OSError):
            await self.broker.send(message)
        await self._fan_out_presence(lead, business)

    async def _fan_out_presence(self, lead: str, business: str) -> None:
        event = LiveEvent(0, business, 0, "presence.changed", {"lead_id": lead})
        await self.deliver(event)

    # --- who is on duty (the wallboard) ----------------------------------------------------------

    def local_duty(self) -> Duty:
        """The secretaries this process has connected, each at her busiest socket."""
        places = [
            (c.user_id, place_of(c.lead, c.mode))
            for c in self.connections
            if not c.closed and c.role == "secretary"
        ]
        return sorted(busiest(places).items())

    def on_duty(self) -> dict[str, str]:
        """Who is connected now in any process, by user id; a process not heard from within
        `PRESENCE_TTL` has nobody on duty."""
        moment = time.monotonic()
        reports = [
            people
            for process, (at, people) in self.duty.items()
            if process != self.process and moment - at <= PRESENCE_TTL
        ]
        return busiest(place for people in [*reports, self.local_duty()] for place in people)

    async def _duty_changed(self) -> None:
        """Tell every process (this one too) when this process's secretaries on duty change."""
        people = self.local_duty()
        if people != self.duty_sent:
            await self._send_duty(people)

    async def _send_duty(self, people: Duty) -> None:
        self.duty_sent = people
        message = {"type": "duty", "process": self.process, "people": people}
        try:
            await self.broker.send(message)
        except (RedisError, OSError):
            await self._receive(json.loads(json.dumps(message)))  # at least this process

    async def _refresh_wallboards(self) -> None:
        audiences: dict[Audience, list[Connection]] = defaultdict(list)
        for connection in self.connections:
            if connection.page == "wallboard" and not connection.closed:
                audience = Audience("", connection.locale, connection.role, connection.page)
                audiences[audience].append(connection)
        if audiences:
            await self._offer(LiveEvent(0, "", 0, "duty.changed", {}), audiences)

    async def _report_presence_forever(self) -> None:
        while True:
            await asyncio.sleep(PRESENCE_EVERY)
            await self._send_duty(self.local_duty())  # keeps it fresh in the other processes
            for lead in {c.lead for c in self.connections if c.lead}:
                business = self.lead_business.get(lead)
                if business:
                    with contextlib.suppress(RedisError, OSError):
                        await self.broker.send(
                            {
                                "type": "presence",
                                "process": self.process,
                                "lead": lead,
                                "business": business,
                                "people": self._local_viewers(lead),
                            }
                        )


def _audience_of(connection: Connection, business_id: str) -> Audience:
    return Audience(business_id, connection.locale, connection.role, connection.page)
