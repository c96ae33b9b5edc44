"""Contract of the v1.1 MessageRepository methods (threads, reactions, mentions), and
UserRepository.find_by_usernames, for every adapter."""

from __future__ import annotations

import asyncio

import pytest

from chatcore.chat import Storage
from chatcore.errors import Conflict, NotFound
from chatcore.limits import MAX_REACTION_EMOJI
from chatcore.models import Conversation, Message, Reaction, ThreadSummary
from chatcore.testing import factories as make

ALICE, BOB, CAROL, DAVE = "u-alice", "u-bob", "u-carol", "u-dave"


async def _group(storage: Storage, *members: str) -> Conversation:
    conversation = make.group(*(members or (ALICE, BOB, CAROL)))
    await storage.conversations.create(conversation)
    return conversation


async def _root(storage: Storage, conversation: Conversation, body: str = "root") -> Message:
    return (await storage.messages.append(make.message(conversation.id, ALICE, body))).message


async def _get(storage: Storage, message: Message) -> Message:
    found = await storage.messages.get(message.conversation_id, message.id)
    assert found is not None
    return found


# --- threads ------------------------------------------------------------------------------


async def test_a_reply_updates_the_root_summary_in_the_same_step(storage: Storage) -> None:
    conversation = await _group(storage)
    root = await _root(storage, conversation)

    first = await storage.messages.append(
        make.message(conversation.id, BOB, "r1", thread_id=root.id, seconds=10)
    )
    second = await storage.messages.append(
        make.message(conversation.id, CAROL, "r2", thread_id=root.id, seconds=20)
    )
    third = await storage.messages.append(
        make.message(conversation.id, BOB, "r3", thread_id=root.id, seconds=15)
    )

    assert first.message.thread_id == root.id
    assert first.message.seq == 2
    summary = ThreadSummary(
        reply_count=3, last_reply_at=make.T0 + make.at(20), participant_ids=(BOB, CAROL)
    )
    assert third.thread_root is not None
    assert third.thread_root.thread == summary
    assert second.thread_root is not None
    assert second.thread_root.thread is not None
    assert (await _get(storage, root)).thread == summary
    assert (await _get(storage, root)).thread_id is None
    assert (await _get(storage, first.message)).thread is None


async def test_a_top_level_message_has_no_thread_root(storage: Storage) -> None:
    conversation = await _group(storage)
    result = await storage.messages.append(make.message(conversation.id, ALICE))
    assert result.thread_root is None
    assert (result.message.thread_id, result.message.thread) == (None, None)
    assert (result.message.reactions, result.message.mentions) == ((), ())


async def test_concurrent_replies_all_count(storage: Storage) -> None:
    conversation = await _group(storage)
    root = await _root(storage, conversation)
    senders = (ALICE, BOB, CAROL)

    await asyncio.gather(
        *(
            storage.messages.append(
                make.message(conversation.id, senders[i % 3], f"r{i}", thread_id=root.id)
            )
            for i in range(12)
        )
    )

    summary = (await _get(storage, root)).thread
    assert summary is not None
    assert summary.reply_count == 12
    assert sorted(summary.participant_ids) == sorted(senders)


async def test_a_replayed_reply_changes_no_summary(storage: Storage) -> None:
    conversation = await _group(storage)
    root = await _root(storage, conversation)
    new = make.message(conversation.id, BOB, "r", thread_id=root.id, client_msg_id="c-1")
    await storage.messages.append(new)

    replay = await storage.messages.append(
        make.message(conversation.id, BOB, "r", thread_id=root.id, client_msg_id="c-1")
    )

    assert not replay.created
    assert replay.thread_root is None
    summary = (await _get(storage, root)).thread
    assert summary is not None
    assert summary.reply_count == 1


async def test_a_non_members_reply_stores_nothing(storage: Storage) -> None:
    conversation = await _group(storage)
    root = await _root(storage, conversation)

    with pytest.raises(NotFound):
        await storage.messages.append(make.message(conversation.id, DAVE, thread_id=root.id))

    assert (await _get(storage, root)).thread is None


async def test_thread_replies_pages_by_seq(storage: Storage) -> None:
    conversation = await _group(storage)
    root = await _root(storage, conversation)
    other = await _root(storage, conversation, "other root")
    replies = []
    for i in range(5):
        await storage.messages.append(make.message(conversation.id, ALICE, f"noise {i}"))
        await storage.messages.append(
            make.message(conversation.id, CAROL, f"elsewhere {i}", thread_id=other.id)
        )
        result = await storage.messages.append(
            make.message(conversation.id, BOB, f"r{i}", thread_id=root.id)
        )
        replies.append(result.message)
    page = storage.messages.thread_replies
    seqs = [m.seq for m in replies]

    assert await page(conversation.id, root.id, before=None, after=None, limit=10) == replies
    assert [
        m.seq for m in await page(conversation.id, root.id, before=None, after=None, limit=2)
    ] == seqs[3:]
    assert [
        m.seq for m in await page(conversation.id, root.id, before=seqs[3], after=None, limit=2)
    ] == seqs[1:3]
    assert [
        m.seq for m in await page(conversation.id, root.id, before=None, after=seqs[0], limit=3)
    ] == seqs[1:4]
    assert await page(conversation.id, root.id, before=None, after=seqs[4], limit=3) == []
    assert await page(conversation.id, other.id, before=None, after=None, limit=1) != []
    assert await page("elsewhere", root.id, before=None, after=None, limit=10) == []


