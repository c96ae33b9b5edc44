"""The v1.1 additions on MongoDB: races between two clients (two server processes),
v1 documents, the indexes behind threads and unread mentions, and what a send costs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo import mongo_storage
from adapters.mongo.commands import CommandCounter
from adapters.mongo.documents import MESSAGES, Document
from chatcore.chat import Storage
from chatcore.errors import Conflict
from chatcore.limits import MAX_REACTION_EMOJI
from chatcore.models import NewMessage
from chatcore.services.conversations import ConversationViews
from chatcore.testing import factories as make
from chatcore.testing import in_memory_chat
from support.mongo import backend_uri, fresh_database

pytestmark = pytest.mark.mongo

MEMBERS = tuple(f"u-{i:02d}" for i in range(20))


def _reply(conversation_id: str, sender_id: str, root_id: str) -> NewMessage:
    return attrs.evolve(make.message(conversation_id, sender_id, "reply"), thread_id=root_id)


async def test_twenty_members_on_two_clients_react_at_once(
    two_storages: tuple[Storage, Storage],
) -> None:
    one, two = two_storages
    conversation = await make.stored_group(one, *MEMBERS)
    message = (await one.messages.append(make.message(conversation.id, MEMBERS[0]))).message

    await asyncio.gather(
        *(
            (one if i % 2 else two).messages.react(conversation.id, message.id, m, "🎉", add=True)
            for i, m in enumerate(MEMBERS)
        )
    )

    stored = await two.messages.get(conversation.id, message.id)
    assert stored is not None
    [reaction] = stored.reactions
    assert sorted(reaction.user_ids) == list(MEMBERS)


async def test_the_emoji_cap_holds_across_two_clients(
    two_storages: tuple[Storage, Storage],
) -> None:
    one, two = two_storages
    conversation = await make.stored_group(one, *MEMBERS)
    message = (await one.messages.append(make.message(conversation.id, MEMBERS[0]))).message
    extra = 8

    results = await asyncio.gather(
        *(
            (one if i % 2 else two).messages.react(
                conversation.id, message.id, MEMBERS[i % 20], f":e{i}:", add=True
            )
            for i in range(MAX_REACTION_EMOJI + extra)
        ),
        return_exceptions=True,
    )

    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == extra
    assert all(isinstance(r, Conflict) for r in refused)
    stored = await one.messages.get(conversation.id, message.id)
    assert stored is not None
    assert len(stored.reactions) == MAX_REACTION_EMOJI


async def test_replies_on_two_clients_all_count(two_storages: tuple[Storage, Storage]) -> None:
    one, two = two_storages
    conversation = await make.stored_group(one, "u-a", "u-b")
    root = (await one.messages.append(make.message(conversation.id, "u-a"))).message
    n = 30

    await asyncio.gather(
        *(
            (one if i % 2 else two).messages.append(
                _reply(conversation.id, ("u-a", "u-b")[i % 2], root.id)
            )
            for i in range(n)
        )
    )

    stored = await one.messages.get(conversation.id, root.id)
    assert stored is not None
    assert stored.thread is not None
    assert stored.thread.reply_count == n
    assert sorted(stored.thread.participant_ids) == ["u-a", "u-b"]


async def test_v1_documents_read_as_empty_and_take_replies_and_reactions(
    db: AsyncDatabase[Document],
) -> None:
    storage = mongo_storage(db)
    conversation = await make.stored_group(storage, "u-a", "u-b")
    first = (await storage.messages.append(make.message(conversation.id, "u-a"))).message
    # What v1 stored: none of the v1.1 fields.
    v1: dict[str, Any] = {
        "_id": "v1-message",
        "conversationId": conversation.id,
        "seq": 2,
        "senderId": "u-b",
        "body": "from v1",
        "clientMsgId": None,
        "createdAt": first.created_at,
        "editedAt": None,
        "deletedAt": None,
    }
    await db[MESSAGES].insert_one(v1)
    await db["conversations"].update_one({"_id": conversation.id}, {"$set": {"lastSeq": 2}})

    old = await storage.messages.get(conversation.id, "v1-message")
    assert old is not None
    assert (old.thread_id, old.thread, old.reactions, old.mentions) == (None, None, (), ())
    await storage.messages.append(_reply(conversation.id, "u-a", "v1-message"))
    reacted, changed = await storage.messages.react(
        conversation.id, "v1-message", "u-a", "👍", add=True
    )
    assert changed
    assert reacted.thread is not None
    assert reacted.thread.reply_count == 1
    assert [r.emoji for r in reacted.reactions] == ["👍"]
    assert await storage.messages.count_unread_and_mentions("u-a", {conversation.id: 0}) == (
        {conversation.id: 1},
        {},
    )


async def _winning_plan(db: AsyncDatabase[Document], command: Document) -> str:
    explained = await db.command("explain", command)
    return str(explained)


async def test_thread_pages_and_unread_mentions_come_from_indexes(
    db: AsyncDatabase[Document],
) -> None:
    match = {"mentions": "u-b", "mentionedAt.c": "c", "mentionedAt.s": {"$gt": 3}}
    mentions = await _winning_plan(
        db, {"aggregate": MESSAGES, "pipeline": [{"$match": match}], "cursor": {}}
    )
    thread = await _winning_plan(
        db, {"find": MESSAGES, "filter": {"threadId": "root", "threadSeq": {"$lt": 9}}}
    )

    assert "mentions_mentionedAt" in mentions
    assert "COLLSCAN" not in mentions
    assert "threadId_threadSeq" in thread
    assert "COLLSCAN" not in thread


@pytest.fixture(params=["secantus", "secantus-standalone", "mongod"])
async def counted(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Storage, CommandCounter]]:
    counter = CommandCounter()
    async with fresh_database(
        backend_uri(request, request.param), command_listeners=[counter]
    ) as db:
        yield mongo_storage(db), counter


async def test_a_send_without_at_costs_four_commands_and_a_mention_one_query_more(
    counted: tuple[Storage, CommandCounter],
) -> None:
    storage, counter = counted
    kit = in_memory_chat(storage=storage)
    alice = (await kit.chat.auth.register("alice", "password1")).user
    bob = (await kit.chat.auth.register("bob", "password1")).user
    group = await kit.chat.conversations.create_group(alice.id, "g", [bob.id])
    conversation_id = group.conversation.id
    await kit.chat.messages.send(bob.id, conversation_id, "warm-up: the server is asked once")

    counter.clear()
    await kit.chat.messages.send(alice.id, conversation_id, "no mention here")
    plain = counter.commands[:]
    counter.clear()
    sent = await kit.chat.messages.send(alice.id, conversation_id, "hi @bob and @nobody")
    mentioning = counter.commands[:]

    assert plain in (
        ["find", "update", "insert", "commitTransaction"],
        ["find", "update", "insert"],
    )
    assert mentioning == ["find", *plain]
    assert sent.message.mentions == (bob.id,)


async def test_a_list_page_with_unread_mentions_costs_no_more_commands(
    counted: tuple[Storage, CommandCounter],
) -> None:
    storage, counter = counted
    conversations = [await make.stored_group(storage, "u-a", f"u-{i}") for i in range(10)]
    for c in conversations:
        await storage.messages.append(make.message(c.id, c.member_ids[1], mentions=("u-a",)))
        await storage.messages.append(make.message(c.id, c.member_ids[1]))
    views = ConversationViews(messages=storage.messages, receipts=storage.receipts)

    counter.clear()
    page = await storage.conversations.list_for_member("u-a", limit=10, after=None)
    listed = await views.for_viewer("u-a", page)

    # The list, the read pointers, and both counts off the conversations' records.
    assert counter.commands == ["find", "find", "find"]
    assert [(v.unread_count, v.unread_mentions) for v in listed] == [(2, 1)] * 10
