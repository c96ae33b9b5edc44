"""RoutedRedisManager: each emit goes only to the processes that hold its recipients.

python-socketio's ``AsyncRedisManager`` publishes every emit of the cluster on
one channel; every process receives it, decodes it and looks for recipients,
whether it holds any or not. Here each process subscribes to a channel of its
own, ``<channel>:node:<nodeId>``, and an emit to user rooms (``user:<id>``, all
chatcore emits) is:

1. delivered to this process's sockets at once (:class:`LocalFanout`, no Redis);
2. routed: the other processes holding a socket of a recipient are read from
   the Redis presence data (``<presence prefix>user:<id>``: ``<nodeId>|<conn>``
   entries, kept by :class:`RedisPresenceTracker`) and remembered;
3. published once per target process, the Socket.IO packet encoded once for
   all of them (the receiving process queues it on its sockets as is, without
   decoding it). No target process: Redis is not touched at all.

**The route cache.** Asking Redis on every emit would cost a round trip even
when every recipient is local. So each process remembers, per user, which other
processes hold their sockets (also "none"), and forgets it when told: the
presence scripts publish the user id on ``<channel>:routes`` in the same atomic
step that adds a user's first socket on a process or removes their last one
there, and ``*`` (forget everything) when a dead process is swept or a process
writes its sockets back after an outage. A lookup whose answer might predate
such a notice is used once and not remembered. While the subscription is down
(notices could be missed) nothing is remembered, and everything is forgotten
when it is back. A publish that reached no subscriber (the target died) also
drops those users' routes, so the next emit asks Redis again.

**What this guarantees.** No duplicates: an emit is delivered locally once and
published at most once per other process. A socket that connects on another
process while an emit is in flight may miss it (as with any pub/sub); the
client's ``sync`` after connecting covers it. After a dead process is swept,
nobody routes to it. With Redis down, local delivery goes on; other processes'
sockets miss what was sent meanwhile (``sync`` again).

Emits that are not to user rooms only (a broadcast, a sid room, another room),
with a callback or ``skip_sid``, or with binary data, take python-socketio's
path unchanged: one publish on ``<channel>`` that every process receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
import socketio
from engineio import packet as eio_packet
from redis.exceptions import ConnectionError as RedisConnectionError

from adapters.socketio_fanout import FanoutManager, engineio_packets, socketio_packets

logger = logging.getLogger(__name__)

USER_ROOM_PREFIX = "user:"
# Longest wait between two attempts to subscribe again after losing Redis.
RESUBSCRIBE_MAX_SECONDS = 2.0
# Routes remembered at most; past this the cache starts over (cheap, and rare).
ROUTE_CACHE_SIZE = 100_000


def routes_channel(channel: str) -> str:
    """The channel on which presence announces that a user's routes changed."""
    return channel + ":routes"


def node_channel(channel: str, node_id: str) -> str:
    """The channel a process receives its routed emits on."""
    return f"{channel}:node:{node_id}"


def _user_ids(room: Any) -> list[str] | None:
    """The user ids of ``room`` if it is one user room or a list of them, else None."""
    if isinstance(room, str):
        return [room[len(USER_ROOM_PREFIX) :]] if room.startswith(USER_ROOM_PREFIX) else None
    if not isinstance(room, list | tuple) or not room:
        return None
    ids = []
    for name in room:
        if not isinstance(name, str) or not name.startswith(USER_ROOM_PREFIX):
            return None
        ids.append(name[len(USER_ROOM_PREFIX) :])
    return ids


class BrokerCounters:
    """What this process exchanged with the broker (for metrics and benchmarks)."""

    def __init__(self) -> None:
        self.published = 0  # routed emits published (one per target process)
        self.received = 0  # routed emits received on this process's channel
        self.lookups = 0  # route lookups in Redis (cache misses, batched per emit)


