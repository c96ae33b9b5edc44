"""Typing indicators: ephemeral, never stored, sent to the other members only."""

from __future__ import annotations

from attrs import define

from chatcore.ports import ConversationRepository, Notifier
from chatcore.services.access import require_membership
from chatcore.services.throttle import Throttle


@define(kw_only=True)
class TypingService:
    conversations: ConversationRepository
    notifier: Notifier
    throttle: Throttle

    async def set_typing(self, user_id: str, conversation_id: str, is_typing: bool) -> None:
        """Relay to the other members; RateLimited (and dropped) over the typing limit."""
        await self.throttle.typing(user_id)
        conversation = await require_membership(self.conversations, conversation_id, user_id)
        others = [m for m in conversation.member_ids if m != user_id]
        if others:
            await self.notifier.typing(conversation_id, user_id, is_typing, others)
