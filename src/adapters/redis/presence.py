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

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    async def connect(self, user_id: str, connection_id: str) -> bool:
        keys = [self._key("user", user_id), self._key("node", self.node_id), self._key("nodes")]
        args = [f"{self.node_id}|{connection_id}", f"{user_id}|{connection_id}", self.node_id]
        return bool(await self._call(self._connect, keys, args))

    async def disconnect(self, user_id: str, connection_id: str) -> bool:
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

    async def heartbeat(self) -> None:
        """Say this process is alive for another ``heartbeat_ttl`` seconds."""
        try:
            await self._redis.set(self._key("alive", self.node_id), b"1", px=self._ttl_ms)
            await self._redis.sadd(self._key("nodes"), self.node_id)
        except RedisError as exc:
            raise Unavailable("presence is unavailable") from exc

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
