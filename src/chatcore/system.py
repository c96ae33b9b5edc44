"""The in-process defaults of the Clock, IdGenerator, PresenceTracker and RateLimiter
ports (standard library only, used in production as they are)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

from chatcore.ports import Clock, IdGenerator, PresenceTracker, RateLimiter
from chatcore.rate_limits import Quota, Rate, gcra, micros, refunded

# The in-process rate limiter forgets expired keys every this many acquisitions.
_SWEEP_EVERY: Final = 4096


def truncate_to_millis(at: datetime) -> datetime:
    """Stores keep milliseconds; so does every time the domain hands out."""
    return at.replace(microsecond=at.microsecond - at.microsecond % 1000)


class SystemClock(Clock):
    """Wall-clock time in UTC at millisecond precision."""

    def now(self) -> datetime:
        return truncate_to_millis(datetime.now(UTC))


class TimeOrderedIdGenerator(IdGenerator):
    """24 hex characters like a MongoDB ObjectId: 6 bytes of milliseconds, 6 random.

    Ids created later sort later (to the millisecond), which keeps index inserts
    append-mostly; they reveal creation time, as ObjectIds do.
    """

    def new_id(self) -> str:
        millis = time.time_ns() // 1_000_000
        return millis.to_bytes(6, "big").hex() + os.urandom(6).hex()


class LocalPresenceTracker(PresenceTracker):
    """Counts connections per user in memory (single process; see the Redis adapter
    for several). Each method runs without awaiting, so it is atomic under asyncio."""

    def __init__(self) -> None:
        self._connections: dict[str, set[str]] = {}

    async def connect(self, user_id: str, connection_id: str) -> bool:
        connections = self._connections.setdefault(user_id, set())
        first = not connections
        connections.add(connection_id)
        return first

    async def disconnect(self, user_id: str, connection_id: str) -> bool:
        connections = self._connections.get(user_id)
        if not connections or connection_id not in connections:
            return False
        connections.discard(connection_id)
        if connections:
            return False
        del self._connections[user_id]
        return True

    async def online(self, user_ids: Iterable[str]) -> set[str]:
        return {uid for uid in user_ids if uid in self._connections}


class LocalRateLimiter(RateLimiter):
    """Counts in this process only (one server, or the fallback when Redis is down).

    One integer per key; keys whose TAT has passed are forgotten now and then, so
    memory follows the number of recently active keys, not of every key ever seen.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tats: dict[str, int] = {}
        self._since_sweep = 0

    async def acquire(self, key: str, rate: Rate) -> Quota:
        return self.acquire_now(key, rate)

    async def release(self, key: str, rate: Rate) -> None:
        self.release_now(key, rate)

    def acquire_now(self, key: str, rate: Rate) -> Quota:
        """:meth:`acquire` without the await (for callers that are not coroutines)."""
        now = micros(self._clock.now())
        new_tat, quota = gcra(self._tats.get(key), now, rate)
        if new_tat is not None:
            self._tats[key] = new_tat
            self._since_sweep += 1
            if self._since_sweep >= _SWEEP_EVERY:
                self._sweep(now)
        return quota

    def release_now(self, key: str, rate: Rate) -> None:
        """:meth:`release` without the await."""
        new_tat = refunded(self._tats.get(key), micros(self._clock.now()), rate)
        if new_tat is None:
            self._tats.pop(key, None)
        else:
            self._tats[key] = new_tat

    def __len__(self) -> int:
        """How many keys are remembered (expired ones until the next sweep)."""
        return len(self._tats)

    def _sweep(self, now: int) -> None:
        self._since_sweep = 0
        self._tats = {k: tat for k, tat in self._tats.items() if tat > now}
