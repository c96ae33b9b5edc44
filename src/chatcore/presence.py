"""The in-process PresenceTracker: exact for one server process, no infrastructure."""

from __future__ import annotations

from collections.abc import Iterable

from chatcore.ports import PresenceTracker


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
