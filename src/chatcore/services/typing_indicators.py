"""Typing indicators: ephemeral, never stored, sent to the other members only."""

from __future__ import annotations

from attrs import define

from chatcore.ports import ConversationRepository, Notifier
from chatcore.services.access import require_membership


@define(kw_only=True)
class TypingService:
    conversations: ConversationRepository
    notifier: Notifier

    async def set_typing(self, user_id: str, conversation_id: str, is_typing: bool) -> None:
        conversation = await require_membership(self.conversations, conversation_id, user_id)
        others = [m for m in conversation.member_ids if m != user_id]
        if others:
            await self.notifier.typing(conversation_id, user_id, is_typing, others)
