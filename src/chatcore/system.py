"""The in-process defaults of the Clock, IdGenerator and PresenceTracker ports
(standard library only, used in production as they are)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime

from chatcore.ports import Clock, IdGenerator, PresenceTracker


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
