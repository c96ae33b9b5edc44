"""Background upkeep of shared (Redis) presence: heartbeat, sweep, clean leave.

Runs in the Starlette lifespan of every process when ``CHATCORE_REDIS_URL`` is
set. Every ``ttl / 3`` seconds it refreshes this process's heartbeat (writing
its sockets back if Redis lost them) and sweeps processes whose heartbeat
expired, announcing their users' ``userOffline`` through the PresenceService.
A crashed process's users thus go offline within about ``ttl + ttl / 3``.

After Redis was unreachable for a while, every process's heartbeat may have
expired meanwhile: the first process back would sweep all the others, and
their users would flap offline and online. So a process that has just seen
Redis come back waits one TTL, in which every live process renews its
heartbeat, before it sweeps again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from adapters.redis import RedisPresenceTracker
from chatcore.errors import ChatError
from chatcore.services import PresenceService

log = logging.getLogger("chatcore.presence")


class PresenceUpkeep:
    """Owns the periodic task; ``start()`` after storage opens, ``stop()`` before it closes."""

    def __init__(
        self, tracker: RedisPresenceTracker, presence: PresenceService, *, ttl_seconds: float
    ) -> None:
        self._tracker = tracker
        self._presence = presence
        self._ttl = ttl_seconds
        self._interval = ttl_seconds / 3
        self._task: asyncio.Task[None] | None = None
        self._reachable = True
        # No sweeping before this (loop time): set one TTL after Redis came back.
        self._sweep_from = 0.0

    async def start(self) -> None:
        # The first heartbeat must precede the first socket, or another process's
        # sweep would take this one's connections for a dead process's.
        await self._tick()
        self._task = asyncio.create_task(self._run(), name="presence-upkeep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            # Sockets still open are going away with this process: say so now
            # instead of letting the others wait for the heartbeat to expire.
            offline = await self._tracker.leave()
            if offline:
                await self._presence.went_offline(offline)
        except ChatError as exc:
            log.warning("presence: leaving cleanly failed: %r", exc)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self._tick()

    async def _tick(self) -> None:
        try:
            resync = await self._tracker.heartbeat()
            offline = list(resync.offline)
            now = asyncio.get_running_loop().time()
            if not self._reachable:
                log.info("presence: Redis reachable again")
                self._reachable = True
                self._sweep_from = now + self._ttl
            if now >= self._sweep_from:
                offline += await self._tracker.sweep()
        except ChatError as exc:
            if self._reachable:
                log.warning("presence: Redis unreachable, presence unknown: %r", exc)
            self._reachable = False
            return
        except Exception:
            log.exception("presence upkeep failed")
            return
        try:
            if offline:
                await self._presence.went_offline(offline)
            if resync.online:
                await self._presence.came_online(resync.online)
        except ChatError as exc:
            log.warning("presence: announcing who went offline or online failed: %r", exc)
        except Exception:
            log.exception("presence: announcing who went offline or online failed")
