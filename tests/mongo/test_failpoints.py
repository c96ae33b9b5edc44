"""Failures injected inside a send (mongod's failCommand, which SecantusDB implements with
--enable-test-commands): a send either happens completely or not at all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo import StorageFailed, create_client, ensure_indexes, mongo_storage
from adapters.mongo.commands import CommandCounter
from adapters.mongo.documents import Document
from chatcore.chat import Storage
from chatcore.errors import Unavailable
from chatcore.testing import factories as make
from support.mongo import unique_database_name
from support.waiting import wait_until

from .conftest import ServerFactory, fail_next, failpoint_client
from .helpers import assert_no_half_written_send

pytestmark = [pytest.mark.mongo, pytest.mark.slow]


@pytest.fixture
async def client(fail_server: Any) -> AsyncIterator[AsyncMongoClient[Document]]:
    async with failpoint_client(fail_server.uri) as client:
        yield client


@pytest.fixture
async def db(client: AsyncMongoClient[Document]) -> AsyncIterator[AsyncDatabase[Document]]:
    database = client[unique_database_name()]
    await ensure_indexes(database)
    try:
        yield database
    finally:
        await client.drop_database(database.name)


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

    await fail_next(client, 1, errorCode=2)  # BadValue: not an outage, not transient
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
    await fail_next(client, 1, closeConnection=True)
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

    await fail_next(client, 2, errorCode=112, errorLabels=["TransientTransactionError"])
    sent = await storage.messages.append(make.message(conversation_id, "u-a", "eventually"))

    assert (sent.created, sent.message.seq) == (True, 4)
    messages = await assert_no_half_written_send(storage, conversation_id)
    assert [m.body for m in messages][-1] == "eventually"


async def test_an_idempotent_replay_racing_a_failed_send_gets_a_fresh_seq(
    client: AsyncMongoClient[Document], db: AsyncDatabase[Document]
) -> None:
    storage = mongo_storage(db, transactions=True)
    conversation_id = await _conversation_with_messages(storage)

    await fail_next(client, 1, errorCode=2)
    with pytest.raises(StorageFailed):
        await storage.messages.append(make.message(conversation_id, "u-a", "x", "k-2"))
    resent = await storage.messages.append(make.message(conversation_id, "u-a", "x", "k-2"))
    replayed = await storage.messages.append(make.message(conversation_id, "u-a", "x", "k-2"))

    assert (resent.created, resent.message.seq) == (True, 4)
    assert (replayed.created, replayed.message) == (False, resent.message)


@pytest.mark.parametrize(
    ("command", "failure", "error", "n_rooms"),
    [
        ("insert", {"closeConnection": True}, Unavailable, 3),
        # Two conversations are replaced (update), three deleted and inserted again.
        ("update", {"closeConnection": True}, Unavailable, 2),
        ("delete", {"closeConnection": True}, Unavailable, 3),
        ("insert", {"errorCode": 2}, StorageFailed, 3),
    ],
    ids=["insert-outage", "update-outage", "delete-outage", "insert-refused"],
)
async def test_a_failure_mid_batch_fails_every_send_of_it_and_writes_nothing(
    client: AsyncMongoClient[Document],
    db: AsyncDatabase[Document],
    command: str,
    failure: dict[str, Any],
    error: type[Exception],
    n_rooms: int,
) -> None:
    storage = mongo_storage(db, transactions=True)
    rooms = [await _conversation_with_messages(storage) for _ in range(n_rooms)]

    await fail_next(client, 1, command, **failure)
    # Sent at once: one batch over all the conversations.
    results = await asyncio.gather(
        *(
            storage.messages.append(make.message(rooms[i % n_rooms], "u-a", f"b{i}"))
            for i in range(12)
        ),
        return_exceptions=True,
    )

    assert all(isinstance(r, error) for r in results)
    for room in rooms:
        assert len(await assert_no_half_written_send(storage, room)) == 3
    after = await storage.messages.append(make.message(rooms[0], "u-b", "after"))
    assert after.message.seq == 4


async def test_a_connection_lost_at_commit_stores_the_batch_once(
    client: AsyncMongoClient[Document], db: AsyncDatabase[Document]
) -> None:
    storage = mongo_storage(db, transactions=True)
    rooms = [await _conversation_with_messages(storage) for _ in range(3)]

    await fail_next(client, 1, "commitTransaction", closeConnection=True)
    results = await asyncio.gather(
        *(storage.messages.append(make.message(rooms[i % 3], "u-a", f"b{i}")) for i in range(12))
    )

    # Committing again is safe (the server commits a transaction once).
    assert all(r.created for r in results)
    for room in rooms:
        assert len(await assert_no_half_written_send(storage, room)) == 3 + 4


async def _answer_next_commit_as_lost(client: AsyncMongoClient[Document]) -> None:
    """What a database killed right after a durable commit does to the driver: the
    next commit is applied, but the answer (as to pymongo's retry of it on the
    restarted server) says the transaction is gone and may be run again."""
    await fail_next(
        client,
        1,
        "commitTransaction",
        writeConcernError={"code": 251, "errmsg": "transaction gone"},
        errorLabels=["TransientTransactionError"],
    )


@pytest.mark.parametrize("keyed", [True, False], ids=["clientMsgId", "no-clientMsgId"])
async def test_a_commit_applied_but_answered_as_lost_is_acknowledged_once_as_created(
    client: AsyncMongoClient[Document], db: AsyncDatabase[Document], keyed: bool
) -> None:
    # The batch runs again and finds its own messages stored: they were created by
    # these very sends (201 and delivered live, not a 200 replay nor a 500).
    storage = mongo_storage(db, transactions=True)
    rooms = [await _conversation_with_messages(storage) for _ in range(3)]
    [root] = await storage.messages.range(rooms[0], 1, 1)
    sends = [
        make.message(rooms[i % 3], "u-a", f"b{i}", f"k-{i}" if keyed else None) for i in range(11)
    ]
    sends.append(make.message(rooms[0], "u-b", "a reply", thread_id=root.id))

    await _answer_next_commit_as_lost(client)
    results = await asyncio.gather(*(storage.messages.append(new) for new in sends))

    assert [r.created for r in results] == [True] * 12
    assert [r.message.id for r in results] == [new.id for new in sends]
    reply = results[-1]
    assert reply.thread_root is not None  # its root's new summary goes out too
    assert (reply.thread_root.id, reply.thread_root.thread.reply_count) == (root.id, 1)
    for room in rooms:
        stored = await assert_no_half_written_send(storage, room)
        mine = {r.message.id: r.message for r in results if r.message.conversation_id == room}
        # Each send stored once, with the seq it was answered with.
        assert {m.id: m for m in stored[3:]} == mine


async def test_a_direct_conversation_whose_commit_is_answered_as_lost_is_created_once(
    client: AsyncMongoClient[Document], db: AsyncDatabase[Document]
) -> None:
    storage = mongo_storage(db, transactions=True)
    first, second = make.direct("u-a", "u-b"), make.direct("u-a", "u-c")

    await _answer_next_commit_as_lost(client)
    got = await storage.conversations.get_or_create_direct(first)
    await _answer_next_commit_as_lost(client)
    await storage.conversations.create(second)  # not a Conflict with itself

    assert got == (first, True)
    assert await storage.conversations.find_direct("u-a", "u-b") == first
    assert await storage.conversations.find_direct("u-c", "u-a") == second


@pytest.mark.parametrize("add", [True, False], ids=["add", "remove"])
async def test_a_reaction_whose_commit_is_answered_as_lost_is_still_a_change(
    client: AsyncMongoClient[Document], db: AsyncDatabase[Document], add: bool
) -> None:
    # The rerun finds the reaction as asked already: it is this call's own change
    # (reported as one, so the members hear of it), not "nothing changed".
    storage = mongo_storage(db, transactions=True)
    room = await _conversation_with_messages(storage)
    [message] = await storage.messages.range(room, 1, 1)
    if not add:
        await storage.messages.react(room, message.id, "u-b", "👍", add=True)

    await _answer_next_commit_as_lost(client)
    reacted, changed = await storage.messages.react(room, message.id, "u-b", "👍", add=add)
    again, changed_again = await storage.messages.react(room, message.id, "u-b", "👍", add=add)

    assert changed
    assert reacted.reactions == again.reactions
    assert not changed_again  # an ordinary repeat is still no change
    assert [(r.emoji, r.user_ids) for r in again.reactions] == ([("👍", ("u-b",))] if add else [])


async def test_a_database_killed_mid_batch_leaves_no_batch_half_written(
    private_server: ServerFactory,
) -> None:
    server = private_server("--sync-on-commit")
    client = create_client(server.uri)
    try:
        db = client[unique_database_name()]
        await ensure_indexes(db)
        storage = mongo_storage(db, transactions=True)
        rooms = [await _conversation_with_messages(storage) for _ in range(4)]

        async def keep_sending(room: str) -> list[int]:
            acked = []
            for i in range(200):
                try:
                    sent = await storage.messages.append(make.message(room, "u-a", f"s{i}"))
                except Unavailable:
                    return acked
                acked.append(sent.message.seq)
            return acked

        senders = [asyncio.create_task(keep_sending(rooms[i % 4])) for i in range(12)]
        await asyncio.sleep(0.5)  # batches are being written
        server.kill()
        acked = await asyncio.gather(*senders)
        server.start()

        assert any(acked), "nothing was sent before the kill"
        for room in rooms:
            messages = await assert_no_half_written_send(storage, room)
            stored = {m.seq for m in messages}
            # Durable commits: every acknowledged send survived the crash.
            assert {seq for seqs in acked[rooms.index(room) :: 4] for seq in seqs} <= stored
    finally:
        await client.close()


@pytest.mark.parametrize("transactional", [True, False], ids=["transactions", "no-transactions"])
async def test_a_batch_whose_conversation_moves_under_it_goes_again_after_the_other(
    fail_server: Any, client: AsyncMongoClient[Document], transactional: bool
) -> None:
    # Another process (its own client) writes a conversation between this batch's
    # find and its update: the update of that conversation must not take effect.
    db = client[unique_database_name()]
    await ensure_indexes(db)
    sent_by_slow = CommandCounter()
    slow_client = create_client(
        fail_server.uri, app_name="slow-racer", command_listeners=[sent_by_slow]
    )
    try:
        slow = mongo_storage(slow_client[db.name], transactions=transactional)
        fast = mongo_storage(db, transactions=transactional)
        contested = await make.stored_group(fast, "u-a", "u-b")
        quiet = await make.stored_group(fast, "u-a", "u-b")
        await client.admin.command(
            {
                "configureFailPoint": "failCommand",
                "mode": {"times": 1},
                "data": {
                    "failCommands": ["update"],
                    "blockConnection": True,
                    # Long enough for the racer's whole send, on a loaded machine too.
                    "blockTimeMS": 1500,
                    "appName": "slow-racer",
                },
            }
        )
        # Two conversations: the slow batch finds them, then its update is held up.
        batch = asyncio.gather(
            slow.messages.append(make.message(contested.id, "u-a", "slow")),
            slow.messages.append(make.message(quiet.id, "u-a", "slow")),
        )
        await wait_until(lambda: "update" in sent_by_slow.commands)  # now held up
        racer = await fast.messages.append(make.message(contested.id, "u-b", "fast"))
        slow_contested, slow_quiet = await batch

        assert racer.message.seq == 1
        assert (slow_contested.message.seq, slow_quiet.message.seq) == (2, 1)
        for room in (contested, quiet):
            await assert_no_half_written_send(fast, room.id)
        assert [m.body for m in await fast.messages.range(contested.id, 1, 9)] == ["fast", "slow"]
    finally:
        await slow_client.close()
        await client.drop_database(db.name)
