"""The Mongo search adapter on the real servers: the plans its queries get (no
collection scans), a user in 10,000 conversations, keys kept in step with bodies,
and the backfill that makes v1 messages searchable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo import mongo_storage
from adapters.mongo.backfill import META, STATE_ID, SearchBackfill
from adapters.mongo.commands import CommandCounter
from adapters.mongo.documents import (
    CONVERSATIONS,
    MESSAGES,
    SEARCH_KEYS,
    Document,
    conversation_to_document,
    message_to_document,
)
from chatcore.models import Conversation, ConversationType, Message
from chatcore.search import SearchPosition, query_words
from chatcore.system import SystemClock, TimeOrderedIdGenerator
from chatcore.testing import factories as make
from support.mongo import fresh_database

pytestmark = pytest.mark.mongo

ALICE, BOB = "u-alice", "u-bob"
_ids = TimeOrderedIdGenerator()
_now = SystemClock().now()


@pytest.fixture
async def recorded(
    backend: str,
) -> AsyncIterator[tuple[AsyncDatabase[Document], CommandCounter]]:
    recorder = CommandCounter()
    async with fresh_database(backend, command_listeners=[recorder]) as db:
        yield db, recorder


def _conversation(*members: str) -> Conversation:
    return Conversation(
        id=_ids.new_id(),
        type=ConversationType.GROUP,
        name="group",
        member_ids=members,
        created_by=members[0],
        created_at=_now - timedelta(days=400),
    )


def _message(conversation_id: str, seq: int, body: str, *, hours_ago: float) -> Message:
    return Message(
        id=_ids.new_id(),
        conversation_id=conversation_id,
        seq=seq,
        sender_id=BOB,
        body=body,
        client_msg_id=None,
        created_at=SystemClock().now().replace(microsecond=0) - timedelta(hours=hours_ago),
    )


async def _seed(
    db: AsyncDatabase[Document], conversations: list[Conversation], messages: list[Message]
) -> None:
    # In chunks: one huge insert can outlast the client's socket timeout on a busy machine.
    for start in range(0, len(conversations), 1000):
        chunk = conversations[start : start + 1000]
        await db[CONVERSATIONS].insert_many([conversation_to_document(c) for c in chunk])
    if messages:
        await db[MESSAGES].insert_many([message_to_document(m) for m in messages])


def _plan(explained: Document) -> Document:
    planner = explained.get("queryPlanner", explained)
    plan: Document = planner["winningPlan"]
    return plan


def _stages(plan: Any) -> list[str]:
    """Every stage name in a plan tree (inputStage/inputStages, any depth)."""
    if isinstance(plan, dict):
        found = [plan["stage"]] if isinstance(plan.get("stage"), str) else []
        for value in plan.values():
            found += _stages(value)
        return found
    if isinstance(plan, list):
        return [stage for item in plan for stage in _stages(item)]
    return []


async def test_every_search_query_uses_an_index(
    recorded: tuple[AsyncDatabase[Document], CommandCounter],
) -> None:
    db, recorder = recorded
    ours, theirs = _conversation(ALICE, BOB), _conversation(BOB, "u-carol")
    messages = [
        _message(c.id, seq, body, hours_ago=hours)
        for c in (ours, theirs)
        for seq, (body, hours) in enumerate(
            [("rare zebra", 900), ("common words here", 30), ("common and plain", 2)], start=1
        )
    ]
    await _seed(db, [ours, theirs], messages)
    search = mongo_storage(db).search

    recorder.clear()
    everywhere = await search.search(
        ALICE, query_words("zeb"), conversation_id=None, limit=21, after=None
    )
    one = await search.search(
        ALICE, query_words("common pl"), conversation_id=ours.id, limit=21, after=None
    )
    later = await search.search(
        ALICE,
        query_words("internationalization"),
        conversation_id=None,
        limit=21,
        after=SearchPosition(created_at=_now, message_id="z"),
    )

    assert [m.body for m in everywhere] == ["rare zebra"]
    assert [m.body for m in one] == ["common and plain"]
    assert later == []
    searched = [(coll, f) for coll, f in recorder.finds if coll == MESSAGES]
    assert {"conversationId" in f for _, f in searched} == {True, False}
    assert len(recorder.finds) > len(searched)  # membership look-ups too
    for collection, query in recorder.finds:
        explained = await db.command({"explain": {"find": collection, "filter": query}})
        plan = _plan(explained)
        stages = _stages(plan)
        assert "COLLSCAN" not in stages, (collection, query, json.dumps(plan, default=str))
        if collection == MESSAGES:
            index = "search_conversation" if "conversationId" in query else "search"
            assert index in json.dumps(plan, default=str), (query, plan)


async def test_a_user_in_10000_conversations(backend: str) -> None:
    """The query's cost follows the candidates in its windows, not the user's
    conversation count: membership is looked up for the candidates only."""
    recorder = CommandCounter()
    async with fresh_database(backend, command_listeners=[recorder]) as db:
        mine = [_conversation(ALICE, BOB) for _ in range(10_000)]
        foreign = [_conversation(BOB, "u-carol") for _ in range(20)]
        messages = [
            _message(c.id, 1, f"budget review {i}", hours_ago=i * 3)
            for i, c in enumerate(mine[::400])
        ]
        messages += [_message(c.id, 1, "budget secret", hours_ago=0.5) for c in foreign]
        await _seed(db, mine + foreign, messages)
        search = mongo_storage(db).search

        recorder.clear()
        found = await search.search(
            ALICE, query_words("budg"), conversation_id=None, limit=21, after=None
        )

    assert [m.body for m in found] == [f"budget review {i}" for i in range(21)]
    lookups = [f for coll, f in recorder.finds if coll == CONVERSATIONS]
    # One lookup per window with candidates, each naming only the candidates'
    # conversations: never a list of the user's 10,000.
    assert 21 <= sum(len(f["_id"]["$in"]) for f in lookups) <= len(messages) == 25 + 20
    assert len(recorder.finds) <= 2 * 12


async def test_keys_follow_the_body_on_send_edit_and_delete(backend: str) -> None:
    async with fresh_database(backend) as db:
        storage = mongo_storage(db)
        group = await make.stored_group(storage, ALICE, BOB)
        sent = (await storage.messages.append(make.message(group.id, ALICE, "Hello Wörld"))).message

        async def keys() -> list[str]:
            doc = await db[MESSAGES].find_one({"_id": sent.id})
            assert doc is not None
            stored: list[str] = doc[SEARCH_KEYS]
            return stored

        assert await keys() == [
            "h",
            "he",
            "hel",
            "hell",
            "hello",
            "w",
            "wo",
            "wor",
            "worl",
            "world",
        ]
        edited = await storage.messages.edit(sent, "bye", _now)
        assert await keys() == ["b", "by", "bye"]
        await storage.messages.delete(edited, _now)
        assert await keys() == []
        # The conversation's copy of its newest message is never searched: no keys there.
        conversation = await db[CONVERSATIONS].find_one({"_id": group.id})
        assert conversation is not None
        assert SEARCH_KEYS not in conversation["lastMessage"]


async def test_backfill_makes_v1_messages_searchable_once(backend: str) -> None:
    async with fresh_database(backend) as db:
        first, second = _conversation(ALICE, BOB), _conversation(ALICE, BOB)
        old = [
            _message(c.id, seq, f"legacy note {c.id[-4:]} {seq}", hours_ago=100 + seq)
            for c in (first, second)
            for seq in range(1, 8)
        ]
        await _seed(db, [first, second], [])
        v1_docs = [message_to_document(m) for m in old]
        for doc in v1_docs:
            del doc[SEARCH_KEYS]  # as v1 stored them
        await db[MESSAGES].insert_many(v1_docs)
        for conversation in (first, second):
            await db[CONVERSATIONS].update_one({"_id": conversation.id}, {"$set": {"lastSeq": 7}})
        storage = mongo_storage(db)
        # An edit before the backfill already gives its message keys; the backfill keeps them.
        await storage.messages.edit(old[0], "rewritten", _now)

        assert (
            await storage.search.search(
                ALICE, ["legacy"], conversation_id=None, limit=50, after=None
            )
            == []
        )
        assert await SearchBackfill(db, batch=3).run() == 13
        found = await storage.search.search(
            ALICE, ["legacy"], conversation_id=None, limit=50, after=None
        )
        assert len(found) == 13
        assert [
            m.body
            for m in await storage.search.search(
                ALICE, ["rewritten"], conversation_id=None, limit=50, after=None
            )
        ] == ["rewritten"]
        # Done once: the next start reads the flag and stops.
        assert await SearchBackfill(db).run() == 0


async def test_backfill_resumes_after_the_last_finished_conversation(backend: str) -> None:
    async with fresh_database(backend) as db:
        first, second = sorted(
            [_conversation(ALICE, BOB), _conversation(ALICE, BOB)], key=lambda c: c.id
        )
        await _seed(db, [first, second], [])
        docs = [
            message_to_document(_message(c.id, 1, "legacy", hours_ago=5)) for c in (first, second)
        ]
        for doc in docs:
            del doc[SEARCH_KEYS]
        await db[MESSAGES].insert_many(docs)
        for conversation in (first, second):
            await db[CONVERSATIONS].update_one({"_id": conversation.id}, {"$set": {"lastSeq": 1}})
        # As if a previous start finished the first conversation and was killed.
        await db[META].insert_one({"_id": STATE_ID, "after": first.id})

        assert await SearchBackfill(db).run() == 1
        assert await db[MESSAGES].find_one(
            {"conversationId": first.id, SEARCH_KEYS: {"$exists": False}}
        )
