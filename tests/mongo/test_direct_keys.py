"""One direct conversation per pair, kept by the ``directKeys`` collection
(:mod:`adapters.mongo.conversations`): racing creators on separate clients, a key
left without its conversation, and a database from before it (its unique
``directKey`` index) moved at start-up."""

from __future__ import annotations

import asyncio

import pytest
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo import ensure_indexes, mongo_storage
from adapters.mongo.documents import (
    CONVERSATIONS,
    DIRECT_KEYS,
    Document,
    conversation_to_document,
    direct_key,
)
from adapters.mongo.index_migration import OLD_DIRECT_INDEX, migrate_direct_keys
from chatcore.chat import Storage
from chatcore.errors import Conflict
from chatcore.testing import factories as make

pytestmark = pytest.mark.mongo


async def test_racing_creators_on_two_clients_end_with_one_conversation_per_pair(
    two_storages: tuple[Storage, Storage], db: AsyncDatabase[Document]
) -> None:
    pairs = [(f"u-{i}", f"v-{i}") for i in range(4)]
    attempts = [
        two_storages[n % 2].conversations.get_or_create_direct(
            make.direct(a, b) if n % 3 else make.direct(b, a)
        )
        for a, b in pairs
        for n in range(6)
    ]

    results = await asyncio.gather(*attempts)

    for i, (a, b) in enumerate(pairs):
        mine = results[i * 6 : i * 6 + 6]
        assert len({c.id for c, _ in mine}) == 1
        assert sum(created for _, created in mine) == 1
        for storage in two_storages:
            found = await storage.conversations.find_direct(b, a)
            assert found is not None
            assert found.id == mine[0][0].id
    assert await db[CONVERSATIONS].count_documents({}) == len(pairs)
    assert await db[DIRECT_KEYS].count_documents({}) == len(pairs)


async def test_a_key_left_without_its_conversation_is_taken_over(
    db: AsyncDatabase[Document],
) -> None:
    # What a creator that stopped between its two inserts leaves (no transactions).
    storage = mongo_storage(db)
    await db[DIRECT_KEYS].insert_one({"_id": direct_key("u-a", "u-b"), "conversationId": "c-1"})
    assert await storage.conversations.find_direct("u-a", "u-b") is None
    with pytest.raises(Conflict):
        await storage.conversations.create(make.direct("u-a", "u-b"))

    stored, created = await storage.conversations.get_or_create_direct(make.direct("u-b", "u-a"))
    again, created_again = await storage.conversations.get_or_create_direct(
        make.direct("u-a", "u-b")
    )

    assert (stored.id, created) == ("c-1", True)
    assert (again, created_again) == (stored, False)
    assert await storage.conversations.find_direct("u-a", "u-b") == stored
    assert await db[CONVERSATIONS].count_documents({}) == 1


async def test_create_of_a_second_direct_conversation_for_a_pair_is_a_conflict(
    db: AsyncDatabase[Document],
) -> None:
    storage = mongo_storage(db)
    first = make.direct("u-a", "u-b")
    await storage.conversations.create(first)

    with pytest.raises(Conflict):
        await storage.conversations.create(make.direct("u-b", "u-a"))
    assert await storage.conversations.find_direct("u-b", "u-a") == first
    assert await db[CONVERSATIONS].count_documents({}) == 1


async def test_a_database_with_the_direct_key_index_is_moved_to_direct_keys(
    db: AsyncDatabase[Document],
) -> None:
    # What an earlier version stored: the key on the document, a unique index on it.
    old = [make.direct("u-a", "u-b"), make.direct("u-c", "u-a")]
    group = make.group("u-a", "u-b", "u-c")
    for conversation in old:
        doc = conversation_to_document(conversation)
        doc["directKey"] = direct_key(*conversation.member_ids)
        await db[CONVERSATIONS].insert_one(doc)
    await db[CONVERSATIONS].insert_one(conversation_to_document(group))
    await db[CONVERSATIONS].create_indexes(
        [IndexModel([("directKey", ASCENDING)], name=OLD_DIRECT_INDEX, unique=True, sparse=True)]
    )
    # A run cut off after its first key: the next start copies the rest.
    await db[DIRECT_KEYS].insert_one({"_id": direct_key("u-a", "u-b"), "conversationId": old[0].id})

    await ensure_indexes(db)

    assert OLD_DIRECT_INDEX not in await db[CONVERSATIONS].index_information()
    assert await db[DIRECT_KEYS].count_documents({}) == 2
    storage = mongo_storage(db)
    assert await storage.conversations.find_direct("u-b", "u-a") == old[0]
    assert await storage.conversations.find_direct("u-a", "u-c") == old[1]
    again, created = await storage.conversations.get_or_create_direct(make.direct("u-a", "u-c"))
    assert (again, created) == (old[1], False)
    assert await migrate_direct_keys(db) == 0  # done: one listIndexes
