"""Targeted fan-out (adapters.redis.routing) across real ``chatcore serve`` processes.

A pattern subscriber of the test's own sees every message published on the
cluster's Socket.IO channels (the broadcast one and each process's own), so the
tests check what each process is sent, not only what the clients end up with:
a process is sent only emits for users it holds, routes follow a user who moves,
a SIGKILLed process is routed nothing once swept, and a socket that connects
while messages are in flight gets every one of them live or through ``sync``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from cluster import (
    PRESENCE_BOUND,
    TIMEOUT,
    Client,
    Cluster,
    ServeProcess,
    cluster,
    wait_for,
)

from support.accounts import Account

# A few times the presence bound (TTL + TTL / 3), plus room for a loaded machine.
SWEEP_DEADLINE = 3 * PRESENCE_BOUND + 5.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.mongo,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals and /proc"),
]


class ChannelTap:
    """Every message published on ``<prefix>socketio*``, in Redis's order."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self._client = aioredis.Redis.from_url(redis_url)
        self._pubsub = self._client.pubsub()
        self._pattern = f"{prefix}socketio*"
        self._marker_channel = f"{prefix}socketio:tap:{uuid.uuid4().hex}"
        self.seen: list[tuple[str, bytes]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._pubsub.psubscribe(self._pattern)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._pubsub.listen():
            if message["type"] == "pmessage":
                self.seen.append((message["channel"].decode(), message["data"]))

    async def settle(self) -> list[tuple[str, bytes]]:
        """Everything published before this call (then forgotten), but the marker."""
        marker = uuid.uuid4().hex.encode()
        await self._client.publish(self._marker_channel, marker)
        await wait_for(self._has(marker), what="the tap's marker")
        seen, self.seen = self.seen, []
        return [(ch, data) for ch, data in seen if ch != self._marker_channel]

    def _has(self, marker: bytes) -> Any:
        async def check() -> bool:
            return (self._marker_channel, marker) in self.seen

        return check

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._pubsub.aclose()
        await self._client.aclose()


@contextlib.asynccontextmanager
async def tapped(chat: Cluster) -> AsyncIterator[ChannelTap]:
    tap = ChannelTap(chat.redis_url, chat.redis_prefix)
    await tap.start()
    try:
        yield tap
    finally:
        await tap.stop()


async def node_of(chat: Cluster, client: Client) -> str:
    """The node id (presence, routing) of ``client``'s process: its user's only socket."""
    redis = aioredis.Redis.from_url(chat.redis_url)
    try:
        entries = await redis.smembers(f"{chat.redis_prefix}presence:user:{client.user.id}")
    finally:
        await redis.aclose()
    nodes = {e.split(b"|", 1)[0].decode() for e in entries}
    assert len(nodes) == 1, nodes
    return nodes.pop()


def routed(seen: list[tuple[str, bytes]], chat: Cluster) -> dict[str, list[tuple[list[str], str]]]:
    """Per node id: the (rooms, event) of each routed emit it was sent. Asserts that
    nothing went on the broadcast channel."""
    channel = f"{chat.redis_prefix}socketio"
    per_node: dict[str, list[tuple[list[str], str]]] = {}
    for name, data in seen:
        assert name != channel, ("broadcast", data[:200])
        node = name.removeprefix(f"{channel}:node:")
        if name.startswith(f"{channel}:routes"):
            continue
        header, _, packet = data.partition(b"\n")
        _, rooms = json.loads(header)
        event = json.loads(packet.decode()[packet.decode().index("[") :])[0]
        per_node.setdefault(node, []).append((rooms, event))
    return per_node


async def metric(process: ServeProcess, name: str) -> float:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        text = (await http.get(f"{process.url}/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics of {process.name}")


async def send(client: Client, receiver: Account, body: str) -> dict[str, Any]:
    ack = await client.call("sendMessage", {"receiverId": receiver.id, "body": body})
    assert ack["ok"], ack
    message: dict[str, Any] = ack["message"]
    return message


@contextlib.asynccontextmanager
async def two_processes(
    tmp_path: Path, mongodb_uri: str, redis_url: str
) -> AsyncIterator[tuple[Cluster, Account, Account]]:
    """Processes A and B, and alice and bob registered on A."""
    async with cluster(tmp_path, mongodb_uri=mongodb_uri, redis_url=redis_url, size=2) as chat:
        a = chat.processes[0]
        yield chat, await chat.register("alice", on=a), await chat.register("bob", on=a)


async def test_each_process_is_sent_only_emits_for_users_it_holds_and_routes_follow_a_move(
    shared_redis_url: str, tmp_path: Path, secantus_uri: str
) -> None:
    async with cluster(tmp_path, mongodb_uri=secantus_uri, redis_url=shared_redis_url) as chat:
        a, b, c = chat.processes
        alice, bob, dave, carol = [
            await chat.register(n, on=a) for n in ("alice", "bob", "dave", "carol")
        ]
        alice_a, dave_a = await chat.connect(alice, a), await chat.connect(dave, a)
        bob_b, carol_c = await chat.connect(bob, b), await chat.connect(carol, c)
        node_a, node_b, node_c = [await node_of(chat, x) for x in (alice_a, bob_b, carol_c)]
        async with tapped(chat) as tap:
            await tap.settle()

            first = await send(alice_a, bob, "to bob on B")
            assert await bob_b.next("newMessage") == first
            second = await send(alice_a, bob, "again")
            assert await bob_b.next("newMessage") == second

            per_node = routed(await tap.settle(), chat)
            # B: the new conversation and both messages, each naming bob (the header
            # carries every recipient room, the receiver delivers to those it holds).
            assert set(per_node) == {node_b}
            assert all(f"user:{bob.id}" in rooms for rooms, _ in per_node[node_b])
            assert [e for _, e in per_node[node_b]].count("newMessage") == 2
            assert await metric(c, "chatcore_broker_routed_received") == 0

            # Every recipient on A: nothing published, and no lookup once routes are known.
            await send(alice_a, dave, "to dave on A")
            await dave_a.next("newMessage")
            lookups = await metric(a, "chatcore_broker_route_lookups")
            await send(alice_a, dave, "to dave on A again")
            await dave_a.next("newMessage")
            assert routed(await tap.settle(), chat) == {}
            assert await metric(a, "chatcore_broker_route_lookups") == lookups

            # bob moves from B to C: routes follow him.
            await bob_b.close()
            bob_c = await chat.connect(bob, c)
            await wait_for(lambda: _sockets_are(chat, bob, 1), what="bob's move in presence")
            await tap.settle()
            moved = await send(alice_a, bob, "to bob on C")

            assert await bob_c.next("newMessage") == moved
            per_node = routed(await tap.settle(), chat)
            assert set(per_node) == {node_c}
            assert [e for _, e in per_node[node_c]] == ["newMessage"]
            assert node_a not in per_node
            assert carol_c.pending("newMessage") == []


async def test_a_killed_process_is_routed_nothing_once_swept(
    shared_redis_url: str, tmp_path: Path, secantus_uri: str
) -> None:
    async with two_processes(tmp_path, secantus_uri, shared_redis_url) as (chat, alice, bob):
        a, b = chat.processes
        alice_a, bob_b = await chat.connect(alice, a), await chat.connect(bob, b)
        node_b = await node_of(chat, bob_b)
        async with tapped(chat) as tap:
            await send(alice_a, bob, "before")
            await bob_b.next("newMessage")
            assert set(routed(await tap.settle(), chat)) == {node_b}

            b.kill()
            await wait_for(
                lambda: _sockets_are(chat, bob, 0),
                within=SWEEP_DEADLINE,
                what="the sweep of B",
            )
            await alice_a.next("userOffline", within=TIMEOUT)
            await tap.settle()
            await send(alice_a, bob, "after the sweep")

            assert routed(await tap.settle(), chat) == {}


async def test_a_socket_connecting_while_messages_fly_gets_each_live_or_by_sync(
    shared_redis_url: str, tmp_path: Path, secantus_uri: str
) -> None:
    async with two_processes(tmp_path, secantus_uri, shared_redis_url) as (chat, alice, bob):
        a, b = chat.processes
        alice_a = await chat.connect(alice, a)
        first = await send(alice_a, bob, "0")
        conversation = first["conversationId"]
        total = 60

        async def sending() -> list[int]:
            return [(await send(alice_a, bob, f"{n}"))["seq"] for n in range(1, total)]

        sent = asyncio.create_task(sending())
        await asyncio.sleep(0.05)  # some messages sent before bob connects, most after
        bob_b = await chat.connect(bob, b)
        # What a client does after (re)connecting: ask for what it has not seen.
        ack = await bob_b.call("sync", {"since": {conversation: first["seq"]}})
        seqs = await sent

        assert ack["ok"], ack
        synced = [m["seq"] for m in ack["messages"]]
        live: list[int] = []
        while len(set(synced) | set(live)) < len(seqs):
            live.append((await bob_b.next("newMessage"))["seq"])
        # One more: routed after all the others on the same channel, so any duplicate
        # of an earlier one would have arrived before it.
        last = await send(alice_a, bob, "last")
        while (seq := (await bob_b.next("newMessage"))["seq"]) != last["seq"]:
            live.append(seq)
        assert set(synced) | set(live) == set(seqs)
        assert len(live) == len(set(live)), "a message was delivered twice"
        assert len(synced) == len(set(synced))


async def _sockets_are(chat: Cluster, user: Account, count: int) -> bool:
    return await chat.sockets_in_redis(user) == count
