"""Failures injected inside a send (mongod's failCommand, which SecantusDB implements with
--enable-test-commands): a send either happens completely or not at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo import StorageFailed, create_client, ensure_indexes, mongo_storage
from adapters.mongo.documents import Document
from chatcore.chat import Storage
from chatcore.errors import Unavailable
from chatcore.testing import factories as make
from support.mongo import unique_database_name

from .conftest import ServerFactory
from .helpers import assert_no_half_written_send

pytestmark = [pytest.mark.mongo, pytest.mark.slow]


@pytest.fixture(scope="module")
def fail_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    factory = ServerFactory(tmp_path_factory.mktemp("failpoints"))
    try:
        yield factory("--enable-test-commands")
    finally:
        factory.stop_all()


@pytest.fixture
async def client(fail_server: Any) -> AsyncIterator[AsyncMongoClient[Document]]:
    client = create_client(fail_server.uri)
    try:
        yield client
    finally:
        await client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
        await client.close()


@pytest.fixture
async def db(client: AsyncMongoClient[Document]) -> AsyncIterator[AsyncDatabase[Document]]:
    database = client[unique_database_name()]
    await ensure_indexes(database)
    try:
        yield database
    finally:
        await client.drop_database(database.name)


async def _fail_next(client: AsyncMongoClient[Document], times: int, **data: Any) -> None:
    await client.admin.command(
        {
            "configureFailPoint": "failCommand",
            "mode": {"times": times},
            "data": {"failCommands": ["insert"], **data},
        }
    )


async def _conversation_with_messages(storage: Storage) -> str:
    conversation = await make.stored_group(storage, "u-a", "u-b")
    for i in range(3):
        await storage.messages.append(make.message(conversation.id, "u-a", f"m{i}"))
    return conversation.id


@pytest.mark.parametrize("transactional", [True, False], ids=["transactions", "no-transactions"])
async def test_a_failing_insert_leaves_nothing_half_written(
    client: AsyncMongoClient[Document], db: AsyncDatabase[Document], transactional: bool
) -> None:
    storage = mongo_storage(db, transactions=transactional)
    conversation_id = await _conversation_with_messages(storage)

    await _fail_next(client, 1, errorCode=2)  # BadValue: not an outage, not transient
    with pytest.raises(StorageFailed):
        await storage.messages.append(make.message(conversation_id, "u-a", "lost"))

    if transactional:
        assert len(await assert_no_half_written_send(storage, conversation_id)) == 3
        sent = await storage.messages.append(make.message(conversation_id, "u-a", "next"))
        assert sent.message.seq == 4
    else:
        # The documented weaker guarantee: the seq was taken, its message is missing.
        conversation = await storage.conversations.get(conversation_id)
        assert conversation is not None
        assert conversation.last_seq == 4
        assert len(await storage.messages.range(conversation_id, 1, 4)) == 3


async def test_a_connection_lost_on_insert_is_unavailable_and_changes_nothing(
    client: AsyncMongoClient[Document], db: AsyncDatabase[Document]
) -> None:
    storage = mongo_storage(db, transactions=True)
    conversation_id = await _conversation_with_messages(storage)

    # Inside a transaction pymongo does not retry the insert: one failure is enough.
    await _fail_next(client, 1, closeConnection=True)
    with pytest.raises(Unavailable):
        await storage.messages.append(make.message(conversation_id, "u-a", "lost", "k-1"))

    assert len(await assert_no_half_written_send(storage, conversation_id)) == 3
    retried = await storage.messages.append(make.message(conversation_id, "u-a", "lost", "k-1"))
    assert (retried.created, retried.message.seq) == (True, 4)


async def test_a_transient_write_conflict_is_retried(
    client: AsyncMongoClient[Document], db: AsyncDatabase[Document]
) -> None:
    storage = mongo_storage(db, transactions=True)
    conversation_id = await _conversation_with_messages(storage)

    await _fail_next(client, 2, errorCode=112, errorLabels=["TransientTransactionError"])
    sent = await storage.messages.append(make.message(conversation_id, "u-a", "eventually"))

    assert (sent.created, sent.message.seq) == (True, 4)
    messages = await assert_no_half_written_send(storage, conversation_id)
    assert [m.body for m in messages][-1] == "eventually"


async def test_an_idempotent_replay_racing_a_failed_send_gets_a_fresh_seq(
    client: AsyncMongoClient[Document], db: AsyncDatabase[Document]
) -> None:
    storage = mongo_storage(db, transactions=True)
    conversation_id = await _conversation_with_messages(storage)

    await _fail_next(client, 1, errorCode=2)
    with pytest.raises(StorageFailed):
        await storage.messages.append(make.message(conversation_id, "u-a", "x", "k-2"))
    resent = await storage.messages.append(make.message(conversation_id, "u-a", "x", "k-2"))
    replayed = await storage.messages.append(make.message(conversation_id, "u-a", "x", "k-2"))

    assert (resent.created, resent.message.seq) == (True, 4)
    assert (replayed.created, replayed.message) == (False, resent.message)
