"""RedisPresenceTracker as several server processes use it: one tracker per node id, one Redis.

On the shared Redis (keys under a prefix of the test's own) and, for outages,
on a redis-server of the test's own that the test kills and starts again.
Heartbeat expiry is waited for by polling with a deadline, never by sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import redis.asyncio as aioredis
from redis_support import RedisServer, delete_prefixed, unique_prefix

from adapters.redis import RedisPresenceTracker
from adapters.redis.presence import Resync
from chatcore.errors import Unavailable

DEADLINE = 10.0
SHORT_TTL = 0.3


def _tracker(
    client: aioredis.Redis, prefix: str, node: str, ttl: float = 30.0
) -> RedisPresenceTracker:
    return RedisPresenceTracker(client, prefix=prefix, node_id=node, heartbeat_ttl=ttl)


async def _poll(attempt: Callable[[], Awaitable[list[str]]], *, within: float) -> list[str]:
    """The first non-empty result of ``attempt()``, polling until ``within`` seconds."""
    deadline = time.monotonic() + within
    while not (found := await attempt()):
        assert time.monotonic() < deadline, f"nothing within {within}s"
        await asyncio.sleep(0.02)
    return found


@asynccontextmanager
async def _client(url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        yield client
    finally:
        await client.aclose()


async def _two_nodes(
    client: aioredis.Redis, prefix: str
) -> tuple[RedisPresenceTracker, RedisPresenceTracker]:
    """The trackers of node-a and node-b, both having beaten once."""
    a = _tracker(client, prefix, "node-a")
    b = _tracker(client, prefix, "node-b")
    await a.heartbeat()
    await b.heartbeat()
    return a, b


async def _changes_during_an_outage(a: RedisPresenceTracker, redis_server: RedisServer) -> None:
    """Kill ``redis_server``; then on ``a`` "leaves" (s-1) and "stays" (s-2) disconnect
    and "arrives" (s-5) connects, each refused as Unavailable. Redis stays down."""
    redis_server.kill()
    for user, sid in (("leaves", "s-1"), ("stays", "s-2")):
        with pytest.raises(Unavailable):
            await a.disconnect(user, sid)
    with pytest.raises(Unavailable):
        await a.connect("arrives", "s-5")


async def test_first_and_last_socket_are_decided_across_nodes(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    a, b = await _two_nodes(redis_client, redis_prefix)

    assert await a.connect("u-1", "sid-1") is True
    assert await b.connect("u-1", "sid-2") is False
    assert await b.connect("u-2", "sid-1") is True  # same sid on another node and user
    assert await a.online(["u-1", "u-2", "u-3"]) == await b.online(["u-1", "u-2", "u-3"])
    assert await b.online(["u-1", "u-2", "u-3"]) == {"u-1", "u-2"}

    assert await a.disconnect("u-1", "sid-1") is False
    assert await b.online(["u-1"]) == {"u-1"}
    assert await b.disconnect("u-1", "sid-2") is True
    assert await a.online(["u-1", "u-2"]) == {"u-2"}


async def test_concurrent_first_sockets_on_two_nodes_bring_a_user_online_once(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    a = _tracker(redis_client, redis_prefix, "node-a")
    b = _tracker(redis_client, redis_prefix, "node-b")
    tabs = [(node, f"tab-{i}") for i in range(10) for node in (a, b)]

    came_online = await asyncio.gather(*(n.connect("u-1", t) for n, t in tabs))
    went_offline = await asyncio.gather(*(n.disconnect("u-1", t) for n, t in tabs))

    assert (sum(came_online), sum(went_offline)) == (1, 1)


async def test_a_node_whose_heartbeat_expires_is_swept_and_its_users_reported_once(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    dying = _tracker(redis_client, redis_prefix, "node-dying", ttl=SHORT_TTL)
    sweepers = [_tracker(redis_client, redis_prefix, f"node-{n}") for n in "bc"]
    for tracker in (dying, *sweepers):
        await tracker.heartbeat()
    await dying.connect("only-there", "s-1")
    await dying.connect("only-there", "s-2")
    await dying.connect("also-elsewhere", "s-3")
    await sweepers[0].connect("also-elsewhere", "s-4")
    # Alive: a sweep takes nothing.
    assert await sweepers[0].sweep() == []
    assert await sweepers[0].online(["only-there"]) == {"only-there"}

    # The dying node stops beating; both others sweep concurrently until one reaps it.
    async def sweep_all() -> list[str]:
        found = await asyncio.gather(*(s.sweep() for s in sweepers))
        return [user for users in found for user in users]

    assert await _poll(sweep_all, within=DEADLINE) == ["only-there"]

    assert await sweep_all() == []
    assert await sweepers[1].online(["only-there", "also-elsewhere"]) == {"also-elsewhere"}
    assert await redis_client.exists(redis_prefix + "node:node-dying") == 0
    assert not await redis_client.sismember(redis_prefix + "nodes", "node-dying")


async def test_a_swept_node_writes_its_sockets_back_and_reports_them_online_again(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # A process that stalled past the TTL: swept (its users reported offline), then
    # it wakes up. Its users are online again, and someone must tell their contacts.
    stalled = _tracker(redis_client, redis_prefix, "node-stalled", ttl=SHORT_TTL)
    other = _tracker(redis_client, redis_prefix, "node-other")
    await stalled.heartbeat()
    await other.heartbeat()
    await stalled.connect("u-1", "s-1")
    await stalled.connect("u-2", "s-2")
    await other.connect("u-2", "s-3")
    assert await _poll(other.sweep, within=DEADLINE) == ["u-1"]

    resync = await stalled.heartbeat()

    assert resync == Resync(offline=[], online=["u-1"])
    assert await other.online(["u-1", "u-2"]) == {"u-1", "u-2"}
    assert await stalled.heartbeat() == Resync()
    assert await other.disconnect("u-2", "s-3") is False
    assert await stalled.disconnect("u-2", "s-2") is True


async def test_a_late_heartbeat_before_any_sweep_changes_nothing(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    stalled = _tracker(redis_client, redis_prefix, "node-stalled", ttl=SHORT_TTL)
    await stalled.heartbeat()
    await stalled.connect("u-1", "s-1")
    alive = redis_prefix + "alive:node-stalled"
    deadline = time.monotonic() + DEADLINE
    while await redis_client.exists(alive):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)

    assert await stalled.heartbeat() == Resync()
    assert await stalled.online(["u-1"]) == {"u-1"}


async def test_heartbeat_writes_sockets_back_after_redis_lost_them(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    a, b = await _two_nodes(redis_client, redis_prefix)
    await a.connect("u-1", "s-1")
    await a.connect("u-2", "s-1")  # connection ids need not be unique across users
    await a.connect("u-3", "s-3")
    await a.disconnect("u-3", "s-3")
    await b.connect("u-1", "s-2")

    await delete_prefixed(redis_client, redis_prefix)  # a restart without persistence
    assert await b.online(["u-1", "u-2"]) == set()
    # Silent: nobody was told these users left, so nobody is told they are back.
    assert await a.heartbeat() == Resync()
    assert await b.online(["u-1", "u-2", "u-3"]) == {"u-1", "u-2"}
    assert await b.heartbeat() == Resync()

    assert await a.disconnect("u-1", "s-1") is False
    assert await b.disconnect("u-1", "s-2") is True
    assert await b.disconnect("u-2", "s-1") is False  # not b's socket
    assert await a.disconnect("u-2", "s-1") is True
    assert await redis_client.scard(redis_prefix + "node:node-a") == 0


async def test_online_and_changes_raise_unavailable_while_redis_is_down(
    own_redis: RedisServer,
) -> None:
    async with _client(own_redis.url) as client:
        tracker = _tracker(client, unique_prefix(), "node-a")
        await tracker.heartbeat()
        await tracker.connect("u-1", "s-1")

        own_redis.kill()

        with pytest.raises(Unavailable):
            await tracker.online(["u-1"])
        with pytest.raises(Unavailable):
            await tracker.connect("u-2", "s-2")
        with pytest.raises(Unavailable):
            await tracker.disconnect("u-1", "s-1")
        with pytest.raises(Unavailable):
            await tracker.heartbeat()
        with pytest.raises(Unavailable):
            await tracker.sweep()


async def test_a_disconnect_during_an_outage_is_replayed_and_reported_offline_once(
    own_persistent_redis: RedisServer,
) -> None:
    # Redis unreachable for a while, then back with its data (persistent server).
    async with _client(own_persistent_redis.url) as client:
        a, b = await _two_nodes(client, unique_prefix())
        await a.connect("leaves", "s-1")
        await a.connect("stays", "s-2")
        await b.connect("stays", "s-3")
        await a.connect("was-online", "s-4")

        await _changes_during_an_outage(a, own_persistent_redis)
        with pytest.raises(Unavailable):
            await a.heartbeat()  # still down: retried later
        own_persistent_redis.start()

        resync = await a.heartbeat()

        assert resync == Resync(offline=["leaves"], online=["arrives"])
        assert await a.heartbeat() == Resync()
        assert await b.online(["leaves", "stays", "arrives", "was-online"]) == {
            "stays",
            "arrives",
            "was-online",
        }
        assert await b.disconnect("stays", "s-3") is True


async def test_a_disconnect_during_an_outage_is_reported_after_redis_restarted_empty(
    own_redis: RedisServer,
) -> None:
    async with _client(own_redis.url) as client:
        a, b = await _two_nodes(client, unique_prefix())
        await a.connect("leaves", "s-1")
        await a.connect("stays", "s-2")
        await a.connect("stays", "s-3")
        await b.connect("on-b", "s-4")

        await _changes_during_an_outage(a, own_redis)
        own_redis.start()  # empty

        assert await b.heartbeat() == Resync()
        resync = await a.heartbeat()

        # Only the one who left is offline; only the one who arrived unannounced is news.
        assert resync == Resync(offline=["leaves"], online=["arrives"])
        assert await a.heartbeat() == Resync()
        assert await b.online(["leaves", "stays", "arrives", "on-b"]) == {
            "stays",
            "arrives",
            "on-b",
        }
        assert await a.disconnect("stays", "s-3") is True