# --- mentions -----------------------------------------------------------------------------


async def test_mentions_keep_only_members(storage: Storage) -> None:
    conversation = await _group(storage)
    result = await storage.messages.append(
        make.message(conversation.id, ALICE, "@x", mentions=(CAROL, DAVE, BOB))
    )

    assert result.message.mentions == (CAROL, BOB)
    assert (await _get(storage, result.message)).mentions == (CAROL, BOB)
    stored = await storage.conversations.get(conversation.id)
    assert stored is not None
    assert stored.last_message == result.message


async def test_edit_replaces_mentions_and_delete_clears_them(storage: Storage) -> None:
    conversation = await _group(storage)
    sent = await storage.messages.append(
        make.message(conversation.id, ALICE, "@bob", mentions=(BOB,))
    )

    edited = await storage.messages.edit(sent.message, "@carol", make.T0 + make.at(5), (CAROL,))
    assert edited.mentions == (CAROL,)
    assert (await _get(storage, sent.message)).mentions == (CAROL,)
    deleted = await storage.messages.delete(edited, make.T0 + make.at(6))
    assert deleted.mentions == ()


async def _mentions(storage: Storage, user_id: str, after_seq: dict[str, int]) -> dict[str, int]:
    return (await storage.messages.count_unread_and_mentions(user_id, after_seq))[1]


async def test_count_unread_and_mentions(storage: Storage) -> None:
    conversation = await _group(storage)
    other = await _group(storage)
    quiet = await _group(storage)
    for sender, mentions in [(ALICE, (BOB,)), (CAROL, (BOB, ALICE)), (CAROL, ()), (ALICE, (BOB,))]:
        await storage.messages.append(make.message(conversation.id, sender, mentions=mentions))
    await storage.messages.append(make.message(other.id, CAROL, mentions=(BOB,)))
    await storage.messages.append(make.message(quiet.id, CAROL))
    windows = {conversation.id: 1, other.id: 0, quiet.id: 0}

    unread, mentions = await storage.messages.count_unread_and_mentions(BOB, windows)

    assert unread == await storage.messages.count_unread(BOB, windows)
    assert unread == {conversation.id: 3, other.id: 1, quiet.id: 1}
    assert mentions == {conversation.id: 2, other.id: 1}
    assert await _mentions(storage, ALICE, {conversation.id: 0}) == {conversation.id: 1}
    assert await _mentions(storage, BOB, {conversation.id: 4}) == {}
    assert await storage.messages.count_unread_and_mentions(BOB, {}) == ({}, {})


async def test_many_mentions_and_a_batch_of_sends_all_count(storage: Storage) -> None:
    conversation = await _group(storage)
    news = [
        make.message(conversation.id, (ALICE, CAROL)[i % 2], mentions=(BOB,)) for i in range(30)
    ]

    await asyncio.gather(*(storage.messages.append(n) for n in news))

    assert await _mentions(storage, BOB, {conversation.id: 0}) == {conversation.id: 30}
    assert await _mentions(storage, BOB, {conversation.id: 27}) == {conversation.id: 3}
    assert await _mentions(storage, BOB, {conversation.id: 5}) == {conversation.id: 25}


async def test_edits_and_deletions_change_unread_mentions(storage: Storage) -> None:
    conversation = await _group(storage)
    first = await storage.messages.append(make.message(conversation.id, ALICE, "hi"))
    second = await storage.messages.append(
        make.message(conversation.id, ALICE, "@bob", mentions=(BOB,))
    )
    for _ in range(3):
        await storage.messages.append(make.message(conversation.id, CAROL, mentions=(BOB,)))
    at = make.T0 + make.at(9)

    await storage.messages.edit(first.message, "@bob @carol", at, (BOB, CAROL))
    assert await _mentions(storage, BOB, {conversation.id: 0}) == {conversation.id: 5}
    assert await _mentions(storage, CAROL, {conversation.id: 0}) == {conversation.id: 1}
    await storage.messages.delete(second.message, at)
    assert await _mentions(storage, BOB, {conversation.id: 0}) == {conversation.id: 4}
    edited = await storage.messages.get(conversation.id, first.message.id)
    assert edited is not None
    await storage.messages.edit(edited, "hi again", at, ())
    assert await _mentions(storage, BOB, {conversation.id: 0}) == {conversation.id: 3}
    assert await _mentions(storage, CAROL, {conversation.id: 0}) == {}
    # New mentions after the changes are counted too.
    await storage.messages.append(make.message(conversation.id, ALICE, mentions=(BOB,)))
    assert await _mentions(storage, BOB, {conversation.id: 0}) == {conversation.id: 4}