class RoutedRedisManager(socketio.AsyncRedisManager, FanoutManager):  # type: ignore[misc]
    """python-socketio's Redis manager with targeted fan-out (see the module docstring).

    ``node_id`` must be the presence tracker's node id; ``presence_prefix`` its key prefix.
    """

    def __init__(
        self,
        url: str,
        *,
        channel: str,
        node_id: str,
        presence_prefix: str,
        redis_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(url, channel=channel, redis_options=dict(redis_options or {}))
        self.node_id = node_id
        self.counters = BrokerCounters()
        self._presence_prefix = presence_prefix
        self._node_channel = node_channel(channel, node_id)
        self._routes_channel = routes_channel(channel)
        # Lookups and routed publishes; python-socketio's own ``redis``/``pubsub`` are
        # recreated by its reconnect logic and serve the broadcast path and listening.
        self._commands = aioredis.Redis.from_url(url, **dict(redis_options or {}))
        # user id -> the other processes holding their sockets (maybe none).
        self._routes: dict[str, tuple[str, ...]] = {}
        # Bumped by every routes notice: a lookup older than one is not remembered.
        self._generation = 0
        self._subscribed = False
        self._failing = False

    # -- emitting ----------------------------------------------------------------------

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        users = _user_ids(room)
        # AsyncServer.emit always passes ignore_queue (False unless python-socketio's
        # own pub/sub handling re-emits locally).
        if users is None or callback is not None or skip_sid is not None or any(kwargs.values()):
            await super().emit(
                event, data, namespace=namespace or "/", room=room, skip_sid=skip_sid,
                callback=callback, **kwargs,
            )  # fmt: skip
            return
        namespace = namespace or "/"
        encoded = socketio_packets(self.server, namespace, event, data)
        if len(encoded) != 1:  # binary attachments: python-socketio's path
            await super().emit(event, data, namespace=namespace, room=room)
            return
        self.fanout.deliver(namespace, room, engineio_packets(encoded))
        rooms = [room] if isinstance(room, str) else list(room)
        for attempt in (1, 2):
            try:
                await self._route(users, namespace, rooms, encoded[0])
            except RedisConnectionError as exc:
                # A pooled connection that died with a Redis restart fails once; the
                # next attempt connects afresh (nothing was sent on the dead one).
                if attempt == 2:
                    self._report_failure(exc)
            except Exception as exc:  # Redis down or failing: local delivery is done
                self._report_failure(exc)
                return
            else:
                self._failing = False
                return

    async def _route(self, users: list[str], namespace: str, rooms: list[str], packet: str) -> None:
        nodes = await self._nodes_of(users)
        if nodes:
            header = orjson.dumps([namespace, rooms])
            await self._publish_routed(nodes, users, header + b"\n" + packet.encode())

    async def _nodes_of(self, users: Sequence[str]) -> set[str]:
        routes = self._routes
        nodes: set[str] = set()
        missing = []
        for user_id in users:
            known = routes.get(user_id)
            if known is None:
                missing.append(user_id)
            else:
                nodes.update(known)
        if missing:
            nodes.update(await self._look_up(missing))
        return nodes

    async def _look_up(self, users: list[str]) -> set[str]:
        generation = self._generation
        self.counters.lookups += 1
        async with self._commands.pipeline(transaction=False) as pipe:
            for user_id in users:
                pipe.smembers(f"{self._presence_prefix}user:{user_id}")
            answers = await pipe.execute()
        remember = self._subscribed and generation == self._generation
        if remember and len(self._routes) + len(users) > ROUTE_CACHE_SIZE:
            self._routes.clear()
        nodes: set[str] = set()
        me = self.node_id
        for user_id, entries in zip(users, answers, strict=True):
            held = {entry.split(b"|", 1)[0].decode() for entry in entries}
            held.discard(me)
            nodes |= held
            if remember:
                self._routes[user_id] = tuple(held)
        return nodes

    async def _publish_routed(self, nodes: set[str], users: Sequence[str], payload: bytes) -> None:
        channel = self.channel
        if len(nodes) == 1:
            receivers = [await self._commands.publish(node_channel(channel, *nodes), payload)]
        else:
            async with self._commands.pipeline(transaction=False) as pipe:
                for node in nodes:
                    pipe.publish(node_channel(channel, node), payload)
                receivers = await pipe.execute()
        self.counters.published += len(nodes)
        if not all(receivers):
            # A target is not listening (it died, or is resubscribing): ask Redis next time.
            for user_id in users:
                self._routes.pop(user_id, None)

    def _report_failure(self, exc: Exception) -> None:
        if not self._failing:
            logger.warning("routing an emit through Redis failed (local delivery done): %r", exc)
        self._failing = True

    # -- receiving ---------------------------------------------------------------------

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        # python-socketio's loop, subscribing to three channels, and with the wait
        # between attempts capped: upstream doubles it up to a minute, so after Redis
        # was down for D seconds this process would go on missing emits for up to D
        # more seconds while /readyz already says ready.
        retry_sleep = 0.25
        while True:
            try:
                if self.pubsub is not None:
                    with contextlib.suppress(Exception):
                        await self.pubsub.aclose()  # don't leave a subscription behind
                self._redis_connect()
                await self.pubsub.subscribe(self.channel, self._node_channel, self._routes_channel)
                self._forget_routes(subscribed=True)
                retry_sleep = 0.25
                async for message in self.pubsub.listen():
                    yield message
            except Exception as exc:
                self._forget_routes(subscribed=False)
                self._get_logger().error(
                    "Cannot receive from redis... retrying in %.2g secs",
                    retry_sleep,
                    extra={"redis_exception": str(exc)},
                )
                await asyncio.sleep(retry_sleep)
                retry_sleep = min(retry_sleep * 2, RESUBSCRIBE_MAX_SECONDS)

    async def _listen(self) -> AsyncIterator[Any]:
        broadcast = self.channel.encode()
        mine = self._node_channel.encode()
        routes = self._routes_channel.encode()
        async for message in self._redis_listen_with_retries():
            if message.get("type") != "message":
                continue
            channel, data = message["channel"], message["data"]
            if channel == mine:
                self._deliver_routed(data)
            elif channel == routes:
                self._route_changed(data)
            elif channel == broadcast:
                yield data  # python-socketio's own messages, handled by its _thread

    def _deliver_routed(self, data: bytes) -> None:
        self.counters.received += 1
        try:
            header, _, encoded = data.partition(b"\n")
            namespace, rooms = orjson.loads(header)
            packet = eio_packet.Packet(eio_packet.MESSAGE, encoded.decode())
        except (ValueError, TypeError):
            logger.warning("dropped a malformed routed emit: %r", data[:200])
            return
        self.fanout.deliver(namespace, rooms, [packet])

    def _route_changed(self, data: bytes) -> None:
        self._generation += 1
        if data == b"*":
            self._routes.clear()
        else:
            self._routes.pop(data.decode(errors="replace"), None)

    def _forget_routes(self, *, subscribed: bool) -> None:
        self._generation += 1
        self._routes.clear()
        self._subscribed = subscribed

    def known_routes(self) -> dict[str, tuple[str, ...]]:
        """The routes remembered now (user id -> other processes): for tests and probes."""
        return dict(self._routes)
