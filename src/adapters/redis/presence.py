"""RedisPresenceTracker: exact online/offline across every server process.

Layout (all keys under ``prefix``):

- ``user:<userId>``   set of ``<nodeId>|<connectionId>``: the user's live sockets anywhere
- ``node:<nodeId>``   set of ``<userId>|<connectionId>`` held by that process
- ``alive:<nodeId>``  heartbeat key with a TTL, refreshed by :meth:`heartbeat`
- ``nodes``           set of node ids that may still hold connections

First/last socket decisions are Lua scripts, so they are atomic across
processes: ``userOnline`` fires once on a user's first socket anywhere and
``userOffline`` once on the last. A process that dies without cleaning up
stops refreshing ``alive:<nodeId>``; any live process's :meth:`sweep` then
removes its sockets and reports who went offline. Bound: a crashed process's
users go offline within ``heartbeat_ttl + sweep interval`` seconds.

Each tracker also remembers its own process's sockets. When its heartbeat
finds its ``alive`` key gone (Redis restarted and lost everything, or this
process stalled past the TTL and was swept), it writes them back, so presence
heals without a restart. Redis errors become ``Unavailable``: presence says
it does not know rather than lying; what Redis missed meanwhile (sockets that
opened or closed) is caught up by the next heartbeat, which reports who turned
out to be offline, or online again, so that contacts can be told
(:class:`Resync`).

``epoch`` holds a random id, set by the first heartbeat that finds it missing:
a tracker that sees it change knows Redis lost its data (a restart without
persistence), rather than this process having been swept. After a loss, the
write-back is silent (contacts were never told those users left), except for
sockets that opened while Redis was unreachable (never announced).

Given a ``routes_channel``, the scripts also publish route notices there for
:class:`adapters.redis.routing.RoutedRedisManager` (a user id when the set of
nodes holding that user changed, ``*`` after a sweep or a write-back).

The scripts touch keys they compute (``user:<id>``), so they need a single
Redis (or Sentinel), not Redis Cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chatcore.errors import Unavailable
from chatcore.ports import PresenceTracker

# Route notices (see adapters.redis.routing): when a user's first socket on a node
# opens or their last one there closes, the set of nodes holding them changed, and the
# user id is published on the routes channel (ARGV[4]; '' for none) in the same step.
_HELD_BY_NODE = """
local function held_by_node(key, node)
  local prefix = node .. '|'
  for _, entry in ipairs(redis.call('SMEMBERS', key)) do
    if string.sub(entry, 1, #prefix) == prefix then return true end
  end
  return false
end
"""

# KEYS: user set, node set, nodes. ARGV: node|conn, user|conn, node id, routes channel, user.
_CONNECT = (
    _HELD_BY_NODE
    + """
local new_route = ARGV[4] ~= '' and not held_by_node(KEYS[1], ARGV[3])
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
if new_route and added == 1 then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
if added == 1 and redis.call('SCARD', KEYS[1]) == 1 then return 1 end
return 0
"""
)

# KEYS: user set, node set. ARGV: node|conn, user|conn, node id, routes channel, user.
_DISCONNECT = (
    _HELD_BY_NODE
    + """
local removed = redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
if removed == 1 and ARGV[4] ~= '' and not held_by_node(KEYS[1], ARGV[3]) then
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
if removed == 1 and redis.call('SCARD', KEYS[1]) == 0 then return 1 end
return 0
"""
)

# KEYS: alive key, nodes set, epoch key. ARGV: ttl ms, node id, a new epoch (used if none).
# Returns {whether the alive key was still there, the epoch}.
_HEARTBEAT = """
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3], 'NX')
return {existed, redis.call('GET', KEYS[3])}
"""

# KEYS: node's connection set. ARGV: prefix, node id, routes channel, then user id,
# connection id pairs. Puts this node's sockets back; returns the users who had no
# socket anywhere before. Every route may have changed: '*' on the routes channel.
_WRITE_BACK = """
local first = {}
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], '*') end
for i = 4, #ARGV, 2 do
  local user, conn = ARGV[i], ARGV[i + 1]
  local key = ARGV[1] .. 'user:' .. user
  local added = redis.call('SADD', key, ARGV[2] .. '|' .. conn)
  redis.call('SADD', KEYS[1], user .. '|' .. conn)
  if added == 1 and redis.call('SCARD', key) == 1 then table.insert(first, user) end