async def test_find_by_usernames_is_case_insensitive(storage: Storage) -> None:
    alice, bob = make.user("Alice"), make.user("bob")
    await storage.users.add(alice, "h")
    await storage.users.add(bob, "h")

    found = await storage.users.find_by_usernames(["alice", "BOB", "nobody"])

    assert sorted(u.id for u in found) == sorted([alice.id, bob.id])
    assert await storage.users.find_by_usernames([]) == []


# --- reactions ----------------------------------------------------------------------------


async def test_react_adds_and_removes_in_first_use_order(storage: Storage) -> None:
    conversation = await _group(storage)
    message = await _root(storage, conversation)
    react = storage.messages.react

    _, added = await react(conversation.id, message.id, BOB, "👍", add=True)
    await react(conversation.id, message.id, CAROL, ":party:", add=True)
    _, twice = await react(conversation.id, message.id, BOB, "👍", add=True)
    both, _ = await react(conversation.id, message.id, CAROL, "👍", add=True)
    _, absent = await react(conversation.id, message.id, BOB, ":party:", add=False)

    assert (added, twice, absent) == (True, False, False)
    assert both.reactions == (
        Reaction(emoji="👍", user_ids=(BOB, CAROL)),
        Reaction(emoji=":party:", user_ids=(CAROL,)),
    )
    removed, changed = await react(conversation.id, message.id, CAROL, ":party:", add=False)
    assert changed
    assert removed.reactions == (Reaction(emoji="👍", user_ids=(BOB, CAROL)),)
    assert (removed.edited_at, removed.seq, removed.body) == (None, 1, "root")
    assert await _get(storage, message) == removed
    stored = await storage.conversations.get(conversation.id)
    assert stored is not None
    assert stored.last_message == removed


async def test_twenty_members_reacting_at_once_all_land(storage: Storage) -> None:
    members = [f"u-{i:02d}" for i in range(20)]
    conversation = await _group(storage, *members)
    message = (await storage.messages.append(make.message(conversation.id, members[0]))).message

    await asyncio.gather(
        *(storage.messages.react(conversation.id, message.id, m, "🎉", add=True) for m in members)
    )

    [reaction] = (await _get(storage, message)).reactions
    assert reaction.emoji == "🎉"
    assert sorted(reaction.user_ids) == members


async def test_the_emoji_cap_holds_under_races(storage: Storage) -> None:
    conversation = await _group(storage)
    message = await _root(storage, conversation)

    results = await asyncio.gather(
        *(
            storage.messages.react(conversation.id, message.id, BOB, f":e{i}:", add=True)
            for i in range(MAX_REACTION_EMOJI + 6)
        ),
        return_exceptions=True,
    )

    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 6
    assert all(isinstance(r, Conflict) for r in refused)
    assert len((await _get(storage, message)).reactions) == MAX_REACTION_EMOJI
    with pytest.raises(Conflict):
        await storage.messages.react(conversation.id, message.id, ALICE, ":new:", add=True)
    _, changed = await storage.messages.react(conversation.id, message.id, ALICE, ":e0:", add=True)
    assert changed


async def test_a_deleted_message_takes_no_reactions(storage: Storage) -> None:
    conversation = await _group(storage)
    message = await _root(storage, conversation)
    await storage.messages.react(conversation.id, message.id, BOB, "👍", add=True)
    deleted = await storage.messages.delete(await _get(storage, message), make.T0 + make.at(1))

    assert deleted.reactions == ()
    for add in (True, False):
        with pytest.raises(Conflict):
            await storage.messages.react(conversation.id, message.id, BOB, "👍", add=add)
    assert (await _get(storage, message)).reactions == ()


async def test_reacting_to_a_message_elsewhere_is_not_found(storage: Storage) -> None:
    conversation = await _group(storage)
    other = await _group(storage)
    message = await _root(storage, conversation)

    with pytest.raises(NotFound):
        await storage.messages.react(other.id, message.id, BOB, "👍", add=True)
    with pytest.raises(NotFound):
        await storage.messages.react(conversation.id, "missing", BOB, "👍", add=True)
    assert (await _get(storage, message)).reactions == ()


async def test_edit_keeps_reactions_and_thread(storage: Storage) -> None:
    conversation = await _group(storage)
    root = await _root(storage, conversation)
    await storage.messages.append(make.message(conversation.id, BOB, thread_id=root.id))
    await storage.messages.react(conversation.id, root.id, BOB, "👍", add=True)

    edited = await storage.messages.edit(root, "new body", make.T0 + make.at(9))

    assert edited.reactions == (Reaction(emoji="👍", user_ids=(BOB,)),)
    assert edited.thread is not None
    assert edited.thread.reply_count == 1
