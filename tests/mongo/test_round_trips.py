"""How many commands (round trips) each operation costs, counted with a CommandListener."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import attrs
import pytest

from adapters.mongo import ServerInfo, ServerProfile, mongo_storage
from adapters.mongo.commands import CommandCounter
from adapters.mongo.unread_counters import OWN_SEQS_KEPT
from chatcore.chat import Storage
from chatcore.errors import Conflict, NotFound
from chatcore.models import Conversation, ConversationCursor, Message
from chatcore.services.conversations import ConversationViews
from chatcore.testing import factories as make
from support.mongo import backend_uri, fresh_database

pytestmark = pytest.mark.mongo

T = TypeVar("T")


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
    # All 50 queue before the writer first runs: one batch, 10 conversations. In a
    # transaction they are rewritten whole, by one delete and one insert
    # (message_batches.REWRITE_FROM); without one, one guarded update per
    # conversation (each guard must answer for its own conversation).
    if transactional:
        assert counter.commands == ["find", "delete", "insert", "insert", "commitTransaction"]
    else:
        assert counter.commands == ["find", *["update"] * 10, "insert"]

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


async def _cost(counter: CommandCounter, call: Awaitable[T]) -> tuple[T, list[str]]:
    """What ``call`` returns and the commands it sent."""
    counter.clear()
    result = await call
    return result, counter.commands[:]


def _committed(commands: list[str], transactional: bool) -> list[str]:
    return [*commands, "commitTransaction"] if transactional else commands


async def _a_message_and_another_group(
    storage: Storage,
) -> tuple[Conversation, Message, Conversation, bool]:
    """A group with u-a's message, another group of u-a's, and whether the server
    has transactions."""
    conversation = await make.stored_group(storage, "u-a", "u-b")
    message = (await storage.messages.append(make.message(conversation.id, "u-a"))).message
    other = await make.stored_group(storage, "u-a", "u-c")
    return conversation, message, other, await _transactional(storage)


async def test_reactions_cost_an_update_and_a_read_and_no_find_and_modify(
    counted: tuple[Storage, CommandCounter],
) -> None:
    storage, counter = counted
    conversation, message, other, transactional = await _a_message_and_another_group(storage)

    (added, changed), add = await _cost(
        counter, storage.messages.react(conversation.id, message.id, "u-b", "👍", add=True)
    )
    (again, changed_again), repeat = await _cost(
        counter, storage.messages.react(conversation.id, message.id, "u-b", "👍", add=True)
    )

    # update_one + find: a findAndModify scans the whole collection on SecantusDB.
    # A change also refreshes the conversation's lastMessage copy.
    assert (changed, [(r.emoji, r.user_ids) for r in added.reactions]) == (True, [("👍", ("u-b",))])
    assert add == _committed(["update", "find", "update"], transactional)
    assert (changed_again, again.reactions) == (False, added.reactions)
    assert repeat == _committed(["update", "find"], transactional)
    with pytest.raises(NotFound):  # a message of another conversation is left alone
        await storage.messages.react(other.id, message.id, "u-a", "👍", add=True)
    await storage.messages.delete(message, message.created_at)
    with pytest.raises(Conflict):
        await storage.messages.react(conversation.id, message.id, "u-b", "🎉", add=True)
    stored = await storage.messages.get(conversation.id, message.id)
    assert stored is not None
    assert stored.reactions == ()


async def test_twenty_members_reacting_at_once_all_count_with_or_without_transactions(
    counted: tuple[Storage, CommandCounter],
) -> None:
    storage, _ = counted
    members = [f"u-{i:02d}" for i in range(20)]
    conversation = await make.stored_group(storage, *members)
    message = (await storage.messages.append(make.message(conversation.id, members[0]))).message

    results = await asyncio.gather(
        *(storage.messages.react(conversation.id, message.id, m, "🎉", add=True) for m in members)
    )

    # The pipeline decides on the document as it is: every one of them changed it.
    assert all(changed for _, changed in results)
    stored = await storage.messages.get(conversation.id, message.id)
    assert stored is not None
    [reaction] = stored.reactions
    assert sorted(reaction.user_ids) == members


async def test_edits_and_deletes_cost_an_update_and_a_read_and_no_find_and_modify(
    counted: tuple[Storage, CommandCounter],
) -> None:
    storage, counter = counted
    conversation, message, other, transactional = await _a_message_and_another_group(storage)

    edited, edit = await _cost(
        counter, storage.messages.edit(message, "edited", message.created_at)
    )
    deleted, delete = await _cost(counter, storage.messages.delete(edited, message.created_at))

    # The message, a read of it, and the conversation's lastMessage copy.
    expected = _committed(["update", "find", "update"], transactional)
    assert (edited.body, edit) == ("edited", expected)
    assert (deleted.is_deleted, deleted.body, delete) == (True, "", expected)
    stored = await storage.conversations.get(conversation.id)
    assert stored is not None
    assert stored.last_message is not None
    assert stored.last_message.is_deleted
    with pytest.raises(NotFound):  # the same message named in another conversation
        await storage.messages.edit(
            attrs.evolve(message, conversation_id=other.id), "x", message.created_at
        )
    still = await storage.messages.get(conversation.id, message.id)
    assert still is not None
    assert (still.body, still.is_deleted) == ("", True)


async def test_member_changes_cost_an_update_and_a_read_and_no_find_and_modify(
    counted: tuple[Storage, CommandCounter],
) -> None:
    storage, counter = counted
    conversation = await make.stored_group(storage, "u-a", "u-b")

    added, add = await _cost(counter, storage.conversations.add_member(conversation.id, "u-c"))
    removed, remove = await _cost(
        counter, storage.conversations.remove_member(conversation.id, "u-b")
    )
    missing, miss = await _cost(
        counter, storage.conversations.add_member("no-such-conversation", "u-c")
    )

    assert added is not None
    assert set(added.member_ids) == {"u-a", "u-b", "u-c"}
    assert removed is not None
    assert set(removed.member_ids) == {"u-a", "u-c"}
    assert add == remove == ["update", "find"]
    assert (missing, miss) == (None, ["update"])  # nothing matched: no read


async def test_a_refresh_token_is_consumed_by_its_update_and_a_replay_costs_one_command(
    counted: tuple[Storage, CommandCounter],
) -> None:
    storage, counter = counted
    token = make.refresh_token("u-a")
    await storage.refresh_tokens.add(token)
    now = token.created_at

    first, consume = await _cost(counter, storage.refresh_tokens.consume(token.token_hash, now))
    replay, replayed = await _cost(counter, storage.refresh_tokens.consume(token.token_hash, now))

    # The filtered update decides who consumed it; only the winner reads the token.
    assert (first, consume) == (token, ["update", "find"])
    assert (replay, replayed) == (None, ["update"])
    other = make.refresh_token("u-a")
    await storage.refresh_tokens.add(other)
    racing = await asyncio.gather(
        *(storage.refresh_tokens.consume(other.token_hash, now) for _ in range(10))
    )
    assert [r for r in racing if r is not None] == [other]


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
