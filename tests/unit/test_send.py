"""MessageService.send: gapless seqs, validation, idempotent replays of a clientMsgId."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unitkit import PASSWORD, fill, stored

from chatcore.chat import Storage
from chatcore.errors import NotFound, ValidationFailed
from chatcore.limits import (
    MAX_BODY_CHARS,
)
from chatcore.models import User
from chatcore.testing import EPOCH, ChatKit, in_memory_chat


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
