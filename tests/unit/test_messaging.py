"""MessageService: send (gapless seq, idempotency), history windows, edit, delete,
the seed-compatible direct paths, and sync."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcore.chat import Storage
from chatcore.errors import Conflict, Forbidden, NotFound, ValidationFailed
from chatcore.limits import (
    MAX_BODY_CHARS,
    SYNC_MAX_CONVERSATIONS,
    SYNC_MAX_MESSAGES_PER_CONVERSATION,
)
from chatcore.models import Message, User
from chatcore.testing import EPOCH, ChatKit, in_memory_chat

PASSWORD = "correct horse battery"


@pytest.fixture
async def dm(kit: ChatKit, alice: User, bob: User) -> str:
    view = await kit.chat.conversations.open_direct(alice.id, bob.id)
    kit.notifier.clear()
    return view.conversation.id


@pytest.fixture
async def group(kit: ChatKit, alice: User, bob: User, carol: User) -> str:
    view = await kit.chat.conversations.create_group(alice.id, "Trio", [bob.id, carol.id])
    kit.notifier.clear()
    return view.conversation.id


async def fill(kit: ChatKit, sender: User, conversation_id: str, n: int) -> list[Message]:
    return [
        (await kit.chat.messages.send(sender.id, conversation_id, f"m{i}")).message
        for i in range(1, n + 1)
    ]


async def stored(kit: ChatKit, user: User, conversation_id: str) -> list[Message]:
    history = await kit.chat.messages.history(user.id, conversation_id, limit=100)
    return history.messages


# --- send -------------------------------------------------------------------------------


async def test_send_stores_the_message_with_the_next_seq(
    kit: ChatKit, alice: User, bob: User, dm: str
) -> None:
    kit.clock.advance(seconds=3)

    result = await kit.chat.messages.send(alice.id, dm, "hello", "c-1")

    message = result.message
    assert result.created is True
    assert (message.conversation_id, message.seq, message.sender_id) == (dm, 1, alice.id)
    assert (message.body, message.client_msg_id) == ("hello", "c-1")
    assert message.created_at == EPOCH.replace(second=3)
    assert message.edited_at is None
    assert message.deleted_at is None
    assert result.conversation.last_seq == 1
    assert result.conversation.last_message == message
    second = await kit.chat.messages.send(bob.id, dm, "hi")
    assert second.message.seq == 2
    assert second.message.client_msg_id is None
    assert await stored(kit, alice, dm) == [message, second.message]


async def test_new_message_goes_to_every_member_including_the_sender(
    kit: ChatKit, alice: User, bob: User, carol: User, group: str
) -> None:
    result = await kit.chat.messages.send(bob.id, group, "hi all")

    [event] = kit.notifier.events
    assert event.name == "newMessage"
    assert event.payload == result.message
    assert set(event.recipient_ids) == {alice.id, bob.id, carol.id}


async def test_seqs_are_per_conversation(
    kit: ChatKit, alice: User, bob: User, dm: str, group: str
) -> None:
    await fill(kit, alice, dm, 3)

    first_in_group = await kit.chat.messages.send(alice.id, group, "group")

    assert first_in_group.message.seq == 1


async def test_concurrent_sends_get_exactly_one_to_n(
    yielding_kit: ChatKit,
) -> None:
    kit = yielding_kit
    alice = (await kit.chat.auth.register("alice", PASSWORD)).user
    bob = (await kit.chat.auth.register("bob", PASSWORD)).user
    cid = (await kit.chat.conversations.open_direct(alice.id, bob.id)).conversation.id

    results = await asyncio.gather(
        *(kit.chat.messages.send((alice, bob)[i % 2].id, cid, f"m{i}") for i in range(60))
    )

    assert sorted(r.message.seq for r in results) == list(range(1, 61))
    assert len({r.message.id for r in results}) == 60
    history = await kit.chat.messages.history(alice.id, cid, limit=100)
    assert [m.seq for m in history.messages] == list(range(1, 61))
    assert sorted(m.id for m in history.messages) == sorted(r.message.id for r in results)
    assert (await kit.chat.conversations.get(bob.id, cid)).conversation.last_seq == 60


@settings(max_examples=40, deadline=None)
@given(
    tasks=st.lists(
        st.tuples(
            st.integers(0, 2),  # which member sends
            st.lists(st.integers(0, 3), min_size=1, max_size=4),  # yields before each send
        ),
        min_size=1,
        max_size=12,
    )
)
def test_any_interleaving_of_sends_gives_gapless_seqs(
    yielding_storage: Callable[[], Storage], tasks: list[tuple[int, list[int]]]
) -> None:
    async def scenario() -> None:
        kit = in_memory_chat(storage=yielding_storage())
        members = [(await kit.chat.auth.register(n, PASSWORD)).user for n in ("ann", "ben", "cat")]
        cid = (
            await kit.chat.conversations.create_group(
                members[0].id, "G", [m.id for m in members[1:]]
            )
        ).conversation.id

        async def sender(who: int, pauses: list[int]) -> list[int]:
            seqs = []
            for pause in pauses:
                for _ in range(pause):
                    await asyncio.sleep(0)
                result = await kit.chat.messages.send(members[who].id, cid, "x")
                seqs.append(result.message.seq)
            return seqs

        per_task = await asyncio.gather(*(sender(who, pauses) for who, pauses in tasks))

        total = sum(len(pauses) for _, pauses in tasks)
        assert sorted(s for seqs in per_task for s in seqs) == list(range(1, total + 1))
        for seqs in per_task:  # one task's sends are in order
            assert seqs == sorted(seqs)
        history = await kit.chat.messages.history(members[1].id, cid, limit=100)
        assert [m.seq for m in history.messages] == list(range(1, total + 1))
        assert sorted(e.payload.seq for e in kit.notifier.named("newMessage")) == list(
            range(1, total + 1)
        )

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        ("  hi  ", "hi"),
        ("\n\tline one\nline two \n", "line one\nline two"),
        ("x", "x"),
        ("y" * MAX_BODY_CHARS, "y" * MAX_BODY_CHARS),
        ("   " + "z" * MAX_BODY_CHARS + "\n", "z" * MAX_BODY_CHARS),
    ],
)
async def test_body_is_trimmed(kit: ChatKit, alice: User, dm: str, body: str, kept: str) -> None:
    result = await kit.chat.messages.send(alice.id, dm, body)

    assert result.message.body == kept


@pytest.mark.parametrize("body", ["", "   ", "\n\t ", "y" * (MAX_BODY_CHARS + 1)])
async def test_bad_body_is_refused_and_nothing_is_stored(
    kit: ChatKit, alice: User, dm: str, body: str
) -> None:
    with pytest.raises(ValidationFailed) as err:
        await kit.chat.messages.send(alice.id, dm, body)

    assert err.value.details == {"field": "body"}
    assert kit.notifier.events == []
    assert await stored(kit, alice, dm) == []
    assert (await kit.chat.messages.send(alice.id, dm, "ok")).message.seq == 1


@pytest.mark.parametrize("client_msg_id", ["", "k" * 65])
async def test_bad_client_msg_id_is_refused(
    kit: ChatKit, alice: User, dm: str, client_msg_id: str
) -> None:
    with pytest.raises(ValidationFailed) as err:
        await kit.chat.messages.send(alice.id, dm, "hi", client_msg_id)

    assert err.value.details == {"field": "clientMsgId"}
    assert await stored(kit, alice, dm) == []


@pytest.mark.parametrize("client_msg_id", ["k", "k" * 64, "550e8400-e29b-41d4-a716-446655440000"])
async def test_client_msg_id_of_1_to_64_characters_is_kept(
    kit: ChatKit, alice: User, dm: str, client_msg_id: str
) -> None:
    result = await kit.chat.messages.send(alice.id, dm, "hi", client_msg_id)

    assert result.message.client_msg_id == client_msg_id


async def test_sending_to_an_unknown_conversation_is_not_found(kit: ChatKit, alice: User) -> None:
    with pytest.raises(NotFound):
        await kit.chat.messages.send(alice.id, "no-such-conversation", "hi")


# --- idempotency ------------------------------------------------------------------------


async def test_replaying_a_client_msg_id_returns_the_stored_message(
    kit: ChatKit, alice: User, dm: str
) -> None:
    first = await kit.chat.messages.send(alice.id, dm, "hello", "c-1")
    kit.clock.advance(seconds=10)

    replay = await kit.chat.messages.send(alice.id, dm, "hello (retry)", "c-1")

    assert replay.created is False
    assert replay.message == first.message  # same id, seq, body and time
    assert len(kit.notifier.named("newMessage")) == 1
    assert await stored(kit, alice, dm) == [first.message]
    assert (await kit.chat.messages.send(alice.id, dm, "next")).message.seq == 2


async def test_a_replay_returns_the_message_as_stored_now(
    kit: ChatKit, alice: User, dm: str
) -> None:
    sent = (await kit.chat.messages.send(alice.id, dm, "helo", "c-1")).message
    kit.clock.advance(seconds=1)
    edited = await kit.chat.messages.edit(alice.id, dm, sent.id, "hello")

    assert (await kit.chat.messages.send(alice.id, dm, "helo", "c-1")).message == edited

    deleted = await kit.chat.messages.delete(alice.id, dm, sent.id)
    replay = await kit.chat.messages.send(alice.id, dm, "helo", "c-1")

    # A retry must not bring a deleted body back.
    assert replay.message == deleted
    assert replay.message.body == ""
    assert replay.created is False


async def test_client_msg_id_is_scoped_to_sender_and_conversation(
    kit: ChatKit, alice: User, bob: User, dm: str, group: str
) -> None:
    mine = await kit.chat.messages.send(alice.id, dm, "a", "same")
    his = await kit.chat.messages.send(bob.id, dm, "b", "same")
    elsewhere = await kit.chat.messages.send(alice.id, group, "c", "same")

    assert his.created
    assert elsewhere.created
    assert (mine.message.seq, his.message.seq, elsewhere.message.seq) == (1, 2, 1)
    assert len({mine.message.id, his.message.id, elsewhere.message.id}) == 3


async def test_concurrent_replays_store_one_message(yielding_kit: ChatKit) -> None:
    kit = yielding_kit
    alice = (await kit.chat.auth.register("alice", PASSWORD)).user
    bob = (await kit.chat.auth.register("bob", PASSWORD)).user
    cid = (await kit.chat.conversations.open_direct(alice.id, bob.id)).conversation.id

    results = await asyncio.gather(
        *(kit.chat.messages.send(alice.id, cid, "once", "retry-me") for _ in range(10))
    )

    assert sum(r.created for r in results) == 1
    assert len({r.message for r in results}) == 1
    assert len(kit.notifier.named("newMessage")) == 1
    assert len(await stored(kit, alice, cid)) == 1


# --- history ----------------------------------------------------------------------------


async def test_history_defaults_to_the_newest_50(kit: ChatKit, alice: User, dm: str) -> None:
    sent = await fill(kit, alice, dm, 60)

    history = await kit.chat.messages.history(alice.id, dm)

    assert history.messages == sent[10:]
    assert history.has_more is True


async def test_history_of_a_short_conversation_is_complete(
    kit: ChatKit, alice: User, bob: User, dm: str
) -> None:
    sent = await fill(kit, alice, dm, 3)

    history = await kit.chat.messages.history(bob.id, dm)

    assert history.messages == sent
    assert history.has_more is False


async def test_history_of_an_empty_conversation(kit: ChatKit, alice: User, dm: str) -> None:
    history = await kit.chat.messages.history(alice.id, dm)

    assert history.messages == []
    assert history.has_more is False


async def test_history_before_and_after(kit: ChatKit, alice: User, dm: str) -> None:
    sent = await fill(kit, alice, dm, 10)

    older = await kit.chat.messages.history(alice.id, dm, before=6, limit=3)
    oldest = await kit.chat.messages.history(alice.id, dm, before=4, limit=3)
    newer = await kit.chat.messages.history(alice.id, dm, after=6, limit=3)
    newest = await kit.chat.messages.history(alice.id, dm, after=7, limit=3)

    assert (older.messages, older.has_more) == (sent[2:5], True)
    assert (oldest.messages, oldest.has_more) == (sent[0:3], False)
    assert (newer.messages, newer.has_more) == (sent[6:9], True)
    assert (newest.messages, newest.has_more) == (sent[7:10], False)


@pytest.mark.parametrize("limit", [1, 100])
async def test_history_limit_bounds_are_inclusive(
    kit: ChatKit, alice: User, dm: str, limit: int
) -> None:
    await fill(kit, alice, dm, 2)

    history = await kit.chat.messages.history(alice.id, dm, limit=limit)

    assert len(history.messages) == min(limit, 2)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": -1}, "limit"),
        ({"before": -1}, "before"),
        ({"after": -1}, "after"),
        ({"before": 5, "after": 1}, "before"),
        ({"before": 0, "after": 0}, "before"),
    ],
)
async def test_history_arguments_are_validated(
    kit: ChatKit, alice: User, dm: str, kwargs: dict[str, int], field: str
) -> None:
    with pytest.raises(ValidationFailed) as err:
        await kit.chat.messages.history(alice.id, dm, **kwargs)

    assert err.value.details == {"field": field}


def expected_window(n: int, mode: str, value: int, limit: int) -> tuple[list[int], bool]:
    """The contract, stated independently of the implementation."""
    seqs = list(range(1, n + 1))
    if mode == "after":
        candidates = [s for s in seqs if s > value]
        return candidates[:limit], len(candidates) > limit
    candidates = [s for s in seqs if mode == "latest" or s < value]
    return candidates[-limit:] if candidates else [], len(candidates) > limit


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(0, 30),
    mode=st.sampled_from(["latest", "before", "after"]),
    value=st.integers(0, 35),
    limit=st.one_of(st.integers(1, 8), st.integers(1, 100)),
)
def test_history_windows_are_contiguous_with_correct_has_more(
    n: int, mode: str, value: int, limit: int
) -> None:
    async def scenario() -> None:
        kit = in_memory_chat()
        alice = (await kit.chat.auth.register("alice", PASSWORD)).user
        bob = (await kit.chat.auth.register("bob", PASSWORD)).user
        cid = (await kit.chat.conversations.open_direct(alice.id, bob.id)).conversation.id
        for i in range(n):
            await kit.chat.messages.send((alice, bob)[i % 2].id, cid, f"m{i + 1}")

        kwargs = {} if mode == "latest" else {mode: value}
        history = await kit.chat.messages.history(bob.id, cid, limit=limit, **kwargs)

        seqs = [m.seq for m in history.messages]
        want, more = expected_window(n, mode, value, limit)
        assert seqs == want
        assert history.has_more is more
        assert all(m.body == f"m{m.seq}" and m.conversation_id == cid for m in history.messages)
        if seqs:  # contiguous and ascending
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))

    asyncio.run(scenario())


# --- edit and delete --------------------------------------------------------------------


async def test_the_sender_edits_a_message(
    kit: ChatKit, alice: User, bob: User, carol: User, group: str
) -> None:
    original = (await kit.chat.messages.send(alice.id, group, "helo")).message
    kit.clock.advance(minutes=1)
    kit.notifier.clear()

    edited = await kit.chat.messages.edit(alice.id, group, original.id, "  hello  ")

    assert (edited.id, edited.seq, edited.created_at) == (
        original.id,
        original.seq,
        original.created_at,
    )
    assert edited.body == "hello"
    assert edited.edited_at == EPOCH.replace(minute=1)
    [event] = kit.notifier.events
    assert (event.name, event.payload) == ("messageUpdated", edited)
    assert set(event.recipient_ids) == {alice.id, bob.id, carol.id}
    assert await stored(kit, bob, group) == [edited]


async def test_only_the_sender_edits_or_deletes(
    kit: ChatKit, alice: User, bob: User, group: str
) -> None:
    message = (await kit.chat.messages.send(alice.id, group, "mine")).message
    kit.notifier.clear()

    with pytest.raises(Forbidden):
        await kit.chat.messages.edit(bob.id, group, message.id, "yours now")
    with pytest.raises(Forbidden):
        await kit.chat.messages.delete(bob.id, group, message.id)

    assert kit.notifier.events == []
    assert await stored(kit, alice, group) == [message]


@pytest.mark.parametrize("body", ["", "   ", "y" * (MAX_BODY_CHARS + 1)])
async def test_edit_validates_the_body(kit: ChatKit, alice: User, dm: str, body: str) -> None:
    message = (await kit.chat.messages.send(alice.id, dm, "hi")).message

    with pytest.raises(ValidationFailed):
        await kit.chat.messages.edit(alice.id, dm, message.id, body)

    assert await stored(kit, alice, dm) == [message]


async def test_editing_or_deleting_an_unknown_message_is_not_found(
    kit: ChatKit, alice: User, dm: str, group: str
) -> None:
    elsewhere = (await kit.chat.messages.send(alice.id, group, "in the group")).message

    for message_id in ("no-such-message", elsewhere.id):  # ids of other conversations too
        with pytest.raises(NotFound):
            await kit.chat.messages.edit(alice.id, dm, message_id, "x")
        with pytest.raises(NotFound):
            await kit.chat.messages.delete(alice.id, dm, message_id)


async def test_delete_keeps_id_and_seq_and_empties_the_body(
    kit: ChatKit, alice: User, bob: User, dm: str
) -> None:
    first, second, third = await fill(kit, alice, dm, 3)
    kit.clock.advance(hours=1)
    kit.notifier.clear()

    deleted = await kit.chat.messages.delete(alice.id, dm, second.id)

    assert (deleted.id, deleted.seq, deleted.sender_id) == (second.id, 2, alice.id)
    assert deleted.body == ""
    assert deleted.deleted_at == EPOCH.replace(hour=1)
    assert deleted.is_deleted
    [event] = kit.notifier.events
    assert (event.name, event.payload) == ("messageDeleted", deleted)
    assert set(event.recipient_ids) == {alice.id, bob.id}
    assert await stored(kit, bob, dm) == [first, deleted, third]


async def test_deleting_twice_returns_the_deleted_message_unchanged(
    kit: ChatKit, alice: User, dm: str
) -> None:
    message = (await kit.chat.messages.send(alice.id, dm, "oops")).message
    deleted = await kit.chat.messages.delete(alice.id, dm, message.id)
    kit.clock.advance(minutes=5)
    kit.notifier.clear()

    again = await kit.chat.messages.delete(alice.id, dm, message.id)

    assert again == deleted
    assert kit.notifier.events == []


async def test_a_deleted_message_cannot_be_edited(kit: ChatKit, alice: User, dm: str) -> None:
    message = (await kit.chat.messages.send(alice.id, dm, "oops")).message
    deleted = await kit.chat.messages.delete(alice.id, dm, message.id)
    kit.notifier.clear()

    with pytest.raises(Conflict):
        await kit.chat.messages.edit(alice.id, dm, message.id, "resurrected")

    assert kit.notifier.events == []
    assert await stored(kit, alice, dm) == [deleted]


# --- seed-compatible direct paths -------------------------------------------------------


async def test_send_direct_creates_the_direct_conversation_on_first_use(
    kit: ChatKit, alice: User, bob: User
) -> None:
    result = await kit.chat.messages.send_direct(alice.id, bob.id, "hi Bob")

    assert result.created
    assert result.message.seq == 1
    cid = result.message.conversation_id
    assert [e.name for e in kit.notifier.events] == [
        "conversationUpdated",
        "conversationUpdated",
        "newMessage",
    ]
    assert {e.recipient_ids for e in kit.notifier.named("conversationUpdated")} == {
        (alice.id,),
        (bob.id,),
    }
    assert set(kit.notifier.named("newMessage")[0].recipient_ids) == {alice.id, bob.id}
    # Every path reaches the same conversation.
    assert (await kit.chat.conversations.open_direct(bob.id, alice.id)).conversation.id == cid
    reply = await kit.chat.messages.send_direct(bob.id, alice.id, "hi Alice")
    assert (reply.message.conversation_id, reply.message.seq) == (cid, 2)
    assert len(kit.notifier.named("conversationUpdated")) == 2


async def test_send_direct_uses_an_existing_direct_conversation(
    kit: ChatKit, alice: User, bob: User, dm: str
) -> None:
    result = await kit.chat.messages.send_direct(bob.id, alice.id, "hello")

    assert result.message.conversation_id == dm
    assert [e.name for e in kit.notifier.events] == ["newMessage"]


async def test_send_direct_is_idempotent(kit: ChatKit, alice: User, bob: User) -> None:
    first = await kit.chat.messages.send_direct(alice.id, bob.id, "hi", "c-9")
    replay = await kit.chat.messages.send_direct(alice.id, bob.id, "hi", "c-9")

    assert replay.created is False
    assert replay.message == first.message
    assert len(kit.notifier.named("newMessage")) == 1


async def test_send_direct_to_an_unknown_user_is_not_found(kit: ChatKit, alice: User) -> None:
    with pytest.raises(NotFound):
        await kit.chat.messages.send_direct(alice.id, "nobody", "hi")

    assert kit.notifier.events == []
    assert (await kit.chat.conversations.list_for_user(alice.id)).items == []


async def test_send_direct_to_oneself_is_refused(kit: ChatKit, alice: User) -> None:
    with pytest.raises(ValidationFailed):
        await kit.chat.messages.send_direct(alice.id, alice.id, "note to self")

    assert (await kit.chat.conversations.list_for_user(alice.id)).items == []


@pytest.mark.parametrize(("body", "client_msg_id"), [("   ", None), ("hi", ""), ("hi", "k" * 65)])
async def test_send_direct_with_bad_input_creates_nothing(
    kit: ChatKit, alice: User, bob: User, body: str, client_msg_id: str | None
) -> None:
    with pytest.raises(ValidationFailed):
        await kit.chat.messages.send_direct(alice.id, bob.id, body, client_msg_id)

    assert kit.notifier.events == []
    assert (await kit.chat.conversations.list_for_user(alice.id)).items == []


async def test_history_direct_reads_the_direct_conversation(
    kit: ChatKit, alice: User, bob: User, dm: str
) -> None:
    sent = await fill(kit, alice, dm, 5)

    mine = await kit.chat.messages.history_direct(alice.id, bob.id)
    his = await kit.chat.messages.history_direct(bob.id, alice.id, before=4, limit=2)
    after = await kit.chat.messages.history_direct(bob.id, alice.id, after=4)

    assert (mine.messages, mine.has_more) == (sent, False)
    assert (his.messages, his.has_more) == (sent[1:3], True)
    assert (after.messages, after.has_more) == (sent[4:], False)


async def test_history_direct_with_someone_never_talked_to_is_empty_and_creates_nothing(
    kit: ChatKit, alice: User, bob: User
) -> None:
    history = await kit.chat.messages.history_direct(alice.id, bob.id)

    assert history.messages == []
    assert history.has_more is False
    assert kit.notifier.events == []
    assert (await kit.chat.conversations.list_for_user(alice.id)).items == []
    assert (await kit.chat.conversations.list_for_user(bob.id)).items == []


async def test_history_direct_errors(kit: ChatKit, alice: User, bob: User) -> None:
    with pytest.raises(NotFound):
        await kit.chat.messages.history_direct(alice.id, "nobody")
    with pytest.raises(ValidationFailed):
        await kit.chat.messages.history_direct(alice.id, alice.id)
    with pytest.raises(ValidationFailed):
        await kit.chat.messages.history_direct(alice.id, bob.id, before=3, after=1)
    with pytest.raises(ValidationFailed):
        await kit.chat.messages.history_direct(alice.id, bob.id, limit=101)


async def test_history_direct_ignores_groups_with_the_same_two_members(
    kit: ChatKit, alice: User, bob: User
) -> None:
    pair_group = await kit.chat.conversations.create_group(alice.id, "Just us", [bob.id])
    await kit.chat.messages.send(alice.id, pair_group.conversation.id, "group talk")

    history = await kit.chat.messages.history_direct(bob.id, alice.id)

    assert history.messages == []


# --- sync -------------------------------------------------------------------------------


async def test_sync_returns_exactly_what_was_missed_ascending_per_conversation(
    kit: ChatKit, alice: User, bob: User, dm: str, group: str
) -> None:
    in_dm = await fill(kit, bob, dm, 4)
    in_group = await fill(kit, bob, group, 3)

    result = await kit.chat.messages.sync(alice.id, {dm: 1, group: 0})

    assert result.has_more is False
    assert [m for m in result.messages if m.conversation_id == dm] == in_dm[1:]
    assert [m for m in result.messages if m.conversation_id == group] == in_group
    assert sorted(result.messages, key=lambda m: m.id) == sorted(
        in_dm[1:] + in_group, key=lambda m: m.id
    )


async def test_sync_skips_conversations_the_user_is_not_in(
    kit: ChatKit, alice: User, bob: User, carol: User, dm: str
) -> None:
    theirs = (await kit.chat.conversations.open_direct(bob.id, carol.id)).conversation.id
    await fill(kit, bob, theirs, 2)
    mine = await fill(kit, bob, dm, 2)

    result = await kit.chat.messages.sync(alice.id, {theirs: 0, "no-such-id": 0, dm: 0})

    assert result.messages == mine


async def test_sync_when_up_to_date_or_ahead_returns_nothing(
    kit: ChatKit, alice: User, dm: str
) -> None:
    await fill(kit, alice, dm, 2)

    assert (await kit.chat.messages.sync(alice.id, {dm: 2})).messages == []
    assert (await kit.chat.messages.sync(alice.id, {dm: 50})).messages == []
    assert (await kit.chat.messages.sync(alice.id, {})).messages == []


async def test_sync_shows_edits_and_deletes_as_they_are_now(
    kit: ChatKit, alice: User, bob: User, dm: str
) -> None:
    first, second = await fill(kit, alice, dm, 2)
    edited = await kit.chat.messages.edit(alice.id, dm, first.id, "changed")
    deleted = await kit.chat.messages.delete(alice.id, dm, second.id)

    result = await kit.chat.messages.sync(bob.id, {dm: 0})

    assert result.messages == [edited, deleted]


async def test_sync_caps_each_conversation_and_says_there_is_more(
    kit: ChatKit, alice: User, dm: str
) -> None:
    cap = SYNC_MAX_MESSAGES_PER_CONVERSATION
    await fill(kit, alice, dm, cap + 3)

    first = await kit.chat.messages.sync(alice.id, {dm: 0})
    rest = await kit.chat.messages.sync(alice.id, {dm: first.messages[-1].seq})

    assert [m.seq for m in first.messages] == list(range(1, cap + 1))
    assert first.has_more is True
    assert [m.seq for m in rest.messages] == [cap + 1, cap + 2, cap + 3]
    assert rest.has_more is False


async def test_sync_validates_its_input(kit: ChatKit, alice: User, dm: str) -> None:
    with pytest.raises(ValidationFailed):
        await kit.chat.messages.sync(alice.id, {dm: -1})
    too_many = {f"c{i}": 0 for i in range(SYNC_MAX_CONVERSATIONS + 1)}
    with pytest.raises(ValidationFailed):
        await kit.chat.messages.sync(alice.id, too_many)
    at_limit = {f"c{i}": 0 for i in range(SYNC_MAX_CONVERSATIONS - 1)} | {dm: 0}
    assert (await kit.chat.messages.sync(alice.id, at_limit)).messages == []
