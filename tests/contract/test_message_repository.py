"""Contract of MessageRepository, for every adapter."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from chatcore.chat import Storage
from chatcore.errors import Conflict, NotFound
from chatcore.models import Conversation, Message
from chatcore.testing import factories as make

ALICE, BOB, CAROL = "u-alice", "u-bob", "u-carol"


async def _group(storage: Storage, *members: str) -> Conversation:
    conversation = make.group(*(members or (ALICE, BOB)))
    await storage.conversations.create(conversation)
    return conversation


async def _stored(storage: Storage, conversation_id: str) -> Conversation:
    conversation = await storage.conversations.get(conversation_id)
    assert conversation is not None
    return conversation


async def _all(storage: Storage, conversation_id: str) -> list[Message]:
    conversation = await _stored(storage, conversation_id)
    return await storage.messages.range(conversation_id, 1, conversation.last_seq + 10)


async def test_append_stores_the_message_with_seq_1(storage: Storage) -> None:
    conversation = await _group(storage)
    new = make.message(conversation.id, ALICE, "hi Bob", seconds=5)

    result = await storage.messages.append(new)

    assert result.created
    message = result.message
    assert (message.id, message.conversation_id, message.seq) == (new.id, conversation.id, 1)
    assert (message.sender_id, message.body, message.client_msg_id) == (ALICE, "hi Bob", None)
    assert message.created_at == new.created_at
    assert message.created_at.utcoffset() == timedelta(0)
    assert (message.edited_at, message.deleted_at) == (None, None)
    assert await storage.messages.get(conversation.id, new.id) == message


async def test_append_updates_the_conversation(storage: Storage) -> None:
    conversation = await _group(storage)
    new = make.message(conversation.id, BOB, seconds=30)

    result = await storage.messages.append(new)

    assert result.conversation.last_seq == 1
    assert result.conversation.last_message == result.message
    assert result.conversation.last_activity_at == new.created_at
    assert result.conversation.member_ids == conversation.member_ids
    assert await _stored(storage, conversation.id) == result.conversation


async def test_appends_get_consecutive_seqs_and_range_is_inclusive_ascending(
    storage: Storage,
) -> None:
    conversation = await _group(storage)
    other = await _group(storage)
    for i in range(6):
        await storage.messages.append(make.message(conversation.id, ALICE, f"m{i + 1}"))
    await storage.messages.append(make.message(other.id, ALICE, "elsewhere"))

    middle = await storage.messages.range(conversation.id, 2, 4)
    everything = await storage.messages.range(conversation.id, 1, 6)

    assert [(m.seq, m.body) for m in middle] == [(2, "m2"), (3, "m3"), (4, "m4")]
    assert [m.seq for m in everything] == [1, 2, 3, 4, 5, 6]
    assert [m.seq for m in await storage.messages.range(conversation.id, 5, 99)] == [5, 6]
    assert [m.seq for m in await storage.messages.range(conversation.id, 0, 1)] == [1]
    assert await storage.messages.range(conversation.id, 4, 3) == []
    assert await storage.messages.range(conversation.id, 7, 9) == []
    assert await storage.messages.range("missing", 1, 5) == []
    assert [m.body for m in await storage.messages.range(other.id, 1, 1)] == ["elsewhere"]


async def test_concurrent_appends_get_gapless_unique_seqs(storage: Storage) -> None:
    conversation = await _group(storage, ALICE, BOB, CAROL)
    senders = (ALICE, BOB, CAROL)
    news = [make.message(conversation.id, senders[i % 3], f"m{i}") for i in range(60)]

    results = await asyncio.gather(*(storage.messages.append(n) for n in news))

    assert all(r.created for r in results)
    assert sorted(r.message.seq for r in results) == list(range(1, 61))
    stored = await _all(storage, conversation.id)
    assert [m.seq for m in stored] == list(range(1, 61))
    assert {m.id for m in stored} == {n.id for n in news}
    after = await _stored(storage, conversation.id)
    assert after.last_seq == 60
    assert after.last_message == stored[-1]


async def test_append_by_a_non_member_is_not_found_and_stores_nothing(storage: Storage) -> None:
    conversation = await _group(storage)

    with pytest.raises(NotFound):
        await storage.messages.append(make.message(conversation.id, CAROL))
    with pytest.raises(NotFound):
        await storage.messages.append(make.message("missing", ALICE))

    assert await _stored(storage, conversation.id) == conversation
    assert await _all(storage, conversation.id) == []


async def test_replaying_a_client_msg_id_returns_the_first_message(storage: Storage) -> None:
    conversation = await _group(storage)
    first = await storage.messages.append(
        make.message(conversation.id, ALICE, "once", client_msg_id="c-1")
    )
    await storage.messages.append(make.message(conversation.id, BOB, "between"))

    replay = await storage.messages.append(
        make.message(conversation.id, ALICE, "twice?", client_msg_id="c-1", seconds=9)
    )

    assert first.created
    assert not replay.created
    assert replay.message == first.message
    assert replay.conversation.last_seq == 2
    stored = await _all(storage, conversation.id)
    assert [(m.seq, m.body) for m in stored] == [(1, "once"), (2, "between")]
    assert (await _stored(storage, conversation.id)).last_seq == 2


async def test_a_replay_returns_the_message_as_stored_now(storage: Storage) -> None:
    conversation = await _group(storage)
    first = await storage.messages.append(
        make.message(conversation.id, ALICE, "typo", client_msg_id="c-1")
    )
    edited = await storage.messages.edit(first.message, "fixed", make.T0 + timedelta(seconds=1))

    replay = await storage.messages.append(
        make.message(conversation.id, ALICE, "typo", client_msg_id="c-1")
    )

    assert not replay.created
    assert replay.message == edited


async def test_a_replay_by_a_former_member_is_not_found(storage: Storage) -> None:
    conversation = await _group(storage, ALICE, BOB, CAROL)
    await storage.messages.append(make.message(conversation.id, CAROL, client_msg_id="c-1"))
    await storage.conversations.remove_member(conversation.id, CAROL)

    with pytest.raises(NotFound):
        await storage.messages.append(make.message(conversation.id, CAROL, client_msg_id="c-1"))


async def test_the_same_client_msg_id_elsewhere_is_a_new_message(storage: Storage) -> None:
    conversation = await _group(storage)
    other = await _group(storage)

    mine = await storage.messages.append(make.message(conversation.id, ALICE, client_msg_id="x"))
    bobs = await storage.messages.append(make.message(conversation.id, BOB, client_msg_id="x"))
    there = await storage.messages.append(make.message(other.id, ALICE, client_msg_id="x"))

    assert (mine.created, bobs.created, there.created) == (True, True, True)
    assert (mine.message.seq, bobs.message.seq, there.message.seq) == (1, 2, 1)
    assert len({mine.message.id, bobs.message.id, there.message.id}) == 3


async def test_concurrent_identical_replays_store_one_message_without_gaps(
    storage: Storage,
) -> None:
    conversation = await _group(storage)
    replays = [make.message(conversation.id, ALICE, "same", client_msg_id="dup") for _ in range(15)]
    others = [make.message(conversation.id, BOB, f"other {i}") for i in range(15)]
    mixed = [m for pair in zip(replays, others, strict=True) for m in pair]

    results = await asyncio.gather(*(storage.messages.append(m) for m in mixed))

    replayed = [r for r in results if r.message.client_msg_id == "dup"]
    assert sum(r.created for r in replayed) == 1
    assert len({r.message.id for r in replayed}) == 1
    stored = await _all(storage, conversation.id)
    assert [m.seq for m in stored] == list(range(1, 17))
    assert sum(m.client_msg_id == "dup" for m in stored) == 1
    assert (await _stored(storage, conversation.id)).last_seq == 16


async def test_get_finds_a_message_only_in_its_conversation(storage: Storage) -> None:
    conversation = await _group(storage)
    other = await _group(storage)
    sent = await storage.messages.append(make.message(conversation.id, ALICE))

    assert await storage.messages.get(conversation.id, sent.message.id) == sent.message
    assert await storage.messages.get(other.id, sent.message.id) is None
    assert await storage.messages.get(conversation.id, "missing") is None


async def test_edit_keeps_id_and_seq_and_the_last_message_in_step(storage: Storage) -> None:
    conversation = await _group(storage)
    first = await storage.messages.append(make.message(conversation.id, ALICE, "first"))
    last = await storage.messages.append(make.message(conversation.id, ALICE, "last"))
    at = make.T0 + timedelta(minutes=1, milliseconds=1)

    edited_last = await storage.messages.edit(last.message, "last, edited", at)
    edited_first = await storage.messages.edit(first.message, "first, edited", at)

    assert (edited_last.id, edited_last.seq) == (last.message.id, 2)
    assert (edited_last.body, edited_last.edited_at) == ("last, edited", at)
    assert edited_first.body == "first, edited"
    assert await _all(storage, conversation.id) == [edited_first, edited_last]
    assert (await _stored(storage, conversation.id)).last_message == edited_last


async def test_delete_empties_the_body_and_keeps_id_and_seq(storage: Storage) -> None:
    conversation = await _group(storage)
    older = await storage.messages.append(make.message(conversation.id, ALICE, "older"))
    newest = await storage.messages.append(make.message(conversation.id, BOB, "newest"))
    at = make.T0 + timedelta(minutes=2)

    deleted = await storage.messages.delete(newest.message, at)
    deleted_older = await storage.messages.delete(older.message, at)

    assert (deleted.id, deleted.seq, deleted.body, deleted.deleted_at) == (
        newest.message.id,
        2,
        "",
        at,
    )
    assert deleted.is_deleted
    assert await storage.messages.get(conversation.id, newest.message.id) == deleted
    assert await _all(storage, conversation.id) == [deleted_older, deleted]
    after = await _stored(storage, conversation.id)
    assert after.last_message == deleted
    assert after.last_seq == 2


async def test_an_edit_racing_a_delete_does_not_bring_the_message_back(storage: Storage) -> None:
    # The service checked the copy it read; the delete landed after that read.
    conversation = await _group(storage)
    sent = await storage.messages.append(make.message(conversation.id, ALICE, "first"))
    read_before = sent.message
    deleted = await storage.messages.delete(read_before, make.T0 + timedelta(seconds=1))

    with pytest.raises(Conflict):
        await storage.messages.edit(read_before, "back again", make.T0 + timedelta(seconds=2))
    assert await storage.messages.get(conversation.id, sent.message.id) == deleted
    assert (await _stored(storage, conversation.id)).last_message == deleted


async def test_editing_a_message_that_is_not_stored_is_not_found(storage: Storage) -> None:
    conversation = await _group(storage)
    sent = await storage.messages.append(make.message(conversation.id, ALICE))
    ghost = Message(
        id="ghost",
        conversation_id="missing",
        seq=1,
        sender_id=ALICE,
        body="boo",
        client_msg_id=None,
        created_at=make.T0,
    )

    with pytest.raises(NotFound):
        await storage.messages.edit(ghost, "x", make.T0)
    with pytest.raises(NotFound):
        await storage.messages.delete(ghost, make.T0)
    assert await _all(storage, conversation.id) == [sent.message]


async def test_count_unread_counts_messages_from_others_after_a_seq(storage: Storage) -> None:
    one = await _group(storage, ALICE, BOB, CAROL)
    two = await _group(storage, ALICE, BOB)
    quiet = await _group(storage, ALICE, BOB)
    for sender in (BOB, ALICE, CAROL, BOB, ALICE):  # seqs 1..5 in "one"
        await storage.messages.append(make.message(one.id, sender))
    for sender in (BOB, BOB):
        await storage.messages.append(make.message(two.id, sender))
    await storage.messages.append(make.message(quiet.id, ALICE))

    counts = await storage.messages.count_unread(ALICE, {one.id: 0, two.id: 1, quiet.id: 0})

    # "one": BOB(1), CAROL(3), BOB(4); "two": seq 2; "quiet": only Alice's own.
    assert counts == {one.id: 3, two.id: 1}
    assert await storage.messages.count_unread(ALICE, {one.id: 3}) == {one.id: 1}
    assert await storage.messages.count_unread(BOB, {one.id: 5}) == {}
    assert await storage.messages.count_unread(ALICE, {}) == {}


async def test_a_new_message_moves_its_conversation_to_the_top_of_the_list(
    storage: Storage,
) -> None:
    older = make.group(ALICE, BOB, seconds=0)
    newer = make.group(ALICE, CAROL, seconds=10)
    for c in (older, newer):
        await storage.conversations.create(c)

    await storage.messages.append(make.message(older.id, BOB, seconds=20))

    listed = await storage.conversations.list_for_member(ALICE, limit=10, after=None)
    assert [c.id for c in listed] == [older.id, newer.id]
    assert listed[0].activity_at == make.T0 + timedelta(seconds=20)


async def test_concurrent_sends_are_answered_each_on_its_own(storage: Storage) -> None:
    # Sent at once, these go in one batch on a store that batches: each gets its own
    # answer, and one send's failure or replay does not touch the others.
    one = await _group(storage, ALICE, BOB)
    two = await _group(storage, ALICE, CAROL)
    stored = await storage.messages.append(make.message(one.id, ALICE, client_msg_id="k-0"))
    sends = [
        make.message(one.id, ALICE, "a1"),
        make.message(two.id, CAROL, "c1"),
        make.message(one.id, CAROL, "not a member"),
        make.message("no-such-conversation", ALICE, "nowhere"),
        make.message(one.id, ALICE, "replay", client_msg_id="k-0"),
        make.message(one.id, BOB, "b1", client_msg_id="k-1"),
        make.message(one.id, BOB, "b1 again", client_msg_id="k-1"),
        make.message(two.id, ALICE, "a2"),
        make.message(one.id, ALICE, "a3"),
    ]

    results = await asyncio.gather(
        *(storage.messages.append(s) for s in sends), return_exceptions=True
    )

    a1, c1, outsider, nowhere, replay, b1, b1_again, a2, a3 = results
    assert isinstance(outsider, NotFound)
    assert isinstance(nowhere, NotFound)
    assert not isinstance(replay, BaseException)
    assert (replay.created, replay.message) == (False, stored.message)
    assert not isinstance(b1, BaseException)
    assert not isinstance(b1_again, BaseException)
    assert b1.created
    assert (b1_again.created, b1_again.message) == (False, b1.message)
    created = [r for r in (a1, b1, a3, c1, a2) if not isinstance(r, BaseException)]
    assert len(created) == 5
    assert all(r.created for r in created)
    # Per conversation, seqs follow the order the sends arrived in, without gaps.
    assert [r.message.body for r in sorted(created[:3], key=lambda r: r.message.seq)] == [
        "a1",
        "b1",
        "a3",
    ]
    assert [m.body for m in await _all(storage, one.id)] == ["hello", "a1", "b1", "a3"]
    assert [m.body for m in await _all(storage, two.id)] == ["c1", "a2"]
    assert [m.seq for m in await _all(storage, one.id)] == [1, 2, 3, 4]
    newest = await storage.conversations.get(one.id)
    assert newest is not None
    assert newest.last_message == created[2].message


async def test_count_unread_with_own_messages_before_and_after_the_pointer(
    storage: Storage,
) -> None:
    chat = await _group(storage, ALICE, BOB)
    for sender in (ALICE, BOB, BOB, ALICE, BOB):  # seqs 1..5
        await storage.messages.append(make.message(chat.id, sender))

    # Alice's own messages at 1 and 4: after 4 only Bob's 5; after 2, Bob's 3 and 5.
    assert await storage.messages.count_unread(ALICE, {chat.id: 4}) == {chat.id: 1}
    assert await storage.messages.count_unread(ALICE, {chat.id: 2}) == {chat.id: 2}
    assert await storage.messages.count_unread(BOB, {chat.id: 3}) == {chat.id: 1}
    assert await storage.messages.count_unread(BOB, {chat.id: 0}) == {chat.id: 2}
    assert await storage.messages.count_unread(CAROL, {chat.id: 5}) == {}
