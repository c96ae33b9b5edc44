"""The indexes every query of the adapter relies on, created at start (idempotent)."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo.documents import (
    CONVERSATIONS,
    IDEMPOTENCY_KEY,
    MENTIONED_AT,
    MESSAGES,
    RECEIPTS,
    REFRESH_TOKENS,
    SEARCH_KEYS,
    THREAD_SEQ,
    USERS,
    Document,
)
from adapters.mongo.errors import translate_errors
from adapters.mongo.index_migration import migrate_direct_keys, migrate_index_fields

INDEXES: dict[str, list[IndexModel]] = {
    USERS: [
        # Usernames are unique case-insensitively: the lower-cased copy carries it.
        IndexModel([("usernameLower", ASCENDING)], name="usernameLower_unique", unique=True),
        IndexModel([("displayNameLower", ASCENDING)], name="displayNameLower"),
    ],
    CONVERSATIONS: [
        # No directKey index: one direct conversation per pair is the directKeys
        # collection's _id (adapters.mongo.conversations), so that the conversation
        # document, rewritten on every send batch, has one index fewer.
        # No (_id, memberIds) index: "this conversation, if the user is a member"
        # reads by _id with the hint BY_ID (SecantusDB's planner otherwise scans for
        # a filter field outside the index). Every index of this document is
        # rewritten on every send's lastSeq update, and that one was multikey.
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
        # Idempotent sends: one message per (conversation, sender, clientMsgId), as one
        # key (documents.idempotency_key) that only messages with a clientMsgId have.
        # One index enforces it and serves the replay lookup (SecantusDB's planner
        # uses sparse indexes, not partial ones).
        IndexModel([(IDEMPOTENCY_KEY, ASCENDING)], name="idem_unique", unique=True, sparse=True),
        # Message search (adapters.mongo.search): a range of words (multikey, one
        # entry per distinct word), and time windows across conversations or in one
        # (one entry per message each).
        IndexModel([(SEARCH_KEYS, ASCENDING)], name="searchWords"),
        IndexModel([("createdAt", DESCENDING)], name="createdAt"),
        IndexModel(
            [("conversationId", ASCENDING), ("createdAt", DESCENDING)],
            name="conversationId_createdAt",
        ),
        # A thread's replies, paged by seq. Sparse on fields only replies have (a
        # sparse compound index holds every document with ANY of its fields).
        IndexModel(
            [("threadId", ASCENDING), (THREAD_SEQ, ASCENDING)],
            name="threadId_threadSeq",
            sparse=True,
        ),
        # Unread mentions: the viewer's mentions in one conversation after their read
        # pointer, an index range. Sparse on fields only mentioning messages have.
        IndexModel(
            [
                ("mentions", ASCENDING),
                (f"{MENTIONED_AT}.c", ASCENDING),
                (f"{MENTIONED_AT}.s", ASCENDING),
            ],
            name="mentions_mentionedAt",
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


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    """Create the adapter's indexes if they are missing (one command per collection),
    then move a database from before them (:mod:`adapters.mongo.index_migration`,
    which also drops the indexes nothing queries any more: a few reads once it has
    run)."""
    with translate_errors():
        for collection, models in INDEXES.items():
            await db[collection].create_indexes(models)
    await migrate_direct_keys(db)
    await migrate_index_fields(db)
