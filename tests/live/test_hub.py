"""The hub's rules without a network: tenancy of fan-out, one render per audience, slow clients."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from console.live.events import LiveEvent
from console.live.hub import Audience, Connection, Hub, LocalBroker
from console.people.tenancy import AccessChanged, LiveAccess


def connection(user: str, businesses: set[str], **fields: str) -> Connection:
    return Connection(
        user_id=user,
        user_name=user.title(),
        session_id=f"s-{user}",
        role=fields.get("role", "secretary"),
        locale=fields.get("locale", "he"),
        businesses=frozenset(businesses),
        page=fields.get("page", "queue"),
    )


def drain(c: Connection) -> list[str]:
    found = []
    while not c.outbox.empty():
        item = c.outbox.get_nowait()
        if item is not None:
            found.append(item)
    return found


async def test_an_event_reaches_only_who_may_see_its_business_rendered_once_per_audience() -> None:
    renders: list[Audience] = []

    async def render(event: LiveEvent, audience: Audience) -> str:
        renders.append(audience)
        return f"{event.kind}:{audience.locale}"

    hub = Hub(LocalBroker(), render)
    await hub.start({"a": 3})
    hebrew = [connection(f"he{n}", {"a"}) for n in range(50)]
    english = [connection(f"en{n}", {"a", "b"}, locale="en") for n in range(10)]
    outsider = connection("other", {"b"})
    for c in [*hebrew, *english, outsider]:
        hub.join(c)
    await hub.publish([LiveEvent(7, "a", 4, "lead.created", {"lead_id": "x"})])
    assert sorted(a.locale for a in renders) == ["en", "he"]  # twice, not sixty times
    assert all(drain(c) == ["lead.created:he"] for c in hebrew)
    assert all(drain(c) == ["lead.created:en"] for c in english)
    assert drain(outsider) == []
    assert hub.latest["a"] == 4 and hub.cursor_for(["a", "b"]) == {"a": 4, "b": 0}
    await hub.stop()
    assert all(c.closed and c.close_code == 1012 for c in hebrew)  # restart: please reconnect


async def test_a_call_ringing_her_reaches_only_her_consoles_rendered_for_her() -> None:
    """A ringing banner names the secretary it rings: it goes to her sockets (any page, both
    tabs), rendered for her, and to nobody else of the business."""
    renders: list[Audience] = []

    async def render(event: LiveEvent, audience: Audience) -> str:
        renders.append(audience)
        return f"banner for {audience.user}"

    hub = Hub(LocalBroker(), render)
    await hub.start({})
    tabs = [connection("michal", {"a"}), connection("michal", {"a"}, page="lead:x")]
    other, admin = connection("noa", {"a"}), connection("ruth", {"a"}, role="admin")
    for c in [*tabs, other, admin]:
        hub.join(c)
    payload = {"call_id": "c1@carrier", "to": ["michal"], "seconds": 20}
    await hub.publish([LiveEvent(0, "a", 0, "call.ringing", payload)])
    assert renders == [Audience("a", "he", "secretary", "", "michal")]
    assert all(drain(c) == ["banner for michal"] for c in tabs)
    assert drain(other) == [] and drain(admin) == []
    await hub.stop()


async def test_a_slow_client_is_dropped_and_the_others_carry_on() -> None:
    async def render(event: LiveEvent, audience: Audience) -> str:
        return "x"

    hub = Hub(LocalBroker(), render)
    await hub.start({})
    slow, fast = connection("slow", {"a"}), connection("fast", {"a"})
    hub.join(slow)
    hub.join(fast)
    for n in range(1, 300):
        await hub.publish([LiveEvent(n, "a", n, "lead.updated", {})])
        drain(fast)
    assert slow.closed and slow.close_code == 1013
    assert not fast.closed
    await hub.stop()


async def test_logout_and_deactivation_close_the_right_sockets() -> None:
    async def render(event: LiveEvent, audience: Audience) -> None:
        return None

    hub = Hub(LocalBroker(), render)
    await hub.start({})
    a1, a2, b = connection("a", {"x"}), connection("a", {"x"}), connection("b", {"x"})
    a2.session_id = "other-session"
    for c in (a1, a2, b):
        hub.join(c)
    await hub.end_sessions(session_id="s-a")
    assert (a1.closed, a2.closed, b.closed) == (True, False, False)
    await hub.end_sessions(user_id="a")
    assert a2.closed and not b.closed
    await hub.stop()


async def test_presence_follows_the_page_and_clears_when_the_socket_goes() -> None:
    seen: list[tuple[str, list[tuple[str, str, str]]]] = []
    hub: Hub

    async def render(event: LiveEvent, audience: Audience) -> str | None:
        if event.kind == "presence.changed":
            seen.append((audience.page, hub.viewers(event.payload["lead_id"])))
        return None

    hub = Hub(LocalBroker(), render)
    await hub.start({})
    watcher = connection("w", {"a"}, page="queue")
    michal = connection("michal", {"a"})
    hub.join(watcher)
    hub.join(michal)
    await hub.move(michal, "lead:L1", "calling", "a")
    assert hub.viewers("L1") == [("michal", "Michal", "calling")]
    assert ("queue", [("michal", "Michal", "calling")]) in seen
    await hub.leave(michal)
    assert hub.viewers("L1") == []
    assert seen[-1][1] == []
    await asyncio.sleep(0)
    await hub.stop()


async def test_an_access_change_is_read_once_and_nothing_goes_out_on_the_old_access() -> None:
    reads: list[set[str]] = []
    hub: Hub

    async def render(event: LiveEvent, audience: Audience) -> str:
        if event.kind == "access.changed":
            return f"reload:{event.payload['reload']}"
        return f"{event.kind}:{event.business_id}"

    async def access(users: Collection[str]) -> dict[str, LiveAccess]:
        reads.append(set(users))
        # Events delivered while the access is read wait, and go out on the new access.
        await hub.deliver(LiveEvent(1, "a", 1, "lead.created", {"lead_id": "L1"}))
        await hub.deliver(LiveEvent(2, "b", 1, "lead.created", {"lead_id": "L2"}))
        return {
            "m": LiveAccess("secretary", frozenset({"b"})),
            "other": LiveAccess("secretary", frozenset({"a"})),
        }

    hub = Hub(LocalBroker(), render, access)
    await hub.start({})
    queue, on_lead = connection("m", {"a", "b"}), connection("m", {"a", "b"})
    other = connection("other", {"a"})
    for c in (queue, on_lead, other):
        hub.join(c)
    await hub.move(on_lead, "lead:L1", "viewing", "a")
    for c in (queue, on_lead, other):
        drain(c)  # presence
    await hub.publish([AccessChanged.of("m")])
    assert reads == [{"m"}]  # one read for both of her sockets
    assert drain(queue) == ["reload:main", "lead.created:b"]
    assert drain(on_lead) == ["reload:page", "lead.created:b"]  # her lead's business is gone
    assert drain(other) == ["lead.created:a"]
    await hub.deliver(LiveEvent(3, "a", 2, "lead.updated", {"lead_id": "L1"}))
    assert drain(queue) == [] and drain(other) == ["lead.updated:a"]
    assert queue not in hub.by_business["a"] and queue in hub.by_business["b"]
    await hub.stop()


async def test_gone_or_another_role_is_signed_out_and_an_unknown_access_reconnects() -> None:
    async def render(event: LiveEvent, audience: Audience) -> None:
        return None

    found: dict[str, LiveAccess] = {"owner-now": LiveAccess("owner", frozenset({"a"}))}
    failing = False

    async def access(users: Collection[str]) -> dict[str, LiveAccess]:
        if failing:
            raise OSError("database away")
        return {user: found[user] for user in users if user in found}

    hub = Hub(LocalBroker(), render, access)
    await hub.start({})
    gone, owner_now, bystander = (connection(u, {"a"}) for u in ("gone", "owner-now", "b"))
    for c in (gone, owner_now, bystander):
        hub.join(c)
    await hub.publish([AccessChanged.of("gone", "owner-now")])
    assert (gone.close_code, owner_now.close_code) == (4401, 4401) and not bystander.closed
    failing = True
    await hub.publish([AccessChanged()])  # everyone's: a business deactivated
    assert bystander.closed and bystander.close_code == 1012  # reconnects; its hello reads it
    await hub.stop()


async def test_a_list_whose_businesses_changed_before_its_first_hello_is_drawn_again() -> None:
    """An assignment read between the socket's opening and its hello met a page of no known
    kind yet: the list is drawn again once the hello says it is one."""

    async def render(event: LiveEvent, audience: Audience) -> str:
        return f"reload {event.payload['reload']}"

    async def access(users: Collection[str]) -> dict[str, LiveAccess]:
        return {u: LiveAccess("secretary", frozenset({"a", "b"})) for u in users}

    hub = Hub(LocalBroker(), render, access)
    await hub.start({})
    queue, unchanged = connection("tal", {"a"}, page="other"), connection("noa", {"a"})
    for c in (queue, unchanged):
        hub.join(c)
    await hub.refresh_access({"tal"})
    assert drain(queue) == []  # its page is not known yet
    await hub.move(queue, "queue", "viewing", "a")
    await hub.greet(queue)
    await hub.greet(unchanged)
    assert drain(queue) == ["reload main"] and drain(unchanged) == []
    await hub.greet(queue)  # once
    assert drain(queue) == []
    await hub.stop()
