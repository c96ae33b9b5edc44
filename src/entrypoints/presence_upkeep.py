"""Background upkeep of shared (Redis) presence: heartbeat, sweep, clean leave.

Runs in the Starlette lifespan of every process when ``CHATCORE_REDIS_URL`` is
set. Every ``ttl / 3`` seconds it refreshes this process's heartbeat (writing
its sockets back if Redis lost them) and sweeps processes whose heartbeat
expired, announcing their users' ``userOffline`` through the PresenceService.
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
        self._interval = ttl_seconds / 3
        self._task: asyncio.Task[None] | None = None
        self._healthy = True

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
            offline = await self._tracker.heartbeat()
            offline += await self._tracker.sweep()
            if offline:
                await self._presence.went_offline(offline)
        except ChatError as exc:
            if self._healthy:
                log.warning("presence: Redis unreachable, presence unknown: %r", exc)
            self._healthy = False
            return
        except Exception:
            log.exception("presence upkeep failed")
            return
        if not self._healthy:
            log.info("presence: Redis reachable again")
        self._healthy = True
