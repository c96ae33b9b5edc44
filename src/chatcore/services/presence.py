"""Presence: online while any connection is open, on any tab, device or node."""

from __future__ import annotations

from collections.abc import Sequence

from attrs import define

from chatcore.errors import ValidationFailed
from chatcore.models import Presence
from chatcore.ports import Clock, ConversationRepository, Notifier, PresenceTracker, UserRepository

MAX_PRESENCE_QUERY = 100


@define
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
            contacts = await self.conversations.contact_ids(user_id)
            await self.notifier.user_online(user_id, sorted(contacts))
        return first

    async def disconnected(self, user_id: str, connection_id: str) -> bool:
        """Forget a connection; on the user's last, store lastSeenAt and tell contacts."""
        last = await self.tracker.disconnect(user_id, connection_id)
        if last:
            now = self.clock.now()
            await self.users.set_last_seen(user_id, now)
            contacts = await self.conversations.contact_ids(user_id)
            await self.notifier.user_offline(user_id, now, sorted(contacts))
        return last

    async def query(self, user_ids: Sequence[str]) -> list[Presence]:
        """Presence of the given users that exist, in the order asked."""
        wanted = list(dict.fromkeys(user_ids))
        if len(wanted) > MAX_PRESENCE_QUERY:
            raise ValidationFailed(
                f"ask for at most {MAX_PRESENCE_QUERY} users", details={"field": "userIds"}
            )
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
