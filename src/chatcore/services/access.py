"""Membership is the one access rule: to a non-member a conversation does not exist."""

from __future__ import annotations

from chatcore.errors import NotFound
from chatcore.models import Conversation
from chatcore.ports import ConversationRepository


def conversation_not_found() -> NotFound:
    return NotFound("conversation not found")


async def require_membership(
    conversations: ConversationRepository, conversation_id: str, user_id: str
) -> Conversation:
    """The conversation if ``user_id`` is a member; NotFound otherwise (never Forbidden,
    so that conversation ids cannot be probed)."""
    conversation = await conversations.get_for_member(conversation_id, user_id)
    if conversation is None:
        raise conversation_not_found()
    return conversation
