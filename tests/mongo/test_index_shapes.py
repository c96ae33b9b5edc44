"""The message and conversation indexes of issue 14's third pass: each sparse index
holds only the messages it serves, and a database from before them is migrated at
start-up (its clientMsgIds still replay, its replies and mentions are still found)."""

from __future__ import annotations

import attrs
import pytest
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo import ServerInfo, ensure_indexes, mongo_storage
from adapters.mongo.documents import (
    CONVERSATIONS,
    IDEMPOTENCY_KEY,
    MENTIONED_AT,
    MESSAGES,
    SEARCH_KEYS,
    THREAD_SEQ,
    Document,
)
from adapters.mongo.index_migration import META, STATE_ID, migrate_index_fields
from adapters.mongo.message_batches import MessageBatches
from adapters.mongo.transactions import Transactions
from chatcore.chat import Storage
from chatcore.errors import NotFound
from chatcore.models import AppendResult, NewMessage
from chatcore.testing import factories as make

pytestmark = pytest.mark.mongo

INDEX_FIELDS = (IDEMPOTENCY_KEY, THREAD_SEQ, MENTIONED_AT)

# What the database held before: the indexes the migration drops.
OLD_INDEXES = {
    CONVERSATIONS: [
        IndexModel([("_id", ASCENDING), ("memberIds", ASCENDING)], name="id_memberIds")
    ],
    MESSAGES: [
        IndexModel(
            [("conversationId", ASCENDING), ("senderId", ASCENDING), ("clientMsgId", ASCENDING)],
            name="clientMsgId_unique",
            unique=True,
            partialFilterExpression={"clientMsgId": {"$type": "string"}},
        ),
        IndexModel(
            [("conversationId", ASCENDING), ("clientMsgId", ASCENDING), ("senderId", ASCENDING)],
            name="clientMsgId_lookup",
        ),
        IndexModel([("threadId", ASCENDING), ("seq", ASCENDING)], name="threadId_seq", sparse=True),
        IndexModel(
            [("mentions", ASCENDING), ("conversationId", ASCENDING), ("seq", ASCENDING)],
            name="mentions_conversationId_seq",
            sparse=True,
        ),
    ],
}


def _reply(conversation_id: str, sender_id: str, root_id: str) -> NewMessage:
    return attrs.evolve(make.message(conversation_id, sender_id, "reply"), thread_id=root_id)


async def _one_of_each(storage: Storage) -> tuple[str, str]:
    """A plain message, one with a clientMsgId, a reply and a mention; (conversation, root)."""
    conversation = await make.stored_group(storage, "u-a", "u-b")
    root = (await storage.messages.append(make.message(conversation.id, "u-a"))).message
    await storage.messages.append(make.message(conversation.id, "u-a", "keyed", "key-1"))
    await storage.messages.append(_reply(conversation.id, "u-b", root.id))
    mention = attrs.evolve(make.message(conversation.id, "u-a", "@u-b"), mentions=("u-b",))
    await storage.messages.append(mention)
    return conversation.id, root.id


async def _entries(db: AsyncDatabase[Document], index: str) -> int:
    """How many documents ``index`` holds (a sparse index, walked with a hint)."""
    explained = await db.command(
        "explain",
        {"find": MESSAGES, "filter": {}, "hint": index},
        verbosity="executionStats",
    )
    keys: int = explained["executionStats"]["totalKeysExamined"]
    return keys


async def test_each_sparse_index_holds_only_the_messages_it_serves(
    db: AsyncDatabase[Document],
) -> None:
    await _one_of_each(mongo_storage(db))

    assert await db[MESSAGES].count_documents({}) == 4
    assert await _entries(db, "idem_unique") == 1
    assert await _entries(db, "threadId_threadSeq") == 1
    # The mention's key: one per element of "mentions" plus the whole array (multikey).
    assert await _entries(db, "mentions_mentionedAt") <= 2


async def test_a_database_from_before_the_index_fields_is_migrated_once(
    db: AsyncDatabase[Document],
) -> None:
    storage = mongo_storage(db)
    conversation_id, root_id = await _one_of_each(storage)
    # Back to what an earlier version stored and indexed.
    await db[MESSAGES].update_many({}, {"$unset": dict.fromkeys(INDEX_FIELDS, "")})
    for collection, models in OLD_INDEXES.items():
        await db[collection].create_indexes(models)
    await db[META].delete_one({"_id": STATE_ID})

    await ensure_indexes(db)

    for collection, models in OLD_INDEXES.items():
        left = set(await db[collection].index_information())
        assert not left & {m.document["name"] for m in models}
    replay = await storage.messages.append(make.message(conversation_id, "u-a", "keyed", "key-1"))
    assert not replay.created
    assert replay.message.body == "keyed"
    replies = await storage.messages.thread_replies(
        conversation_id, root_id, before=None, after=0, limit=10
    )
    assert [m.sender_id for m in replies] == ["u-b"]
    assert await _entries(db, "mentions_mentionedAt") >= 1
    assert await migrate_index_fields(db) == 0  # done: one read


async def test_a_message_without_client_msg_id_reads_back_null(
    db: AsyncDatabase[Document],
) -> None:
    storage = mongo_storage(db)
    conversation = await make.stored_group(storage, "u-a", "u-b")
    sent = await storage.messages.append(make.message(conversation.id, "u-a"))

    stored = await storage.messages.get(conversation.id, sent.message.id)
    raw = await db[MESSAGES].find_one({"_id": sent.message.id})

    assert stored is not None
    assert stored.client_msg_id is None
    assert raw is not None
    assert IDEMPOTENCY_KEY not in raw


async def test_a_lone_send_from_a_non_member_changes_nothing(
    db: AsyncDatabase[Document],
) -> None:
    storage = mongo_storage(db)
    conversation = await make.stored_group(storage, "u-a", "u-b")
    await storage.messages.append(make.message(conversation.id, "u-a"))
    before = await db[CONVERSATIONS].find_one({"_id": conversation.id})

    with pytest.raises(NotFound):
        await storage.messages.append(make.message(conversation.id, "u-x", "intruder"))

    assert await db[CONVERSATIONS].find_one({"_id": conversation.id}) == before
    assert await db[MESSAGES].count_documents({"conversationId": conversation.id}) == 1


async def test_a_batch_keeps_search_keys_and_index_fields_out_of_last_message(
    db: AsyncDatabase[Document],
) -> None:
    # Two senders in one batch: the batch path (find, bulk update, insert), not a lone send.
    batches = MessageBatches(db[MESSAGES], db[CONVERSATIONS], Transactions(ServerInfo(db.client)))
    conversation = await make.stored_group(mongo_storage(db), "u-a", "u-b")
    sends = [
        make.message(conversation.id, "u-a", "hello", "key-a"),
        make.message(conversation.id, "u-b", "world", "key-b"),
    ]

    outcomes = await batches.write(sends)

    assert [o.message.seq for o in outcomes if isinstance(o, AppendResult)] == [1, 2]
    stored = await db[CONVERSATIONS].find_one({"_id": conversation.id})
    assert stored is not None
    assert stored["lastMessage"]["body"] == "world"
    assert not set(stored["lastMessage"]) & {SEARCH_KEYS, *INDEX_FIELDS}
