"""The indexes every query of the adapter relies on, created at start (idempotent)."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo.documents import (
    CONVERSATIONS,
    MESSAGES,
    RECEIPTS,
    REFRESH_TOKENS,
    SEARCH_KEYS,
    USERS,
    Document,
)
from adapters.mongo.errors import translate_errors

INDEXES: dict[str, list[IndexModel]] = {
    USERS: [
        # Usernames are unique case-insensitively: the lower-cased copy carries it.
        IndexModel([("usernameLower", ASCENDING)], name="usernameLower_unique", unique=True),
        IndexModel([("displayNameLower", ASCENDING)], name="displayNameLower"),
    ],
    CONVERSATIONS: [
        # One direct conversation per pair. Groups have no directKey field, so a
        # sparse index leaves them out (sparse rather than partial: SecantusDB's
        # planner never uses partial indexes for queries, find_direct needs it).
        IndexModel([("directKey", ASCENDING)], name="directKey_unique", unique=True, sparse=True),
        # "This conversation, if the user is a member": sends, history, reads.
        # mongod answers from the _id index alone; SecantusDB needs both fields.
        IndexModel([("_id", ASCENDING), ("memberIds", ASCENDING)], name="id_memberIds"),
        # A member's conversation list: most recent activity first, ties by id.
        IndexModel(
            [("memberIds", ASCENDING), ("lastActivityAt", DESCENDING), ("_id", DESCENDING)],
            name="memberIds_activity",
        ),
    ],
    MESSAGES: [
        # History pages are ranges on seq; the unique index also makes a seq
        # impossible to hand out twice.
        IndexModel(
            [("conversationId", ASCENDING), ("seq", ASCENDING)],
            name="conversationId_seq_unique",
            unique=True,
        ),
        # Idempotent sends: one message per (conversation, sender, clientMsgId);
        # messages without a clientMsgId (stored as null) are not indexed.
        IndexModel(
            [("conversationId", ASCENDING), ("senderId", ASCENDING), ("clientMsgId", ASCENDING)],
            name="clientMsgId_unique",
            unique=True,
            partialFilterExpression={"clientMsgId": {"$type": "string"}},
        ),
        # Looking a replay up (the partial index above only enforces uniqueness on
        # SecantusDB, whose planner does not use partial indexes).
        IndexModel(
            [("conversationId", ASCENDING), ("clientMsgId", ASCENDING), ("senderId", ASCENDING)],
            name="clientMsgId_lookup",
        ),
        # Message search (adapters.mongo.search): a range of words (multikey, one
        # entry per distinct word), and time windows across conversations or in one
        # (one entry per message each).
        IndexModel([(SEARCH_KEYS, ASCENDING)], name="searchWords"),
        IndexModel([("createdAt", DESCENDING)], name="createdAt"),
        IndexModel(
            [("conversationId", ASCENDING), ("createdAt", DESCENDING)],
            name="conversationId_createdAt",
        ),
        # A thread's replies, paged by seq. Sparse: top-level messages have no threadId.
        IndexModel([("threadId", ASCENDING), ("seq", ASCENDING)], name="threadId_seq", sparse=True),
        # Unread mentions: the viewer's mentions in one conversation after their read
        # pointer, an index range. Sparse (and multikey): only messages that mention someone.
        IndexModel(
            [("mentions", ASCENDING), ("conversationId", ASCENDING), ("seq", ASCENDING)],
            name="mentions_conversationId_seq",
            sparse=True,
        ),
    ],
    RECEIPTS: [
        IndexModel(
            [("conversationId", ASCENDING), ("userId", ASCENDING)],
            name="conversationId_userId_unique",
            unique=True,
        ),
        IndexModel([("userId", ASCENDING), ("conversationId", ASCENDING)], name="userId"),
        # The filtered upsert of advance() (all three fields, for SecantusDB's planner).
        IndexModel(
            [("conversationId", ASCENDING), ("userId", ASCENDING), ("lastReadSeq", ASCENDING)],
            name="conversationId_userId_lastReadSeq",
        ),
    ],
    REFRESH_TOKENS: [
        IndexModel([("userId", ASCENDING)], name="userId"),
        IndexModel([("familyId", ASCENDING)], name="familyId"),
        # The server removes expired tokens by itself (consume also checks expiry,
        # since the TTL monitor runs only every minute or so).
        IndexModel([("expiresAt", ASCENDING)], name="expiresAt_ttl", expireAfterSeconds=0),
    ],
}


# Indexes an earlier release created and this one no longer uses: dropped at start
# (each costs index entries on every write). The first search release's two
# indexes held ~65 word prefixes per message each.
RETIRED: dict[str, list[str]] = {MESSAGES: ["search", "search_conversation"]}


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    """Drop the retired indexes that exist, then create the adapter's indexes if they
    are missing (one command per collection)."""
    with translate_errors():
        for collection, names in RETIRED.items():
            existing = await db[collection].index_information()
            for name in names:
                if name in existing:
                    await db[collection].drop_index(name)
        for collection, models in INDEXES.items():
            await db[collection].create_indexes(models)
