"""Contract v1.1 in the domain: thread replies, reactions and @-mentions."""

from __future__ import annotations

import asyncio

import pytest

from chatcore.errors import Conflict, NotFound, ValidationFailed
from chatcore.limits import MAX_REACTION_EMOJI
from chatcore.mentions import named_usernames
from chatcore.models import Reaction, User
from chatcore.testing import ChatKit


@pytest.fixture
async def group(kit: ChatKit, alice: User, bob: User, carol: User) -> str:
    view = await kit.chat.conversations.create_group(alice.id, "Trio", [bob.id, carol.id])
    kit.notifier.clear()
    return view.conversation.id


async def send(kit: ChatKit, user: User, conversation_id: str, body: str, **kw: str) -> str:
    return (await kit.chat.messages.send(user.id, conversation_id, body, **kw)).message.id


# --- threads ------------------------------------------------------------------------------


async def test_a_reply_takes_the_next_seq_and_updates_the_root_summary(
    kit: ChatKit, alice: User, bob: User, carol: User, group: str
) -> None:
    root = await send(kit, alice, group, "lunch?")
    kit.clock.advance(seconds=5)
    first = await kit.chat.messages.send(bob.id, group, "yes", thread_id=root)
    kit.clock.advance(seconds=5)
    await kit.chat.messages.send(carol.id, group, "me too", thread_id=root)
    await kit.chat.messages.send(bob.id, group, "12:30?", thread_id=root)

    assert (first.message.seq, first.message.thread_id) == (2, root)
    stored = await kit.storage.messages.get(group, root)
    assert stored is not None
    assert stored.thread is not None
    assert stored.thread.reply_count == 3
    assert stored.thread.last_reply_at == kit.clock.now()
    assert stored.thread.participant_ids == (bob.id, carol.id)
    assert stored.thread_id is None


async def test_members_hear_the_reply_then_the_updated_root(
    kit: ChatKit, alice: User, bob: User, group: str
) -> None:
    root = await send(kit, alice, group, "lunch?")
    kit.notifier.clear()

    reply = await kit.chat.messages.send(bob.id, group, "yes", thread_id=root)

    names = [(e.name, e.payload.id) for e in kit.notifier.events]
    assert names == [("newMessage", reply.message.id), ("messageUpdated", root)]
    assert kit.notifier.events[1].payload.thread.reply_count == 1


async def test_replying_to_a_reply_joins_the_roots_thread(
    kit: ChatKit, alice: User, bob: User, group: str
) -> None:
    root = await send(kit, alice, group, "lunch?")
    reply = await send(kit, bob, group, "yes", thread_id=root)

    nested = await kit.chat.messages.send(alice.id, group, "good", thread_id=reply)

    assert nested.message.thread_id == root
    assert nested.thread_root is not None
    assert nested.thread_root.id == root


async def test_a_replayed_reply_counts_once(
    kit: ChatKit, alice: User, bob: User, group: str
) -> None:
    root = await send(kit, alice, group, "lunch?")
    await kit.chat.messages.send(bob.id, group, "yes", "c-1", thread_id=root)
    kit.notifier.clear()

    again = await kit.chat.messages.send(bob.id, group, "yes", "c-1", thread_id=root)

    assert not again.created
    assert kit.notifier.events == []
    stored = await kit.storage.messages.get(group, root)
    assert stored is not None
    assert stored.thread is not None
    assert stored.thread.reply_count == 1


@pytest.mark.parametrize("case", ["other conversation", "deleted", "unknown"])
async def test_a_bad_thread_id_is_a_validation_error_and_stores_nothing(
    kit: ChatKit, alice: User, bob: User, group: str, case: str
) -> None:
    elsewhere = await kit.chat.conversations.open_direct(alice.id, bob.id)
    target = "nope"
    if case == "other conversation":
        target = await send(kit, alice, elsewhere.conversation.id, "hi")
    elif case == "deleted":
        target = await send(kit, alice, group, "oops")
        await kit.chat.messages.delete(alice.id, group, target)
    before = (await kit.chat.conversations.get(alice.id, group)).conversation.last_seq

    with pytest.raises(ValidationFailed) as err:
        await kit.chat.messages.send(bob.id, group, "reply", thread_id=target)

    assert err.value.details == {"field": "threadId"}
    assert (await kit.chat.conversations.get(alice.id, group)).conversation.last_seq == before


async def test_a_non_member_replying_gets_not_found(
    kit: ChatKit, alice: User, bob: User, dave: User, group: str
) -> None:
    root = await send(kit, alice, group, "lunch?")
    with pytest.raises(NotFound):
        await kit.chat.messages.send(dave.id, group, "me?", thread_id=root)
    with pytest.raises(NotFound):
        await kit.chat.messages.send(dave.id, group, "me?", thread_id="unknown")


