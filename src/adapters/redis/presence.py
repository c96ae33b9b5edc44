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
it does not know rather than lying.

The scripts touch keys they compute (``user:<id>``), so they need a single
Redis (or Sentinel), not Redis Cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chatcore.errors import Unavailable
from chatcore.ports import PresenceTracker

_CONNECT = """
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
if added == 1 and redis.call('SCARD', KEYS[1]) == 1 then return 1 end
return 0
"""

_DISCONNECT = """
local removed = redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
if removed == 1 and redis.call('SCARD', KEYS[1]) == 0 then return 1 end
return 0
"""

# KEYS: alive key, nodes set. ARGV: ttl ms, node id. Returns whether the key was still there.
_HEARTBEAT = """
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return existed
"""

# KEYS: nodes set, node's connection set, node's alive key. ARGV: node id, prefix.
# Removes a dead node's sockets; returns the users left with no socket anywhere.
_REAP = """
if redis.call('EXISTS', KEYS[3]) == 1 then return {} end
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


class RedisPresenceTracker(PresenceTracker):
    """Presence shared through Redis by every process that uses the same ``prefix``."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "chatcore:presence:",
        node_id: str | None = None,
        heartbeat_ttl: float = 15.0,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self.node_id = node_id or uuid.uuid4().hex
        self._ttl_ms = int(heartbeat_ttl * 1000)
        self._connect = client.register_script(_CONNECT)
        self._disconnect = client.register_script(_DISCONNECT)
        self._reap = client.register_script(_REAP)
        self._heartbeat = client.register_script(_HEARTBEAT)
        # This process's sockets (connection id -> user id), the source of truth
        # for writing them back after Redis lost them.
        self._local: dict[str, str] = {}
        # Changes Redis did not take while it was unreachable, replayed by heartbeat().
        self._unsynced_connects = False
        self._unsynced_disconnects: list[tuple[str, str]] = []

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    async def connect(self, user_id: str, connection_id: str) -> bool:
        self._local[connection_id] = user_id
        keys = [self._key("user", user_id), self._key("node", self.node_id), self._key("nodes")]
        args = [f"{self.node_id}|{connection_id}", f"{user_id}|{connection_id}", self.node_id]
        try:
            return bool(await self._call(self._connect, keys, args))
        except Unavailable:
            self._unsynced_connects = True
            raise

    async def disconnect(self, user_id: str, connection_id: str) -> bool:
        self._local.pop(connection_id, None)
        try:
            return await self._remove(user_id, connection_id)
        except Unavailable:
            self._unsynced_disconnects.append((user_id, connection_id))
            raise

    async def _remove(self, user_id: str, connection_id: str) -> bool:
        keys = [self._key("user", user_id), self._key("node", self.node_id)]
        args = [f"{self.node_id}|{connection_id}", f"{user_id}|{connection_id}"]
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

    async def heartbeat(self) -> list[str]:
        """Say this process is alive for another ``heartbeat_ttl`` seconds, and bring
        Redis back in step with this process's sockets if it fell behind (Redis was
        unreachable or restarted empty, or this process stalled and was swept).

        Returns the users whose last socket closed while Redis was unreachable:
        they are offline now, and nobody has been told yet."""
        keys = [self._key("alive", self.node_id), self._key("nodes")]
        existed = await self._call(self._heartbeat, keys, [str(self._ttl_ms), self.node_id])
        offline: list[str] = []
        while self._unsynced_disconnects:
            user_id, connection_id = self._unsynced_disconnects[0]
            if await self._remove(user_id, connection_id):
                offline.append(user_id)
            self._unsynced_disconnects.pop(0)
        if (not existed or self._unsynced_connects) and self._local:
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for connection_id, user_id in self._local.items():
                        pipe.sadd(self._key("user", user_id), f"{self.node_id}|{connection_id}")
                        pipe.sadd(self._key("node", self.node_id), f"{user_id}|{connection_id}")
                    await pipe.execute()
            except RedisError as exc:
                raise Unavailable("presence is unavailable") from exc
        self._unsynced_connects = False
        return offline

    async def sweep(self) -> list[str]:
        """Remove the sockets of processes whose heartbeat expired; return the users
        that now have no socket anywhere (they went offline)."""
        try:
            nodes = await self._redis.smembers(self._key("nodes"))
            offline: list[str] = []
            for raw in nodes:
                node = raw.decode() if isinstance(raw, bytes) else str(raw)
                if node == self.node_id:
                    continue
                keys = [self._key("nodes"), self._key("node", node), self._key("alive", node)]
                gone = await self._reap(keys=keys, args=[node, self._prefix])
                offline.extend(g.decode() if isinstance(g, bytes) else str(g) for g in gone)
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
            gone = await self._reap(keys=keys, args=[self.node_id, self._prefix])
        except RedisError as exc:
            raise Unavailable("presence is unavailable") from exc
        return [g.decode() if isinstance(g, bytes) else str(g) for g in gone]

    async def _call(self, script: Any, keys: list[str], args: list[str]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except RedisError as exc:
            raise Unavailable("presence is unavailable") from exc
