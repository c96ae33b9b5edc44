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

Routing and publishing happen in one sender task per process, not in the
emitting task: ``emit`` returns once local delivery is done, and everything
emitted meanwhile (one event-loop iteration, or one Redis round trip under load)
leaves as one Redis message per target process, in emit order. So a process's
routed emits reach each other process in the order they were made, and one
PUBLISH (and one pub/sub message to decode) carries many emits under load.

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
published at most once per other process (a batch is sent again only when its
first attempt failed to connect: Redis restarted under a pooled connection).
A socket that connects on another process while an emit is in flight may miss
it (as with any pub/sub); the client's ``sync`` after connecting covers what was
stored before that sync. An emit made after it, but before the emitting process
has read the route notice (a pub/sub hop, normally well under a millisecond),
is missed: the remaining window, see docs/scaling.md. After a dead process is
swept, nobody routes to it. With Redis down, local delivery goes on; other
processes' sockets miss what was sent meanwhile (``sync`` again).

Emits that are not to user rooms only (a broadcast, a sid room, another room),
with a callback or ``skip_sid``, or with binary data, take python-socketio's
path unchanged: one publish on ``<channel>`` that every process receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import redis.asyncio as aioredis
import socketio
from engineio import packet as eio_packet
from redis.exceptions import ConnectionError as RedisConnectionError

from adapters.socketio_fanout import FanoutManager, engineio_packets, socketio_packets
from adapters.socketio_notifier import USER_ROOM_PREFIX

logger = logging.getLogger(__name__)

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
        self.routed_published = 0  # routed emits published (one per target process)
        self.routed_received = 0  # routed emits received on this process's channel
        # Redis messages carrying them: what one loop iteration emits goes as one message.
        self.routed_messages_published = 0
        self.routed_messages_received = 0
        self.route_lookups = 0  # route lookups in Redis (cache misses, batched per emit)
        self.broadcast_published = 0  # python-socketio's own messages, to every process
        self.broadcast_received = 0


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
        # Routed emits waiting for the sender task, in emit order: (user ids, record).
        self._outbox: list[tuple[list[str], bytes]] = []
        self._sender: asyncio.Future[None] | None = None

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
        routes = self._routes
        if all(routes.get(u) == () for u in users):
            return  # every recipient's sockets are here (or nowhere): Redis is not needed
        rooms = [room] if isinstance(room, str) else list(room)
        record = orjson.dumps([namespace, rooms]) + b"\n" + encoded[0].encode()
        self._outbox.append((users, record))
        if self._sender is None:
            # One Task per batch (whatever this loop iteration emits), not per emit.
            self._sender = asyncio.ensure_future(self._send_outbox())

    async def _send_outbox(self) -> None:
        """Route and publish what is queued, in order, until nothing is left. One sender
        at a time, so routed emits leave (and arrive) in the order they were made."""
        try:
            while self._outbox:
                batch, self._outbox = self._outbox, []
                for attempt in (1, 2):
                    try:
                        await self._send(batch)
                    except RedisConnectionError as exc:
                        # Pooled connections that died with a Redis restart fail on first
                        # use: drop them all, and the next attempt connects afresh.
                        await self._commands.connection_pool.disconnect()
                        if attempt == 2:
                            self._report_failure(exc)
                    except Exception as exc:  # Redis down or failing: local delivery is done
                        self._report_failure(exc)
                        break
                    else:
                        self._failing = False
                        break
        finally:
            self._sender = None

    async def _send(self, batch: list[tuple[list[str], bytes]]) -> None:
        routes = self._routes
        missing = list({u: None for users, _ in batch for u in users if u not in routes})
        found = await self._look_up(missing) if missing else {}
        per_node: dict[str, list[bytes]] = {}
        for users, record in batch:
            nodes: set[str] = set()
            for user_id in users:
                nodes.update(found[user_id] if user_id in found else routes.get(user_id, ()))
            for node in nodes:
                per_node.setdefault(node, []).append(record)
        if per_node:
            await self._publish_routed(per_node)

    async def _look_up(self, users: list[str]) -> dict[str, tuple[str, ...]]:
        """The other processes holding each user's sockets, from the presence data;
        remembered unless a route notice may have come in meanwhile."""
        generation = self._generation
        self.counters.route_lookups += 1
        async with self._commands.pipeline(transaction=False) as pipe:
            for user_id in users:
                pipe.smembers(f"{self._presence_prefix}user:{user_id}")
            answers = await pipe.execute()
        me = self.node_id
        found = {}
        for user_id, entries in zip(users, answers, strict=True):
            held = {entry.split(b"|", 1)[0].decode() for entry in entries}
            held.discard(me)
            found[user_id] = tuple(held)
        if self._subscribed and generation == self._generation:
            if len(self._routes) + len(found) > ROUTE_CACHE_SIZE:
                self._routes.clear()
            self._routes.update(found)
        return found

    async def _publish_routed(self, per_node: dict[str, list[bytes]]) -> None:
        # Records are joined with \x1e, which JSON text never contains unescaped (the
        # separator Engine.IO's own polling payloads use).
        channel = self.channel
        async with self._commands.pipeline(transaction=False) as pipe:
            for node, records in per_node.items():
                pipe.publish(node_channel(channel, node), b"\x1e".join(records))
            receivers = await pipe.execute()
        self.counters.routed_messages_published += len(per_node)
        self.counters.routed_published += sum(len(r) for r in per_node.values())
        gone = {node for node, n in zip(per_node, receivers, strict=True) if not n}
        if gone:
            # Not listening (it died, or is resubscribing): ask Redis again next time.
            self._routes = {u: r for u, r in self._routes.items() if gone.isdisjoint(r)}

    def _report_failure(self, exc: Exception) -> None:
        if not self._failing:
            logger.warning("routing an emit through Redis failed (local delivery done): %r", exc)
        self._failing = True

    async def _publish(self, data: Any) -> Any:
        self.counters.broadcast_published += 1
        return await super()._publish(data)

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
                self.counters.broadcast_received += 1
                yield data  # python-socketio's own messages, handled by its _thread

    def _deliver_routed(self, data: bytes) -> None:
        self.counters.routed_messages_received += 1
        deliver = self.fanout.deliver
        for record in data.split(b"\x1e"):
            self.counters.routed_received += 1
            try:
                header, _, encoded = record.partition(b"\n")
                namespace, rooms = orjson.loads(header)
                packet = eio_packet.Packet(eio_packet.MESSAGE, encoded.decode())
            except (ValueError, TypeError):
                logger.warning("dropped a malformed routed emit: %r", record[:200])
                continue
            deliver(namespace, rooms, [packet])

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
