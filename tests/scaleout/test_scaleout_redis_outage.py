"""Redis goes down under a running ``chatcore serve`` and comes back (empty), no restart.

The process uses a redis-server of the test's own, which the test kills with
SIGKILL and starts again on the same port without persistence (what a crashed
Redis without persistence does). While it is down the server says so (readiness
and presence answer 503 ``unavailable``) and keeps chatting on this process;
afterwards presence heals through the upkeep's heartbeat.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from cluster import PRESENCE_TTL, TIMEOUT, Cluster, cluster, wait_for
from redis_support import RedisServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.mongo,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals and /proc"),
]


async def _status(http: httpx.AsyncClient, url: str, **kwargs: object) -> tuple[int, object]:
    response = await http.get(url, **kwargs)  # type: ignore[arg-type]
    return response.status_code, response.json()


async def _presence(chat: Cluster, url: str, params: dict[str, str], asker: Any) -> dict[str, bool]:
    status, body = await _status(chat.http, url, params=params, headers=asker.headers)
    assert status == 200, body
    return {p["userId"]: p["online"] for p in body["presence"]}  # type: ignore[index]


@asynccontextmanager
async def _subscribed(url: str, channel: str) -> AsyncIterator[Any]:
    client = aioredis.Redis.from_url(url)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(channel)
        yield pubsub
    finally:
        await pubsub.aclose()
        await client.aclose()


async def _subscribers(url: str, channel: str, count: int) -> bool:
    client = aioredis.Redis.from_url(url)
    try:
        [(_, subscribed)] = await client.pubsub_numsub(channel)
        return int(subscribed) >= count
    finally:
        await client.aclose()


async def test_chat_survives_a_redis_outage_and_presence_heals_after_it(
    own_redis: RedisServer, tmp_path: Path, secantus_uri: str
) -> None:
    async with cluster(tmp_path, mongodb_uri=secantus_uri, redis_url=own_redis.url, size=1) as chat:
        [server] = chat.processes
        alice, bob = await chat.register("alice"), await chat.register("bob")
        carol, dave = await chat.register("carol"), await chat.register("dave")
        group = await chat.group(bob, alice, carol, dave, on=server)
        bob_socket = await chat.connect(bob, server)
        alice_socket = await chat.connect(alice, server)
        dave_socket = await chat.connect(dave, server)
        for user in (alice, dave):
            assert await bob_socket.next("userOnline") == {"userId": user.id}
        presence_url = f"{server.url}/api/presence"
        everyone = {"userIds": ",".join(u.id for u in (alice, bob, carol, dave))}

        own_redis.kill()
        # The upkeep's heartbeat notices (and keeps failing while the test goes on).
        noticed = await server.wait_log("presence: Redis unreachable")

        async def not_ready() -> bool:
            status, _ = await _status(chat.http, f"{server.url}/readyz")
            return status == 503

        await wait_for(not_ready, what="/readyz to answer 503")
        status, body = await _status(chat.http, f"{server.url}/readyz")
        assert (status, body["error"]["code"]) == (503, "unavailable")  # type: ignore[index]
        status, body = await _status(chat.http, presence_url, params=everyone, headers=bob.headers)
        assert (status, body["error"]["code"]) == (503, "unavailable")  # type: ignore[index]

        ack = await alice_socket.call("sendMessage", {"conversationId": group, "body": "down"})
        assert ack["ok"], ack
        for client in (bob_socket, alice_socket, dave_socket):
            assert await client.next("newMessage") == ack["message"]
        await dave_socket.close()  # leaves while Redis can't hear it
        carol_socket = await chat.connect(carol, server)  # arrives likewise

        own_redis.start()  # empty

        async def ready() -> bool:
            status, _ = await _status(chat.http, f"{server.url}/readyz")
            return status == 200

        await wait_for(ready, what="/readyz to answer 200 again")
        await server.wait_log("presence: Redis reachable again", after=noticed)
        # The heartbeat replays the departure and announces the arrival nobody heard of.
        assert (await bob_socket.next("userOffline"))["userId"] == dave.id
        assert await bob_socket.next("userOnline") == {"userId": carol.id}
        assert await _presence(chat, presence_url, everyone, bob) == {
            alice.id: True,
            bob.id: True,
            carol.id: True,
            dave.id: False,
        }

        # Fan-out through Redis works again: the process is subscribed (to the broadcast
        # channel, its own and the route notices) and routes emits. A socket of bob on
        # another process is written into presence as the presence scripts would, with
        # its route notice; that process's channel must then receive carol's messages.
        channel = chat.redis_prefix + "socketio"
        async with _subscribed(own_redis.url, channel + ":node:elsewhere") as pubsub:
            for name in (channel, channel + ":routes"):
                await wait_for(
                    functools.partial(_subscribers, own_redis.url, name, 1),
                    within=3 * TIMEOUT,
                    what=f"the server to subscribe to {name} again",
                )
            redis = aioredis.Redis.from_url(own_redis.url)
            try:
                await redis.sadd(f"{chat.redis_prefix}presence:user:{bob.id}", "elsewhere|tab")
                await redis.publish(channel + ":routes", bob.id)
            finally:
                await redis.aclose()
            # The notice reaches the server asynchronously: send until one is routed.
            routed = b""
            deadline = time.monotonic() + TIMEOUT
            while b"newMessage" not in routed and time.monotonic() < deadline:
                ack = await carol_socket.call(
                    "sendMessage", {"conversationId": group, "body": "up"}
                )
                assert ack["ok"], ack
                for client in (bob_socket, alice_socket):
                    assert await client.next("newMessage") == ack["message"]
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                routed = message["data"] if message is not None else b""
            assert b"newMessage" in routed
        assert bob_socket.pending("userOnline") == []  # alice was not announced twice


async def test_an_outage_longer_than_the_ttl_does_not_flap_anyone_offline(
    own_persistent_redis: RedisServer, tmp_path: Path, secantus_uri: str
) -> None:
    # Redis unreachable for longer than the presence TTL, then back with its data (a
    # network outage): every heartbeat expired meanwhile, yet every process is alive.
    # The first process back must not sweep the others, whose users would flap.
    redis = own_persistent_redis
    async with cluster(tmp_path, mongodb_uri=secantus_uri, redis_url=redis.url, size=2) as chat:
        a, b = chat.processes
        alice, bob = await chat.register("alice", on=a), await chat.register("bob", on=b)
        carol = await chat.register("carol", on=a)
        group = await chat.group(alice, bob, carol, on=b)
        clients = [await chat.connect(alice, a), await chat.connect(bob, b)]
        clients.append(await chat.connect(carol, a))
        assert await clients[0].next("userOnline") == {"userId": bob.id}
        for client in clients[:2]:
            assert await client.next("userOnline") == {"userId": carol.id}

        killed_at = time.monotonic()
        redis.kill()
        noticed = [await p.wait_log("presence: Redis unreachable") for p in (a, b)]
        # The scenario itself (not a synchronisation): down for twice the TTL.
        await asyncio.sleep(max(0.0, killed_at + 2 * PRESENCE_TTL - time.monotonic()))
        redis.start()

        for process, offset in zip((a, b), noticed, strict=True):
            await process.wait_log("presence: Redis reachable again", after=offset)
        await wait_for(
            lambda: _heartbeats(redis.url, chat.redis_prefix, 2),
            what="both processes to renew their heartbeat",
        )
        # Pub/sub keeps nothing: what is published before a process subscribed again
        # never reaches its sockets.
        await wait_for(
            lambda: _subscribers(redis.url, chat.redis_prefix + "socketio", 2),
            what="both processes to subscribe again",
        )
        # Typing from each process: whatever was published before has arrived.
        for typist in clients[:2]:
            others = [c for c in clients if c is not typist]
            ack = await typist.call("typing", {"conversationId": group, "isTyping": True})
            assert ack == {"ok": True}
            for other in others:
                assert (await other.next("typing"))["userId"] == typist.user.id
        assert [c.pending("userOffline") for c in clients] == [[], [], []]
        assert [c.pending("userOnline") for c in clients] == [[], [], []]
        for process in (a, b):
            assert await chat.presence(process, alice, alice, bob, carol) == {
                alice.id: True,
                bob.id: True,
                carol.id: True,
            }


async def _heartbeats(url: str, prefix: str, count: int) -> bool:
    client = aioredis.Redis.from_url(url)
    try:
        alive = [k async for k in client.scan_iter(match=f"{prefix}presence:alive:*")]
        return len(alive) == count
    finally:
        await client.aclose()
