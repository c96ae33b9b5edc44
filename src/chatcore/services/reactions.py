"""Reactions: any member toggles an emoji on a message of their conversation."""

from __future__ import annotations

from attrs import define

from chatcore import limits
from chatcore.models import Message
from chatcore.ports import ConversationRepository, MessageRepository, Notifier
from chatcore.services.access import require_membership


@define(kw_only=True)
class ReactionService:
    """Adds and removes reactions; members hear ``messageUpdated`` on every change."""

    messages: MessageRepository
    conversations: ConversationRepository
    notifier: Notifier

    async def react(
        self, user_id: str, conversation_id: str, message_id: str, emoji: str, *, add: bool
    ) -> Message:
        """Add (``add``) or remove the user's ``emoji`` on a message; doing what is
        already done changes nothing and notifies nobody. A deleted message, or a
        21st distinct emoji, is a Conflict."""
        emoji = limits.emoji(emoji)
        conversation = await require_membership(self.conversations, conversation_id, user_id)
        message, changed = await self.messages.react(
            conversation_id, message_id, user_id, emoji, add=add
        )
        if changed:
            await self.notifier.message_updated(message, conversation.member_ids)
        return message
