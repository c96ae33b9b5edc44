"""The keys of the API's JSON objects, as HTTP responses and socket events carry them."""

from __future__ import annotations

MESSAGE_KEYS = frozenset(
    {
        "id",
        "conversationId",
        "seq",
        "senderId",
        "body",
        "clientMsgId",
        "createdAt",
        "editedAt",
        "deletedAt",
        # v1.1
        "threadId",
        "thread",
        "reactions",
        "mentions",
    }
)
CONVERSATION_KEYS = frozenset(
    {
        "id",
        "type",
        "name",
        "memberIds",
        "createdAt",
        "lastMessage",
        "lastSeq",
        "lastReadSeq",
        "unreadCount",
        # v1.1
        "unreadMentions",
    }
)
RECEIPT_KEYS = frozenset({"conversationId", "userId", "lastReadSeq", "readAt"})