end
return first
"""

# KEYS: nodes set, node's connection set, node's alive key. ARGV: node id, prefix,
# routes channel. Removes a dead node's sockets; returns the users left with no socket
# anywhere. Routes through that node are gone: '*' on the routes channel.
_REAP = """
if redis.call('EXISTS', KEYS[3]) == 1 then return {} end
if ARGV[3] ~= '' and redis.call('SCARD', KEYS[2]) > 0 then
  redis.call('PUBLISH', ARGV[3], '*')
end
local offline = {}
for _, entry in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local sep = string.find(entry, '|', 1, true)
  local user = string.sub(entry, 1, sep - 1)
  local conn = string.sub(entry, sep + 1)
  local key = ARGV[2] .. 'user:' .. user
  redis.call('SREM', key, ARGV[1] .. '|' .. conn)
  if redis.call('SCARD', key) == 0 then table.insert(offline, user) end
end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[1], ARGV[1])
return offline
"""


@dataclass
class Resync:
    """What a heartbeat found while bringing Redis back in step with this process."""

    # Users whose last socket closed while Redis was unreachable: offline, nobody told yet.
    offline: list[str] = field(default_factory=list)
    # Users whose sockets were written back and who were gone from Redis: this process
    # was swept (contacts were told they left), or they connected while Redis was
    # unreachable (never announced). Online again; nobody told yet.
    online: list[str] = field(default_factory=list)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisPresenceTracker(PresenceTracker):
    """Presence shared through Redis by every process that uses the same ``prefix``."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "chatcore:presence:",
        node_id: str | None = None,
        heartbeat_ttl: float = 15.0,
        routes_channel: str | None = None,
    ) -> None:
        self._redis = client
        # Where route notices go (adapters.redis.routing); none when nobody routes.
        self._routes_channel = routes_channel or ""
        self._prefix = prefix
        self.node_id = node_id or uuid.uuid4().hex
        self._ttl_ms = int(heartbeat_ttl * 1000)
        self._connect = client.register_script(_CONNECT)
        self._disconnect = client.register_script(_DISCONNECT)
        self._reap = client.register_script(_REAP)
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._write_back = client.register_script(_WRITE_BACK)
        # This process's sockets as (user id, connection id) (connection ids need not
        # be unique across users): the source of truth for writing them back.
        self._local: set[tuple[str, str]] = set()
        # Changes Redis did not take while it was unreachable, replayed by heartbeat().
        self._unsynced_connects: set[tuple[str, str]] = set()
        self._unsynced_disconnects: list[tuple[str, str]] = []
        # The epoch last seen in Redis; a different one means Redis lost its data.
        self._epoch: str | None = None
        # Catching up, kept across heartbeats that fail halfway: Redis lost its data;
        # this process's sockets must be written back; users whose closed sockets were
        # replayed to no effect; what the next successful heartbeat reports.
        self._lost = False
        self._behind = False
        self._replayed: list[str] = []
        self._pending = Resync()

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    async def connect(self, user_id: str, connection_id: str) -> bool:
        self._local.add((user_id, connection_id))
        keys = [self._key("user", user_id), self._key("node", self.node_id), self._key("nodes")]
        args = [
            *(f"{self.node_id}|{connection_id}", f"{user_id}|{connection_id}", self.node_id),
            *(self._routes_channel, user_id),
        ]
        try:
            return bool(await self._call(self._connect, keys, args))
        except Unavailable:
            self._unsynced_connects.add((user_id, connection_id))
            raise

    async def disconnect(self, user_id: str, connection_id: str) -> bool:
        self._local.discard((user_id, connection_id))
        self._unsynced_connects.discard((user_id, connection_id))
        try:
            return await self._remove(user_id, connection_id)
        except Unavailable:
            self._unsynced_disconnects.append((user_id, connection_id))
            raise

    async def _remove(self, user_id: str, connection_id: str) -> bool:
        keys = [self._key("user", user_id), self._key("node", self.node_id)]
        args = [
            *(f"{self.node_id}|{connection_id}", f"{user_id}|{connection_id}", self.node_id),
            *(self._routes_channel, user_id),
        ]
        return bool(await self._call(self._disconnect, keys, args))

    async def online(self, user_ids: Iterable[str]) -> set[str]:
        ids = list(user_ids)
        if not ids:
            return set()
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for uid in ids:
                    pipe.scard(self._key("user", uid))
                counts = await pipe.execute()
        except RedisError as exc:
            raise Unavailable("presence is unavailable") from exc
        return {uid for uid, n in zip(ids, counts, strict=True) if n}

    async def heartbeat(self) -> Resync:
        """Say this process is alive for another ``heartbeat_ttl`` seconds, and bring
        Redis back in step with this process's sockets if it fell behind (Redis was
        unreachable or restarted empty, or this process stalled and was swept).

        Returns who turned out to be offline or online again meanwhile (nobody has
        been told yet). Raises ``Unavailable`` while Redis does not answer; what was
        not done yet is done by a later call, and reported then."""
        keys = [self._key("alive", self.node_id), self._key("nodes"), self._key("epoch")]
        args = [str(self._ttl_ms), self.node_id, uuid.uuid4().hex]
        existed, raw_epoch = await self._call(self._heartbeat, keys, args)
        epoch = _text(raw_epoch)
        if self._epoch is not None and epoch != self._epoch:
            self._lost = True
        self._epoch = epoch
        if not existed:
            self._behind = True
        pending = self._pending
        while self._unsynced_disconnects:
            user_id, connection_id = self._unsynced_disconnects[0]
            if await self._remove(user_id, connection_id):
                pending.offline.append(user_id)
            else:
                self._replayed.append(user_id)
            self._unsynced_disconnects.pop(0)
        if self._behind or self._lost or self._unsynced_connects:
            unsynced = set(self._unsynced_connects)
            came_back = await self._put_back()
            if self._lost:
                # Nobody was told that these users had left: only announce those who
                # connected while Redis was unreachable.
                unannounced = {user_id for user_id, _ in unsynced}
                came_back = [u for u in came_back if u in unannounced]
            pending.online += came_back
            self._unsynced_connects -= unsynced
            self._behind = False
        if self._lost and self._replayed:
            # Redis forgot the closed sockets along with everything else, so removing
            # them said nothing: whoever has no socket left (once written back) left.
            users = list(dict.fromkeys(self._replayed))
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id in users:
                    pipe.scard(self._key("user", user_id))
                counts = await self._execute(pipe)
            pending.offline += [u for u, n in zip(users, counts, strict=True) if not n]
        self._lost = False
        self._replayed.clear()
        self._pending = Resync()
        return pending

    async def _put_back(self) -> list[str]:
        """Write this process's sockets back; return the users that had none anywhere."""
        snapshot = sorted(self._local)
        if not snapshot:
            return []
        args = [self._prefix, self.node_id, self._routes_channel]
        for user_id, connection_id in snapshot:
            args += [user_id, connection_id]
        first = await self._call(self._write_back, [self._key("node", self.node_id)], args)
        # A socket that closed while the script was on its way may have been removed
        # before it ran, and written back after: take it out again (silently: if that
        # was the user's last socket, its disconnect already said so).
        for closed in [s for s in snapshot if s not in self._local]:
            await self._remove(*closed)
        return list(dict.fromkeys(_text(u) for u in first))

    async def sweep(self) -> list[str]:
        """Remove the sockets of processes whose heartbeat expired; return the users
        that now have no socket anywhere (they went offline)."""
        try:
            nodes = await self._redis.smembers(self._key("nodes"))
            offline: list[str] = []
            for raw in nodes:
                node = _text(raw)
                if node == self.node_id:
                    continue
                keys = [self._key("nodes"), self._key("node", node), self._key("alive", node)]
                gone = await self._reap(keys=keys, args=[node, self._prefix, self._routes_channel])
                offline.extend(_text(g) for g in gone)
            return offline
        except RedisError as exc:
            raise Unavailable("presence is unavailable") from exc

    async def leave(self) -> list[str]:
        """On clean shutdown: drop this process's sockets at once; return who went offline."""
        try:
            await self._redis.delete(self._key("alive", self.node_id))
            keys = [
                self._key("nodes"),
                self._key("node", self.node_id),
                self._key("alive", self.node_id),
            ]
            gone = await self._reap(
                keys=keys, args=[self.node_id, self._prefix, self._routes_channel]
            )
        except RedisError as exc:
            raise Unavailable("presence is unavailable") from exc
        return [_text(g) for g in gone]

    async def _call(self, script: Any, keys: list[str], args: list[str]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except RedisError as exc:
            raise Unavailable("presence is unavailable") from exc

    @staticmethod
    async def _execute(pipe: Any) -> list[Any]:
        try:
            results: list[Any] = await pipe.execute()
        except RedisError as exc:
            raise Unavailable("presence is unavailable") from exc
        return results