async def test_deleting_a_reply_keeps_the_reply_count(
    kit: ChatKit, alice: User, bob: User, group: str
) -> None:
    root = await send(kit, alice, group, "lunch?")
    reply = await send(kit, bob, group, "yes", thread_id=root)

    await kit.chat.messages.delete(bob.id, group, reply)

    stored = await kit.storage.messages.get(group, root)
    assert stored is not None
    assert stored.thread is not None
    assert stored.thread.reply_count == 1


async def test_thread_lists_replies_only_paged_by_seq(
    kit: ChatKit, alice: User, bob: User, group: str
) -> None:
    root = await send(kit, alice, group, "root")
    replies = []
    for i in range(5):
        await send(kit, alice, group, f"noise {i}")
        replies.append(await send(kit, bob, group, f"r{i}", thread_id=root))
    thread = kit.chat.messages.thread

    newest = await thread(alice.id, group, root, limit=2)
    older = await thread(alice.id, group, root, before=newest.messages[0].seq, limit=2)
    oldest = await thread(alice.id, group, root, before=older.messages[0].seq, limit=2)
    after = await thread(alice.id, group, replies[1], after=0, limit=3)

    assert [m.body for m in newest.messages] == ["r3", "r4"]
    assert newest.has_more
    assert [m.body for m in older.messages] == ["r1", "r2"]
    assert older.has_more
    assert [m.body for m in oldest.messages] == ["r0"]
    assert not oldest.has_more
    assert [m.id for m in after.messages] == replies[:3]
    assert after.has_more


async def test_thread_of_a_message_elsewhere_is_a_validation_error(
    kit: ChatKit, alice: User, bob: User, group: str
) -> None:
    elsewhere = await kit.chat.conversations.open_direct(alice.id, bob.id)
    other = await send(kit, alice, elsewhere.conversation.id, "hi")
    with pytest.raises(ValidationFailed):
        await kit.chat.messages.thread(alice.id, group, other)


# --- reactions ----------------------------------------------------------------------------


async def test_reactions_keep_first_use_order_and_toggle(
    kit: ChatKit, alice: User, bob: User, carol: User, group: str
) -> None:
    message = await send(kit, alice, group, "party")
    react = kit.chat.reactions.react
    await react(bob.id, group, message, "🎉", add=True)
    await react(carol.id, group, message, ":party:", add=True)
    await react(carol.id, group, message, "🎉", add=True)
    await react(carol.id, group, message, "🎉", add=True)

    shown = await react(bob.id, group, message, ":party:", add=False)
    assert shown.reactions == (
        Reaction(emoji="🎉", user_ids=(bob.id, carol.id)),
        Reaction(emoji=":party:", user_ids=(carol.id,)),
    )
    last = await react(carol.id, group, message, ":party:", add=False)
    assert last.reactions == (Reaction(emoji="🎉", user_ids=(bob.id, carol.id)),)
    assert last.edited_at is None
    assert last.seq == 1


async def test_only_changes_are_announced(kit: ChatKit, alice: User, bob: User, group: str) -> None:
    message = await send(kit, alice, group, "party")
    kit.notifier.clear()
    react = kit.chat.reactions.react

    await react(bob.id, group, message, "👍", add=True)
    await react(bob.id, group, message, "👍", add=True)
    await react(bob.id, group, message, "🙂", add=False)

    assert [e.name for e in kit.notifier.events] == ["messageUpdated"]


async def test_the_21st_distinct_emoji_is_a_conflict(
    kit: ChatKit, alice: User, bob: User, group: str
) -> None:
    message = await send(kit, alice, group, "party")
    for i in range(MAX_REACTION_EMOJI):
        await kit.chat.reactions.react(bob.id, group, message, f":e{i}:", add=True)

    with pytest.raises(Conflict):
        await kit.chat.reactions.react(alice.id, group, message, ":one-more:", add=True)
    again = await kit.chat.reactions.react(alice.id, group, message, ":e0:", add=True)
    assert len(again.reactions) == MAX_REACTION_EMOJI


async def test_concurrent_reactions_all_land(yielding_kit: ChatKit) -> None:
    kit = yielding_kit
    users = [(await kit.chat.auth.register(f"u{i}", "password1")).user for i in range(20)]
    view = await kit.chat.conversations.create_group(users[0].id, "big", [u.id for u in users])
    conversation = view.conversation.id
    message = await send(kit, users[0], conversation, "react!")

    await asyncio.gather(
        *(kit.chat.reactions.react(u.id, conversation, message, "👍", add=True) for u in users)
    )

    stored = await kit.storage.messages.get(conversation, message)
    assert stored is not None
    assert sorted(stored.reactions[0].user_ids) == sorted(u.id for u in users)


