"""Presence: online while any connection is open, on any tab, device or node."""

from __future__ import annotations

from collections.abc import Sequence

from attrs import define

from chatcore import limits
from chatcore.models import Presence
from chatcore.ports import Clock, ConversationRepository, Notifier, PresenceTracker, UserRepository


@define(kw_only=True)
class PresenceService:
    tracker: PresenceTracker
    users: UserRepository
    conversations: ConversationRepository
    notifier: Notifier
    clock: Clock

    async def connected(self, user_id: str, connection_id: str) -> bool:
        """Record a connection; on the user's first, tell their contacts (userOnline)."""
        first = await self.tracker.connect(user_id, connection_id)
        if first:
            await self.came_online([user_id])
        return first

    async def disconnected(self, user_id: str, connection_id: str) -> bool:
        """Forget a connection; on the user's last, store lastSeenAt and tell contacts."""
        last = await self.tracker.disconnect(user_id, connection_id)
        if last:
            await self._went_offline(user_id)
        return last

    async def went_offline(self, user_ids: Sequence[str]) -> None:
        """Users whose last connection vanished without a disconnect (a crashed
        server process, found by a shared tracker's sweep): store lastSeenAt and
        tell their contacts, as a normal last disconnect does."""
        for user_id in dict.fromkeys(user_ids):
            await self._went_offline(user_id)

    async def came_online(self, user_ids: Sequence[str]) -> None:
        """Users whose connections a shared tracker counted again after losing them
        (e.g. a process that stalled past its heartbeat and was swept): tell their
        contacts, as a first connect does."""
        for user_id in dict.fromkeys(user_ids):
            contacts = await self.conversations.contact_ids(user_id)
            await self.notifier.user_online(user_id, sorted(contacts))

    async def _went_offline(self, user_id: str) -> None:
        now = self.clock.now()
        await self.users.set_last_seen(user_id, now)
        contacts = await self.conversations.contact_ids(user_id)
        await self.notifier.user_offline(user_id, now, sorted(contacts))

    async def query(self, user_ids: Sequence[str]) -> list[Presence]:
        """Presence of the given users that exist, in the order asked."""
        wanted = limits.presence_query(user_ids)
        if not wanted:
            return []
        users = {u.id: u for u in await self.users.get_many(wanted)}
        online = await self.tracker.online(users)
        return [
            Presence(
                user_id=uid,
                online=uid in online,
                last_seen_at=users[uid].last_seen_at,
            )
            for uid in wanted
            if uid in users
        ]
