"""How many commands (round trips) each operation costs, counted with a CommandListener."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adapters.mongo import ServerInfo, ServerProfile, mongo_storage
from adapters.mongo.commands import CommandCounter
from adapters.mongo.unread_counters import OWN_SEQS_KEPT
from chatcore.chat import Storage
from chatcore.models import ConversationCursor
from chatcore.services.conversations import ConversationViews
from chatcore.testing import factories as make
from support.mongo import backend_uri, fresh_database

pytestmark = pytest.mark.mongo


@pytest.fixture(params=["secantus", "secantus-standalone", "mongod"])
async def counted(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Storage, CommandCounter]]:
    counter = CommandCounter()
    uri = backend_uri(request, request.param)
    async with fresh_database(uri, command_listeners=[counter]) as db:
        storage = mongo_storage(db)
        await storage.messages.count_unread("warm-up", {})  # nothing sent yet
        yield storage, counter


async def _profile(storage: Storage) -> ServerProfile:
    server: ServerInfo = storage.messages._server  # type: ignore[attr-defined]
    return await server.profile()


async def _transactional(storage: Storage) -> bool:
    return (await _profile(storage)).transactions


async def test_a_lone_send_costs_four_commands_in_a_transaction_or_three_without(
    counted: tuple[Storage, CommandCounter],
) -> None:
    storage, counter = counted
    conversation = await make.stored_group(storage, "u-a", "u-b")
    transactional = await _transactional(storage)

    counter.clear()
    await storage.messages.append(make.message(conversation.id, "u-a"))
    plain = counter.commands[:]
    counter.clear()
    await storage.messages.append(make.message(conversation.id, "u-a", client_msg_id="k-1"))
    with_id = counter.commands[:]

    # No findAndModify: SecantusDB scans the whole collection for one (messages.py).
    if transactional:
        assert plain == ["find", "update", "insert", "commitTransaction"]
        assert with_id == plain  # the unique index catches replays: no look-up first
    else:
        assert plain == ["find", "update", "insert"]
        assert with_id == ["find", *plain]  # the replay look-up first


async def test_a_read_pointer_moves_in_one_update_and_a_stale_one_costs_a_read(
    counted: tuple[Storage, CommandCounter],
) -> None:
    storage, counter = counted
    conversation = await make.stored_group(storage, "u-a", "u-b")
    at = conversation.created_at

    counter.clear()
    first, moved = await storage.receipts.advance(conversation.id, "u-b", 3, at)
    created = counter.commands[:]
    counter.clear()
    _, forward = await storage.receipts.advance(conversation.id, "u-b", 5, at)
    moved_on = counter.commands[:]
    counter.clear()
    stale, behind = await storage.receipts.advance(conversation.id, "u-b", 4, at)
    refused = counter.commands[:]

    # No findAndModify: SecantusDB scans the whole collection for one.
    assert (first.last_read_seq, moved, created) == (3, True, ["update"])
    assert (forward, moved_on) == (True, ["update"])
    # A pointer not behind: the upsert clashes with the unique index, then one read.
    assert (stale.last_read_seq, behind, refused) == (5, False, ["update", "find"])
    assert await storage.receipts.list_for_conversation(conversation.id) == [stale]


async def test_a_lone_reply_counts_on_its_root_without_a_find_and_modify(
    counted: tuple[Storage, CommandCounter],
) -> None:
    storage, counter = counted
    conversation = await make.stored_group(storage, "u-a", "u-b")
    root = (await storage.messages.append(make.message(conversation.id, "u-a"))).message
    transactional = await _transactional(storage)

    counter.clear()
    reply = make.message(conversation.id, "u-b", "reply", thread_id=root.id)
    sent = await storage.messages.append(reply)

    assert sent.thread_root is not None
    assert sent.thread_root.thread is not None
    assert sent.thread_root.thread.reply_count == 1
    # The root's summary: update + find (a findAndModify scans on SecantusDB).
    expected = ["find", "update", "insert", "update", "find"]
    assert counter.commands == ([*expected, "commitTransaction"] if transactional else expected)


async def test_concurrent_sends_share_batches_of_constant_commands(
    counted: tuple[Storage, CommandCounter],
) -> None:
    storage, counter = counted
    conversations = [await make.stored_group(storage, "u-a", f"u-{i}") for i in range(10)]
    transactional = await _transactional(storage)

    counter.clear()
    sends = [make.message(c.id, "u-a") for c in conversations for _ in range(5)]
    results = await asyncio.gather(*(storage.messages.append(s) for s in sends))

    assert all(r.created for r in results)
    # All 50 queue before the writer first runs: one batch, 10 conversations.
    expected = ["find", "update", "insert"]
    assert counter.commands == ([*expected, "commitTransaction"] if transactional else expected)

    counter.clear()
    own = [make.message(conversations[0].id, "u-a") for _ in range(5)]
    await asyncio.gather(*(storage.messages.append(s) for s in own))
    # One sender, one conversation: the same four commands.
    expected = ["find", "update", "insert"]
    assert counter.commands == ([*expected, "commitTransaction"] if transactional else expected)


async def test_a_replay_stores_nothing_and_costs_a_few_commands(
    counted: tuple[Storage, CommandCounter],
) -> None:
    storage, counter = counted
    conversation = await make.stored_group(storage, "u-a", "u-b")
    await storage.messages.append(make.message(conversation.id, "u-a", client_msg_id="k-1"))

    counter.clear()
    replay = await storage.messages.append(make.message(conversation.id, "u-a", "x", "k-1"))

    assert not replay.created
    assert "commitTransaction" not in counter.commands
    assert counter.by_name()["insert"] <= 1
    # find, update, insert (refused), abort; then the stored message and its conversation.
    assert counter.count <= 6


async def test_reads_of_a_conversation_list_page_cost_one_command_each(
    counted: tuple[Storage, CommandCounter],
) -> None:
    storage, counter = counted
    conversations = [await make.stored_group(storage, "u-a", f"u-{i}") for i in range(12)]
    for i, c in enumerate(conversations):  # each active at its own time
        await storage.messages.append(make.message(c.id, c.member_ids[1], seconds=i))
    first = await storage.conversations.list_for_member("u-a", limit=5, after=None)
    cursor = ConversationCursor(activity_at=first[-1].activity_at, conversation_id=first[-1].id)

    counter.clear()
    page = await storage.conversations.list_for_member("u-a", limit=5, after=cursor)
    assert counter.commands == ["find"]
    assert len(page) == 5
    counter.clear()
    await storage.receipts.for_user("u-a", [c.id for c in page])
    assert counter.commands == ["find"]
    counter.clear()
    await storage.messages.count_unread("u-a", {c.id: 0 for c in page})
    # The counters on the conversations answer: no message is counted.
    assert counter.commands == ["find"]
    for _ in range(OWN_SEQS_KEPT - 1):
        await storage.messages.append(make.message(page[0].id, "u-a"))
    counter.clear()
    assert await storage.messages.count_unread("u-a", {page[0].id: 0}) == {page[0].id: 1}
    assert counter.commands == ["find"]  # u-a's own messages after 0 are all recorded
    await storage.messages.append(make.message(page[0].id, "u-a"))
    counter.clear()
    await storage.messages.count_unread("u-a", {c.id: 0 for c in page})
    # More own messages after the pointer than are recorded: that conversation is counted.
    assert counter.commands == ["find", "aggregate"]
    counter.clear()
    await storage.messages.range(conversations[0].id, 1, 50)
    assert counter.commands == ["find"]


async def test_a_conversation_list_page_of_50_costs_three_commands(
    counted: tuple[Storage, CommandCounter],
) -> None:
    storage, counter = counted
    conversations = [await make.stored_group(storage, "u-a", f"u-{i}") for i in range(50)]
    await asyncio.gather(
        *(
            storage.messages.append(make.message(c.id, m))
            for c in conversations
            for m in c.member_ids
        )
    )
    # u-a has read half of them up to its own message (seq 1 of each, or seq 2).
    for c in conversations[::2]:
        await storage.receipts.advance(c.id, "u-a", 1, c.created_at)
    views = ConversationViews(messages=storage.messages, receipts=storage.receipts)

    counter.clear()
    page = await storage.conversations.list_for_member("u-a", limit=51, after=None)
    listed = await views.for_viewer("u-a", page[:50])

    # The list, the read pointers, the unread counts (off the conversations' counters).
    assert counter.commands == ["find", "find", "find"]
    assert sorted(v.unread_count for v in listed) == [1] * 50
