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
from pymongo.errors import BulkWriteError

from adapters.mongo import ensure_indexes, mongo_storage
from adapters.mongo.backfill import META, STATE_ID, SearchBackfill
from adapters.mongo.commands import CommandCounter
from adapters.mongo.documents import (
    CONVERSATIONS,
    MESSAGES,
    OLD_SEARCH_KEYS,
    SEARCH_KEYS,
    Document,
    conversation_to_document,
    message_to_document,
)
from adapters.mongo.errors import DUPLICATE_KEY
from adapters.mongo.search import MongoMessageSearch
from chatcore.models import Conversation, ConversationType, Message
from chatcore.search import SearchPosition, query_words, words
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
    # pymongo then retries the chunk, and the documents the first try stored clash on
    # _id: the same documents, so those duplicates (only those) are fine.
    for start in range(0, len(conversations), 500):
        chunk = conversations[start : start + 500]
        try:
            await db[CONVERSATIONS].insert_many(
                [conversation_to_document(c) for c in chunk], ordered=False
            )
        except BulkWriteError as error:
            if any(e["code"] != DUPLICATE_KEY for e in error.details["writeErrors"]):
                raise
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
    await db[CONVERSATIONS].update_many({}, {"$set": {"lastSeq": 3}})
    search = mongo_storage(db).search
    # One that leaves a conversation's windows for the word index at once.
    eager = MongoMessageSearch(db, SystemClock(), conversation_rest=0)

    recorder.clear()
    everywhere = await search.search(
        ALICE, query_words("zeb"), conversation_id=None, limit=21, after=None
    )
    one = await search.search(
        ALICE, query_words("common pl"), conversation_id=ours.id, limit=21, after=None
    )
    through_words = await eager.search(
        ALICE, query_words("zeb"), conversation_id=ours.id, limit=21, after=None
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
    assert [m.body for m in through_words] == ["rare zebra"]
    assert later == []
    searched = [f for coll, f in recorder.finds if coll == MESSAGES]
    # Each query shape, by the index its first clause names (see the adapter's docs).
    expected = {"createdAt": "createdAt", "conversationId": "conversationId_createdAt"}
    expected[SEARCH_KEYS] = SEARCH_KEYS
    assert {next(iter(f)) for f in searched} == set(expected)
    assert any("conversationId" in f for f in searched if next(iter(f)) == SEARCH_KEYS)
    assert len(recorder.finds) > len(searched)  # membership look-ups too
    for collection, query in recorder.finds:
        if sum(isinstance(v, dict) for v in query.values()) > 1:
            # Two ranges: SecantusDB's lookup serves such a filter from an index on
            # its first clause alone and checks the rest on each document it fetched
            # (storage.py, _try_index_id_keys: "one CLAUSE can still ride an
            # index"); its explain does not model that path and says COLLSCAN. So
            # the plan read here is the first clause's, the one that runs.
            query = dict([next(iter(query.items()))])
        explained = await db.command({"explain": {"find": collection, "filter": query}})
        plan = _plan(explained)
        stages = _stages(plan)
        assert "COLLSCAN" not in stages, (collection, query, json.dumps(plan, default=str))
        if collection == MESSAGES:
            index = expected[next(iter(query))]
            assert f'"indexName": "{index}"' in json.dumps(plan, default=str), (query, plan)


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
    lookups = [f for coll, f in recorder.finds if coll == CONVERSATIONS and "_id" in f]
    # One lookup per read with candidates, each naming only the candidates'
    # conversations: never a list of the user's 10,000.
    assert 21 <= sum(len(f["_id"]["$in"]) for f in lookups) <= len(messages) == 25 + 20
    assert len(recorder.finds) <= 2 * 12


async def _standups_and_one_old(
    db: AsyncDatabase[Document], count: int, apart_hours: float, old_body: str
) -> None:
    """``count`` recent "daily standup notes" ``apart_hours`` apart (seq 1 the newest)
    and one ``old_body`` message 20 days ago, all in one conversation of Alice's."""
    ours = _conversation(ALICE, BOB)
    messages = [
        _message(ours.id, seq, f"daily standup notes {seq}", hours_ago=seq * apart_hours)
        for seq in range(1, count + 1)
    ]
    messages.append(_message(ours.id, count + 1, old_body, hours_ago=24 * 20))
    await _seed(db, [ours], messages)


async def test_a_word_common_lately_is_read_in_windows_a_rare_one_through_the_index(
    recorded: tuple[AsyncDatabase[Document], CommandCounter],
) -> None:
    db, recorder = recorded
    await _standups_and_one_old(db, 300, 0.1, "quarterly zebra")
    search = mongo_storage(db).search

    recorder.clear()
    common = await search.search(
        ALICE, query_words("standup"), conversation_id=None, limit=20, after=None
    )
    common_reads = [f for coll, f in recorder.finds if coll == MESSAGES]
    recorder.clear()
    rare = await search.search(
        ALICE, query_words("zeb"), conversation_id=None, limit=20, after=None
    )
    rare_reads = [f for coll, f in recorder.finds if coll == MESSAGES]
    recorder.clear()
    # A user in more than ``few_conversations``: every window across conversations.
    many = MongoMessageSearch(db, SystemClock(), few_conversations=0)
    common_many = await many.search(
        ALICE, query_words("standup"), conversation_id=None, limit=20, after=None
    )
    many_reads = [f for coll, f in recorder.finds if coll == MESSAGES]

    assert [m.seq for m in common] == [m.seq for m in common_many] == list(range(1, 21))
    # The first window across conversations shows the word is common; Alice is in one
    # conversation, so the next windows read hers only.
    assert [next(iter(f)) for f in common_reads] == ["createdAt", "conversationId"]
    assert {next(iter(f)) for f in many_reads} == {"createdAt"}
    assert [m.body for m in rare] == ["quarterly zebra"]
    assert [next(iter(f)) for f in rare_reads] == ["createdAt", SEARCH_KEYS]


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

        assert await keys() == ["hello", "world"]
        edited = await storage.messages.edit(sent, "bye by", _now)
        assert await keys() == ["bye"]
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
        # Within one conversation too (its windows check each document's words).
        assert (
            await storage.search.search(
                ALICE, ["legacy"], conversation_id=second.id, limit=50, after=None
            )
            == []
        )
        assert await SearchBackfill(db, batch=3).run() == 13
        found = await storage.search.search(
            ALICE, ["legacy"], conversation_id=None, limit=50, after=None
        )
        assert len(found) == 13
        in_second = await storage.search.search(
            ALICE, ["legacy"], conversation_id=second.id, limit=50, after=None
        )
        assert [m.seq for m in in_second] == list(range(1, 8))  # seq 1 is the newest
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


def _first_release_keys(body: str) -> list[str]:
    """What the first search release stored: every 1..8-character word prefix."""
    return sorted({w[:n] for w in set(words(body)) for n in range(1, min(len(w), 8) + 1)})


async def test_backfill_rewrites_the_first_release_form_and_drops_its_indexes(
    backend: str,
) -> None:
    async with fresh_database(backend) as db:
        ours = _conversation(ALICE, BOB)
        await _seed(db, [ours], [])
        old = [_message(ours.id, seq, f"archived memo {seq}", hours_ago=50 + seq) for seq in (1, 2)]
        docs = [message_to_document(m) for m in old]
        for doc in docs:
            del doc[SEARCH_KEYS]
            doc[OLD_SEARCH_KEYS] = _first_release_keys(doc["body"])
        await db[MESSAGES].insert_many(docs)
        await db[CONVERSATIONS].update_one({"_id": ours.id}, {"$set": {"lastSeq": 2}})
        await db[MESSAGES].create_index([(OLD_SEARCH_KEYS, 1), ("createdAt", -1)], name="search")
        # The first release's backfill had finished: its flag must not stop this one.
        await db[META].insert_one({"_id": "searchBackfill", "done": True})

        await ensure_indexes(db)
        indexes = await db[MESSAGES].index_information()
        assert "search" not in indexes
        assert SEARCH_KEYS in indexes
        assert await SearchBackfill(db).run() == 2
        stored = await db[MESSAGES].find({"conversationId": ours.id}).to_list()
        assert [(d[SEARCH_KEYS], OLD_SEARCH_KEYS in d) for d in stored] == [
            (["1", "archived", "memo"], False),
            (["2", "archived", "memo"], False),
        ]
        found = await mongo_storage(db).search.search(
            ALICE, ["memo"], conversation_id=None, limit=5, after=None
        )
        assert [m.seq for m in found] == [1, 2]


async def test_of_several_words_the_rarest_in_the_first_window_is_looked_up(
    recorded: tuple[AsyncDatabase[Document], CommandCounter],
) -> None:
    db, recorder = recorded
    await _standups_and_one_old(db, 50, 0.01, "quarterly standup")

    recorder.clear()
    found = await mongo_storage(db).search.search(
        ALICE, query_words("standup quart"), conversation_id=None, limit=20, after=None
    )
    reads = [f for coll, f in recorder.finds if coll == MESSAGES]

    assert [m.body for m in found] == ["quarterly standup"]
    # The first window whole (no word clause), then the word index for "quart".
    assert [list(f) for f in reads] == [["createdAt"], [SEARCH_KEYS, "createdAt"]]
    assert reads[1][SEARCH_KEYS] == {"$gte": "quart", "$lt": "quaru"}


async def test_membership_comes_from_the_candidates_conversations_or_the_users_list(
    recorded: tuple[AsyncDatabase[Document], CommandCounter],
) -> None:
    """A rare word: one membership read for all its candidates. A common word for a
    user in few conversations: the user's list of conversations, nothing else. Never
    a read of messages by ``_id``, never a membership read per message."""
    db, recorder = recorded
    ours, theirs = _conversation(ALICE, BOB), _conversation(BOB, "u-carol")
    messages = [
        _message(c.id, seq, f"daily standup notes {seq}", hours_ago=seq * 0.02)
        for c in (ours, theirs)
        for seq in range(1, 41)
    ]
    messages += [
        _message(c.id, 41 + i, f"quarterly zebra {i}", hours_ago=24 * (3 + i))
        for i, c in enumerate([ours, theirs, ours, theirs])
    ]
    await _seed(db, [ours, theirs], messages)
    search = mongo_storage(db).search

    recorder.clear()
    rare = await search.search(ALICE, ["zebra"], conversation_id=None, limit=21, after=None)
    rare_finds = list(recorder.finds)
    recorder.clear()
    common = await search.search(ALICE, ["standup"], conversation_id=None, limit=21, after=None)
    common_finds = list(recorder.finds)

    assert [m.body for m in rare] == ["quarterly zebra 0", "quarterly zebra 2"]
    assert [m.seq for m in common] == list(range(1, 22))
    assert common[0].conversation_id == ours.id
    for _, query in rare_finds + common_finds:
        assert "_id" not in query or query["_id"].keys() == {"$in"}, query
    assert not [q for coll, q in rare_finds + common_finds if coll == MESSAGES and "_id" in q]
    rare_members = [q for coll, q in rare_finds if coll == CONVERSATIONS]
    assert len(rare_members) == 1
    assert sorted(rare_members[0]["_id"]["$in"]) == sorted([ours.id, theirs.id])
    assert [q for coll, q in common_finds if coll == CONVERSATIONS] == [{"memberIds": ALICE}]


async def test_windows_that_find_nothing_reach_further_back(
    recorded: tuple[AsyncDatabase[Document], CommandCounter],
) -> None:
    """A word common in the first hour (in someone else's conversation), a user
    whose busy conversation (by its lastSeq) had two of its matches then and the
    rest weeks ago: the per-conversation windows grow across the gap instead of
    ending the search or creeping back an hour at a time."""
    db, recorder = recorded
    ours, theirs = _conversation(ALICE, BOB), _conversation(BOB, "u-carol")
    recent = [
        _message(theirs.id, s, f"daily standup {s}", hours_ago=s * 0.05) for s in range(1, 11)
    ]
    recent += [_message(ours.id, s, f"daily standup {s}", hours_ago=s * 0.1) for s in (1, 2)]
    old = [
        _message(ours.id, 3 + i, f"standup archive {i}", hours_ago=24 * 40 + i) for i in range(25)
    ]
    await _seed(db, [ours, theirs], recent + old)
    # Busy by its counter: the expected rate alone would keep the windows at an hour.
    await db[CONVERSATIONS].update_one({"_id": ours.id}, {"$set": {"lastSeq": 10_000_000}})
    search = mongo_storage(db).search

    recorder.clear()
    found = await search.search(ALICE, ["standup"], conversation_id=None, limit=21, after=None)
    reads = [q for coll, q in recorder.finds if coll == MESSAGES]

    assert [m.body for m in found] == ["daily standup 1", "daily standup 2"] + [
        f"standup archive {i}" for i in range(19)
    ]
    # The first window across conversations, then Alice's one conversation in
    # growing windows (or the word index once that is cheaper): 40 days an hour at a
    # time would be 960 reads.
    assert next(iter(reads[0])) == "createdAt"
    assert len(reads) <= 12
