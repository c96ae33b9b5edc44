"""Domain models as JSON-ready dicts in the public contract's shapes (camelCase keys).

Shared by both edges that speak JSON: the HTTP routes and the Socket.IO
notifier/handlers. Times are ISO 8601 UTC with milliseconds and a ``Z``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chatcore.models import (
    ConversationView,
    Message,
    Presence,
    ReadReceipt,
    ThreadSummary,
    User,
)

JsonDict = dict[str, Any]


def iso(at: datetime | None) -> str | None:
    """``2026-01-01T12:00:00.000Z``; None stays None."""
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    elif at.utcoffset():
        at = at.astimezone(UTC)
    # isoformat is C code, twice as fast as strftime; it ends in "+00:00" here.
    return at.isoformat(timespec="milliseconds")[:-6] + "Z"


def user_json(user: User) -> JsonDict:
    return {
        "id": user.id,
        "username": user.username,
        "displayName": user.display_name,
        "createdAt": iso(user.created_at),
        "lastSeenAt": iso(user.last_seen_at),
    }


# The last message turned into JSON, and its JSON: a send needs the same stored Message
# twice (the ``newMessage`` emit and the sender's ack, or the HTTP response).
_last_message: tuple[Message, JsonDict] | None = None


def message_json(message: Message) -> JsonDict:
    """The contract's Message. Messages are immutable, so asked twice in a row for the
    same one (by identity) it returns the same dict again: callers must not change it."""
    global _last_message
    last = _last_message
    if last is not None and last[0] is message:
        return last[1]
    data = _message_json(message)
    _last_message = (message, data)
    return data


def _message_json(message: Message) -> JsonDict:
    return {
        "id": message.id,
        "conversationId": message.conversation_id,
        "seq": message.seq,
        "senderId": message.sender_id,
        "body": message.body,
        "clientMsgId": message.client_msg_id,
        "createdAt": iso(message.created_at),
        "editedAt": iso(message.edited_at),
        "deletedAt": iso(message.deleted_at),
        # v1.1 (API.md): v1 clients ignore these keys.
        "threadId": message.thread_id,
        "thread": thread_json(message.thread) if message.thread is not None else None,
        "reactions": [{"emoji": r.emoji, "userIds": list(r.user_ids)} for r in message.reactions]
        if message.reactions
        else [],
        "mentions": list(message.mentions) if message.mentions else [],
    }


def thread_json(thread: ThreadSummary) -> JsonDict:
    return {
        "replyCount": thread.reply_count,
        "lastReplyAt": iso(thread.last_reply_at),
        "participantIds": list(thread.participant_ids),
    }


def conversation_json(view: ConversationView) -> JsonDict:
    conversation = view.conversation
    last = conversation.last_message
    return {
        "id": conversation.id,
        "type": conversation.type.value,
        "name": conversation.name,
        "memberIds": list(conversation.member_ids),
        "createdAt": iso(conversation.created_at),
        "lastMessage": message_json(last) if last is not None else None,
        "lastSeq": conversation.last_seq,
        "lastReadSeq": view.last_read_seq,
        "unreadCount": view.unread_count,
        "unreadMentions": view.unread_mentions,
    }


def receipt_json(receipt: ReadReceipt) -> JsonDict:
    return {
        "conversationId": receipt.conversation_id,
        "userId": receipt.user_id,
        "lastReadSeq": receipt.last_read_seq,
        "readAt": iso(receipt.read_at),
    }


def presence_json(presence: Presence) -> JsonDict:
    return {
        "userId": presence.user_id,
        "online": presence.online,
        "lastSeenAt": iso(presence.last_seen_at),
    }


def error_json(code: str, message: str, details: Any = None) -> JsonDict:
    """The error envelope: ``{"error": {"code", "message", "details"?}}``."""
    error: JsonDict = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}