@pytest.mark.parametrize(
    "emoji", ["", " ", "a b", "x" * 33, "\t", "a\x00", "a\n", "\u00a0", "\ufeff", "a/b"]
)
async def test_bad_emoji_is_a_validation_error(
    kit: ChatKit, alice: User, group: str, emoji: str
) -> None:
    message = await send(kit, alice, group, "hi")
    with pytest.raises(ValidationFailed) as err:
        await kit.chat.reactions.react(alice.id, group, message, emoji, add=True)
    assert err.value.details == {"field": "emoji"}


async def test_a_32_character_emoji_and_a_joined_emoji_are_fine(
    kit: ChatKit, alice: User, group: str
) -> None:
    message = await send(kit, alice, group, "hi")
    for emoji in ("x" * 32, "👨‍👩‍👧", "👍🏽"):
        await kit.chat.reactions.react(alice.id, group, message, emoji, add=True)


async def test_a_deleted_message_takes_no_reactions_and_loses_its_own(
    kit: ChatKit, alice: User, bob: User, group: str
) -> None:
    message = await send(kit, alice, group, "hi @bob")
    await kit.chat.reactions.react(bob.id, group, message, "👍", add=True)

    deleted = await kit.chat.messages.delete(alice.id, group, message)

    assert (deleted.reactions, deleted.mentions) == ((), ())
    for add in (True, False):
        with pytest.raises(Conflict):
            await kit.chat.reactions.react(bob.id, group, message, "👍", add=add)


async def test_reacting_needs_membership_and_an_existing_message(
    kit: ChatKit, alice: User, dave: User, group: str
) -> None:
    message = await send(kit, alice, group, "hi")
    with pytest.raises(NotFound):
        await kit.chat.reactions.react(dave.id, group, message, "👍", add=True)
    with pytest.raises(NotFound):
        await kit.chat.reactions.react(alice.id, group, "missing", "👍", add=True)


# --- mentions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("no mention", []),
        ("hi @Bob and @carol, @bob again", ["bob", "carol"]),
        ("mail alice@example.org", []),
        ("@bob.", ["bob."]),
        ("(@dave)", ["dave"]),
    ],
)
def test_named_usernames(body: str, names: list[str]) -> None:
    assert named_usernames(body) == names


async def test_mentions_name_members_other_than_the_sender_in_order(
    kit: ChatKit, alice: User, bob: User, carol: User, dave: User, group: str
) -> None:
    sent = await kit.chat.messages.send(
        alice.id, group, "@CAROL @dave @alice @nobody @bob @carol @bobby"
    )
    assert sent.message.mentions == (carol.id, bob.id)


async def test_editing_finds_mentions_again(
    kit: ChatKit, alice: User, bob: User, carol: User, group: str
) -> None:
    message = await send(kit, alice, group, "hi @bob")
    edited = await kit.chat.messages.edit(alice.id, group, message, "hi @carol")
    assert edited.mentions == (carol.id,)


async def test_unread_mentions_count_until_read(
    kit: ChatKit, alice: User, bob: User, carol: User, group: str
) -> None:
    await send(kit, alice, group, "hi @bob")
    await send(kit, carol, group, "@bob look")
    await send(kit, carol, group, "nothing")
    await send(kit, bob, group, "@bob talking to myself")

    view = await kit.chat.conversations.get(bob.id, group)
    assert (view.unread_count, view.unread_mentions) == (3, 2)
    [listed] = (await kit.chat.conversations.list_for_user(bob.id)).items
    assert listed.unread_mentions == 2

    await kit.chat.receipts.mark_read(bob.id, group, 2)
    view = await kit.chat.conversations.get(bob.id, group)
    assert (view.unread_count, view.unread_mentions) == (1, 0)


async def test_conversation_updated_carries_each_viewers_mentions(
    kit: ChatKit, alice: User, bob: User, carol: User, dave: User, group: str
) -> None:
    await send(kit, alice, group, "hi @bob")
    kit.notifier.clear()

    await kit.chat.conversations.add_member(alice.id, group, dave.id)

    views = {e.payload.viewer_id: e.payload for e in kit.notifier.named("conversationUpdated")}
    assert (views[bob.id].unread_mentions, views[carol.id].unread_mentions) == (1, 0)
